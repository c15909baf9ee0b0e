"""The anthropic planner, driven through the real SDK against a local /v1/messages server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_orchestrator.errors import (
    BudgetExceeded,
    EditError,
    OrchestratorError,
    PlanValidationError,
)
from pytest_orchestrator.model import (
    MetricDelta,
    MonteCarloSummary,
    RankedSlice,
    SimulationResult,
    Slice,
)
from pytest_orchestrator.phases.plan.llm import LlmConfig, ModelCallError, request_tokens
from pytest_orchestrator.phases.plan.planners import Failure, PlanContext, Planner
from pytest_orchestrator.phases.plan.planners.anthropic import AnthropicPlanner, plan_tool_schema
from pytest_orchestrator.plan import OPS, Budgets, Plan, Step
from pytest_orchestrator.testing.fake_anthropic import FakeAnthropic, edit_reply, plan_reply
from pytest_orchestrator.tokens import TokenLedger

SIZING = '''\
"""Position sizing."""


def kelly(p: float, b: float) -> float:
    """The Kelly fraction."""
    return p - (1 - p) / b


def position_size(account: float, p: float, b: float, vol: float, target: float) -> int:
    """Contracts to sell."""
    fraction = kelly(p, b)
    scale = target / vol
    scale = min(max(scale, 0.25), 1.5)
    return int(account * fraction * scale // 1000)
'''

TESTS = """\
from pkg.sizing import position_size


def test_size() -> None:
    assert position_size(100_000, 0.8, 0.5, 0.2, 0.2) == 40
"""

RENAME_PLAN = [
    {
        "id": "rename",
        "pool": "mutate",
        "op": "rename_symbol",
        "args": {"symbol": "kelly", "new_name": "kelly_fraction", "path": "pkg/sizing.py"},
    },
    {"id": "tests", "pool": "scan", "op": "run_tests", "args": {}, "needs": ["rename"]},
]


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sizing.py").write_text(SIZING)
    (root / "tests" / "test_sizing.py").write_text(TESTS)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "base")
    return root


def ranked(root: Path, path: str, symbol: str, score: float = 1.0) -> RankedSlice:
    lines = (root / path).read_text().splitlines()
    start = next(i for i, line in enumerate(lines, 1) if f"def {symbol}(" in line)
    end = start
    while end < len(lines) and (not lines[end] or lines[end].startswith((" ", "\t"))):
        end += 1
    while not lines[end - 1].strip():
        end -= 1
    s = Slice(
        path=path,
        symbol=symbol,
        kind="function",
        start_line=start,
        end_line=end,
        hash="0" * 40,
        tokens=10,
    )
    return RankedSlice(slice=s, score=score)


def context(root: Path, **overrides: Any) -> PlanContext:
    files = subprocess.run(
        ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    values: dict[str, Any] = {
        "command": "Rename kelly to kelly_fraction",
        "worktree": root,
        "slices": [
            ranked(root, "pkg/sizing.py", "position_size", 2.0),
            ranked(root, "pkg/sizing.py", "kelly", 1.0),
        ],
        "outline": files,
        "tests": [f for f in files if f.startswith("tests/")],
        "budgets": Budgets(),
        "ops": dict(OPS),
        "ledger": TokenLedger(),
    }
    values.update(overrides)
    return PlanContext(**values)


class Sleeps(list[float]):
    """A fake sleep: records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def planner(sleeps: Sleeps, **config: Any) -> AnthropicPlanner:
    config.setdefault("mcp_max_tool_calls", 0)  # MCP has its own tests
    config.setdefault("model", "claude-sonnet-4-6")
    return AnthropicPlanner(LlmConfig(**config), sleep=sleeps)


# ---------------------------------------------------------------------------- planning


def test_it_is_a_planner_loaded_by_name() -> None:
    """The class satisfies the Planner protocol under the name 'anthropic'."""
    p = AnthropicPlanner(LlmConfig())
    assert isinstance(p, Planner)
    assert p.name == "anthropic"


