"""What the memory gauge costs: CPU per sample, and as a share of a core at 4 samples/s.

Measured in this process, with real child processes:

- one sample of a known tree (RSS of each member; no rescan, no PSS read), for 0, 8 and 32
  children;
- the parts that run less often: the rescan of every process's parent (once a second) and a
  PSS read (page-table walk, proportional to resident memory; here of a 1 GiB child);
- the running gauge over a wall-clock window with 8 children: its thread's CPU time
  (rescans and PSS reads included) per sample and as a share of one core;
- how close to the line a runaway gets on this machine, at this load (what the tests used to
  assert and no longer do, since it depends on the machine's speed; the tests check the
  decisions on injected samples): the gauge against a child growing 100 MiB/s and against a
  ~GB/s hog, and the stand-in ``RssWatch`` against a 250 MB/s child; peak ratio (or bytes),
  how the child ended, over ``--repeat`` runs.

Usage::

    python benchmarks/bench_pressure.py [--seconds 10] [--repeat 3] [--only-stops]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from pytest_orchestrator.guard.children import ChildSpec, RssWatch, child_env, run_children
from pytest_orchestrator.guard.pressure import PressureGauge, _Tree

GIB = 1 << 30
MIB = 1 << 20

# 1 MiB every 10 ms (~100 MiB/s), printing its size, up to a cap it should never reach.
RUNAWAY = """
import sys, time
chunks = []
while len(chunks) < int(sys.argv[1]):
    chunks.append(bytearray(b"\\x01") * (1 << 20))
    print(len(chunks), flush=True)
    time.sleep(0.01)
"""
# 100 MB a step with no pause (the Monte Carlo hog), up to a cap it should never reach.
HOG = """
import sys
blocks = []
while len(blocks) < int(sys.argv[1]):
    blocks.append(b"x" * 100_000_000)
    print(len(blocks) * 100, flush=True)
"""


@contextmanager
def children(n: int, allocate: int = 0) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``n`` idle Python children, each holding ``allocate`` resident bytes."""
    code = (
        "import sys, time\n"
        f"buf = bytearray(b'x') * {allocate}\n"
        "sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(600)"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE) for _ in range(n)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            proc.stdout.readline()
        yield procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


def cpu_per_call(fn: object, repeat: int) -> float:
    """CPU seconds of this thread per call of ``fn`` (median of 5 rounds)."""
    assert callable(fn)
    rounds = []
    for _ in range(5):
        start = time.thread_time()
        for _ in range(repeat):
            fn()
        rounds.append((time.thread_time() - start) / repeat)
    return sorted(rounds)[2]


def steady_sample_cost(n_children: int) -> float:
    with children(n_children):
        gauge = PressureGauge(export_env=False, rescan_interval=3600.0)
        gauge.sample()  # the first sample scans the tree and reads every PSS
        gauge._tree._next_pss = float("inf")  # type: ignore[union-attr]  # RSS only
        return cpu_per_call(gauge.sample, 200)


def rescan_cost() -> tuple[float, int]:
    tree = _Tree(os.getpid(), rescan_interval=0.0)
    return cpu_per_call(lambda: tree._rescan(()), 50), len(psutil.pids())


def pss_cost_per_gib() -> float:
    with children(1, allocate=GIB) as (proc,):
        handle = psutil.Process(proc.pid)
        return cpu_per_call(handle.memory_full_info, 10)


def running_gauge(seconds: float) -> tuple[int, float]:
    """(samples, sampler-thread CPU seconds) of a gauge at the default interval.

    The thread's CPU clock is read by a subscriber, which runs on the sampling thread.
    """
    clock: list[float] = []
    with children(8), PressureGauge(export_env=False) as gauge:
        gauge.subscribe(lambda _: clock.append(time.thread_time()))
        time.sleep(seconds)
    return len(clock) - 1, clock[-1] - clock[0]


