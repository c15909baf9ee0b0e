"""What the memory gauge costs: CPU per sample, and as a share of a core at 4 samples/s.

Measured in this process, with real child processes:

- one sample of a known tree (RSS of each member; no rescan, no PSS read), for 0, 8 and 32
  children;
- the parts that run less often: the rescan of every process's parent (once a second) and a
  PSS read (page-table walk, proportional to resident memory; here of a 1 GiB child);
- the running gauge over a wall-clock window with 8 children: its thread's CPU time
  (rescans and PSS reads included) per sample and as a share of one core.

Usage::

    python benchmarks/bench_pressure.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

from pytest_orchestrator.guard.pressure import PressureGauge, _Tree

GIB = 1 << 30


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    interval = 0.25
    print(
        f"python {sys.version.split()[0]}, psutil {psutil.__version__}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
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


if __name__ == "__main__":
    main()
