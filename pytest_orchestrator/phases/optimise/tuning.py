"""Tuning a plan's parameter grid with a Monte Carlo objective.

A plan's ``grid`` maps parameter names to candidate values; ``{{name}}`` in any step's args
is replaced by the value. Keys starting with ``@`` are directives, not parameters::

    "grid": {
      "kelly_cap": [0.05, 0.1, 0.15, 0.2, 0.25, 0.3],
      "@objective": ["wheel_pnl.mean_pnl"],                  # simulation.metric (default: a
                                                             #  metric named "objective", else
                                                             #  the first metric reported)
      "@goal": ["max"],                                      # or "min"
      "@constraint": ["wheel_pnl.ruin_probability<=0.02"],   # any number of them
      "@top_k": [3]
    }

Each grid point is applied to a scratch copy of the worktree with the registry's own ops, and
the tree's simulations run on it in a child
(`pytest_orchestrator.phases.montecarlo.child.simulation`), all points in parallel on the scan
pool within the Monte Carlo cap, with the run's seed (common random numbers: every point sees
the same price paths) and the sample count scaled to fit. Results
go to SQLite beside the slice cache (`ResultStore`), keyed by base commit, plan, seed and
scale, so a rerun does not pay twice. Points that violate a constraint rank after all that
satisfy them; failed points last.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import itertools
import json
import operator
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pytest_orchestrator.guard.children import ChildSpec, child_env, run_children
from pytest_orchestrator.store import open_store, transaction

if TYPE_CHECKING:
    from pytest_orchestrator.plan import JsonScalar, Plan
    from pytest_orchestrator.run import Run

MAX_POINTS: Final = 64
DB_FILE: Final = "optimise.sqlite"
SCHEMA_VERSION: Final = 1
STARTUP_SECONDS: Final = 1.0
_IGNORE: Final = (".git", ".orchestrate", "__pycache__", ".venv", "venv", "node_modules",
                  ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox")  # fmt: skip
_CONSTRAINT: Final = re.compile(r"^\s*([\w.:-]+)\s*(<=|>=|<|>|==)\s*(-?[\d.eE+-]+)\s*$")
_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq,
}  # fmt: skip


@dataclass(frozen=True)
class Objective:
    """What a grid point is scored by."""

    metric: str = ""
    """``simulation.metric``; empty: a metric named ``objective``, else the first reported."""
    goal: str = "max"
    constraints: tuple[tuple[str, str, float], ...] = ()
    top_k: int = 3

    @classmethod
    def from_grid(cls, grid: dict[str, list[JsonScalar]]) -> Objective:
        def one(key: str, default: Any) -> Any:
            values = grid.get(key) or [default]
            return values[0]

        constraints = []
        for text in grid.get("@constraint", []):
            m = _CONSTRAINT.match(str(text))
            if m is None:
                raise ValueError(f"@constraint {text!r}: write it as 'simulation.metric<=0.05'")
            constraints.append((m.group(1), m.group(2), float(m.group(3))))
        goal = str(one("@goal", "max")).lower()
        if goal not in ("max", "min"):
            raise ValueError(f"@goal must be 'max' or 'min', not {goal!r}")
        return cls(str(one("@objective", "")), goal, tuple(constraints), int(one("@top_k", 3)))

    def value(self, metrics: dict[str, float]) -> tuple[str, float] | None:
        if self.metric:
            return (self.metric, metrics[self.metric]) if self.metric in metrics else None
        named = sorted(k for k in metrics if k.rpartition(".")[2] == "objective")
        key = named[0] if named else next(iter(metrics), None)
        return None if key is None else (key, metrics[key])

    def feasible(self, metrics: dict[str, float]) -> list[str]:
        """The constraints a point violates (a missing metric violates its constraint)."""
        broken = []
        for metric, op, bound in self.constraints:
            value = metrics.get(metric)
            if value is None or not _OPS[op](value, bound):
                broken.append(f"{metric}={value} violates {op}{bound:g}")
        return broken


def parameters(grid: dict[str, list[JsonScalar]]) -> dict[str, list[JsonScalar]]:
    return {k: v for k, v in grid.items() if not k.startswith("@")}


def points(grid: dict[str, list[JsonScalar]]) -> list[dict[str, JsonScalar]]:
    """The grid's points in a stable order (first parameter varies slowest), at most 64."""
    params = parameters(grid)
    names = list(params)
    combos = itertools.product(*(params[n] for n in names))
    return [dict(zip(names, c, strict=True)) for c in itertools.islice(combos, MAX_POINTS)]