def gauge_against(code: str, cap: int, headroom: int, threshold: float) -> tuple[float, str, str]:
    """(peak ratio, how the child ended, last size it printed) of a guarded child growing
    until stopped, under a gauge at 50 ms with ``headroom`` bytes left before ``threshold``."""
    used = PressureGauge(export_env=False, rescan_interval=0.0).sample().rss_bytes
    available = int((used + headroom) / threshold)
    with PressureGauge(
        interval=0.05, threshold=threshold, margin=0.05, available_bytes=available,
        export_env=False,
    ) as gauge:  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(cap)],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        gauge.guard(proc.pid, label="runaway")
        out, _ = proc.communicate(timeout=300)
    code_name = "exited" if proc.returncode >= 0 else signal.Signals(-proc.returncode).name
    return gauge.peak, code_name, (out.split() or ["0"])[-1]


def watch_against(limit: int) -> tuple[int, str]:
    """(peak bytes, how it ended) of RssWatch (20 ms) against a child adding 5 MB per 20 ms."""
    hog = (
        "import time\nblocks = []\nwhile True:\n"
        "    blocks.append(b'x' * 5_000_000)\n    time.sleep(0.02)\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "hog_mod.py").write_text(hog)
        spec = ChildSpec("hog", "hog_mod", [], Path(tmp), child_env(Path(tmp)))
        watch = RssWatch(limit_bytes=limit, interval=0.02)
        try:
            (result,) = run_children([spec], time.monotonic() + 120, guard=watch)
        finally:
            watch.close()
    return watch.peak_bytes, result.describe()


def stops(repeat: int) -> None:
    print(f"\nhow close to the line a runaway gets ({repeat} runs each):")
    for name, code, cap, headroom, threshold, unit in (
        ("gauge vs 100 MiB/s child, 160 MiB headroom, threshold 0.50", RUNAWAY, 2000,
         160 * MIB, 0.5, "MiB"),
        ("gauge vs ~GB/s hog (100 MB steps), 2 GB headroom, threshold 0.70", HOG, 60,
         2_000_000_000, 0.7, "MB"),
    ):  # fmt: skip
        print(f"  {name}:")
        for _ in range(repeat):
            peak, ended, last = gauge_against(code, cap, headroom, threshold)
            verdict = "held" if peak < threshold else "CROSSED"
            print(f"    peak ratio {peak:.3f} ({verdict}), child {ended} at {last} {unit}")
    limit = 300_000_000
    print(f"  RssWatch (20 ms) vs 250 MB/s child, limit {limit / 1e6:.0f} MB, mark 85 %:")
    for _ in range(repeat):
        peak_bytes, ended = watch_against(limit)
        verdict = "held" if peak_bytes < limit else "CROSSED"
        print(f"    peak {peak_bytes / 1e6:.0f} MB ({verdict}), {ended}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only-stops", action="store_true", help="only the runaway section")
    args = parser.parse_args()
    interval = 0.25
    print(
        f"python {sys.version.split()[0]}, psutil {psutil.__version__}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    if args.only_stops:
        stops(args.repeat)
        return
    print("\none sample of a known tree (RSS only):")
    for n in (0, 8, 32):
        cost = steady_sample_cost(n)
        print(
            f"  {n:>2} children: {cost * 1e6:7.0f} µs CPU/sample = "
            f"{cost / interval:6.3%} of a core at {interval} s"
        )
    rescan, processes = rescan_cost()
    print("\nless often:")
    print(
        f"  rescan of {processes} processes: {rescan * 1e3:.2f} ms CPU "
        f"(once a second = {rescan:.3%} of a core)"
    )
    pss = pss_cost_per_gib()
    print(
        f"  PSS read of a 1 GiB process: {pss * 1e3:.1f} ms CPU "
        "(the gauge spaces these to <= 1 % of a core)"
    )
    samples, cpu = running_gauge(args.seconds)
    print(f"\nrunning gauge, 8 children, {args.seconds:.0f} s at {interval} s:")
    print(
        f"  {samples} samples, sampler thread {cpu * 1e3:.0f} ms CPU: "
        f"{cpu / samples * 1e6:.0f} µs/sample, {cpu / args.seconds:.3%} of a core"
    )
    stops(args.repeat)


if __name__ == "__main__":
    main()
