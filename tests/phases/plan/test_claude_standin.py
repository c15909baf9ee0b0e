"""The planner against the strict stand-in: refusals, corrective turns, exact counts, caching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import pytest

from pytest_orchestrator.errors import PlanValidationError
from pytest_orchestrator.phases.plan.llm import LlmConfig, ModelCallError, calls_table
from pytest_orchestrator.phases.plan.planners import PlanContext
from pytest_orchestrator.phases.plan.planners.anthropic import AnthropicPlanner
from pytest_orchestrator.testing.fake_anthropic import FakeAnthropic, plan_reply
from tests.phases.plan.kelly import PLAN, kelly_context, kelly_repo

USER = [{"role": "user", "content": "hi"}]
TOOL = {"name": "t", "input_schema": {"type": "object"}}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return kelly_repo(tmp_path)


def context(root: Path) -> PlanContext:
    return kelly_context(root)


def planner(model: str, **config: Any) -> AnthropicPlanner:
    return AnthropicPlanner(
        LlmConfig(model=model, mcp_max_tool_calls=0, **config), sleep=lambda _s: None
    )


REFUSED = {
    "unknown model": (
        {"model": "claude-nova-9", "max_tokens": 10, "messages": USER},
        404,
        "model: claude-nova-9",
    ),
    "max_tokens above the limit": (
        {"model": "claude-opus-4-1", "max_tokens": 32_001, "messages": USER},
        400,
        "maximum allowed number of output tokens",
    ),
    "old thinking form on Opus 4.7": (
        {
            "model": "claude-opus-4-7",
            "max_tokens": 4096,
            "messages": USER,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
        },
        400,
        '"thinking.type.enabled" is not supported for this model',
    ),
    "budget under 1024": (
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 4096,
            "messages": USER,
            "thinking": {"type": "enabled", "budget_tokens": 512},
        },
        400,
        "greater than or equal to 1024",
    ),
    "budget not under max_tokens": (
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 2048,
            "messages": USER,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
        },
        400,
        "`max_tokens` must be greater than `thinking.budget_tokens`",
    ),
    "thinking with a forced tool": (
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 4096,
            "messages": USER,
            "tools": [TOOL],
            "tool_choice": {"type": "tool", "name": "t"},
            "thinking": {"type": "enabled", "budget_tokens": 2048},
        },
        400,
        "Thinking may not be enabled when tool_choice forces tool use",
    ),
    "effort on a model without it": (
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 100,
            "messages": USER,
            "output_config": {"effort": "low"},
        },
        400,
        "effort is not supported for this model",
    ),
    "forced tool on a model that refuses it": (
        {
            "model": "claude-sonnet-5-5",
            "max_tokens": 4096,
            "messages": USER,
            "tools": [TOOL],
            "tool_choice": {"type": "any"},
        },
        400,
        "forced tool use is not supported",
    ),
    "tool_use without its result": (
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 100,
            "tools": [TOOL],
            "messages": [
                *USER,
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}],
                },
                {"role": "user", "content": "go on"},
            ],
        },
        400,
        "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1",
    ),
    "a thinking block it did not sign": (
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 100,
            "messages": [
                *USER,
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "edited", "signature": "forged"},
                        {"type": "text", "text": "ok"},
                    ],
                },
                {"role": "user", "content": "and?"},
            ],
        },
        400,
        "messages.1.content.0: Invalid `signature` in `thinking` block",
    ),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=list(REFUSED))
def test_the_standin_refuses_what_the_api_refuses_with_its_error_body(
    fake: FakeAnthropic, case: tuple[dict[str, Any], int, str]
) -> None:
    """Through the SDK: the status, the error type and the message of the real API; the
    script is not consumed."""
    body, status, message = case
    fake.push({"text": "never sent"})
    client = anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(**body, timeout=30)
    assert caught.value.status_code == status
    assert message in str(caught.value.body)
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert len(fake.script) == 1


def test_a_tampered_thinking_block_is_refused_and_an_intact_one_accepted(
    fake: FakeAnthropic,
) -> None:
    """The stand-in signs what it issues: the block sent back as issued passes, a changed
    text fails."""
    client = anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0)
    fake.push({"thinking": "secret sk-ant-api03-abc", "text": "a"}, {"text": "b"})
    first = client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=USER)
    block = first.content[0].model_dump()
    history = [*USER, {"role": "assistant", "content": [block]}, {"role": "user", "content": "?"}]
    assert client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=history)
    block["thinking"] = "secret [REDACTED]"
    with pytest.raises(anthropic.BadRequestError, match="Invalid `signature`"):
        client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=history)


def test_the_wrong_form_is_a_clear_exit_4_error_not_a_retry(
    repo: Path, fake: FakeAnthropic
) -> None:
    """A 400 from the API (here: a model id the table does not know, which the stand-in
    also refuses) fails at once with what to check."""
    with pytest.raises(ModelCallError, match="check ANTHROPIC_MODEL"):
        planner("claude-nova-9").plan(context(repo))
    assert len(fake.requests) == 1


def test_max_thinking_tokens_with_opus_4_7_plans(
    repo: Path, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claude Code's MAX_THINKING_TOKENS with a current model: adaptive thinking, auto tool
    choice, the plan goes through (the strict stand-in would refuse the old form)."""
    config = LlmConfig.from_env(
        environ={"MAX_THINKING_TOKENS": "8000", "ANTHROPIC_MODEL": "claude-opus-4-7"}
    )
    fake.push({**plan_reply(PLAN), "thinking": "rename"})
    (plan,) = AnthropicPlanner(config.model_copy(update={"mcp_max_tool_calls": 0})).plan(
        context(repo)
    )
    assert plan.steps[0].op == "rename_symbol"
    (request,) = fake.requests
    assert request.body["thinking"] == {"type": "adaptive"}
    assert "budget_tokens" not in request.raw


