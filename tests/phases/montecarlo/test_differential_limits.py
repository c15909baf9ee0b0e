"""Differential sampling under hostile functions: the cap, a crashing interpreter, memory."""

from __future__ import annotations

import signal
from pathlib import Path

import pluggy
import pytest

from pytest_orchestrator.guard.children import ChildResult
from pytest_orchestrator.guard.pressure import PressureGauge
from pytest_orchestrator.model import LogicResult, RankedSlice, Slice
from pytest_orchestrator.phases.montecarlo import phase as mc
from pytest_orchestrator.phases.montecarlo.differential import (
    DifferentialReport,
    FunctionReport,
    _blame,
    read_report,
)
from pytest_orchestrator.plan import Budgets, Plan, Step
from pytest_orchestrator.run import Run
from pytest_orchestrator.settings import Settings
from pytest_orchestrator.tracing import Tracer

HOSTILE = '''\
from __future__ import annotations

import ctypes


def stuck_in_c(n: int) -> int:
    """Minutes inside one C call, where no Python signal handler gets to run."""
    return sum(range(10**13 + n))


def crash(n: int) -> int:
    return len(ctypes.string_at(0))


def fine(n: int) -> int:
    return n * 2


def also_fine(n: int) -> int:
    return n - 1


def once_stuck(n: int) -> int:
    """Stuck in C on one input only.

    >>> once_stuck(123456789)
    """
    if n == 123456789:
        return sum(range(10**13))
    return n + 1


def hog(n: int) -> int:
    blocks = []
    while True:
        blocks.append(b"x" * 100_000_000)
'''


def run_for(tmp_path: Path, functions: list[str], seconds: float = 15.0) -> Run:
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "__init__.py").write_text("")
    (tree / "pkg" / "hostile.py").write_text(HOSTILE)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    settings = Settings(command="refactor", run_root=tmp_path / "runs",
                        cache_dir=tmp_path.parent / "shared-cache",
                        seed=5, budgets=Budgets(montecarlo_seconds=seconds))  # fmt: skip
    run = Run("limits", settings, tree, tree, "b", "c0ffee", None, run_dir,
              pluggy.PluginManager("pytest").hook, Tracer(run_dir / "trace.json"), {})  # fmt: skip
    run.logic = LogicResult(
        slices=[RankedSlice(slice=Slice(path="pkg/hostile.py", symbol=f, kind="function",
                                        start_line=1, end_line=2, hash="0", tokens=1), score=1.0)
                for f in functions],
        budget_tokens=4000, used_tokens=1,
    )  # fmt: skip
    return run


def report_of(run: Run) -> DifferentialReport:
    report = read_report(run.run_dir / mc.DIFFERENTIAL_FILE)
    assert report is not None
    return report


def fn(report: DifferentialReport, name: str) -> FunctionReport:
    (found,) = [f for f in report.functions if f.target == f"pkg.hostile.{name}"]
    return found


@pytest.mark.slow
def test_function_stuck_in_c_is_stopped_at_the_cap(tmp_path: Path) -> None:
    """No signal handler runs inside a long C call: its child's process group is killed at the cap,
    the phase ends on time, and the other shard's function is still reported."""
    run = run_for(tmp_path, ["stuck_in_c", "fine"], seconds=3.0)
    summary = mc.baseline(run)
    report = report_of(run)
    assert fn(report, "stuck_in_c").skipped.startswith("hung until the cap")
    fine = fn(report, "fine")  # how many samples fit in 3 s depends on the machine
    assert fine.samples > 0 or fine.skipped.startswith("hung until the cap")
    assert any("skipped pkg.hostile.stuck_in_c: hung until the cap" in n for n in summary.notes)


@pytest.mark.slow
def test_segfault_is_reported_and_sampling_continues(tmp_path: Path) -> None:
    """A function that crashes the interpreter is retried without the input, then blamed;
    the next rounds sample the rest."""
    run = run_for(tmp_path, ["crash", "also_fine", "fine"])
    mc.baseline(run)
    report = report_of(run)
    assert fn(report, "crash").skipped.startswith("crashed the interpreter (killed by SIGSEGV)")
    assert fn(report, "fine").samples > 0
    assert fn(report, "also_fine").samples > 0
    assert any("crash: input 0 crashed the interpreter" in e for e in report.errors)


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


@pytest.mark.slow
def test_memory_hog_is_stopped_and_reported(tmp_path: Path) -> None:
    """End to end: a hog's child is stopped (by the gauge, or first by the per-call alarm on
    a starved machine), the report says so, and the other function is still sampled. How far
    below the line the gauge holds a hog depends on the machine's speed: the gauge's decision
    is tested on injected samples in test_pressure.py, and benchmarks/bench_pressure.py
    measures the peak."""
    run = run_for(tmp_path, ["hog", "fine"])
    used = PressureGauge(export_env=False).sample().rss_bytes
    available = used + 2_000_000_000
    with PressureGauge(interval=0.05, threshold=0.70, available_bytes=available) as gauge:
        run.gauge = gauge
        summary = mc.baseline(run)
    report = report_of(run)
    hog = fn(report, "hog")
    assert hog.skipped.startswith(("stopped by the memory guard", "hangs:"))
    assert any(f"skipped pkg.hostile.hog: {hog.skipped}" in n for n in summary.notes)
    assert fn(report, "fine").samples > 0
    if hog.skipped.startswith("stopped by the memory guard"):
        assert any(e.kind == "stopped_child" for e in gauge.events)


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


@pytest.mark.slow
def test_input_that_stalls_a_child_is_dropped_and_sampling_goes_on(tmp_path: Path) -> None:
    """One input stuck in C stops its child; the function is sampled again without it."""
    run = run_for(tmp_path, ["once_stuck"])
    summary = mc.baseline(run)
    f = fn(report_of(run), "once_stuck")
    assert f.skipped == ""
    assert f.samples > 0
    assert any("input 0 hung" in n and "sampling it again" in n for n in summary.notes)
