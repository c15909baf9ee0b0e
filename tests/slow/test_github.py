"""The GitHub forge: push the branch and open (and merge) a PR through the REST API.

GitHub itself is out of reach here, so the API is a local HTTP server speaking the two
endpoints we use, and "origin" is a real bare repository on disk.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.conftest import git


class FakeGitHub(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []
    status: ClassVar[int] = 201

    def _answer(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {
                "method": self.command,
                "path": self.path,
                "body": body,
                "auth": self.headers["Authorization"],
            }
        )
        if self.status >= 400:
            reply: dict[str, Any] = {"message": "Bad credentials"}
        elif self.command == "POST":
            reply = {"number": 7, "html_url": "https://github.example/o/r/pull/7"}
        else:
            reply = {"merged": True, "message": "Pull Request successfully merged"}
        data = json.dumps(reply).encode()
        self.send_response(self.status if self.command == "POST" or self.status >= 400 else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = _answer
    do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeGitHub]]:
    FakeGitHub.requests = []
    FakeGitHub.status = 201
    server = HTTPServer(("127.0.0.1", 0), FakeGitHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_test-token")
    yield FakeGitHub
    server.shutdown()
    thread.join()


def with_origin(repo: Path) -> Path:
    origin = repo.parent / "origin.git"
    git(repo.parent, "init", "-q", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    (repo / "pytest.ini").write_text("[pytest]\norchestrate_github_repo = o/r\n")
    git(repo, "add", "pytest.ini")
    git(repo, "commit", "-qm", "config")
    return origin


def test_a_green_run_pushes_and_opens_a_pull_request(
    pytester: pytest.Pytester, make_repo: Callable[..., Path], github: type[FakeGitHub]
) -> None:
    """The branch lands on origin, the PR's body is PR.md, and --orchestrate-merge merges it."""
    repo = make_repo()
    origin = with_origin(repo)
    result = pytester.runpytest_subprocess(
        "--orchestrate", "Rename add to plus, post PR", "--orchestrate-merge"
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*PR: https://github.example/o/r/pull/7*"])
    commit = git(repo, "rev-parse", "orchestrate/rename-add-to-plus").strip()
    assert git(origin, "rev-parse", "orchestrate/rename-add-to-plus").strip() == commit
    opened, merged = github.requests
    (run,) = (repo / ".orchestrate" / "runs").iterdir()
    assert opened["method"] == "POST"
    assert opened["path"] == "/repos/o/r/pulls"
    assert opened["body"]["head"] == "orchestrate/rename-add-to-plus"
    assert opened["body"]["base"] == "main"
    assert opened["body"]["body"] == (run / "PR.md").read_text()
    assert opened["auth"] == "Bearer ghp_test-token"
    assert merged["path"] == "/repos/o/r/pulls/7/merge"
    assert merged["body"]["sha"] == commit


def test_a_rejected_token_keeps_the_tested_commit_and_says_so(
    pytester: pytest.Pytester, make_repo: Callable[..., Path], github: type[FakeGitHub]
) -> None:
    """Publishing fails after a green gate: exit 1, the commit stays on its branch."""
    repo = make_repo()
    with_origin(repo)
    github.status = 401
    result = pytester.runpytest_subprocess("--orchestrate", "Rename add to plus, post PR")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*gate is green and the tested commit is on branch orchestrate/rename-add-to-plus*"
            "could not be published*401*GITHUB_TOKEN was rejected*"
        ]
    )
    assert "def plus" in git(repo, "show", "orchestrate/rename-add-to-plus:calc.py")
