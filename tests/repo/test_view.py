"""When the user's checkout can stand for the base commit, to be read in place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_orchestrator.repo import checkout
from pytest_orchestrator.repo.view import checkout_differs
from tests.conftest import commit_all, git


def differs(repo: Path, base: str | None = None) -> str | None:
    base = base or git(repo, "rev-parse", "HEAD").strip()
    return checkout_differs(repo, base, checkout.snapshot(repo))


def test_a_clean_checkout_at_the_base_is_the_base_ignored_files_and_all(
    make_repo: Callable[..., Path],
) -> None:
    repo = make_repo({".gitignore": "build/\n"})
    (repo / "build").mkdir()
    (repo / "build" / "calc.py").write_text("a copy, ignored\n")
    index = (repo / ".git" / "index").stat().st_mtime_ns
    assert differs(repo) is None
    assert (repo / ".git" / "index").stat().st_mtime_ns == index  # read only


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("modified", "1 path(s) differ from the base"),
        ("staged", "1 path(s) differ from the base"),
        ("untracked", "1 path(s) differ from the base"),
        ("skip-worktree", "1 index entries are flagged"),
        ("assume-unchanged", "1 index entries are flagged"),
        ("sparse", "the checkout is sparse"),
    ],
)
def test_anything_git_would_not_check_out_as_the_base_means_a_worktree(
    make_repo: Callable[..., Path], change: str, why: str
) -> None:
    repo = make_repo()
    if change in ("modified", "staged"):
        (repo / "calc.py").write_text("changed\n")
        if change == "staged":
            git(repo, "add", "calc.py")
    elif change == "untracked":
        (repo / "extra.py").write_text("x = 1\n")
    elif change == "sparse":
        git(repo, "config", "core.sparseCheckout", "true")
    else:
        git(repo, "update-index", f"--{change}", "calc.py")
    found = differs(repo)
    assert found is not None
    assert why in found


def test_a_checkout_at_another_commit_is_not_the_base(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "calc.py").write_text("newer\n")
    commit_all(repo, "newer")
    found = differs(repo, base)
    assert found is not None
    assert "not the base" in found
