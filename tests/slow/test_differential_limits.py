"""Differential sampling under hostile functions, end to end: the cap, a crashing interpreter,
a memory hog, an input stuck in C."""

from __future__ import annotations

from pathlib import Path

from pytest_orchestrator.guard.pressure import PressureGauge
from pytest_orchestrator.phases.montecarlo import phase as mc
from tests.phases.montecarlo.limits_helpers import fn, report_of, run_for


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


def test_memory_hog_is_stopped_and_reported(tmp_path: Path) -> None:
    """End to end: a hog's child is stopped (by the gauge, or first by the per-call alarm on
    a starved machine), the report says so, and the other function is still sampled. How far
    below the line the gauge holds a hog depends on the machine's speed: the gauge's decision
    is tested on injected samples in tests/guard/test_pressure.py, and benchmarks/bench_pressure.py
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


def test_input_that_stalls_a_child_is_dropped_and_sampling_goes_on(tmp_path: Path) -> None:
    """One input stuck in C stops its child; the function is sampled again without it."""
    run = run_for(tmp_path, ["once_stuck"])
    summary = mc.baseline(run)
    f = fn(report_of(run), "once_stuck")
    assert f.skipped == ""
    assert f.samples > 0
    assert any("input 0 hung" in n and "sampling it again" in n for n in summary.notes)
