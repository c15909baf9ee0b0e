"""The GitHub forge: push the tested branch, open or update its pull request, merge it.

Configured by ``GITHUB_TOKEN`` (or ``GH_TOKEN``); the repository is the ini key
``orchestrate_github_repo``, else ``GITHUB_REPOSITORY`` (always set in Actions), else read from
the remote's URL — on github.com or on the host of ``GITHUB_SERVER_URL`` / ``GITHUB_API_URL``
(GitHub Enterprise Server). It speaks plain HTTPS with the standard library: a handful of
endpoints does not justify a client dependency.

Re-runs are idempotent: the same command on the same base lands on the branch the tool made
before (pushed with ``--force-with-lease``, and only when that branch's tip carries the
tool's trailers for this command and base) and updates the pull request already open for
it — it never opens a duplicate.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Final, final

from pytest_orchestrator.errors import OrchestratorError, RepositoryError
from pytest_orchestrator.model import PublishResult
from pytest_orchestrator.phases.publish.change import Change, trailers_match
from pytest_orchestrator.repo.git import git

DEFAULT_SERVER: Final = "https://github.com"
DEFAULT_API: Final = "https://api.github.com"
MAX_RETRIES: Final = 4
"""Retries of one request after a rate limit or a 5xx answer."""
MAX_WAIT: Final = 300.0
"""Longest single wait (seconds) a rate limit may impose before the run gives up instead."""
MERGEABLE_POLLS: Final = 5
"""Reads of a new pull request while GitHub still computes ``mergeable`` (null)."""
BRANCH_NAMES: Final = 20

_REMOTE: Final = re.compile(
    r"^(?:[a-z+]+://)?(?:[^@/]+@)?(?P<host>[^/:]+)(?::\d+)?[:/](?P<slug>[^/\s]+/[^/\s]+?)(?:\.git)?/?$"
)


class GitHubError(OrchestratorError):
    """GitHub refused a request; the message says what to change."""

    def __init__(self, message: str, status: int = 0, reply: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reply = reply


def token() -> str | None:
    return os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN") or None


@dataclass(frozen=True)
class Endpoints:
    """Where GitHub is: the web server, the REST API and GraphQL (github.com or Enterprise)."""

    server: str
    api: str
    graphql: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Endpoints:
        server = (env.get("GITHUB_SERVER_URL") or DEFAULT_SERVER).rstrip("/")
        default_api = DEFAULT_API if server == DEFAULT_SERVER else f"{server}/api/v3"
        api = (env.get("GITHUB_API_URL") or default_api).rstrip("/")
        graphql = env.get("GITHUB_GRAPHQL_URL") or (
            api.removesuffix("/v3") + "/graphql" if api.endswith("/api/v3") else api + "/graphql"
        )
        return cls(server, api, graphql.rstrip("/"))

    def hosts(self) -> set[str]:
        """Hosts whose remotes are this GitHub: github.com, or the Enterprise host."""
        hosts = {"github.com"}
        for url in (self.server, self.api):
            host = urllib.parse.urlsplit(url).hostname or ""
            hosts.add(host.removeprefix("api."))
            hosts.add(host)
        return hosts


def repository(
    repo: Path, remote: str, configured: str | None, env: Mapping[str, str] = os.environ
) -> str | None:
    """``owner/name``: the ini key, else ``GITHUB_REPOSITORY``, else the remote's URL."""
    if configured:
        return configured
    if env.get("GITHUB_REPOSITORY"):
        return env["GITHUB_REPOSITORY"]
    url = git("remote", "get-url", remote, cwd=repo, check=False).strip()
    match = _REMOTE.match(url)
    if match and match["host"] in Endpoints.from_env(env).hosts():
        return match["slug"]
    return None


# ---------------------------------------------------------------------------- HTTP


