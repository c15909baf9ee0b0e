"""Monte Carlo phase figures: throughput, the cap, and memory.

1. Throughput: differential sampling of cheap numeric functions, samples per second per core
   (inside the sampling loop, and including child start-up).
2. The cap: the phase's wall time, run after run, with a function stuck in a C call (no signal
   handler can interrupt it: only the process-group kill at the cap ends it).
3. Memory: peak mem_ratio with a function allocating without bound, under the real
   `PressureGauge` at a 0.70 threshold.

Usage::

    .venv/bin/python benchmarks/bench_montecarlo.py [--reps 3] [--cap-runs 5]

Prints figures; not run as a test. Uses the phase's real entry points (``mc.baseline``)
on trees written to a temporary directory.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pluggy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_orchestrator.guard.pressure import PressureGauge  # noqa: E402
from pytest_orchestrator.model import LogicResult, RankedSlice, Slice  # noqa: E402
from pytest_orchestrator.phases.montecarlo import differential  # noqa: E402
from pytest_orchestrator.phases.montecarlo import phase as mc  # noqa: E402
from pytest_orchestrator.phases.montecarlo.differential import read_report  # noqa: E402
from pytest_orchestrator.plan import Budgets  # noqa: E402
from pytest_orchestrator.run import Run  # noqa: E402
from pytest_orchestrator.settings import Settings  # noqa: E402
from pytest_orchestrator.tracing import Tracer  # noqa: E402

CHEAP = """\
from __future__ import annotations

import math


def lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo if x < lo else hi if x > hi else x


def hypot3(x: float, y: float, z: float) -> float:
    return math.sqrt(x * x + y * y + z * z)


def horner(x: float, a: float, b: float, c: float) -> float:
    return ((a * x) + b) * x + c


def gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return abs(a)


def sign(x: float) -> int:
    return (x > 0) - (x < 0)
"""
HOSTILE = """\
def stuck(n: int) -> int:
    return sum(range(10**13 + n))


def fine(n: int) -> int:
    return n * 2


def hog(n: int) -> int:
    blocks = []
    while True:
        blocks.append(b"x" * 50_000_000)
"""


def run_on(tmp: Path, source: str, functions: list[str], cap: float) -> Run:
    tree = tmp / "tree"
    (tree / "pkg").mkdir(parents=True, exist_ok=True)
    (tree / "pkg" / "__init__.py").write_text("")
    (tree / "pkg" / "m.py").write_text(source)
    run_dir = tmp / "run"
    run_dir.mkdir(exist_ok=True)
    settings = Settings(command="refactor", run_root=tmp / "runs", cache_dir=tmp / "cache",
                        seed=11, budgets=Budgets(montecarlo_seconds=cap))  # fmt: skip
    run = Run("bench", settings, tree, tree, "b", "c0ffee", None, run_dir,
              pluggy.PluginManager("pytest").hook, Tracer(run_dir / "trace.json"), {})  # fmt: skip
    run.logic = LogicResult(
        slices=[RankedSlice(slice=Slice(path="pkg/m.py", symbol=f, kind="function", start_line=1,
                                        end_line=1, hash="0", tokens=1), score=1.0)
                for f in functions],
        budget_tokens=4000, used_tokens=1,
    )  # fmt: skip
    return run


def throughput(reps: int) -> None:
    differential.MAX_SAMPLES = 50_000  # let the time share, not the count, end sampling
    functions = ["lerp", "clamp", "hypot3", "horner", "gcd", "sign"]
    inner, wall, totals, phase = [], [], [], []
    for i in range(reps):
        with tempfile.TemporaryDirectory() as tmp:
            run = run_on(Path(tmp), CHEAP, functions, 15.0)
            start = time.monotonic()
            mc.baseline(run)
            phase.append(time.monotonic() - start)
            report = read_report(run.run_dir / mc.DIFFERENTIAL_FILE)
            assert report is not None
            inner.append(report.samples_per_second_per_core)
            wall.append(report.samples / report.child_seconds)
            totals.append(report.samples)
        print(f"  rep {i + 1}: {totals[-1]} samples, {inner[-1]:,.0f}/s/core in the loop, "
              f"{wall[-1]:,.0f}/s/core with start-up, phase {phase[-1]:.1f}s", flush=True)  # fmt: skip  # noqa: E501
    print(f"throughput, {len(functions)} cheap numeric functions, {reps} runs, 15 s cap:")
    print(f"  samples per base phase: median {statistics.median(totals):,.0f}")
    print(f"  samples/s/core inside the sampling loop: median {statistics.median(inner):,.0f} "
          f"(min {min(inner):,.0f}, max {max(inner):,.0f})")  # fmt: skip
    print(f"  samples/s/core including child start-up and imports: median "
          f"{statistics.median(wall):,.0f}")  # fmt: skip
    differential.MAX_SAMPLES = 2000


def cap(runs: int, caps: tuple[float, ...]) -> None:
    print("cap: a function stuck in one C call (sum(range(10**13))) next to a cheap one")
    for limit in caps:
        walls = []
        reasons: set[str] = set()
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                run = run_on(Path(tmp), HOSTILE, ["stuck", "fine"], limit)
                start = time.monotonic()
                mc.baseline(run)
                walls.append(time.monotonic() - start)
                report = read_report(run.run_dir / mc.DIFFERENTIAL_FILE)
                assert report is not None
                stuck = next(f for f in report.functions if f.target.endswith("stuck"))
                assert stuck.skipped.startswith("hung"), stuck.skipped
                reasons.add(stuck.skipped.split(" during")[0].split("; the cap")[0])
        walls.sort()
        print(f"  cap {limit:>4.1f}s, {runs} runs: phase wall time min {walls[0]:.2f}s, median "
              f"{statistics.median(walls):.2f}s, max {walls[-1]:.2f}s; worst overshoot "
              f"{walls[-1] - limit:+.2f}s; stuck function: {' / '.join(sorted(reasons))}")  # fmt: skip  # noqa: E501


def memory(runs: int) -> None:
    print("memory: a function allocating 50 MB per step without bound, gauge threshold 0.70")
    for i in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            run = run_on(Path(tmp), HOSTILE, ["hog", "fine"], 15.0)
            with PressureGauge(interval=0.05) as probe:
                used = probe.latest.rss_bytes if probe.latest else 0
            budget = used + 1_000_000_000
            with PressureGauge(interval=0.05, threshold=0.70, available_bytes=budget) as gauge:
                run.gauge = gauge
                start = time.monotonic()
                mc.baseline(run)
                seconds = time.monotonic() - start
                peak = gauge.peak
                stops = [e for e in gauge.record().get("events", []) if "stop" in str(e)]  # type: ignore[union-attr]
            report = read_report(run.run_dir / mc.DIFFERENTIAL_FILE)
            assert report is not None
            hog = next(f for f in report.functions if f.target.endswith("hog"))
            print(f"  run {i + 1}: available {budget / 1e9:.2f} GB, peak mem_ratio {peak:.3f} "
                  f"(threshold 0.70), hog: {hog.skipped or 'not stopped'}; {len(stops)} stop "
                  f"event(s); phase {seconds:.1f}s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cap-runs", type=int, default=5)
    args = parser.parse_args()
    throughput(args.reps)
    cap(args.cap_runs, (5.0, 15.0))
    memory(args.reps)


if __name__ == "__main__":
    main()
