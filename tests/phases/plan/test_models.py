"""The model table: what each model accepts, and how requests are shaped from it."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_orchestrator.options import DEFAULT_MODEL
from pytest_orchestrator.phases.plan.llm import LlmConfig, ModelClient
from pytest_orchestrator.phases.plan.models import MODELS, UNKNOWN, base_id, lookup
from pytest_orchestrator.tokens import TokenLedger


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("global.anthropic.claude-opus-5", "claude-opus-5"),
        ("claude-opus-4-1@20250805", "claude-opus-4-1"),
        ("claude-opus-4-0", "claude-opus-4"),
        ("claude-haiku-4-5", "claude-haiku-4-5"),
        ("Claude-Opus-4-7", "claude-opus-4-7"),
    ],
)
def test_platform_and_snapshot_ids_find_their_model(given: str, expected: str) -> None:
    """Bedrock prefixes/versions, Vertex @dates and snapshot dates map to one table entry."""
    assert base_id(given) == expected
    spec, note = lookup(given)
    assert (spec.id, note) == (expected, "")


def test_an_unknown_model_is_used_conservatively_with_a_note() -> None:
    """No thinking, no forced tool use, at most 4096 output tokens, one line saying so."""
    spec, note = lookup("claude-nova-9")
    assert spec is UNKNOWN
    assert (spec.thinking, spec.forced_tool_use, spec.max_output) == ("none", False, 4096)
    assert note.count("\n") == 0
    assert "'claude-nova-9' is not in the planner's model table" in note


def test_the_default_model_is_in_the_table() -> None:
    """The default is a current model the table knows (Sonnet 5.5 at the time of writing)."""
    spec, note = lookup(DEFAULT_MODEL)
    assert spec.known
    assert note == ""
    assert spec.thinking == "adaptive"


def test_every_entry_is_self_consistent() -> None:
    """Forms are known; a model that cannot switch thinking off thinks by default; limits are
    at least the 4096 output tokens the planner may ask for."""
    for spec in MODELS.values():
        assert spec.thinking in ("adaptive", "enabled")
        assert spec.can_disable or spec.thinking_default, spec.id
        assert spec.max_output >= 4096, spec.id
        assert spec.context >= 200_000, spec.id
        assert not spec.accepts_enabled or spec.thinking == "adaptive", spec.id


def shaped(model: str, budget: int | None, choice: dict[str, Any]) -> dict[str, Any]:
    import anthropic

    client = anthropic.Anthropic(api_key="unused", base_url="http://127.0.0.1:9")
    config = LlmConfig(model=model, thinking_budget=budget)
    mc = ModelClient(config, TokenLedger(), client=client)
    return mc.request(
        system="s",
        messages=[{"role": "user", "content": "hi"}],
        tools=[{"name": "t", "input_schema": {"type": "object"}}],
        tool_choice=choice,
    )


FORCED = {"type": "tool", "name": "t"}


@pytest.mark.parametrize(
    ("model", "budget", "thinking", "choice"),
    [
        ("claude-opus-4-7", 4000, {"type": "adaptive"}, {"type": "auto"}),
        ("claude-opus-4-7", None, None, FORCED),
        ("claude-sonnet-4-6", 4000, {"type": "adaptive"}, {"type": "auto"}),
        ("claude-haiku-4-5", 4000, {"type": "enabled", "budget_tokens": 3072}, {"type": "auto"}),
        ("claude-haiku-4-5", None, None, FORCED),
        ("claude-opus-5", None, {"type": "disabled"}, FORCED),
        ("claude-sonnet-5-5", None, {"type": "adaptive"}, {"type": "auto"}),
        ("claude-fable-5-1", 2048, {"type": "adaptive"}, {"type": "auto"}),
        ("claude-nova-9", 4000, None, {"type": "auto"}),
    ],
)
def test_requests_take_the_models_thinking_form_and_never_force_a_tool_while_thinking(
    model: str, budget: int | None, thinking: dict[str, Any] | None, choice: dict[str, Any]
) -> None:
    """The thinking parameter per model; forced tool_choice only where it is accepted."""
    request = shaped(model, budget, FORCED)
    assert request.get("thinking") == thinking
    assert request["tool_choice"] == choice
    assert request["max_tokens"] == 4096
    assert request["system"][0]["cache_control"] == {"type": "ephemeral"}


@pytest.mark.parametrize(
    ("model", "budget", "effort"),
    [
        ("claude-sonnet-5-5", None, {"effort": "low"}),  # always thinks: keep it short
        ("claude-sonnet-5-5", 4000, None),  # thinking asked for: the model's default effort
        ("claude-opus-5", None, None),  # thinking switched off instead
        ("claude-opus-4-7", None, None),
        ("claude-haiku-4-5", 4000, None),  # no effort on this model
    ],
)
def test_unasked_thinking_is_kept_short_with_low_effort(
    model: str, budget: int | None, effort: dict[str, str] | None
) -> None:
    assert shaped(model, budget, FORCED).get("output_config") == effort
