"""Whether the user's checkout can stand for the base commit, read in place.

Map, Logic and Plan only read the base. A run that will change nothing (a dry run,
``--collect-only``, a command the planner refuses) then needs no worktree, and a run that will
change something needs one only from the moment the planner accepted the command: until then
every phase reads the checkout itself, when its files *are* the base's. That holds when HEAD
is the base commit and git sees no difference: nothing staged or modified, no untracked file
that is not ignored, no sparse checkout, and no index entry flagged ``assume-unchanged`` or
``skip-worktree`` (whose changes git would not show). Anything else — another base, a dirty
or partial checkout — and the run reads from its worktree, made at once.

Reading in place is read only. Every git command here runs with ``GIT_OPTIONAL_LOCKS=0`` (a
plain ``git status`` refreshes, and so rewrites, the index); the session keeps the
controller from writing bytecode while the view is the checkout; files ignored by git (a
virtualenv, build output) are there but not part of the base, and the phases' file lists
come from git and ripgrep, which leave them out.
"""

from __future__ import annotations

from pathlib import Path

from pytest_orchestrator.repo.checkout import Snapshot
from pytest_orchestrator.repo.git import git


def checkout_differs(repo: Path, base_commit: str, taken: Snapshot) -> str | None:
    """None when the checkout at ``repo`` (as ``taken`` at the run's start) equals
    ``base_commit`` and can be read in place; else why not, in a few words."""
    if taken.commit != base_commit:
        return f"the checkout is at {taken.commit[:10] or 'no commit'}, not the base"
    sparse = git("config", "--bool", "core.sparseCheckout", cwd=repo, check=False, read_only=True)
    if sparse.strip() == "true":
        return "the checkout is sparse"
    if taken.hidden:
        return f"{taken.hidden} index entries are flagged assume-unchanged or skip-worktree"
    if taken.status:
        return f"{len(taken.dirty()) or len(taken.status)} path(s) differ from the base"
    if not taken.tree:
        return "git could not show the checkout's status"
    return None