def substitute(plan: Plan, point: dict[str, JsonScalar]) -> Plan:
    """The plan with ``{{name}}`` replaced by the point's values and no grid left."""
    steps = []
    for step in plan.steps:
        text = json.dumps(step.args)
        for name, value in point.items():
            text = text.replace("{{" + name + "}}", str(value))
        steps.append(step.model_copy(update={"args": json.loads(text)}))
    tuned = ", ".join(f"{k}={v}" for k, v in point.items())
    summary = (plan.summary + "\n\n" if plan.summary else "") + f"Tuned by Optimise: {tuned}."
    return plan.model_copy(update={"steps": steps, "grid": None, "summary": summary})


# ---------------------------------------------------------------------------- store


class ResultStore:
    """SQLite results of grid points, beside the slice cache. A cache: never needed for
    correctness, so a corrupt or foreign file is rebuilt rather than fatal."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = open_store(
            path,
            SCHEMA_VERSION,
            [
                """CREATE TABLE grid_result (
                   base_commit TEXT, plan TEXT, seed INTEGER, scale REAL,
                   run_id TEXT, params TEXT, metrics TEXT, ok INTEGER, detail TEXT,
                   seconds REAL, created REAL,
                   PRIMARY KEY (base_commit, plan, seed, scale))"""
            ],
        )

    def get(self, base: str, plan: str, seed: int, scale: float) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT metrics, ok, detail, seconds FROM grid_result"
            " WHERE base_commit=? AND plan=? AND seed=? AND scale=?",
            (base, plan, seed, scale),
        ).fetchone()
        if row is None:
            return None
        return {
            "metrics": json.loads(row[0]),
            "ok": bool(row[1]),
            "detail": row[2],
            "seconds": row[3],
        }

    def put_many(self, rows: list[tuple[Any, ...]]) -> None:
        with self.transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO grid_result VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows
            )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with transaction(self.db, immediate=True):
            yield

    def rows_for_run(self, run_id: str) -> list[dict[str, Any]]:
        cur = self.db.execute(
            "SELECT params, metrics, ok, detail FROM grid_result WHERE run_id=?", (run_id,)
        )
        return [
            {"params": json.loads(p), "metrics": json.loads(m), "ok": bool(o), "detail": d}
            for p, m, o, d in cur.fetchall()
        ]

    def close(self) -> None:
        self.db.close()


# ---------------------------------------------------------------------------- tuning


@dataclass
class TuneOutcome:
    plans: list[Plan]
    """Substituted plans, best first, at most ``top_k``."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    """Every point: params, objective, feasibility, metrics; ranked."""


def tune(run: Run, plan: Plan, evaluate: Evaluator | None = None) -> TuneOutcome:
    """Evaluate ``plan``'s grid and return the top-k substituted plans with the table."""
    assert plan.grid is not None
    try:
        objective = Objective.from_grid(plan.grid)
    except ValueError as exc:
        first = points(plan.grid)[:1]
        row = {"params": first[0] if first else {}, "ok": False, "detail": str(exc), "rank": 1}
        return TuneOutcome([substitute(plan, first[0] if first else {})], [row])
    grid_points = points(plan.grid)
    candidates = [substitute(plan, p) for p in grid_points]
    seed = run.montecarlo.seed if run.montecarlo is not None else (run.settings.seed or 0)
    evaluate = evaluate or SimulationEvaluator(run)
    results = evaluate(candidates, grid_points, seed)
    rows = []
    for p, cand, res in zip(grid_points, candidates, results, strict=True):
        metrics = res.get("metrics", {})
        value = objective.value(metrics) if res.get("ok") else None
        broken = objective.feasible(metrics) if value is not None else []
        rows.append(
            {
                "params": p,
                "plan": cand.digest(),
                "objective": None if value is None else value[1],
                "metric": "" if value is None else value[0],
                "goal": objective.goal,
                "feasible": value is not None and not broken,
                "ok": bool(res.get("ok")) and value is not None,
                "detail": "; ".join(broken) or res.get("detail", "")
                or ("" if value is not None else "objective metric not reported"),
                "cached": bool(res.get("cached")),
                "metrics": metrics,
                "watch": {m: metrics.get(m) for m, _, _ in objective.constraints},
                "constraints": [f"{m} {op} {bound:g}" for m, op, bound in objective.constraints],
                "seed": seed,
            }
        )  # fmt: skip
    sign = -1.0 if objective.goal == "max" else 1.0

    def key(i: int) -> tuple[int, int, float, int]:
        r = rows[i]
        return (not r["ok"], not r["feasible"], sign * (r["objective"] or 0.0), i)

    order = sorted(range(len(rows)), key=key)
    ranked_rows = []
    for rank, i in enumerate(order, 1):
        ranked_rows.append({**rows[i], "rank": rank})
    best = [candidates[i] for i in order if rows[i]["ok"]][: objective.top_k]
    return TuneOutcome(best or [candidates[order[0]]], ranked_rows)


