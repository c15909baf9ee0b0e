"""Term extraction: what Map searches for, from one sentence."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pytest_orchestrator.phases.map.terms import extract, looks_like_code, split_identifier


def test_split_identifier_handles_snake_camel_and_acronyms() -> None:
    """snake_case, camelCase and acronyms split into the same lower-case sub-words."""
    assert split_identifier("calculatePositionSize") == ["calculate", "position", "size"]
    assert split_identifier("calculate_position_size") == ["calculate", "position", "size"]
    assert split_identifier("HTTPServer.max_bp_2") == ["http", "server", "max", "bp", "2"]


def test_code_looking_tokens_are_identifiers() -> None:
    """snake_case, camelCase, CapWords-with-inner-capital and calls look like code."""
    assert all(map(looks_like_code, ["win_prob", "getValue", "PositionPlan", "run()", "a.b"]))
    assert not any(map(looks_like_code, ["position", "Kelly", "size"]))


def test_rename_keeps_the_old_name_and_sets_aside_the_new() -> None:
    """In "rename a to b", a is searched (even a plain word) and b is only noted as new."""
    terms = extract("Rename sympify to to_sympy everywhere")
    assert terms.identifiers == ("sympify",)
    assert terms.new_names == ("to_sympy",)
    assert "to" not in terms.words
    assert "sympy" not in terms.words


def test_paths_modules_and_words_are_separated() -> None:
    """File paths, dotted modules and prose words land in their own groups."""
    terms = extract("Fix the KeyError in wheel_sizing/kelly.py via wheel_sizing.sizing")
    assert terms.paths == ("wheel_sizing/kelly.py",)
    assert terms.modules == ("wheel_sizing.sizing",)
    assert "KeyError" in terms.identifiers
    assert {"key", "error", "kelly"} <= set(terms.words)
    assert "the" not in terms.words


def test_stack_trace_lines_give_path_line_and_function() -> None:
    """A pasted traceback yields (path, line) pairs and the function as an identifier."""
    terms = extract('Traceback:\n  File "/venv/site-packages/app/core.py", line 42, in handle')
    assert terms.trace == (("/venv/site-packages/app/core.py", 42),)
    assert "handle" in terms.identifiers


def test_quoted_text_is_a_phrase_and_a_quoted_name_an_identifier() -> None:
    """'insufficient buying power' is searched as a phrase; `kelly` as a name."""
    terms = extract('the error "insufficient buying power" comes from `kelly`')
    assert terms.phrases == ("insufficient buying power",)
    assert "kelly" in terms.identifiers


def test_an_apostrophe_opens_no_quotation() -> None:
    """An apostrophe (isn't, didn't) is prose; a quote standing apart is still a phrase."""
    terms = extract("Isn't it odd that 'Schema' defaults to raise? I didn't say 'a b c' here")
    assert terms.phrases == ("a b c",)
    assert "Schema" in terms.identifiers


def test_a_command_of_stop_words_is_empty() -> None:
    """Nothing searchable in "please fix it" means no terms at all."""
    assert extract("please fix it").empty


@given(st.text(max_size=300))
def test_extraction_never_fails_and_words_are_clean(command: str) -> None:
    """Any text extracts without error; words are lower-case, not stop words, and searchable."""
    from pytest_orchestrator.phases.map.terms import STOP_WORDS

    terms = extract(command)
    for w in terms.words:
        assert w == w.lower()
        assert w not in STOP_WORDS
        assert len(w) > 1
    assert set(terms.all()) >= set(terms.identifiers)