def test_a_prose_answer_gets_one_corrective_turn(repo: Path, fake: FakeAnthropic) -> None:
    """With thinking (tool_choice auto), prose first, then the tool call: the plan is used."""
    fake.push({"thinking": "hmm", "text": "I would rename it."}, plan_reply(PLAN))
    (plan,) = planner("claude-sonnet-5-5").plan(context(repo))
    assert plan.steps[0].op == "rename_symbol"
    assert [r.body["tool_choice"] for r in fake.requests] == [{"type": "auto"}] * 2
    assert "no submit_plan call in the answer" in fake.requests[1].body["messages"][0]["content"]


def test_prose_twice_fails_the_attempt_cleanly(repo: Path, fake: FakeAnthropic) -> None:
    """A second prose answer ends planning with PlanValidationError (exit 4), two calls."""
    fake.push({"text": "I would rename it."}, {"text": "Really, rename it."})
    with pytest.raises(PlanValidationError, match="still invalid after one correction"):
        planner("claude-sonnet-5-5").plan(context(repo))
    assert len(fake.requests) == 2


def test_counts_are_exact_cached_and_recorded(repo: Path, fake: FakeAnthropic) -> None:
    """count_tokens measures each request once (by fingerprint); the ledger records the count,
    the estimate and that the count enforced the budget; the estimate is the higher."""
    fake.push(plan_reply(PLAN))
    ctx = context(repo)
    planner("claude-sonnet-4-6").plan(ctx)
    (call,) = ctx.ledger.calls
    assert call["budget_source"] == "count_tokens"
    assert (
        call["counted_input_tokens"]
        == call["input_tokens"]
        + call["cache_creation_input_tokens"]
        + call["cache_read_input_tokens"]
    )
    assert call["estimated_input_tokens"] >= call["counted_input_tokens"]
    bodies = [c.body for c in fake.counts]
    assert len(bodies) == len({repr(b) for b in bodies})  # no request counted twice


