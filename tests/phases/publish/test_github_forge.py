"""The GitHub forge against the loopback GitHub stand-in and a real bare ``origin``.

Each test drives `GitHubForge.publish` as the publish phase does: real ``git push`` to the
bare repository, real HTTP to the stand-in, which answers with GitHub's documented codes and
error bodies. Waits go through an injected ``sleep`` (no real waiting, no timing asserted).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_orchestrator.errors import OrchestratorError
from pytest_orchestrator.phases.publish.change import Change, trailers
from pytest_orchestrator.phases.publish.github import (
    Client,
    Endpoints,
    GitHubError,
    GitHubForge,
    repository,
)
from pytest_orchestrator.testing.fake_github import (
    ACTIONS_MAY_NOT_CREATE,
    DENIED_PUSH,
    NOT_ACCESSIBLE,
    PROTECTED_PUSH,
    SECONDARY_RATE_LIMIT,
    FakeGitHub,
)

COMMAND = "Rename add to plus, post PR"
BRANCH = "orchestrate/rename-add-to-plus"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare origin whose main holds one commit (pushed from a throwaway clone)."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(bare), str(seed))
    (seed / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    git(seed, "add", "-A")
    git(seed, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-qm", "base")
    git(seed, "push", "-q", "origin", "HEAD:main")
    return bare


@pytest.fixture
def github(origin: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(origin).serve() as fake:
        yield fake


def clone(origin: Path, where: Path) -> Path:
    git(where.parent, "clone", "-q", str(origin), str(where))
    return where


def green_commit(repo: Path, text: str, *, branch: str = BRANCH, command: str = COMMAND) -> str:
    """A commit like the session's: on its own branch from main, with the tool's trailers."""
    git(repo, "checkout", "-q", "-B", branch, "origin/main")
    (repo / "calc.py").write_text(text)
    git(repo, "add", "-A")
    message = f"Rename add to plus\n\nsummary\n\n{trailers(command, 'main', 'run-1')}"
    git(repo, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", message)
    sha = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach")
    return sha


def body(commit: str, branch: str) -> str:
    return f"# Rename add to plus\n\nbody of {commit[:10]} on `{branch}`\n"


def change(repo: Path, commit: str, *, branch: str = BRANCH, **kw: object) -> Change:
    def render(published_on: str) -> Path:
        path = repo.parent / "PR.md"
        path.write_text(body(commit, published_on))
        return path

    fields: dict[str, object] = {
        "repo": repo,
        "command": COMMAND,
        "branch": branch,
        "shared_branch": BRANCH,
        "commit": commit,
        "base": "main",
        "title": "Rename add to plus",
        "render": render,
        **kw,
    }
    return Change(**fields)  # type: ignore[arg-type]


def forge(fake: FakeGitHub, waits: list[float] | None = None, now: float = 1_000.0) -> GitHubForge:
    slept = waits if waits is not None else []
    client = Client(
        Endpoints(server="https://github.example", api=fake.url + fake.prefix,
                  graphql=fake.url + fake.prefix.removesuffix("/v3") + "/graphql"),
        fake.token, sleep=slept.append, now=lambda: now,
    )  # fmt: skip
    return GitHubForge(fake.slug, client)


# ---------------------------------------------------------------- idempotent re-runs


def test_a_rerun_from_a_fresh_clone_updates_the_branch_and_the_open_pull_request(
    tmp_path: Path, origin: Path, github: FakeGitHub
) -> None:
    """First run opens the PR; a re-run from a fresh clone (every CI re-run) replaces the
    tool's branch under a lease and updates that PR: one open PR, never a duplicate."""
    first_clone = clone(origin, tmp_path / "ci-1")
    first = green_commit(first_clone, "def plus(a, b):\n    return a + b\n")
    opened = forge(github).publish(change(first_clone, first))
    assert git(origin, "rev-parse", BRANCH) == first
    (pr,) = github.open_pulls()
    assert opened.url == pr["html_url"]
    assert opened.notes == [f"pull request #{pr['number']} opened on o/r"]

    second_clone = clone(origin, tmp_path / "ci-2")
    second = green_commit(second_clone, "def plus(a, b):\n    return b + a\n")
    again = forge(github).publish(change(second_clone, second))

    assert git(origin, "rev-parse", BRANCH) == second
    (same,) = github.open_pulls()
    assert same["number"] == pr["number"]
    assert same["body"] == body(second, BRANCH)
    assert again.url == pr["html_url"]
    assert f"replaced this command's earlier commit {first[:10]} on {BRANCH}" in again.notes
    assert any("updated" in n for n in again.notes)
    assert [r.method for r in github.requests if r.path.endswith("/pulls")] == [
        "GET", "POST", "GET"
    ]  # fmt: skip


