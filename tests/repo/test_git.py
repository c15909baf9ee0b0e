"""repo.git: a Ctrl-C or SIGTERM meant for us never kills git; a git that dies says how."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_orchestrator.errors import RepositoryError
from pytest_orchestrator.repo.git import git

REAL_GIT = shutil.which("git")


def dying_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sig: str) -> Path:
    """A `git` on PATH that sends itself ``sig`` on its first call, then is the real git."""
    bin_dir, marker = tmp_path / "bin", tmp_path / "died-once"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    fake.write_text(  # Python, not sh: a shell unblocks signals when it starts
        f"#!{sys.executable}\nimport os, pathlib, signal, sys\n"
        f"marker = pathlib.Path({str(marker)!r})\n"
        "if not marker.exists():\n"
        f"    marker.touch()\n    os.kill(os.getpid(), signal.SIG{sig})\n"
        f"os.execv({REAL_GIT!r}, ['git', *sys.argv[1:]])\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return marker


@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_a_terminal_signal_reaching_git_does_not_kill_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sig: str
) -> None:
    """As when Ctrl-C reaches git in the instant before it leaves our process group."""
    subprocess.run([REAL_GIT, "init", "-q", str(tmp_path / "repo")], check=True)
    marker = dying_git(tmp_path, monkeypatch, sig)
    git("branch", "-m", "main", cwd=tmp_path / "repo")  # a writing command, not repeated
    assert marker.exists()  # the signal was sent
    out = git("symbolic-ref", "--short", "HEAD", cwd=tmp_path / "repo", read_only=True)
    assert out.strip() == "main"


def test_a_writing_command_killed_by_a_signal_is_reported_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subprocess.run([REAL_GIT, "init", "-q", str(tmp_path / "repo")], check=True)
    dying_git(tmp_path, monkeypatch, "KILL")
    with pytest.raises(RepositoryError, match="killed by signal 9"):
        git("branch", "x", cwd=tmp_path / "repo")


def test_exclude_adds_each_pattern_once_in_one_look_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_orchestrator.repo import git as git_mod

    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    (repo / ".git" / "info" / "exclude").write_text("# mine\n/build/")  # no final newline
    asked: list[Path] = []
    real = git_mod.common_dir
    monkeypatch.setattr(git_mod, "common_dir", lambda root: asked.append(root) or real(root))
    git_mod.exclude(repo, "/.orchestrate/", "/.orchestrate/", "/build/", "/cache/")
    git_mod.exclude(repo, "/cache/")
    git_mod.exclude(repo)  # nothing to add: git is not asked
    assert (repo / ".git" / "info" / "exclude").read_text().splitlines() == [
        "# mine",
        "/build/",
        "/.orchestrate/",
        "/cache/",
    ]
    assert asked == [repo, repo]
