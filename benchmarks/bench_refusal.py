"""How long an unplannable command takes to be refused on the bundled example.

    python benchmarks/bench_refusal.py [--runs N]

Each run makes a fresh git copy of examples/wheel (as examples/run.sh does), then times
``python -m pytest --orchestrate COMMAND`` as a whole process, for a command the offline rules
planner cannot plan (refused: exit 4) and, for scale, a dry run of a rename it can plan (Map,
Logic and Plan only). The planner is asked right after Map and Logic, before Monte Carlo and
the baseline test run, so both should take about Map's time plus interpreter start-up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFUSED = "Make the sizing smarter about volatility regimes"
DRY = "Rename calculate_position_size to position_size"


def fresh_copy(tmp: Path) -> Path:
    repo = tmp / "wheel"
    shutil.copytree(ROOT / "examples" / "wheel", repo)
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True)
    return repo


def timed(repo: Path, *args: str) -> tuple[float, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    return time.perf_counter() - start, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {"refusal (exit 4)": [], "dry run (exit 0)": []}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            repo = fresh_copy(Path(tmp))
            seconds, code = timed(repo, f"--orchestrate={REFUSED}")
            if code != 4:
                sys.exit(f"expected a refusal (exit 4), got exit {code}")
            rows["refusal (exit 4)"].append(seconds)
            seconds, code = timed(repo, f"--orchestrate={DRY}", "--orchestrate-dry-run")
            if code != 0:
                sys.exit(f"expected a dry run (exit 0), got exit {code}")
            rows["dry run (exit 0)"].append(seconds)
    print(f"bundled example, {args.runs} runs, {os.cpu_count()} cores")
    print(f"{'':<20}{'median':>9}{'min':>9}{'max':>9}")
    for name, values in rows.items():
        med, lo, hi = statistics.median(values), min(values), max(values)
        print(f"{name:<20}{med:>9.2f}{lo:>9.2f}{hi:>9.2f}")


if __name__ == "__main__":
    main()