def test_a_rerun_from_the_same_clone_publishes_on_the_shared_branch(
    tmp_path: Path, origin: Path, github: FakeGitHub
) -> None:
    """The same checkout keeps the first run's branch, so the re-run's local branch is
    ``…-2``; on GitHub it still lands on the command's branch and its PR."""
    repo = clone(origin, tmp_path / "work")
    first = green_commit(repo, "def plus(a, b):\n    return a + b\n")
    forge(github).publish(change(repo, first))
    second = green_commit(repo, "def plus(a, b):\n    return b + a\n", branch=BRANCH + "-2")
    result = forge(github).publish(change(repo, second, branch=BRANCH + "-2"))
    assert result.branch == BRANCH
    assert git(origin, "rev-parse", BRANCH) == second
    assert git(origin, "for-each-ref", "--format=%(refname)", "refs/heads/orchestrate") == (
        f"refs/heads/{BRANCH}"
    )
    (pr,) = github.open_pulls()
    assert pr["body"] == body(second, BRANCH)  # names the branch it is published on
    assert f"pushed as {BRANCH} (the local branch is {BRANCH}-2)" in result.notes


def test_a_branch_the_tool_did_not_make_is_never_overwritten(
    tmp_path: Path, origin: Path, github: FakeGitHub
) -> None:
    """Someone's own commit on the name (no trailers), or the tool's commit for another
    command: left alone, the run takes the next free name."""
    repo = clone(origin, tmp_path / "work")
    theirs = green_commit(repo, "x = 1\n", command="Rename add to plus everywhere else")
    git(repo, "push", "-q", "origin", f"{theirs}:refs/heads/{BRANCH}")
    ours = green_commit(repo, "def plus(a, b):\n    return a + b\n")
    result = forge(github).publish(change(repo, ours))
    assert git(origin, "rev-parse", BRANCH) == theirs
    assert git(origin, "rev-parse", BRANCH + "-2") == ours
    assert result.branch == BRANCH + "-2"
    assert f"{BRANCH} on origin was not made by this command: left alone" in result.notes


def test_a_pull_request_opened_meanwhile_is_updated_not_duplicated(
    tmp_path: Path, origin: Path, github: FakeGitHub
) -> None:
    """The list by head misses a PR a concurrent run just opened: GitHub answers 422 "A pull
    request already exists", and the forge updates that one."""
    repo = clone(origin, tmp_path / "work")
    first = green_commit(repo, "def plus(a, b):\n    return a + b\n")
    forge(github).publish(change(repo, first))
    github.answer("GET", "/repos/o/r/pulls", 200, [])
    second = green_commit(repo, "def plus(a, b):\n    return b + a\n")
    result = forge(github).publish(change(repo, second))
    assert len(github.open_pulls()) == 1
    assert any("updated" in n for n in result.notes)
    posts = [r for r in github.requests if r.method == "POST" and r.path.endswith("/pulls")]
    assert len(posts) == 2  # the second one was answered 422 and led to the update


# ---------------------------------------------------------------- merging


def test_merge_when_mergeable_uses_the_configured_method(
    tmp_path: Path, origin: Path, github: FakeGitHub
) -> None:
    """Mergeability still computing (null) is polled; then a squash merge lands on main."""
    github.computing = 3  # the create answer, then two reads, say null
    github.merge_methods = {"squash"}
    repo = clone(origin, tmp_path / "work")
    commit = green_commit(repo, "def plus(a, b):\n    return a + b\n")
    waits: list[float] = []
    result = forge(github, waits).publish(change(repo, commit, merge=True, merge_method="squash"))
    assert result.merged
    assert f"merged {result.url} (squash)" in result.notes
    assert len(waits) == 2
    assert "def plus" in git(origin, "show", "main:calc.py")
    assert git(origin, "rev-parse", "main^") != commit  # a squash commit on top of the base


