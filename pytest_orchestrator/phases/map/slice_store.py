"""The slice cache's SQLite file: its schema, and the transaction and recovery helpers.

Tables, in ``<cache dir>/slices.sqlite3`` with ``PRAGMA user_version`` = `SCHEMA_VERSION`::

    slice_cache(hash TEXT PRIMARY KEY, vector BLOB)   -- the brief's table; float32, little-endian
    slice_meta(hash, path, symbol, kind, start_line, end_line, start_byte, end_byte, tokens,
               last_used, seq)                        -- one row per vector; meta may be NULL
    file_slices(path, fingerprint, slices, last_used) -- slices: JSON [[key, *meta], ...]
    cache_state(name, value)                          -- dim, count, seq, epoch

Opened by `pytest_orchestrator.store.open_store`, like every store of the package.
Concurrency: WAL, a busy timeout (`BUSY_TIMEOUT_S`), and every write is one
``BEGIN IMMEDIATE`` transaction (`pytest_orchestrator.store.transaction`), so several
processes (xdist workers) read and write at once without errors or lost writes.
`pytest_orchestrator.store.is_corrupt` tells a damaged file (rebuilt) from a passing error
(a miss); see `pytest_orchestrator.phases.map.slice_cache` for the policy.
"""

from __future__ import annotations

from typing import Final

__all__ = ["BUSY_TIMEOUT_S", "CACHE_KIB", "SCHEMA_VERSION"]

SCHEMA_VERSION: Final = 2
"""Bump when a table or `embed` changes: caches of another version are dropped and rebuilt."""
BUSY_TIMEOUT_S: Final = 30.0
CACHE_KIB: Final = 32 * 1024
"""SQLite page cache per connection, allocated as used. Measured: filling 300k vectors under
random SHA-1 keys takes ~15 % less CPU than with SQLite's 2 MiB default."""
_TABLES: Final = ("slice_cache", "slice_meta", "file_slices", "cache_state")
_SCHEMA: Final = (
    "CREATE TABLE slice_cache(hash TEXT PRIMARY KEY, vector BLOB)",
    "CREATE TABLE slice_meta(hash TEXT PRIMARY KEY, path TEXT, symbol TEXT, kind TEXT,"
    " start_line INTEGER, end_line INTEGER, start_byte INTEGER, end_byte INTEGER,"
    " tokens INTEGER, last_used INTEGER NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE INDEX slice_meta_lru ON slice_meta(last_used, seq)",
    "CREATE INDEX slice_meta_seq ON slice_meta(seq)",
    "CREATE TABLE file_slices(path TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,"
    " slices TEXT NOT NULL, last_used INTEGER NOT NULL)",
    "CREATE TABLE cache_state(name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)
