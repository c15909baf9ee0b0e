"""repo.git: a reading git killed by a stray signal runs again; anything else is reported."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_orchestrator.errors import RepositoryError
from pytest_orchestrator.repo.git import git

REAL_GIT = shutil.which("git")


def dying_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `git` on PATH that is killed by SIGTERM on its first call, then is the real git."""
    bin_dir, marker = tmp_path / "bin", tmp_path / "died-once"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    fake.write_text(
        f"#!/bin/sh\nif [ ! -e {marker} ]; then touch {marker}; kill -TERM $$; fi\n"
        f'exec {REAL_GIT} "$@"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return marker


def test_a_reading_command_killed_by_a_signal_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subprocess.run([REAL_GIT, "init", "-q", str(tmp_path / "repo")], check=True)
    marker = dying_git(tmp_path, monkeypatch)
    out = git("rev-parse", "--git-common-dir", cwd=tmp_path / "repo", read_only=True)
    assert out.strip() == ".git"
    assert marker.exists()  # the first call really died


def test_a_writing_command_killed_by_a_signal_is_reported_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subprocess.run([REAL_GIT, "init", "-q", str(tmp_path / "repo")], check=True)
    dying_git(tmp_path, monkeypatch)
    with pytest.raises(RepositoryError, match="killed by signal 15"):
        git("branch", "x", cwd=tmp_path / "repo")
