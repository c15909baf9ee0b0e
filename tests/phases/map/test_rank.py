"""BM25 and the explicit weights."""

from __future__ import annotations

import pytest

from pytest_orchestrator.phases.map.rank import (
    DEFAULT_WEIGHTS,
    Weights,
    bm25_corpus,
    idf,
    normalise,
)


def test_bm25_prefers_rarer_terms_and_shorter_documents() -> None:
    """A rare query term outweighs a common one, and length dilutes frequency."""
    docs = [["pool", "timeout"], ["pool", "pool", "other"], ["pool"] + ["x"] * 20, ["y"]]
    scores = bm25_corpus(docs, ["pool", "timeout"])
    assert scores[0] == max(scores)
    assert scores[1] > scores[2]
    assert scores[3] == 0.0


def test_idf_is_positive_even_for_terms_in_every_document() -> None:
    """BM25's IDF variant never goes negative."""
    assert idf(10, 10) > 0
    assert idf(10, 1) > idf(10, 9)


def test_score_is_the_weighted_sum_of_components() -> None:
    """A score is exactly the sum of weight * component; unknown components count nothing."""
    weights = Weights(definition=2.0, lexical=0.5)
    assert weights.score({"definition": 1.0, "lexical": 0.5, "unknown": 9.0}) == pytest.approx(2.25)


def test_a_named_definition_beats_any_amount_of_mere_similarity() -> None:
    """The defining slice of a named symbol outscores a slice that is only similar text."""
    definition = {"definition": 1.0, "identifier": 1.0}
    similar = {"lexical": 1, "file": 1, "path": 1, "vector": 1, "graph": 1, "centrality": 1}
    assert DEFAULT_WEIGHTS.score(definition) > DEFAULT_WEIGHTS.score(similar)


def test_normalise_scales_to_the_best() -> None:
    """Normalising divides by the maximum; all-zero stays zero."""
    assert normalise({"a": 2.0, "b": 1.0}) == {"a": 1.0, "b": 0.5}
    assert normalise({"a": 0.0}) == {"a": 0.0}


def test_test_files_are_recognised_by_their_paths() -> None:
    """tests/ directories, test_*.py, *_test.py and conftest.py are test files."""
    from pytest_orchestrator.repo.files import is_test_path

    assert all(map(is_test_path, ["tests/a.py", "pkg/test_x.py", "x_test.py", "conftest.py"]))
    assert not any(map(is_test_path, ["pkg/testing_utils.py", "attest.py", "src/contest.py"]))


def test_bm25_over_texts_counts_sub_words_of_identifiers() -> None:
    """QueuePool(pool_timeout) scores like the words "pool pool timeout"; spool/offset do not."""
    from pytest_orchestrator.phases.map.rank import bm25_texts
    from pytest_orchestrator.phases.map.terms import split_identifier

    texts = ["QueuePool(pool_timeout=3)", "spool = offset", "pool pool timeout"]
    idfs = {"pool": 1.0, "timeout": 2.0}
    fast = bm25_texts(texts, ["pool", "timeout"], idfs)
    assert fast[1] == 0.0
    assert fast[0] == fast[2] > 0.0
    hits = [sum(w in idfs for w in split_identifier(t)) for t in texts]
    assert hits == [3, 0, 3]
