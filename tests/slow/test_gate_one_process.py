"""The gate's one run with the affected tests first: order and leaked state cannot hide a
broken change, a red affected group stops the run, and coverage measures that group only.

Each test builds a small project whose tests share module state (a test that fails only if
another ran first, one that passes only if another ran first) and runs it the way the gate
does (`run_tests` with ``first``: the affected tests)."""

from __future__ import annotations

from pathlib import Path

from pytest_orchestrator.model import TestRunResult
from pytest_orchestrator.phases.execute.gate import first_part
from pytest_orchestrator.phases.execute.impact import _combined
from pytest_orchestrator.phases.execute.testrun import Coverage, run_tests

CALC = """\
MODE = ["exact"]
CACHE = {}


def set_mode(mode):
    MODE[0] = mode


def value():
    return 1 if MODE[0] == "exact" else 2


def scaled(x):
    return x * value()


def warm():
    CACHE["unit"] = 1


def other():
    return "not affected"
"""

LEAKS = """\
def scaled(x):
    set_mode("loose")  # the broken change: leaks a mode every later caller of value() sees
    return x


"""

NEEDS_WARM = """\
def scaled(x):
    return x * CACHE["unit"]  # the broken change: works only once warm() has run


"""


def project(root: Path, calc: str, tests: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "calc.py").write_text(calc)
    (root / "tests").mkdir()
    for name, body in tests.items():
        (root / "tests" / name).write_text("import calc\n\n" + body)
    return root


def changed(calc: str, new_scaled: str) -> str:
    """``calc`` with ``scaled`` replaced (the attempt's change)."""
    start = calc.index("def scaled(")
    end = calc.index("def warm(")
    return calc[:start] + new_scaled + calc[end:]


def run(root: Path, tmp: Path, first: list[str] | None, **kwargs: object) -> TestRunResult:
    return run_tests(
        root,
        user_repo=tmp / "user",
        scratch=tmp / "scratch",
        label="gate1",
        first=first,
        **kwargs,  # type: ignore[arg-type]
    )


def outcomes(result: TestRunResult) -> dict[str, str]:
    return {t.nodeid.split("::")[-1]: t.outcome for t in result.tests}


POLLUTED = {
    "test_1_rest.py": "def test_before():\n    assert calc.value() == 1\n",
    "test_2_affected.py": "def test_scaled():\n    assert calc.scaled(3) in (3, 6)\n",
    "test_3_rest.py": "def test_after():\n    assert calc.value() == 1\n",
}


def test_state_the_changed_code_leaks_into_a_later_test_is_seen(tmp_path: Path) -> None:
    """A test that fails only if another ran first: the change makes the affected test leak
    a mode that breaks a later test of the rest (as it would in the base's order). In one
    process the rest runs after the affected tests, so the gate is red; the affected tests
    and the rest in two fresh processes would both have passed."""
    root = project(tmp_path / "wt", changed(CALC, LEAKS), POLLUTED)
    result = run(root, tmp_path, ["tests/test_2_affected.py"])
    assert outcomes(result) == {"test_scaled": "passed", "test_before": "failed",
                                "test_after": "failed"}  # fmt: skip
    assert not result.green
    # the same tests split over two processes, as the gate ran them before: all green
    alone = run(root, tmp_path, None, paths=["tests/test_2_affected.py"])
    rest = run(root, tmp_path, None, skip=["tests/test_2_affected.py::test_scaled"])
    assert alone.green
    assert rest.green


def test_each_group_keeps_the_base_order(tmp_path: Path) -> None:
    """A test that passes only if another ran first: the change makes the first affected test
    depend on state a later affected test sets up. The affected group runs in the base's
    order, so the dependent test still runs before it and fails, as in the base's order."""
    tests = {
        "test_1_affected.py": "def test_uses():\n    assert calc.scaled(2) == 2\n",
        "test_2_rest.py": "def test_other():\n    assert calc.other()\n",
        "test_3_affected.py": (
            "def test_warms():\n    calc.warm()\n    assert calc.scaled(1) == 1\n"
        ),
    }
    root = project(tmp_path / "wt", changed(CALC, NEEDS_WARM), tests)
    result = run(root, tmp_path, ["tests/test_1_affected.py", "tests/test_3_affected.py"])
    assert [t.nodeid.split("::")[-1] for t in result.tests] == ["test_uses", "test_warms"]
    assert outcomes(result) == {"test_uses": "failed", "test_warms": "passed"}
    assert not result.green


