"""Worktrees at scale, end to end: a dry run or a refusal makes no worktree and writes nothing
in the checkout; a real run takes a persistent worktree slot, which the next run resets
instead of checking every file out again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_orchestrator.repo.worktree import slots_home
from tests.conftest import git, snapshot

RENAME = "Rename add to plus"
# Loaded by the controller from the checkout, read in place: no bytecode may be written there.
CONFTEST = """\
def pytest_orchestrator_phase_done(run, phase, summary, seconds):
    (run.run_dir / f"hook-{phase.value}").touch()
"""


def untouched(repo: Path, before: dict[str, str]) -> None:
    assert snapshot(repo) == before
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not slots_home(repo).exists()
    assert not (repo / ".git" / "orchestrate").exists()
    assert not [p for p in repo.rglob("__pycache__") if ".orchestrate" not in p.parts]


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["--orchestrate", RENAME, "--orchestrate-dry-run"], 0),
        (["--orchestrate", "Make the calculator smarter about rounding"], 4),
    ],
    ids=["dry-run", "refusal"],
)
def test_a_dry_run_or_a_refusal_makes_no_worktree_and_writes_nothing(
    pytester: pytest.Pytester, make_repo: Callable[..., Path], args: list[str], status: int
) -> None:
    repo = make_repo({"conftest.py": CONFTEST})
    before = snapshot(repo)
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == status, result.stdout.str()
    assert "orchestrate: worktree" not in result.stdout.str()
    (run,) = (repo / ".orchestrate" / "runs").iterdir()
    assert (run / "hook-map").exists()  # the conftest's hooks were loaded, from the checkout
    untouched(repo, before)


def test_a_dirty_checkout_is_not_read_the_base_comes_from_a_worktree(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """Uncommitted changes are not the base: the dry run reads a worktree instead."""
    repo = make_repo()
    (repo / "calc.py").write_text((repo / "calc.py").read_text().replace("def add", "def added"))
    result = pytester.runpytest_subprocess("--orchestrate", RENAME, "--orchestrate-dry-run")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*the base is read from a worktree (1 path(s) differ from the base)*", "*checked out*"]
    )
    assert '"symbol": "add"' in result.stdout.str()  # planned against the base, not the edit


def test_a_second_run_resets_the_persistent_worktree_instead_of_checking_it_out(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    repo = make_repo({"notes/README.md": "unrelated\n"})
    before = snapshot(repo)
    first = pytester.runpytest_subprocess("--orchestrate", RENAME)
    assert first.ret == 0, first.stdout.str()
    tree = slots_home(repo) / "0" / "tree"
    first.stdout.fnmatch_lines([f"*orchestrate: worktree {tree} (checked out*"])
    stat = (tree / "notes" / "README.md").stat()
    second = pytester.runpytest_subprocess("--orchestrate", RENAME)
    assert second.ret == 0, second.stdout.str()
    # git rewrote the two files the first run's rename changed, nothing else
    second.stdout.fnmatch_lines(
        [f"*worktree {tree} (reused: 2 file(s) differed from the base and were reset*"]
    )
    again = (tree / "notes" / "README.md").stat()
    assert (again.st_ino, again.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    after = snapshot(repo)
    assert after.pop("<branches>").split() == [
        "*",
        "main",
        "orchestrate/rename-add-to-plus",
        "orchestrate/rename-add-to-plus-2",
    ]
    before.pop("<branches>")
    assert after == before
    assert not (repo / ".git" / "orchestrate").exists()
