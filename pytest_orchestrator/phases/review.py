"""Phase 7, Review: the default post-change checks. The gate is green only if all pass.

Other implementations of ``pytest_orchestrator_review`` (the Monte Carlo check, a target's
conftest) add checks of their own; one failed check anywhere blocks the PR.
"""

from __future__ import annotations

import pytest

from pytest_orchestrator import refactor
from pytest_orchestrator.model import Attempt, Check
from pytest_orchestrator.run import Run


@pytest.hookimpl(trylast=True)
def pytest_orchestrator_review(run: Run, attempt: Attempt) -> list[Check]:
    plan = next((p for p in run.plans if p.digest() == attempt.plan_digest), None)
    checks = [_steps(attempt, len(plan.steps) if plan else 0), _tests(attempt), _diff(attempt)]
    if plan is not None:
        for step in plan.steps:
            if step.op == "rename_symbol" and attempt.steps:
                checks.append(_renamed(run, step.args["symbol"], step.args["new_name"]))
    return checks


def _steps(attempt: Attempt, planned: int) -> Check:
    failed = [s.step_id for s in attempt.steps if not s.ok]
    missing = planned - len(attempt.steps)
    if failed or missing:
        detail = f"failed: {', '.join(failed)}" if failed else ""
        detail += f"{'; ' if detail else ''}{missing} step(s) did not run" if missing else ""
        return Check(name="steps", ok=False, detail=detail)
    return Check(name="steps", ok=True, detail=f"{len(attempt.steps)} steps succeeded")


def _tests(attempt: Attempt) -> Check:
    tests = attempt.tests
    if tests is None:
        return Check(
            name="tests",
            ok=False,
            detail="the plan ran no tests; tests passing is the merge condition",
        )
    if not tests.green:
        names = ", ".join(t.nodeid for t in tests.failed[:5]) or "none collected"
        return Check(name="tests", ok=False, detail=f"{len(tests.failed)} failing: {names}")
    return Check(name="tests", ok=True, detail=f"{tests.passed} passed")


def _diff(attempt: Attempt) -> Check:
    if not attempt.diff_stat:
        return Check(name="diff", ok=False, detail="the attempt changed nothing")
    return Check(name="diff", ok=True, detail=attempt.diff_stat.splitlines()[-1].strip())


def _renamed(run: Run, symbol: str, new_name: str) -> Check:
    """After a rename the new name is defined and the old one is not."""
    *outer, _old = symbol.split(".")
    new_symbol = ".".join([*outer, new_name])
    has_new = refactor.find_definitions(run.worktree, new_symbol)
    has_old = refactor.find_definitions(run.worktree, symbol)
    ok = bool(has_new) and not has_old
    detail = (
        f"{symbol} -> {new_symbol}"
        if ok
        else (f"{symbol} is still defined" if has_old else f"{new_symbol} is not defined")
    )
    return Check(name="rename", ok=ok, detail=detail)
