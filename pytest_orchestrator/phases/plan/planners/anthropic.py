"""Claude as the planner: free-form commands, within hard budgets, through the official SDK.

Planning a command takes these model calls, each its own budgeted request (`llm.ModelClient`):

1. **Plan.** The model sees the command, the pruned slices (bodies while the budget allows,
   then signatures), the repository outline and the test layout — and on a replan, the
   evidence of the failed attempt — and answers by calling ``submit_plan``, whose input schema
   is plan.json's own JSON Schema. The answer is validated like any plan; an invalid one (or
   one cut off at ``max_tokens``) is sent back once with the problems, then planning fails
   with `PlanValidationError`. Tools of the MCP servers in ``.mcp.json`` are offered too, in
   a loop bounded by a call count and the step budget.
2. **Edit**, once per ``edit`` step of that plan (`pytest_orchestrator.phases.plan.edit_steps`). An
   ``edit`` step (``{path, symbols, instruction}``, pool mutate) is this planner's own op: a
   separate call sees only the code it changes and returns search/replace blocks or
   whole-definition replacements, verified in memory and turned into a ``replace_block`` step,
   so the plan handed to the executor is concrete: no model call happens during Execute.

Every request is redacted, estimated and checked against the budgets before it is sent, and
recorded in the run's ledger and trace (see `pytest_orchestrator.phases.plan.llm`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, final

from pydantic import ValidationError

from pytest_orchestrator.errors import PlanValidationError
from pytest_orchestrator.phases.plan.edit_steps import (
    EDIT_OP,
    EDIT_SPEC,
    MARGIN,
    EditArgs,
    EditWriter,
    check_replace_blocks,
)
from pytest_orchestrator.phases.plan.llm import LlmConfig, ModelClient, request_tokens
from pytest_orchestrator.phases.plan.prompting import (
    PLAN_SYSTEM,
    BaseTree,
    evidence_text,
    op_catalogue,
    render_plan_prompt,
    slice_views,
    trim_text,
)
from pytest_orchestrator.phases.plan.redact import SecretFiles
from pytest_orchestrator.plan import OpSpec, Plan, plan_json_schema, validate_plan
from pytest_orchestrator.tracing import CHAIN

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import Message

    from pytest_orchestrator.mcp.client import McpHub
    from pytest_orchestrator.phases.plan.planners import Failure, PlanContext
    from pytest_orchestrator.settings import Settings

__all__ = ["EDIT_OP", "AnthropicPlanner", "EditArgs"]

PLAN_TOOL: Final = "submit_plan"
GROW_SLACK: Final = 64
"""Unused input tokens below which a fitted planning request is not grown further."""


def plan_tool_schema() -> dict[str, Any]:
    """plan.json's JSON Schema as a tool input schema (the op catalogue goes in the prompt)."""
    schema = plan_json_schema()
    schema.get("$defs", {}).pop("ops", None)
    for key in ("$id", "title"):
        schema.pop(key, None)
    return schema


