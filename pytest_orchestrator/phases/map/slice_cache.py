"""The slice cache: a vector per code slice, kept in SQLite across runs and processes.

Map cuts files into slices, embeds each one (`embed`: hashed identifier features, see
`pytest_orchestrator.phases.map.embedding`) and ranks them against the command
(`SliceCache.topk`). Both are cached here, so a second run over an unchanged repository neither
re-reads nor re-parses a file:

* `SliceCache.file_slices`: the slices of a file whose fingerprint (git blob id, or
  ``size:mtime_ns``) has not changed;
* `SliceCache.get`: the vector of a slice, keyed by the SHA-1 of its raw bytes (`slice_key`).

Storage: ``<cache dir>/slices.sqlite3`` (`FILENAME`); the tables, `SCHEMA_VERSION` and the
concurrency rules (WAL, a busy timeout, one ``BEGIN IMMEDIATE`` transaction per write, so
several processes read and write at once) are in `pytest_orchestrator.phases.map.slice_store`.

Tiers: an LRU of recently used vectors in front of SQLite; for ranking, a float32 matrix of
every vector (`pytest_orchestrator.phases.map.slice_matrix`), loaded on the first
`SliceCache.topk` and refreshed incrementally (rows written since the last refresh, by any
process; everything again after an eviction).

Never fatal, never needed for correctness: a schema or dimension mismatch drops and rebuilds
the tables; a corrupt or truncated file is deleted and rebuilt with a `SliceCacheWarning`; a
directory that cannot be used falls back to an in-memory database with one warning; any other
SQLite error (a lock held past the timeout, a full disk) turns the operation into a miss, with
one warning per cache.

`DIM`, `embed` and `SCHEMA_VERSION` are re-exported here, so
``from pytest_orchestrator.phases.map.slice_cache import ...`` works for every name in ``__all__``.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Final, TypeVar, final

import numpy as np
import numpy.typing as npt

from pytest_orchestrator.phases.map.embedding import DIM, Vector, embed
from pytest_orchestrator.phases.map.slice_matrix import _Matrix
from pytest_orchestrator.phases.map.slice_store import (
    _SCHEMA,
    _TABLES,
    BUSY_TIMEOUT_S,
    CACHE_KIB,
    SCHEMA_VERSION,
)
from pytest_orchestrator.store import is_corrupt, open_store, transaction

__all__ = [
    "DIM",
    "FILENAME",
    "SCHEMA_VERSION",
    "SliceCache",
    "SliceCacheWarning",
    "SliceMeta",
    "embed",
    "slice_key",
]

_T = TypeVar("_T")

FILENAME: Final = "slices.sqlite3"
_TOUCH_BATCH: Final = 512
_LOAD_CHUNK: Final = 16_384  # rows read at a time: ~20 MiB of Python objects in flight
_STATS: Final = (
    "hits", "misses", "puts", "evictions", "rebuilds", "file_hits", "file_misses", "errors"
)  # fmt: skip


class SliceCacheWarning(UserWarning):
    """The slice cache could not be used as configured; the run goes on without (part of) it."""


def slice_key(raw: bytes) -> str:
    """The cache key of a slice: git's blob SHA-1 of its raw bytes (never of decoded text)."""
    from pytest_orchestrator.phases.map.slicing import (
        blob_sha1,  # lazily: slicing pulls in pydantic
    )

    return blob_sha1(raw)


@final
@dataclass(frozen=True)
class SliceMeta:
    """Where a slice is and what it costs: enough to use it without re-reading its file."""

    path: str
    symbol: str
    kind: str
    start_line: int
    end_line: int
    start_byte: int
    end_byte: int
    tokens: int


_META_COLUMNS: Final = tuple(f.name for f in fields(SliceMeta))


def _row(meta: SliceMeta) -> tuple[object, ...]:
    """``meta``'s columns in order (`dataclasses.astuple` deep-copies: ~20x the time)."""
    return tuple(getattr(meta, name) for name in _META_COLUMNS)


