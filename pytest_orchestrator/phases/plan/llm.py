"""One budgeted call to Claude through the official ``anthropic`` SDK.

`ModelClient.create` is the only place a request leaves the process. Before every call it

1. shapes the request for the model (`models`): its thinking form, a ``tool_choice`` it
   accepts (never a forced one with thinking), ``max_tokens`` ≤ 4096 and its own limit, and a
   prompt-cache breakpoint after the stable prefix (tools, instructions, op catalogue);
2. scrubs the whole body with `redact.redact_json` (secrets never leave; signed thinking
   blocks go back byte-for-byte, as the API requires);
3. measures the input tokens — ``messages.count_tokens``, exact and free, once per distinct
   request; the local estimate (`request_tokens`, tool-use system prompt included) where the
   route cannot count or a count fails — and refuses a request above the step's input budget
   (callers fit their prompts with `ModelClient.size`, this is the hard gate);
4. checks the run's token cap (`TokenLedger.check`) and the run's wall clock.

The client is the route's (`routes`): the Anthropic API by key or bearer token, Amazon
Bedrock or Google Vertex, each through the SDK's own client class.

Faults: 429, 5xx, 529 overloaded, timeouts and connection errors are retried here with
exponential backoff and full jitter (``retry-after`` is honoured), never past the wall clock;
so is a *garbled* 200 — truncated JSON, an HTML page, JSON that is not a Message — which
comes from a proxy or gateway in between and may well be gone on the next try; when the
retries are spent it fails as a `ModelCallError` that names ``ANTHROPIC_BASE_URL``;
the SDK's own retry loop is switched off (``max_retries=0``) because it cannot see our
budgets and would hide the retries from the record. Authentication, permission and
invalid-request errors are not retried: they raise `ModelCallError` with what to do.

Every HTTP attempt — answered or failed — is recorded in the run's ledger (input/output and
cache read/write tokens, the estimate, the count and which of them enforced the budget,
latency, stop reason) and traced as an OpenInference ``LLM`` span.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pytest_orchestrator.errors import BudgetExceeded, ModelCallError, OrchestratorError
from pytest_orchestrator.options import DEFAULT_MODEL
from pytest_orchestrator.phases.plan.models import UNKNOWN, ModelSpec, lookup
from pytest_orchestrator.phases.plan.redact import redact_json
from pytest_orchestrator.phases.plan.routes import Route, client_for, detect, model_id
from pytest_orchestrator.tokens import (
    MAX_INPUT_TOKENS_PER_STEP,
    MAX_OUTPUT_TOKENS,
    estimate_tokens,
)
from pytest_orchestrator.tracing import INPUT_VALUE, LLM, OUTPUT_VALUE, clip, llm_input, llm_output

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import Message
    from opentelemetry.trace import Span

    from pytest_orchestrator.settings import Settings
    from pytest_orchestrator.tokens import TokenLedger
    from pytest_orchestrator.tracing import Tracer

__all__ = [
    "LlmConfig",
    "ModelCallError",
    "ModelClient",
    "Size",
    "calls_table",
    "request_tokens",
]

MIN_THINKING_TOKENS: Final = 1024
"""The API's smallest extended-thinking budget."""


