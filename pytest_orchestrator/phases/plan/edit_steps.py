"""Edit steps: the planner's ``edit`` op, written by its own model call and made concrete.

A plan may say *what* to change in a file — ``edit`` with ``{path, symbols, instruction}`` —
and leave the code to a separate call that sees only the slices it changes (the step's
``symbols``, read from the base commit). `EditWriter` makes that call for each ``edit`` step,
applies the returned search/replace blocks or whole-definition replacements in memory, all
or nothing per file (`edits.apply_edits`), and asks again — within the step's retries and
input budget — when an edit does not match, reporting the nearest match. A truncated answer
(``max_tokens``) is never applied. The verified result becomes one ``replace_block`` step
(``apply_patch`` for a new or empty file), so the executor receives a concrete plan.

`check_replace_blocks` holds ``replace_block`` steps a model wrote directly to the same
standard: their search text must occur exactly once in the base text, in DAG order.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pydantic import Field, field_validator

from pytest_orchestrator.errors import EditError
from pytest_orchestrator.phases.plan.edits import (
    EditProblems,
    apply_edits,
    creation_patch,
    file_change,
    modification_patch,
    occurrences,
)
from pytest_orchestrator.phases.plan.llm import LlmConfig, ModelClient, request_tokens
from pytest_orchestrator.phases.plan.prompting import (
    EDIT_SYSTEM,
    BaseTree,
    evidence_text,
    locate_symbol,
    nearest_match,
    trim_text,
)
from pytest_orchestrator.phases.plan.redact import redact_source
from pytest_orchestrator.plan import OpArgs, OpSpec, Plan, Step, repo_relative
from pytest_orchestrator.tokens import estimate_tokens

if TYPE_CHECKING:
    from pytest_orchestrator.phases.plan.planners import Failure, PlanContext
    from pytest_orchestrator.phases.plan.redact import SecretFiles

__all__ = ["EDIT_OP", "EDIT_SPEC", "EditArgs", "EditWriter", "check_replace_blocks"]

EDIT_OP: Final = "edit"
EDIT_TOOL: Final = "submit_edits"
MARGIN: Final = 48
"""Tokens kept free below the per-step budget (message framing the estimate does not see)."""


class EditArgs(OpArgs):
    """Arguments of the planner's ``edit`` op, resolved into ``replace_block`` before Execute."""

    path: str
    """The one file this step changes (created when it does not exist)."""
    symbols: list[str] = Field(default_factory=list)
    """Functions/classes the step changes; only they are shown to the edit call."""
    instruction: str = Field(min_length=1)
    """What to change, precisely."""

    _path = field_validator("path")(repo_relative)


EDIT_SPEC: Final = OpSpec(
    EDIT_OP,
    "mutate",
    EditArgs,
    "pytest_orchestrator.phases.plan.edit_steps:unresolved_edit",
    "generate a code change in one file (a separate call writes the code)",
)

EDIT_TOOL_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "edits": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "search": {"type": "string", "description": "exact current text, unique"},
                    "symbol": {"type": "string", "description": "a function/class shown"},
                    "replace": {"type": "string"},
                },
                "required": ["replace"],
            },
        }
    },
    "required": ["edits"],
}


def unresolved_edit(*_args: object) -> None:
    """The executor never runs ``edit``: the planner turns it into ``replace_block``."""
    raise EditError("an 'edit' step reached the executor unresolved; this is a planner bug")


