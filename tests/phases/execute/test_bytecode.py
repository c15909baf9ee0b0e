"""Inner runs always write bytecode, to a private prefix, and never run a stale one."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pytest_orchestrator.phases.execute.testrun import (
    inner_environment,
    invalidate_bytecode,
    run_tests,
)
from tests.conftest import commit_all, git


def test_dont_write_bytecode_is_not_inherited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    env = inner_environment(tmp_path, tmp_path / "prefix")
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["PYTHONPYCACHEPREFIX"] == str(tmp_path / "prefix")


def test_a_same_size_edit_in_the_same_second_runs_the_new_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trap the prefix guards against: an edit keeping size and mtime (the same second)
    would reuse the old bytecode; the invalidated file is compiled afresh."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "value.py").write_text("VALUE = 1\n")
    (repo / "test_value.py").write_text(
        "from value import VALUE\n\n\ndef test_v():\n    assert VALUE == 1\n"
    )
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo)
    prefix = tmp_path / "prefix"
    kwargs = {"user_repo": tmp_path / "elsewhere", "scratch": tmp_path / "s", "pycache": prefix}
    assert run_tests(repo, label="one", **kwargs).green  # type: ignore[arg-type]
    source = repo / "value.py"
    (compiled,) = prefix.rglob(f"value.{sys.implementation.cache_tag}.pyc")
    stat = source.stat()
    source.write_text("VALUE = 2\n")  # same size...
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ...and the same mtime
    # the trap itself: without invalidation the old bytecode runs (VALUE is still 1)
    assert run_tests(repo, label="stale", **kwargs).green  # type: ignore[arg-type]
    invalidate_bytecode(prefix, repo, ["value.py"])
    assert not compiled.exists()
    fresh = run_tests(repo, label="two", **kwargs)  # type: ignore[arg-type]
    assert [t.outcome for t in fresh.tests] == ["failed"]  # VALUE is 2 now
