"""The affected group of the gate's one run, read back as a run of its own."""

from __future__ import annotations

from pytest_orchestrator.model import TestOutcome, TestRunResult
from pytest_orchestrator.phases.execute.child.inner import selected
from pytest_orchestrator.phases.execute.gate import first_part


def whole(*tests: tuple[str, str], collection_errors: int = 0) -> TestRunResult:
    return TestRunResult(
        exitstatus=0,
        tests=[TestOutcome(nodeid=n, outcome=o) for n, o in tests],
        collection_errors=[
            TestOutcome(nodeid=f"tests/broken_{i}.py", outcome="error")
            for i in range(collection_errors)
        ],
        seconds=3.0,
    )


def test_node_ids_and_whole_files_select() -> None:
    wanted = {"tests/test_a.py::test_x", "tests/test_b.py"}
    assert selected("tests/test_a.py::test_x", wanted)
    assert not selected("tests/test_a.py::test_y", wanted)
    assert selected("tests/test_b.py::TestC::test_z[1]", wanted)
    assert not selected("tests/test_b2.py::test_z", wanted)


def test_the_group_is_green_when_its_tests_are() -> None:
    run = whole(("tests/test_a.py::test_x", "passed"), ("tests/test_c.py::test_r", "failed"))
    part = first_part(run, ["tests/test_a.py::test_x"])
    assert [t.nodeid for t in part.tests] == ["tests/test_a.py::test_x"]
    assert part.green
    assert part.exitstatus == 0


def test_a_failed_or_erroring_member_makes_it_red() -> None:
    for outcome in ("failed", "error", "xpassed"):
        run = whole(("tests/test_a.py::test_x", outcome), ("tests/test_c.py::test_r", "passed"))
        part = first_part(run, ["tests/test_a.py"])
        assert not part.green, outcome
        assert part.exitstatus == 1, outcome


def test_a_collection_error_makes_it_red() -> None:
    """The run stops after the group on a collection error too: the group is red then."""
    run = whole(("tests/test_a.py::test_x", "passed"), collection_errors=1)
    assert not first_part(run, ["tests/test_a.py"]).green


def test_deselected_tests_are_not_members() -> None:
    run = whole(("tests/test_a.py::test_x", "deselected"), ("tests/test_a.py::test_y", "passed"))
    part = first_part(run, ["tests/test_a.py"])
    assert [t.nodeid for t in part.tests] == ["tests/test_a.py::test_y"]