def test_the_plan_comes_back_through_the_submit_plan_tool(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """The answer is a forced submit_plan call whose input schema is plan.json's schema."""
    fake.push(plan_reply(RENAME_PLAN, summary="rename"))
    (plan,) = planner(sleeps, model="claude-sonnet-4-6").plan(context(repo))
    assert [s.op for s in plan.steps] == ["rename_symbol", "run_tests"]
    assert plan.planner == "anthropic"
    assert plan.command == "Rename kelly to kelly_fraction"
    (request,) = fake.requests
    headers = request["headers"]
    assert "test-key" in (headers.get("x-api-key") or headers["authorization"])
    body = request.body
    assert body["model"] == "claude-sonnet-4-6"
    assert body["tools"][0] == {
        "name": "submit_plan",
        "description": "Submit the plan (plan.json).",
        "input_schema": plan_tool_schema(),
    }
    assert body["tool_choice"] == {"type": "tool", "name": "submit_plan"}
    assert plan_tool_schema()["properties"]["steps"]["items"] == {"$ref": "#/$defs/Step"}


def test_the_request_shows_command_slices_outline_and_tests(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """The model sees the command, slice bodies best first, the outline and the test layout."""
    fake.push(plan_reply(RENAME_PLAN))
    planner(sleeps).plan(context(repo))
    text = fake.requests[0].body["messages"][0]["content"]
    assert text.startswith("Command: Rename kelly to kelly_fraction")
    assert text.index("pkg/sizing.py::position_size") < text.index("pkg/sizing.py::kelly")
    assert "scale = min(max(scale, 0.25), 1.5)" in text
    assert "## Repository outline\n" in text
    assert "pkg/__init__.py" in text
    assert "## Tests\ntests/test_sizing.py" in text
    (system,) = fake.requests[0].body["system"]
    assert "rename_symbol [mutate]" in system["text"]


def test_an_invalid_plan_is_sent_back_once_with_the_problems(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """Validation errors go back to the model once; a corrected answer is accepted."""
    bad = [{"id": "x", "pool": "scan", "op": "rm_rf", "args": {}}]
    fake.push(plan_reply(bad), plan_reply(RENAME_PLAN))
    (plan,) = planner(sleeps).plan(context(repo))
    assert plan.steps[0].op == "rename_symbol"
    assert len(fake.requests) == 2
    retry = fake.requests[1].body["messages"][0]["content"]
    assert "Your previous answer was rejected" in retry
    assert "unknown op 'rm_rf'" in retry


def test_a_plan_invalid_twice_fails_cleanly(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """A second invalid answer ends planning with PlanValidationError, after two calls."""
    bad = [{"id": "x", "pool": "scan", "op": "rename_symbol", "args": {}}]
    fake.push(plan_reply(bad), plan_reply(bad))
    with pytest.raises(PlanValidationError, match="still invalid after one correction"):
        planner(sleeps).plan(context(repo))
    assert len(fake.requests) == 2


def test_a_plan_cut_off_at_max_tokens_is_not_used(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """stop_reason max_tokens discards the (partial) answer and asks once for a smaller one."""
    fake.push({**plan_reply(RENAME_PLAN[:1]), "stop_reason": "max_tokens"}, plan_reply(RENAME_PLAN))
    (plan,) = planner(sleeps).plan(context(repo))
    assert len(plan.steps) == 2
    assert "cut off at max_tokens" in fake.requests[1].body["messages"][0]["content"]


def test_a_text_answer_without_the_tool_is_sent_back(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """Prose instead of a submit_plan call counts as an invalid answer."""
    fake.push({"text": "I would rename it."}, {"text": "Really."})
    with pytest.raises(PlanValidationError, match="no submit_plan call"):
        planner(sleeps).plan(context(repo))


# ---------------------------------------------------------------------------- budgets


def big_repo(root: Path, functions: int = 40, body_lines: int = 60) -> list[RankedSlice]:
    lines = []
    for i in range(functions):
        lines.append(f"def func_{i}(x: int) -> int:")
        lines += [
            f"    x = x * {j} + {i}  # step {j} of the long computation" for j in range(body_lines)
        ]
        lines += ["    return x", "", ""]
    (root / "pkg" / "big.py").write_text("\n".join(lines))
    git(root, "add", "pkg/big.py")
    git(root, "commit", "-qm", "big")
    return [ranked(root, "pkg/big.py", f"func_{i}", 100 - i) for i in range(functions)]


@pytest.mark.parametrize("budget", [4000, 2200])
def test_every_request_fits_the_input_budget(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps, budget: int
) -> None:
    """Slices are trimmed by rank (bodies, then signatures) so each request fits the budget."""
    slices = big_repo(repo)
    fake.push(plan_reply(RENAME_PLAN))
    ctx = context(repo, slices=slices, budgets=Budgets(input_tokens_per_step=budget))
    planner(sleeps).plan(ctx)
    body = fake.requests[0].body
    assert request_tokens(body) <= budget
    text = body["messages"][0]["content"]
    assert "def func_0(x: int) -> int:" in text  # the best slice comes first
    if budget == 4000:
        assert "step 59 of" in text  # ... whole, when the budget allows
    else:
        assert "body omitted (61 lines)" in text  # ... else its signature
    assert "func_39" not in text  # the worst did not fit at all
    (call,) = ctx.ledger.calls
    assert call["budget_source"] == "count_tokens"
    assert call["counted_input_tokens"] <= budget
    assert any(c.body["messages"] == body["messages"] for c in fake.counts)  # it was counted


def test_a_request_over_the_budget_is_never_sent(fake: FakeAnthropic) -> None:
    """The client refuses a request above the per-step budget before any network call."""
    from pytest_orchestrator.phases.plan.llm import ModelClient

    client = ModelClient(LlmConfig(input_tokens_per_step=300), TokenLedger())
    with pytest.raises(BudgetExceeded, match="over the per-step budget of 300"):
        client.create(
            step="plan",
            attempt=1,
            system="s",
            messages=[{"role": "user", "content": "word " * 2000}],
        )
    assert fake.requests == []


@pytest.mark.parametrize(("env", "expected"), [("99999", 4096), ("2000", 2000)])
def test_max_tokens_never_exceeds_4096(
    repo: Path, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch, env: str, expected: int
) -> None:
    """CLAUDE_CODE_MAX_OUTPUT_TOKENS sets max_tokens, capped at 4096."""
    monkeypatch.setenv("CLAUDE_CODE_MAX_OUTPUT_TOKENS", env)
    config = LlmConfig.from_env(environ={"CLAUDE_CODE_MAX_OUTPUT_TOKENS": env})
    fake.push(plan_reply(RENAME_PLAN))
    AnthropicPlanner(config.model_copy(update={"mcp_max_tool_calls": 0})).plan(context(repo))
    assert fake.requests[0].body["max_tokens"] == expected


@pytest.mark.parametrize(
    ("model", "thinking"),
    [
        ("claude-haiku-4-5", {"type": "enabled", "budget_tokens": 2048}),
        ("claude-opus-4-7", {"type": "adaptive"}),
        ("claude-sonnet-4-6", {"type": "adaptive"}),  # the manual form is deprecated there
    ],
)
def test_the_thinking_form_is_the_models_and_tool_choice_relaxed(
    repo: Path, fake: FakeAnthropic, model: str, thinking: dict[str, Any]
) -> None:
    """MAX_THINKING_TOKENS turns thinking on in the form the model accepts; forced tool use
    (refused with thinking) becomes auto; the strict stand-in accepts the request."""
    config = LlmConfig.from_env(environ={"MAX_THINKING_TOKENS": "2048", "ANTHROPIC_MODEL": model})
    assert config.thinking_budget == 2048
    fake.push({**plan_reply(RENAME_PLAN), "thinking": "rename it"})
    (plan,) = AnthropicPlanner(config.model_copy(update={"mcp_max_tool_calls": 0})).plan(
        context(repo)
    )
    assert plan.steps[0].op == "rename_symbol"
    body = fake.requests[0].body
    assert body["thinking"] == thinking
    assert body["tool_choice"] == {"type": "auto"}
    assert body["max_tokens"] > 2048


def test_the_run_token_cap_stops_before_the_call(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """A call that could cross the run's total token cap is not made."""
    ledger = TokenLedger()
    ledger.record(step="plan", input_tokens=9000, output_tokens=500)
    with pytest.raises(BudgetExceeded, match="token cap"):
        planner(sleeps, max_run_tokens=10_000).plan(context(repo, ledger=ledger))
    assert fake.requests == []


def test_the_wall_clock_cap_stops_retries(repo: Path, fake: FakeAnthropic, sleeps: Sleeps) -> None:
    """A retry whose wait would cross the wall-clock cap is not waited for."""
    fake.push({"status": 429, "headers": {"retry-after": "20"}})
    p = planner(sleeps, wall_clock_s=10)
    with pytest.raises(BudgetExceeded, match="wall clock"):
        p.plan(context(repo))
    assert len(fake.requests) == 1
    assert sleeps == []


def test_every_call_is_recorded_in_the_ledger_and_the_trace(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps, tmp_path: Path
) -> None:
    """Input/output tokens, latency, stop reason and attempt of every call are recorded."""
    from pytest_orchestrator.tracing import Tracer

    tracer = Tracer(tmp_path / "trace.json")
    fake.push({**plan_reply(RENAME_PLAN), "usage": {"input_tokens": 1234, "output_tokens": 56}})
    ctx = context(repo, tracer=tracer)
    planner(sleeps, model="claude-sonnet-4-6").plan(ctx)
    tracer.shutdown()
    (call,) = ctx.ledger.calls
    assert call["step"] == "plan"
    assert call["model"] == "claude-sonnet-4-6"
    assert (call["input_tokens"], call["output_tokens"]) == (1234, 56)
    assert call["stop_reason"] == "tool_use"
    assert call["attempt"] == 1
    assert call["latency_s"] >= 0
    (span,) = [
        s
        for s in json.loads((tmp_path / "trace.json").read_text())["spans"]
        if s["name"] == "llm.plan"
    ]
    attrs = span["attributes"]
    assert attrs["openinference.span.kind"] == "LLM"
    assert attrs["llm.model_name"] == "claude-sonnet-4-6"
    assert attrs["llm.token_count.prompt"] == 1234
    assert attrs["llm.token_count.completion"] == 56
    assert "Rename kelly" in attrs["input.value"]
    assert attrs["input.value"].startswith('[{"role": "user"')
    assert "submit_plan" in attrs["output.value"]
    # OpenInference chat messages, so Phoenix shows the conversation
    assert attrs["llm.input_messages.0.message.role"] == "system"
    assert attrs["llm.input_messages.1.message.role"] == "user"
    assert "Rename kelly" in attrs["llm.input_messages.1.message.content"]
    assert attrs["llm.output_messages.0.message.role"] == "assistant"
    tool_call = "llm.output_messages.0.message.tool_calls.0.tool_call.function.name"
    assert attrs[tool_call] == "submit_plan"


# ---------------------------------------------------------------------------- faults


def test_429_is_retried_after_the_retry_after_header(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """A rate limit waits as long as retry-after says, then retries."""
    fake.push({"status": 429, "headers": {"retry-after": "7"}}, plan_reply(RENAME_PLAN))
    ctx = context(repo)
    planner(sleeps).plan(ctx)
    assert sleeps == [7.0]
    assert len(fake.requests) == 2
    assert [c["stop_reason"] for c in ctx.ledger.calls] == [
        "error:429 rate_limit_error",
        "tool_use",
    ]


@pytest.mark.parametrize("status", [500, 502, 503, 529])
def test_server_errors_and_overload_are_retried_with_jittered_backoff(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps, status: int
) -> None:
    """5xx and 529 overloaded back off exponentially, with jitter, within the cap."""
    fake.push({"status": status}, {"status": status}, plan_reply(RENAME_PLAN))
    planner(sleeps, backoff_initial_s=2.0).plan(context(repo))
    assert len(fake.requests) == 3
    assert len(sleeps) == 2
    assert 1.0 <= sleeps[0] <= 2.0
    assert 2.0 <= sleeps[1] <= 4.0


def test_timeouts_are_retried(repo: Path, fake: FakeAnthropic, sleeps: Sleeps) -> None:
    """A request that times out is retried."""
    fake.push({**plan_reply(RENAME_PLAN), "delay": 3.0}, plan_reply(RENAME_PLAN))
    ctx = context(repo)
    planner(sleeps, request_timeout_s=0.5).plan(ctx)
    assert ctx.ledger.calls[0]["stop_reason"].startswith("error:timeout")
    assert len(sleeps) == 1


def test_connection_errors_are_retried(repo: Path, fake: FakeAnthropic, sleeps: Sleeps) -> None:
    """A dropped connection is retried."""
    fake.push({"disconnect": True}, plan_reply(RENAME_PLAN))
    ctx = context(repo)
    planner(sleeps).plan(ctx)
    assert ctx.ledger.calls[0]["stop_reason"].startswith("error:connection error")


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "set ANTHROPIC_API_KEY \\(or ANTHROPIC_AUTH_TOKEN\\) to a valid key"),
        (400, "the request was invalid"),
        (404, "check ANTHROPIC_MODEL"),
    ],
)
def test_authentication_and_invalid_requests_are_not_retried(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps, status: int, message: str
) -> None:
    """401/400/404 fail at once with a message that says what to do."""
    fake.push({"status": status, "error": {"message": "nope"}})
    with pytest.raises(ModelCallError, match=message):
        planner(sleeps).plan(context(repo))
    assert len(fake.requests) == 1
    assert sleeps == []


def test_retries_are_bounded(repo: Path, fake: FakeAnthropic, sleeps: Sleeps) -> None:
    """After max_retries the call fails with the last error."""
    fake.push(*[{"status": 529}] * 3)
    with pytest.raises(ModelCallError, match="529 overloaded_error"):
        planner(sleeps, max_retries=2).plan(context(repo))
    assert len(fake.requests) == 3


GARBLED = {
    "truncated JSON": {"body": '{"id": "msg_01", "type": "message", "content": [{"ty'},
    "HTML page": {"body": "<html><body>502 Bad Gateway</body></html>", "content_type": "text/html"},
    "HTML as JSON": {"body": "<!doctype html><title>Sign in</title>"},
    "error object": {
        "body": json.dumps({"type": "error", "error": {"type": "api_error", "message": "x"}})
    },
    "no content": {"body": json.dumps({"id": "msg_01", "type": "message", "role": "assistant"})},
    "untyped block": {
        "body": json.dumps(
            {
                "id": "msg_01",
                "type": "message",
                "role": "assistant",
                "content": [{"text": "hi"}],
                "usage": {"input_tokens": 1, "output_tokens": 1},
            }
        )
    },
}


@pytest.mark.parametrize("reply", GARBLED.values(), ids=list(GARBLED))
def test_a_garbled_reply_is_retried(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps, reply: dict[str, str]
) -> None:
    """A 200 that is not a Message (a proxy's doing) is retried like a 5xx, then succeeds."""
    fake.push(reply, plan_reply(RENAME_PLAN))
    ctx = context(repo)
    (plan,) = planner(sleeps).plan(ctx)
    assert plan.steps[0].op == "rename_symbol"
    assert len(sleeps) == 1
    assert ctx.ledger.calls[0]["stop_reason"].startswith("error:garbled reply")


@pytest.mark.parametrize("reply", GARBLED.values(), ids=list(GARBLED))
def test_garbled_replies_fail_clearly_when_the_retries_are_spent(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps, reply: dict[str, str]
) -> None:
    """No traceback: an OrchestratorError (exit 4) that says what was wrong and what to check."""
    fake.push(reply, reply)
    with pytest.raises(ModelCallError, match="garbled reply") as caught:
        planner(sleeps, max_retries=1).plan(context(repo))
    assert isinstance(caught.value, OrchestratorError)
    assert "check that ANTHROPIC_BASE_URL points at the Messages API" in str(caught.value)
    assert len(fake.requests) == 2


# ---------------------------------------------------------------------------- edit steps

EXTRACT_PLAN = [
    {
        "id": "extract",
        "pool": "mutate",
        "op": "edit",
        "args": {
            "path": "pkg/sizing.py",
            "symbols": ["position_size"],
            "instruction": "extract the volatility scaling into vol_scale(vol, target)",
        },
    },
    {"id": "tests", "pool": "scan", "op": "run_tests", "args": {}, "needs": ["extract"]},
]
GOOD_EDIT = {
    "search": "    scale = target / vol\n    scale = min(max(scale, 0.25), 1.5)\n",
    "replace": "    scale = vol_scale(vol, target)\n",
}
NEW_FUNCTION = {
    "search": "def position_size(",
    "replace": "def vol_scale(vol: float, target: float) -> float:\n"
    "    return min(max(target / vol, 0.25), 1.5)\n\n\ndef position_size(",
}


def test_edit_steps_become_verified_replace_blocks(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """An edit step is its own call that sees only its slices; it becomes one replace_block."""
    fake.push(
        plan_reply(EXTRACT_PLAN, behaviour_preserving=True), edit_reply(GOOD_EDIT, NEW_FUNCTION)
    )
    ctx = context(repo)
    (plan,) = planner(sleeps).plan(ctx)
    step = plan.step("extract")
    assert (step.op, step.pool, step.needs) == ("replace_block", "mutate", [])
    source = (repo / "pkg" / "sizing.py").read_text()
    assert source == SIZING  # planners never write
    assert source.count(step.args["search"]) == 1
    edited = source.replace(step.args["search"], step.args["replace"])
    assert "def vol_scale(vol: float, target: float)" in edited
    assert "    scale = vol_scale(vol, target)\n" in edited
    edit_request = fake.requests[1].body
    assert edit_request["tool_choice"] == {"type": "tool", "name": "submit_edits"}
    shown = edit_request["messages"][0]["content"]
    assert "def position_size(" in shown
    assert "def kelly(" not in shown
    assert [c["step"] for c in ctx.ledger.calls] == ["plan", "edit:extract"]


def test_a_whole_function_replacement_is_accepted(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """An edit may replace a named function as a whole."""
    new = "def kelly(p: float, b: float) -> float:\n    return max(0.0, p - (1 - p) / b)\n"
    steps = [
        {
            "id": "clamp",
            "pool": "mutate",
            "op": "edit",
            "args": {"path": "pkg/sizing.py", "symbols": ["kelly"], "instruction": "clamp"},
        }
    ]
    fake.push(plan_reply(steps), edit_reply({"symbol": "kelly", "replace": new}))
    (plan,) = planner(sleeps).plan(context(repo))
    args = plan.steps[0].args
    assert "return max(0.0, p - (1 - p) / b)" in SIZING.replace(args["search"], args["replace"])


def test_an_edit_that_does_not_match_is_retried_with_the_nearest_match(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """A search text that is not in the file is reported with the nearest match and asked again."""
    wrong = {"search": "    scale = target / volatility\n", "replace": "    scale = 1\n"}
    fake.push(plan_reply(EXTRACT_PLAN), edit_reply(wrong), edit_reply(GOOD_EDIT, NEW_FUNCTION))
    (plan,) = planner(sleeps).plan(context(repo))
    assert plan.step("extract").op == "replace_block"
    retry = fake.requests[2].body["messages"][0]["content"]
    assert "search text not found in pkg/sizing.py; nearest match at line 12" in retry
    assert "    scale = target / vol" in retry


def test_an_edit_cut_off_at_max_tokens_is_not_applied(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """A truncated edit answer is never applied, even when its partial edits would match."""
    fake.push(
        plan_reply(EXTRACT_PLAN),
        edit_reply(GOOD_EDIT, stop_reason="max_tokens"),
        edit_reply(GOOD_EDIT, NEW_FUNCTION),
    )
    (plan,) = planner(sleeps).plan(context(repo))
    assert "def vol_scale" in plan.step("extract").args["replace"]
    assert "cut off at max_tokens" in fake.requests[2].body["messages"][0]["content"]


def test_an_edit_that_never_applies_fails_the_step(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """After its retries an edit step raises EditError naming the step and the problems."""
    broken = {"search": "def kelly(", "replace": "def kelly(:("}
    fake.push(plan_reply(EXTRACT_PLAN), *[edit_reply(broken)] * 2)
    with pytest.raises(EditError, match=r"(?s)step 'extract'.*does not parse"):
        planner(sleeps, edit_retries=1).plan(context(repo))
    assert len(fake.requests) == 3


def test_an_edit_may_create_a_new_file(repo: Path, fake: FakeAnthropic, sleeps: Sleeps) -> None:
    """A new file becomes an apply_patch step creating it."""
    steps = [
        {
            "id": "new",
            "pool": "mutate",
            "op": "edit",
            "args": {"path": "pkg/vol.py", "instruction": "add vol_scale"},
        }
    ]
    fake.push(plan_reply(steps), edit_reply({"search": "", "replace": "X = 1\n"}))
    (plan,) = planner(sleeps).plan(context(repo))
    assert plan.steps[0].op == "apply_patch"
    assert "+++ b/pkg/vol.py" in plan.steps[0].args["patch"]
    assert "+X = 1" in plan.steps[0].args["patch"]


# ---------------------------------------------------------------------------- replan


def failure(plan: Plan) -> Failure:
    traceback = "\n".join(f"    frame {i}: in helper_{i}" for i in range(60))
    evidence = (
        "FAILED tests/test_sizing.py::test_size: AssertionError: assert 39 == 40\n"
        f"{traceback}\nE   assert 39 == 40"
    )
    diff = (
        "--- a/pkg/sizing.py\n+++ b/pkg/sizing.py\n@@ -12 +12 @@\n"
        "-    scale = target / vol\n+    scale = vol / target\n"
    )
    return Failure(attempt=1, evidence=evidence, diff=diff, plan=plan)


def test_replan_summarises_the_failure_within_the_budget(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """Failing tests, messages, trimmed tracebacks, Monte Carlo counterexamples and the diff."""
    mc = MonteCarloSummary(
        seed=7,
        base=[SimulationResult(name="pnl", samples=100, metrics={"mean": 1.0})],
        deltas=[
            MetricDelta(
                simulation="pnl", metric="mean", base=1.0, candidate=0.5, within_tolerance=False
            )
        ],
    )
    previous = Plan(command="c", steps=[Step(id="s", pool="scan", op="run_tests")])
    fake.push(plan_reply(RENAME_PLAN))
    ctx = context(repo, montecarlo=mc, budgets=Budgets(input_tokens_per_step=3000))
    (plan,) = planner(sleeps).replan(ctx, failure(previous))
    body = fake.requests[0].body
    text = body["messages"][0]["content"]
    assert "Attempt 1 failed" in text
    assert "tests/test_sizing.py::test_size: AssertionError: assert 39 == 40" in text
    assert "traceback lines omitted" in text
    assert "frame 59" in text
    assert "frame 3:" not in text
    assert "pnl.mean: base 1.0 vs candidate 0.5" in text
    assert "+    scale = vol / target" in text
    assert ctx.ledger.calls[0]["counted_input_tokens"] <= 3000
    assert ctx.ledger.calls[0]["step"] == "replan"
    assert ctx.ledger.calls[0]["attempt"] == 2
    assert plan.planner == "anthropic"


def test_plans_and_edits_are_written_against_the_base_commit(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """A worktree still dirty from a failed attempt does not leak into the prompt or the edits."""
    (repo / "pkg" / "sizing.py").write_text(SIZING.replace("scale = target / vol", "scale = 1"))
    fake.push(plan_reply(EXTRACT_PLAN), edit_reply(GOOD_EDIT, NEW_FUNCTION))
    (plan,) = planner(sleeps).plan(context(repo))
    assert SIZING.count(plan.step("extract").args["search"]) == 1
    assert "    scale = target / vol\n" in fake.requests[1].body["messages"][0]["content"]
    assert "scale = 1" not in fake.requests[0].body["messages"][0]["content"]


def test_edits_of_one_file_chain_in_order(repo: Path, fake: FakeAnthropic, sleeps: Sleeps) -> None:
    """A second edit of the same file is written against the first's result and needs it."""
    steps = [
        {
            "id": "one",
            "pool": "mutate",
            "op": "edit",
            "args": {"path": "pkg/sizing.py", "symbols": ["kelly"], "instruction": "rename p"},
        },
        {
            "id": "two",
            "pool": "mutate",
            "op": "edit",
            "args": {"path": "pkg/sizing.py", "symbols": ["kelly"], "instruction": "document"},
        },
    ]
    fake.push(
        plan_reply(steps),
        edit_reply(
            {"search": "    return p - (1 - p) / b\n", "replace": "    return p - (1.0 - p) / b\n"}
        ),
        edit_reply(
            {
                "search": "    return p - (1.0 - p) / b\n",
                "replace": "    # Kelly: edge over odds\n    return p - (1.0 - p) / b\n",
            }
        ),
    )
    (plan,) = planner(sleeps).plan(context(repo))
    one, two = plan.step("one"), plan.step("two")
    assert two.needs == ["one"]
    assert "(1.0 - p)" in fake.requests[2].body["messages"][0]["content"]
    text = SIZING.replace(one.args["search"], one.args["replace"])
    text = text.replace(two.args["search"], two.args["replace"])
    assert "    # Kelly: edge over odds\n    return p - (1.0 - p) / b\n" in text


def test_edits_of_different_files_may_run_in_parallel(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """With parallelism 2, edit calls for two files both resolve, whatever order they arrive in."""
    (repo / "pkg" / "other.py").write_text("def other():\n    return 1\n")
    git(repo, "add", "pkg/other.py")
    git(repo, "commit", "-qm", "other")
    steps = [
        {
            "id": "a",
            "pool": "mutate",
            "op": "edit",
            "args": {"path": "pkg/sizing.py", "symbols": ["kelly"], "instruction": "x"},
        },
        {
            "id": "b",
            "pool": "mutate",
            "op": "edit",
            "args": {"path": "pkg/other.py", "symbols": ["other"], "instruction": "y"},
        },
    ]

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        if "pkg/other.py" in body["messages"][0]["content"]:
            return edit_reply({"search": "return 1", "replace": "return 2"})
        return edit_reply({"search": "(1 - p)", "replace": "(1.0 - p)"})

    fake.push(plan_reply(steps))
    fake.responder = answer
    (plan,) = planner(sleeps, parallelism=2).plan(context(repo))
    assert plan.step("a").args["replace"] == "    return p - (1.0 - p) / b\n"
    assert plan.step("b").args["replace"] == "    return 2\n"
    assert plan.step("b").needs == []


def test_the_calls_table_lists_every_call_for_the_pr() -> None:
    """calls_table renders each call's step, tokens, latency and stop reason, with totals."""
    from pytest_orchestrator.phases.plan.llm import calls_table

    table = calls_table(
        [
            {
                "step": "plan",
                "attempt": 1,
                "input_tokens": 3000,
                "output_tokens": 150,
                "latency_s": 1.234,
                "stop_reason": "tool_use",
            },
            {
                "step": "edit:extract",
                "attempt": 1,
                "input_tokens": 0,
                "output_tokens": 0,
                "latency_s": 0.5,
                "stop_reason": "error:529 overloaded_error",
            },
        ]
    )
    lines = table.splitlines()
    assert lines[2] == "| 1 | plan | 1 | 3000 | 0 | 0 | 150 | 1.23 | tool_use |  |"
    assert lines[3].endswith("| error:529 overloaded_error |  |")
    assert lines[-1] == "| | **total** | | **3000** | **0** | **0** | **150** | | | |"


def test_missing_credentials_say_what_to_set(
    repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without a key (and no SDK profile) planning fails at once, naming ANTHROPIC_API_KEY."""
    monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path / "no-profiles"))
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("ANTHROPIC_PROFILE", raising=False)
    with pytest.raises(ModelCallError, match="set ANTHROPIC_API_KEY"):
        AnthropicPlanner(LlmConfig(model="claude-sonnet-4-6", mcp_max_tool_calls=0)).plan(
            context(repo)
        )


def test_a_replace_block_written_in_the_plan_must_match_the_file(
    repo: Path, fake: FakeAnthropic, sleeps: Sleeps
) -> None:
    """A plan's own replace_block whose search text is not in the file goes back once."""
    wrong = [
        {
            "id": "fix",
            "pool": "mutate",
            "op": "replace_block",
            "args": {
                "path": "pkg/sizing.py",
                "search": "scale = target / volume",
                "replace": "scale = 1",
            },
        }
    ]
    right = [{**wrong[0], "args": {**wrong[0]["args"], "search": "scale = target / vol"}}]
    fake.push(plan_reply(wrong), plan_reply(right))
    (plan,) = planner(sleeps).plan(context(repo))
    assert plan.steps[0].args["search"] == "scale = target / vol"
    retry = fake.requests[1].body["messages"][0]["content"]
    assert "step fix: search text not found in pkg/sizing.py; nearest match at line 12" in retry


def test_configuration_comes_from_the_environment() -> None:
    """ANTHROPIC_* / CLAUDE_CODE_* / ORCHESTRATE_* variables set the limits; 0 switches off."""
    config = LlmConfig.from_env(
        environ={
            "ANTHROPIC_MODEL": "claude-x",
            "CLAUDE_CODE_PARALLELISM": "3",
            "ORCHESTRATE_MAX_RUN_TOKENS": "0",
            "CLAUDE_CODE_THINKING_BUDGET_TOKENS": "0",
            "ORCHESTRATE_LLM_WALL_CLOCK": "60",
            "ORCHESTRATE_MCP_SERVERS": "fs, glossary",
        }
    )
    assert (config.model, config.parallelism, config.wall_clock_s) == ("claude-x", 3, 60.0)
    assert config.max_run_tokens is None
    assert config.thinking_budget is None
    assert config.mcp_servers == ("fs", "glossary")
    assert LlmConfig().max_run_tokens == 200_000
    with pytest.raises(OrchestratorError, match="CLAUDE_CODE_PARALLELISM='many' is not a number"):
        LlmConfig.from_env(environ={"CLAUDE_CODE_PARALLELISM": "many"})
