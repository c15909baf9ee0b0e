"""Arguments captured from the base revision's tests: real capture runs and a real baseline."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pluggy

from pytest_orchestrator.guard.children import child_env
from pytest_orchestrator.model import LogicResult, RankedSlice, Slice
from pytest_orchestrator.phases.montecarlo import phase as mc
from pytest_orchestrator.phases.montecarlo.child.capture import ENV_VAR
from pytest_orchestrator.phases.montecarlo.differential import read_report
from pytest_orchestrator.run import Run
from pytest_orchestrator.settings import Settings
from pytest_orchestrator.tracing import Tracer
from tests.phases.montecarlo.capture_helpers import make_tree


def test_calls_are_captured_through_every_import_style(tmp_path: Path) -> None:
    """'from m import f' copies, module attribute calls and calls from inside the module
    (through its globals) are all recorded."""
    tree = make_tree(tmp_path / "tree")
    spec = tmp_path / "spec.json"
    out = tmp_path / "out"
    target = {
        "id": "pkg.geo.area",
        "module": "pkg.geo",
        "qualname": "area",
        "file_id": "pkg.geo.area",
    }
    spec.write_text(json.dumps({"out": str(out), "targets": [target]}))
    cmd = [sys.executable, "-m", "pytest",
           "-p", "pytest_orchestrator.phases.montecarlo.child.capture", "-q",
           "-p", "no:cacheprovider", "tests"]  # fmt: skip
    env = {**child_env(tree), ENV_VAR: str(spec)}
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = []
    with (out / "pkg.geo.area.pkl").open("rb") as fh:
        while True:
            try:
                calls.append(pickle.loads(pickle.load(fh)))
            except EOFError:
                break
    assert calls == [(("square", 3), {}), (("square", 4), {}), (("square", 5), {})]


def test_baseline_samples_captured_inputs_first(tmp_path: Path) -> None:
    """An unannotated function is still sampled, from the calls its tests make."""
    tree = make_tree(tmp_path / "tree")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    settings = Settings(command="refactor area", run_root=tmp_path / "runs",
                        cache_dir=tmp_path / "cache", seed=3)  # fmt: skip
    run = Run("cap", settings, tree, tree, "b", "c0ffee", None, run_dir,
              pluggy.PluginManager("pytest").hook, Tracer(run_dir / "trace.json"), {})  # fmt: skip
    run.logic = LogicResult(
        slices=[RankedSlice(slice=Slice(path="pkg/geo.py", symbol="area", kind="function",
                                        start_line=1, end_line=4, hash="0", tokens=1), score=1.0)],
        budget_tokens=4000, used_tokens=1,
    )  # fmt: skip
    summary = mc.baseline(run)
    report = read_report(run_dir / mc.DIFFERENTIAL_FILE)
    assert report is not None
    (f,) = report.functions
    assert f.sources["captured"] == 3
    assert any(n.startswith("captured 3 real call(s) of 1 function(s)") for n in summary.notes)
    again = mc.baseline(run)  # same base commit: the capture is reused, not rerun
    assert any("captured arguments reused" in n for n in again.notes)


def test_method_calls_are_captured_with_their_instance(tmp_path: Path) -> None:
    """A method is wrapped on its class: each call records 'self' first."""
    tree = make_tree(tmp_path / "tree")
    spec = tmp_path / "spec.json"
    out = tmp_path / "out"
    target = {"id": "pkg.geo.Tile.area", "module": "pkg.geo", "qualname": "Tile.area",
              "file_id": "pkg.geo.Tile.area"}  # fmt: skip
    spec.write_text(json.dumps({"out": str(out), "targets": [target]}))
    cmd = [sys.executable, "-m", "pytest",
           "-p", "pytest_orchestrator.phases.montecarlo.child.capture", "-q",
           "-p", "no:cacheprovider", "tests"]  # fmt: skip
    env = {**child_env(tree), ENV_VAR: str(spec)}
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    script = (
        "import pickle, sys; "
        "from pytest_orchestrator.phases.montecarlo.child.capture import read_captured;"
        f"calls = [pickle.loads(b) for b in read_captured(__import__('pathlib').Path({str(out)!r}),"
        " 'pkg.geo.Tile.area')]; print([(type(a[0]).__name__, a[0].size) for a, k in calls])"
    )
    shown = subprocess.run([sys.executable, "-c", script], cwd=tree, env=child_env(tree),
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert shown.stdout.strip() == "[('Tile', 5)]", shown.stderr
