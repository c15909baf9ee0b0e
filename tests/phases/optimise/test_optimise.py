"""Optimise: plans ranked by a stated score, grids tuned by a Monte Carlo objective."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pluggy
import pytest

from pytest_orchestrator.phases.optimise import phase as optimise
from pytest_orchestrator.phases.optimise import tuning
from pytest_orchestrator.plan import OPS, Budgets, Plan, Step, validate_plan
from pytest_orchestrator.run import Run
from pytest_orchestrator.settings import Settings
from pytest_orchestrator.tracing import Tracer

# The objective peaks at cap = 0.16, so the grid's ranking is known in advance.
CONFTEST = """\
import pytest


@pytest.hookimpl(optionalhook=True)
def pytest_orchestrator_montecarlo(mc):
    from pkg.params import CAP

    n = mc.samples(100)
    noise = float(mc.rng.random(n).mean()) * 0.0
    return [{"name": "growth", "samples": n,
             "metrics": {"score": -(CAP - 0.16) ** 2 + noise, "risk": CAP * 10}}]
"""


def make_run(tmp_path: Path, seconds: float = 15.0) -> Run:
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "__init__.py").write_text("")
    (tree / "pkg" / "params.py").write_text("CAP = 0.25\n")
    (tree / "conftest.py").write_text(CONFTEST)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    settings = Settings(command="make the cap a parameter, tune it", run_root=tmp_path / "runs",
                        cache_dir=tmp_path / "cache", seed=7,
                        budgets=Budgets(montecarlo_seconds=seconds))  # fmt: skip
    pm = pluggy.PluginManager("pytest")
    return Run("opt", settings, tree, tree, "b", "c0ffee", None, run_dir, pm.hook,
               Tracer(run_dir / "trace.json"), dict(OPS))  # fmt: skip


def grid_plan(**directives: list[object]) -> Plan:
    grid: dict[str, list[object]] = {"cap": [0.05, 0.1, 0.15, 0.2, 0.25], **directives}
    return Plan.model_validate(
        {
            "command": "make the cap a parameter, tune it",
            "steps": [
                {
                    "id": "cap",
                    "pool": "mutate",
                    "op": "replace_block",
                    "args": {
                        "path": "pkg/params.py",
                        "search": "CAP = 0.25",
                        "replace": "CAP = {{cap}}",
                    },
                },
                {"id": "tests", "pool": "scan", "op": "run_tests", "needs": ["cap"]},
            ],
            "grid": grid,
        }
    )


def plan_with(*ops: str, planner: str = "rules") -> Plan:
    edit = {"path": "a.py", "search": "x", "replace": "y"}
    steps = [
        Step(id=f"s{i}", pool="mutate" if op == "replace_block" else "scan", op=op,
             args=edit if op == "replace_block" else {})
        for i, op in enumerate(ops)
    ]  # fmt: skip
    return Plan(command="c", planner=planner, steps=steps)


def test_plans_without_a_grid_are_ranked_by_the_stated_score() -> None:
    """A plan that runs the tests outranks one that does not, whatever the planner's order."""
    bare = plan_with("replace_block", planner="first")
    tested = plan_with("replace_block", "run_tests", planner="second")
    ranked = optimise.rank_plans([bare, tested])
    assert [s.plan.planner for s in ranked] == ["second", "first"]
    assert "evidence +4" in ranked[0].why


def test_planner_order_breaks_ties_and_top_k_is_kept() -> None:
    """Equal plans keep the planner's order; only the top k come back."""
    plans = [plan_with("run_tests", planner=str(i)) for i in range(5)]
    ranked = optimise.rank_plans(plans, k=3)
    assert [s.plan.planner for s in ranked] == ["0", "1", "2"]


def test_substitution_fills_every_placeholder_and_drops_the_grid() -> None:
    """A grid point becomes a plain plan the validator accepts."""
    plan = tuning.substitute(grid_plan(), {"cap": 0.15})
    assert plan.grid is None
    assert plan.step("cap").args["replace"] == "CAP = 0.15"
    assert "cap=0.15" in plan.summary
    validate_plan(plan)


