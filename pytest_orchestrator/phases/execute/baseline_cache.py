"""Baseline test runs kept across runs: an unchanged base is not tested twice.

A baseline is a function of the base commit's content and of the environment that runs it,
so ``(tree id, environment fingerprint, what was run)`` keys it. The fingerprint covers the
interpreter, every installed distribution with its version, this package's version (the
report's format), and the inner run's own options (xdist workers, the named tests). The
test configuration inside the repository is part of the tree; one outside it (an absolute
``-c`` path) is hashed in by content. ``--orchestrate-fresh`` skips the cache.

Stored in ``baseline.sqlite`` in the cache directory (`pytest_orchestrator.store`): never
needed for correctness, so a locked or corrupt file is a miss, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Final

from pytest_orchestrator import __version__
from pytest_orchestrator.model import TestRunResult
from pytest_orchestrator.store import open_store, transaction

FILENAME: Final = "baseline.sqlite"
SCHEMA_VERSION: Final = 1
MAX_ENTRIES: Final = 200
_CREATE: Final = (
    "CREATE TABLE baselines (key TEXT PRIMARY KEY, run_id TEXT NOT NULL, "
    "written REAL NOT NULL, result TEXT NOT NULL)",
)


def environment() -> list[str]:
    """The interpreter and every installed distribution, sorted: what the tests import."""
    dists = sorted(
        {f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions() if d.metadata}
    )
    return [sys.executable, sys.version, f"pytest-orchestrator=={__version__}", *dists]


def key(tree: str, what: Sequence[str], env: Sequence[str]) -> str:
    """The cache key of running ``what`` (the inner run's options) on ``tree`` in ``env``."""
    blob = json.dumps({"tree": tree, "what": list(what), "env": list(env)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class Hit:
    result: TestRunResult
    run_id: str
    """The run that measured it."""


class BaselineCache:
    """Get and put baseline results; every failure of the file is a miss."""

    def __init__(self, conn: sqlite3.Connection | None) -> None:
        self._conn = conn

    @classmethod
    def open(cls, cache_dir: Path) -> BaselineCache:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            return cls(open_store(cache_dir / FILENAME, SCHEMA_VERSION, _CREATE))
        except (OSError, sqlite3.Error):
            return cls(None)

    def get(self, cache_key: str) -> Hit | None:
        if self._conn is None:
            return None
        try:
            row = self._conn.execute(
                "SELECT result, run_id FROM baselines WHERE key = ?", (cache_key,)
            ).fetchone()
            if row is None:
                return None
            return Hit(TestRunResult.model_validate_json(row[0]), row[1])
        except (sqlite3.Error, ValueError):
            return None

    def put(self, cache_key: str, result: TestRunResult, run_id: str) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(sqlite3.Error), transaction(self._conn, immediate=True):
            self._conn.execute(
                "INSERT OR REPLACE INTO baselines VALUES (?, ?, ?, ?)",
                (cache_key, run_id, time.time(), result.model_dump_json()),
            )
            self._conn.execute(
                "DELETE FROM baselines WHERE key NOT IN "
                "(SELECT key FROM baselines ORDER BY written DESC LIMIT ?)",
                (MAX_ENTRIES,),
            )

    def recent_seconds(self, entries: int = 5) -> float | None:
        """The longest duration among the latest ``entries`` stored runs (any tree), or None:
        how long this repository's suite took lately, to size the next baseline's timeout."""
        if self._conn is None:
            return None
        try:
            rows = self._conn.execute(
                "SELECT result FROM baselines ORDER BY written DESC LIMIT ?", (entries,)
            ).fetchall()
            found = [TestRunResult.model_validate_json(row[0]).seconds for row in rows]
        except (sqlite3.Error, ValueError):
            return None
        return max(found) if found else None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
