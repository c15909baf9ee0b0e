"""The session fixtures, driven through real pytest runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_orchestrator.guard.pressure import ENV_VAR, PressureGauge

ROOT = Path(__file__).resolve().parents[2]

USES_BOTH = """
import os
import numpy as np

def test_pressure(orchestrator_pressure):
    assert type(orchestrator_pressure).__name__ == os.environ["EXPECT_GAUGE"]
    assert orchestrator_pressure.ratio > 0

def test_cache(orchestrator_slice_cache):
    cached = orchestrator_slice_cache.get("k") is not None
    assert cached == (os.environ["EXPECT_CACHED"] == "yes")
    orchestrator_slice_cache.put("k", np.ones(256, np.float32))
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_uses_both=USES_BOTH)
    return pytester


def run(
    project: pytest.Pytester, *args: str, gauge: str = "PressureGauge", cached: bool = False
) -> pytest.RunResult:
    """Run the project's tests, telling them which gauge and cache state to expect."""
    os.environ["EXPECT_GAUGE"] = gauge  # restored by the `project` fixture's monkeypatch
    os.environ["EXPECT_CACHED"] = "yes" if cached else "no"
    return project.runpytest_subprocess("-p", "pytest_orchestrator.fixtures", *args)


def test_a_session_gets_a_running_gauge_and_a_cache_that_persists(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gauge runs for the session; the cache file under the rootdir outlives it."""
    monkeypatch.setenv("EXPECT_GAUGE", "")
    monkeypatch.setenv("EXPECT_CACHED", "")
    run(project).assert_outcomes(passed=2)
    assert (project.path / ".orchestrate" / "cache" / "slices.sqlite3").exists()
    run(project, cached=True).assert_outcomes(passed=2)


def test_xdist_workers_get_a_read_only_view_of_the_parents_gauge(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a running gauge, workers read it instead of starting (and policing) their own."""
    monkeypatch.setenv("EXPECT_GAUGE", "")
    monkeypatch.setenv("EXPECT_CACHED", "")
    with PressureGauge(interval=0.05):
        run(project, "-n", "2", gauge="PressureView").assert_outcomes(passed=2)


def test_a_bad_threshold_fails_the_gauge_with_the_fix_in_the_message(
    project: pytest.Pytester,
) -> None:
    """A threshold that is not a number errors the tests that use the gauge, saying why."""
    project.makeini("[pytest]\norchestrate_mem_threshold = 70%\n")
    result = run(project)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*ini orchestrate_mem_threshold: *'70%'; it takes a float, e.g. *_threshold = 0.7"]
    )