def test_without_counting_the_estimate_enforces_and_it_is_said(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A route that cannot count (404): the calibrated estimate is the budget, noted once."""
    with FakeAnthropic(counting=False) as fake:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
        fake.push(plan_reply(PLAN))
        ctx = context(repo)
        p = planner("claude-sonnet-4-6")
        p.plan(ctx)
    (call,) = ctx.ledger.calls
    assert call["budget_source"] == "estimate"
    assert "counted_input_tokens" not in call
    assert len(fake.counts) == 1
    assert sum("token counting unavailable" in line for line in p.notes) == 1


def test_the_stable_prefix_is_cached_and_the_pr_table_shows_it(
    repo: Path, fake: FakeAnthropic
) -> None:
    """System and tools carry a cache breakpoint: the first call writes, the next reads."""
    fake.push(plan_reply(PLAN), plan_reply(PLAN))
    ctx = context(repo)
    p = planner("claude-sonnet-4-6")
    p.plan(ctx)
    p.plan(ctx)
    first, second = ctx.ledger.calls
    assert first["cache_creation_input_tokens"] > 0
    assert first["cache_read_input_tokens"] == 0
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    table = calls_table(ctx.ledger.calls)
    assert f"| {second['cache_read_input_tokens']} | 0 |" in table.splitlines()[3]


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 529},
        {"status": 429},
        {"body": '{"input_tok'},
        {"body": "<html>gateway</html>", "content_type": "text/html"},
    ],
    ids=["overloaded", "rate-limited", "truncated", "html"],
)
def test_a_failed_count_holds_that_step_to_the_estimate_and_counting_goes_on(
    repo: Path, fake: FakeAnthropic, fault: dict[str, Any]
) -> None:
    """A passing fault of count_tokens is not a planning failure: the estimate enforces that
    request (noted), and the next request is counted again."""
    fake.count_script = [fault] * 8  # every count of the first plan's fitting and call
    fake.push(plan_reply(PLAN), plan_reply(PLAN))
    ctx = context(repo)
    p = planner("claude-sonnet-4-6")
    p.plan(ctx)
    fake.count_script.clear()
    p.plan(ctx)
    first, second = ctx.ledger.calls
    assert first["budget_source"] == "estimate"
    assert second["budget_source"] == "count_tokens"
    assert any("that step used the estimate" in line for line in p.notes)


def test_a_thinking_budget_under_the_minimum_is_a_clear_setting_error() -> None:
    """MAX_THINKING_TOKENS=500 is refused with what to set, not a validation traceback."""
    from pytest_orchestrator.errors import OrchestratorError

    with pytest.raises(OrchestratorError, match="MAX_THINKING_TOKENS must be 0 \\(off\\) or at"):
        LlmConfig.from_env(environ={"MAX_THINKING_TOKENS": "500"})


def test_an_exact_count_lets_more_material_in_than_the_estimate(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On ordinary code the estimate errs high; with count_tokens the planning request grows
    into the room it left, and still fits the budget."""
    from pytest_orchestrator.model import RankedSlice, Slice

    lines = []
    for i in range(30):
        lines += [f"def func_{i}(x: int) -> int:"]
        lines += [
            f"    total = apply_adjustment(total, weights[{j}])  # fold in the next weighting"
            for j in range(30)
        ]
        lines += ["    return x", "", ""]
    (repo / "big.py").write_text("\n".join(lines))
    slices = [
        RankedSlice(
            slice=Slice(
                path="big.py",
                symbol=f"func_{i}",
                kind="function",
                start_line=1 + 34 * i,
                end_line=32 + 34 * i,
                hash="0" * 40,
                tokens=10,
            ),
            score=100.0 - i,
        )
        for i in range(30)
    ]
    sent = {}
    for counting in (False, True):
        with FakeAnthropic(counting=counting) as fake:
            monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
            monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
            fake.push(plan_reply(PLAN))
            ctx = context(repo)
            ctx.slices = slices
            planner("claude-sonnet-4-6").plan(ctx)
        (call,) = ctx.ledger.calls
        assert call["budget_source"] == ("count_tokens" if counting else "estimate")
        text = fake.requests[0].body["messages"][0]["content"]
        sent[counting] = (text.count("### big.py::"), call)
    assert sent[True][0] > sent[False][0]
    assert sent[True][1]["counted_input_tokens"] <= 4000
