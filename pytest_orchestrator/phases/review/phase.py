"""Phase 7, Review: the default post-change checks. The gate is green only if all pass.

Other implementations of ``pytest_orchestrator_review`` (the Monte Carlo check, a target's
conftest) add checks of their own; one failed check anywhere blocks the PR.
"""

from __future__ import annotations

import pytest

from pytest_orchestrator.model import Attempt, Check, GateResult, Phase
from pytest_orchestrator.phases.review import checks as repo_checks
from pytest_orchestrator.phases.review import promises, secrets, trace_errors
from pytest_orchestrator.run import Run


@pytest.hookimpl(trylast=True)
def pytest_orchestrator_review(run: Run, attempt: Attempt) -> list[Check]:
    plan = attempt.plan
    checks = [_steps(attempt, len(plan.steps)), _tests(attempt)]
    if attempt.gate is not None:
        checks += [_parity(attempt.gate), _integrity(attempt.gate)]
        if attempt.gate.spec:
            checks.append(_spec(attempt.gate))
    checks.append(_diff(attempt))
    if attempt.diff_stat:
        checks.append(secrets.check(run.worktree, run.base_commit))
    checks += trace_errors.checks(run.tracer, attempt)
    if (
        attempt.diff_stat
        and len(attempt.steps) == len(plan.steps)
        and all(s.ok for s in attempt.steps)
    ):  # a red attempt's tree is not the change: its linters would only add noise
        checks += repo_checks.review(run, attempt)
    if attempt.steps and all(s.ok for s in attempt.steps):  # each op's own promise
        for step in plan.steps:
            promise = promises.check(run.worktree, step)
            if promise is not None:
                checks.append(promise)
    return checks


def pytest_orchestrator_phase_done(run: Run, phase: Phase) -> None:
    """Once the plan is final, start the base side of the repository's checks: it runs on a
    snapshot of the base while the first attempt runs, not after it."""
    if phase is Phase.OPTIMISE and run.baseline is not None:  # no attempt without a baseline
        repo_checks.base_side(run).start()


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
            detail="the gate run did not run (a step failed); tests passing is the merge condition",
        )
    if not tests.green:
        names = ", ".join(t.nodeid for t in tests.failed[:5]) or "none collected"
        return Check(name="tests", ok=False, detail=f"{len(tests.failed)} failing: {names}")
    return Check(name="tests", ok=True, detail=f"{tests.passed} passed")


def _parity(gate: GateResult) -> Check:
    """Every test that passed at the base is collected and passes."""
    if gate.missing:
        shown = "; ".join(gate.missing[:10]) + (" …" if len(gate.missing) > 10 else "")
        return Check(
            name="parity",
            ok=False,
            detail=f"{len(gate.missing)} test(s) that passed at the base do not pass: {shown}",
        )
    return Check(
        name="parity",
        ok=True,
        detail=f"all {gate.baseline.passed} base-passing tests pass ({gate.gate.line()})",
    )


def _spec(gate: GateResult) -> Check:
    """Red-green: every test named on the command line passes after the change."""
    red = [t for t in gate.spec if t.after != "passed"]
    if red:
        shown = "; ".join(f"{t.nodeid}: {t.after}" for t in red[:10])
        return Check(name="spec", ok=False, detail=f"{len(red)} named test(s) not green: {shown}")
    was_red = sum(t.base != "passed" for t in gate.spec)
    return Check(
        name="spec",
        ok=True,
        detail=f"all {len(gate.spec)} named test(s) pass ({was_red} failed at the base)",
    )


def _integrity(gate: GateResult) -> Check:
    """Nothing in the diff weakens the tests or their configuration."""
    if gate.findings:
        shown = "; ".join(str(f) for f in gate.findings[:5])
        more = f" (and {len(gate.findings) - 5} more)" if len(gate.findings) > 5 else ""
        return Check(
            name="integrity",
            ok=False,
            detail=f"the change weakens the gate: {shown}{more}",
        )
    what = f"; tests changed: {', '.join(gate.tests_changed)}" if gate.tests_changed else ""
    return Check(name="integrity", ok=True, detail=f"no weakening found{what}")


def _diff(attempt: Attempt) -> Check:
    if not attempt.diff_stat:
        return Check(name="diff", ok=False, detail="the attempt changed nothing")
    return Check(name="diff", ok=True, detail=attempt.diff_stat.splitlines()[-1].strip())
