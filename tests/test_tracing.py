"""Texts the trace keeps: long ones are clipped to head and tail, never to a fragment."""

from __future__ import annotations

from pytest_orchestrator.tracing import clip


def test_a_long_text_keeps_its_head_and_tail_and_says_what_was_cut() -> None:
    text = "ASKED " + "x" * 10_000 + " LATEST"
    clipped = clip(text, 1_000)
    assert clipped.startswith("ASKED ")
    assert clipped.endswith(" LATEST")
    assert "(9013 characters cut)" in clipped
    assert len(clipped) < 1_100
    assert clip("short", 1_000) == "short"
