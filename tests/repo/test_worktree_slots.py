"""Persistent worktree slots: reused by the next run (only what differs is rewritten), never
shared by two live runs, rebuilt when damaged."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_orchestrator.errors import RepositoryError
from pytest_orchestrator.repo import worktree
from pytest_orchestrator.repo.worktree import Worktree, slots_home
from tests.conftest import commit_all, git, snapshot


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def test_the_next_run_resets_the_slot_and_rewrites_only_what_differs(
    make_repo: Callable[..., Path],
) -> None:
    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    first = Worktree.create(repo, head, "Rename add to plus", "run1")
    (first.path / "calc.py").write_text("changed\n")
    (first.path / "untracked.py").write_text("x = 1\n")
    (first.path / "build").mkdir()
    (first.path / "build" / "out.bin").write_bytes(b"\0")
    untouched = _stat(first.path / "tests" / "test_calc.py")
    first.remove()

    second = Worktree.create(repo, head, "Rename add to plus", "run2")
    try:
        assert (second.path, second.reused, second.rewritten) == (first.path, True, ["calc.py"])
        assert (second.path / "calc.py").read_text() == (repo / "calc.py").read_text()
        assert not (second.path / "untracked.py").exists()
        assert not (second.path / "build").exists()
        assert _stat(second.path / "tests" / "test_calc.py") == untouched  # not written again
        assert git(second.path, "status", "--porcelain", "--ignored") == ""
    finally:
        second.remove()


def test_a_slot_moves_to_a_new_base_by_rewriting_the_files_that_changed(
    make_repo: Callable[..., Path],
) -> None:
    repo = make_repo()
    old = git(repo, "rev-parse", "HEAD").strip()
    Worktree.create(repo, old, "Rename add to plus", "run1").remove()
    (repo / "calc.py").write_text((repo / "calc.py").read_text() + "\nZ = 1\n")
    commit_all(repo, "a new base")
    new = git(repo, "rev-parse", "HEAD").strip()
    tree = Worktree.create(repo, new, "Rename add to plus", "run2")
    try:
        assert (tree.reused, tree.rewritten) == (True, ["calc.py"])
        assert git(tree.path, "rev-parse", "HEAD").strip() == new
        assert (tree.path / "calc.py").read_text().endswith("Z = 1\n")
    finally:
        tree.remove()


def test_two_live_runs_never_share_a_slot(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    a = Worktree.create(repo, head, "Rename add to plus", "a")
    b = Worktree.create(repo, head, "Rename add to plus", "b")
    try:
        trees = slots_home(repo)
        assert (a.path, b.path) == (trees / "0" / "tree", trees / "1" / "tree")
        a.remove()
        c = Worktree.create(repo, head, "Rename add to plus", "c")
        assert (c.path, c.reused) == (a.path, True)
        c.remove()
    finally:
        a.remove()
        b.remove()


def test_when_every_slot_is_held_the_run_is_refused_clearly(
    make_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    monkeypatch.setattr(worktree, "SLOTS", 1)
    held = Worktree.create(repo, head, "Rename add to plus", "a")
    try:
        before = snapshot(repo)
        with pytest.raises(RepositoryError, match="wait for one of them to finish"):
            Worktree.create(repo, head, "Rename add to plus", "b")
        assert snapshot(repo) == before
        assert [p.name for p in (repo / ".git" / "orchestrate").glob("*.json")] == ["a.json"]
    finally:
        held.remove()


@pytest.mark.parametrize("damage", ["pointer", "index-lock", "gone"])
def test_a_damaged_slot_is_added_afresh(make_repo: Callable[..., Path], damage: str) -> None:
    """A kill during a checkout leaves a lock or half a tree; a user may delete files: the
    next run does not reuse what it cannot verify."""
    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    first = Worktree.create(repo, head, "Rename add to plus", "run1")
    first.remove()
    if damage == "pointer":
        (first.path / ".git").unlink()
    elif damage == "index-lock":
        admin = Path(git(first.path, "rev-parse", "--absolute-git-dir").strip())
        (admin / "index.lock").write_text("")
    else:
        for path in sorted(first.path.rglob("*"), reverse=True):
            if path.is_file() and path.name != ".git":
                os.unlink(path)
    tree = Worktree.create(repo, head, "Rename add to plus", "run2")
    try:
        assert tree.path == first.path
        assert tree.reused == (damage == "gone")  # deleted files are simply checked out again
        assert git(tree.path, "status", "--porcelain", "--ignored") == ""
        assert (tree.path / "calc.py").read_text() == (repo / "calc.py").read_text()
    finally:
        tree.remove()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 2


def test_the_slots_of_repositories_that_are_gone_are_removed_one_per_run(
    make_repo: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a temp directory of its own: the suite's other runs (other xdist workers too) leave
    # and prune orphaned slots in the shared one, which would change the counts below
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    gone = [tmp_path / "gone1", tmp_path / "gone2"]
    for clone in gone:
        git(repo, "clone", "-q", str(repo), str(clone))
        Worktree.create(clone, head, "Rename add to plus", "old").remove()
    homes = [slots_home(clone) for clone in gone]
    assert all((home / "0" / "tree" / "calc.py").is_file() for home in homes)
    for clone in gone:
        shutil.rmtree(clone)
    Worktree.create(repo, head, "Rename add to plus", "new").remove()
    assert sum(home.exists() for home in homes) == 1
    Worktree.create(repo, head, "Rename add to plus", "newer").remove()
    assert not any(home.exists() for home in homes)
    assert slots_home(repo).is_dir()


def test_a_slot_directory_someone_else_can_write_is_refused(
    make_repo: Callable[..., Path],
) -> None:
    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    home = slots_home(repo)
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o777)
    try:
        with pytest.raises(RepositoryError, match="not a private directory of yours"):
            Worktree.create(repo, head, "Rename add to plus", "run1")
    finally:
        home.chmod(0o700)
    assert not (repo / ".git" / "orchestrate").exists()


def test_a_reset_slot_knows_its_tree_a_fresh_one_does_not(
    make_repo: Callable[..., Path],
) -> None:
    """The reset's verification (HEAD, an empty ``status --ignored``) is what Map's cache key
    would ask git again: the slot reports the base's tree id then, and only then."""
    from pytest_orchestrator.phases.map.search_cache import tree_state

    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    first = Worktree.create(repo, head, "Rename add to plus", "run1")
    assert (first.reused, first.clean_tree) == (False, None)  # added, not verified
    (first.path / "untracked.py").write_text("x = 1\n")
    first.remove()
    second = Worktree.create(repo, head, "Rename add to plus", "run2")
    try:
        assert second.reused
        assert second.clean_tree == git(repo, "rev-parse", "HEAD^{tree}").strip()
        assert second.clean_tree == tree_state(second.path)
    finally:
        second.remove()
