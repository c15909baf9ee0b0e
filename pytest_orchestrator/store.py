"""The one way a cache opens its SQLite file: WAL, a busy timeout, a schema version, and a
corrupt or foreign file rebuilt empty.

Every store of the package (the slice cache, Map's memory and search cache, Optimise's grid
results) is a cache: never needed for correctness. `open_store` connects, switches to WAL
(retrying while another process holds the file, `while_locked`), and, in one
``BEGIN IMMEDIATE`` transaction, drops every table and runs the store's ``CREATE``
statements when ``PRAGMA user_version`` is not the store's schema version (or when the
store's own ``is_current`` says the file is not its). A file that cannot be opened so is
deleted (`remove_files`) and opened once more (a store may veto that, ``recover``). Each
store keeps its own tables and queries.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Final

#: SQLite's files of one database: the file itself, its write-ahead log, shared memory and
#: rollback journal.
SUFFIXES: Final = ("", "-wal", "-shm", "-journal")
_CORRUPT: Final = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


IsCurrent = Callable[[sqlite3.Connection, int], bool]
"""Whether an open file, at the given ``user_version``, holds the store's tables as they are
now (called inside the opening transaction)."""


def open_store(
    path: Path | None,
    schema_version: int,
    create: Sequence[str],
    *,
    timeout: float = 10.0,
    check_same_thread: bool = True,
    pragmas: Sequence[str] = (),
    is_current: IsCurrent | None = None,
    recover: Callable[[sqlite3.DatabaseError], bool] | None = None,
    damaged: sqlite3.DatabaseError | None = None,
) -> sqlite3.Connection:
    """The store in ``path`` (None: in memory) with the tables ``create`` makes, at
    ``schema_version``; rebuilt empty if the file is of another version, corrupt or foreign.

    ``pragmas`` run on a file's connection before the schema check. ``is_current`` replaces
    the check ``user_version == schema_version``. A file that fails to open (or ``damaged``:
    one already found damaged) is deleted and opened once more, unless ``recover`` returns
    False for the error (then it is raised). Raises `sqlite3.DatabaseError` if even a
    rebuilt file cannot be opened."""
    args = (path, schema_version, create, timeout, check_same_thread, pragmas, is_current)
    if damaged is None:
        try:
            return _open(*args)
        except sqlite3.DatabaseError as exc:
            if path is None:
                raise
            damaged = exc
    if path is None or (recover is not None and not recover(damaged)):
        raise damaged
    remove_files(path)
    return _open(*args)


def connect(
    path: Path | None, *, timeout: float, check_same_thread: bool = True
) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit, `transaction`), in WAL
    mode for a file, waiting up to ``timeout`` seconds for a lock."""
    conn = sqlite3.connect(
        ":memory:" if path is None else path,
        timeout=timeout,
        isolation_level=None,
        check_same_thread=check_same_thread,
    )
    if path is not None:
        try:
            while_locked(lambda: conn.execute("PRAGMA journal_mode = WAL"), timeout)
        except BaseException:
            conn.close()
            raise
    return conn


def rebuild_if_stale(
    conn: sqlite3.Connection,
    schema_version: int,
    create: Sequence[str],
    is_current: IsCurrent | None = None,
) -> bool:
    """Drop every table and run ``create`` unless the file is at ``schema_version`` (or
    ``is_current`` says so); True when it did. Call inside a write transaction."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if (version == schema_version) if is_current is None else is_current(conn, version):
        return False
    drop_tables(conn)
    for statement in create:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {int(schema_version)}")
    return True


def drop_tables(conn: sqlite3.Connection) -> None:
    """Drop every table (their indexes go with them)."""
    tables = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    for (table,) in tables:
        conn.execute(f'DROP TABLE IF EXISTS "{table}"')


def remove_files(path: Path) -> None:
    """Delete the database ``path`` and its companion files."""
    for suffix in SUFFIXES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextmanager
def transaction(conn: sqlite3.Connection, *, immediate: bool = False) -> Iterator[None]:
    """One transaction: committed at the end, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
    except BaseException:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def while_locked(operation: Callable[[], object], timeout: float) -> None:
    """Retry ``operation`` while the database is locked, up to ``timeout`` seconds.

    Switching to WAL needs a moment alone with the file and fails at once, without waiting
    for the busy handler, while another process is opening it (seen with 4 processes
    opening a new cache together)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            operation()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def is_corrupt(exc: sqlite3.Error) -> bool:
    """True when ``exc`` says the file is damaged or not a database (not a passing error)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _CORRUPT
    text = str(exc)
    return "malformed" in text or "not a database" in text


def _open(
    path: Path | None,
    schema_version: int,
    create: Sequence[str],
    timeout: float,
    check_same_thread: bool,
    pragmas: Sequence[str],
    is_current: IsCurrent | None,
) -> sqlite3.Connection:
    conn = connect(path, timeout=timeout, check_same_thread=check_same_thread)
    try:
        if path is not None:
            for pragma in pragmas:
                conn.execute(pragma)
        with transaction(conn, immediate=True):
            rebuild_if_stale(conn, schema_version, create, is_current)
    except BaseException:
        conn.close()
        raise
    return conn
