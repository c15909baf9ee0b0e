"""What the gate run costs on the bundled example: wall time with it, and against a build
from before the gate.

    python benchmarks/bench_gate.py [--runs N] [--before-root DIR --before-python PY]

Each run copies examples/wheel to a fresh directory (examples/run.sh) and orchestrates the
README's main command. For every run of this checkout it prints the whole process's wall
time and the gate run's own seconds (from tests.json). With ``--before-root`` (a checkout of
an earlier commit, e.g. ``git worktree add /tmp/before <commit>``) and ``--before-python``
(a venv with that checkout installed), the same command runs there too, interleaved run by
run so both see the same machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(root: Path, python: Path) -> tuple[float, float | None]:
    """Wall seconds of one example run, and the gate run's seconds when there was one."""
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"}
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "wheel"
        start = time.perf_counter()
        proc = subprocess.run(
            ["bash", str(root / "examples" / "run.sh"), str(repo)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        (run_json,) = (repo / ".orchestrate" / "runs").glob("*/run.json")
        attempt = json.loads(run_json.read_text())["attempts"][-1]
        gate = attempt.get("gate")
        tests = json.loads(run_json.with_name("tests.json").read_text())["attempts"][-1]
        seconds = tests["result"]["seconds"] if gate is not None else None
        return wall, seconds


def line(name: str, values: list[float]) -> str:
    return f"{name:<28}{statistics.median(values):>9.2f}{min(values):>9.2f}{max(values):>9.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before-root", type=Path)
    parser.add_argument("--before-python", type=Path)
    args = parser.parse_args()
    now_walls: list[float] = []
    gates: list[float] = []
    before_walls: list[float] = []
    for _ in range(args.runs):
        wall, gate = one_run(ROOT, Path(sys.executable))
        now_walls.append(wall)
        if gate is not None:
            gates.append(gate)
        if args.before_root and args.before_python:
            before_walls.append(one_run(args.before_root, args.before_python)[0])
    print(f"bundled example, {args.runs} runs, {os.cpu_count()} cores")
    print(f"{'seconds':<28}{'median':>9}{'min':>9}{'max':>9}")
    print(line("wall, with the gate", now_walls))
    if gates:
        print(line("  of which the gate run", gates))
    if before_walls:
        print(line("wall, before the gate", before_walls))
        delta = statistics.median(now_walls) - statistics.median(before_walls)
        print(f"median difference: {delta:+.2f} s")


if __name__ == "__main__":
    main()
