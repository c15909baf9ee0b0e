"""repo.git.export: a commit's files written by git into a directory, the repository untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_orchestrator.errors import RepositoryError
from pytest_orchestrator.repo.git import export
from tests.conftest import commit_all, git


def test_the_commit_is_written_as_committed_and_the_checkout_is_left_alone(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "a.py").write_text("A = 1\n")
    (repo / "run.sh").write_text("#!/bin/sh\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "link").symlink_to("pkg/a.py")
    git(repo, "init", "-q")
    commit_all(repo)
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "pkg" / "a.py").write_text("A = 2\n")  # edits after the base: not exported
    (repo / "pkg" / "b.py").write_text("B = 1\n")
    git(repo, "add", "pkg/b.py")
    status = git(repo, "status", "--porcelain")

    dest = tmp_path / "scratch" / "base"
    export(repo, base, dest)
    assert (dest / "pkg" / "a.py").read_text() == "A = 1\n"
    assert not (dest / "pkg" / "b.py").exists()
    assert os.access(dest / "run.sh", os.X_OK)
    assert os.readlink(dest / "link") == "pkg/a.py"
    assert not (dest / ".git").exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["base"]  # no index left
    assert git(repo, "status", "--porcelain") == status  # index and files as they were
    assert (repo / "pkg" / "a.py").read_text() == "A = 2\n"

    (dest / "pkg" / "a.py").write_text("spoilt\n")
    (dest / "run.sh").unlink()
    export(repo, base, dest, ["pkg/a.py"])  # just these paths, put back
    assert (dest / "pkg" / "a.py").read_text() == "A = 1\n"
    assert not (dest / "run.sh").exists()


def test_an_unknown_commit_raises(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text("")
    git(repo, "init", "-q")
    commit_all(repo)
    with pytest.raises(RepositoryError):
        export(repo, "no-such-commit", tmp_path / "dest")
    assert not (tmp_path / ".dest.index").exists()