@dataclass
class EditWriter:
    """Turns the ``edit`` steps of a plan into verified ``replace_block`` steps."""

    model: ModelClient
    config: LlmConfig
    budget: int
    """Input tokens one edit call may carry."""

    def resolve(
        self,
        plan: Plan,
        context: PlanContext,
        secrets: SecretFiles,
        failure: Failure | None,
        attempt: int,
    ) -> Plan:
        """The plan with each ``edit`` step replaced by a verified ``replace_block`` step.

        Edits of one file are generated in DAG order, each against the text the previous one
        leaves, and chained with ``needs`` so the executor applies them in that order.
        Different files are independent: with ``parallelism`` > 1 their calls run concurrently.
        """
        chains: dict[str, list[tuple[Step, EditArgs]]] = {}
        for step in plan.order():
            if step.op != EDIT_OP:
                continue
            args = EditArgs.model_validate(step.args)
            if not secrets.allows(args.path):
                raise EditError(
                    f"step {step.id!r}: {args.path} is ignored or holds secrets; it is never "
                    "sent to the model, so it cannot be edited by it"
                )
            chains.setdefault(args.path, []).append((step, args))
        if not chains:
            return plan
        base = BaseTree(context.worktree)
        for path in chains:
            base.read(path)  # warm the cache before any thread reads it

        def resolve(chain: list[tuple[Step, EditArgs]]) -> list[Step]:
            out: list[Step] = []
            before = base.read(chain[0][1].path)
            for step, args in chain:
                after = self._generate(context, step, args, before, plan, failure, attempt)
                if before is None:
                    op, op_args = "apply_patch", {"patch": creation_patch(args.path, after)}
                elif not before.strip():  # an empty file has no text to search for
                    op = "apply_patch"
                    op_args = {"patch": modification_patch(args.path, before, after)}
                else:
                    change = file_change(before, after)
                    op = "replace_block"
                    op_args = {
                        "path": args.path,
                        "search": change.search,
                        "replace": change.replace,
                    }
                needs = list(step.needs)
                if out and out[-1].id not in needs:
                    needs.append(out[-1].id)  # same file: keep the order the texts assume
                out.append(
                    Step(
                        id=step.id,
                        pool="mutate",
                        op=op,
                        args=op_args,
                        needs=needs,
                        why=step.why or args.instruction[:200],
                    )
                )
                before = after
            return out

        workers = min(self.config.parallelism, len(chains))
        if workers > 1:
            with ThreadPoolExecutor(workers, thread_name_prefix="edit") as pool:
                resolved = list(pool.map(resolve, chains.values()))
        else:
            resolved = [resolve(chain) for chain in chains.values()]
        new_steps = {s.id: s for chain in resolved for s in chain}
        steps = [new_steps.get(s.id, s) for s in plan.steps]
        return plan.model_copy(update={"steps": steps})

    def _generate(
        self,
        context: PlanContext,
        step: Step,
        args: EditArgs,
        text: str | None,
        plan: Plan,
        failure: Failure | None,
        attempt: int,
    ) -> str:
        """The file's new text from one edit call (plus retries when edits do not apply)."""
        model, budget = self.model, self.budget
        tool = {
            "name": EDIT_TOOL,
            "description": f"Submit the edits to {args.path}.",
            "input_schema": EDIT_TOOL_SCHEMA,
        }
        fixed = request_tokens({"system": EDIT_SYSTEM, "tools": [tool]}) + MARGIN
        notes: list[str] = []
        problems: list[str] = []
        for _try in range(self.config.edit_retries + 1):
            allowance = budget - fixed
            user = ""
            for _shrink in range(8):
                user = _edit_prompt(args, text, plan, failure, context, notes, allowance)
                over = model.size(
                    system=EDIT_SYSTEM,
                    messages=[{"role": "user", "content": user}],
                    tools=[tool],
                    tool_choice={"type": "tool", "name": EDIT_TOOL},
                ) - (budget - MARGIN)
                if over <= 0:
                    break
                allowance -= over + 32
            message = model.create(
                step=f"edit:{step.id}",
                attempt=attempt,
                system=EDIT_SYSTEM,
                messages=[{"role": "user", "content": user}],
                tools=[tool],
                tool_choice={"type": "tool", "name": EDIT_TOOL},
                budget=budget,
            )
            if message.stop_reason == "max_tokens":
                problems = [
                    "your answer was cut off at max_tokens and was NOT applied; return smaller "
                    "edits (search/replace only the lines that change)"
                ]
            else:
                use = next((b for b in message.content if b.type == "tool_use"), None)
                edits = use.input.get("edits") if use is not None else None
                if not isinstance(edits, list):
                    problems = [f"call {EDIT_TOOL} with a list of edits"]
                elif text is None or not text.strip():
                    new = next((e.get("replace") for e in edits if isinstance(e, dict)), None)
                    if isinstance(new, str) and new.strip():
                        return new if new.endswith("\n") else new + "\n"
                    problems = [
                        f"{args.path} is new or empty: return one edit whose 'replace' "
                        "is its whole content"
                    ]
                else:
                    try:
                        return apply_edits(args.path, text, edits)
                    except EditProblems as exc:
                        problems = exc.problems
            notes = [
                "Your previous edits were not applied (the file is unchanged):\n"
                + "\n".join(f"- {p}" for p in problems)
            ]
        raise EditError(
            f"step {step.id!r}: the model's edits to {args.path} did not apply after "
            f"{self.config.edit_retries + 1} tries:\n" + "\n".join(problems)
        )


