"""The spec: tests named on the command line, red at the base, required green, read-only."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_orchestrator.errors import OrchestratorError
from pytest_orchestrator.model import TestOutcome, TestRunResult
from pytest_orchestrator.phases.execute import spec
from pytest_orchestrator.settings import TestSelection
from tests.conftest import commit_all, git


def result(*tests: tuple[str, str], errors: tuple[str, ...] = ()) -> TestRunResult:
    return TestRunResult(
        exitstatus=1 if any(o != "passed" for _, o in tests) or errors else 0,
        tests=[TestOutcome(nodeid=n, outcome=o) for n, o in tests],  # type: ignore[arg-type]
        collection_errors=[TestOutcome(nodeid=e, outcome="error") for e in errors],
        seconds=1.0,
    )


def test_named_paths_become_relative_to_the_repository(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    chosen = spec.selection(
        ["../tests/test_a.py::test_x[1-2]", "test_b.py", "."],
        " fee ",
        "",
        invocation=root / "pkg",
        root=root,
    )
    assert chosen.args == ["tests/test_a.py::test_x[1-2]", "pkg/test_b.py", "pkg"]
    assert chosen.keyword == "fee"
    assert chosen.pytest_args() == (["-k", "fee"], chosen.args)
    assert chosen.named


def test_nothing_named_is_no_spec(tmp_path: Path) -> None:
    assert not spec.selection([], "", "", invocation=tmp_path, root=tmp_path).named


def test_a_path_outside_the_repository_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(OrchestratorError, match="outside the repository"):
        spec.selection(["../elsewhere/test_x.py"], "", "", invocation=tmp_path, root=tmp_path)


def test_a_named_test_missing_from_the_base_commit_says_commit_it(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "tests").mkdir(parents=True)
    (repo / "tests" / "test_old.py").write_text("def test_old(): pass\n")
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo)
    (repo / "tests" / "test_new.py").write_text("def test_new(): assert False\n")  # uncommitted
    head = git(repo, "rev-parse", "HEAD").strip()
    spec.check_at_base(repo, head, TestSelection(args=["tests/test_old.py::test_old", "tests"]))
    with pytest.raises(OrchestratorError, match="Commit the failing tests first"):
        spec.check_at_base(repo, head, TestSelection(args=["tests/test_new.py::test_new"]))


def test_failures_outside_the_spec_are_refused_and_the_message_says_how_to_name() -> None:
    base = result(("tests/test_a.py::test_ok", "passed"), ("tests/test_new.py::test_red", "failed"))
    refused = spec.failing_outside(base, None)
    assert [t.nodeid for t in refused] == ["tests/test_new.py::test_red"]
    message = spec.refusal(refused, "abcdef1234567", None)
    assert 'pytest tests/test_new.py::test_red --orchestrate "..."' in message
    named = spec.Spec(
        TestSelection(args=["tests/test_new.py"]), result(("tests/test_new.py::test_red", "failed"))
    )
    assert spec.failing_outside(base, named) == []


def test_a_spec_file_that_does_not_collect_at_the_base_explains_its_error() -> None:
    base = result(("tests/test_a.py::test_ok", "passed"), errors=("tests/test_new.py",))
    named = spec.Spec(TestSelection(keyword="cap"), result(errors=("tests/test_new.py",)))
    assert named.files == {"tests/test_new.py"}
    assert spec.failing_outside(base, named) == []
    other = result(errors=("tests/test_other.py",))
    assert [t.nodeid for t in spec.failing_outside(other, named)] == ["tests/test_other.py"]


def test_judge_follows_renames_and_names_every_spec_test() -> None:
    named = spec.Spec(
        TestSelection(args=["tests/test_fee.py"]),
        result(
            ("tests/test_fee.py::test_fee[old]", "failed"), ("tests/test_fee.py::test_b", "failed")
        ),
    )
    after = result(
        ("tests/test_fee.py::test_fee[new]", "passed"), ("tests/test_fee.py::test_c", "passed")
    )
    judged = spec.judge(named, after, {"old": "new"})
    assert [(t.nodeid, t.base, t.after) for t in judged] == [
        ("tests/test_fee.py::test_fee[new]", "failed", "passed"),
        ("tests/test_fee.py::test_b", "failed", "not collected"),
        ("tests/test_fee.py::test_c", "not collected", "passed"),
    ]
    assert spec.unmet(judged) == ["tests/test_fee.py::test_b: not collected"]
    assert spec.unmet([]) == ["the named tests select no test after the change"]


def test_editing_or_deleting_a_spec_file_is_a_finding() -> None:
    named = spec.Spec(
        TestSelection(args=["tests/test_fee.py::test_fee"]),
        result(("tests/test_fee.py::test_fee", "failed")),
    )
    found = spec.edit_findings(
        [("M", "tests/test_fee.py"), ("M", "src/fee.py"), ("D", "tests/test_fee.py")], named
    )
    assert [(f.path, f.kind) for f in found] == [("tests/test_fee.py", "spec edited")] * 2
    assert "delete" in found[1].detail
