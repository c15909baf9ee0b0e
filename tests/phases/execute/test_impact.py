"""The test-impact map: per-test coverage of the base, keyed by blob id, and what it selects."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_orchestrator.phases.execute import impact
from pytest_orchestrator.phases.execute.testrun import Coverage, run_tests
from tests.conftest import commit_all, git

CALC = '''"""calc"""

RATE = 2


def add(a, b):
    return a + b


def mul(a, b):
    total = 0
    for _ in range(b):
        total = add(total, a)
    return total


def unused(x):
    return x
'''
TESTS = """from calc import add, mul


def test_add():
    assert add(1, 2) == 3


def test_mul():
    assert mul(2, 3) == 6
"""
OTHER = """def test_alone():
    assert True
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text(CALC)
    (root / "tests" / "test_calc.py").write_text(TESTS)
    (root / "tests" / "test_other.py").write_text(OTHER)
    git(root, "init", "-q", "-b", "main")
    commit_all(root)
    return root


def measured_map(repo: Path, tmp_path: Path) -> tuple[impact.ImpactMap, dict[str, str]]:
    """Run the suite once with per-test contexts, as the baseline does, and record it."""
    blobs = impact.source_blobs(repo, "HEAD")
    data = tmp_path / "cov" / ".coverage"
    data.parent.mkdir()
    files = [str(repo / p) for p in blobs]
    base = run_tests(
        repo,
        user_repo=tmp_path / "elsewhere",
        scratch=tmp_path / "scratch",
        label="baseline",
        coverage=Coverage(data, files, contexts=True),
    )
    assert base.passed == 3
    impacts = impact.ImpactMap.open(tmp_path / "cache")
    assert impacts.unmeasured(blobs) == ["calc.py"]
    assert impacts.record(data, repo, blobs, sorted(blobs)) > 0
    assert impacts.unmeasured(blobs) == []
    return impacts, blobs


def test_only_source_files_are_measured(repo: Path) -> None:
    assert sorted(impact.source_blobs(repo, "HEAD")) == ["calc.py"]


def test_the_map_names_the_tests_running_each_function(repo: Path, tmp_path: Path) -> None:
    impacts, blobs = measured_map(repo, tmp_path)
    blob = blobs["calc.py"]
    add_body = CALC.splitlines().index("    return a + b") + 1
    assert impacts.tests_for(blob, [add_body]) == {
        "tests/test_calc.py::test_add",
        "tests/test_calc.py::test_mul",  # mul calls add
    }
    mul_loop = CALC.splitlines().index("        total = add(total, a)") + 1
    assert impacts.tests_for(blob, [mul_loop]) == {"tests/test_calc.py::test_mul"}
    unused_body = CALC.splitlines().index("    return x") + 1
    assert impacts.tests_for(blob, [unused_body]) == set()
    impacts.close()
    reopened = impact.ImpactMap.open(tmp_path / "cache")  # kept across runs, by content
    assert reopened.unmeasured(blobs) == []
    assert impacts.tests_for(blob, [mul_loop]) == set()  # closed: a miss, not an error
    assert reopened.tests_for(blob, None) == {
        "tests/test_calc.py::test_add",
        "tests/test_calc.py::test_mul",
    }


def test_a_changed_function_selects_its_tests_and_the_change_coverage(
    repo: Path, tmp_path: Path
) -> None:
    impacts, blobs = measured_map(repo, tmp_path)
    (repo / "calc.py").write_text(
        CALC.replace("        total = add(total, a)", "        total = add(a, total)")
    )
    (repo / "tests" / "test_new.py").write_text("def test_new():\n    assert 1\n")
    found = impact.changes(repo, "HEAD")
    loop = CALC.splitlines().index("        total = add(total, a)") + 1
    assert found.old == {"calc.py": {loop}}
    assert found.new["calc.py"] == {loop}
    assert found.added == {"tests/test_new.py"}
    baseline = run_tests(
        repo, user_repo=tmp_path / "elsewhere", scratch=tmp_path / "s2", label="base"
    )
    chosen = impact.affected(
        found,
        baseline=baseline,
        impact=impacts,
        blobs=blobs,
        base_source={"calc.py": CALC},
        names={},
        exclude=set(),
    )
    assert chosen.ids == ["tests/test_calc.py::test_mul"]
    assert chosen.files == ["tests/test_calc.py", "tests/test_new.py"]
    assert chosen.keep() == ["tests/test_calc.py::test_mul", "tests/test_new.py"]
    # the affected run: only those tests of the collected files run
    data = tmp_path / "gate" / ".coverage"
    data.parent.mkdir()
    first = run_tests(
        repo,
        user_repo=tmp_path / "elsewhere",
        scratch=tmp_path / "s3",
        label="affected",
        paths=chosen.files,
        keep=chosen.keep(),
        coverage=Coverage(data, [str(repo / "calc.py")]),
    )
    ran = {t.nodeid: t.outcome for t in first.tests}
    assert ran == {
        "tests/test_calc.py::test_mul": "passed",
        "tests/test_calc.py::test_add": "deselected",
        "tests/test_new.py::test_new": "passed",
    }
    covered = impact.change_coverage(data, repo, {"calc.py": found.new["calc.py"]})
    assert (covered.covered, covered.total, covered.uncovered) == (1, 1, {})
    # then the rest of the suite, without what already ran
    done = [nodeid for nodeid, outcome in ran.items() if outcome != "deselected"]
    rest = run_tests(
        repo, user_repo=tmp_path / "elsewhere", scratch=tmp_path / "s4", label="rest", skip=done
    )
    assert {t.nodeid: t.outcome for t in rest.tests} == {
        "tests/test_calc.py::test_mul": "deselected",
        "tests/test_calc.py::test_add": "passed",
        "tests/test_new.py::test_new": "deselected",
        "tests/test_other.py::test_alone": "passed",
    }


def test_a_change_outside_any_function_reaches_the_whole_file() -> None:
    assert impact.widen(CALC, {3}) is None
    start = CALC.splitlines().index("def mul(a, b):") + 1
    assert impact.widen(CALC, {start + 2}) == set(range(start, start + 5))
    assert impact.widen("def broken(:\n", {1}) is None


def test_uncovered_changed_lines_are_listed(repo: Path, tmp_path: Path) -> None:
    (repo / "calc.py").write_text(
        CALC + "\n\ndef fresh(x):\n    if x:\n        return 1\n    return 2\n"
    )
    found = impact.changes(repo, "HEAD")
    data = tmp_path / "gate" / ".coverage"
    data.parent.mkdir()
    run_tests(
        repo,
        user_repo=tmp_path / "elsewhere",
        scratch=tmp_path / "s",
        label="gate",
        coverage=Coverage(data, [str(repo / "calc.py")]),
    )
    covered = impact.change_coverage(data, repo, found.new)
    lines = len(CALC.splitlines())
    # `def fresh` runs at import; its body never does
    assert (covered.covered, covered.total) == (1, 4)
    assert covered.uncovered == {"calc.py": [lines + 4, lines + 5, lines + 6]}
