"""Time an orchestrated rename against one bare run of a real project's suite.

For one repository (a local git clone of a real project; fetched, never committed), each
run in a fresh subprocess, timed by wall clock and by the CPU of the process tree:

- **bare**: ``python -m pytest`` once, as a developer would run the suite;
- **cold**: ``pytest --orchestrate "Rename OLD to NEW" --orchestrate-fresh``: the baseline
  runs (measuring per-test coverage for the test-impact map), then the attempt;
- **warm**: the same command again on the unchanged base: the baseline is reused from the
  cache, the impact map too, only the attempt's tests run;
- **dry**: ``--orchestrate-dry-run`` (Map, Logic, Plan only), against Map's own time.

From each run's ``run.json`` and test reports it splits the wall time into the tests (the
baseline when it ran, the attempt's affected and gate runs) and the orchestrator's phases.
With ``--dont-write-bytecode`` every run, the bare one included, has
``PYTHONDONTWRITEBYTECODE=1``.

Usage::

    python benchmarks/bench_scale.py REPO --rename OLD NEW [--path FILE] [--dont-write-bytecode]

The output is the speed reference (`reference.py`: a fixed loop, so a figure is compared
only with the host's speed beside it), the JSON record, then a summary in words: each run's
wall and CPU seconds, the warm run's wall and CPU against the bare suite's (the goal: at
most 1.3x in both), whether the warm run really reused the baseline and the linters' base
findings, the load average, and the speed reference again.

With ``--in-place`` REPO is used as it is (a clone of your own, already run cold once, so
the baseline and the impact map are cached): only the bare suite, the warm run and the dry
run are timed, and REPO is not deleted.

With ``--path`` (a symbol also declared in a ``.pyi`` stub, which the rules planner refuses
as ambiguous) the rules planner's plan is given as ``--orchestrate-plan`` with the path.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from reference import line  # noqa: E402


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds of the process tree, output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout + proc.stderr + f"\nexit {proc.returncode}"


def latest_run(repo: Path) -> Path:
    return max((repo / ".orchestrate" / "runs").iterdir(), key=lambda p: p.stat().st_mtime)


def split(run_dir: Path) -> dict[str, Any]:
    """Seconds in tests vs phases, from the run's record."""
    record = json.loads((run_dir / "run.json").read_text())
    phases = {p["phase"]: p["seconds"] for p in record["phases"]}
    tests_file, baseline_file = run_dir / "tests.json", run_dir / "baseline.json"
    tests = json.loads(tests_file.read_text()) if tests_file.exists() else {}
    baseline = json.loads(baseline_file.read_text()) if baseline_file.exists() else {}
    gate = sum((a["result"] or {}).get("seconds", 0.0) for a in tests.get("attempts", []))
    execute = phases.get("execute", 0.0)
    own = sum(v for k, v in phases.items() if k not in ("execute", "montecarlo"))
    return {
        "total": record["seconds"],
        "phases": phases,
        "baseline": baseline,
        "gate_tests": round(gate, 2),
        "share_tests": round((execute + baseline.get("seconds", 0.0)) / record["seconds"], 2),
        "share_phases_without_tests": round(own / record["seconds"], 2),
        "attempts": [
            {k: a["gate"][k] for k in ("stage", "affected_ids")} if a["gate"] else None
            for a in record["attempts"]
        ],
        "outcome": record["exit_reason"],
        "checks_reused": [
            c["name"]
            for a in record["attempts"]
            for c in a.get("checks", [])
            if "base findings reused" in c.get("detail", "")
        ],
    }


