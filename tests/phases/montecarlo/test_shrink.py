"""Shrinking counterexamples to the simplest input that still diverges."""

from __future__ import annotations

import pickle
from pathlib import Path

import pluggy

from pytest_orchestrator.model import LogicResult, RankedSlice, Slice
from pytest_orchestrator.phases.montecarlo import phase as mc
from pytest_orchestrator.phases.montecarlo import shrink
from pytest_orchestrator.phases.montecarlo.differential import (
    DifferentialReport,
    Sampler,
    read_report,
)
from pytest_orchestrator.phases.montecarlo.shrink import load_builtin_call, simpler, variants
from pytest_orchestrator.plan import Plan, Step
from pytest_orchestrator.run import Run
from pytest_orchestrator.settings import Settings
from pytest_orchestrator.tracing import Tracer
from tests.conftest import commit_all, git


def test_numbers_shrink_towards_simple_values() -> None:
    """0, 1 and rounder numbers come first; nothing larger than the original is offered."""
    assert list(simpler(0.3127364))[:4] == [0.0, 1.0, -1.0, 0.5]
    assert 0.31 in list(simpler(0.3127364))
    assert list(simpler(0)) == []
    assert all(abs(v) <= 40 for v in simpler(40))


def test_containers_and_strings_get_shorter() -> None:
    """Empty first, then halves and one element less."""
    assert list(simpler("abcd"))[:2] == ["", "ab"]
    assert next(simpler([3, 4])) == []
    assert next(simpler((1,))) == ()


def test_variants_change_one_argument_and_come_smallest_first() -> None:
    """Each variant simplifies a single argument; the list is sorted by printed size."""
    calls = variants((0.3127364, "abc"), {"k": 10})
    assert all(sum(a != b for a, b in zip(c[0], (0.3127364, "abc"), strict=True))
               + (c[1] != {"k": 10}) == 1 for c in calls)  # fmt: skip
    sizes = [len(repr(c)) for c in calls]
    assert sizes[0] <= sizes[-1]


def test_only_builtin_inputs_are_unpickled_in_the_parent() -> None:
    """A counterexample holding a user class is left alone: the parent never imports it."""
    assert load_builtin_call(pickle.dumps(((1.5, [1, 2]), {"a": "x"}))) == (
        (1.5, [1, 2]),
        {"a": "x"},
    )
    assert load_builtin_call(pickle.dumps(((Path("x"),), {}))) is None


BAND = "def band(x: float) -> str:\n    return 'high' if x > 0.3 else 'low'\n"


def band_repo(tmp_path: Path) -> Path:
    """A git repository holding ``pkg/band.py`` (`BAND`), committed."""
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "__init__.py").write_text("")
    (tree / "pkg" / "band.py").write_text(BAND)
    git(tree, "init", "-q")
    commit_all(tree)
    return tree


def test_counterexample_is_shrunk_after_a_divergence(tmp_path: Path) -> None:
    """A threshold moved from 0.3 to 0.35 is reported at a short input such as 0.31."""
    tree = band_repo(tmp_path)
    base_commit = git(tree, "rev-parse", "HEAD").strip()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    settings = Settings(command="refactor band", run_root=tmp_path / "runs",
                        cache_dir=tmp_path / "cache", seed=4)  # fmt: skip
    run = Run("shrink", settings, tree, tree, "b", base_commit, None, run_dir,
              pluggy.PluginManager("pytest").hook, Tracer(run_dir / "trace.json"), {})  # fmt: skip
    run.logic = LogicResult(
        slices=[RankedSlice(slice=Slice(path="pkg/band.py", symbol="band", kind="function",
                                        start_line=1, end_line=2, hash="0", tokens=1), score=1.0)],
        budget_tokens=4000, used_tokens=1,
    )  # fmt: skip
    base = mc.baseline(run)
    (tree / "pkg" / "band.py").write_text(BAND.replace("0.3", "0.35"))
    plan = Plan(
        command="refactor band", steps=[Step(id="e", pool="mutate", op="apply_patch", args={})]
    )
    summary = mc.candidate(run, base, plan)
    report = read_report(run_dir / mc.DIFFERENTIAL_FILE)
    assert report is not None
    (f,) = report.functions
    assert f.counterexample is not None
    assert f.counterexample.shrunk_from
    assert len(f.counterexample.input) <= len("(0.31)")
    assert "high" in f.counterexample.base
    assert any("shrunk from sample" in n for n in summary.notes)
    # the base side ran on the base commit as committed, written only once there was
    # something to shrink
    assert (run_dir / mc.WORK_DIR / shrink.BASE_SNAPSHOT / "pkg" / "band.py").read_text() == BAND


def test_no_base_snapshot_without_a_counterexample(tmp_path: Path) -> None:
    """Nothing diverged, nothing to shrink: the base is never written out."""
    tree = band_repo(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    report = DifferentialReport(side="candidate", seed=1, functions=[])
    sampler = Sampler("candidate", 1, work, tree, [], {})
    assert shrink.improve(report, sampler, "HEAD", {}, 0.0, None) == 0
    assert not (work / shrink.BASE_SNAPSHOT).exists()
    assert shrink.snapshot(tree, "HEAD", work / shrink.BASE_SNAPSHOT)
    assert (work / shrink.BASE_SNAPSHOT / "pkg" / "band.py").read_text() == BAND
    assert not shrink.snapshot(tree, "no-such-commit", tmp_path / "other")
