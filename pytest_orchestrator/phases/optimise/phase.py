"""Phase 5, Optimise: rank candidate plans, and tune a plan's parameter grid.

Without a grid, plans are ranked by a stated score (`plan_score`) and the retry loop walks the
top-k in that order. With a grid (``plan.grid``: name -> candidate values, written as
``{{name}}`` inside step args) every grid point is applied to a scratch copy of the worktree
and scored by a Monte Carlo simulation (`pytest_orchestrator.phases.optimise.tuning`); results
are stored in SQLite beside the slice cache, and the plans come back with the best points
substituted, best first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    from pytest_orchestrator.plan import Plan
    from pytest_orchestrator.run import Run

TOP_K: Final = 3
RESULTS_FILE: Final = "optimise.json"
VERIFYING_OPS: Final = {"run_tests": 4.0, "montecarlo": 2.0, "lint": 1.0}


@dataclass(frozen=True)
class Scored:
    plan: Plan
    score: float
    why: str


def plan_score(plan: Plan, position: int) -> Scored:
    """The stated score of a plan without a grid; higher is better.

    ``+4`` if it runs the tests, ``+2`` if it runs Monte Carlo, ``+1`` if it lints (evidence
    the gate will see); ``-1`` per mutate step and ``-1`` per 2 kB written (smaller changes
    are easier to review and less likely to break); ``-0.5`` per place after the planner's
    own first choice (its order breaks ties).
    """
    ops = {s.op for s in plan.steps}
    evidence = sum(w for op, w in VERIFYING_OPS.items() if op in ops)
    mutate = sum(1 for s in plan.steps if s.pool == "mutate")
    written = sum(len(json.dumps(s.args)) for s in plan.steps if s.pool == "mutate")
    score = evidence - mutate - written / 2048 - 0.5 * position
    why = f"evidence {evidence:+g}, {mutate} edit(s), {written} bytes, planner rank {position + 1}"
    return Scored(plan, round(score, 3), why)


def rank_plans(plans: list[Plan], k: int = TOP_K) -> list[Scored]:
    """Plans without a grid, best first (stable for equal scores), at most ``k``."""
    scored = [plan_score(p, i) for i, p in enumerate(plans)]
    return sorted(scored, key=lambda s: -s.score)[:k]


@pytest.hookimpl(trylast=True)
def pytest_orchestrator_optimise(run: Run, plans: list[Plan]) -> list[Plan]:
    """Tune grids, rank the rest; return the top-k plans, best first."""
    from pytest_orchestrator.phases.optimise import tuning

    gridded = [p for p in plans if p.grid]
    plain = [p for p in plans if not p.grid]
    tuned: list[Plan] = []
    table: list[dict[str, Any]] = []
    for plan in gridded:
        outcome = tuning.tune(run, plan)
        tuned += outcome.plans
        table += outcome.rows
    ranked = rank_plans(plain, k=TOP_K)
    rows = [
        {"plan": s.plan.digest(), "score": s.score, "why": s.why, "kind": "plan"} for s in ranked
    ]
    run.write(RESULTS_FILE, {"grid": table, "plans": rows})
    return tuned + [s.plan for s in ranked] or plans


def pr_section(run: Run) -> str:
    """The Optimise table for PR.md (empty when there was nothing to optimise)."""
    from pytest_orchestrator.phases.optimise import tuning

    try:
        data = json.loads((run.run_dir / RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return tuning.markdown(data.get("grid", []), data.get("plans", []))
