"""Hostile functions (stuck in C, crashing, hogging memory) and a Monte Carlo run over them,
shared by the differential-limits tests."""

from __future__ import annotations

from pathlib import Path

import pluggy

from pytest_orchestrator.model import LogicResult, RankedSlice, Slice
from pytest_orchestrator.phases.montecarlo import phase as mc
from pytest_orchestrator.phases.montecarlo.differential import (
    DifferentialReport,
    FunctionReport,
    read_report,
)
from pytest_orchestrator.plan import Budgets
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
