"""Which tests an attempt affects, from per-test coverage of the base (the test-impact map).

The baseline run measures the repository's source files with ``coverage``, each test's
lines recorded under its node id (dynamic contexts, `child.inner`). The map keeps, per
source file *blob id* (git's hash of its content), which tests ran which of its lines. Keyed
by content, it survives across runs and commits: a later base re-measures only the files
whose content changed. Stored in ``impact.sqlite`` in the cache directory; like every cache
here it is never needed for correctness (the gate still runs the whole suite), so a locked or
corrupt file only makes the affected set smaller.

An attempt's **affected tests** are the base tests covering a changed function (the whole
function around each changed base line; a change outside any function counts for the whole
file), the tests in changed test files, and the spec. They run first; only an attempt whose
affected tests pass goes on to the whole suite.
"""

from __future__ import annotations

import ast
import contextlib
import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from coverage.numbits import numbits_any_intersection, nums_to_numbits

from pytest_orchestrator.model import ChangeCoverage, TestRunResult
from pytest_orchestrator.phases.execute import integrity
from pytest_orchestrator.repo.files import is_test_path
from pytest_orchestrator.repo.git import git
from pytest_orchestrator.store import open_store, transaction

if TYPE_CHECKING:
    from coverage import CoverageData

FILENAME: Final = "impact.sqlite"
SCHEMA_VERSION: Final = 2
_CREATE: Final = (
    "CREATE TABLE measured (blob TEXT PRIMARY KEY)",
    # one row per (file content, test): the lines it ran, as coverage's numbits (a bitmap),
    # so a suite of thousands of tests over large files stays small
    "CREATE TABLE covered (blob TEXT NOT NULL, test TEXT NOT NULL, lines BLOB NOT NULL)",
    "CREATE INDEX covered_blob ON covered (blob)",
)
_HUNK: Final = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def source_blobs(tree: Path, commit: str) -> dict[str, str]:
    """Path -> blob id of every Python source file (not test files) of ``commit``."""
    out = git("ls-tree", "-r", "-z", "--full-tree", commit, cwd=tree, read_only=True)
    blobs = {}
    for entry in out.split("\0"):
        meta, _, path = entry.partition("\t")
        parts = meta.split()
        is_source = path.endswith(".py") and not is_test_path(path)
        if len(parts) == 3 and parts[1] == "blob" and is_source:
            blobs[path] = parts[2]
    return blobs


class ImpactMap:
    """Blob id -> line -> the base tests that ran it."""

    def __init__(self, conn: sqlite3.Connection | None) -> None:
        self._conn = conn

    @classmethod
    def open(cls, cache_dir: Path | None) -> ImpactMap:
        """The map in ``cache_dir`` (None: in memory, for one run)."""
        try:
            if cache_dir is not None:
                cache_dir.mkdir(parents=True, exist_ok=True)
            path = cache_dir / FILENAME if cache_dir is not None else None
            return cls(open_store(path, SCHEMA_VERSION, _CREATE, check_same_thread=False))
        except (OSError, sqlite3.Error):
            return cls(None)

    def unmeasured(self, blobs: Mapping[str, str]) -> list[str]:
        """The paths whose content the map has not measured yet."""
        if self._conn is None:
            return sorted(blobs)
        try:
            known = {row[0] for row in self._conn.execute("SELECT blob FROM measured")}
        except sqlite3.Error:
            return sorted(blobs)
        return sorted(path for path, blob in blobs.items() if blob not in known)

    def record(
        self, data_file: Path, tree: Path, blobs: Mapping[str, str], paths: list[str]
    ) -> int:
        """Store what the run behind ``data_file`` measured of ``paths``; the number of
        (file, test) rows stored."""
        if self._conn is None:
            return 0
        data = _combined(data_file)
        rows = []
        root = tree.resolve()
        for measured in data.measured_files() if data is not None else []:
            assert data is not None
            full = Path(measured).resolve()
            if not full.is_relative_to(root):
                continue
            blob = blobs.get(full.relative_to(root).as_posix())
            if blob is None:
                continue
            by_test: dict[str, list[int]] = {}
            for line, contexts in data.contexts_by_lineno(measured).items():
                for context in contexts:
                    if context:
                        by_test.setdefault(context, []).append(line)
            rows += [(blob, test, nums_to_numbits(lines)) for test, lines in by_test.items()]
        with contextlib.suppress(sqlite3.Error), transaction(self._conn, immediate=True):
            wanted = [blobs[p] for p in paths if p in blobs]
            self._conn.executemany("DELETE FROM covered WHERE blob = ?", [(b,) for b in wanted])
            self._conn.executemany("INSERT INTO covered VALUES (?, ?, ?)", rows)
            self._conn.executemany(
                "INSERT OR IGNORE INTO measured VALUES (?)", [(b,) for b in wanted]
            )
        return len(rows)

    def tests_for(self, blob: str, lines: Iterable[int] | None) -> set[str]:
        """Tests that ran any of ``lines`` of ``blob`` (None: any line)."""
        if self._conn is None:
            return set()
        try:
            rows = self._conn.execute("SELECT test, lines FROM covered WHERE blob = ?", (blob,))
            if lines is None:
                return {test for test, _ in rows}
            wanted = nums_to_numbits(sorted(set(lines)))
            return {test for test, ran in rows if numbits_any_intersection(ran, wanted)}
        except sqlite3.Error:
            return set()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _combined(data_file: Path) -> CoverageData | None:
    """The coverage data of every process of one run (suffixed files), combined."""
    import coverage

    if not any(data_file.parent.glob(data_file.name + ".*")):
        return None
    cov = coverage.Coverage(data_file=str(data_file), config_file=False)
    cov.combine(data_paths=[str(data_file.parent)], keep=True)
    return cov.get_data()


