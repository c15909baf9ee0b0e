"""The base side of the repository's linters, kept across runs: an unchanged base is not
linted twice.

A linter's findings at the base are a function of the base commit's content, of the linter
itself and of its configuration, so the key holds all of them: the base tree id (the
project's configuration files are in it), the tool's name and arguments, its executable
(resolved path, size and modification time: an upgrade rewrites it), the interpreter and
every installed distribution with its version (`baseline_cache.environment`: the tool's own
package and its plugins, the packages a type checker reads), the environment variables the
tool reads (its own prefix, ``PYTHONPATH``) and the content of its user-level configuration
files. Only the tools this package discovers are cached (ruff, flake8, mypy, pyright): what
else could change their answer is known. A project's own ``orchestrate_checks`` command may
read anything, so it runs every time; so does pre-commit. Only a completed run (status
``ok``) is stored: a timeout or an error is tried again next time.

Stored in ``checks.sqlite`` in the cache directory (`pytest_orchestrator.store`): never
needed for correctness, so a locked or corrupt file is a miss, never an error.
``--orchestrate-fresh`` does not read it (and stores what it measured), like the
baseline's cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from pydantic import TypeAdapter, ValidationError

from pytest_orchestrator.model import CheckFinding
from pytest_orchestrator.phases.review.commands import find_executable
from pytest_orchestrator.phases.review.tools import Tool
from pytest_orchestrator.store import open_store, transaction

FILENAME: Final = "checks.sqlite"
SCHEMA_VERSION: Final = 1
MAX_ENTRIES: Final = 200
SCRATCH: Final = "<scratch>"
"""Stands for the run's scratch directory in a keyed command line (it differs every run)."""
_CREATE: Final = (
    "CREATE TABLE findings (key TEXT PRIMARY KEY, run_id TEXT NOT NULL, "
    "written REAL NOT NULL, findings TEXT NOT NULL, detail TEXT NOT NULL)",
)
_FINDINGS: Final = TypeAdapter(list[CheckFinding])


def _user_configs(name: str, environ: Mapping[str, str]) -> list[Path]:
    """The configuration files outside the project that ``name`` reads (when the project's
    own configuration does not stop it from looking)."""
    home = Path(environ.get("HOME", "~")).expanduser()
    config = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    return {
        "ruff": [config / "ruff" / f for f in ("ruff.toml", ".ruff.toml", "pyproject.toml")],
        "mypy": [config / "mypy" / "config", home / ".config" / "mypy" / "config",
                 home / ".mypy.ini"],
    }.get(name, [])  # fmt: skip


CACHED: Final = frozenset({"ruff", "flake8", "mypy", "pyright"})


def tool_key(
    tool: Tool, tree: str, env: Sequence[str], environ: Mapping[str, str] | None = None
) -> str | None:
    """The cache key of ``tool``'s findings on base tree ``tree`` in environment ``env``;
    None for a tool that is not cached (a project's own command, or one not installed)."""
    environ = os.environ if environ is None else environ
    if tool.name not in CACHED:
        return None
    argv = tool.argv(Path(SCRATCH))
    exe = find_executable(argv[0])
    if exe is None:
        return None
    real = Path(exe).resolve()
    try:
        stat = real.stat()
    except OSError:
        return None
    prefix = tool.name.upper()
    variables = {k: v for k, v in environ.items() if k.startswith(prefix) or k in ("PYTHONPATH",)}
    configs = {}
    for path in _user_configs(tool.name, environ):
        with contextlib.suppress(OSError):
            configs[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    blob = json.dumps(
        {
            "tree": tree,
            "tool": tool.name,
            "argv": argv,
            "exe": [str(real), stat.st_size, stat.st_mtime_ns],
            "env": list(env),
            "variables": variables,
            "configs": configs,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class FindingsCache:
    """Get and put one tool's base findings; every failure of the file is a miss."""

    def __init__(self, conn: sqlite3.Connection | None) -> None:
        self._conn = conn

    @classmethod
    def open(cls, cache_dir: Path) -> FindingsCache:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            return cls(open_store(cache_dir / FILENAME, SCHEMA_VERSION, _CREATE,
                                  check_same_thread=False))  # fmt: skip
        except (OSError, sqlite3.Error):
            return cls(None)

    def get(self, key: str) -> tuple[list[CheckFinding], str, str] | None:
        """The findings, the tool run's detail and the run that measured them, or None."""
        if self._conn is None:
            return None
        try:
            row = self._conn.execute(
                "SELECT findings, detail, run_id FROM findings WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                return None
            return _FINDINGS.validate_json(row[0]), str(row[1]), str(row[2])
        except (sqlite3.Error, ValidationError, ValueError):
            return None

    def put(self, key: str, findings: list[CheckFinding], detail: str, run_id: str) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(sqlite3.Error), transaction(self._conn, immediate=True):
            self._conn.execute(
                "INSERT OR REPLACE INTO findings VALUES (?, ?, ?, ?, ?)",
                (key, run_id, time.time(), _FINDINGS.dump_json(findings).decode(), detail),
            )
            self._conn.execute(
                "DELETE FROM findings WHERE key NOT IN "
                "(SELECT key FROM findings ORDER BY written DESC LIMIT ?)",
                (MAX_ENTRIES,),
            )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
