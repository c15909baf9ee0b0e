"""A linter's own incremental cache for the attempt side, kept across runs.

mypy re-checks only what changed when its ``--cache-dir`` holds the rest. Once its base
findings come from `base_cache`, a run starts mypy only on the attempt, and with the cache in
the run's scratch directory that run was cold every time (more-itertools: most of a 4 s
Review). Here the cache lives in the orchestrator's cache directory, one per tool, command
line, worktree path and interpreter. It never changes an answer, only its cost: mypy checks
every entry against the file it was read from (size, modification time, content hash) and
against its own version and options, the incremental mode every mypy user runs in, and
the one an attempt already ran in when seeded from the base side's cache.

One run at a time uses a cache (an ``flock`` on its lock file, which the kernel releases
however the holder ends); a run that finds it taken, or runs with ``--orchestrate-fresh``,
uses its scratch directory as before. At most `KEEP` caches are kept: the least recently
used beyond them are deleted when nobody holds them (their lock files, a few bytes, stay).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from pytest_orchestrator.phases.review.tools import Tool

INCREMENTAL: Final = frozenset({"mypy"})
"""The discovered tools whose cache directory makes a second run cheaper."""
FOLDER: Final = "tool-caches"
KEEP: Final = 4
_PLACEHOLDER: Final = Path("<cache>")


def folder_for(cache_dir: Path, tool: Tool, root: Path) -> Path:
    """Where ``tool``'s kept cache for the tree at ``root`` lives."""
    blob = json.dumps(
        {"argv": tool.argv(_PLACEHOLDER), "root": str(root), "python": sys.executable},
        sort_keys=True,
    )
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return cache_dir / FOLDER / f"{tool.name}-{digest}"


@contextlib.contextmanager
def held(cache_dir: Path, tool: Tool, root: Path, *, fresh: bool = False) -> Iterator[Path | None]:
    """The kept cache of ``tool`` for ``root``, locked for this run while the block runs;
    None when the tool keeps none, ``fresh`` asks for no reuse, or another run holds it."""
    if fresh or tool.name not in INCREMENTAL:
        yield None
        return
    folder = folder_for(cache_dir, tool, root)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another run is using it
            yield None
            return
        folder.mkdir(exist_ok=True)
        os.utime(folder)  # most recently used
        yield folder
        _prune(folder.parent)
    finally:
        os.close(fd)


def _prune(parent: Path) -> None:
    """Delete the least recently used caches beyond `KEEP`, each only when nobody holds it."""
    with contextlib.suppress(OSError):
        caches = sorted(
            (p for p in parent.iterdir() if p.is_dir()),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in caches[KEEP:]:
            lock = old.with_suffix(".lock")
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(old, ignore_errors=True)  # the lock file stays: a run may
                # have opened it already, and must then lock the same file as the next one
            except OSError:
                continue
            finally:
                os.close(fd)