def test_grid_top_k_is_correct_for_a_known_objective(tmp_path: Path) -> None:
    """Every point is applied, simulated and ranked: the best three come back best first."""
    run = make_run(tmp_path)
    ranked = optimise.pytest_orchestrator_optimise(run=run, plans=[grid_plan()])
    caps = [p.step("cap").args["replace"] for p in ranked]
    assert caps == ["CAP = 0.15", "CAP = 0.2", "CAP = 0.1"]
    assert (run.worktree / "pkg" / "params.py").read_text() == "CAP = 0.25\n"  # untouched
    section = optimise.pr_section(run)
    assert "objective `growth.score` (maximise)" in section
    assert "| 1 | 0.15 |" in section


def test_grid_results_are_stored_and_reused_from_sqlite(tmp_path: Path) -> None:
    """Results land in SQLite beside the slice cache; a second evaluation reads them back."""
    run = make_run(tmp_path)
    plan = grid_plan()
    first = tuning.tune(run, plan)
    db = sqlite3.connect(run.settings.cache_dir / tuning.DB_FILE)
    assert db.execute("SELECT count(*) FROM grid_result").fetchone()[0] == 5
    second = tuning.tune(run, plan)
    assert all(r["cached"] for r in second.rows)
    assert [p.digest() for p in second.plans] == [p.digest() for p in first.plans]


def test_constraints_rank_infeasible_points_last(tmp_path: Path) -> None:
    """A point breaking '@constraint' never outranks one that keeps it."""

    def evaluate(
        plans: list[Plan], points: list[dict[str, object]], seed: int
    ) -> list[dict[str, object]]:
        return [{"ok": True, "metrics": {"s.gain": float(p["cap"]), "s.risk": float(p["cap"]) * 10}}
                for p in points]  # fmt: skip

    run = make_run(tmp_path)
    plan = grid_plan(**{"@objective": ["s.gain"], "@constraint": ["s.risk<=1.5"], "@top_k": [2]})
    outcome = tuning.tune(run, plan, evaluate=evaluate)
    assert [r["params"]["cap"] for r in outcome.rows] == [0.15, 0.1, 0.05, 0.25, 0.2]
    assert [r["feasible"] for r in outcome.rows] == [True, True, True, False, False]
    assert len(outcome.plans) == 2


def test_minimising_goal_reverses_the_order(tmp_path: Path) -> None:
    """'@goal: min' ranks the smallest objective first."""

    def evaluate(
        plans: list[Plan], points: list[dict[str, object]], seed: int
    ) -> list[dict[str, object]]:
        return [{"ok": True, "metrics": {"s.loss": float(p["cap"])}} for p in points]

    outcome = tuning.tune(make_run(tmp_path), grid_plan(**{"@goal": ["min"]}), evaluate=evaluate)
    assert outcome.rows[0]["params"]["cap"] == 0.05


def test_a_point_whose_edit_fails_ranks_last_with_the_reason(tmp_path: Path) -> None:
    """An edit that cannot be applied is a failed point, not a failed phase."""
    run = make_run(tmp_path)
    plan = grid_plan()
    bad = plan.model_copy(
        update={
            "steps": [
                plan.steps[0].model_copy(
                    update={
                        "args": {
                            "path": "pkg/params.py",
                            "search": "CAP = {{cap}}9",
                            "replace": "x",
                        }
                    }
                )
            ]
        }
    )
    outcome = tuning.tune(run, bad)
    assert not any(r["ok"] for r in outcome.rows)
    assert "search text occurs 0 times" in outcome.rows[0]["detail"]


@pytest.mark.parametrize("text", ["risk < ", "risk ~ 3", "<=1"])
def test_malformed_constraint_says_how_to_write_it(text: str) -> None:
    """A constraint that does not parse is refused with an example."""
    with pytest.raises(ValueError, match=r"simulation\.metric<=0\.05"):
        tuning.Objective.from_grid({"@constraint": [text]})


def test_corrupt_store_is_rebuilt(tmp_path: Path) -> None:
    """A damaged SQLite file is a cache miss, never an error."""
    path = tmp_path / tuning.DB_FILE
    path.write_bytes(b"not a database at all" * 100)
    store = tuning.ResultStore(path)
    assert store.get("c", "p", 1, 1.0) is None
    store.close()
