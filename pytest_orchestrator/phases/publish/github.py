"""The GitHub forge: push the tested branch and open a pull request through the REST API.

Configured by ``GITHUB_TOKEN`` (or ``GH_TOKEN``), the repository slug (ini
``orchestrate_github_repo``, else read from the remote's URL) and ``GITHUB_API_URL`` (GitHub
Enterprise; default ``https://api.github.com``). It speaks plain HTTPS with the standard
library: two endpoints (open a PR, merge it) do not justify a client dependency.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Final, final

from pytest_orchestrator.errors import OrchestratorError
from pytest_orchestrator.model import PublishResult
from pytest_orchestrator.repo.git import git

DEFAULT_API: Final = "https://api.github.com"
_SLUG: Final = re.compile(r"github\.com[:/](?P<slug>[^/\s]+/[^/\s]+?)(?:\.git)?/?$")


def token() -> str | None:
    return os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN") or None


def slug_from_remote(repo: Path, remote: str) -> str | None:
    url = git("remote", "get-url", remote, cwd=repo, check=False).strip()
    match = _SLUG.search(url)
    return match["slug"] if match else None


@final
class GitHubForge:
    name = "github"

    def __init__(self, slug: str, token: str, *, api: str = DEFAULT_API, remote: str = "origin"):
        self.slug = slug
        self.token = token
        self.api = api.rstrip("/")
        self.remote = remote

    def publish(
        self, repo: Path, branch: str, commit: str, base: str | None, body: Path, merge: bool
    ) -> PublishResult:
        if base is None:
            raise OrchestratorError("a pull request needs a base branch: pass --orchestrate-base")
        git("push", "--quiet", self.remote, f"{commit}:refs/heads/{branch}", cwd=repo)
        text = body.read_text(encoding="utf-8")
        title = text.splitlines()[0].lstrip("# ").strip() if text else branch
        pr = self._call(
            "POST",
            f"/repos/{self.slug}/pulls",
            {"title": title, "head": branch, "base": base, "body": text},
        )
        notes = [f"pull request #{pr['number']} opened on {self.slug}"]
        merged = False
        if merge:
            result = self._call(
                "PUT",
                f"/repos/{self.slug}/pulls/{pr['number']}/merge",
                {"sha": commit, "merge_method": "merge"},
            )
            merged = bool(result.get("merged"))
            notes.append(f"merged: {result.get('message', '')}".rstrip(": "))
        return PublishResult(
            forge=self.name,
            branch=branch,
            commit=commit,
            url=str(pr["html_url"]),
            merged=merged,
            notes=notes,
        )

    def _call(self, method: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.api + path,
            data=json.dumps(payload).encode(),
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
                data: dict[str, Any] = json.loads(response.read() or b"{}")
                return data
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            hint = {
                401: "GITHUB_TOKEN was rejected",
                403: "the token lacks permission",
                404: f"no repository {self.slug} visible to this token",
                422: "GitHub refused the request",
            }.get(exc.code, "GitHub answered an error")
            raise OrchestratorError(f"{method} {path}: {exc.code} — {hint}: {detail}") from None
        except urllib.error.URLError as exc:
            raise OrchestratorError(f"cannot reach {self.api}: {exc.reason}") from None