class LlmConfig(BaseModel):
    """How the anthropic planner talks to the API; every field has an environment default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = DEFAULT_MODEL
    """Model name (``ANTHROPIC_MODEL`` / ini ``orchestrate_model``)."""
    input_tokens_per_step: int = Field(
        default=MAX_INPUT_TOKENS_PER_STEP, ge=256, le=MAX_INPUT_TOKENS_PER_STEP
    )
    """Most input tokens one call may carry, by the local conservative estimate."""
    max_output_tokens: int = Field(default=MAX_OUTPUT_TOKENS, ge=64, le=MAX_OUTPUT_TOKENS)
    """``max_tokens`` of every call (``CLAUDE_CODE_MAX_OUTPUT_TOKENS``)."""
    thinking_budget: int | None = Field(default=None, ge=MIN_THINKING_TOKENS)
    """Extended-thinking budget (``CLAUDE_CODE_THINKING_BUDGET_TOKENS``); None = off."""
    max_run_tokens: int | None = Field(default=200_000, ge=1)
    """Input + output tokens the whole run may spend (``ORCHESTRATE_MAX_RUN_TOKENS``; 0 = no
    cap)."""
    wall_clock_s: float = Field(default=900.0, gt=0)
    """Seconds all model calls of a run may take, retries and waits included
    (``ORCHESTRATE_LLM_WALL_CLOCK``)."""
    request_timeout_s: float = Field(default=120.0, gt=0)
    """Timeout of one HTTP request (``ORCHESTRATE_LLM_TIMEOUT``)."""
    max_retries: int = Field(default=4, ge=0, le=10)
    """Retries of one call on 429/5xx/529/timeouts/connection errors
    (``ORCHESTRATE_LLM_RETRIES``)."""
    backoff_initial_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    parallelism: int = Field(default=1, ge=1, le=16)
    """Concurrent edit calls (``CLAUDE_CODE_PARALLELISM``)."""
    edit_retries: int = Field(default=2, ge=0, le=5)
    """Extra calls an edit step may make when its search text does not match."""
    mcp_max_tool_calls: int = Field(default=8, ge=0, le=64)
    """MCP tool calls one planning step may make (``ORCHESTRATE_MCP_MAX_TOOL_CALLS``)."""
    mcp_config: tuple[str, ...] = ()
    """Extra ``.mcp.json``-format files (``ORCHESTRATE_MCP_CONFIG``, ``os.pathsep``-separated)."""
    mcp_servers: tuple[str, ...] | None = None
    """Only these server names (``ORCHESTRATE_MCP_SERVERS``, comma-separated); None = all."""
    mcp_project: bool = False
    """Start the repository's own MCP servers (``ORCHESTRATE_MCP_PROJECT``, ini
    ``orchestrate_mcp_project``, ``--orchestrate-mcp-project``); off: they run its commands."""

    @classmethod
    def from_env(
        cls, settings: Settings | None = None, environ: Mapping[str, str] | None = None
    ) -> LlmConfig:
        """Defaults from `Settings` and the ``ANTHROPIC_*`` / ``CLAUDE_CODE_*`` environment."""
        env = {  # ini keys (Settings.llm_env) give defaults; the environment wins
            **(settings.llm_env if settings is not None else {}),
            **(os.environ if environ is None else environ),
        }
        values: dict[str, Any] = {}
        if settings is not None:
            values["model"] = settings.model
            values["input_tokens_per_step"] = settings.budgets.input_tokens_per_step
            values["max_output_tokens"] = settings.budgets.max_output_tokens
        if env.get("ANTHROPIC_MODEL"):
            values["model"] = env["ANTHROPIC_MODEL"]

        def number(name: str, key: str, kind: Callable[[str], Any]) -> None:
            raw = env.get(name, "").strip()
            if raw:
                try:
                    values[key] = kind(raw)
                except ValueError:
                    raise OrchestratorError(f"{name}={raw!r} is not a number") from None

        number("CLAUDE_CODE_MAX_OUTPUT_TOKENS", "max_output_tokens", int)
        if "max_output_tokens" in values:
            values["max_output_tokens"] = min(int(values["max_output_tokens"]), MAX_OUTPUT_TOKENS)
        number("MAX_THINKING_TOKENS", "thinking_budget", int)
        number("CLAUDE_CODE_THINKING_BUDGET_TOKENS", "thinking_budget", int)
        number("CLAUDE_CODE_PARALLELISM", "parallelism", int)
        number("ORCHESTRATE_MAX_RUN_TOKENS", "max_run_tokens", int)
        number("ORCHESTRATE_LLM_WALL_CLOCK", "wall_clock_s", float)
        number("ORCHESTRATE_LLM_TIMEOUT", "request_timeout_s", float)
        number("ORCHESTRATE_LLM_RETRIES", "max_retries", int)
        number("ORCHESTRATE_MCP_MAX_TOOL_CALLS", "mcp_max_tool_calls", int)
        for key in ("thinking_budget", "max_run_tokens"):
            if values.get(key) == 0:
                values[key] = None
        if env.get("ORCHESTRATE_MCP_CONFIG"):
            values["mcp_config"] = tuple(
                p for p in env["ORCHESTRATE_MCP_CONFIG"].split(os.pathsep) if p
            )
        if env.get("ORCHESTRATE_MCP_PROJECT", "").strip():
            values["mcp_project"] = _flag("ORCHESTRATE_MCP_PROJECT", env["ORCHESTRATE_MCP_PROJECT"])
        if env.get("ORCHESTRATE_MCP_SERVERS") is not None:
            names = [n.strip() for n in env["ORCHESTRATE_MCP_SERVERS"].split(",")]
            values["mcp_servers"] = tuple(n for n in names if n)
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise OrchestratorError(
                f"the planner's settings are out of range ({problems}); "
                "MAX_THINKING_TOKENS must be 0 (off) or at least 1024"
            ) from None


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in _TRUE | _FALSE:
        raise OrchestratorError(f"{name}={raw!r} is not a yes/no value: use true or false")
    return value in _TRUE


def calls_table(calls: Sequence[Mapping[str, Any]]) -> str:
    """A markdown table of a run's model calls (for PR.md): one row per HTTP attempt, with
    the prompt-cache reads and writes and which measure enforced the step's input budget."""
    rows = [
        "| # | step | attempt | input tokens | cache read | cache write | output tokens "
        "| latency (s) | stop reason | budget by |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def total(key: str) -> int:
        return sum(int(c.get(key, 0)) for c in calls)

    for number, call in enumerate(calls, 1):
        rows.append(
            f"| {number} | {call.get('step', '?')} | {call.get('attempt', '')} "
            f"| {call.get('input_tokens', 0)} | {call.get('cache_read_input_tokens', 0)} "
            f"| {call.get('cache_creation_input_tokens', 0)} | {call.get('output_tokens', 0)} "
            f"| {float(call.get('latency_s', 0.0)):.2f} | {call.get('stop_reason', '')} "
            f"| {call.get('budget_source', '')} |"
        )
    rows.append(
        f"| | **total** | | **{total('input_tokens')}** | **{total('cache_read_input_tokens')}** "
        f"| **{total('cache_creation_input_tokens')}** | **{total('output_tokens')}** | | | |"
    )
    return "\n".join(rows)


TOOL_USE_SYSTEM_TOKENS: Final = 346
"""Tokens the API adds as its own system prompt whenever ``tools`` is present (the tool-use
guide's figure for the Claude 4 models, ``tool_choice`` auto; forced choices add fewer). The
local estimate counts them, so it stays an upper bound of what is billed."""


def request_tokens(body: Mapping[str, Any]) -> int:
    """The local estimate of a request's input tokens: system, messages and tools as sent,
    plus the tool-use system prompt when there are tools."""
    parts = {k: body[k] for k in ("system", "messages", "tools") if k in body}
    overhead = TOOL_USE_SYSTEM_TOKENS if body.get("tools") else 0
    return estimate_tokens(json.dumps(parts, ensure_ascii=False)) + overhead


@dataclass(frozen=True)
class Size:
    """A request's input tokens, and which measure gave them."""

    tokens: int
    source: str
    """``count_tokens`` (the API's exact count) or ``estimate`` (`request_tokens`)."""


@dataclass
class ModelClient:
    """Sends budgeted, redacted, retried requests; one per planner (and run)."""

    config: LlmConfig
    ledger: TokenLedger
    tracer: Tracer | None = None
    client: anthropic.Anthropic | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    jitter: Callable[[], float] = random.random
    deadline: float | None = field(default=None)
    """Monotonic time after which no call starts; set from ``wall_clock_s`` on first use."""
    route: Route | None = field(default=None)
    spec: ModelSpec = field(default=UNKNOWN, init=False)
    notes: list[str] = field(default_factory=list, init=False)
    """One line each: an unknown model id, token counting unavailable (for the run's report)."""
    _counts: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _counting: bool = field(default=True, init=False, repr=False)

    def __post_init__(self) -> None:
        self.spec, note = lookup(self.config.model)
        if note:
            self.notes.append(note)
        if self.client is None:
            self.route = detect() if self.route is None else self.route
            self.client = client_for(self.route, self.config.request_timeout_s)

    @property
    def model(self) -> str:
        """The model id as the route names it."""
        return model_id(self.config.model, self.route)

    @property
    def max_tokens(self) -> int:
        return min(self.config.max_output_tokens, MAX_OUTPUT_TOKENS, self.spec.max_output)

    def request(
        self,
        *,
        system: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The request exactly as it will be sent: redacted (thinking blocks untouched), the
        model's thinking form, a ``tool_choice`` it accepts, the stable prefix cached."""
        body: dict[str, Any] = redact_json({"system": system, "messages": messages})
        max_tokens = self.max_tokens
        thinking = self._thinking(max_tokens)
        thinks = thinking is not None and thinking["type"] != "disabled"
        forced = tool_choice is not None and tool_choice.get("type") in ("any", "tool")
        if forced and (thinks or not self.spec.forced_tool_use):
            # The API refuses forced tool use with thinking (and some models refuse it always):
            # ask instead; a prose answer gets one corrective turn (the planner's).
            tool_choice = {"type": "auto"}
        # system, then tools, are the stable prefix: one cache breakpoint at the system block
        # caches both (the API's cache order is tools, system, messages).
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "system": [
                {"type": "text", "text": body["system"], "cache_control": {"type": "ephemeral"}}
            ],
            "messages": body["messages"],
        }
        if tools:
            kwargs["tools"] = redact_json(tools)
        if tool_choice:
            kwargs["tool_choice"] = tool_choice
        if thinking is not None:
            kwargs["thinking"] = thinking
        if thinks and self.config.thinking_budget is None and self.spec.effort:
            kwargs["output_config"] = {"effort": "low"}  # thinking nobody asked for: keep it short
        return kwargs

    def measure(self, kwargs: Mapping[str, Any]) -> Size:
        """Input tokens of a request: the API's exact count when it can be had (cached by the
        request's fingerprint), else the local estimate."""
        if self._counting:
            key = hashlib.sha256(
                json.dumps(kwargs, sort_keys=True, ensure_ascii=False).encode()
            ).hexdigest()
            if key not in self._counts:
                counted = self._count(kwargs)
                if counted is not None:
                    self._counts[key] = counted
            if key in self._counts:
                return Size(self._counts[key], "count_tokens")
        return Size(request_tokens(kwargs), "estimate")

    def size(
        self,
        *,
        system: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: dict[str, Any] | None = None,
    ) -> int:
        """Input tokens of the request these arguments make (for callers fitting a budget)."""
        kwargs = self.request(
            system=system, messages=messages, tools=tools, tool_choice=tool_choice
        )
        return self.measure(kwargs).tokens

    def create(
        self,
        *,
        step: str,
        attempt: int,
        system: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: dict[str, Any] | None = None,
        budget: int | None = None,
    ) -> Message:
        """One model call within every budget; returns the SDK's `Message`."""
        kwargs = self.request(
            system=system, messages=messages, tools=tools, tool_choice=tool_choice
        )
        limit = min(budget or self.config.input_tokens_per_step, self.config.input_tokens_per_step)
        estimated = request_tokens(kwargs)
        size = self.measure(kwargs)
        if size.tokens > limit:
            raise BudgetExceeded(
                f"step {step!r}: the request is {size.tokens} input tokens ({size.source}), over "
                f"the per-step budget of {limit}; trim the context (fewer or shorter slices) "
                "and retry"
            )
        max_tokens = kwargs["max_tokens"]
        self.ledger.check(size.tokens, max_tokens, self.config.max_run_tokens)
        if self.deadline is None:
            self.deadline = self.clock() + self.config.wall_clock_s
        sizes = {
            "estimated_input_tokens": estimated,
            "budget_source": size.source,
            **({"counted_input_tokens": size.tokens} if size.source == "count_tokens" else {}),
        }

        last_error = last_hint = ""
        for retry in range(self.config.max_retries + 1):
            remaining = self.deadline - self.clock()
            if remaining <= 0:
                raise BudgetExceeded(
                    f"step {step!r}: the model calls' wall clock ({self.config.wall_clock_s:.0f}s)"
                    f" is spent{'; last error: ' + last_error if last_error else ''}"
                )
            timeout = min(self.config.request_timeout_s, remaining)
            started = self.clock()
            try:
                message = self._send(step, kwargs, size.tokens, timeout)
            except _Retryable as exc:
                latency = self.clock() - started
                last_error, last_hint = exc.reason, exc.hint
                self._record(step, attempt, None, latency, f"error:{exc.reason}", retry, sizes)
                if retry == self.config.max_retries:
                    break
                delay = self._backoff(retry, exc.retry_after)
                if self.clock() + delay >= self.deadline:
                    raise BudgetExceeded(
                        f"step {step!r}: waiting {delay:.1f}s to retry ({exc.reason}) would cross "
                        f"the model calls' wall clock ({self.config.wall_clock_s:.0f}s)"
                    ) from None
                self.sleep(delay)
                continue
            except ModelCallError:
                self._record(
                    step, attempt, None, self.clock() - started, "error:fatal", retry, sizes
                )
                raise
            self._record(
                step,
                attempt,
                message,
                self.clock() - started,
                str(message.stop_reason),
                retry,
                sizes,
            )
            return message
        raise ModelCallError(
            f"step {step!r}: the Anthropic API kept failing ({last_error}) after "
            f"{self.config.max_retries + 1} tries; "
            + (last_hint or "try again later or raise ORCHESTRATE_LLM_RETRIES")
        )

    # -------------------------------------------------------------------- internals

    def _thinking(self, max_tokens: int) -> dict[str, Any] | None:
        """The ``thinking`` parameter in the form the model accepts (see `models`)."""
        spec, budget = self.spec, self.config.thinking_budget
        if spec.thinking == "adaptive":
            if budget is not None or not spec.can_disable:
                return {"type": "adaptive"}
            return {"type": "disabled"} if spec.thinking_default else None
        if spec.thinking == "enabled" and budget is not None:
            # budget_tokens must be below max_tokens; leave at least 1024 tokens for the answer.
            budget = min(budget, max_tokens - 1024)
            if budget >= MIN_THINKING_TOKENS:
                return {"type": "enabled", "budget_tokens": budget}
        return None

    def _count(self, kwargs: Mapping[str, Any]) -> int | None:
        """``messages.count_tokens`` of the request, or None (then the estimate is used).

        Counting is free and reachable whenever the planner is; where a route has no
        counting (Bedrock) or it fails, the run falls back to the estimate, noted once.
        """
        import anthropic

        assert self.client is not None
        params = {k: v for k, v in kwargs.items() if k != "max_tokens"}
        try:
            counted = self.client.messages.count_tokens(
                **params, timeout=min(self.config.request_timeout_s, 30.0)
            )
            tokens = getattr(counted, "input_tokens", None)
            if not isinstance(tokens, int):
                raise TypeError(f"the answer has no input_tokens: {counted!r}"[:200])
        except (
            anthropic.APIConnectionError,
            anthropic.InternalServerError,
            anthropic.APIResponseValidationError,
            json.JSONDecodeError,
            TypeError,
        ) as exc:
            # a passing fault (5xx, 529, a timeout, a garbled 200): this request is held to
            # the estimate, the next one is counted again
            self._note(f"a token count failed ({type(exc).__name__}); that step used the estimate")
            return None
        except ImportError as exc:
            raise _missing_extra(exc) from None
        except anthropic.RateLimitError:
            self._note("a token count was rate-limited; that step used the estimate")
            return None
        except anthropic.AnthropicError as exc:
            self._counting = False  # not offered here (Bedrock, a gateway): stop asking
            detail = " ".join(str(exc).split())[:160]
            self._note(
                f"token counting unavailable ({type(exc).__name__}: {detail}); budgets use the "
                "local estimate"
            )
            return None
        return tokens

    def _note(self, line: str) -> None:
        if line not in self.notes:
            self.notes.append(line)

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None and retry_after >= 0:
            return retry_after  # the server knows best; the wall clock still bounds the wait
        ceiling = min(self.config.backoff_max_s, self.config.backoff_initial_s * 2.0**retry)
        return ceiling * (0.5 + 0.5 * self.jitter())  # "equal jitter": never zero, never above

    def _send(
        self, step: str, kwargs: dict[str, Any], input_tokens: int, timeout: float
    ) -> Message:
        import anthropic

        assert self.client is not None
        span_cm: AbstractContextManager[Span | None] = nullcontext()
        if self.tracer is not None:
            span_cm = self.tracer.span(
                f"llm.{step.split(':')[0]}",
                kind=LLM,
                **{
                    "llm.model_name": kwargs["model"],
                    "llm.invocation_parameters": {"max_tokens": kwargs["max_tokens"]},
                    "llm.token_count.prompt_estimate": input_tokens,
                    INPUT_VALUE: clip(json.dumps(kwargs["messages"]), 4000),
                    "orchestrator.step": step,
                },
            )
        with span_cm as span:
            if span is not None:  # the conversation, as Phoenix shows it
                llm_input(span, kwargs.get("system"), kwargs["messages"])
            try:
                reply: object = self.client.messages.create(**kwargs, timeout=timeout)
            except anthropic.APIStatusError as exc:
                raise _classify(exc, self.config.model) from exc
            except json.JSONDecodeError as exc:  # a 200 whose body is not JSON at all
                raise _garbled(f"the body is not JSON ({exc.msg})") from exc
            except anthropic.APIResponseValidationError as exc:  # a strict client's check
                raise _garbled(f"the body is not a Message ({exc.message})") from exc
            except anthropic.APITimeoutError as exc:
                raise _Retryable(f"timeout after {timeout:.1f}s") from exc
            except anthropic.APIConnectionError as exc:
                raise _Retryable(f"connection error: {exc}") from exc
            except anthropic.AnthropicError as exc:  # credentials, a missing extra, ...
                raise ModelCallError(f"the Anthropic SDK failed: {exc}") from exc
            except ImportError as exc:  # the Bedrock client imports boto3 when it signs
                raise _missing_extra(exc) from None
            message = _message(reply)
            if span is not None:
                span.set_attribute("llm.token_count.prompt", message.usage.input_tokens)
                span.set_attribute("llm.token_count.completion", message.usage.output_tokens)
                span.set_attribute("llm.stop_reason", str(message.stop_reason))
                span.set_attribute(OUTPUT_VALUE, message.model_dump_json()[:4000])
                llm_output(span, message.model_dump(mode="json"))
            return message

    def _record(
        self,
        step: str,
        attempt: int,
        message: Message | None,
        latency: float,
        stop_reason: str,
        retry: int,
        sizes: Mapping[str, Any],
    ) -> None:
        usage = message.usage if message is not None else None
        call: dict[str, Any] = {
            "step": step,
            "model": self.config.model,
            "input_tokens": int(usage.input_tokens) if usage else 0,
            "output_tokens": int(usage.output_tokens) if usage else 0,
            "cache_read_input_tokens": int(getattr(usage, "cache_read_input_tokens", 0) or 0),
            "cache_creation_input_tokens": int(
                getattr(usage, "cache_creation_input_tokens", 0) or 0
            ),
            "latency_s": round(latency, 3),
            "stop_reason": stop_reason,
            "attempt": attempt,
            "retry": retry,
            **sizes,
        }
        self.ledger.record(**call)


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None, hint: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.hint = hint
        """What to do when every retry failed like this (default: try again later)."""


def _missing_extra(exc: ImportError) -> ModelCallError:
    return ModelCallError(
        f"the route's SDK client needs {exc.name or 'a package'} that is not installed: "
        "pip install 'pytest-orchestrator[bedrock]' (Amazon Bedrock) or "
        "'pytest-orchestrator[vertex]' (Google Vertex AI)"
    )


def _garbled(why: str) -> _Retryable:
    return _Retryable(
        f"garbled reply: {why}",
        hint="a 200 reply that is not a Message usually comes from a proxy or gateway in "
        "between: check that ANTHROPIC_BASE_URL points at the Messages API, or try again later",
    )


def _message(reply: object) -> Message:
    """``reply`` when it is a usable Message; else the retryable marker for a garbled 200.

    The SDK does not validate a 200 (it builds the model leniently): an HTML page comes back
    as a string, ``{"type": "error"}`` or a body without ``content`` as a Message with holes.
    """
    from anthropic.types import Message

    if not isinstance(reply, Message):
        text = reply if isinstance(reply, str) else json.dumps(reply, default=str)
        snippet = " ".join(text.split())[:80]
        raise _garbled(f"the body is not a Message: {snippet!r}")
    kind = getattr(reply, "type", None)
    if kind != "message":
        error = getattr(reply, "error", None)
        detail = f" ({error})" if error else ""
        raise _garbled(f"its type is {kind!r}, not 'message'{detail}")
    content = getattr(reply, "content", None)
    if not isinstance(content, list):
        raise _garbled("it has no 'content' list")
    if not all(isinstance(getattr(block, "type", None), str) for block in content):
        raise _garbled("a content block has no 'type'")
    usage = getattr(reply, "usage", None)
    if not all(isinstance(getattr(usage, n, None), int) for n in ("input_tokens", "output_tokens")):
        raise _garbled("it has no token 'usage'")
    return reply


_FATAL_HINTS: Final = {
    401: "the credentials were rejected: set ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN) to a "
    "valid key, or check the AWS / Google credentials of the Bedrock / Vertex route",
    403: "the API key may not use this model or endpoint: check the key's workspace and "
    "ANTHROPIC_MODEL",
    404: "unknown model or endpoint: check ANTHROPIC_MODEL and ANTHROPIC_BASE_URL",
    413: "the request is too large for the API",
}


def _classify(exc: Any, model: str) -> Exception:
    """A retryable marker for transient statuses, a `ModelCallError` for the rest."""
    status = int(exc.status_code)
    detail = getattr(exc, "api_message", None) or str(exc)
    if status in (408, 409, 429) or status >= 500:
        retry_after = _retry_after(exc.response.headers)
        kind = getattr(exc, "type", None) or "error"
        return _Retryable(f"{status} {kind}", retry_after)
    hint = _FATAL_HINTS.get(status, "the request was invalid; not retried")
    return ModelCallError(f"Anthropic API {status} for model {model!r}: {detail} — {hint}")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is not None:
            try:
                return float(raw) / scale
            except ValueError:
                continue
    return None
