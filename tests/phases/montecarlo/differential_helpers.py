"""The differential run the Monte Carlo plan-awareness tests share: ``cache/func.py`` (a src
layout) sampled on the base, changed, and sampled again under a plan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pluggy

from pytest_orchestrator.model import LogicResult, RankedSlice, Slice
from pytest_orchestrator.phases.montecarlo import phase as mc
from pytest_orchestrator.phases.montecarlo.differential import FunctionReport, read_report
from pytest_orchestrator.plan import Budgets, Plan
from pytest_orchestrator.run import Run
from pytest_orchestrator.settings import Settings
from pytest_orchestrator.tracing import Tracer


def make_run(
    tmp_path: Path, tree: Path, functions: tuple[str, ...]
) -> Run:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    settings = Settings(command="rename module cache.func to functions",
                        run_root=tmp_path / "runs", cache_dir=tmp_path / "cache", seed=7,
                        budgets=Budgets(montecarlo_seconds=15.0))  # fmt: skip
    run = Run("modrename", settings, tree, tree, "b", "c0ffee", None, run_dir,
              pluggy.PluginManager("pytest").hook, Tracer(run_dir / "trace.json"), {})  # fmt: skip
    run.logic = LogicResult(
        slices=[RankedSlice(slice=Slice(path="src/cache/func.py", symbol=name, kind="function",
                                        start_line=1, end_line=2, hash="0", tokens=1), score=1.0)
                for name in functions],
        budget_tokens=4000, used_tokens=1,
    )  # fmt: skip
    return run


def compare(
    tmp: Path, base: str, change: Callable[[Path], None], plan: Plan, functions: tuple[str, ...]
) -> dict[str, FunctionReport]:
    """Sample ``functions`` of ``cache/func.py`` holding ``base``, let ``change`` edit the
    package directory, sample the candidate under ``plan``: the reports by function name."""
    tree = tmp / "tree"
    (tree / "src" / "cache").mkdir(parents=True)
    (tree / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["src"]\n')
    (tree / "src" / "cache" / "__init__.py").write_text("")
    (tree / "src" / "cache" / "func.py").write_text(base)
    run = make_run(tmp, tree, functions)
    measured = mc.baseline(run)
    change(tree / "src" / "cache")
    mc.candidate(run, measured, plan)
    report = read_report(run.run_dir / mc.DIFFERENTIAL_FILE)
    assert report is not None
    return {f.target.rpartition(".")[2]: f for f in report.functions}
