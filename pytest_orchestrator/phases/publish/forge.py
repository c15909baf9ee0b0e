"""Where a green change goes. A `Forge` posts a committed branch as a pull request.

`LocalForge` needs no network: the committed branch plus the run directory *is* the PR, and
merging fast-forwards the base branch. `pytest_orchestrator.phases.publish.github.GitHubForge`
pushes and opens (or updates) a real pull request; `choose_forge` picks one from the settings
and the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, final

from pytest_orchestrator.errors import OrchestratorError
from pytest_orchestrator.model import PublishResult
from pytest_orchestrator.phases.publish import github
from pytest_orchestrator.phases.publish.change import Change
from pytest_orchestrator.repo.git import current_branch, dirty_paths, git


class Forge(Protocol):
    name: str

    def publish(self, change: Change) -> PublishResult: ...


def choose_forge(repo: Path, kind: str, slug: str | None, remote: str = "origin") -> Forge:
    """``local``, ``github``, or ``auto``: GitHub when a token and a GitHub repository are
    known, the local forge otherwise."""
    if kind == "local":
        return LocalForge()
    if kind not in ("github", "auto"):
        raise OrchestratorError(f"unknown forge {kind!r}: use local, github or auto")
    token = github.token()
    slug = github.repository(repo, remote, slug)
    if token and slug:
        client = github.Client(github.Endpoints.from_env(os.environ), token)
        return github.GitHubForge(slug, client, remote=remote)
    if kind == "github":
        missing = (
            "GITHUB_TOKEN"
            if not token
            else "the repository (ini orchestrate_github_repo, GITHUB_REPOSITORY, or a "
            "GitHub remote)"
        )
        raise OrchestratorError(f"the github forge needs {missing}")
    return LocalForge()


@final
class LocalForge:
    name = "local"

    def publish(self, change: Change) -> PublishResult:
        notes: list[str] = []
        merged = False
        if change.merge:
            merged, note = self._merge(change.repo, change.branch, change.commit, change.base)
            notes.append(note)
        return PublishResult(
            forge=self.name,
            branch=change.branch,
            commit=change.commit,
            url=str(change.render(change.branch)),
            merged=merged,
            notes=notes,
        )

    def _merge(self, repo: Path, branch: str, commit: str, base: str | None) -> tuple[bool, str]:
        """Fast-forward ``base`` to the tested commit, or say why not (never a blind merge)."""
        if base is None:
            return False, "merge skipped: no base branch (detached HEAD); pass --orchestrate-base"
        if not _is_ancestor(repo, base, commit):
            return False, (
                f"merge skipped: {base} moved since the run started; the tested commit no "
                f"longer fast-forwards it. Merge {branch} yourself after a fresh run"
            )
        if current_branch(repo) == base:
            if dirty_paths(repo):
                return False, (
                    f"merge skipped: your checkout of {base} has uncommitted changes; "
                    f"commit or stash them, then run: git merge --ff-only {branch}"
                )
            git("merge", "--ff-only", "--quiet", commit, cwd=repo)
        else:
            old = git("rev-parse", f"refs/heads/{base}", cwd=repo).strip()
            git("update-ref", f"refs/heads/{base}", commit, old, cwd=repo)
        return True, f"merged into {base} (fast-forward to {commit[:10]})"


def _is_ancestor(repo: Path, base: str, commit: str) -> bool:
    import subprocess

    proc = subprocess.run(
        ["git", "merge-base", "--is-ancestor", f"refs/heads/{base}", commit],
        cwd=repo,
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0
