"""A loopback stand-in for the GitHub API, as strict as the real one where the forge relies on it.

GitHub is out of reach in tests, so this server speaks the endpoints the GitHub forge uses —
list pull requests by head, create, read and update one, merge it, and the GraphQL mutation
``enablePullRequestAutoMerge`` — with GitHub's documented status codes and error bodies.
Its "origin" is a real bare repository: a pull request's head is read from it, a merge writes
the merge commit into it, and pushes can be refused the way GitHub refuses them (a
``pre-receive`` hook printing GitHub's ``GH006`` or permission messages).

Faults are scripted per request (`FakeGitHub.fail`): a secondary rate limit, the Actions
setting that forbids creating pull requests, a token without ``pull-requests: write``.
Never imported by runtime code.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from pytest_orchestrator.testing.loopback import serve

BODY_LIMIT: Final = 65_536
"""GitHub's limit on a pull request's body, in characters."""
DOCS: Final = "https://docs.github.com/rest"

ACTIONS_MAY_NOT_CREATE: Final = (
    "GitHub Actions is not permitted to create or approve pull requests."
)
NOT_ACCESSIBLE: Final = "Resource not accessible by integration"
SECONDARY_RATE_LIMIT: Final = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID."
)
PROTECTED_PUSH: Final = (
    "error: GH006: Protected branch update failed for {ref}.",
    "error: Changes must be made through a pull request.",
)
DENIED_PUSH: Final = ("Permission to {slug}.git denied to github-actions[bot].",)


@dataclass
class Fault:
    """One scripted answer: the next request matching ``method`` and ``path`` gets it."""

    method: str
    path: str
    """A regular expression matched against the path (without the API prefix)."""
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class FakeGitHub:
    """The state of the stand-in: one repository ``slug`` whose git side is ``origin``."""

    origin: Path
    slug: str = "o/r"
    token: str = "ghp_test-token"
    prefix: str = ""
    """``/api/v3`` to stand in for a GitHub Enterprise Server (GraphQL at ``/api/graphql``)."""
    merge_methods: set[str] = field(default_factory=lambda: {"merge", "squash", "rebase"})
    allow_auto_merge: bool = True
    required_checks: list[str] = field(default_factory=list)
    """Contexts that must pass before a merge into the base (branch protection)."""
    passed_checks: set[str] = field(default_factory=set)
    computing: int = 0
    """How many reads of a new pull request answer ``mergeable: null`` (still computing)."""
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ scripting

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        times: int = 1,
        **extra: Any,
    ) -> None:
        body = {"message": message, "documentation_url": DOCS, "status": str(status), **extra}
        self.faults.append(Fault(method, path, status, body, headers or {}, times))

    def answer(self, method: str, path: str, status: int, body: Any, times: int = 1) -> None:
        """Answer the next matching request with ``body`` (e.g. a list that misses a PR
        opened meanwhile by a concurrent run)."""
        self.faults.append(Fault(method, path, status, body, {}, times))

    def refuse_pushes(self, lines: tuple[str, ...]) -> None:
        """Make ``origin`` refuse every push, printing ``lines`` as GitHub would."""
        hook = self.origin / "hooks" / "pre-receive"
        text = "\n".join(line.format(slug=self.slug, ref="refs/heads/...") for line in lines)
        hook.write_text(f"#!/bin/sh\ncat >/dev/null\ncat >&2 <<'EOF'\n{text}\nEOF\nexit 1\n")
        hook.chmod(0o755)

    def pass_checks(self) -> None:
        """The required checks report success: pull requests with auto-merge merge now."""
        with self._lock:
            self.passed_checks |= set(self.required_checks)
            for pr in self.pulls.values():
                if pr["state"] == "open" and pr["auto_merge"] is not None:
                    self._merge(pr, pr["auto_merge"]["merge_method"].lower())

    def open_pulls(self) -> list[dict[str, Any]]:
        return [pr for pr in self.pulls.values() if pr["state"] == "open"]

    # ------------------------------------------------------------------ git side

    def _git(self, *args: str) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=self.origin, capture_output=True, text=True, check=False
        )
        return proc.stdout.strip() if proc.returncode == 0 else ""

    def _head_sha(self, ref: str) -> str:
        return self._git("rev-parse", "--verify", "--quiet", f"refs/heads/{ref}^{{commit}}")

    def _merge(self, pr: dict[str, Any], method: str) -> str:
        base, head = pr["base"]["ref"], self._head_sha(pr["head"]["ref"])
        base_sha = self._head_sha(base)
        tree = self._git("merge-tree", "--write-tree", base_sha, head)
        if not tree:
            raise ValueError("conflict")
        env_msg = f"Merge pull request #{pr['number']} from {self.slug}:{pr['head']['ref']}"
        if method == "merge":
            parents = ["-p", base_sha, "-p", head]
        elif method == "squash":
            parents = ["-p", base_sha]
        else:  # rebase: the head's tree on top of the base, a single replayed commit here
            parents = ["-p", base_sha]
        sha = self._git("commit-tree", tree.splitlines()[0], *parents, "-m", env_msg)
        self._git("update-ref", f"refs/heads/{base}", sha, base_sha)
        pr.update(state="closed", merged=True, merge_commit_sha=sha, auto_merge=None)
        return sha

    # ------------------------------------------------------------------ the API

    def _pr_json(self, pr: dict[str, Any]) -> dict[str, Any]:
        head_sha = self._head_sha(pr["head"]["ref"]) or pr["head"]["sha"]
        pr["head"]["sha"] = head_sha
        mergeable: bool | None
        if pr["reads"] < self.computing:
            pr["reads"] += 1
            mergeable, state = None, "unknown"
        elif not self._git(
            "merge-tree", "--write-tree", self._head_sha(pr["base"]["ref"]), head_sha
        ):
            mergeable, state = False, "dirty"
        elif set(self.required_checks) - self.passed_checks:
            mergeable, state = True, "blocked"
        else:
            mergeable, state = True, "clean"
        out = {k: v for k, v in pr.items() if k != "reads"}
        return out | {"mergeable": mergeable, "mergeable_state": state}

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        split = urlsplit(raw_path)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        path = split.path
        with self._lock:
            self.requests.append(Recorded(method, path, query, body, headers))
            if path == self.prefix.removesuffix("/v3") + "/graphql":
                path = "/graphql"  # api.github.com/graphql; an Enterprise host's /api/graphql
            elif path.startswith(self.prefix + "/"):
                path = path[len(self.prefix) :]
            else:
                return 404, {"message": "Not Found", "documentation_url": DOCS}, {}
            auth = headers.get("authorization", "")
            if auth not in (f"Bearer {self.token}", f"token {self.token}"):
                return 401, {"message": "Bad credentials", "documentation_url": DOCS}, {}
            for fault in self.faults:
                if fault.method == method and re.fullmatch(fault.path, path) and fault.times:
                    fault.times -= 1
                    return fault.status, fault.body, fault.headers
            return self._route(method, path, query, body)

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if path == "/graphql" and method == "POST":
            return 200, self._graphql(body), {}
        repo = f"/repos/{self.slug}"
        if not path.startswith(repo + "/"):
            return 404, {"message": "Not Found", "documentation_url": DOCS}, {}
        rest = path[len(repo) :]
        if rest == "/pulls" and method == "GET":
            return 200, self._list(query), {}
        if rest == "/pulls" and method == "POST":
            return self._create(body)
        match = re.fullmatch(r"/pulls/(\d+)(/merge)?", rest)
        if match is None or int(match[1]) not in self.pulls:
            return 404, {"message": "Not Found", "documentation_url": DOCS}, {}
        pr = self.pulls[int(match[1])]
        if match[2] and method == "PUT":
            return self._merge_endpoint(pr, body or {})
        if not match[2] and method == "GET":
            return 200, self._pr_json(pr), {}
        if not match[2] and method == "PATCH":
            return self._update(pr, body or {})
        return 404, {"message": "Not Found", "documentation_url": DOCS}, {}

    def _list(self, query: dict[str, str]) -> list[dict[str, Any]]:
        state = query.get("state", "open")
        found = []
        for pr in self.pulls.values():
            owner_ref = f"{pr['head']['repo_owner']}:{pr['head']['ref']}"
            if "head" in query and query["head"] != owner_ref:
                continue
            if "base" in query and query["base"] != pr["base"]["ref"]:
                continue
            if state != "all" and pr["state"] != state:
                continue
            found.append(self._pr_json(pr))
        return found

    @staticmethod
    def _invalid(*errors: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        body = {"message": "Validation Failed", "errors": list(errors), "documentation_url": DOCS}
        return 422, body, {}

    def _too_long(self, body: Any) -> bool:
        return isinstance(body.get("body"), str) and len(body["body"]) > BODY_LIMIT

    def _create(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        for name in ("title", "head", "base"):
            if not isinstance(body.get(name), str) or not body[name]:
                return self._invalid(
                    {"resource": "PullRequest", "field": name, "code": "missing_field"}
                )
        if self._too_long(body):
            return self._invalid(
                {
                    "resource": "Issue",
                    "code": "custom",
                    "field": "body",
                    "message": f"body is too long (maximum is {BODY_LIMIT} characters)",
                }
            )
        owner = self.slug.split("/")[0]
        head = body["head"].removeprefix(f"{owner}:")
        if not self._head_sha(head):
            return self._invalid({"resource": "PullRequest", "field": "head", "code": "invalid"})
        if not self._head_sha(body["base"]):
            return self._invalid({"resource": "PullRequest", "field": "base", "code": "invalid"})
        for pr in self.open_pulls():
            if pr["head"]["ref"] == head and pr["base"]["ref"] == body["base"]:
                return self._invalid(
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"A pull request already exists for {owner}:{head}.",
                    }
                )
        number = max(self.pulls, default=0) + 1
        pr = {
            "number": number,
            "node_id": f"PR_node{number}",
            "html_url": f"https://github.example/{self.slug}/pull/{number}",
            "url": f"{self.url}{self.prefix}/repos/{self.slug}/pulls/{number}",
            "state": "open",
            "title": body["title"],
            "body": body.get("body") or "",
            "head": {"ref": head, "sha": self._head_sha(head), "repo_owner": owner},
            "base": {"ref": body["base"]},
            "merged": False,
            "auto_merge": None,
            "reads": 0,
        }
        self.pulls[number] = pr
        return 201, self._pr_json(pr), {}

    def _update(self, pr: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if self._too_long(body):
            return self._invalid(
                {"resource": "Issue", "code": "custom", "field": "body",
                 "message": f"body is too long (maximum is {BODY_LIMIT} characters)"}
            )  # fmt: skip
        for name in ("title", "body", "state", "base"):
            if name in body:
                if name == "base":
                    pr["base"] = {"ref": body["base"]}
                else:
                    pr[name] = body[name]
        return 200, self._pr_json(pr), {}

    def _merge_endpoint(
        self, pr: dict[str, Any], body: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        method = body.get("merge_method", "merge")
        if pr["state"] != "open":
            return 405, {"message": "Pull Request is not mergeable", "documentation_url": DOCS}, {}
        if method not in ("merge", "squash", "rebase"):
            return self._invalid(
                {"resource": "PullRequest", "field": "merge_method", "code": "invalid"}
            )
        if method not in self.merge_methods:
            what = {"merge": "Merge commits", "squash": "Squash merges", "rebase": "Rebase merges"}
            message = f"{what[method]} are not allowed on this repository."
            return 405, {"message": message, "documentation_url": DOCS}, {}
        if "sha" in body and body["sha"] != self._head_sha(pr["head"]["ref"]):
            message = "Head branch was modified. Review and try the merge again."
            return 409, {"message": message, "documentation_url": DOCS}, {}
        missing = [c for c in self.required_checks if c not in self.passed_checks]
        if missing:
            message = f'Required status check "{missing[0]}" is expected.'
            return 405, {"message": message, "documentation_url": DOCS}, {}
        try:
            sha = self._merge(pr, method)
        except ValueError:
            return 405, {"message": "Pull Request is not mergeable", "documentation_url": DOCS}, {}
        return 200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}, {}

    def _graphql(self, body: Any) -> dict[str, Any]:
        query = body.get("query", "") if isinstance(body, dict) else ""
        variables = body.get("variables", {}) if isinstance(body, dict) else {}
        if "enablePullRequestAutoMerge" not in query:
            return {"errors": [{"message": "this stand-in only knows enablePullRequestAutoMerge"}]}
        pr = next((p for p in self.pulls.values() if p["node_id"] == variables.get("id")), None)

        def error(message: str, kind: str = "UNPROCESSABLE") -> dict[str, Any]:
            return {
                "data": {"enablePullRequestAutoMerge": None},
                "errors": [
                    {"type": kind, "path": ["enablePullRequestAutoMerge"], "message": message}
                ],
            }

        if pr is None:
            return error(
                f"Could not resolve to a node with the global id of '{variables.get('id')}'",
                "NOT_FOUND",
            )
        if not self.allow_auto_merge:
            return error("Auto merge is not allowed for this repository")
        method = str(variables.get("method", "MERGE")).lower()
        if method not in self.merge_methods:
            return error(f"Merge method {method} is not allowed on this repository")
        if not set(self.required_checks) - self.passed_checks:
            return error("Pull request is in clean status")
        pr["auto_merge"] = {"merge_method": method.upper(), "enabled_by": {"login": "bot"}}
        return {
            "data": {
                "enablePullRequestAutoMerge": {
                    "pullRequest": {
                        "number": pr["number"],
                        "autoMergeRequest": {"mergeMethod": method.upper()},
                    }
                }
            }
        }

    # ------------------------------------------------------------------ the server

    @contextmanager
    def serve(self) -> Iterator[FakeGitHub]:
        """Listen on a free loopback port for the duration of the block (``self.url``)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                extra: dict[str, str] = {}
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                    status, reply = 400, {"message": "Problems parsing JSON"}
                else:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    status, reply, extra = fake.handle(self.command, self.path, headers, body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = _answer

            def log_message(self, *args: object) -> None:
                pass

        with serve(Handler) as url:
            self.url = url
            yield self
