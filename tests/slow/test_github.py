"""The GitHub forge: push the branch and open (and merge) a PR through the REST API.

GitHub itself is out of reach here, so the API is the loopback stand-in
(`pytest_orchestrator.testing.fake_github`), and "origin" is a real bare repository on disk.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_orchestrator.testing.fake_github import FakeGitHub
from tests.conftest import git


@pytest.fixture
def github(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    """The GitHub stand-in over the bare origin that `with_origin` fills."""
    origin = pytester.path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    with FakeGitHub(origin).serve() as fake:
        monkeypatch.setenv("GITHUB_API_URL", fake.url)
        monkeypatch.setenv("GITHUB_TOKEN", fake.token)
        yield fake


def with_origin(repo: Path) -> Path:
    origin = repo.parent / "origin.git"
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    (repo / "pytest.ini").write_text("[pytest]\norchestrate_github_repo = o/r\n")
    git(repo, "add", "pytest.ini")
    git(repo, "commit", "-qm", "config")
    return origin


def test_a_green_run_pushes_and_opens_a_pull_request(
    pytester: pytest.Pytester, make_repo: Callable[..., Path], github: FakeGitHub
) -> None:
    """The branch lands on origin, the PR's body is PR.md, and --orchestrate-merge merges it."""
    repo = make_repo()
    origin = with_origin(repo)
    result = pytester.runpytest_subprocess(
        "--orchestrate", "Rename add to plus, post PR", "--orchestrate-merge"
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*PR: https://github.example/o/r/pull/1*"])
    commit = git(repo, "rev-parse", "orchestrate/rename-add-to-plus").strip()
    assert git(origin, "rev-parse", "orchestrate/rename-add-to-plus").strip() == commit
    opened, merged = [r for r in github.requests if r.method in ("POST", "PUT")]
    (run,) = (repo / ".orchestrate" / "runs").iterdir()
    assert opened.path == "/repos/o/r/pulls"
    assert opened.body["head"] == "orchestrate/rename-add-to-plus"
    assert opened.body["base"] == "main"
    assert opened.body["body"] == (run / "PR.md").read_text()
    assert opened.headers["authorization"] == "Bearer ghp_test-token"
    assert merged.path == "/repos/o/r/pulls/1/merge"
    assert merged.body == {"sha": commit, "merge_method": "merge"}
    assert git(origin, "rev-parse", "main^2").strip() == commit


def test_a_rejected_token_keeps_the_tested_commit_and_says_so(
    pytester: pytest.Pytester,
    make_repo: Callable[..., Path],
    github: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Publishing fails after a green gate: exit 1, the commit stays on its branch."""
    repo = make_repo()
    with_origin(repo)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_wrong")
    result = pytester.runpytest_subprocess("--orchestrate", "Rename add to plus, post PR")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*gate is green and the tested commit is on branch orchestrate/rename-add-to-plus*"
            "could not be published*401*GITHUB_TOKEN was rejected*"
        ]
    )
    assert "def plus" in git(repo, "show", "orchestrate/rename-add-to-plus:calc.py")