@dataclass
class Changes:
    """Changed lines of an attempt: base-side lines per changed file, new-side per file."""

    old: dict[str, set[int]] = field(default_factory=dict)
    new: dict[str, set[int]] = field(default_factory=dict)
    added: set[str] = field(default_factory=set)


def changes(tree: Path, base_commit: str) -> Changes:
    """Parse ``git diff -U0`` against the base (untracked files count as added)."""
    out = git(
        "-c", "core.quotePath=false", "diff", "-U0", "--no-renames", "--no-color",
        "--no-ext-diff", base_commit, cwd=tree, read_only=True,
    )  # fmt: skip
    found = Changes()
    old_path = new_path = None
    for line in out.splitlines():
        if line.startswith("--- "):
            old_path = None if line == "--- /dev/null" else line[6:]
        elif line.startswith("+++ "):
            new_path = None if line == "+++ /dev/null" else line[6:]
            if old_path is None and new_path is not None:
                found.added.add(new_path)
        elif (hunk := _HUNK.match(line)) is not None:
            a, b = int(hunk[1]), int(hunk[2] if hunk[2] is not None else 1)
            c, d = int(hunk[3]), int(hunk[4] if hunk[4] is not None else 1)
            if old_path is not None:
                lines = set(range(a, a + b)) if b else {a, a + 1}
                found.old.setdefault(old_path, set()).update(lines)
            if new_path is not None and d:
                found.new.setdefault(new_path, set()).update(range(c, c + d))
    others = git("ls-files", "--others", "--exclude-standard", "-z", cwd=tree, read_only=True)
    for path in filter(None, others.split("\0")):
        found.added.add(path)
        with contextlib.suppress(OSError):
            count = len((tree / path).read_bytes().splitlines())
            found.new[path] = set(range(1, count + 1))
    return found


def widen(source: str, lines: set[int]) -> set[int] | None:
    """Every line of the functions around ``lines`` (None: a line outside any function,
    whose effect reaches the whole file, or a file that does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    spans = [
        (min([n.lineno, *(d.lineno for d in n.decorator_list)]), n.end_lineno or n.lineno)
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    wide: set[int] = set()
    for line in lines:
        around = [s for s in spans if s[0] <= line <= s[1]]
        if not around:
            return None
        start, end = min(around, key=lambda s: s[1] - s[0])
        wide.update(range(start, end + 1))
    return wide


@dataclass(frozen=True)
class Affected:
    """The base tests an attempt affects, as they are named after it (renames applied), and
    the files to collect for them."""

    ids: list[str]
    files: list[str]

    def keep(self) -> list[str]:
        return [
            *self.ids,
            *(f for f in self.files if f not in {i.split("::")[0] for i in self.ids}),
        ]


def affected(
    found: Changes,
    *,
    baseline: TestRunResult,
    impact: ImpactMap,
    blobs: Mapping[str, str],
    base_source: Mapping[str, str],
    names: Mapping[str, str],
    exclude: set[str],
) -> Affected:
    """The base-passing tests covering a changed function, the tests of changed test files
    (new ones collected whole), less ``exclude`` (the spec, run on its own)."""
    passing = {t.nodeid for t in baseline.tests if t.outcome == "passed"}
    by_file: dict[str, set[str]] = {}
    for nodeid in passing:
        by_file.setdefault(nodeid.split("::", 1)[0], set()).add(nodeid)
    chosen: set[str] = set()
    whole_files: set[str] = set()
    for path, lines in found.old.items():
        if path in by_file:
            chosen |= by_file[path]
        elif path in blobs:
            wide = widen(base_source.get(path, ""), lines)
            chosen |= impact.tests_for(blobs[path], wide)
    for path in found.added:
        if is_test_path(path) and path.endswith(".py") and not path.endswith("conftest.py"):
            whole_files.add(path)
    ids = sorted(integrity.rename_identifiers(i, names) for i in (chosen & passing) - exclude)
    files = sorted({i.split("::", 1)[0] for i in ids} | whole_files)
    return Affected(ids, files)


def change_coverage(
    data_file: Path, tree: Path, new_lines: Mapping[str, set[int]]
) -> ChangeCoverage:
    """The changed executable lines the measured run executed, and those it did not."""
    import coverage

    cov = coverage.Coverage(data_file=str(data_file), config_file=False)
    if any(data_file.parent.glob(data_file.name + ".*")):
        cov.combine(data_paths=[str(data_file.parent)], keep=True)
    cov.load()
    covered = total = 0
    uncovered: dict[str, list[int]] = {}
    for path, lines in sorted(new_lines.items()):
        try:
            _, statements, _, missing, _ = cov.analysis2(str(tree / path))
        except Exception:  # coverage raises its own NoSource/NotPython: not measurable
            continue
        changed = lines & set(statements)
        missed = sorted(changed & set(missing))
        total += len(changed)
        covered += len(changed) - len(missed)
        if missed:
            uncovered[path] = missed
    return ChangeCoverage(covered=covered, total=total, uncovered=uncovered)


def measured_sources(tree: Path, found: Changes) -> list[str]:
    """Changed Python source files (not tests) that exist after the change."""
    return sorted(
        p for p in found.new if p.endswith(".py") and not is_test_path(p) and (tree / p).is_file()
    )
