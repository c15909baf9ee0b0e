"""The Monte Carlo child: its context, its hook loading, and what it writes."""

from __future__ import annotations

import json
import os
import py_compile
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytest_orchestrator.guard.children import child_env
from pytest_orchestrator.hookspecs import child_hooks
from pytest_orchestrator.model import SimulationResult
from pytest_orchestrator.phases.montecarlo.child.simulation import (
    MonteCarloContext,
    is_close,
    normalise_results,
)


def ctx(**kwargs: object) -> MonteCarloContext:
    defaults: dict[str, object] = {
        "rng": np.random.default_rng(1), "seed": 1, "side": "base", "deadline": 1e18,
        "pressure": lambda: None,
    }  # fmt: skip
    defaults.update(kwargs)
    return MonteCarloContext(**defaults)  # type: ignore[arg-type]


def test_samples_is_n_without_pressure_and_never_below_one() -> None:
    """With time and memory to spare, you get what you ask for; never zero."""
    c = ctx()
    assert c.samples(1000) == 1000
    assert c.samples(0) == 1


def test_samples_shrink_under_memory_pressure() -> None:
    """Above the soft memory mark, samples(n) returns a quarter and should_stop() is true."""
    c = ctx(pressure=lambda: 0.65)
    assert c.samples(1000) == 250
    assert c.should_stop()


def test_scale_applies_to_samples() -> None:
    """Optimise's scale shares the cap among grid points."""
    assert ctx(scale=0.1).samples(1000) == 100


def test_should_stop_after_the_deadline() -> None:
    """The deadline passed: stop drawing; time_left() is never negative."""
    c = ctx(deadline=0.0)
    assert c.should_stop()
    assert c.time_left() == 0.0


def test_candidate_replays_the_base_decisions() -> None:
    """The candidate draws exactly as many samples as the base did, even without pressure."""
    base = ctx(pressure=lambda: 0.65)
    base.samples(1000)
    base.should_stop()
    cand = ctx(side="candidate", replay=list(base.decisions))
    assert cand.samples(1000) == 250
    assert cand.should_stop() is True
    assert not cand.replay_broken


def test_replay_breaks_loudly_when_the_candidate_asks_something_else() -> None:
    """A candidate asking for a different n is noted, and answered live."""
    cand = ctx(side="candidate", replay=[["samples", 1000, 250]])
    assert cand.samples(500) == 500
    assert "samples(500)" in cand.replay_broken


def test_only_orchestrator_hooks_of_the_conftest_are_registered(tmp_path: Path) -> None:
    """Fixtures and pytest hooks in the conftest mean nothing to the child."""
    (tmp_path / "conftest.py").write_text(
        "import pytest\n"
        "def pytest_configure(config): raise AssertionError('not here')\n"
        "@pytest.fixture\ndef thing(): return 1\n"
        "def pytest_orchestrator_montecarlo(mc):\n    return [{'name': 'a', 'samples': 1,"
        " 'metrics': {'m': 1.0}}]\n"
    )
    pm, errors = child_hooks(tmp_path)
    assert errors == []
    (impl,) = pm.hook.pytest_orchestrator_montecarlo.get_hookimpls()
    assert impl.function.__name__ == "pytest_orchestrator_montecarlo"


def test_results_are_flattened_and_validated() -> None:
    """Dicts and SimulationResults both count; bad ones and duplicate names are reported."""
    raw = [
        [SimulationResult(name="a", samples=1, metrics={"m": 1.0}), {"name": "b", "samples": 2,
         "metrics": {"n": 2.0}}],
        [{"name": "bad", "samples": -1, "metrics": {}}, {"name": "a", "samples": 1, "metrics": {}}],
    ]  # fmt: skip
    results, errors = normalise_results(raw)
    assert [r["name"] for r in results] == ["a", "b", "a"]
    assert any("invalid simulation result" in e for e in errors)
    assert any("'a' is used more than once" in e for e in errors)


@pytest.mark.parametrize(
    ("a", "b", "close"),
    [(1.0, 1.0 + 1e-12, True), (1.0, 1.1, False), (float("nan"), float("nan"), True),
     (float("inf"), float("inf"), True), (float("nan"), 1.0, False)],
)  # fmt: skip
def test_metric_tolerance(a: float, b: float, close: bool) -> None:
    """Metrics agree within rtol/atol; NaN agrees only with NaN."""
    assert is_close(a, b, 1e-9, 1e-12) is close


def test_child_runs_the_edited_source_not_a_stale_pyc(tmp_path: Path) -> None:
    """A same-size edit with the old mtime, next to a valid-looking .pyc, is still seen."""
    (tmp_path / "mod.py").write_text("VALUE = 1\n")
    py_compile.compile(str(tmp_path / "mod.py"))
    stat = (tmp_path / "mod.py").stat()
    (tmp_path / "mod.py").write_text("VALUE = 2\n")
    os.utime(tmp_path / "mod.py", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (tmp_path / "conftest.py").write_text(
        "def pytest_orchestrator_montecarlo(mc):\n    from mod import VALUE\n"
        "    return [{'name': 'v', 'samples': 1, 'metrics': {'value': float(VALUE)}}]\n"
    )
    out = tmp_path / "out.json"
    cmd = [sys.executable, "-m", "pytest_orchestrator.phases.montecarlo.child.simulation",
           "simulate", "--side", "base", "--seed", "3", "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, cwd=tmp_path, env=child_env(tmp_path), check=True, timeout=60)
    record = json.loads(out.read_text())
    assert record["results"][0]["metrics"] == {"value": 2.0}
    assert record["seed"] == 3
