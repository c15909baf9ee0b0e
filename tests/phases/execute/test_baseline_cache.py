"""The cached baseline, and the gate's use of the baseline's duration and of partial runs."""

from __future__ import annotations

from pathlib import Path

from pytest_orchestrator.model import TestOutcome, TestRunResult
from pytest_orchestrator.options import GATE_TIMEOUT_FACTOR, GATE_TIMEOUT_FLOOR
from pytest_orchestrator.phases.execute import baseline_cache, gate
from pytest_orchestrator.phases.execute.baseline_cache import BaselineCache


def result(seconds: float = 1.0, *tests: tuple[str, str]) -> TestRunResult:
    return TestRunResult(
        exitstatus=0,
        tests=[TestOutcome(nodeid=n, outcome=o) for n, o in tests],  # type: ignore[arg-type]
        seconds=seconds,
    )


def test_a_result_is_kept_across_openings_under_its_key(tmp_path: Path) -> None:
    env = baseline_cache.environment()
    key = baseline_cache.key("tree1", ["baseline", "0"], env)
    cache = BaselineCache.open(tmp_path)
    assert cache.get(key) is None
    stored = result(2.5, ("t.py::a", "passed"))
    cache.put(key, stored, "run-1")
    cache.close()
    hit = BaselineCache.open(tmp_path).get(key)
    assert hit is not None
    assert (hit.result, hit.run_id) == (stored, "run-1")


def test_the_key_changes_with_the_tree_the_options_and_the_environment() -> None:
    env = baseline_cache.environment()
    assert any(entry.startswith("pytest==") for entry in env)
    base = baseline_cache.key("tree1", ["baseline", "0"], env)
    assert base == baseline_cache.key("tree1", ["baseline", "0"], list(env))
    assert base != baseline_cache.key("tree2", ["baseline", "0"], env)
    assert base != baseline_cache.key("tree1", ["baseline", "2"], env)
    assert base != baseline_cache.key("tree1", ["baseline", "0"], [*env, "numpy==9.9"])


def test_a_corrupt_or_unwritable_cache_is_a_miss(tmp_path: Path) -> None:
    (tmp_path / baseline_cache.FILENAME).write_bytes(b"not a database at all" * 100)
    cache = BaselineCache.open(tmp_path)  # rebuilt empty
    assert cache.get("k") is None
    cache.put("k", result(), "run")
    assert cache.get("k") is not None
    blocked = tmp_path / "file"
    blocked.write_text("")
    nowhere = BaselineCache.open(blocked / "cache")
    nowhere.put("k", result(), "run")
    assert nowhere.get("k") is None


def test_the_attempt_timeout_follows_the_baseline_with_a_floor() -> None:
    assert gate.timeout(result(0.5)) == GATE_TIMEOUT_FLOOR
    long = 10 * GATE_TIMEOUT_FLOOR
    assert gate.timeout(result(long)) == GATE_TIMEOUT_FACTOR * long


def test_the_change_is_measured_in_at_most_half_the_suites_test_time() -> None:
    base = result(99.0, ("t.py::a", "passed"), ("t.py::b", "passed"))
    base = base.model_copy(
        update={"tests": [t.model_copy(update={"duration": 3.0}) for t in base.tests]}
    )
    assert gate.coverage_budget(base) == 3.0  # not the run's wall time


def test_parity_of_a_partial_run_holds_only_its_selected_tests() -> None:
    base = result(1.0, ("t.py::a", "passed"), ("t.py::b_old", "passed"), ("t.py::c", "passed"))
    partial = result(1.0, ("t.py::b_new", "failed"))
    names = {"b_old": "b_new"}
    assert gate.parity(base, partial, names, only={"t.py::b_new"}) == []
    assert gate.parity(base, partial, names) == ["t.py::a: not collected", "t.py::c: not collected"]
    merged = gate.merge(result(1.0, ("t.py::a", "passed")), partial)
    assert [t.nodeid for t in merged.tests] == ["t.py::a", "t.py::b_new"]
    assert merged.seconds == 2.0
    # the affected tests' run, then the rest: a test deselected in one counts as run
    first = result(1.0, ("t.py::a", "passed"), ("t.py::c", "deselected"))
    rest = result(1.0, ("t.py::a", "deselected"), ("t.py::c", "failed"))
    both = gate.merge(first, rest)
    assert {t.nodeid: t.outcome for t in both.tests} == {"t.py::a": "passed", "t.py::c": "failed"}
