"""The worktree: isolated from the checkout, reset between attempts, gone afterwards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_orchestrator.worktree import Worktree, clean_stale, slugify
from tests.conftest import git, snapshot


@pytest.mark.parametrize(
    ("command", "slug"),
    [
        (
            "Rename calculate_position_size to position_size, test at scale, post PR",
            "rename-calculate-position-size-to-position-size",
        ),
        ("Fix: the bug", "fix"),
        ("!!!", "change"),
        ("x" * 80, "x" * 60),
    ],
)
def test_branch_slugs_come_from_the_first_clause(command: str, slug: str) -> None:
    assert slugify(command) == slug


def test_a_worktree_is_outside_the_checkout_and_leaves_nothing(
    make_repo: Callable[..., Path],
) -> None:
    """Edits in the worktree never show in the checkout; remove() takes worktree, branch
    and lease away."""
    repo = make_repo()
    before = snapshot(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = Worktree.create(repo, head, "Rename add to plus", "run1")
    assert not tree.path.is_relative_to(repo)
    (tree.path / "calc.py").write_text("changed\n")
    (tree.path / "new.py").write_text("new\n")
    assert tree.changed_files() == ["calc.py", "new.py"]
    assert {k: v for k, v in snapshot(repo).items() if not k.startswith("<")} == {
        k: v for k, v in before.items() if not k.startswith("<")
    }
    tree.reset()
    assert tree.changed_files() == []
    assert not (tree.path / "new.py").exists()
    tree.remove()
    assert snapshot(repo) == before
    assert not (repo / ".git" / "orchestrate").exists()


def test_a_kept_branch_survives_removal(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = Worktree.create(repo, head, "Rename add to plus", "run1")
    (tree.path / "calc.py").write_text("changed\n")
    commit = tree.commit("change")
    tree.keep_branch(commit)
    tree.remove()
    assert git(repo, "rev-parse", "orchestrate/rename-add-to-plus").strip() == commit
    assert git(repo, "worktree", "list").count("\n") == 1


def test_taken_branch_names_get_a_suffix(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    git(repo, "branch", "orchestrate/rename-add-to-plus")
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = Worktree.create(repo, head, "Rename add to plus", "run1")
    try:
        assert tree.branch == "orchestrate/rename-add-to-plus-2"
    finally:
        tree.remove()


def test_leases_of_live_processes_are_left_alone(make_repo: Callable[..., Path]) -> None:
    """clean_stale only removes what dead owners left; a live run keeps its worktree."""
    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = Worktree.create(repo, head, "Rename add to plus", "run1")
    try:
        assert clean_stale(repo) == []
        assert tree.path.is_dir()
    finally:
        tree.remove()


def test_a_worktree_on_an_unknown_commit_fails_cleanly(make_repo: Callable[..., Path]) -> None:
    """A failed creation leaves no branch, lease or temp dir behind."""
    repo = make_repo()
    before = snapshot(repo)
    with pytest.raises(Exception, match="worktree add"):
        Worktree.create(repo, "0" * 40, "Rename add to plus", "run1")
    assert snapshot(repo) == before
    assert not (repo / ".git" / "orchestrate").exists()


def test_changed_lines_are_the_base_lines_each_hunk_touches(
    make_repo: Callable[..., Path],
) -> None:
    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = Worktree.create(repo, head, "Rename add to plus", "run1")
    try:
        calc = tree.path / "calc.py"
        lines = calc.read_text().splitlines()
        lines[5] = "def plus(a, b):"  # line 6
        calc.write_text("\n".join(lines) + "\n")
        (tree.path / "new.py").write_text("x = 1\n")
        assert tree.changed_lines() == {"calc.py": {6}}
    finally:
        tree.remove()
