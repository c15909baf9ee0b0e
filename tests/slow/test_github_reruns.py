"""Real ``pytest --orchestrate`` runs publishing to the GitHub stand-in and a bare origin, as a
CI job does: the first run, a re-run from a fresh clone (every CI re-run), a re-run from the
same clone, and a change too large for GitHub's body limit."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_orchestrator.testing.fake_github import BODY_LIMIT, FakeGitHub
from tests.conftest import git

COMMAND = "Rename add to plus, post PR"
BRANCH = "orchestrate/rename-add-to-plus"


@pytest.fixture
def github(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    origin = pytester.path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    with FakeGitHub(origin).serve() as fake:
        monkeypatch.setenv("GITHUB_API_URL", fake.url)
        monkeypatch.setenv("GITHUB_TOKEN", fake.token)
        monkeypatch.setenv("GITHUB_REPOSITORY", fake.slug)  # what Actions sets
        yield fake


def run(pytester: pytest.Pytester, cwd: Path, *args: str) -> pytest.RunResult:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        return pytester.runpytest_subprocess("--orchestrate", COMMAND, *args)


def test_rerunning_the_same_command_updates_its_branch_and_pull_request(
    pytester: pytest.Pytester, make_repo: Callable[..., Path], github: FakeGitHub
) -> None:
    """Three runs, one branch on origin, one open pull request: the first opens it, a fresh
    clone's re-run replaces the branch under a lease and updates the PR, and a re-run in the
    first checkout (whose own branch is now ``…-2``) does the same — asked to merge while a
    required check is pending, it enables auto-merge and says so with the PR's URL."""
    repo = make_repo()
    git(repo, "remote", "add", "origin", str(github.origin))
    git(repo, "push", "-q", "origin", "main")

    first = run(pytester, repo)
    assert first.ret == 0, first.stdout.str()
    first.stdout.fnmatch_lines(["*PR: https://github.example/o/r/pull/1*"])

    fresh = pytester.path / "fresh"
    git(pytester.path, "clone", "-q", str(github.origin), str(fresh))
    second = run(pytester, fresh)
    assert second.ret == 0, second.stdout.str()
    second.stdout.fnmatch_lines(["*pull request #1 updated on o/r*"])
    fresh_commit = git(fresh, "rev-parse", BRANCH).strip()
    assert git(github.origin, "rev-parse", BRANCH).strip() == fresh_commit

    github.required_checks = ["ci"]
    third = run(pytester, repo, "--orchestrate-merge")
    assert third.ret == 0, third.stdout.str()
    third.stdout.fnmatch_lines(
        [
            f"*replaced this command's earlier commit {fresh_commit[:10]} on {BRANCH}*",
            f"*pushed as {BRANCH} (the local branch is {BRANCH}-2)*",
            "*auto-merge enabled on https://github.example/o/r/pull/1 (merge)*",
        ]
    )
    assert (
        git(github.origin, "rev-parse", BRANCH).strip()
        == git(repo, "rev-parse", f"{BRANCH}-2").strip()
    )
    heads = git(github.origin, "for-each-ref", "--format=%(refname:short)", "refs/heads")
    assert heads.split() == ["main", BRANCH]
    (pr,) = github.pulls.values()
    assert pr["state"] == "open"
    assert f"- Branch: `{BRANCH}` at " in pr["body"]  # not the local `…-2`
    assert pr["auto_merge"] == {"merge_method": "MERGE", "enabled_by": {"login": "bot"}}
    github.pass_checks()
    assert "def plus" in git(github.origin, "show", "main:calc.py")


def test_a_change_too_large_for_github_gets_a_shortened_body_that_says_so(
    pytester: pytest.Pytester, make_repo: Callable[..., Path], github: FakeGitHub
) -> None:
    """A diff of well over 65,536 characters: the stand-in refuses longer bodies (422) as
    GitHub does, so the PR opening at all shows the body fits; it says what was cut."""
    note = "n" * 4_000  # 20 long lines: a large diff from a rename of only 20 call sites
    calls = "".join(f"value_{i} = add({i}, {i})  # {note}\n" for i in range(20))
    repo = make_repo({"many.py": "from calc import add\n\n" + calls})
    git(repo, "remote", "add", "origin", str(github.origin))
    git(repo, "push", "-q", "origin", "main")
    result = run(pytester, repo)
    assert result.ret == 0, result.stdout.str()
    (run_dir,) = (repo / ".orchestrate" / "runs").iterdir()
    assert len((run_dir / "diff.patch").read_text()) > 2 * BODY_LIMIT
    (pr,) = github.pulls.values()
    assert len(pr["body"]) <= BODY_LIMIT
    assert pr["body"] == (run_dir / "PR.md").read_text()
    assert "Shortened to fit GitHub's 65,536-character limit" in pr["body"]
    assert f"on branch `{BRANCH}`" in pr["body"]
    assert "Diff (first " in pr["body"]
    assert "## Gate" in pr["body"]  # the verdict is never the part that goes