Evaluator = Callable[[list["Plan"], list[dict[str, "JsonScalar"]], int], list[dict[str, Any]]]
"""Scores grid points: ``(plans, points, seed) -> [{"ok", "metrics", "detail"}]``."""


@dataclass
class SimulationEvaluator:
    """Applies each point to a scratch tree and runs the tree's simulations there."""

    run: Run

    def __call__(
        self, plans: list[Plan], grid_points: list[dict[str, JsonScalar]], seed: int
    ) -> list[dict[str, Any]]:
        run = self.run
        start = time.monotonic()
        cap = min(run.settings.budgets.montecarlo_seconds, plans[0].budgets.montecarlo_seconds)
        deadline = start + cap
        work = run.run_dir / "optimise"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        parallel = _parallel()
        per_point = max(0.3, (cap * parallel * 0.75) / max(1, len(plans)) - STARTUP_SECONDS)
        scale = round(min(1.0, per_point / _baseline_seconds(run)), 4)
        store = _store(run)
        results: list[dict[str, Any]] = [{} for _ in plans]
        specs: list[tuple[int, ChildSpec, Path]] = []
        for i, plan in enumerate(plans):
            cached = store.get(run.base_commit, plan.digest(), seed, scale) if store else None
            if cached is not None:
                results[i] = {**cached, "cached": True}
                continue
            tree = work / f"point-{i}"
            problem = apply_to_copy(run, plan, tree)
            if problem:
                results[i] = {"ok": False, "metrics": {}, "detail": problem}
                continue
            out = work / f"point-{i}.json"
            args = ["simulate", "--side", "base", "--seed", str(seed), "--out", str(out),
                    "--seconds", f"{per_point:.3f}", "--scale", str(scale),
                    "--params", json.dumps(grid_points[i])]  # fmt: skip
            env = child_env(tree)
            specs.append(
                (
                    i,
                    ChildSpec(
                        f"optimise-{i}",
                        "pytest_orchestrator.phases.montecarlo.child.simulation",
                        args,
                        tree,
                        env,
                    ),
                    out,
                )
            )
        children = run_children(
            [s for _, s, _ in specs], deadline, guard=run.gauge, parallel=parallel
        )
        fresh = []
        for (i, _, out), child in zip(specs, children, strict=True):
            results[i] = _read_point(out, child.describe() if not child.ok else "")
            results[i]["seconds"] = round(child.seconds, 3)
            fresh.append(
                (run.base_commit, plans[i].digest(), seed, scale, run.run_id,
                 json.dumps(grid_points[i]), json.dumps(results[i]["metrics"]),
                 int(results[i]["ok"]), results[i]["detail"], child.seconds, time.time())
            )  # fmt: skip
        if store is not None:
            with contextlib.suppress(sqlite3.Error):
                store.put_many(fresh)
            store.close()
        for i in range(len(plans)):
            shutil.rmtree(work / f"point-{i}", ignore_errors=True)
        return results


def _store(run: Run) -> ResultStore | None:
    try:
        return ResultStore(run.settings.cache_dir / DB_FILE)
    except sqlite3.Error:
        return None


