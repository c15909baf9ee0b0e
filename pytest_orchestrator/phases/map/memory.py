"""Memory: what earlier runs on this repository chose for similar commands.

After a green run the session calls `remember` with the slices the plan touched. Map asks
`Memory.recall` for the slices earlier, similar commands chose (Jaccard similarity of the
commands' words) and ranks them up. Stored in ``memory.sqlite`` beside the slice cache; like
the cache it is never needed for correctness: a missing, locked or corrupt file means "no
memory", and a corrupt file is rebuilt.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from pytest_orchestrator.model import Slice
from pytest_orchestrator.phases.map.terms import extract
from pytest_orchestrator.store import open_store, transaction

FILENAME: Final = "memory.sqlite"
SCHEMA_VERSION: Final = 1
#: Only the most recent runs are consulted.
MAX_RUNS: Final = 1000
_SCHEMA: Final = (
    "CREATE TABLE runs (id INTEGER PRIMARY KEY, created REAL, command TEXT, words TEXT)",
    "CREATE TABLE chosen (run INTEGER REFERENCES runs(id), path TEXT, symbol TEXT, hash TEXT)",
    "CREATE INDEX chosen_run ON chosen(run)",
)


def command_words(command: str) -> frozenset[str]:
    """The words that make two commands similar: sub-words plus whole identifiers."""
    terms = extract(command)
    return frozenset(terms.words) | {i.lower() for i in terms.identifiers}


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


class Memory:
    """The memory database of one repository (``None`` path: in memory, for tests)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._db = self._open()

    @classmethod
    def open(cls, directory: Path) -> Memory:
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory / FILENAME)

    def _open(self) -> sqlite3.Connection:
        # a corrupt or foreign file: it is only a memory, start again
        return open_store(self.path, SCHEMA_VERSION, _SCHEMA)

    def close(self) -> None:
        self._db.close()

    def record(self, command: str, chosen: Iterable[Slice]) -> None:
        """Remember that ``command`` was carried out by touching ``chosen``."""
        rows = [(s.path, s.symbol, s.hash) for s in chosen]
        if not rows:
            return
        words = " ".join(sorted(command_words(command)))
        with self._transaction() as db:
            cur = db.execute(
                "INSERT INTO runs (created, command, words) VALUES (?, ?, ?)",
                (time.time(), command, words),
            )
            db.executemany(
                "INSERT INTO chosen (run, path, symbol, hash) VALUES (?, ?, ?, ?)",
                [(cur.lastrowid, *row) for row in rows],
            )

    def recall(self, command: str, threshold: float = 0.2) -> dict[tuple[str, str], float]:
        """``(path, symbol)`` -> best similarity of an earlier command that chose it."""
        mine = command_words(command)
        best: dict[tuple[str, str], float] = {}
        runs = self._db.execute(
            "SELECT id, words FROM runs ORDER BY id DESC LIMIT ?", (MAX_RUNS,)
        ).fetchall()
        similar = {
            rid: s
            for rid, words in runs
            if (s := jaccard(mine, frozenset(words.split()))) >= threshold
        }
        if not similar:
            return best
        marks = ",".join("?" * len(similar))
        for rid, path, symbol in self._db.execute(
            f"SELECT run, path, symbol FROM chosen WHERE run IN ({marks})", list(similar)
        ):
            key = (path, symbol)
            best[key] = max(best.get(key, 0.0), similar[rid])
        return best

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with transaction(self._db, immediate=True):
            yield self._db


def remember(directory: Path, command: str, chosen: list[Slice]) -> None:
    """Record a green run's choice in ``directory/memory.sqlite`` (the slice cache's dir).

    Pass ``run.settings.cache_dir``: Map reads the memory from there.
    """
    memory = Memory.open(directory)
    try:
        memory.record(command, chosen)
    finally:
        memory.close()
