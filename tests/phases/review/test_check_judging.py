"""Which checks run, and how one tool's base and attempt runs make its check."""

from __future__ import annotations

from pathlib import Path

from pytest_orchestrator.model import CheckFinding
from pytest_orchestrator.phases.review.checks import ToolRun, configured_tools, judge
from pytest_orchestrator.phases.review.findings import DiffMap
from pytest_orchestrator.settings import Settings


def settings(tmp_path: Path, **changes: object) -> Settings:
    return Settings(command="c", run_root=tmp_path, cache_dir=tmp_path).model_copy(update=changes)


def f(line: int) -> CheckFinding:
    return CheckFinding(tool="mypy", rule="arg-type", path="a.py", line=line, message="m")


def test_tools_come_from_the_configuration_and_the_ini_key(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\n[tool.mypy]\nfiles = ['a.py']\n")
    (tmp_path / "setup.cfg").write_text("[flake8]\nmax-line-length = 100\n")
    (tmp_path / "pyrightconfig.json").write_text("{}")
    extra = ["bandit -q -r ."]
    found = configured_tools(settings(tmp_path, checks=extra), tmp_path)
    assert [t.name for t in found] == ["ruff", "flake8", "mypy", "pyright", "bandit -q -r ."]
    assert found[-1].argv(tmp_path) == ["bandit", "-q", "-r", "."]
    off = configured_tools(settings(tmp_path, checks=extra, checks_discover=False), tmp_path)
    assert [t.name for t in off] == ["bandit -q -r ."]


def test_mypy_without_configured_targets_checks_the_tree(tmp_path: Path) -> None:
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    (mypy,) = configured_tools(settings(tmp_path), tmp_path)
    assert mypy.argv(tmp_path / "cache")[-1] == "."


def test_only_added_findings_are_red() -> None:
    check = judge("mypy", ToolRun("ok", [f(1)]), ToolRun("ok", [f(1), f(5)]), DiffMap(), False)
    assert not check.ok
    assert check.findings == [f(5)]
    assert (check.base_findings, check.attempt_findings) == (1, 2)
    assert judge("mypy", ToolRun("ok", [f(1)]), ToolRun("ok", [f(1)]), DiffMap(), False).ok


def test_a_missing_tool_is_skipped_unless_required() -> None:
    missing = ToolRun("missing", detail="pyright is not installed")
    skipped = judge("pyright", missing, missing, DiffMap(), False)
    assert (skipped.ok, skipped.skipped) == (True, "pyright is not installed")
    assert not judge("pyright", missing, missing, DiffMap(), True).ok


def test_a_tool_that_ran_at_the_base_and_hangs_now_is_red() -> None:
    hung = ToolRun("timeout", detail="mypy … did not finish in time and was stopped")
    assert not judge("mypy", ToolRun("ok", []), hung, DiffMap(), False).ok
    assert judge("mypy", hung, hung, DiffMap(), False).ok  # as broken at the base: reported


def test_without_a_base_result_every_finding_counts() -> None:
    crashed = ToolRun("error", detail="crashed")
    check = judge("mypy", crashed, ToolRun("ok", [f(1)]), DiffMap(), False)
    assert not check.ok
    assert check.base_findings is None