def _parallel() -> int:
    import os

    return max(1, min(4, os.cpu_count() or 1))


def _baseline_seconds(run: Run) -> float:
    """How long the tree's simulations took at full scale on the base (at least 0.2 s)."""
    path = run.run_dir / "montecarlo" / "base.sim.json"
    try:
        return max(0.2, float(json.loads(path.read_text(encoding="utf-8"))["seconds"]))
    except (OSError, ValueError, KeyError):
        return 2.0


def _read_point(out: Path, failure: str) -> dict[str, Any]:
    try:
        record = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"ok": False, "metrics": {}, "detail": failure or "no result"}
    metrics = {
        f"{r['name']}.{k}": float(v)
        for r in record.get("results", [])
        for k, v in r["metrics"].items()
    }
    errors = record.get("errors", [])
    ok = bool(metrics) and not failure
    return {"ok": ok, "metrics": metrics, "detail": failure or "; ".join(errors)[:300]}


def apply_to_copy(run: Run, plan: Plan, tree: Path) -> str:
    """Copy the worktree to ``tree`` and run the plan's mutate steps there; "" when applied."""
    from pytest_orchestrator.phases.execute.ops import AttemptState, StepContext
    from pytest_orchestrator.plan import OPS

    shutil.copytree(run.worktree, tree, ignore=shutil.ignore_patterns(*_IGNORE), symlinks=True)
    scratch = dataclasses.replace(run, worktree=tree)
    ops = run.ops or OPS
    for step in plan.order():
        if step.pool != "mutate":
            continue
        spec = ops.get(step.op)
        if spec is None:
            return f"{step.id}: unknown op {step.op!r}"
        try:
            args = spec.args.model_validate(step.args)
            module, _, name = spec.impl.partition(":")
            impl = getattr(importlib.import_module(module), name)
            outcome = impl(StepContext(scratch, plan, step, AttemptState(0)), args)
        except Exception as exc:
            return f"{step.id}: {type(exc).__name__}: {exc}"
        if not outcome.ok:
            return f"{step.id}: {outcome.summary}"
    return ""


# ---------------------------------------------------------------------------- report


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.6g}"


def markdown(grid_rows: list[dict[str, Any]], plan_rows: list[dict[str, Any]]) -> str:
    """PR.md's Optimise section: the grid table (best first), then ranked plans."""
    if not grid_rows and len(plan_rows) <= 1:
        return ""
    lines = ["## Optimise", ""]
    if grid_rows:
        metric = next((r["metric"] for r in grid_rows if r.get("metric")), "objective")
        goal = grid_rows[0].get("goal", "max")
        names = list(grid_rows[0].get("params", {}))
        watch = list(grid_rows[0].get("watch", {}))
        lines.append(f"Grid of {len(grid_rows)} point(s), objective `{metric}` ({goal}imise):")
        constraints = grid_rows[0].get("constraints", [])
        if constraints:
            lines.append(f"subject to {', '.join(f'`{c}`' for c in constraints)}.")
        seed = grid_rows[0].get("seed")
        lines.append(f"Every point ran the same simulation with seed `{seed}` (same price paths).")
        lines.append("")
        head = [*names, metric, *watch, "feasible", "note"]
        lines.append("| rank | " + " | ".join(head) + " |")
        lines.append("|---" * (len(head) + 1) + "|")
        for r in grid_rows:
            vals = [str(r["params"].get(n)) for n in names]
            vals.append("-" if r.get("objective") is None else f"{r['objective']:.6g}")
            vals += [_fmt(r.get("watch", {}).get(w)) for w in watch]
            vals.append("yes" if r.get("feasible") else "no")
            note = (r.get("detail") or "") + (" (cached)" if r.get("cached") else "")
            vals.append(note[:80])
            lines.append(f"| {r.get('rank')} | " + " | ".join(vals) + " |")
        lines.append("")
    if len(plan_rows) > 1:
        lines += ["Alternative plans, best first:", "", "| plan | score | why |", "|---|---|---|"]
        lines += [f"| `{r['plan']}` | {r['score']:g} | {r['why']} |" for r in plan_rows]
        lines.append("")
    return "\n".join(lines)
