"""The scripted planner: replays given answers, for tests and reproducible demos.

The script is a JSON list; answer *i* serves the *i*-th call to ``plan`` or ``replan``.
An answer is a plan, a list of plans, or ``{"refuse": "why"}``. When the answers run out,
the planner has nothing more to offer (``[]``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, final

from pydantic import ValidationError

from pytest_orchestrator.errors import OrchestratorError, PlanError, PlannerRefused
from pytest_orchestrator.phases.plan.planners import Failure, PlanContext
from pytest_orchestrator.plan import Plan
from pytest_orchestrator.settings import Settings


@final
class ScriptedPlanner:
    name = "scripted"
    can_replan = True

    def __init__(self, answers: list[Any]) -> None:
        self.answers = list(answers)
        self.seen: list[PlanContext] = []
        self.notes: list[str] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> ScriptedPlanner:
        if settings.script is None:
            raise OrchestratorError(
                "the scripted planner replays a file of answers: pass --orchestrate-script FILE"
            )
        return cls.from_file(settings.script)

    @classmethod
    def from_file(cls, path: Path) -> ScriptedPlanner:
        try:
            answers = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise OrchestratorError(f"cannot read the planner script {path}: {exc}") from None
        if not isinstance(answers, list):
            raise OrchestratorError(f"the planner script {path} must hold a JSON list of answers")
        return cls(answers)

    def _next(self, context: PlanContext) -> list[Plan]:
        self.seen.append(context)
        if not self.answers:
            return []
        answer = self.answers.pop(0)
        if isinstance(answer, dict) and "refuse" in answer:
            raise PlannerRefused(str(answer["refuse"]))
        raw = answer if isinstance(answer, list) else [answer]
        plans = []
        for item in raw:
            item = {"command": context.command, "planner": self.name, **item}
            try:
                plans.append(Plan.model_validate(item))
            except ValidationError as exc:
                raise PlanError(f"scripted answer is not a valid plan: {exc}") from None
        return plans

    def can_plan(self, context: PlanContext) -> None:
        """A scripted refusal as the first answer refuses before anything runs."""
        first = self.answers[0] if self.answers else None
        if isinstance(first, dict) and "refuse" in first:
            raise PlannerRefused(str(first["refuse"]))

    def plan(self, context: PlanContext) -> list[Plan]:
        return self._next(context)

    def replan(self, context: PlanContext, failure: Failure) -> list[Plan]:
        return self._next(context)