@dataclass
class Client:
    """REST and GraphQL calls with GitHub's retry rules.

    A 429, or a 403 that is a rate limit (``retry-after``, ``x-ratelimit-remaining: 0`` or a
    "secondary rate limit" message), is retried after the wait the headers ask for (at least
    a minute for a secondary limit without headers, as GitHub's docs say); a 5xx after a short
    backoff. ``sleep`` and ``now`` are injected so tests need no real waiting.
    """

    endpoints: Endpoints
    token: str
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], float] = time.time
    waits: list[float] = field(default_factory=list)

    def rest(self, method: str, path: str, payload: Any = None, *, need: str = "") -> Any:
        """One REST call; ``need`` names the permission it takes, for the 403 message."""
        return self._send(method, self.endpoints.api + path, payload, need=need)

    def graphql(self, query: str, variables: dict[str, Any], *, need: str = "") -> dict[str, Any]:
        reply = self._send(
            "POST", self.endpoints.graphql, {"query": query, "variables": variables}, need=need
        )
        errors = reply.get("errors") if isinstance(reply, dict) else None
        if errors:
            message = "; ".join(str(e.get("message", e)) for e in errors)
            raise GitHubError(message, 200, json.dumps(errors)[:500])
        return dict(reply.get("data") or {})

    def _send(self, method: str, url: str, payload: Any, *, need: str) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        for attempt in range(MAX_RETRIES + 1):
            request = urllib.request.Request(
                url,
                data=data,
                method=method,
                headers={
                    "Accept": "application/vnd.github+json",
                    "Authorization": f"Bearer {self.token}",
                    "X-GitHub-Api-Version": "2022-11-28",
                    "Content-Type": "application/json",
                    "User-Agent": "pytest-orchestrator",
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return json.loads(response.read() or b"null")
            except urllib.error.HTTPError as exc:
                text = exc.read().decode(errors="replace")
                wait = self._wait(exc.code, exc.headers, text, attempt)
                if wait is None or attempt == MAX_RETRIES:
                    raise _error(method, url, exc.code, exc.headers, text, need) from None
                self.waits.append(wait)
                self.sleep(wait)
            except urllib.error.URLError as exc:
                raise GitHubError(
                    f"cannot reach {self.endpoints.api}: {exc.reason}. Check GITHUB_API_URL "
                    "(GitHub Enterprise) and the network"
                ) from None
        raise AssertionError("unreachable")

    def _wait(self, status: int, headers: Any, text: str, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when the answer is final."""
        if status >= 500:
            return float(2**attempt)
        if not _is_rate_limit(status, headers, text):
            return None
        retry_after = headers.get("retry-after")
        if retry_after:
            try:
                wait = float(retry_after)
            except ValueError:
                wait = parsedate_to_datetime(retry_after).timestamp() - self.now()
        elif headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset"):
            wait = float(headers["x-ratelimit-reset"]) - self.now() + 1
        else:
            wait = 60.0 * 2**attempt
        wait = max(wait, 1.0)
        return wait if wait <= MAX_WAIT else None


def _is_rate_limit(status: int, headers: Any, text: str) -> bool:
    if status == 429:
        return True
    return status == 403 and (
        bool(headers.get("retry-after"))
        or headers.get("x-ratelimit-remaining") == "0"
        or "rate limit" in text.lower()
    )


def _error(method: str, url: str, status: int, headers: Any, text: str, need: str) -> GitHubError:
    """GitHub's refusal, explained: what it means and what to change."""
    try:
        reply = json.loads(text)
    except ValueError:
        reply = {"message": text[:300]}
    message = str(reply.get("message", "")) if isinstance(reply, dict) else str(reply)
    errors = reply.get("errors") if isinstance(reply, dict) else None
    if errors:
        message += ": " + "; ".join(
            str(e.get("message") or f"{e.get('field')} {e.get('code')}")
            if isinstance(e, dict)
            else str(e)
            for e in errors
        )
    where = f"{method} {urllib.parse.urlsplit(url).path}: {status}"
    if _is_rate_limit(status, headers, text):
        reset = headers.get("x-ratelimit-reset")
        when = time.strftime(" until %H:%M UTC", time.gmtime(float(reset))) if reset else ""
        hint = (
            f"GitHub's rate limit{when} outlasted the retries; run again later "
            f"(this is a rate limit, not a permission problem): {message}"
        )
    elif status == 401:
        hint = f"GITHUB_TOKEN was rejected ({message}): set a valid token"
    elif status == 403 and "not permitted to create or approve pull requests" in message:
        hint = (
            f"{message} Allow it in the repository's Settings → Actions → General → Workflow "
            'permissions → "Allow GitHub Actions to create and approve pull requests" (an '
            "organisation may have to allow it first), or put a fine-grained token or a GitHub "
            "App token with pull-requests: write in GITHUB_TOKEN"
        )
    elif status == 403 and "not accessible by integration" in message.lower():
        hint = (
            f"the token lacks a permission ({message}): give the workflow "
            f"`permissions: {need or 'contents: write, pull-requests: write'}`"
        )
    elif status == 403:
        hint = f"the token may not do this ({message}); it needs {need or 'write access'}"
    elif status == 404:
        hint = (
            f"not found ({message}): the repository does not exist or this token cannot see "
            "it; check orchestrate_github_repo / GITHUB_REPOSITORY and the token's access"
        )
    else:
        hint = f"GitHub refused the request: {message}"
    return GitHubError(f"{where} — {hint}", status, text[:500])


# ---------------------------------------------------------------------------- the forge


@final
class GitHubForge:
    name = "github"

    def __init__(self, slug: str, client: Client, *, remote: str = "origin") -> None:
        self.slug = slug
        self.client = client
        self.remote = remote

    def publish(self, change: Change) -> PublishResult:
        if change.base is None:
            raise OrchestratorError("a pull request needs a base branch: pass --orchestrate-base")
        notes: list[str] = []
        branch = self._push(change, notes)
        body = change.render(branch).read_text(encoding="utf-8")
        pr = self._open_or_update(change, branch, body, notes)
        url = str(pr["html_url"])
        merged = False
        if change.merge:
            merged, note = self._merge(pr, change)
            notes.append(note)
        return PublishResult(
            forge=self.name,
            branch=branch,
            commit=change.commit,
            url=url,
            merged=merged,
            notes=notes,
        )

    # -- the branch

    def _push(self, change: Change, notes: list[str]) -> str:
        """Push to the command's own branch on the remote: a free name, or the tool's earlier
        branch of the same command and base (replaced under a lease). Returns its name."""
        heads = self._remote_heads(change.repo)
        for name in [change.shared_branch] + [
            f"{change.shared_branch}-{n}" for n in range(2, BRANCH_NAMES + 1)
        ]:
            old = heads.get(name)
            if old is not None and not self._ours(change, name, old):
                notes.append(f"{name} on {self.remote} was not made by this command: left alone")
                continue
            self._push_to(change, name, old)
            if old is not None:
                notes.append(f"replaced this command's earlier commit {old[:10]} on {name}")
            if name != change.branch:
                notes.append(f"pushed as {name} (the local branch is {change.branch})")
            return name
        raise OrchestratorError(
            f"no branch name left on {self.remote}: {change.shared_branch} and its numbered "
            "variants hold other work; delete the stale ones"
        )

    def _remote_heads(self, repo: Path) -> dict[str, str]:
        out = _git_remote("ls-remote", "--heads", self.remote, cwd=repo, slug=self.slug)
        heads = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            heads[ref.removeprefix("refs/heads/")] = sha
        return heads

    def _ours(self, change: Change, name: str, sha: str) -> bool:
        """The remote branch's tip was made by this tool for this command and base."""
        if not name.startswith("orchestrate/"):
            return False
        if not _has_commit(change.repo, sha):
            _git_remote(
                "fetch", "--quiet", "--no-tags", "--refmap=", self.remote, f"refs/heads/{name}",
                cwd=change.repo, slug=self.slug,
            )  # fmt: skip
        message = git("log", "-1", "--format=%B", sha, cwd=change.repo, check=False)
        return trailers_match(message, change.command, change.base or "")

    def _push_to(self, change: Change, name: str, old: str | None) -> None:
        ref = f"refs/heads/{name}"
        _git_remote(
            "push", "--quiet", f"--force-with-lease={ref}:{old or ''}", self.remote,
            f"{change.commit}:{ref}", cwd=change.repo, slug=self.slug,
        )  # fmt: skip

    # -- the pull request

    def _find(self, branch: str, base: str) -> dict[str, Any] | None:
        owner = self.slug.split("/")[0]
        query = urllib.parse.urlencode({"head": f"{owner}:{branch}", "base": base, "state": "open"})
        found = self.client.rest(
            "GET", f"/repos/{self.slug}/pulls?{query}", need="pull-requests: read"
        )
        return found[0] if found else None

    def _open_or_update(
        self, change: Change, branch: str, body: str, notes: list[str]
    ) -> dict[str, Any]:
        assert change.base is not None
        existing = self._find(branch, change.base)
        if existing is None:
            try:
                pr: dict[str, Any] = self.client.rest(
                    "POST",
                    f"/repos/{self.slug}/pulls",
                    {
                        "title": change.title,
                        "head": branch,
                        "base": change.base,
                        "body": body,
                    },
                    need="pull-requests: write",
                )
                notes.append(f"pull request #{pr['number']} opened on {self.slug}")
                return pr
            except GitHubError as exc:
                if exc.status != 422 or "already exists" not in exc.reply:
                    raise
            existing = self._find(branch, change.base)  # opened meanwhile: update that one
            if existing is None:
                raise GitHubError(f"GitHub says a pull request for {branch} exists but lists none")
        pr = self.client.rest(
            "PATCH",
            f"/repos/{self.slug}/pulls/{existing['number']}",
            {"title": change.title, "body": body},
            need="pull-requests: write",
        )
        notes.append(
            f"pull request #{pr['number']} updated on {self.slug} (re-run of this command)"
        )
        return pr

    # -- merging

    def _merge(self, pr: dict[str, Any], change: Change) -> tuple[bool, str]:
        """Merge when GitHub says the PR is mergeable; with required checks or reviews still
        pending, enable auto-merge; otherwise say exactly why not. Every answer names the URL."""
        try:
            return self._try_merge(pr, change)
        except GitHubError as exc:  # the PR exists: say so, with its URL, whatever failed
            return False, f"not merged: {pr['html_url']}: {exc}"

    def _try_merge(self, pr: dict[str, Any], change: Change) -> tuple[bool, str]:
        url = pr["html_url"]
        number = pr["number"]
        for poll in range(MERGEABLE_POLLS):
            pr = self.client.rest(
                "GET", f"/repos/{self.slug}/pulls/{number}", need="pull-requests: read"
            )
            if pr.get("mergeable") is not None:
                break
            self.client.sleep(1.0 + poll)
        state = pr.get("mergeable_state") or "unknown"
        if pr.get("mergeable") is False or state == "dirty":
            return False, f"not merged: {url} conflicts with {change.base}; rebase and run again"
        if state in ("clean", "unstable", "has_hooks"):
            try:
                result = self.client.rest(
                    "PUT",
                    f"/repos/{self.slug}/pulls/{number}/merge",
                    {"sha": change.commit, "merge_method": change.merge_method},
                    need="contents: write",
                )
                return bool(result.get("merged")), f"merged {url} ({change.merge_method})"
            except GitHubError as exc:
                if exc.status == 409:
                    return False, f"not merged: {url}'s branch moved since this run pushed it"
                if exc.status != 405 or "not allowed" in exc.reply:
                    return False, _not_merged(url, exc, change.merge_method)
        return self._auto_merge(pr, change, state)

    def _auto_merge(self, pr: dict[str, Any], change: Change, state: str) -> tuple[bool, str]:
        url = pr["html_url"]
        try:
            self.client.graphql(
                "mutation($id: ID!, $method: PullRequestMergeMethod!) {"
                " enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: $method})"
                " { pullRequest { number autoMergeRequest { mergeMethod } } } }",
                {"id": pr["node_id"], "method": change.merge_method.upper()},
                need="contents: write, pull-requests: write",
            )
        except GitHubError as exc:
            why = {
                "blocked": "required checks or reviews are pending",
                "behind": "the branch is behind its base, which must be up to date",
            }.get(state, f"GitHub reports it {state}")
            hint = ""
            if "not allowed for this repository" in str(exc):
                hint = "; allow auto-merge in the repository's Settings → General"
            return (
                False,
                f"not merged: {url}: {why}, and auto-merge could not be enabled ({exc}){hint}",
            )
        return False, (
            f"auto-merge enabled on {url} ({change.merge_method}): GitHub merges it once the "
            "required checks pass"
        )


def _not_merged(url: str, exc: GitHubError, method: str) -> str:
    if "not allowed" in exc.reply:
        return (
            f"not merged: {url}: the repository does not allow the {method} method; set "
            "orchestrate_merge_method to one it allows (merge, squash or rebase)"
        )
    return f"not merged: {url}: {exc}"


def _has_commit(repo: Path, sha: str) -> bool:
    return bool(git("cat-file", "-t", sha, cwd=repo, check=False).strip() == "commit")


def _git_remote(*args: str, cwd: Path, slug: str) -> str:
    """A git command that talks to the remote, with GitHub's refusals explained."""
    try:
        return git(*args, cwd=cwd)
    except RepositoryError as exc:
        text = str(exc)
        if "GH006" in text or "GH013" in text or "protected branch" in text.lower():
            hint = (
                "the branch is protected on GitHub (a branch protection rule or ruleset "
                "covers it); exclude orchestrate/* from the rule or let this token bypass it"
            )
        elif re.search(r"Permission to \S+ denied|returned error: 403", text):
            hint = (
                f"the token may not push to {slug}: give the workflow `permissions: contents: "
                "write` (and check out with persist-credentials)"
            )
        elif "stale info" in text:
            hint = "the branch moved on the remote while this run published; run again"
        else:
            raise
        raise GitHubError(f"{hint}. git said: {text}") from None