_UPSERT_META: Final = (
    f"INSERT INTO slice_meta(hash, {', '.join(_META_COLUMNS)}, last_used, seq)"
    f" VALUES ({', '.join('?' * (len(_META_COLUMNS) + 3))})"
    " ON CONFLICT(hash) DO UPDATE SET last_used = excluded.last_used, seq = excluded.seq, "
    + ", ".join(f"{c} = coalesce(excluded.{c}, {c})" for c in _META_COLUMNS)
)


@final
class SliceCache:
    """Vectors and metadata of code slices, in SQLite (or memory), safe across processes.

    ``path`` ``None`` means an in-memory database (same code, nothing persisted). See the
    module notes for the tables, the tiers and what happens when something goes wrong.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        dim: int = DIM,
        max_entries: int = 500_000,
        lru_size: int = 4096,
    ) -> None:
        if dim < 1 or max_entries < 1 or lru_size < 0:
            raise ValueError("dim and max_entries must be positive, lru_size not negative")
        self.path = path
        self.dim: Final = dim
        self.max_entries: Final = max_entries
        self.lru_size: Final = lru_size
        self.stats: dict[str, int] = dict.fromkeys(_STATS, 0)
        """Counters: hits, misses, puts, evictions, rebuilds, file_hits, file_misses, errors."""
        self._lock = threading.RLock()
        self._lru: OrderedDict[str, Vector] = OrderedDict()
        self._touched: dict[str, int] = {}
        self._touched_files: dict[str, int] = {}
        self._matrix: _Matrix | None = None
        self._synced = (0, 0)  # (epoch, seq) the matrix reflects
        self._warned = False
        self._clock = 0
        self._conn: sqlite3.Connection | None = self._open()

    @classmethod
    def open(
        cls,
        directory: Path | None,
        *,
        dim: int = DIM,
        max_entries: int = 500_000,
        lru_size: int = 4096,
    ) -> SliceCache:
        """The cache in ``directory/slices.sqlite3``, creating the directory if needed.

        ``None``, or a directory that cannot be created or written, gives an in-memory cache
        (the latter with one `SliceCacheWarning`).
        """
        path = None
        if directory is not None:
            try:
                Path(directory).mkdir(parents=True, exist_ok=True)
                path = Path(directory) / FILENAME
            except OSError as exc:
                warnings.warn(
                    f"slice cache directory {directory} cannot be created ({exc}); "
                    "caching in memory for this run",
                    SliceCacheWarning,
                    stacklevel=2,
                )
        return cls(path, dim=dim, max_entries=max_entries, lru_size=lru_size)

    def __enter__(self) -> SliceCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Write pending last-used times and close the database; idempotent."""
        with self._lock:
            if self._conn is None:
                return
            self._flush()
            self._conn.close()
            self._conn = None
            self._lru.clear()
            self._matrix = None

    def __len__(self) -> int:
        with self._lock:
            return self._safely(lambda: self._state()["count"], 0)

    # -- vectors

    def get(self, key: str) -> Vector | None:
        """The vector stored under ``key`` (read-only), or ``None``."""
        with self._lock:
            vector = self._lru.get(key)
            if vector is not None:
                self._lru.move_to_end(key)
            else:
                row = self._safely(
                    lambda: self._db.execute(
                        "SELECT vector FROM slice_cache WHERE hash = ?", (key,)
                    ).fetchone(),
                    None,
                )
                vector = self._decode(row[0]) if row is not None else None
                if vector is not None:
                    self._remember(key, vector)
            if vector is None:
                self.stats["misses"] += 1
                return None
            self.stats["hits"] += 1
            self._touch(self._touched, key)
            return vector

    def get_many(self, keys: Iterable[str]) -> dict[str, Vector]:
        """`get` of every key at once (one query per 500 keys not in the LRU): the vectors
        found, by key."""

        def select(chunk: list[str]) -> list[tuple[str, bytes]]:
            marks = ",".join("?" * len(chunk))
            return list(
                self._db.execute(
                    f"SELECT hash, vector FROM slice_cache WHERE hash IN ({marks})", chunk
                )
            )

        out: dict[str, Vector] = {}
        with self._lock:
            wanted = list(dict.fromkeys(keys))
            for key in wanted:
                vector = self._lru.get(key)
                if vector is not None:
                    self._lru.move_to_end(key)
                    out[key] = vector
            missing = [k for k in wanted if k not in out]
            for i in range(0, len(missing), 500):
                chunk = missing[i : i + 500]
                rows: list[tuple[str, bytes]] = self._safely(partial(select, chunk), [])
                for key, blob in rows:
                    vector = self._decode(blob)
                    if vector is not None:
                        self._remember(key, vector)
                        out[key] = vector
            for key in wanted:
                if key in out:
                    self.stats["hits"] += 1
                    self._touch(self._touched, key)
                else:
                    self.stats["misses"] += 1
        return out

    def meta(self, key: str) -> SliceMeta | None:
        """The metadata last stored with ``key``, or ``None``."""
        columns = ", ".join(_META_COLUMNS)
        with self._lock:
            row = self._safely(
                lambda: self._db.execute(
                    f"SELECT {columns} FROM slice_meta WHERE hash = ? AND path IS NOT NULL", (key,)
                ).fetchone(),
                None,
            )
        return None if row is None else SliceMeta(*row)

    def put(self, key: str, vector: npt.ArrayLike, meta: SliceMeta | None = None) -> None:
        """Store ``vector`` under ``key``; ``meta`` ``None`` keeps the metadata already stored.

        Raises `ValueError` for a vector of another dimension or with NaN/inf.
        """
        self.put_many([(key, vector, meta)])

    def put_many(self, items: Iterable[tuple[str, npt.ArrayLike, SliceMeta | None]]) -> None:
        """`put` several vectors in one transaction; a bad vector rejects the whole batch."""
        batch: dict[str, tuple[Vector, SliceMeta | None]] = {}
        for key, vector, meta in items:
            previous = batch.get(key)
            keep = meta if meta is not None or previous is None else previous[1]
            batch[key] = (self._checked(vector, f"vector for {key!r}"), keep)
        if not batch:
            return
        with self._lock:
            self._safely(lambda: self._write(lambda conn: self._insert(conn, batch)), None)
            for key, (vector, _) in batch.items():
                self._remember(key, vector)
            self.stats["puts"] += len(batch)

    def topk(
        self, query: npt.ArrayLike, k: int, *, keys: Collection[str] | None = None
    ) -> list[tuple[str, float]]:
        """The ``k`` cached vectors most cosine-similar to ``query``, best first.

        ``keys`` restricts the search to those keys (unknown ones are ignored). A zero query
        has no direction and finds nothing.
        """
        q = self._checked(query, "query")
        norm = float(np.linalg.norm(q))
        if norm == 0 or k <= 0:
            return []
        with self._lock:
            matrix = self._safely(self._sync_matrix, self._matrix or _Matrix(self.dim))
            return matrix.topk(q / np.float32(norm), k, keys)

    # -- files

    def file_slices(self, path: str, fingerprint: str) -> list[SliceMeta] | None:
        """The slices stored for ``path`` if its fingerprint is still ``fingerprint``."""
        pairs = self.file_slice_keys(path, fingerprint)
        return None if pairs is None else [meta for _, meta in pairs]

    def file_slice_keys(self, path: str, fingerprint: str) -> list[tuple[str, SliceMeta]] | None:
        """Like `file_slices`, with each slice's key (to `get` its vector)."""
        with self._lock:
            row = self._safely(
                lambda: self._db.execute(
                    "SELECT fingerprint, slices FROM file_slices WHERE path = ?", (path,)
                ).fetchone(),
                None,
            )
            pairs = None
            if row is not None and row[0] == fingerprint:
                with suppress(ValueError, TypeError):
                    pairs = [(item[0], SliceMeta(*item[1:])) for item in json.loads(row[1])]
            self.stats["file_hits" if pairs is not None else "file_misses"] += 1
            if pairs is not None:
                self._touch(self._touched_files, path)
            return pairs

    def fingerprints(self) -> dict[str, str]:
        """path -> fingerprint of every file whose slices are stored."""
        with self._lock:
            rows: list[tuple[str, str]] = self._safely(
                lambda: self._db.execute("SELECT path, fingerprint FROM file_slices").fetchall(),
                [],
            )
        return dict(rows)

    def put_file_slices(
        self, path: str, fingerprint: str, slices: Sequence[tuple[str, SliceMeta]]
    ) -> None:
        """Record the slices (key, meta) of ``path`` at ``fingerprint``."""
        self.put_many_file_slices([(path, fingerprint, slices)])

    def put_many_file_slices(
        self, files: Sequence[tuple[str, str, Sequence[tuple[str, SliceMeta]]]]
    ) -> None:
        """`put_file_slices` for many (path, fingerprint, slices), in one transaction."""
        rows = [
            (path, fingerprint, json.dumps([[key, *_row(meta)] for key, meta in slices]))
            for path, fingerprint, slices in files
        ]
        if not rows:
            return

        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR REPLACE INTO file_slices VALUES (?, ?, ?, ?)",
                [(*row, self._tick()) for row in rows],
            )
            (count,) = conn.execute("SELECT count(*) FROM file_slices").fetchone()
            if count > self.max_entries:
                conn.execute(
                    "DELETE FROM file_slices WHERE path IN (SELECT path FROM file_slices"
                    " WHERE path NOT IN (SELECT value FROM json_each(?))"
                    " ORDER BY last_used LIMIT ?)",
                    (json.dumps([row[0] for row in rows]), count - self._evict_to()),
                )

        with self._lock:
            self._safely(lambda: self._write(insert), None)

    # -- internals: connection, schema, recovery

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("the slice cache is closed")
        return self._conn

    def _open(self, corrupt: sqlite3.DatabaseError | None = None) -> sqlite3.Connection:
        """Connect to the file (rebuilt first if ``corrupt`` or found corrupt), else memory."""
        if self.path is not None:
            try:
                return self._connect(self.path, corrupt)
            except (sqlite3.Error, OSError) as exc:
                warnings.warn(
                    f"slice cache {self.path} cannot be used ({exc}); caching in memory for "
                    "this run",
                    SliceCacheWarning,
                    stacklevel=2,
                )
                self.path = None
        return self._connect(None)

    def _connect(
        self, path: Path | None, corrupt: sqlite3.DatabaseError | None = None
    ) -> sqlite3.Connection:
        # one connection per cache, guarded by its lock
        seed = (
            f"INSERT INTO cache_state VALUES ('dim', {int(self.dim)}), ('count', 0), "
            f"('seq', 0), ('epoch', {secrets.randbits(62)})"
        )
        return open_store(
            path,
            SCHEMA_VERSION,
            (*_SCHEMA, seed),
            timeout=BUSY_TIMEOUT_S,
            check_same_thread=False,
            pragmas=("PRAGMA synchronous = NORMAL", f"PRAGMA cache_size = -{CACHE_KIB}"),
            is_current=self._is_current,
            recover=self._recover,
            damaged=corrupt,
        )

    def _is_current(self, conn: sqlite3.Connection, version: int) -> bool:
        """The file is at `SCHEMA_VERSION` and of this cache's dimension; a file that is not,
        but holds the cache's tables, counts as a rebuild."""
        if version == SCHEMA_VERSION:
            dim = conn.execute("SELECT value FROM cache_state WHERE name = 'dim'").fetchone()
            if dim is not None and dim[0] == self.dim:
                return True
        existing = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (?, ?, ?, ?)",
            _TABLES,
        ).fetchone()[0]
        if existing:
            self.stats["rebuilds"] += 1
        return False

    def _recover(self, exc: sqlite3.DatabaseError) -> bool:
        """A corrupt file is deleted and rebuilt, with a warning; any other error is not."""
        if not is_corrupt(exc):
            return False
        warnings.warn(
            f"slice cache {self.path} is corrupt ({exc}); deleted and rebuilt empty, so the "
            "next Map reads files again (nothing else is lost)",
            SliceCacheWarning,
            stacklevel=2,
        )
        self.stats["rebuilds"] += 1
        return True

    def _safely(self, operation: Callable[[], _T], default: _T) -> _T:
        """Run a database operation under the never-fatal policy of the module notes."""
        try:
            return operation()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.ProgrammingError):
                raise
            if not is_corrupt(exc):
                self.stats["errors"] += 1
                if not self._warned:
                    self._warned = True
                    warnings.warn(
                        f"slice cache {self.path or ':memory:'}: {exc}; treated as a miss "
                        "(further errors of this cache are counted, not shown)",
                        SliceCacheWarning,
                        stacklevel=4,
                    )
                return default
            with suppress(sqlite3.Error):
                self._db.close()
            self._conn = None
            self._lru.clear()
            self._matrix = None
            self._conn = self._open(corrupt=exc)
        try:
            return operation()
        except sqlite3.Error:
            self.stats["errors"] += 1
            return default

    # -- internals: writing

    def _write(self, body: Callable[[sqlite3.Connection], None]) -> None:
        """One write transaction: pending last-used times first (eviction reads them), then
        ``body``."""
        conn = self._db
        with transaction(conn, immediate=True):
            touched, self._touched = self._touched, {}
            files, self._touched_files = self._touched_files, {}
            conn.executemany(
                "UPDATE slice_meta SET last_used = ? WHERE hash = ?",
                [(used, key) for key, used in touched.items()],
            )
            conn.executemany(
                "UPDATE file_slices SET last_used = ? WHERE path = ?",
                [(used, path) for path, used in files.items()],
            )
            body(conn)

    def _insert(
        self, conn: sqlite3.Connection, batch: dict[str, tuple[Vector, SliceMeta | None]]
    ) -> None:
        (seq,) = conn.execute(
            "UPDATE cache_state SET value = value + 1 WHERE name = 'seq' RETURNING value"
        ).fetchone()
        keys = json.dumps(list(batch))
        (known,) = conn.execute(
            "SELECT count(*) FROM slice_meta WHERE hash IN (SELECT value FROM json_each(?))",
            (keys,),
        ).fetchone()
        now = self._tick()
        conn.executemany(
            "INSERT OR REPLACE INTO slice_cache(hash, vector) VALUES (?, ?)",
            [(key, vector.astype("<f4").tobytes()) for key, (vector, _) in batch.items()],
        )
        conn.executemany(
            _UPSERT_META,
            [
                (key, *(_row(meta) if meta else (None,) * len(_META_COLUMNS)), now, seq)
                for key, (_, meta) in batch.items()
            ],
        )
        (count,) = conn.execute(
            "UPDATE cache_state SET value = value + ? WHERE name = 'count' RETURNING value",
            (len(batch) - known,),
        ).fetchone()
        if count > self.max_entries:
            self._evict(conn, count, seq)

    def _evict_to(self) -> int:
        """Evict down to 90 % of the bound, so eviction runs once per 10 % of new entries."""
        return self.max_entries - self.max_entries // 10

    def _evict(self, conn: sqlite3.Connection, count: int, seq: int) -> None:
        """Drop the least recently used entries; this transaction's own only if it alone
        exceeds the bound."""
        victims = [
            row[0]
            for row in conn.execute(
                "SELECT hash FROM slice_meta WHERE seq < ? ORDER BY last_used, seq LIMIT ?",
                (seq, count - self._evict_to()),
            )
        ]
        if count - len(victims) > self.max_entries:
            victims += [
                row[0]
                for row in conn.execute(
                    "SELECT hash FROM slice_meta WHERE seq = ? ORDER BY hash LIMIT ?",
                    (seq, count - len(victims) - self.max_entries),
                )
            ]
        doomed = json.dumps(victims)
        for table in ("slice_cache", "slice_meta"):
            conn.execute(
                f"DELETE FROM {table} WHERE hash IN (SELECT value FROM json_each(?))", (doomed,)
            )
        conn.execute(
            "UPDATE cache_state SET value = value - ? WHERE name = 'count'", (len(victims),)
        )
        conn.execute("UPDATE cache_state SET value = value + 1 WHERE name = 'epoch'")
        for key in victims:
            self._lru.pop(key, None)
        self.stats["evictions"] += len(victims)

    # -- internals: reading

    def _state(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT name, value FROM cache_state").fetchall())

    def _sync_matrix(self) -> _Matrix:
        """Bring the ranking matrix up to date with the database (one consistent snapshot)."""
        conn = self._db
        with transaction(conn):
            state = self._state()
            epoch, seq = state["epoch"], state["seq"]
            if self._matrix is not None and (epoch, seq) == self._synced:
                return self._matrix
            if self._matrix is None or epoch != self._synced[0]:
                self._matrix = None  # let the old one go before the new one is built
                matrix = _Matrix(self.dim, capacity=state["count"])
                rows = conn.execute("SELECT hash, vector FROM slice_cache")
            else:
                matrix = self._matrix
                rows = conn.execute(
                    "SELECT c.hash, c.vector FROM slice_meta m JOIN slice_cache c"
                    " ON c.hash = m.hash WHERE m.seq > ?",
                    (self._synced[1],),
                )
            width = self.dim * 4
            while batch := rows.fetchmany(_LOAD_CHUNK):
                good = [(key, blob) for key, blob in batch if len(blob) == width]
                if good:
                    block = np.frombuffer(b"".join(blob for _, blob in good), "<f4")
                    matrix.update([key for key, _ in good], block.reshape(-1, self.dim))
        self._matrix, self._synced = matrix, (epoch, seq)
        return matrix

    def _decode(self, blob: object) -> Vector | None:
        if not isinstance(blob, bytes) or len(blob) != self.dim * 4:
            return None
        return np.frombuffer(blob, "<f4").astype(np.float32, copy=False)

    def _checked(self, vector: npt.ArrayLike, what: str) -> Vector:
        array = np.asarray(vector)
        if array.shape != (self.dim,):
            raise ValueError(
                f"{what}: expected dimension {self.dim} (shape ({self.dim},)), "
                f"got shape {array.shape}"
            )
        checked = array.astype(np.float32)  # a copy: later changes to `vector` do not leak in
        if not np.isfinite(checked).all():
            raise ValueError(f"{what}: contains NaN or infinity")
        checked.flags.writeable = False
        return checked

    def _remember(self, key: str, vector: Vector) -> None:
        if self.lru_size == 0:
            return
        self._lru[key] = vector
        self._lru.move_to_end(key)
        while len(self._lru) > self.lru_size:
            self._lru.popitem(last=False)

    def _touch(self, pending: dict[str, int], key: str) -> None:
        """Note a use; last-used times are written in batches, with the next write."""
        pending[key] = self._tick()
        if len(self._touched) + len(self._touched_files) >= _TOUCH_BATCH:
            self._flush()

    def _tick(self) -> int:
        """Last-used time: wall-clock microseconds, strictly increasing within this cache."""
        self._clock = max(time.time_ns() // 1000, self._clock + 1)
        return self._clock

    def _flush(self) -> None:
        if self._touched or self._touched_files:
            self._safely(lambda: self._write(lambda conn: None), None)