def test_required_checks_enable_auto_merge_which_merges_when_they_pass(
    tmp_path: Path, origin: Path, github: FakeGitHub
) -> None:
    github.required_checks = ["ci"]
    repo = clone(origin, tmp_path / "work")
    commit = green_commit(repo, "def plus(a, b):\n    return a + b\n")
    result = forge(github).publish(change(repo, commit, merge=True))
    assert not result.merged
    assert (
        f"auto-merge enabled on {result.url} (merge): GitHub merges it once the required "
        "checks pass"
    ) in result.notes
    graphql = [r for r in github.requests if r.path == "/graphql"]
    assert graphql[0].body["variables"] == {"id": "PR_node1", "method": "MERGE"}
    github.pass_checks()
    assert git(origin, "rev-parse", "main^2") == commit  # merged with a merge commit


def test_a_merge_method_the_repository_forbids_is_named_with_the_url(
    tmp_path: Path, origin: Path, github: FakeGitHub
) -> None:
    github.merge_methods = {"squash", "rebase"}
    repo = clone(origin, tmp_path / "work")
    commit = green_commit(repo, "def plus(a, b):\n    return a + b\n")
    result = forge(github).publish(change(repo, commit, merge=True))
    assert not result.merged
    (note,) = [n for n in result.notes if n.startswith("not merged")]
    assert result.url in note
    assert "does not allow the merge method" in note
    assert "orchestrate_merge_method" in note


def test_auto_merge_disabled_in_the_repository_says_why_with_the_url(
    tmp_path: Path, origin: Path, github: FakeGitHub
) -> None:
    github.required_checks = ["ci"]
    github.allow_auto_merge = False
    repo = clone(origin, tmp_path / "work")
    commit = green_commit(repo, "def plus(a, b):\n    return a + b\n")
    result = forge(github).publish(change(repo, commit, merge=True))
    (note,) = [n for n in result.notes if n.startswith("not merged")]
    assert result.url in note
    assert "required checks or reviews are pending" in note
    assert "Auto merge is not allowed for this repository" in note
    assert "Settings → General" in note


# ---------------------------------------------------------------- refusals and limits


def test_actions_not_permitted_to_create_pull_requests_says_which_setting(
    tmp_path: Path, origin: Path, github: FakeGitHub
) -> None:
    github.fail("POST", "/repos/o/r/pulls", 403, ACTIONS_MAY_NOT_CREATE)
    repo = clone(origin, tmp_path / "work")
    commit = green_commit(repo, "def plus(a, b):\n    return a + b\n")
    with pytest.raises(GitHubError) as info:
        forge(github).publish(change(repo, commit))
    assert "Allow GitHub Actions to create and approve pull requests" in str(info.value)
    assert "lacks" not in str(info.value)


def test_a_token_without_pull_requests_write_names_the_permission(
    tmp_path: Path, origin: Path, github: FakeGitHub
) -> None:
    github.fail("POST", "/repos/o/r/pulls", 403, NOT_ACCESSIBLE)
    repo = clone(origin, tmp_path / "work")
    commit = green_commit(repo, "def plus(a, b):\n    return a + b\n")
    with pytest.raises(GitHubError, match=r"permissions: pull-requests: write"):
        forge(github).publish(change(repo, commit))


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (PROTECTED_PUSH, "the branch is protected on GitHub"),
        (DENIED_PUSH, "permissions: contents: write"),
    ],
)
def test_refused_pushes_are_explained(
    tmp_path: Path, origin: Path, github: FakeGitHub, lines: tuple[str, ...], expected: str
) -> None:
    github.refuse_pushes(lines)
    repo = clone(origin, tmp_path / "work")
    commit = green_commit(repo, "def plus(a, b):\n    return a + b\n")
    with pytest.raises(GitHubError, match=expected):
        forge(github).publish(change(repo, commit))
    assert github.open_pulls() == []


