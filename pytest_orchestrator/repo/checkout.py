"""The user's checkout, checked rather than promised: a snapshot before, a comparison after.

The target's code runs in the worktree, but nothing stops a test from writing into the
user's checkout by absolute path, or a child from running ``git`` there. So the run takes a
snapshot of the checkout when it starts — HEAD, every ref but the run's own branches, the
index's content, ``git status``, and size and modification time of every tracked file — and
compares after each stage that ran the target's code. Any difference ends the run red with
the paths named. Reading it takes no lock and writes nothing (``GIT_OPTIONAL_LOCKS=0``: a
plain ``git status`` would refresh, and so rewrite, the index).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pytest_orchestrator.errors import RepositoryError
from pytest_orchestrator.repo.git import git

OWN_REFS: Final = "refs/heads/orchestrate/"
"""The run's own branches: they come and go by design."""


@dataclass(frozen=True)
class Snapshot:
    head: str
    refs: dict[str, str]
    index: str
    status: frozenset[str]
    files: dict[str, tuple[int, int]] | None
    """Size and mtime of every tracked file; None when taken for a run that never compares
    (a dry run: an lstat of each of 60,000 files is a tenth of a second it does not need)."""
    commit: str = ""
    """HEAD's commit."""
    hidden: int = 0
    """Index entries flagged assume-unchanged or skip-worktree: changes git does not show."""
    tree: str = ""
    """HEAD's tree id when ``git status`` (untracked files included) ran and showed nothing,
    so the work tree holds exactly that tree (as far as git shows: see ``hidden``); else
    empty. Read here so no later phase need run ``git status`` again for it."""

    def dirty(self) -> list[str]:
        """The paths ``git status`` shows (staged, modified, untracked but not ignored)."""
        return sorted(entry[3:] for entry in self.status if entry[2:3] == " ")


def _git(repo: Path, *args: str) -> str:
    return git(*args, cwd=repo, check=False, read_only=True)


def _object_ids(text: str) -> list[str]:
    """The lines of ``rev-parse`` output that are object ids (an unborn HEAD prints its name)."""
    return [w for w in text.split() if len(w) >= 40 and all(c in "0123456789abcdef" for c in w)]


def snapshot(repo: Path, *, files: bool = True) -> Snapshot:
    """The checkout now; ``files=False``: without `Snapshot.files`, so never to be compared."""
    ids = _object_ids(_git(repo, "rev-parse", "HEAD", "HEAD^{tree}"))
    commit, head_tree = (ids[0], ids[1]) if len(ids) == 2 else ("", "")
    head = commit + " " + _git(repo, "symbolic-ref", "-q", "HEAD")
    refs = {}
    for line in _git(repo, "for-each-ref", "--format=%(objectname) %(refname)").splitlines():
        sha, _, name = line.partition(" ")
        if not name.startswith(OWN_REFS):
            refs[name] = sha
    listing = _git(repo, "ls-files", "--stage", "-v", "-z")  # "<tag> <mode> <sha> <stage>\t<path>"
    index = hashlib.sha1(listing.encode()).hexdigest()
    entries = [entry for entry in listing.split("\0") if entry]
    # every untracked file, whatever the user's status.showUntrackedFiles says: one written
    # by the run must be noticed, in a directory already untracked too, and the clean tree
    # below must count them (a clean checkout costs the same: nothing to list)
    try:
        shown = git("status", "--porcelain", "-z", "--untracked-files=all", cwd=repo,
                    read_only=True)  # fmt: skip
        status_ok = True
    except RepositoryError:
        shown, status_ok = "", False
    status = frozenset(shown.split("\0")) - {""}
    stats: dict[str, tuple[int, int]] = {}
    top = str(repo)
    for entry in entries if files else ():
        rel = entry.partition("\t")[2]
        try:
            st = os.lstat(os.path.join(top, rel))  # (not pathlib: 60,000 files add up)
        except OSError:
            continue
        stats[rel] = (st.st_size, st.st_mtime_ns)
    hidden = sum(not entry.startswith("H ") for entry in entries)
    tree = head_tree if status_ok and not status else ""
    return Snapshot(
        head.strip(), refs, index, status, stats if files else None, commit, hidden, tree
    )


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """What changed in the checkout, one line per thing, paths named."""
    if before.files is None or after.files is None:
        raise ValueError("a snapshot taken with files=False cannot be compared")
    found = []
    if before.head != after.head:
        found.append(f"HEAD moved: {before.head} -> {after.head}")
    for name in sorted(set(before.refs) | set(after.refs)):
        if before.refs.get(name) != after.refs.get(name):
            found.append(f"ref {name}: {before.refs.get(name)} -> {after.refs.get(name)}")
    if before.index != after.index:
        found.append("the index (staged changes) was rewritten")
    for entry in sorted(before.status ^ after.status):
        found.append(f"git status: {entry!r} {'appeared' if entry in after.status else 'gone'}")
    for rel in sorted(set(before.files) | set(after.files)):
        if before.files.get(rel) != after.files.get(rel):
            found.append(f"file {rel} was written or removed")
    return found
