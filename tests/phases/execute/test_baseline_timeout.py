"""The baseline's own timeout: obeyed when set, else sized from earlier baselines' durations
(injected here as stored results; nothing is timed)."""

from __future__ import annotations

from pathlib import Path

from pytest_orchestrator.model import TestRunResult
from pytest_orchestrator.options import DEFAULT_TEST_TIMEOUT, GATE_TIMEOUT_FACTOR
from pytest_orchestrator.phases.execute import baseline_cache
from pytest_orchestrator.phases.execute.baseline import FIRST_TIMEOUT, baseline_timeout
from pytest_orchestrator.phases.execute.baseline_cache import BaselineCache


def test_a_timeout_the_user_set_is_obeyed_whatever_earlier_runs_took() -> None:
    limit = baseline_timeout(120.0, recent=5000.0)
    assert limit.seconds == 120.0
    assert "orchestrate_test_timeout" in limit.why


def test_without_an_earlier_baseline_a_first_run_gets_the_generous_default() -> None:
    limit = baseline_timeout(DEFAULT_TEST_TIMEOUT, recent=None)
    assert limit.seconds == FIRST_TIMEOUT > DEFAULT_TEST_TIMEOUT
    assert "orchestrate_test_timeout = SECONDS" in limit.hint()


def test_a_long_suite_seen_before_gets_a_multiple_of_its_duration() -> None:
    limit = baseline_timeout(DEFAULT_TEST_TIMEOUT, recent=900.0)
    assert limit.seconds == GATE_TIMEOUT_FACTOR * 900.0
    assert "900s" in limit.hint()


def test_a_quick_suite_still_gets_at_least_the_default_yet_a_hung_one_is_cut_off() -> None:
    limit = baseline_timeout(DEFAULT_TEST_TIMEOUT, recent=2.0)
    assert limit.seconds == DEFAULT_TEST_TIMEOUT  # finite: a hung suite is stopped


def test_the_cache_reports_the_longest_of_the_latest_durations(tmp_path: Path) -> None:
    cache = BaselineCache.open(tmp_path)
    assert cache.recent_seconds() is None
    env = baseline_cache.environment()
    for n, seconds in enumerate([700.0, 40.0, 3.0]):
        key = baseline_cache.key(f"tree{n}", ["baseline", "0"], env)
        cache.put(key, TestRunResult(exitstatus=0, tests=[], seconds=seconds), f"run-{n}")
    assert cache.recent_seconds() == 700.0
    assert cache.recent_seconds(entries=1) in {700.0, 40.0, 3.0}
    cache.close()
    assert BaselineCache(None).recent_seconds() is None