@pytest.mark.parametrize(
    ("status", "headers", "message", "wait"),
    [
        (403, {"retry-after": "7"}, SECONDARY_RATE_LIMIT, 7.0),
        (403, {}, SECONDARY_RATE_LIMIT, 60.0),
        (429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1030"}, "API rate limit", 31.0),
    ],
)
def test_rate_limits_are_waited_out_as_the_headers_say(
    tmp_path: Path,
    origin: Path,
    github: FakeGitHub,
    status: int,
    headers: dict[str, str],
    message: str,
    wait: float,
) -> None:
    """A secondary-rate-limit 403 is a wait, not a permission error (the clock is fake)."""
    github.fail("POST", "/repos/o/r/pulls", status, message, headers)
    repo = clone(origin, tmp_path / "work")
    commit = green_commit(repo, "def plus(a, b):\n    return a + b\n")
    waits: list[float] = []
    result = forge(github, waits, now=1_000.0).publish(change(repo, commit))
    assert waits == [wait]
    assert len(github.open_pulls()) == 1
    assert result.url.endswith("/pull/1")


def test_a_rate_limit_outlasting_the_retries_is_not_called_a_permission_problem(
    tmp_path: Path, origin: Path, github: FakeGitHub
) -> None:
    github.fail("POST", "/repos/o/r/pulls", 403, SECONDARY_RATE_LIMIT, {"retry-after": "1"}, 9)
    repo = clone(origin, tmp_path / "work")
    commit = green_commit(repo, "def plus(a, b):\n    return a + b\n")
    waits: list[float] = []
    with pytest.raises(GitHubError) as info:
        forge(github, waits).publish(change(repo, commit))
    assert "not a permission problem" in str(info.value)
    assert waits == [1.0] * 4


# ---------------------------------------------------------------- where GitHub is


def test_enterprise_endpoints_come_from_the_server_url() -> None:
    env = {"GITHUB_SERVER_URL": "https://ghe.example.com"}
    assert Endpoints.from_env(env) == Endpoints(
        "https://ghe.example.com",
        "https://ghe.example.com/api/v3",
        "https://ghe.example.com/api/graphql",
    )
    assert Endpoints.from_env({}).graphql == "https://api.github.com/graphql"


def test_the_repository_from_ini_then_github_repository_then_the_remote(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    git(repo, "remote", "add", "origin", "git@ghe.example.com:team/tool.git")
    enterprise = {"GITHUB_SERVER_URL": "https://ghe.example.com"}
    assert repository(repo, "origin", None, enterprise) == "team/tool"
    assert repository(repo, "origin", None, {}) is None  # an unknown host is not GitHub
    actions = {**enterprise, "GITHUB_REPOSITORY": "org/actions"}
    assert repository(repo, "origin", None, actions) == "org/actions"
    assert repository(repo, "origin", "ini/wins", actions) == "ini/wins"
    git(repo, "remote", "set-url", "origin", "https://github.com/a/b.git")
    assert repository(repo, "origin", None, {}) == "a/b"


def test_an_enterprise_host_is_published_to_under_api_v3(tmp_path: Path, origin: Path) -> None:
    """The Enterprise layout: REST under /api/v3, GraphQL at /api/graphql."""
    with FakeGitHub(origin, prefix="/api/v3", required_checks=["ci"]).serve() as fake:
        repo = clone(origin, tmp_path / "work")
        commit = green_commit(repo, "def plus(a, b):\n    return a + b\n")
        result = forge(fake).publish(change(repo, commit, merge=True))
    assert any(n.startswith("auto-merge enabled") for n in result.notes)
    assert {r.path for r in fake.requests} >= {"/api/v3/repos/o/r/pulls", "/api/graphql"}


def test_no_base_branch_is_refused_before_anything_is_pushed(
    tmp_path: Path, origin: Path, github: FakeGitHub
) -> None:
    repo = clone(origin, tmp_path / "work")
    commit = green_commit(repo, "def plus(a, b):\n    return a + b\n")
    with pytest.raises(OrchestratorError, match="--orchestrate-base"):
        forge(github).publish(change(repo, commit, base=None))
    assert github.requests == []
