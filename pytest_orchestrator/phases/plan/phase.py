"""Phase 4, Plan: hand the command and the pruned slices to the chosen planner."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

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