def test_a_red_affected_group_stops_the_run_before_the_rest(tmp_path: Path) -> None:
    """The rest of the suite is neither run nor reported once an affected test failed."""
    tests = {
        "test_1_rest.py": "def test_rest():\n    assert calc.other()\n",
        "test_2_affected.py": "def test_scaled():\n    assert calc.scaled(3) == 4\n",
        "test_3_rest.py": "def test_more():\n    assert calc.other()\n",
    }
    root = project(tmp_path / "wt", CALC, tests)
    result = run(root, tmp_path, ["tests/test_2_affected.py"])
    assert outcomes(result) == {"test_scaled": "failed"}
    assert result.exitstatus == 1
    part = first_part(result, ["tests/test_2_affected.py"])
    assert not part.green
    assert [t.outcome for t in part.tests] == ["failed"]


def test_a_green_affected_group_goes_on_with_the_rest_each_test_once(tmp_path: Path) -> None:
    """Affected first, then the rest in the base's order, in one process: a test of the rest
    that passes only if an earlier test of the rest ran first still passes."""
    tests = {
        "test_1_rest.py": "def test_sets():\n    calc.warm()\n",
        "test_2_affected.py": "def test_scaled():\n    assert calc.scaled(3) == 3\n",
        "test_3_rest.py": "def test_needs():\n    assert calc.CACHE['unit'] == 1\n",
    }
    root = project(tmp_path / "wt", CALC, tests)
    result = run(root, tmp_path, ["tests/test_2_affected.py"])
    assert [t.nodeid.split("::")[-1] for t in result.tests] == [
        "test_scaled", "test_sets", "test_needs",
    ]  # fmt: skip
    assert result.green
    part = first_part(result, ["tests/test_2_affected.py"])
    assert [t.nodeid.split("::")[-1] for t in part.tests] == ["test_scaled"]
    assert part.green


def test_coverage_measures_the_affected_group_only(tmp_path: Path) -> None:
    """The change's coverage comes from the affected tests: the rest runs untraced (the
    line only the rest runs is not in the data), the module's import-time lines are."""
    tests = {
        "test_1_affected.py": "def test_scaled():\n    assert calc.scaled(3) == 3\n",
        "test_2_rest.py": "def test_other():\n    assert calc.other()\n",
    }
    root = project(tmp_path / "wt", CALC, tests)
    data = tmp_path / "cov" / ".coverage"
    data.parent.mkdir()
    calc = str((root / "calc.py").resolve())
    result = run(root, tmp_path, ["tests/test_1_affected.py"], coverage=Coverage(data, [calc]))
    assert result.green
    assert len(result.tests) == 2
    measured = _combined(data)
    assert measured is not None
    lines = set(measured.lines(calc) or [])
    source = CALC.splitlines()
    line_of = {text: n for n, text in enumerate(source, 1)}
    assert line_of["def scaled(x):"] in lines  # import time
    assert line_of["    return x * value()"] in lines  # the affected test
    assert line_of['    return "not affected"'] not in lines  # only the rest runs it


def test_tests_already_run_are_skipped_and_the_rest_still_follows(tmp_path: Path) -> None:
    """With named tests, the spec ran in a process of its own: the one run skips them
    (reported deselected, not run again) and still puts the affected tests first."""
    tests = {
        "test_1_spec.py": "def test_spec():\n    assert calc.other()\n",
        "test_2_rest.py": "def test_rest():\n    assert calc.other()\n",
        "test_3_affected.py": "def test_scaled():\n    assert calc.scaled(3) == 3\n",
    }
    root = project(tmp_path / "wt", CALC, tests)
    result = run(
        root, tmp_path, ["tests/test_3_affected.py"], skip=["tests/test_1_spec.py::test_spec"]
    )
    assert [(t.nodeid.split("::")[-1], t.outcome) for t in result.tests] == [
        ("test_scaled", "passed"), ("test_rest", "passed"), ("test_spec", "deselected"),
    ]  # fmt: skip
