"""What the searches say about each file, before any file is read.

Map picks the files to parse from this evidence: BM25 of the file against the command's words
(from ripgrep's counts, file size as length), the command's words in the file's path, and hits
of the named identifiers and their definitions. ``text`` and ``path`` are also ranking
components of every slice (`pytest_orchestrator.phases.map.rank`); ``total``, with the bonuses
below, only picks the candidates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pytest_orchestrator.phases.map import search
from pytest_orchestrator.phases.map.graph import ModuleIndex
from pytest_orchestrator.phases.map.rank import bm25, idf
from pytest_orchestrator.phases.map.terms import Terms, split_identifier

#: Weight of a path match in picking candidate files (``FileEvidence.total``).
_PATH_WEIGHT: Final = 1.5
#: Added to a file's pick score per named identifier it contains.
_IDENT_FILE_BONUS: Final = 2.0
#: Added to a file's pick score when it defines a named identifier (half for a prose name).
DEF_FILE_BONUS: Final = 4.0


@dataclass
class FileEvidence:
    """File-level evidence from the searches, before any file is read."""

    text: dict[str, float] = field(default_factory=dict)
    """BM25 of the file against the command's words (ripgrep's counts, size as length)."""
    path: dict[str, float] = field(default_factory=dict)
    """IDF of the command's words found in the file's path ("mysql" in dialects/mysql/...)."""
    total: dict[str, float] = field(default_factory=dict)
    """What picks the candidates: text + path + identifier and definition bonuses."""
    sizes: dict[str, float] = field(default_factory=dict)
    """Bytes of every file the word search matched (BM25's document length), so a bug
    report can score the same counts again with its own weights per word."""


def score_files(
    root: Path, terms: Terms, files: list[str], hits: search.Hits, idents: search.IdentifierHits
) -> FileEvidence:
    """File-level evidence: BM25 over ripgrep counts, path words, identifier/definition hits."""
    n = max(len(files), 1)
    df = hits.document_frequency()
    idfs = {w: idf(n, df.get(w, 0)) for w in terms.words}
    sizes: dict[str, float] = {}
    prefix = f"{root}{os.sep}"  # a string join: thousands of files, pathlib's cost showed
    for path in hits.files:
        try:
            sizes[path] = float(os.stat(prefix + path).st_size)
        except OSError:
            sizes[path] = 0.0
    avg = sum(sizes.values()) / len(sizes) if sizes else 1.0
    ev = FileEvidence(sizes=sizes)
    for path, tf in hits.words.items():
        ev.text[path] = bm25(tf, sizes.get(path, avg), avg, idfs)
    # words in the path: "sizing" finds wheel_sizing/sizing.py even where the text says "size"
    wanted = set(terms.words)
    if wanted:
        for path in files:
            lowered = path.lower()
            if not any(w in lowered for w in wanted):  # cheap filter before splitting
                continue
            parts = set(split_identifier(path.removesuffix(".py")))
            matched = parts & wanted
            if matched:
                ev.path[path] = sum(idfs[w] for w in matched) / max(len(parts), 1) ** 0.5
    total = dict(ev.text)
    for path, value in ev.path.items():
        total[path] = total.get(path, 0.0) + _PATH_WEIGHT * value
    for path, counts in idents.counts.items():
        total[path] = total.get(path, 0.0) + _IDENT_FILE_BONUS * len(counts)
    strong = set(terms.identifiers)
    for name, paths in idents.definitions.items():
        bonus = DEF_FILE_BONUS if name in strong else DEF_FILE_BONUS / 2
        for path in paths:
            total[path] = total.get(path, 0.0) + bonus
    ev.total = total
    return ev


def explicit_files(terms: Terms, files: list[str], index: ModuleIndex) -> set[str]:
    """Files the command names: paths, dotted modules, stack-trace files.

    A path matches the files sharing its longest tail of components, so the trace line
    ``/venv/lib/python3.11/site-packages/flask/app.py`` finds ``src/flask/app.py``.
    """
    found: set[str] = set()
    by_name: dict[str, list[str]] = {}
    for f in files:
        by_name.setdefault(f.rsplit("/", 1)[-1], []).append(f)
    for wanted in terms.paths:
        parts = [p for p in wanted.replace("\\", "/").split("/") if p not in ("", ".")]
        if not parts:
            continue
        best: list[str] = []
        best_len = 0
        for f in by_name.get(parts[-1], []):
            fparts = f.split("/")
            n = 0
            while n < min(len(parts), len(fparts)) and parts[-1 - n] == fparts[-1 - n]:
                n += 1
            if n > best_len:
                best, best_len = [f], n
            elif n == best_len:
                best.append(f)
        if best and (best_len >= 2 or len(best) <= 3):
            found.update(best)
    for module in terms.modules:
        parts = module.split(".")
        for i in range(len(parts), 0, -1):
            target = index.resolve(".".join(parts[:i]), "")
            if target is not None:
                found.add(target)
                break
    return found
