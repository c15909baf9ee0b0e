"""The worktree a run edits, and the guarantee that nothing of a run outlives it.

The user's checkout is never edited: a run that will change code works in a `git worktree`
of its own. The worktrees persist, one *slot* per concurrent run, in a private directory per
repository under the system's temporary directory (`slots_home`:
``$TMPDIR/pytest-orchestrator-<uid>/<key of the repository>/<n>/tree``): a run takes the
first slot no live run holds (an ``flock`` on ``<n>.lock``, released by the kernel however
the holder ends), and resets it to the base commit, cleans it (``git clean -ffdx``: nothing of
an earlier run stays) and verifies it (HEAD, and an empty ``git status --ignored``), which
rewrites only the files that differ instead of checking out every file. A slot that fails
verification (a kill mid-checkout, files the system's temp cleaner removed) is added afresh.
Not in the checkout, nor in the cache directory (inside the checkout by default): a worktree
nested in the checkout would find the checkout's pytest configuration above its own, hand
the checkout's path to the code under test in every path it sees, and be walked by the
user's tools and by the phases that read the checkout in place (`pytest_orchestrator.repo.view`).
Slots of repositories that no longer exist are removed by the next run.

A small lease file under ``.git/orchestrate/`` names the owning process and what the run
holds: its worktree, the process groups of its test runs and Monte Carlo children
(registered through `pytest_orchestrator.guard.containment`), and — once a green commit
exists — its branch and that commit. A later run stops and removes what an owner that died
without cleaning up (``kill -9``, power loss) left behind (`clean_stale`); a slot itself is
left for the next run to reset.

The worktree's HEAD is detached: a run's branch ``orchestrate/<slug>`` is created only for a
commit (`Worktree.commit`), and survives only when the lease records that commit
(`Worktree.keep_branch`) *and* the branch still points at it. A keep flag without a commit,
or a branch that has moved since, is deleted like any other leftover. The lease is replaced
atomically, so a kill in mid-write never leaves half a record.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psutil

from pytest_orchestrator.errors import RepositoryError
from pytest_orchestrator.guard import containment
from pytest_orchestrator.guard.proctree import Group, stop_group
from pytest_orchestrator.repo.files import atomic_write
from pytest_orchestrator.repo.git import branch_exists, common_dir, git

BRANCH_ATTEMPTS: Final = 20
"""Names tried (``<slug>``, ``<slug>-2``, …) when concurrent runs take them first."""
STALE_GRACE: Final = 2.0
"""Seconds a dead run's process groups get between SIGTERM and SIGKILL."""
TREES: Final = f"pytest-orchestrator-{os.getuid()}"
"""The directory of every repository's persistent worktrees, in the system's temp dir."""
SLOTS: Final = 8
"""Persistent worktrees per repository: how many runs may work on it at once."""

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


