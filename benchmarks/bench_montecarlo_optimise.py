"""Optimise on the bundled example: tune the Kelly fraction cap against the P&L simulation.

Runs what ``pytest --orchestrate "Make the Kelly fraction cap a parameter, tune it, post PR"
--orchestrate-plan examples/kelly_cap_plan.json`` runs in phases 3 and 5, on a copy of
``examples/wheel``: the Monte Carlo baseline (seed fixed), then Optimise, which applies each
grid point to a scratch tree, simulates it within the cap, stores the results in SQLite and
ranks them. Prints the grid table that goes into PR.md, the order of the plans the retry
loop would walk, and the wall times.

Usage::

    .venv/bin/python benchmarks/bench_montecarlo_optimise.py [--seed 7] [--cap 15]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pluggy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_orchestrator.phases.montecarlo import phase as mc  # noqa: E402
from pytest_orchestrator.phases.optimise import phase as optimise  # noqa: E402
from pytest_orchestrator.plan import OPS, Budgets, load_plan  # noqa: E402
from pytest_orchestrator.run import Run  # noqa: E402
from pytest_orchestrator.settings import Settings  # noqa: E402
from pytest_orchestrator.tracing import Tracer  # noqa: E402

PLAN = ROOT / "examples" / "kelly_cap_plan.json"
EXAMPLE = ROOT / "examples" / "wheel"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cap", type=float, default=15.0)
    args = parser.parse_args()
    plan = load_plan(PLAN)
    with tempfile.TemporaryDirectory(prefix="mc-optimise-") as tmp:
        tree = Path(tmp) / "wheel"
        shutil.copytree(EXAMPLE, tree, ignore=shutil.ignore_patterns(".orchestrate", "__pycache__"))
        run_dir = Path(tmp) / "run"
        run_dir.mkdir()
        settings = Settings(command=plan.command, run_root=Path(tmp) / "runs",
                            cache_dir=Path(tmp) / "cache", seed=args.seed,
                            budgets=Budgets(montecarlo_seconds=args.cap))  # fmt: skip
        run = Run("optimise-bench", settings, tree, tree, "b", "example", None, run_dir,
                  pluggy.PluginManager("pytest").hook, Tracer(run_dir / "trace.json"),
                  dict(OPS))  # fmt: skip
        start = time.monotonic()
        run.montecarlo = mc.baseline(run)
        base_seconds = time.monotonic() - start
        print(f"baseline: {run.montecarlo.summary_line()}")
        start = time.monotonic()
        ranked = optimise.pytest_orchestrator_optimise(run=run, plans=[plan])
        seconds = time.monotonic() - start
        print(f"optimise: {len(ranked)} plan(s) in {seconds:.1f}s (baseline {base_seconds:.1f}s)")
        print()
        print(optimise.pr_section(run))
        print(
            "retry order:",
            ", ".join(p.step("kelly-cap").args["replace"].split()[-1] for p in ranked),
        )
        again = time.monotonic()
        optimise.pytest_orchestrator_optimise(run=run, plans=[plan])
        print(f"second evaluation (SQLite results reused): {time.monotonic() - again:.2f}s")


if __name__ == "__main__":
    main()