@final
class AnthropicPlanner:
    """The LLM planner (see the module docstring)."""

    name = "anthropic"
    can_replan = True

    def __init__(
        self,
        config: LlmConfig,
        *,
        client: anthropic.Anthropic | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._client = client
        self._sleep = sleep
        self._clock = clock
        self._model: ModelClient | None = None
        self.notes: list[str] = []
        """Servers started, held back (no opt-in) or failed, tools dropped for the budget, and
        the model client's notes (an unknown model id, token counting unavailable): for the
        run's record and the terminal summary; each line once."""

    @classmethod
    def from_settings(cls, settings: Settings) -> AnthropicPlanner:
        return cls(LlmConfig.from_env(settings))

    # -------------------------------------------------------------------- Planner protocol

    def can_plan(self, context: PlanContext) -> None:
        """Any command may be planned: only a model call could tell otherwise."""

    def plan(self, context: PlanContext) -> list[Plan]:
        return [self._plan(context, None)]

    def replan(self, context: PlanContext, failure: Failure) -> list[Plan]:
        return [self._plan(context, failure)]

    # -------------------------------------------------------------------- plan

    def _client_for(self, context: PlanContext) -> ModelClient:
        if self._model is None:
            self._model = ModelClient(
                self.config,
                context.ledger,
                context.tracer,
                client=self._client,
                sleep=self._sleep,
                clock=self._clock,
            )
        else:  # the same run's ledger and tracer; keep the wall-clock deadline
            self._model.ledger = context.ledger
            self._model.tracer = context.tracer
        return self._model

    def _budget(self, context: PlanContext) -> int:
        return min(self.config.input_tokens_per_step, context.budgets.input_tokens_per_step)

    def _plan(self, context: PlanContext, failure: Failure | None) -> Plan:
        model = self._client_for(context)
        self._report(model.notes)
        secrets = SecretFiles(context.worktree)
        attempt = failure.attempt + 1 if failure is not None else 1
        step = "replan" if failure is not None else "plan"
        ops = {**context.ops, EDIT_OP: EDIT_SPEC}
        hub = self._open_mcp(context)
        try:
            notes: list[str] = []
            for round_ in range(2):  # the answer, and at most one corrected answer
                answer, problem = self._ask_plan(
                    model,
                    context,
                    secrets,
                    failure,
                    notes,
                    attempt,
                    step,
                    hub if round_ == 0 else None,
                )
                try:
                    if answer is None:
                        raise PlanValidationError([("<answer>", problem)])
                    draft = self._parse_plan(answer, context, ops)
                    break
                except PlanValidationError as exc:
                    if round_ == 1:
                        raise PlanValidationError(
                            [
                                ("<model>", "the plan was still invalid after one correction"),
                                *exc.problems,
                            ]
                        ) from None
                    shown = trim_text(json.dumps(answer), 600) if answer is not None else ""
                    notes = [
                        "Your previous answer was rejected; fix these problems and call "
                        f"{PLAN_TOOL} again:\n"
                        + "\n".join(f"- step {s}: {r}" for s, r in exc.problems)
                        + (f"\nPrevious answer: {shown}" if shown else "")
                    ]
        finally:
            if hub is not None:
                hub.close()
            self._report(model.notes)
        writer = EditWriter(model, self.config, self._budget(context))
        concrete = writer.resolve(draft, context, secrets, failure, attempt)
        validate_plan(concrete, context.ops)
        return concrete

    def _report(self, lines: list[str]) -> None:
        self.notes.extend(line for line in lines if line not in self.notes)

    def _open_mcp(self, context: PlanContext) -> McpHub | None:
        """Start the MCP servers (reported in a span and `notes`); the repository's own
        only with the user's opt-in (`mcp_client.hold_project_servers`)."""
        if self.config.mcp_max_tool_calls == 0:
            return None
        from pytest_orchestrator.mcp.client import McpHub, hold_project_servers, load_mcp_servers

        root = context.worktree
        servers = load_mcp_servers(root, self.config.mcp_config, self.config.mcp_servers)
        servers, held = hold_project_servers(servers, self.config.mcp_project)
        self._report(held)
        hub = McpHub.start(servers, root=root) if servers else None
        if hub is not None:
            if hub.servers:
                project = {s.name for s in servers if s.project}
                names = [
                    f"{n} (the repository's, opted in)" if n in project else n for n in hub.servers
                ]
                self._report([f"MCP servers started: {', '.join(names)}"])
            self._report(hub.report)
            if context.tracer is not None:
                attributes: dict[str, Any] = {
                    "mcp.servers": hub.servers,
                    "mcp.tools": sorted(hub.tools),
                    "mcp.report": hub.report,
                }
                with context.tracer.span("mcp.start", kind=CHAIN, **attributes):
                    pass
        return hub

    def _ask_plan(
        self,
        model: ModelClient,
        context: PlanContext,
        secrets: SecretFiles,
        failure: Failure | None,
        notes: list[str],
        attempt: int,
        step: str,
        hub: McpHub | None,
    ) -> tuple[dict[str, Any] | None, str]:
        """One planning exchange: ``(submit_plan input, "")`` or ``(None, what went wrong)``."""
        budget = self._budget(context)
        system = (
            PLAN_SYSTEM
            + "\nOps (name [pool] (args): what it does):\n"
            + op_catalogue({**context.ops, EDIT_OP: EDIT_SPEC})
        )
        plan_tool = {
            "name": PLAN_TOOL,
            "description": "Submit the plan (plan.json).",
            "input_schema": plan_tool_schema(),
        }
        mcp_tools = hub.tool_params(int(budget * 0.25)) if hub is not None else []
        views = slice_views(context, secrets, BaseTree(context.worktree))
        outline = secrets.filter(context.outline)
        tests = secrets.filter(context.tests)
        fixed = request_tokens({"system": system, "tools": [plan_tool, *mcp_tools]})
        reserve = int(budget * 0.2) if mcp_tools else 0  # room for tool results
        allowance = budget - fixed - reserve - MARGIN
        evidence_budget = int(allowance * 0.45)
        evidence = (
            evidence_text(failure, context.montecarlo, evidence_budget)
            if failure is not None
            else ""
        )
        messages: list[dict[str, Any]] = []
        # Fit: render, measure the whole request (the API's count when online), shrink when
        # over; when the count leaves room the estimate did not see, grow into it, keeping
        # the last render that fit.
        target = budget - reserve - MARGIN
        fitted: list[dict[str, Any]] | None = None
        previous = ""
        for _fit in range(8):
            user, _stats = render_plan_prompt(
                context.command,
                slices=views,
                outline=outline,
                tests=tests,
                evidence=evidence,
                notes=notes,
                allowance=allowance,
            )
            messages = [{"role": "user", "content": user}]
            room = target - model.size(
                system=system,
                messages=messages,
                tools=[plan_tool, *mcp_tools],
                tool_choice=self._choice(bool(mcp_tools)),
            )
            if room >= 0:
                fitted = messages
                if room < GROW_SLACK or user == previous:
                    break  # close enough, or nothing more to show
                previous = user
                allowance += room
            elif fitted is not None:
                break  # the grown render went over: keep the one that fit
            else:
                allowance -= 32 - room
        messages = fitted if fitted is not None else messages
        calls = 0
        tools = [plan_tool, *mcp_tools]
        while True:
            # The tool list stays the same through the exchange (the history refers to it);
            # once the calls or the budget are spent, submit_plan is forced.
            offer_mcp = bool(mcp_tools) and calls < self.config.mcp_max_tool_calls
            choice = self._choice(offer_mcp)
            message = model.create(
                step=step,
                attempt=attempt,
                system=system,
                messages=messages,
                tools=tools,
                tool_choice=choice,
                budget=budget,
            )
            if message.stop_reason == "max_tokens":
                return None, (
                    f"the answer was cut off at max_tokens ({model.max_tokens}); "
                    "submit a smaller plan (fewer, shorter steps)"
                )
            uses = [b for b in message.content if b.type == "tool_use"]
            for use in uses:
                if use.name == PLAN_TOOL:
                    return dict(use.input), ""
            if not uses or hub is None or not offer_mcp:
                return None, f"no {PLAN_TOOL} call in the answer; call {PLAN_TOOL}"
            results = []
            for use in uses:
                calls += 1
                text, is_error = hub.call(use.name, dict(use.input), tracer=context.tracer)
                results.append((use.id, text, is_error))
            grown = self._append_tool_results(
                model, messages, message, results, system, tools, budget
            )
            if grown is None:  # no room for the results: drop the exchange, ask for the plan
                calls = self.config.mcp_max_tool_calls
            else:
                messages = grown

    @staticmethod
    def _choice(offer_mcp: bool) -> dict[str, Any]:
        """Any tool while MCP calls are left, else submit_plan (relaxed to ``auto`` by the
        client for models that think or refuse forced tool use)."""
        return {"type": "any"} if offer_mcp else {"type": "tool", "name": PLAN_TOOL}

    def _append_tool_results(
        self,
        model: ModelClient,
        messages: list[dict[str, Any]],
        message: Message,
        results: list[tuple[str, str, bool]],
        system: str,
        tools: list[dict[str, Any]],
        budget: int,
    ) -> list[dict[str, Any]] | None:
        """The conversation with the tool results added, trimmed to the budget (None: no room)."""
        assistant = {"role": "assistant", "content": _content_params(message)}
        base = [*messages, assistant]
        fixed = model.size(system=system, messages=base, tools=tools) + MARGIN
        room = budget - fixed - 24 * len(results)
        if room < 64 * len(results):
            return None
        share = room // len(results)
        while share >= 32:  # JSON escaping can add to the estimate: measure, shrink, retry
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": tid,
                    "content": trim_text(text, share - 8),
                    "is_error": err,
                }
                for tid, text, err in results
            ]
            grown = [*base, {"role": "user", "content": blocks}]
            size = model.size(system=system, messages=grown, tools=tools)
            if size + MARGIN <= budget:
                return grown
            share -= (size + MARGIN - budget) // len(results) + 16
        return None

    def _parse_plan(
        self, answer: Mapping[str, Any], context: PlanContext, ops: Mapping[str, OpSpec]
    ) -> Plan:
        data = dict(answer)
        data["command"] = context.command
        data["planner"] = self.name
        data["budgets"] = context.budgets.model_dump()  # a model may not move the budgets
        try:
            plan = Plan.model_validate(data)
        except ValidationError as exc:
            raise PlanValidationError(
                [(".".join(str(p) for p in e["loc"]) or "<plan>", e["msg"]) for e in exc.errors()]
            ) from None
        validate_plan(plan, ops)
        problems = check_replace_blocks(plan, BaseTree(context.worktree))
        if problems:
            raise PlanValidationError(problems)
        return plan


def _content_params(message: Message) -> list[dict[str, Any]]:
    """An assistant message's content as request params (to continue the conversation)."""
    out: list[dict[str, Any]] = []
    for block in message.content:
        if block.type == "text":
            out.append({"type": "text", "text": block.text})
        elif block.type == "tool_use":
            out.append(
                {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
            )
        elif block.type == "thinking":
            out.append(
                {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
            )
        elif block.type == "redacted_thinking":
            out.append({"type": "redacted_thinking", "data": block.data})
    return out
