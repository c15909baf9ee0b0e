"""A persistent identifier index of a git tree's Python files: Map's searches without ripgrep.

Why: every ripgrep pass reads the whole tree, so a *new* command on an unchanged repository
paid for all of them again (~1.5 s on a 4-million-line tree). Git names file contents by blob
id, and a blob never changes, so what a search needs from one file is computed once per blob
and kept across runs and commits; a new commit costs the indexing of its new blobs only.

What is kept (``index.sqlite`` in the cache dir, opened by `store.open_store`):

- ``blobs``: every indexed blob (git id -> a small number);
- ``vocab``: every distinct run of identifier characters (``[A-Za-z0-9_]+``, what
  `search.count_terms`' pattern matches around a word) in the indexed blobs, newline-joined in
  chunks; a token's number is its place in the concatenation. A query word becomes the
  tokens containing it by one substring search of the lower-cased vocabulary;
- ``postings``: per token, the blobs it occurs in as little-endian uint32 pairs
  (blob, count << 3 | flags), the flags saying whether it is a def/class name, starts a line
  or is on an import line somewhere in the blob;
- ``imports``: per blob, its import lines (those starting with ``from`` or ``import``, in
  order, zlib-compressed), so that the importers of a command's modules are found without
  reading a file: `TreeIndex.find_import_lines` runs ripgrep's pattern over them;
- ``trees``: the searchable files (path -> blob) of every tree indexed *completely*. Blobs and
  their postings are committed in batches, each in one transaction, and a tree's row is
  written last, so an interrupted build is never used (and its batches are kept for the next
  one).

Answers are those of the ripgrep passes (`pytest_orchestrator.phases.map.search`) on the same
tree: the counts come straight from the postings where they are exact, and a file where they
may not be (a per-file line cap that may bind, a quoted phrase, a name at a line's start,
which the assignment form of the definition pattern reads) is searched with the very same
pattern: by ripgrep's own pass over just those files when the checkout holds their blobs
(their ids checked; ripgrep stops at the cap in native code), else in Python, its content
read from git (`git cat-file --batch`: no work tree needed).
The one difference: `TreeIndex.nearby_names` (the "did you mean" hint) sees every name with the
prefix, where ripgrep's pass sees only the first 20 matching lines of each file. A query the
index cannot answer (a non-ASCII word, a phrase without identifier characters) returns None
and Map runs ripgrep.

Like the other caches it is never needed for correctness: a missing, locked or corrupt file
means ripgrep, and a corrupt file is rebuilt. The index is built outside Map's answer: after
a cold Map (not a dry run's), `start_build` runs `build` in a process of its own (``python -m
pytest_orchestrator.phases.map.index``), which the session stops at its end like every child;
once the tree is indexed, `build` also records the slices of its files in the slice cache.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from pytest_orchestrator.phases.map import search
from pytest_orchestrator.store import drop_tables, open_store, transaction

FILENAME: Final = "index.sqlite"
#: 2: the ``imports`` table (a version-1 file is rebuilt empty).
SCHEMA_VERSION: Final = 2
_CREATE: Final = (
    "CREATE TABLE blobs (no INTEGER PRIMARY KEY, oid TEXT UNIQUE NOT NULL)",
    "CREATE TABLE vocab (chunk INTEGER PRIMARY KEY, first INTEGER NOT NULL, text BLOB NOT NULL)",
    "CREATE TABLE postings (token INTEGER, batch INTEGER, data BLOB NOT NULL,"
    " PRIMARY KEY (token, batch)) WITHOUT ROWID",
    "CREATE TABLE trees (tree TEXT PRIMARY KEY, written REAL, files BLOB NOT NULL)",
    "CREATE TABLE imports (blob INTEGER PRIMARY KEY, lines BLOB NOT NULL)",
)
#: Flags of a (token, blob) posting.
DEF: Final = 1
"""The token is the name of a ``def`` or ``class`` in the blob."""
COL0: Final = 2
"""The token starts a line of the blob (the assignment form of a definition starts so)."""
IMPORT: Final = 4
"""The token is on a line of the blob that starts with ``from`` or ``import``."""
_FLAG_BITS: Final = 3
#: ripgrep's ``--max-filesize=1M``: larger files are not searched.
MAX_FILESIZE: Final = 1 << 20
#: Blobs indexed per transaction (a bound on the builder's memory).
BATCH_BLOBS: Final = 1000
BATCH_BYTES: Final = 32 << 20
#: Trees kept; the least recently written go first.
MAX_TREES: Final = 50
#: When the index holds this many times the blobs of the tree being indexed (plus
#: `SLACK_BLOBS`), old commits' blobs dominate it: it starts again from empty.
MAX_GROWTH: Final = 3
SLACK_BLOBS: Final = 5000
#: Bytes of a file searched at a time for the lines ripgrep's per-file cap lets through.
_CHUNK: Final = 32 << 10
_OMITTED: Final = "[Omitted long matching line]"
"""What ripgrep prints for a match longer than ``--max-columns`` (counted as ripgrep's was)."""

_TOKEN: Final = re.compile(rb"[A-Za-z0-9_]+")
_COL0: Final = re.compile(rb"^[A-Za-z0-9_]+", re.M)
_DEF_NAME: Final = re.compile(
    rb"^[^\S\n]*(?:async[^\S\n]+def|def|class)[^\S\n]+([A-Za-z0-9_]+)", re.M
)
_IMPORT_LINE: Final = re.compile(rb"^[^\S\n]*(?:from|import)[^\S\n].*", re.M)
_ASCII_NAME: Final = re.compile(r"[A-Za-z0-9_]+")
#: Names the definition pattern spells itself: a query for them is left to ripgrep.
_KEYWORDS: Final = frozenset({"async", "def", "class", "from", "import"})


def scan(data: bytes) -> tuple[dict[bytes, int], bytes]:
    """One blob's postings (token -> count << 3 | flags) and its import lines (newline-joined,
    in order: every line `search.imports_pattern` can match). A binary blob (a NUL byte,
    which makes ripgrep skip the file) has neither."""
    if b"\0" in data:
        return {}, b""
    if data.startswith(codecs.BOM_UTF8):  # ripgrep strips it too
        data = data[3:]
    counts = Counter(_TOKEN.findall(data))
    out = {t: n << _FLAG_BITS for t, n in counts.items()}
    for t in set(_COL0.findall(data)):
        out[t] |= COL0
    for t in set(_DEF_NAME.findall(data)):
        out[t] |= DEF
    imports = b"\n".join(_IMPORT_LINE.findall(data))
    if imports:
        for t in set(_TOKEN.findall(imports)):
            out[t] |= IMPORT
    return out, imports


def _checked_out(path: Path, oid: str) -> bytes | None:
    """The content of ``path`` if it is the blob ``oid`` (its git hash checked), else None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    digest = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    digest.update(data)
    return data if digest.hexdigest() == oid else None


# ----------------------------------------------------------------------------- git


def git_dir(root: Path) -> Path | None:
    """The object store ``root``'s commits live in (shared by all its worktrees)."""
    proc = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--path-format=absolute", "--git-common-dir"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        check=False,
    )
    return Path(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None


def searchable(root: Path, tree: str) -> list[tuple[str, str]] | None:
    """(path, blob id) of every file of ``tree`` ripgrep searches in ``root``, its checkout:
    Python (``*.py``, ``*.pyi``: ripgrep's ``py`` type), no hidden path component, no symlink,
    at most 1 MiB, not git-ignored. None when ripgrep's own ignore files (``.ignore``,
    ``.rgignore``) are present: git does not know them."""
    git = ["git", "--no-optional-locks", "-C", str(root)]
    listing = subprocess.run(
        [*git, "ls-tree", "-r", "-l", "-z", "--full-tree", tree],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    ignored = subprocess.run(
        [*git, "ls-files", "-z", "--cached", "--ignored", "--exclude-standard"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if listing.returncode != 0 or ignored.returncode != 0:
        return None
    skip = set(ignored.stdout.decode("utf-8", "surrogateescape").split("\0"))
    out: list[tuple[str, str]] = []
    for entry in listing.stdout.decode("utf-8", "surrogateescape").split("\0"):
        meta, _, path = entry.partition("\t")
        parts = meta.split()
        if len(parts) != 4:
            continue
        mode, kind, oid, size = parts
        name = path.rsplit("/", 1)[-1]
        if name in (".ignore", ".rgignore"):
            return None
        if kind != "blob" or mode == "120000" or not path.endswith((".py", ".pyi")):
            continue
        if not size.isdigit() or int(size) > MAX_FILESIZE or path in skip:
            continue
        if any(part.startswith(".") for part in path.split("/")):
            continue
        out.append((path, oid))
    return out


def read_blobs(git_dir: Path, oids: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    """The contents of ``oids`` from one ``git cat-file --batch`` (ids are written by a thread
    while contents are read, so neither pipe can fill up); a missing blob is left out. No
    ids, no process."""
    if not oids:
        return
    proc = subprocess.Popen(
        ["git", f"--git-dir={git_dir}", "cat-file", "--batch", "--buffer"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def write() -> None:
        with contextlib.suppress(OSError):
            stdin.write("".join(f"{o}\n" for o in oids).encode())
            stdin.close()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        for oid in oids:
            header = stdout.readline().split()
            if not header:
                break
            if len(header) < 3 or header[1] != b"blob":
                continue
            data = stdout.read(int(header[2]))
            stdout.read(1)
            yield oid, data
    finally:
        if proc.poll() is None:
            proc.kill()
        writer.join()
        stdout.close()
        proc.wait()


# ----------------------------------------------------------------------------- the store


class SearchIndex:
    """The index file of one cache dir; ``None`` path: in memory (tests)."""

    def __init__(self, path: Path | None, *, timeout: float = 5.0) -> None:
        self.path = path
        self._db: sqlite3.Connection | None
        # Map searches from worker threads: one connection, one lock
        self.lock = threading.Lock()
        try:
            self._db = open_store(
                path, SCHEMA_VERSION, _CREATE, timeout=timeout, check_same_thread=False
            )
        except sqlite3.DatabaseError:  # corrupt twice: it is only a cache
            self._db = None

    @classmethod
    def open(cls, directory: Path) -> SearchIndex:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            return cls(None)
        return cls(directory / FILENAME)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def has(self, tree: str) -> bool:
        """Whether ``tree`` is indexed completely."""
        if self._db is None:
            return False
        try:
            row = self._db.execute("SELECT 1 FROM trees WHERE tree = ?", (tree,)).fetchone()
        except sqlite3.Error:
            return False
        return row is not None

    def tree(self, root: Path, tree: str) -> TreeIndex | None:
        """The index of ``tree`` (checked out at ``root``), or None if it is not complete."""
        if self._db is None:
            return None
        try:
            with self.lock, transaction(self._db):  # one snapshot of the file
                row = self._db.execute("SELECT files FROM trees WHERE tree = ?", (tree,)).fetchone()
                if row is None:
                    return None
                chunks = self._db.execute("SELECT text FROM vocab ORDER BY chunk").fetchall()
            files = json.loads(zlib.decompress(row[0]))
            gdir = git_dir(root)
        except (sqlite3.Error, zlib.error, ValueError):
            return None
        if gdir is None:
            return None
        vocab = b"".join(c for (c,) in chunks).decode("ascii")
        return TreeIndex(self, gdir, [(str(p), int(n)) for p, n in files], vocab, root)

    def postings(self, tokens: Iterable[int]) -> dict[int, np.ndarray]:
        """token -> its (blob, packed) pairs, as an (n, 2) uint32 array."""
        parts: dict[int, list[bytes]] = {}
        for token, data in self._rows_for("SELECT token, data FROM postings WHERE token", tokens):
            parts.setdefault(token, []).append(data)
        return {t: np.frombuffer(b"".join(d), dtype="<u4").reshape(-1, 2) for t, d in parts.items()}

    def import_lines(self, blobs: Iterable[int]) -> dict[int, bytes]:
        """blob -> its import lines, in order, newline-joined (blobs without any left out)."""
        rows = self._rows_for("SELECT blob, lines FROM imports WHERE blob", blobs)
        return {blob: zlib.decompress(lines) for blob, lines in rows}

    def _rows_for(self, select: str, keys: Iterable[int]) -> Iterator[tuple[Any, ...]]:
        """The rows of ``select`` (ending in the key column) for each distinct key, asked
        500 keys at a time (SQLite's bound on a statement's variables)."""
        assert self._db is not None
        ids = sorted(set(keys))
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            with self.lock:
                rows = self._db.execute(
                    f"{select} IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
            yield from rows

    # ------------------------------------------------------------------------- building

    def update(self, root: Path, tree: str, *, stop: threading.Event | None = None) -> bool:
        """Index the new blobs of ``tree`` (checked out at ``root``) and record the tree; True
        when the tree is indexed completely. Safe to interrupt at any point."""
        db = self._db
        if db is None:
            return False
        if self.has(tree):
            return True
        files = searchable(root, tree)
        gdir = git_dir(root)
        if files is None or gdir is None:
            return False
        try:
            (indexed,) = db.execute("SELECT COUNT(*) FROM blobs").fetchone()
            if indexed > MAX_GROWTH * len(files) + SLACK_BLOBS:
                with transaction(db, immediate=True):
                    drop_tables(db)
                    for statement in _CREATE:
                        db.execute(statement)
            known = {oid for (oid,) in db.execute("SELECT oid FROM blobs")}
            builder = _Builder(db)
            fresh = sorted({oid for _, oid in files if oid not in known})
            batch: list[tuple[str, tuple[dict[bytes, int], bytes]]] = []
            size = 0
            for oid, data in read_blobs(gdir, fresh):
                if stop is not None and stop.is_set():
                    return False
                batch.append((oid, scan(data)))
                size += len(data)
                if len(batch) >= BATCH_BLOBS or size >= BATCH_BYTES:
                    builder.write(batch)
                    batch, size = [], 0
            if batch:
                builder.write(batch)
            with transaction(db, immediate=True):
                numbers = dict(db.execute("SELECT oid, no FROM blobs"))
                if any(oid not in numbers for _, oid in files):
                    return False  # a blob git could not give: not complete
                listing = [[path, numbers[oid]] for path, oid in files]
                blob = zlib.compress(json.dumps(listing).encode(), 1)
                db.execute(
                    "INSERT OR REPLACE INTO trees VALUES (?, ?, ?)", (tree, time.time(), blob)
                )
                db.execute(
                    "DELETE FROM trees WHERE tree NOT IN"
                    " (SELECT tree FROM trees ORDER BY written DESC LIMIT ?)",
                    (MAX_TREES,),
                )
        except sqlite3.Error:
            return False
        return True


class _Builder:
    """Writes batches of scanned blobs: blob numbers, new tokens and postings, each batch in
    one transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.ids: dict[bytes, int] = {}
        self.last_chunk = 0

    def _catch_up(self) -> None:
        """Read the vocabulary chunks written since (by this builder or another process)."""
        rows = self.db.execute(
            "SELECT chunk, first, text FROM vocab WHERE chunk > ? ORDER BY chunk",
            (self.last_chunk,),
        ).fetchall()
        for chunk, first, text in rows:
            for i, token in enumerate(text.split(b"\n")[:-1]):
                self.ids[token] = first + i
            self.last_chunk = chunk

    def write(self, batch: list[tuple[str, tuple[dict[bytes, int], bytes]]]) -> None:
        db = self.db
        with transaction(db, immediate=True):
            self._catch_up()
            marks = ",".join("?" * len(batch))
            present = {
                oid
                for (oid,) in db.execute(
                    f"SELECT oid FROM blobs WHERE oid IN ({marks})", [o for o, _ in batch]
                )
            }
            (top,) = db.execute("SELECT COALESCE(MAX(no), 0) FROM blobs").fetchone()
            next_id = len(self.ids)
            new_tokens: list[bytes] = []
            postings: dict[int, array[int]] = {}
            for oid, (tokens, imports) in batch:
                if oid in present:  # another builder got there first
                    continue
                top += 1
                db.execute("INSERT INTO blobs VALUES (?, ?)", (top, oid))
                if imports:
                    db.execute(
                        "INSERT INTO imports VALUES (?, ?)", (top, zlib.compress(imports, 1))
                    )
                for token, packed in tokens.items():
                    tid = self.ids.get(token)
                    if tid is None:
                        tid = self.ids[token] = next_id
                        next_id += 1
                        new_tokens.append(token)
                    pairs = postings.get(tid)
                    if pairs is None:
                        pairs = postings[tid] = array("I")
                    pairs.append(top)
                    pairs.append(packed)
            if new_tokens:
                self.last_chunk += 1
                db.execute(
                    "INSERT INTO vocab VALUES (?, ?, ?)",
                    (self.last_chunk, next_id - len(new_tokens), b"\n".join(new_tokens) + b"\n"),
                )
            little = sys.byteorder == "little"
            batch_no = top
            rows = []
            for tid, pairs in postings.items():
                if not little:
                    pairs.byteswap()
                rows.append((tid, batch_no, pairs.tobytes()))
            db.executemany("INSERT INTO postings VALUES (?, ?, ?)", rows)


# ----------------------------------------------------------------------------- queries


@dataclass
class _Found:
    """The postings of some tokens, restricted to one tree's blobs."""

    tokens: list[str]
    pairs: list[np.ndarray]


class TreeIndex:
    """Map's searches over one completely indexed tree."""

    def __init__(
        self,
        store: SearchIndex,
        gdir: Path,
        files: list[tuple[str, int]],
        vocab: str,
        root: Path | None = None,
    ) -> None:
        self.store = store
        self.root = root
        self.git_dir = gdir
        self.paths: dict[int, list[str]] = {}
        for path, no in files:
            self.paths.setdefault(no, []).append(path)
        self.in_tree = np.zeros(max(self.paths, default=0) + 1, dtype=bool)
        self.in_tree[list(self.paths)] = True
        self._blob_oids: dict[int, str] | None = None
        # "\n" before every token: token i starts right after the i-th newline
        self.vocab = "\n" + vocab
        self.lower = self.vocab.lower()
        raw = np.frombuffer(self.vocab.encode("ascii"), dtype=np.uint8)
        self.starts = np.flatnonzero(raw == 10)[:-1] + 1 if vocab else np.zeros(0, np.int64)

    # --- vocabulary

    def _ids_at(self, positions: list[int]) -> np.ndarray:
        return np.unique(np.searchsorted(self.starts, positions, side="right") - 1)

    def _containing(self, words: Iterable[str]) -> np.ndarray:
        """Ids of the tokens containing any of ``words`` (lower case), case-insensitively."""
        positions: list[int] = []
        for word in words:
            i = self.lower.find(word, 1)
            while i != -1:
                positions.append(i)
                i = self.lower.find(word, i + 1)
        return self._ids_at(positions)

    def _exact(self, names: Iterable[str], *, prefix: bool = False) -> np.ndarray:
        """Ids of the tokens equal to ``names`` (or, ``prefix``, starting with them in any case)."""
        text = self.lower if prefix else self.vocab
        positions: list[int] = []
        for name in names:
            needle = "\n" + name if prefix else f"\n{name}\n"
            i = text.find(needle)
            while i != -1:
                positions.append(i + 1)
                if not prefix:
                    break
                i = text.find(needle, i + 1)
        return self._ids_at(positions)

    def _token(self, tid: int) -> str:
        start = int(self.starts[tid])
        return self.vocab[start : self.vocab.index("\n", start)]

    def _found(self, ids: np.ndarray) -> _Found:
        postings = self.store.postings(int(t) for t in ids)
        found = _Found([], [])
        if not postings:
            return found
        tids = sorted(postings)
        # one mask over every token's pairs at once (a long report's words are in thousands
        # of tokens: a numpy call per token was most of the search)
        every = np.concatenate([postings[t] for t in tids])
        blobs = every[:, 0]
        keep = blobs < len(self.in_tree)
        keep[keep] = self.in_tree[blobs[keep]]
        starts = np.cumsum([0] + [len(postings[t]) for t in tids[:-1]])
        kept = np.add.reduceat(keep.astype(np.int64), starts)
        for tid, n, pairs in zip(
            tids, kept.tolist(), np.split(every[keep], np.cumsum(kept)[:-1]), strict=True
        ):
            if n:
                found.tokens.append(self._token(tid))
                found.pairs.append(pairs)
        return found

    # --- contents of files the postings cannot answer alone

    def _contents(self, blobs: Iterable[int]) -> Iterator[tuple[int, bytes]]:
        """Blob number and content as ripgrep searches it (a BOM dropped; binary left out):
        the checkout's file when it holds exactly that blob (reading a file is much cheaper
        than inflating a git object), else git's object."""
        oids = self._oids()
        missing: dict[str, int] = {}
        for blob in sorted(set(blobs)):
            oid = oids[blob]
            data = _checked_out(self.root / self.paths[blob][0], oid) if self.root else None
            if data is None:
                missing[oid] = blob
            elif b"\0" not in data:
                yield blob, data[3:] if data.startswith(codecs.BOM_UTF8) else data
        for oid, data in read_blobs(self.git_dir, list(missing)):
            if b"\0" not in data:
                yield missing[oid], data[3:] if data.startswith(codecs.BOM_UTF8) else data

    # --- the searches of `pytest_orchestrator.phases.map.search`

    def count_terms(
        self, words: Iterable[str], identifiers: Iterable[str] = (), phrases: Iterable[str] = ()
    ) -> search.Hits | None:
        """What `search.count_terms` finds; None when the index cannot say."""
        wordset, phrase_by_lower = search._term_query(words, identifiers, phrases)
        tally = search.TermTally(wordset, phrase_by_lower)
        if not wordset and not phrase_by_lower:
            return tally.hits
        if not all(_ASCII_NAME.fullmatch(w) for w in wordset):
            return None
        phrased: set[int] = set()  # blobs that may hold a phrase: searched with the pattern
        for phrase in phrase_by_lower:
            pieces = [p.lower() for p in _ASCII_NAME.findall(phrase)]
            if not pieces or not phrase.isascii():
                return None
            holders: set[int] | None = None
            for piece in pieces:  # blobs with a token containing every piece of the phrase
                found = self._found(self._containing([piece]))
                holding = {int(b) for p in found.pairs for b in p[:, 0]}
                holders = holding if holders is None else holders & holding
            phrased |= holders or set()
        found = self._found(self._containing(wordset))
        if found.pairs:
            sizes = np.array([len(p) for p in found.pairs])
            blobs = np.concatenate([p[:, 0] for p in found.pairs]).astype(np.int64)
            counts = np.concatenate([p[:, 1] >> _FLAG_BITS for p in found.pairs]).astype(np.int64)
            tokens = np.repeat(np.arange(len(found.tokens)), sizes)
            # a file with more matches than the line cap may reach it: its lines are counted
            total = np.bincount(blobs, weights=counts)
            capped = set(np.flatnonzero(total > search.MAX_LINES_PER_FILE).tolist()) - phrased
            slow = np.fromiter(capped | phrased, np.int64)
            quick = ~np.isin(blobs, slow)
            _tally_postings(tally, found.tokens, tokens[quick], blobs[quick], counts[quick], self)
            if capped:
                capped -= self._count_checked_out(capped, wordset, phrase_by_lower, tally)
            if capped:
                where = np.isin(blobs, np.fromiter(capped, np.int64))
                per_blob: dict[int, set[bytes]] = {}
                for b, t in zip(blobs[where].tolist(), tokens[where].tolist(), strict=True):
                    per_blob.setdefault(b, set()).add(found.tokens[t].encode())
                for blob, data in self._contents(capped):
                    lines = _capped_counts(data, wordset, per_blob[blob])
                    for path in self.paths[blob]:
                        for token, n in lines.items():
                            tally.add(path, _shown(token), n)
        if phrased:
            phrased -= self._count_checked_out(phrased, wordset, phrase_by_lower, tally)
        if phrased:
            pattern = re.compile(search.terms_pattern(wordset, phrase_by_lower), re.IGNORECASE)
            needles = [*wordset, *phrase_by_lower]
            for blob, data in self._contents(phrased):
                for path in self.paths[blob]:
                    _search_terms(data, needles, pattern, path, tally)
        return tally.hits

    def _count_checked_out(
        self,
        blobs: set[int],
        wordset: set[str],
        phrase_by_lower: dict[str, str],
        tally: search.TermTally,
    ) -> set[int]:
        """`search.count_terms`' own ripgrep pass over the files of ``blobs`` the checkout
        holds exactly (their blob id checked), counted into ``tally`` for every path of each
        blob; the blobs so counted. ripgrep stops at its per-file line cap in native code, so
        a long report's common words in big files cost it milliseconds (the same lines found
        in Python cost a second); the rest are left to the caller."""
        if self.root is None:
            return set()
        oids = self._oids()
        by_path = {
            self.paths[b][0]: b
            for b in sorted(blobs)
            if _checked_out(self.root / self.paths[b][0], oids[b]) is not None
        }
        if not by_path:
            return set()
        try:
            found = search.count_terms_in(self.root, sorted(by_path), wordset, phrase_by_lower)
        except search.SearchError:
            return set()
        for path, match, times in found:
            for each in self.paths[by_path[path]]:
                tally.add(each, match, times)
        return set(by_path.values())

    def _oids(self) -> dict[int, str]:
        """Blob number -> git id (read once per tree)."""
        if self._blob_oids is None:
            assert self.store._db is not None
            with self.store.lock:
                self._blob_oids = dict(self.store._db.execute("SELECT no, oid FROM blobs"))
        return self._blob_oids

    def find_identifiers(self, identifiers: Iterable[str]) -> search.IdentifierHits | None:
        """What `search.find_identifiers` finds; None when the index cannot say."""
        names = search.identifier_names(identifiers)
        out = search.IdentifierHits()
        if not names:
            return out
        if not all(_ASCII_NAME.fullmatch(n) for n in names) or _KEYWORDS & set(names):
            return None
        found = self._found(self._exact(names))
        # a name starting a line may be an assignment, whose match can swallow other names
        exact = {int(b) for pairs in found.pairs for b, packed in pairs.tolist() if packed & COL0}
        for name, pairs in zip(found.tokens, found.pairs, strict=True):
            if len(name.encode()) > search.MAX_COLUMNS:
                exact.update(pairs[:, 0].tolist())
        for name, pairs in zip(found.tokens, found.pairs, strict=True):
            for blob, packed in pairs.tolist():
                if blob in exact:
                    continue
                for path in self.paths[blob]:
                    out.counts.setdefault(path, Counter())[name] += packed >> _FLAG_BITS
                    if packed & DEF:
                        out.definitions.setdefault(name, set()).add(path)
        if exact:
            pattern = re.compile(search.identifiers_pattern(names))
            wanted = set(names)
            for blob, data in self._contents(exact):
                for line in _lines_holding(data, names):
                    for m in pattern.finditer(line.decode("utf-8", errors="replace")):
                        for path in self.paths[blob]:
                            search.tally_identifier(out, wanted, path, _shown(m.group()))
        return out

    def find_import_lines(self, leaf_names: Iterable[str]) -> dict[str, list[str]] | None:
        """What `search.find_import_lines` finds; None when the index cannot say."""
        names = search.import_names(leaf_names)
        if not names:
            return {}
        if not all(_ASCII_NAME.fullmatch(n) for n in names):
            return None
        found = self._found(self._exact(names))
        blobs = {int(b) for pairs in found.pairs for b, packed in pairs.tolist() if packed & IMPORT}
        # the stored import lines are every line the pattern can match (it starts so), and
        # a match never crosses a line end: the pattern over each of them is ripgrep's
        # answer, no file read
        pattern = re.compile(search.imports_pattern(names))
        out: dict[str, list[str]] = {}
        for blob, held in sorted(self.store.import_lines(blobs).items()):
            text = held.decode("utf-8", errors="replace")
            lines = [line.strip() for line in text.split("\n") if pattern.search(line)]
            if lines:
                for path in self.paths[blob]:
                    out[path] = list(lines)
        return out

    def nearby_names(self, wanted: Sequence[str], limit: int = 5) -> list[str]:
        """Like `search.nearby_names`, over every occurrence of every name with the prefix."""
        prefixes = search.name_prefixes(wanted)
        if not prefixes:
            return []
        found = self._found(self._exact(prefixes, prefix=True))
        names: Counter[str] = Counter()
        for token, pairs in zip(found.tokens, found.pairs, strict=True):
            if not token[0].isdigit():
                names[token] += int((pairs[:, 1] >> _FLAG_BITS).sum())
        return search.closest_in_pool(wanted, names, limit)

    def files_with_line(self, name: str, pattern: re.Pattern[str]) -> list[str] | None:
        """The files ripgrep's ``--files-with-matches`` lists for ``pattern``, a pattern that
        matches only on a line holding the identifier ``name`` as a whole token (as
        `refactor.files_defining`'s does): the blobs whose postings hold the token, their lines
        holding it searched with the pattern. None when the index cannot say."""
        if not _ASCII_NAME.fullmatch(name):
            return None
        found = self._found(self._exact([name]))
        blobs = {int(b) for pairs in found.pairs for b in pairs[:, 0].tolist()}
        return sorted(
            path
            for blob, data in self._contents(blobs)
            if any(
                pattern.search(line.decode("utf-8", errors="replace"))
                for line in _lines_holding(data, [name])
            )
            for path in self.paths[blob]
        )


def _shown(match: str) -> str:
    """``match`` as ripgrep prints it with ``--max-columns``."""
    return _OMITTED if len(match.encode()) > search.MAX_COLUMNS else match


def _tally_postings(
    tally: search.TermTally,
    names: list[str],
    tokens: np.ndarray,
    blobs: np.ndarray,
    counts: np.ndarray,
    index: TreeIndex,
) -> None:
    """Add the occurrences (token, blob, count) to ``tally``, summed per file and query word."""
    rows: list[int] = []
    words: list[str] = []
    for i, name in enumerate(names):
        for part in tally.parts(_shown(name)):
            rows.append(i)
            words.append(part)
    if not rows:
        return
    vocabulary = sorted(set(words))
    # token -> query word -> how often the word is among the token's sub-words
    times = np.zeros((len(names), len(vocabulary)), dtype=np.int64)
    np.add.at(times, (rows, [vocabulary.index(w) for w in words]), 1)
    per_row = times[tokens]
    t_idx, w_idx = np.nonzero(per_row)
    key = blobs[t_idx] * len(vocabulary) + w_idx
    uniq, inverse = np.unique(key, return_inverse=True)
    sums = np.bincount(inverse, weights=counts[t_idx] * per_row[t_idx, w_idx])
    for k, n in zip(uniq.tolist(), sums.tolist(), strict=True):
        blob, w = divmod(k, len(vocabulary))
        for path in index.paths[blob]:
            tally.hits.words.setdefault(path, Counter())[vocabulary[w]] += int(n)


_IDENT_BYTE: Final = np.zeros(256, dtype=bool)
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_":
    _IDENT_BYTE[_c] = True


def _matching_lines(data: bytes, needles: Iterable[str]) -> list[bytes]:
    """The first `search.MAX_LINES_PER_FILE` lines of ``data`` holding one of ``needles``
    (ASCII, lower case) in any case: exactly the lines on which ripgrep's ``--max-count``
    counts, since `count_terms`' pattern matches on a line just when a query word or phrase
    occurs in it. Found by plain substring search of the lower-cased bytes, a chunk at a time
    (the cap is usually reached long before a file's end)."""
    lower = data.lower()
    encoded = [n.encode() for n in needles]
    out: list[bytes] = []
    start = 0
    while start < len(lower) and len(out) < search.MAX_LINES_PER_FILE:
        stop = lower.find(b"\n", start + _CHUNK)
        stop = len(lower) if stop == -1 else stop + 1
        starts: set[int] = set()
        for needle in encoded:
            i = lower.find(needle, start, stop)
            while i != -1:
                before = lower.rfind(b"\n", start, i)
                starts.add(start if before == -1 else before + 1)
                end = lower.find(b"\n", i, stop)  # one hit per line suffices
                i = -1 if end == -1 else lower.find(needle, end + 1, stop)
        for first in sorted(starts)[: search.MAX_LINES_PER_FILE - len(out)]:
            end = data.find(b"\n", first)
            out.append(data[first : len(data) if end == -1 else end])
        start = stop
    return out


def _lines_holding(data: bytes, needles: Iterable[str]) -> list[bytes]:
    """The lines of ``data`` holding one of ``needles`` (case-sensitive), in order: the only
    lines on which a pattern that needs one of them can match (ripgrep matches line by
    line, so running the pattern on these lines alone gives its answer)."""
    starts: set[int] = set()
    for needle in needles:
        encoded = needle.encode()
        i = data.find(encoded)
        while i != -1:
            starts.add(data.rfind(b"\n", 0, i) + 1)
            end = data.find(b"\n", i)
            i = -1 if end == -1 else data.find(encoded, end + 1)
    out = []
    for first in sorted(starts):
        end = data.find(b"\n", first)
        out.append(data[first : len(data) if end == -1 else end])
    return out


def _capped_counts(data: bytes, words: Iterable[str], tokens: set[bytes]) -> Counter[str]:
    """Occurrences of ``tokens`` on the lines ripgrep's ``--max-count`` lets through."""
    # no token spans a line end: counting the joined lines counts each line's
    every = Counter(_TOKEN.findall(b"\n".join(_matching_lines(data, words))))
    return Counter({t.decode(): n for t, n in every.items() if t in tokens})


def _search_terms(
    data: bytes,
    needles: Iterable[str],
    pattern: re.Pattern[str],
    path: str,
    tally: search.TermTally,
) -> None:
    """`search.count_terms`' ripgrep pass over one file: its pattern on the lines
    `_matching_lines` finds, a match longer than `search.MAX_COLUMNS` bytes counted as
    ripgrep prints it."""
    for line in _matching_lines(data, needles):
        for m in pattern.finditer(line.decode("utf-8", errors="replace")):
            tally.add(path, _shown(m.group()))


# ----------------------------------------------------------------------------- building aside


def start_build(root: Path, tree: str, cache_dir: Path) -> subprocess.Popen[bytes]:
    """`build` in a process of its own, at low priority, in its own process group
    (the caller registers it with `pytest_orchestrator.guard.containment`, so the session's
    cleanup stops it; an interrupted build is simply continued by the next one)."""
    from pytest_orchestrator.guard import containment

    env = {**os.environ, **containment.owner_env()}
    cache_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", __name__, str(root.resolve()), tree, str(cache_dir.resolve())],
        # not the checkout: ``-m`` puts the working directory first on sys.path, and a module
        # of the repository named like one we import would be imported (and compiled) there
        cwd=cache_dir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )


def build(root: Path, tree: str, cache_dir: Path) -> bool:
    """Index ``tree`` (checked out at ``root``) in ``cache_dir``, then record the slices of its
    files in the slice cache there (`pytest_orchestrator.phases.map.file_slices.preslice`),
    so that a new command's candidates need no parsing: the index first, since Map uses it
    as soon as the tree is complete. True when the tree is indexed."""
    from pytest_orchestrator.phases.map.file_slices import preslice
    from pytest_orchestrator.phases.map.slice_cache import SliceCache

    index = SearchIndex.open(cache_dir)
    try:
        if not index.update(root, tree):
            return False
    finally:
        index.close()
    files, gdir = searchable(root, tree), git_dir(root)
    if files is not None and gdir is not None:
        with SliceCache.open(cache_dir) as cache:
            preslice(files, lambda oids: read_blobs(gdir, oids), cache)
    return True


def main(argv: Sequence[str]) -> int:
    """``python -m pytest_orchestrator.phases.map.index ROOT TREE CACHE_DIR``: `build`."""
    from pytest_orchestrator.guard import containment

    root, tree, cache_dir = argv
    containment.start_watchdog()
    with contextlib.suppress(OSError):
        os.nice(10)
    return 0 if build(Path(root), tree, Path(cache_dir)) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