def check_replace_blocks(plan: Plan, base: BaseTree) -> list[tuple[str, str]]:
    """``replace_block`` steps the model wrote itself must match the base text, in DAG order."""
    texts: dict[str, str | None] = {}
    problems: list[tuple[str, str]] = []
    for step in plan.order():
        if step.op != "replace_block":
            continue
        path, search = step.args["path"], step.args["search"]
        if path not in texts:
            texts[path] = base.read(path)
        text = texts[path]
        if text is None:
            problems.append((step.id, f"{path} does not exist (use an 'edit' step to create it)"))
            continue
        count = occurrences(text, search)
        if count == 1:
            texts[path] = text.replace(search, step.args["replace"], 1)
        elif count == 0:
            line, ratio, near = nearest_match(text, search)
            near = redact_source(path, near)  # it goes back to the model
            problems.append(
                (
                    step.id,
                    f"search text not found in {path}; nearest match at line {line} "
                    f"({ratio:.0%} similar):\n{near.rstrip()}",
                )
            )
        else:
            problems.append((step.id, f"search text occurs more than once in {path}"))
    return problems


def _edit_prompt(
    args: EditArgs,
    text: str | None,
    plan: Plan,
    failure: Failure | None,
    context: PlanContext,
    notes: list[str],
    allowance: int,
) -> str:
    """The edit call's user message: the instruction and only the code it changes."""
    head = [
        f"Command: {context.command}",
        f"Plan: {plan.summary}" if plan.summary else "",
        f"Step: edit {args.path}: {args.instruction}",
        *notes,
    ]
    head_text = "\n\n".join(h for h in head if h)
    left = allowance - estimate_tokens(head_text) - 32
    parts = [head_text]
    if failure is not None:
        tail = evidence_text(failure, context.montecarlo, max(0, int(left * 0.25)))
        parts.append("Why the previous attempt failed:\n" + tail)
        left -= estimate_tokens(tail) + 8
    if text is None or not text.strip():
        state = "does not exist yet" if text is None else "is empty"
        parts.append(f"{args.path} {state}: return its whole content as one edit.")
        return "\n\n".join(parts)
    shown: list[str] = []
    for symbol in args.symbols:
        span = locate_symbol(text, symbol) if args.path.endswith(".py") else None
        if span is None:
            continue
        lines = text.splitlines()
        shown.append(
            f"### {args.path}::{symbol}\n```python\n"
            + "\n".join(lines[span[0] - 1 : span[1]])
            + "\n```"
        )
    if not shown:  # no symbols named or found: the file itself, trimmed to fit
        shown.append(f"### {args.path}\n```\n{text}\n```")
    body = "\n\n".join(shown)
    if estimate_tokens(body) > left:
        body = trim_text(body, left)
    parts.append("Current text:\n" + body)
    return "\n\n".join(parts)
