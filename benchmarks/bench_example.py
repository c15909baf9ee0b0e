"""Wall time of the README's main command on the bundled example, phase by phase.

    python benchmarks/bench_example.py [--runs N]

Each run copies examples/wheel to a fresh directory (examples/run.sh) and orchestrates the
rename there; the figures come from each run's run.json plus the whole process's wall time.
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


def one_run(workdir: Path) -> tuple[float, dict[str, object]]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    start = time.perf_counter()
    proc = subprocess.run(
        ["bash", str(ROOT / "examples" / "run.sh"), str(workdir / "wheel")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    (run_json,) = (workdir / "wheel" / ".orchestrate" / "runs").glob("*/run.json")
    return wall, json.loads(run_json.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    walls: list[float] = []
    phases: dict[str, list[float]] = {}
    peaks: list[float] = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            wall, record = one_run(Path(tmp))
        walls.append(wall)
        for phase in record["phases"]:  # type: ignore[attr-defined]
            phases.setdefault(phase["phase"], []).append(phase["seconds"])
        peaks.append(record["memory"]["peak_ratio"])  # type: ignore[index]
    print(f"example run, {args.runs} runs, {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(f"{'':<12}{'median':>9}{'min':>9}{'max':>9}")
    print(f"{'wall (s)':<12}{statistics.median(walls):>9.2f}{min(walls):>9.2f}{max(walls):>9.2f}")
    for name, values in phases.items():
        print(f"{name:<12}{statistics.median(values):>9.2f}{min(values):>9.2f}{max(values):>9.2f}")
    print(f"peak mem_ratio median {statistics.median(peaks):.4f}, max {max(peaks):.4f}")


if __name__ == "__main__":
    main()
