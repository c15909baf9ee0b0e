"""The rules planner: offline and deterministic, for the commands it understands.

Today that is renaming a symbol ("Rename calculate_position_size to position_size"), for
module-level functions, classes and constants and for methods (``Class.method``). Anything
else is refused with a message that names the planner that can do it.
"""

from __future__ import annotations

import re
from typing import Final, final

from pytest_orchestrator.errors import PlannerRefused
from pytest_orchestrator.phases.execute import refactor
from pytest_orchestrator.phases.plan.planners import Failure, PlanContext
from pytest_orchestrator.plan import Plan, Step
from pytest_orchestrator.settings import Settings

RENAME: Final = re.compile(
    r"(?i:\brename)\s+(?i:(?:the\s+)?(?:function|class|method|constant|symbol|variable)\s+)?"
    r"[`'\"]?(?P<old>[A-Za-z_][\w.]*)[`'\"]?\s+(?i:to|into|as|->)\s+"
    r"[`'\"]?(?P<new>[^\s,;`'\"]+)[`'\"]?"
)


def sentence_name(word: str) -> str:
    """A name as written in a sentence, without the sentence's own punctuation or quotes:
    "Rename underscore to snake_case." names ``snake_case``."""
    return word.rstrip(".!?:)]}\u201d\u2019\"'`").lstrip("(\u201c\u2018\"'`")


@final
class RulesPlanner:
    name = "rules"
    can_replan = False
    """A deterministic plan that failed will fail the same way again."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> RulesPlanner:
        return cls()

    def plan(self, context: PlanContext) -> list[Plan]:
        match = RENAME.search(context.command)
        if match is None:
            raise PlannerRefused(
                f"the rules planner does not understand {context.command!r}; it handles "
                "'rename OLD to NEW'. This command needs an LLM planner: set "
                "ANTHROPIC_API_KEY or pass --orchestrate-planner=anthropic "
                "(or run a plan of your own with --orchestrate-plan FILE)"
            )
        old, new = sentence_name(match["old"]), sentence_name(match["new"])
        definition = refactor.locate(context.worktree, old, new)
        steps = [
            Step(
                id="find",
                pool="scan",
                op="search",
                args={"pattern": rf"\b{old.split('.')[-1]}\b"},
                why=f"every mention of {old}",
            ),
            Step(
                id="rename",
                pool="mutate",
                op="rename_symbol",
                needs=["find"],
                args={"symbol": definition.qualname, "new_name": new, "path": definition.path},
                why=f"rename the definition in {definition.path} and every reference",
            ),
            Step(
                id="lint",
                pool="scan",
                op="lint",
                needs=["rename"],
                why="every changed file still compiles",
            ),
            Step(
                id="montecarlo",
                pool="scan",
                op="montecarlo",
                needs=["rename"],
                why="behaviour at scale is unchanged",
            ),
        ]
        return [
            Plan(
                command=context.command,
                planner=self.name,
                summary=(
                    f"Rename `{definition.qualname}` (defined in `{definition.path}`) to "
                    f"`{new}` everywhere it is used: definition, stub, imports, call sites, tests "
                    "and the text mentions PR.md lists. Behaviour is unchanged."
                ),
                steps=steps,
                budgets=context.budgets,
                behaviour_preserving=True,
            )
        ]

    def replan(self, context: PlanContext, failure: Failure) -> list[Plan]:
        return []