@dataclass(eq=False)
class Worktree:
    """A persistent worktree slot holding ``base_commit`` (detached), with its lease."""

    repo: Path
    path: Path
    branch: str
    """Empty until `commit` made the run's branch."""
    base_commit: str
    lease: Path
    slug: str = "change"
    attempts: int = BRANCH_ATTEMPTS
    reused: bool = False
    """The slot held a worktree already, which was reset rather than checked out afresh."""
    rewritten: list[str] = field(default_factory=list)
    """When reused: the files the reset rewrote or deleted (they differed from the base)."""
    clean_tree: str | None = None
    """When reused: the base's tree id, the slot having been verified to hold exactly it
    (nothing modified, untracked or ignored); None when that was not verified."""
    _slot: int | None = field(default=None, repr=False)
    """The open, ``flock``-ed lock file of the slot (closed by `remove` or by our death)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _gitdir: str = field(default="", repr=False)
    """The worktree's ``.git`` pointer as git wrote it: a plan must never redirect it."""

    @classmethod
    def create(
        cls,
        repo: Path,
        base_commit: str,
        command: str,
        run_id: str,
        *,
        attempts: int = BRANCH_ATTEMPTS,
        scratch: Path | None = None,
    ) -> Worktree:
        """Take a free slot and make its worktree the base commit, clean and verified.

        The lease names the slot (and the run's ``scratch`` directory, removed with the
        leftovers of a run that died) before anything in it changes, so a later run can tell
        whose leftovers they are; the branch is made later, by `commit`.
        """
        path, fd = _take_slot(repo)
        leases = _leases(repo)
        tree = cls(
            repo, path, "", base_commit, leases / f"{run_id}.json", slugify(command), attempts,
            _slot=fd,
        )  # fmt: skip
        try:
            tree._write(
                {
                    "pid": os.getpid(),
                    "created": psutil.Process().create_time(),
                    "branch": "",
                    "base": base_commit,
                    "path": str(path),
                    "scratch": str(scratch) if scratch is not None else "",
                    "persistent": True,
                    "claimed": False,
                    "keep": False,
                    "commit": None,
                    "groups": [],
                }
            )
            tree.reused = tree._prepare()
            tree._gitdir = (tree.path / ".git").read_text(encoding="utf-8")
            containment.attach(tree)
            return tree
        except BaseException:
            tree.remove()
            raise

    def _prepare(self) -> bool:
        """Reset the slot's worktree to the base, or add it afresh; True when reused."""
        if _is_our_worktree(self.repo, self.path):
            try:
                out = git("diff", "--name-only", "--no-renames", "-z", self.base_commit,
                          cwd=self.path)  # fmt: skip
                self.rewritten = sorted(p for p in out.split("\0") if p)
                git("checkout", "--quiet", "--force", "--detach", self.base_commit, cwd=self.path)
                git("clean", "-ffdxq", cwd=self.path)
                self.clean_tree = _verified(self.path, self.base_commit)
                if self.clean_tree is not None:
                    return True
            except RepositoryError:
                pass  # broken in some other way: start it afresh below
        git("worktree", "remove", "--force", "--force", str(self.path), cwd=self.repo, check=False)
        shutil.rmtree(self.path, ignore_errors=True)
        git("worktree", "prune", cwd=self.repo, check=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        git(
            "worktree", "add", "--quiet", "--detach", str(self.path), self.base_commit,
            cwd=self.repo,
        )  # fmt: skip
        return False

    def verify(self) -> None:
        """Refuse to go on unless the worktree's git dir is still its own.

        ``<worktree>/.git`` is a file naming the worktree's private git dir; rewritten to
        point at the user's ``.git``, a commit or reset in the worktree would land on the
        user's branch and index. Plan validation keeps ``.git`` out of every path; this is
        the check behind it, made before every diff, commit and reset.
        """
        pointer = self.path / ".git"
        if (
            pointer.is_symlink()
            or not pointer.is_file()
            or pointer.read_text(encoding="utf-8", errors="replace") != self._gitdir
        ):
            raise RepositoryError(
                f"the worktree's git pointer {pointer} was changed during the run; nothing "
                "more is done in it (no diff, commit or reset), and nothing is kept"
            )

    def _git(self, *args: str, stdin: str | None = None) -> str:
        self.verify()
        return git(*args, cwd=self.path, stdin=stdin)

    def reset(self) -> None:
        """Back to the base commit, nothing untracked: every attempt starts clean."""
        self._git("reset", "--quiet", "--hard", self.base_commit)
        self._git("clean", "-fdxq")

    def diff(self) -> str:
        """The full change against the base commit, new files included."""
        self._git("add", "-A")
        return self._git("diff", "--cached", "--binary", self.base_commit)

    def diff_stat(self) -> str:
        self._git("add", "-A")
        return self._git("diff", "--cached", "--stat", self.base_commit).rstrip()

    def changed_files(self) -> list[str]:
        self._git("add", "-A")
        return self._git("diff", "--cached", "--name-only", self.base_commit).split()

    def changed_lines(self) -> dict[str, set[int]]:
        """Base-side line numbers each change touches, per file (from ``git diff -U0``)."""
        self._git("add", "-A")
        out = self._git("diff", "--cached", "-U0", self.base_commit)
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
        """Commit the change (on the detached HEAD) and make the run's branch point at it:
        a new branch for the first commit; a later one moves it (a kept commit stays the
        recorded result, so a moved branch is no longer one)."""
        self._git("add", "-A")
        previous = self._git("rev-parse", "HEAD").strip()
        self._git("commit", "--quiet", "--no-verify", "-F", "-", stdin=message)
        commit = self._git("rev-parse", "HEAD").strip()
        if self.branch:
            git("update-ref", f"refs/heads/{self.branch}", commit, previous, cwd=self.repo)
        else:
            self._branch_at(commit)
        return commit

    def _branch_at(self, commit: str) -> None:
        """Create the first free ``orchestrate/<slug>[-n]`` branch at ``commit``.

        Another run may take a name between our check and ``git branch``; then the next name
        is tried, ``attempts`` names in all. The lease names the branch (and the commit)
        before git creates it — a kill in between must not leave an unrecorded branch — but
        marks it *claimed* only once it is ours: an unclaimed name is never deleted unless it
        points at the base or that commit and no live run names it.
        """
        for name in _branch_names(self.slug, self.attempts):
            if branch_exists(self.repo, name):
                continue
            self.branch = name
            self._update(branch=name, claimed=False, commit=commit)
            try:
                git("branch", "--quiet", "--no-track", name, commit, cwd=self.repo)
            except RepositoryError as exc:
                if "already exists" in str(exc) and branch_exists(self.repo, name):
                    continue
                raise
            self._update(claimed=True)
            return
        self.branch = ""
        self._update(branch="", claimed=False)
        raise RepositoryError(
            f"no free branch name for this run's commit {commit[:12]}: orchestrate/{self.slug} "
            f"and its {self.attempts - 1} numbered variants are taken, some by runs that "
            "finished at the same moment. Delete old orchestrate/* branches (git branch "
            "--list 'orchestrate/*') or try again."
        )

    def keep_branch(self, commit: str) -> None:
        """Make ``commit`` — already on the branch — the run's result: `remove` and a later
        `clean_stale` keep the branch as long as it points at that commit. Commit first:
        a keep recorded before its commit exists would keep a branch that holds nothing."""
        tip = _tip(self.repo, self.branch)
        if tip != commit:
            raise RepositoryError(
                f"cannot keep branch {self.branch} at {commit[:12]}: it points at "
                f"{(tip or 'nothing')[:12]}. Commit first, then keep the commit that was made."
            )
        self._update(keep=True, commit=commit)

    def kept_commit(self) -> str | None:
        """The recorded result commit, if the branch still points at it."""
        record = self._read()
        commit = record.get("commit") if record else None
        if record and record.get("keep") and commit and _tip(self.repo, self.branch) == commit:
            return str(commit)
        return None

    def add_group(self, group: Group) -> None:
        """Record a process group of this run in the lease (`containment` calls this)."""
        with self._lock:
            record = self._read()
            if record is not None and list(group) not in record["groups"]:
                record["groups"].append(list(group))
                self._write(record)

    def drop_group(self, group: Group) -> None:
        with self._lock:
            record = self._read()
            if record is not None and list(group) in record["groups"]:
                record["groups"].remove(list(group))
                self._write(record)

    def remove(self) -> None:
        """Stop the run's recorded process groups, delete the branch unless it holds the
        kept commit, drop the lease and free the slot (its worktree stays, for the next run
        to reset). Idempotent."""
        containment.detach(self)
        with self._lock:
            record = self._read()
        if record is None:  # removed before, or never leased: no branch of ours to judge
            record = {"path": str(self.path), "branch": "", "persistent": True}
        _stop_groups(record, grace=1.0)
        if _remove(self.repo, record, live_branches=_live_branches(self.repo, but=self.lease)):
            _unlink_lease(self.lease)
        if self._slot is not None:
            os.close(self._slot)  # releases the flock
            self._slot = None

    def _read(self) -> dict[str, Any] | None:
        try:
            record = json.loads(self.lease.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def _write(self, record: dict[str, Any]) -> None:
        """Replace the lease atomically: a kill mid-write leaves the old or the new record.

        Another run that removes its own lease also removes the leases directory when it
        looks empty, possibly between our ``mkdir`` and our write: make it again and retry.
        """
        for _ in range(20):
            try:
                self.lease.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(self.lease, json.dumps(record), tmp=_tmp_of(self.lease))
                return
            except FileNotFoundError:
                continue
        raise RepositoryError(f"cannot write the run's lease {self.lease}: its directory vanishes")

    def _update(self, **changes: Any) -> None:
        with self._lock:
            record = self._read()
            if record is None:
                raise RepositoryError(
                    f"the run's lease {self.lease} is gone: another process removed this run's "
                    "leftovers. Run again."
                )
            record.update(changes)
            self._write(record)


def slots_home(repo: Path) -> Path:
    """The directory of ``repo``'s worktree slots (keyed by its git directory, so every
    worktree of one repository shares them)."""
    common = str(common_dir(repo).resolve())
    return Path(tempfile.gettempdir()) / TREES / hashlib.sha256(common.encode()).hexdigest()[:16]


def _private(directory: Path) -> None:
    """Make ``directory`` ours alone, or refuse: another user could plant a tree there."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = directory.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise RepositoryError(
            f"{directory} is not a private directory of yours (a link, another owner, or "
            "writable by others): remove it, or point TMPDIR elsewhere, and run again"
        )


def _take_slot(repo: Path) -> tuple[Path, int]:
    """The worktree path of the first slot no live run holds, and its locked file."""
    trees = slots_home(repo)
    _private(trees.parent)
    _private(trees)
    _prune_orphans(trees.parent)
    (trees / "repository").write_text(str(common_dir(repo).resolve()), encoding="utf-8")
    for n in range(SLOTS):
        fd = os.open(trees / f"{n}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return trees / str(n) / "tree", fd
    raise RepositoryError(
        f"{SLOTS} runs are already working on this repository, each in a worktree of its own "
        f"under {trees}: wait for one of them to finish, then run again"
    )


def _prune_orphans(root: Path, limit: int = 1) -> None:
    """Remove the slots of (at most ``limit``) repositories whose git directory is gone:
    nothing can run there. One per run: a test suite leaves hundreds of throw-away
    repositories, and deleting all their slots at once held one run up for minutes."""
    for home in root.iterdir():
        if limit <= 0:
            return
        try:
            recorded = (home / "repository").read_text(encoding="utf-8")
        except OSError:
            continue
        if recorded and not Path(recorded).is_dir():
            shutil.rmtree(home, ignore_errors=True)
            limit -= 1


def _is_our_worktree(repo: Path, path: Path) -> bool:
    """``path`` is a worktree of ``repo`` (its ``.git`` file leads to the same git dir)."""
    if not (path / ".git").is_file() or (path / ".git").is_symlink():
        return False
    out = git("rev-parse", "--git-common-dir", cwd=path, check=False, read_only=True).strip()
    return bool(out) and (path / out).resolve() == common_dir(repo).resolve()


def _verified(path: Path, base_commit: str) -> str | None:
    """The base commit's tree id if HEAD is the base commit and nothing differs from it,
    ignored files included; else None."""
    try:
        head, tree = git("rev-parse", "HEAD", "HEAD^{tree}", cwd=path, read_only=True).split()
        status = git(
            "status", "--porcelain", "--ignored=matching", "--untracked-files=all",
            cwd=path, read_only=True,
        )  # fmt: skip
    except (RepositoryError, ValueError):
        return None
    return tree if head == base_commit and not status.strip() else None


def _branch_names(slug: str, attempts: int) -> list[str]:
    return [f"orchestrate/{slug}"] + [f"orchestrate/{slug}-{n}" for n in range(2, attempts + 1)]


def _tmp_of(lease: Path) -> Path:
    return lease.with_name(f".{lease.name}.tmp")


def _unlink_lease(lease: Path) -> None:
    lease.unlink(missing_ok=True)
    _tmp_of(lease).unlink(missing_ok=True)
    _drop_if_empty(lease.parent)


def _tip(repo: Path, branch: str) -> str | None:
    if not branch:
        return None
    out = git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", cwd=repo, check=False)
    return out.strip() or None


def _stop_groups(record: dict[str, Any], grace: float) -> None:
    """Stop the process groups a lease records (a reused pid is left alone, see `Group`)."""
    groups = []
    for entry in record.get("groups") or []:
        with contextlib.suppress(TypeError, ValueError):
            groups.append(Group(int(entry[0]), float(entry[1])))
    for group in groups:
        stop_group(group, grace=grace)


def _remove(repo: Path, record: dict[str, Any], *, live_branches: set[str]) -> bool:
    """Remove the record's worktree and its branch unless that is a result; a name never
    claimed is also left alone while a running owner (``live_branches``) names it.

    True when all of it is gone: otherwise the caller keeps the lease, so that the next
    run tries again rather than nobody ever.
    """
    if record.get("scratch"):
        shutil.rmtree(str(record["scratch"]), ignore_errors=True)
    path = Path(record.get("path") or "")
    if record.get("persistent"):
        pass  # a slot's worktree stays: the next run that takes the slot resets it
    elif record.get("path"):
        if path.exists():
            git("worktree", "remove", "--force", str(path), cwd=repo, check=False)
        shutil.rmtree(path.parent, ignore_errors=True)
    git("worktree", "prune", cwd=repo, check=False)
    branch = str(record.get("branch") or "")
    claimed = record.get("claimed", True)
    if branch and (claimed or branch not in live_branches) and not _is_result(repo, record):
        git("branch", "-D", "--quiet", branch, cwd=repo, check=False)
        if _tip(repo, branch) is not None:
            return False
    return bool(record.get("persistent")) or not (record.get("path") and path.exists())


def _is_result(repo: Path, record: dict[str, Any]) -> bool:
    """Whether the lease's branch must stay: it holds the recorded green commit, or it was
    never ours (an unclaimed name another run created; ours would be at the base or at the
    commit the lease records)."""
    tip = _tip(repo, str(record.get("branch") or ""))
    if tip is None:
        return True  # nothing to delete
    if record.get("keep") and record.get("commit") and tip == record["commit"]:
        return True
    return not record.get("claimed", True) and tip not in (record.get("base"), record.get("commit"))


def clean_stale(repo: Path) -> list[str]:
    """Stop and remove what runs whose process is gone left behind; return their run ids.

    For each such lease: its recorded process groups are stopped (SIGTERM, then SIGKILL),
    its scratch directory removed (its persistent worktree stays, for the next run to reset),
    and its branch deleted unless it holds the recorded green commit.
    """
    leases = _leases(repo)
    removed: list[str] = []
    if not leases.is_dir():
        return removed
    records = _records(leases)
    live = {str(r.get("branch")) for _, r in records if r is not None and _owner_alive(r)}
    for lease, record in records:
        if record is None:
            _unlink_lease(lease)
            continue
        if _owner_alive(record):
            continue
        _stop_groups(record, grace=STALE_GRACE)
        if not _remove(repo, record, live_branches=live):
            continue  # the lease stays for another try
        _unlink_lease(lease)
        removed.append(lease.stem)
    _drop_if_empty(leases)
    return removed


def _records(leases: Path) -> list[tuple[Path, dict[str, Any] | None]]:
    """Every lease with its record (None: unreadable). A temp file without its lease is a
    kill during the first write: it stands for the lease."""
    found: list[tuple[Path, dict[str, Any] | None]] = []
    names = {p.name for p in leases.glob("*.json")}
    candidates = sorted(leases.glob("*.json")) + [
        leases / t.name[1 : -len(".tmp")]
        for t in sorted(leases.glob(".*.json.tmp"))
        if t.name[1 : -len(".tmp")] not in names
    ]
    for lease in candidates:
        source = lease if lease.exists() else _tmp_of(lease)
        try:
            record = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = None
        if source != lease and not isinstance(record, dict) and _young(source):
            continue  # a run writing its first lease right now
        found.append((lease, record if isinstance(record, dict) else None))
    return found


def _young(path: Path, seconds: float = 60.0) -> bool:
    try:
        return time.time() - path.stat().st_mtime < seconds
    except OSError:
        return False


def _live_branches(repo: Path, but: Path) -> set[str]:
    """Branches that leases of running owners (other than ``but``) name."""
    leases = _leases(repo)
    if not leases.is_dir():
        return set()
    return {
        str(r.get("branch"))
        for lease, r in _records(leases)
        if lease != but and r is not None and _owner_alive(r)
    }


def _owner_alive(record: dict[str, Any]) -> bool:
    try:
        return _alive(int(record.get("pid", -1)), float(record.get("created", 0.0)))
    except (TypeError, ValueError):
        return False


def _alive(pid: int, created: float) -> bool:
    """The lease's owner still runs (a reused pid with another start time, or a zombie that
    no one has reaped, does not count)."""
    try:
        proc = psutil.Process(pid)
        return bool(
            abs(proc.create_time() - created) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE
        )
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
