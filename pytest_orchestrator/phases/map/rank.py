"""Scoring: BM25 over identifier-split tokens, and the weights that combine the evidence.

Every candidate slice gets named components in ``[0, 1]``; its score is their weighted sum.
The components and the weights are written to ``slices.json``, so a ranking can always be
explained. The default weights were measured, not guessed: ``benchmarks/eval_localisation.py``
scores commits of real projects (message -> changed files/functions) and its ``--tune`` mode
searches the weights; the figures are in that script's output.

Components:

``definition``  the slice defines an identifier named in the command (``def``/``class``/global)
``name``        the slice defines a capitalised word of the command's prose ("the Kelly fraction")
``identifier``  share of the command's identifiers that occur verbatim in the slice
``lexical``     BM25 of the slice against the command's words (normalised to the best slice)
``file``        BM25 of the slice's file, from ripgrep's counts (normalised)
``path``        the command's words in the file's path, IDF-weighted (normalised)
``graph``       import-graph proximity to the files that define the named identifiers
``centrality``  how many files of the neighbourhood import the slice's file (normalised)
``vector``      cosine similarity of hashed identifier embeddings (slice cache)
``memory``      earlier runs chose this slice for a similar command
``trace``       a stack-trace line of the command points into the slice
``report``      the slice's file score when the command is a bug report
                (`pytest_orchestrator.phases.map.report`); 0 for a sentence
``test``        the slice is in a test file (1) -- its weight is negative: a command is usually
                about the code, and its tests come along through the call graph
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Final

from pytest_orchestrator.phases.map.terms import split_run

K1: Final = 1.2
B: Final = 0.75


@dataclass(frozen=True)
class Weights:
    """How much each component counts. See the module docstring for what they mean.

    Measured with ``benchmarks/eval_localisation.py --tune`` (coordinate ascent on half of
    120 real commits of sqlalchemy, sphinx, mypy and networkx; held-out half and four other
    projects for the figures). ``definition`` is not searched but held high on purpose: the
    planner relies on a named identifier's definition ranking first, whatever else the
    command resembles (on the commits this costs ~0.03 file recall@1). ``trace`` and
    ``memory`` are not exercised by commits and keep their hand-set values.
    """

    definition: float = 7.0
    name: float = -2.0
    identifier: float = 0.5
    lexical: float = 3.0
    file: float = 1.0
    path: float = 1.5
    graph: float = 0.5
    centrality: float = 0.1
    vector: float = 0.5
    memory: float = 1.0
    trace: float = 2.0
    test: float = -2.0
    report: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def score(self, components: Mapping[str, float]) -> float:
        """The weighted sum of ``components`` (missing components count 0)."""
        return sum(getattr(self, name, 0.0) * value for name, value in components.items())


DEFAULT_WEIGHTS: Final = Weights()


def idf(n_docs: int, df: int) -> float:
    """BM25's (always positive) inverse document frequency."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def bm25(
    tf: Mapping[str, int],
    length: float,
    avg_length: float,
    idfs: Mapping[str, float],
) -> float:
    """BM25 of one document (its term frequencies and length) for a query's ``idfs``."""
    if avg_length <= 0:
        return 0.0
    norm = K1 * (1.0 - B + B * length / avg_length)
    total = 0.0
    for term, weight in idfs.items():
        f = tf.get(term, 0)
        if f:
            total += weight * f * (K1 + 1.0) / (f + norm)
    return total


def bm25_corpus(
    docs: Sequence[Sequence[str]],
    query: Sequence[str],
    idfs: Mapping[str, float] | None = None,
) -> list[float]:
    """BM25 of every tokenised document in ``docs`` against ``query``.

    IDF comes from ``idfs`` when given (e.g. from the whole repository's document
    frequencies, as Map does for slices), else from ``docs`` themselves.
    """
    terms = set(query)
    tfs = [Counter(t for t in doc if t in terms) for doc in docs]
    return bm25_scores(tfs, [len(doc) for doc in docs], idfs, query)


def bm25_scores(
    tfs: Sequence[Mapping[str, int]],
    lengths: Sequence[float],
    idfs: Mapping[str, float] | None = None,
    query: Sequence[str] = (),
) -> list[float]:
    """BM25 of every document, given as its term frequencies and its length, against the
    average length. IDF comes from ``idfs`` when given, else from the documents themselves
    (for the ``query`` terms)."""
    if not tfs:
        return []
    if idfs is None:
        idfs = {t: idf(len(tfs), sum(1 for tf in tfs if tf.get(t, 0))) for t in set(query)}
    avg = sum(lengths) / len(lengths)
    return [bm25(tf, n, avg, idfs) for tf, n in zip(tfs, lengths, strict=True)]


_RUN: Final = re.compile(r"[A-Za-z0-9_]+")


def bm25_texts(
    texts: Sequence[str], words: Sequence[str], idfs: Mapping[str, float]
) -> list[float]:
    """BM25 of raw texts, counting the same sub-words as `bm25_corpus` over
    `split_identifier` tokens, several times faster: identifier runs are counted in C
    (``Counter(findall)``), only in the texts that hold a query word at all (a sub-word is a
    lower-cased piece of its run, so a text whose lower case holds none has no term), and
    only each *distinct* run that holds one is split, through a cache. Document length is
    the number of runs."""
    wanted = set(words)
    if not wanted or not texts:
        return [0.0] * len(texts)
    lengths: list[int] = []
    tfs: list[Counter[str]] = []
    relevant: dict[str, list[str]] = {}
    for text in texts:
        runs = _RUN.findall(text)
        lengths.append(len(runs))
        tf: Counter[str] = Counter()
        tfs.append(tf)
        lower = text.lower()
        if not any(w in lower for w in wanted):
            continue
        for run, n in Counter(runs).items():
            parts = relevant.get(run)
            if parts is None:
                low = run.lower()
                held = any(w in low for w in wanted)
                parts = relevant[run] = [w for w in split_run(run) if w in wanted] if held else []
            for w in parts:
                tf[w] += n
    return bm25_scores(tfs, lengths, idfs)


def normalise(values: Mapping[str, float]) -> dict[str, float]:
    """Scale to ``[0, 1]`` by the maximum (all zeros stay zeros)."""
    top = max(values.values(), default=0.0)
    if top <= 0:
        return {k: 0.0 for k in values}
    return {k: v / top for k, v in values.items()}
