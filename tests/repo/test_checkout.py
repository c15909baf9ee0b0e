"""The checkout snapshot: one look at git answers the dirty check, whether the checkout is the
base, and its tree id; compared again later, it still sees every change."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_orchestrator.phases.map.search_cache import tree_state
from pytest_orchestrator.repo import checkout, git, view
from tests.conftest import commit_all
from tests.conftest import git as run_git


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Every git command the repository modules run, in order."""
    seen: list[tuple[str, ...]] = []
    real = git.git

    def counting(*args: str, **kwargs: object) -> str:
        seen.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    for module in (checkout, view):
        monkeypatch.setattr(module, "git", counting)
    return seen


def test_one_status_answers_dirty_base_and_tree(
    make_repo: Callable[..., Path], calls: list[tuple[str, ...]]
) -> None:
    repo = make_repo({".gitignore": "build/\n"})
    (repo / "build").mkdir()
    (repo / "build" / "out.txt").write_text("ignored\n")
    base = run_git(repo, "rev-parse", "HEAD").strip()
    taken = checkout.snapshot(repo)
    assert not taken.dirty()
    assert view.checkout_differs(repo, base, taken) is None
    assert taken.tree == run_git(repo, "rev-parse", "HEAD^{tree}").strip()
    assert taken.tree == tree_state(repo)  # what Map's search cache would ask git for
    assert [args[0] for args in calls].count("status") == 1
    assert len(calls) == 6  # rev-parse, symbolic-ref, for-each-ref, ls-files, status, config


@pytest.mark.parametrize("change", ["modified", "staged", "untracked", "untracked-hidden"])
def test_no_tree_when_git_shows_anything(make_repo: Callable[..., Path], change: str) -> None:
    repo = make_repo()
    if change in ("modified", "staged"):
        (repo / "calc.py").write_text("changed\n")
        if change == "staged":
            run_git(repo, "add", "calc.py")
    else:
        (repo / "extra.py").write_text("x = 1\n")
        if change == "untracked-hidden":  # the user's config hides untracked files: not here
            run_git(repo, "config", "status.showUntrackedFiles", "no")
    taken = checkout.snapshot(repo)
    assert taken.tree == ""
    assert tree_state(repo) is None
    assert taken.dirty()


def test_no_tree_when_git_status_fails(
    make_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo()
    real = git.git

    def failing(*args: str, **kwargs: object) -> str:
        if args[0] == "status":
            raise git.RepositoryError("git status failed")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(checkout, "git", failing)
    taken = checkout.snapshot(repo)
    assert taken.tree == ""
    base = run_git(repo, "rev-parse", "HEAD").strip()
    assert view.checkout_differs(repo, base, taken) == "git could not show the checkout's status"


def test_an_unborn_head_has_no_commit_and_no_tree(tmp_path: Path) -> None:
    run_git(tmp_path, "init", "-q")
    taken = checkout.snapshot(tmp_path)
    assert (taken.commit, taken.tree) == ("", "")


@pytest.mark.parametrize(
    "change", ["file", "same-size-file", "ref", "untracked", "untracked-in-untracked", "head"]
)
def test_the_comparison_still_sees_every_change(
    make_repo: Callable[..., Path], change: str
) -> None:
    repo = make_repo()
    (repo / "scratch").mkdir()
    (repo / "scratch" / "notes.txt").write_text("the user's, untracked\n")
    before = checkout.snapshot(repo)
    if change == "untracked-in-untracked":  # a directory git status shows as one entry
        (repo / "scratch" / "new.txt").write_text("written by the run\n")
    elif change == "file":
        (repo / "calc.py").write_text("changed\n")
    elif change == "same-size-file":  # same size, only the modification time differs
        stat = (repo / "calc.py").stat()
        os.utime(repo / "calc.py", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    elif change == "ref":
        run_git(repo, "branch", "elsewhere")
    elif change == "untracked":
        run_git(repo, "config", "status.showUntrackedFiles", "no")  # still seen
        (repo / "new.py").write_text("x = 1\n")
    elif change == "head":
        (repo / "calc.py").write_text("newer\n")
        commit_all(repo, "newer")
    found = checkout.differences(before, checkout.snapshot(repo))
    assert found, change
    expected = {
        "file": "file calc.py was written",
        "same-size-file": "file calc.py was written",
        "ref": "ref refs/heads/elsewhere",
        "untracked": "new.py",
        "untracked-in-untracked": "scratch/new.txt",
        "head": "HEAD moved",
    }[change]
    assert any(expected in line for line in found), found


def test_an_untouched_checkout_compares_equal(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    assert checkout.differences(checkout.snapshot(repo), checkout.snapshot(repo)) == []


def test_a_snapshot_without_files_answers_the_same_and_refuses_a_comparison(
    make_repo: Callable[..., Path],
) -> None:
    """A dry run never compares its checkout: it skips the lstat of every file, nothing else."""
    repo = make_repo()
    (repo / "extra.py").write_text("x = 1\n")
    full, light = checkout.snapshot(repo), checkout.snapshot(repo, files=False)
    assert light.files is None
    assert full.files
    assert (light.head, light.refs, light.index, light.status, light.tree) == (
        full.head, full.refs, full.index, full.status, full.tree,
    )  # fmt: skip
    assert light.dirty() == full.dirty() == ["extra.py"]
    with pytest.raises(ValueError, match="cannot be compared"):
        checkout.differences(light, full)