def rename_plan(command: str, old: str, new: str, path: str) -> dict[str, Any]:
    """The rules planner's rename plan, with the defining file named."""
    return {
        "command": command,
        "planner": "rules",
        "summary": f"Rename `{old}` to `{new}`",
        "behaviour_preserving": True,
        "steps": [
            {"id": "find", "pool": "scan", "op": "search", "args": {"pattern": rf"\b{old}\b"}},
            {"id": "rename", "pool": "mutate", "op": "rename_symbol", "needs": ["find"],
             "args": {"symbol": old, "new_name": new, "path": path}},
            {"id": "lint", "pool": "scan", "op": "lint", "needs": ["rename"]},
            {"id": "montecarlo", "pool": "scan", "op": "montecarlo", "needs": ["rename"]},
        ],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--rename", nargs=2, required=True, metavar=("OLD", "NEW"))
    parser.add_argument("--path", help="the file defining OLD (the plan names it)")
    parser.add_argument("--dont-write-bytecode", action="store_true")
    parser.add_argument("--pytest-args", default="", help="extra args of every run")
    parser.add_argument("--in-place", action="store_true", help="REPO is a warm clone: no cold run")
    args = parser.parse_args()
    print(line(), flush=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ANTHROPIC"))}
    if args.dont_write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    repo = args.repo.resolve() if args.in_place else work / args.repo.name
    if not args.in_place:
        subprocess.run(["git", "clone", "-q", str(args.repo), str(repo)], check=True)
    extra = args.pytest_args.split()
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    command = f"Rename {args.rename[0]} to {args.rename[1]}"
    orchestrate = ["--orchestrate", command]
    if args.path:
        plan = work / "plan.json"
        plan.write_text(json.dumps(rename_plan(command, args.rename[0], args.rename[1], args.path)))
        orchestrate += ["--orchestrate-plan", str(plan)]
    results: dict[str, Any] = {"repo": str(args.repo), "command": command,
                               "PYTHONDONTWRITEBYTECODE": args.dont_write_bytecode}  # fmt: skip
    # a warm-up: the interpreter's and the dependencies' bytecode, as a developer has it
    timed([*pytest, "--collect-only"], repo, env)
    wall, cpu, out = timed(pytest, repo, env)
    results["bare"] = {"wall": round(wall, 2), "cpu": round(cpu, 2), "tail": out[-200:]}
    runs = [("warm", [])] if args.in_place else [("cold", ["--orchestrate-fresh"]), ("warm", [])]
    results["load_average"] = os.getloadavg()
    for name, flags in runs:
        wall, cpu, out = timed([*pytest, *orchestrate, *flags], repo, env)
        entry: dict[str, Any] = {"wall": round(wall, 2), "cpu": round(cpu, 2)}
        entry.update(split(latest_run(repo)))
        entry["cached"] = "cached from run" in out
        results[name] = entry
        for branch in subprocess.run(
            ["git", "branch", "--list", "orchestrate/*", "--format=%(refname:short)"],
            cwd=repo, capture_output=True, text=True, check=True,
        ).stdout.split():  # fmt: skip
            subprocess.run(["git", "branch", "-D", branch], cwd=repo, capture_output=True)
    wall, cpu, out = timed([*pytest, *orchestrate, "--orchestrate-dry-run"], repo, env)
    dry = split(latest_run(repo))
    results["dry"] = {"wall": round(wall, 2), "cpu": round(cpu, 2), "map": dry["phases"]["map"]}
    bare = results["bare"]["wall"]
    results["ratio_warm_to_bare"] = round(results["warm"]["wall"] / bare, 2)
    results["ratio_warm_to_bare_cpu"] = round(results["warm"]["cpu"] / results["bare"]["cpu"], 2)
    if "cold" in results:
        results["ratio_cold_to_bare"] = round(results["cold"]["wall"] / bare, 2)
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    print(summary(results))
    print(line())
    shutil.rmtree(work, ignore_errors=True)


def summary(results: dict[str, Any]) -> str:
    """The figures in words, for a reader who was not there."""
    bare = results["bare"]
    lines = [
        f"{results['repo']}: {results['command']!r}"
        + (", PYTHONDONTWRITEBYTECODE=1" if results["PYTHONDONTWRITEBYTECODE"] else ""),
        "CPU = user + system seconds of the whole process tree (the comparison to trust on a",
        "shared machine); wall = elapsed seconds.",
        f"  bare suite    wall {bare['wall']:7.2f}  CPU {bare['cpu']:7.2f}",
    ]
    for name in ("cold", "warm"):
        if name not in results:
            continue
        r = results[name]
        cpu, wall = r["cpu"] / bare["cpu"], r["wall"] / bare["wall"]
        goal = "  (goal <= 1.30x in both: " + ("met" if max(cpu, wall) <= 1.3 else "NOT met") + ")"
        lines.append(
            f"  rename, {name:4}  wall {r['wall']:7.2f}  CPU {r['cpu']:7.2f}  = ratio to the "
            f"bare suite: wall {wall:.2f}x, CPU {cpu:.2f}x" + (goal if name == "warm" else "")
        )
        reused = ", ".join(r["checks_reused"]) or "none"
        lines.append(
            f"    outcome {r['outcome']}; baseline {'reused' if r['cached'] else 'RUN (not warm)'};"
            f" linters' base findings reused: {reused}; tests in the run's own record"
            f" {r['gate_tests']:.1f} s wall"
        )
        phases = ", ".join(f"{k} {v:.2f}" for k, v in r["phases"].items())
        lines.append(f"    phases (wall s): {phases}")
    dry = results["dry"]
    lines.append(
        f"  dry run       wall {dry['wall']:7.2f}  CPU {dry['cpu']:7.2f}  (Map {dry['map']:.2f})"
    )
    before, after = results["load_average"], results["load_average_after"]
    lines.append(
        "  load average (1/5/15 min) before the orchestrated runs "
        + "/".join(f"{x:.1f}" for x in before)
        + ", after the dry run "
        + "/".join(f"{x:.1f}" for x in after)
        + " (2 cores: above ~2 the wall times are inflated, CPU less so)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
