"""Phase 4, Plan: hand the command and the pruned slices to the chosen planner."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

from pytest_orchestrator.phases.execute import refactor
from pytest_orchestrator.phases.map.index import SearchIndex, TreeIndex
from pytest_orchestrator.phases.plan.planners import Failure, PlanContext, Planner, load_planner
from pytest_orchestrator.plan import Plan
from pytest_orchestrator.repo.files import is_test_module_name
from pytest_orchestrator.repo.git import git
from pytest_orchestrator.run import Run

OUTLINE_LIMIT = 400


def load(run: Run) -> Planner:
    if run.planner is None:
        run.planner = load_planner(run.settings)
    return run.planner


@contextmanager
def reading_base(run: Run) -> Iterator[None]:
    """While a planner checks the command against the base: when the session knows the base's
    tree (`Run.base_tree`: the worktree holds exactly it), the refactorings' definition search
    (`refactor.files_defining`) asks the identifier index of that tree (Map's, in the cache
    dir, when it holds the tree complete) before ripgrep, which would read the whole tree.
    Opened on the first lookup: a command that looks up no definition pays nothing. Not with
    submodules: ripgrep searches their checkouts, the index does not hold them."""
    tree_id, root = run.base_tree, run.worktree
    if tree_id is None or (root / ".gitmodules").exists():
        yield
        return
    opened: list[tuple[SearchIndex, TreeIndex | None]] = []

    def lines(name: str, pattern: re.Pattern[str]) -> list[str] | None:
        if not opened:
            store = SearchIndex.open(run.settings.cache_dir)
            opened.append((store, store.tree(root, tree_id)))
        tree = opened[0][1]
        return None if tree is None else tree.files_with_line(name, pattern)

    try:
        with refactor.indexed(root, lines):
            yield
    finally:
        for store, _ in opened:
            store.close()


def context_for(run: Run, failures: Sequence[Failure] = ()) -> PlanContext:
    files = git("ls-files", cwd=run.worktree).splitlines()
    return PlanContext(
        command=run.command,
        worktree=run.worktree,
        slices=run.logic.kept if run.logic is not None else [],
        outline=files[:OUTLINE_LIMIT],
        tests=[f for f in files if is_test_module_name(f.rsplit("/", 1)[-1])][:OUTLINE_LIMIT],
        budgets=run.settings.budgets,
        ops=run.ops,
        ledger=run.ledger,
        tracer=run.tracer,
        montecarlo=run.latest_montecarlo(),
        failures=list(failures),
    )


@pytest.hookimpl(trylast=True)
def pytest_orchestrator_plan(run: Run, context: PlanContext) -> list[Plan]:
    planner = load(run)
    if context.failures:
        return planner.replan(context, context.failures[-1])
    return planner.plan(context)
