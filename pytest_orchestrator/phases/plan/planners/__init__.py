"""Planners turn a command and the pruned slices into plans.

A planner is anything with ``name``, ``can_replan``, ``notes``, ``from_settings(settings)``,
``can_plan(context)``, ``plan(context)`` and ``replan(context, failure)`` (the `Planner`
protocol);
built in are ``rules`` (offline, deterministic), ``anthropic`` (the official SDK) and
``scripted`` (replays given answers, for tests). ``auto`` picks anthropic when any route
to Claude is configured (an API key, a bearer token, Bedrock or Vertex: `routes.detect`)
and rules otherwise.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, Self, runtime_checkable

from pytest_orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    from pytest_orchestrator.model import MonteCarloSummary, RankedSlice
    from pytest_orchestrator.plan import Budgets, OpSpec, Plan
    from pytest_orchestrator.settings import Settings
    from pytest_orchestrator.tokens import TokenLedger
    from pytest_orchestrator.tracing import Tracer


@dataclass(frozen=True)
class Failure:
    """Evidence of a failed attempt, for ``replan``."""

    attempt: int
    evidence: str
    """Failed steps, failing tests with their messages, failed checks."""
    diff: str
    """The attempt's diff against the base commit."""
    plan: Plan


@dataclass
class PlanContext:
    """Everything a planner may look at. Read-only: planners never write files."""

    command: str
    worktree: Path
    """The tree at the base commit; read slices from here."""
    slices: list[RankedSlice]
    """Logic's kept slices, best first."""
    outline: list[str]
    """Tracked files of the repository (trimmed for large repositories)."""
    tests: list[str]
    """Test files of the repository."""
    budgets: Budgets
    ops: dict[str, OpSpec]
    ledger: TokenLedger
    tracer: Tracer | None = None
    montecarlo: MonteCarloSummary | None = None
    failures: list[Failure] = field(default_factory=list)

    def slice_text(self, ranked: RankedSlice) -> str:
        s = ranked.slice
        try:
            lines = (self.worktree / s.path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return ""
        return "\n".join(lines[s.start_line - 1 : s.end_line])


@runtime_checkable
class Planner(Protocol):
    """Writes plans. Both methods return candidate plans, best first; [] means none."""

    name: str
    can_replan: bool
    """Whether ``replan`` can give something new after a failure; when False, a red attempt
    with no candidate plan left ends the run."""
    notes: list[str]
    """Lines for the run's summary (e.g. which MCP servers the planner started), each once."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The planner the run's settings describe (how `load_planner` makes one)."""
        ...

    def can_plan(self, context: PlanContext) -> None:
        """Raise `PlannerRefused` when this planner cannot plan the command. Cheap (no model
        call, no test run): it runs before Monte Carlo and the baseline, so a refusal costs
        about Map's time. Deciding needs no certainty: `plan` may still refuse."""
        ...

    def plan(self, context: PlanContext) -> list[Plan]: ...

    def replan(self, context: PlanContext, failure: Failure) -> list[Plan]: ...


PLANNERS: Final[dict[str, str]] = {
    "rules": "pytest_orchestrator.phases.plan.planners.rules:RulesPlanner",
    "anthropic": "pytest_orchestrator.phases.plan.planners.anthropic:AnthropicPlanner",
    "scripted": "pytest_orchestrator.phases.plan.planners.scripted:ScriptedPlanner",
}


def choose(name: str) -> str:
    """Resolve ``auto``: anthropic when Claude is reachable by any route, rules otherwise."""
    from pytest_orchestrator.phases.plan.routes import detect

    if name == "auto":
        return "anthropic" if detect() is not None else "rules"
    return name


def describe_planner(name: str) -> str:
    """The planner ``name`` resolves to, with the route to Claude (for the terminal header)."""
    from pytest_orchestrator.phases.plan.routes import describe, detect

    chosen = choose(name)
    return f"{chosen}, {describe(detect())}" if chosen == "anthropic" else chosen


def load_planner(settings: Settings) -> Planner:
    name = choose(settings.planner)
    if name not in PLANNERS:
        known = ", ".join(sorted(PLANNERS))
        raise OrchestratorError(f"unknown planner {name!r}: use one of {known}, or auto")
    module, _, attr = PLANNERS[name].partition(":")
    factory: type[Planner] = getattr(importlib.import_module(module), attr)
    return factory.from_settings(settings)
