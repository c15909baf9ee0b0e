"""The isolated worktree a run edits, and the guarantee that nothing of it outlives the run.

The user's checkout is never edited: every run works in a `git worktree` on a branch
``orchestrate/<slug>`` in a temporary directory. A small lease file under
``.git/orchestrate/`` names the owning process; a later run removes the leftovers of any
owner that died without cleaning up (``kill -9``, power loss). Only a green run keeps its
branch.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil

from pytest_orchestrator.errors import RepositoryError
from pytest_orchestrator.git import branch_exists, common_dir, git

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? ")


def slugify(command: str, limit: int = 60) -> str:
    """A branch-name slug of the command's first clause, cut at a word boundary."""
    words = re.findall(r"[A-Za-z0-9]+", re.split(r"[,;:\n]", command, maxsplit=1)[0].lower())
    slug = ""
    for word in words:
        if len(slug) + len(word) + 1 > limit:
            slug = slug or word[:limit]
            break
        slug = f"{slug}-{word}" if slug else word
    return slug or "change"


def _leases(repo: Path) -> Path:
    return common_dir(repo) / "orchestrate"


@dataclass
class Worktree:
    """A worktree of ``base_commit`` on ``branch``, with its lease."""

    repo: Path
    path: Path
    branch: str
    base_commit: str
    lease: Path

    @classmethod
    def create(cls, repo: Path, base_commit: str, command: str, run_id: str) -> Worktree:
        leases = _leases(repo)
        leases.mkdir(parents=True, exist_ok=True)
        branch = f"orchestrate/{slugify(command)}"
        n = 2
        while branch_exists(repo, branch):
            branch = f"orchestrate/{slugify(command)}-{n}"
            n += 1
        path = Path(tempfile.mkdtemp(prefix=f"orchestrate-{run_id}-")) / "tree"
        lease = leases / f"{run_id}.json"
        record = {
            "pid": os.getpid(),
            "created": psutil.Process().create_time(),
            "branch": branch,
            "path": str(path),
            "keep": False,
        }
        lease.write_text(json.dumps(record), encoding="utf-8")
        tree = cls(repo, path, branch, base_commit, lease)
        try:
            git("worktree", "add", "--quiet", "-b", branch, str(path), base_commit, cwd=repo)
        except BaseException:
            tree.remove()
            raise
        return tree

    def reset(self) -> None:
        """Back to the base commit, nothing untracked: every attempt starts clean."""
        git("reset", "--quiet", "--hard", self.base_commit, cwd=self.path)
        git("clean", "-fdxq", cwd=self.path)

    def diff(self) -> str:
        """The full change against the base commit, new files included."""
        git("add", "-A", cwd=self.path)
        return git("diff", "--cached", "--binary", self.base_commit, cwd=self.path)

    def diff_stat(self) -> str:
        git("add", "-A", cwd=self.path)
        return git("diff", "--cached", "--stat", self.base_commit, cwd=self.path).rstrip()

    def changed_files(self) -> list[str]:
        git("add", "-A", cwd=self.path)
        out = git("diff", "--cached", "--name-only", self.base_commit, cwd=self.path)
        return out.split()

    def changed_lines(self) -> dict[str, set[int]]:
        """Base-side line numbers each change touches, per file (from ``git diff -U0``)."""
        git("add", "-A", cwd=self.path)
        out = git("diff", "--cached", "-U0", self.base_commit, cwd=self.path)
        lines: dict[str, set[int]] = {}
        path = ""
        for line in out.splitlines():
            if line.startswith("--- "):
                path = line[6:] if line.startswith("--- a/") else ""
            elif line.startswith("@@") and path:
                match = _HUNK.match(line)
                if match:
                    start, count = int(match[1]), int(match[2] or 1)
                    lines.setdefault(path, set()).update(range(start, start + max(count, 1)))
        return lines

    def commit(self, message: str) -> str:
        git("add", "-A", cwd=self.path)
        git("commit", "--quiet", "--no-verify", "-F", "-", cwd=self.path, stdin=message)
        return git("rev-parse", "HEAD", cwd=self.path).strip()

    def keep_branch(self, commit: str) -> None:
        """Mark the branch, now at ``commit``, as the run's result: `remove` leaves it."""
        record = json.loads(self.lease.read_text(encoding="utf-8"))
        record["keep"] = True
        record["commit"] = commit
        self.lease.write_text(json.dumps(record), encoding="utf-8")

    def remove(self) -> None:
        """Remove the worktree, its temp dir, the branch unless kept, and the lease. Idempotent."""
        keep = False
        if self.lease.exists():
            keep = bool(json.loads(self.lease.read_text(encoding="utf-8")).get("keep"))
        _remove(self.repo, self.path, self.branch, keep=keep)
        self.lease.unlink(missing_ok=True)
        _drop_if_empty(self.lease.parent)


def _remove(repo: Path, path: Path, branch: str, *, keep: bool) -> None:
    if path.exists():
        git("worktree", "remove", "--force", str(path), cwd=repo, check=False)
    shutil.rmtree(path.parent, ignore_errors=True)
    git("worktree", "prune", cwd=repo, check=False)
    if not keep and branch_exists(repo, branch):
        git("branch", "-D", "--quiet", branch, cwd=repo, check=False)


def clean_stale(repo: Path) -> list[str]:
    """Remove what runs whose process is gone left behind; return their branches."""
    leases = _leases(repo)
    removed: list[str] = []
    if not leases.is_dir():
        return removed
    for lease in sorted(leases.glob("*.json")):
        try:
            record = json.loads(lease.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            lease.unlink(missing_ok=True)
            continue
        if _alive(int(record.get("pid", -1)), float(record.get("created", 0.0))):
            continue
        _remove(repo, Path(record["path"]), record["branch"], keep=bool(record.get("keep")))
        lease.unlink(missing_ok=True)
        removed.append(record["branch"])
    _drop_if_empty(leases)
    return removed


def _alive(pid: int, created: float) -> bool:
    """The lease's owner still runs (a reused pid with another start time does not count)."""
    try:
        return bool(abs(psutil.Process(pid).create_time() - created) < 1.0)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def _drop_if_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):
        directory.rmdir()


def init_submodules(repo: Path, tree: Path, base_commit: str) -> list[str]:
    """Give the worktree the base's submodules, cloned from the user's checked-out copies.

    A fresh worktree has empty submodule directories, and fetching them would need the
    network; the user's checkout has them. Each is cloned locally (``--shared``: no copy of
    the objects) and detached at the commit the base records. A submodule the checkout has
    not initialised is refused by name, with the command that fixes it.
    """
    listing = git("ls-tree", "-r", "-z", base_commit, cwd=repo)
    links = [
        (entry.split("\t", 1)[1], entry.split()[2])
        for entry in listing.split("\0")
        if entry.startswith("160000 ")
    ]
    missing = [path for path, _ in links if not (repo / path / ".git").exists()]
    if missing:
        raise RepositoryError(
            f"the repository has submodules that are not checked out here ({', '.join(missing)})"
            ": run `git submodule update --init --recursive` first, so the run can use them "
            "without the network"
        )
    for path, sha in links:
        target = tree / path
        shutil.rmtree(target, ignore_errors=True)
        git(
            "clone", "--quiet", "--shared", "--no-checkout", str(repo / path), str(target), cwd=repo
        )
        try:
            git("checkout", "--quiet", "--detach", sha, cwd=target)
        except RepositoryError:
            raise RepositoryError(
                f"submodule {path} in your checkout lacks commit {sha[:10]} that the base "
                f"records: run `git submodule update --init --recursive` first"
            ) from None
    return [path for path, _ in links]
