"""Differential sampling under hostile functions: the cap, a crashing interpreter, memory."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from pytest_orchestrator.guard.children import ChildResult
from pytest_orchestrator.phases.montecarlo import phase as mc
from pytest_orchestrator.phases.montecarlo.differential import _blame
from pytest_orchestrator.plan import Plan, Step
from tests.phases.montecarlo.limits_helpers import fn, report_of, run_for


@pytest.mark.parametrize(
    ("child", "blame"),
    [
        (ChildResult("s", -signal.SIGTERM, 1.0), "stopped by the memory guard"),
        (ChildResult("s", -signal.SIGKILL, 1.0), "stopped by the memory guard"),
        (ChildResult("s", -signal.SIGKILL, 3.0, timed_out=True), "hung until the cap"),
        (ChildResult("s", -signal.SIGKILL, 3.0, stalled=True), "hung (no progress; stuck"),
        (ChildResult("s", -signal.SIGSEGV, 1.0), "crashed the interpreter (killed by SIGSEGV)"),
        (ChildResult("s", 3, 1.0, stderr="MemoryError\n"), "child ended early (exit status 3"),
    ],
)
def test_how_a_child_ended_decides_what_its_function_is_blamed_for(
    child: ChildResult, blame: str
) -> None:
    """A child the guard signalled (SIGTERM, then SIGKILL) is "stopped by the memory guard";
    one killed at the cap or for a stall is "hung", whatever the signal."""
    assert _blame(child).startswith(blame)


def test_candidate_that_cannot_be_imported_diverges(tmp_path: Path) -> None:
    """A function the base answered but the candidate cannot even import is a change."""
    run = run_for(tmp_path, ["fine"])
    base = mc.baseline(run)
    module = run.worktree / "pkg" / "hostile.py"
    module.write_text(module.read_text() + "\nraise RuntimeError('broken at import')\n")
    plan = Plan(command="refactor", steps=[Step(id="e", pool="mutate", op="apply_patch", args={})])
    summary = mc.candidate(run, base, plan)
    assert [d.simulation for d in summary.diverged] == ["differential:pkg.hostile.fine"]
    f = fn(report_of(run), "fine")
    assert f.counterexample is not None
    assert "broken at import" in f.counterexample.candidate
