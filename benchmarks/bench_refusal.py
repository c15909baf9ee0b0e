"""How long an unplannable command takes to be refused, and a dry run, against Map's time.

    python benchmarks/bench_refusal.py [--runs N] [--repo GIT_DIR --dry CMD [--refuse CMD]]
                                       [--dont-write-bytecode] [--pytest-arg=ARG ...]

Without ``--repo``: a fresh git copy of examples/wheel (as examples/run.sh does) per run; with
it, a clone of that repository (a real project, fetched, never committed). Each command is
timed as a whole process, ``python -m pytest --orchestrate COMMAND``, by wall clock and by
the CPU of its process tree: one the offline rules planner cannot plan (refused: exit 4) and
a dry run of a rename it can plan (Map, Logic and Plan only). The planner is asked right
after Map and Logic, before a worktree, Monte Carlo and the baseline test run, so both should
take about Map's time (read from the run's ``run.json``) plus interpreter start-up. The first
run of each clone is cold (empty cache directory), the others warm. The machine's load
average is printed at the start and the end: on a shared machine the CPU column is the
steadier one. ``--pytest-arg`` adds an argument to every run (e.g. ``-p no:hypothesispytest``:
the hypothesis plugin of a dev environment imports hypothesis at every session's end).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def fresh_copy(tmp: Path, source: Path | None) -> Path:
    if source is not None:
        repo = tmp / source.name.removesuffix(".git")
        subprocess.run(["git", "clone", "-q", str(source), str(repo)], check=True)
        return repo
    repo = tmp / "wheel"
    shutil.copytree(ROOT / "examples" / "wheel", repo)
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True)
    return repo


def timed(repo: Path, env: dict[str, str], *args: str) -> tuple[float, float, int, float]:
    """Wall seconds, CPU seconds of the process tree, exit status, Map's seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    runs = repo / ".orchestrate" / "runs"
    latest = max(runs.iterdir(), key=lambda p: p.stat().st_mtime)
    phases = json.loads((latest / "run.json").read_text())["phases"]
    map_seconds = next((p["seconds"] for p in phases if p["phase"] == "map"), 0.0)
    return wall, cpu, proc.returncode, map_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repo", type=Path, help="a git repository to clone (default: example)")
    parser.add_argument("--refuse", default=REFUSED, help="a command the rules planner refuses")
    parser.add_argument("--dry", default=DRY, help="a rename the rules planner can plan")
    parser.add_argument("--dont-write-bytecode", action="store_true")
    parser.add_argument(
        "--pytest-arg", action="append", default=[], help="an argument for every pytest run"
    )
    args = parser.parse_args()
    load_start = " ".join(f"{x:.1f}" for x in os.getloadavg())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "PYTEST_"))}
    if args.dont_write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    rows: dict[str, list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        repo = fresh_copy(Path(tmp), args.repo)
        for n in range(args.runs):
            for name, argv, expected in (
                ("refusal (exit 4)", [f"--orchestrate={args.refuse}"], 4),
                ("dry run (exit 0)", [f"--orchestrate={args.dry}", "--orchestrate-dry-run"], 0),
            ):
                wall, cpu, code, map_s = timed(repo, env, *args.pytest_arg, *argv)
                if code != expected:
                    sys.exit(f"{name}: expected exit {expected}, got exit {code}")
                label = f"{name}, {'cold' if n == 0 else 'warm'}"
                rows.setdefault(label, []).append((wall, cpu, map_s))
            worktrees = subprocess.run(
                ["git", "worktree", "list"], cwd=repo, capture_output=True, text=True, check=True
            ).stdout
            if worktrees.count("\n") != 1:
                sys.exit(f"a worktree was made:\n{worktrees}")
    what = args.repo.name if args.repo else "bundled example"
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    bytecode = "PYTHONDONTWRITEBYTECODE=1" if args.dont_write_bytecode else "bytecode written"
    extra = f", pytest {' '.join(args.pytest_arg)}" if args.pytest_arg else ""
    print(f"{what}, {args.runs} runs (first cold), {bytecode}{extra}, {os.cpu_count()} cores")
    print(f"load average (1/5/15 min) at start {load_start}, at end {load}")
    print("wall and CPU (user + system of the process tree) in seconds; Map from run.json")
    print(f"{'':<26}{'wall med':>9}{'wall min':>9}{'CPU med':>9}{'Map med':>9}")
    for name, values in rows.items():
        walls, cpus, maps = zip(*values, strict=True)
        print(
            f"{name:<26}{statistics.median(walls):>9.2f}{min(walls):>9.2f}"
            f"{statistics.median(cpus):>9.2f}{statistics.median(maps):>9.2f}"
        )


if __name__ == "__main__":
    main()
