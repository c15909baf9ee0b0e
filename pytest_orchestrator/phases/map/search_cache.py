"""Search results kept across runs: the same search of the same tree is not run twice.

Map's ripgrep passes are pure functions of the tree's content and the search terms. When the
tree is a clean git work tree (nothing modified, nothing untracked), the commit's tree id
names that content exactly, so ``(tree id, terms)`` keys the results: a second run of a
command on an unchanged repository skips ripgrep altogether. Anything else (a dirty tree, no
git) is simply not cached.

Stored in ``search.sqlite`` beside the slice cache (zlib-compressed JSON); like the slice
cache it is never needed for correctness: a missing, locked or corrupt file means a miss,
and a corrupt file is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import subprocess
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Final

from pytest_orchestrator.store import open_store, transaction

FILENAME: Final = "search.sqlite"
SCHEMA_VERSION: Final = 1
#: Entries kept; the least recently written go first.
MAX_ENTRIES: Final = 500


def tree_state(root: Path) -> str | None:
    """The git tree id of ``root`` if it is a clean work tree (untracked files count), else
    None. Costs one ``git status`` (~0.1 s for 20k files)."""
    if not (root / ".git").exists():
        return None
    # --no-optional-locks: read only; status would otherwise refresh and rewrite the index
    git = ["git", "--no-optional-locks", "-C", str(root)]
    try:
        status = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=normal"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if status.returncode != 0 or status.stdout.strip():
            return None
        tree = subprocess.run(
            [*git, "rev-parse", "HEAD^{tree}"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return tree.stdout.strip() if tree.returncode == 0 and tree.stdout.strip() else None


def search_key(state: str, *parts: object) -> str:
    """The key of one search: the tree, then which search and everything it was given."""
    payload = json.dumps([state, *parts], sort_keys=True, default=sorted)
    return hashlib.sha1(payload.encode(), usedforsecurity=False).hexdigest()


class SearchCache:
    """Search results by `search_key`; ``None`` path: in memory (tests)."""

    def __init__(self, path: Path | None, *, max_entries: int = MAX_ENTRIES) -> None:
        self.path = path
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = self._open()

    @classmethod
    def open(
        cls, directory: Path, filename: str = FILENAME, *, max_entries: int = MAX_ENTRIES
    ) -> SearchCache:
        """The store ``directory/filename`` (another name: another store of the same kind,
        `pytest_orchestrator.phases.map.result_cache`)."""
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            return cls(None, max_entries=max_entries)
        return cls(directory / filename, max_entries=max_entries)

    def _open(self) -> sqlite3.Connection | None:
        try:
            # Map looks up its searches from worker threads: one connection, one lock
            return open_store(
                self.path,
                SCHEMA_VERSION,
                ["CREATE TABLE searches (key TEXT PRIMARY KEY, written REAL, payload BLOB)"],
                timeout=5.0,
                check_same_thread=False,
            )
        except sqlite3.DatabaseError:  # corrupt twice: it is only a cache
            return None

    def get(self, key: str) -> Any:
        """The stored value, or None."""
        if self._db is None:
            return None
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT payload FROM searches WHERE key = ?", (key,)
                ).fetchone()
            return None if row is None else json.loads(zlib.decompress(row[0]))
        except (sqlite3.Error, zlib.error, ValueError):
            return None

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON-able) under ``key``; errors are misses, not failures."""
        if self._db is None:
            return
        blob = zlib.compress(json.dumps(value).encode(), 1)
        with self._lock:
            self._write(key, blob)

    def _write(self, key: str, blob: bytes) -> None:
        assert self._db is not None
        with contextlib.suppress(sqlite3.Error), transaction(self._db, immediate=True):
            self._db.execute(
                "INSERT OR REPLACE INTO searches VALUES (?, ?, ?)", (key, time.time(), blob)
            )
            self._db.execute(
                "DELETE FROM searches WHERE key NOT IN"
                " (SELECT key FROM searches ORDER BY written DESC, rowid DESC LIMIT ?)",
                (self.max_entries,),
            )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
