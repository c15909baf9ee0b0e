"""A thin, typed wrapper over the git command line."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_orchestrator.errors import RepositoryError

_TERMINAL_SIGNALS = {signal.SIGINT, signal.SIGTERM}

# Commits made by the orchestrator need an identity even on machines with none configured.
_IDENTITY = {
    "GIT_AUTHOR_NAME": "pytest-orchestrator",
    "GIT_AUTHOR_EMAIL": "orchestrator@localhost",
    "GIT_COMMITTER_NAME": "pytest-orchestrator",
    "GIT_COMMITTER_EMAIL": "orchestrator@localhost",
}


def git(
    *args: str,
    cwd: Path,
    check: bool = True,
    stdin: str | None = None,
    read_only: bool = False,
    extra_env: Mapping[str, str] | None = None,
) -> str:
    """Run ``git args`` in ``cwd`` and return its stdout; a failure raises `RepositoryError`.

    ``read_only`` sets ``GIT_OPTIONAL_LOCKS=0``: a reading command (``status``, ``diff``)
    then never refreshes, and so never rewrites or locks, the index. ``extra_env`` is added
    to the environment (``GIT_INDEX_FILE``, say).
    """
    if shutil.which("git") is None:
        raise RepositoryError("git is not installed: install git and run again")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(extra_env or {})}
    if read_only:
        env["GIT_OPTIONAL_LOCKS"] = "0"
    for key, value in _IDENTITY.items():
        env.setdefault(key, value)
    # Its own process group: Ctrl-C in the terminal reaches the whole foreground group, and
    # a git killed half-way through (during cleanup, say) leaves a branch or a lock file in
    # the user's repository. Interrupting us still stops it: it is killed on the way out.
    # Started with SIGINT and SIGTERM blocked: one sent to our group in the instant before
    # the child has left it stays pending, blocked, in git (CPython unblocks a child's signals,
    # with default handlers, only after it changed group), instead of killing it.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _TERMINAL_SIGNALS)
    try:
        proc = subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            process_group=0,
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    with proc:
        try:
            stdout, stderr = proc.communicate(stdin)
        except BaseException:
            proc.kill()
            raise
    if check and proc.returncode != 0:
        detail = (stderr or stdout).strip()
        if proc.returncode < 0:
            detail = f"killed by signal {-proc.returncode}" + (f": {detail}" if detail else "")
        raise RepositoryError(f"git {' '.join(args)} failed in {cwd}: {detail}")
    return stdout


def toplevel(start: Path) -> Path:
    """The root of the git work tree containing ``start``."""
    out = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        cwd=start,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RepositoryError(
            f"{start} is not inside a git repository: the orchestrator works on a branch of "
            "your repository. Run `git init && git add -A && git commit -m initial` first."
        )
    return Path(out.stdout.strip())


def head_commit(root: Path) -> str:
    try:
        return git("rev-parse", "--verify", "HEAD^{commit}", cwd=root).strip()
    except RepositoryError:
        raise RepositoryError(
            f"{root} has no commits yet: commit your code first (the run starts from HEAD)"
        ) from None


def current_branch(root: Path) -> str | None:
    out = git("symbolic-ref", "--quiet", "--short", "HEAD", cwd=root, check=False).strip()
    return out or None


def dirty_paths(root: Path) -> list[str]:
    out = git("status", "--porcelain", "--untracked-files=normal", cwd=root)
    return [line[3:] for line in out.splitlines() if line.strip()]


def common_dir(root: Path) -> Path:
    path = Path(git("rev-parse", "--git-common-dir", cwd=root, read_only=True).strip())
    return path if path.is_absolute() else (root / path).resolve()


def branch_exists(root: Path, name: str) -> bool:
    return bool(git("branch", "--list", name, cwd=root).strip())


def exclude(root: Path, *patterns: str) -> None:
    """Add each of ``patterns`` to ``.git/info/exclude`` (once), so run output never shows as
    dirty."""
    if not patterns:
        return
    path = common_dir(root) / "info" / "exclude"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    existing = text.splitlines()
    added = [p for p in dict.fromkeys(patterns) if p not in existing]
    if added:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(("" if not text or text.endswith("\n") else "\n") + "\n".join(added) + "\n")


def changes_since(root: Path, commit: str) -> list[tuple[str, str]]:
    """``(status, path)`` of every file of the working tree that differs from ``commit``:
    ``A`` added (untracked files included, ignored ones not), ``D`` deleted, ``M`` modified;
    a rename is a delete and an add. Reads only: nothing is staged, no lock is taken, so it
    may run beside other git commands in the same tree."""
    out = git("diff", "--name-status", "--no-renames", "-z", commit, cwd=root, read_only=True)
    fields = out.split("\0")
    found = {
        path: status[:1] for status, path in zip(fields[::2], fields[1::2], strict=False) if path
    }
    others = git("ls-files", "--others", "--exclude-standard", "-z", cwd=root, read_only=True)
    for path in others.split("\0"):
        if path:
            found.setdefault(path, "A")
    return sorted((status, path) for path, status in found.items())


def export(root: Path, commit: str, dest: Path, paths: Sequence[str] = ()) -> None:
    """Write the files of ``commit`` (only ``paths``, which must exist there, when given)
    under ``dest``, as a checkout writes them (attributes and filters applied), without
    touching ``root``'s index or working tree.

    Git writes the files itself (``read-tree`` into an index of its own, then
    ``checkout-index --prefix``): no archive is streamed through Python, and nothing is
    registered in the repository (no worktree entry a killed run could leave behind). The
    temporary index sits beside ``dest``, so whoever deletes ``dest``'s parent deletes it."""
    dest.mkdir(parents=True, exist_ok=True)
    index = dest.parent / f".{dest.name}.index"
    try:
        extra = {"GIT_INDEX_FILE": str(index)}
        git("read-tree", commit, cwd=root, extra_env=extra)
        listed = ["--", *paths] if paths else ["--all"]
        git("checkout-index", "--force", f"--prefix={dest}/", *listed, cwd=root, extra_env=extra)
    finally:
        index.unlink(missing_ok=True)
