"""What the slice cache costs: put/get throughput, top-k latency at 100k and 1M vectors, RSS.

- embed: slices of real source (this package's own files) per second;
- put: one transaction per vector, and batches of 1,000 (``put_many``, as Map writes);
- get: from the LRU tier, and from SQLite (a cold key each time);
- top-k (k=20) over 100k and 1M random 256-d vectors: the first query (loads the matrix from
  SQLite), then the median of 20 queries, and one restricted to 1,000 keys;
- peak RSS of a fresh process that opens the 1M-vector cache and ranks (matrix included).

The database lives in a temporary directory on the same disk as the checkout's default cache.

Usage::

    python benchmarks/bench_slice_cache.py [--max 1000000]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pytest_orchestrator.phases.map.slice_cache import DIM, SliceCache, SliceMeta, embed

HERE = Path(__file__).resolve().parent
META = SliceMeta("pkg/mod.py", "function_name", "function", 10, 30, 200, 900, 180)

RSS_PROBE = """
import sys
import numpy as np
from pytest_orchestrator.phases.map.slice_cache import DIM, SliceCache

def peak_mib():  # VmHWM: this process's peak RSS (ru_maxrss would include the parent's)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024

base = peak_mib()
with SliceCache.open(sys.argv[1]) as cache:
    query = np.random.default_rng(1).standard_normal(DIM).astype(np.float32)
    for _ in range(5):
        cache.topk(query, 20)
    print(base, peak_mib())
"""


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>10,.0f}/s"


def random_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal((n, DIM), dtype=np.float32)


def bench_embed() -> None:
    texts = [p.read_text() for p in sorted((HERE.parent / "pytest_orchestrator").rglob("*.py"))]
    slices = [chunk for text in texts for chunk in text.split("\n\n\n") if chunk.strip()]
    start = time.perf_counter()
    for chunk in slices:
        embed(chunk)
    seconds = time.perf_counter() - start
    print(f"embed           {len(slices):>9,} slices   {rate(len(slices), seconds)}")


def bench_put_get(directory: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = random_vectors(rng, 105_000)
    with SliceCache.open(directory, lru_size=4096) as cache:
        n = 5_000
        start = time.perf_counter()
        for i in range(n):
            cache.put(f"single-{i}", vectors[i], META)
        print(f"put (1 per txn) {n:>9,} vectors  {rate(n, time.perf_counter() - start)}")

        n = 100_000
        start = time.perf_counter()
        for lo in range(0, n, 1000):
            cache.put_many((f"batch-{i}", vectors[5_000 + i], META) for i in range(lo, lo + 1000))
        print(f"put_many (1000) {n:>9,} vectors  {rate(n, time.perf_counter() - start)}")

        hot = [f"batch-{i}" for i in range(n - 1000, n)]
        for key in hot:
            cache.get(key)
        start = time.perf_counter()
        for _ in range(20):
            for key in hot:
                cache.get(key)
        print(f"get (LRU)       {20_000:>9,} lookups  {rate(20_000, time.perf_counter() - start)}")

    with SliceCache.open(directory, lru_size=0) as cold:
        keys = [f"batch-{i}" for i in rng.permutation(n)[:20_000]]
        start = time.perf_counter()
        for key in keys:
            cold.get(key)
        seconds = time.perf_counter() - start
        print(f"get (SQLite)    {len(keys):>9,} lookups  {rate(len(keys), seconds)}")


def bench_topk(directory: Path, n: int) -> None:
    rng = np.random.default_rng(n)
    start = time.perf_counter()
    with SliceCache.open(directory, max_entries=n + 1) as cache:
        for lo in range(0, n, 10_000):
            block = random_vectors(rng, 10_000)
            cache.put_many((f"v{lo + i}", block[i], META) for i in range(10_000))
    filled = time.perf_counter() - start
    size = sum(p.stat().st_size for p in directory.iterdir()) / 2**20
    query = random_vectors(rng, 1)[0]
    with SliceCache.open(directory, max_entries=n + 1) as cache:
        start = time.perf_counter()
        cache.topk(query, 20)
        first = time.perf_counter() - start
        times = []
        for _ in range(20):
            start = time.perf_counter()
            cache.topk(random_vectors(rng, 1)[0], 20)
            times.append(time.perf_counter() - start)
        subset = [f"v{i}" for i in rng.choice(n, 1000, replace=False)]
        start = time.perf_counter()
        cache.topk(query, 20, keys=subset)
        restricted = time.perf_counter() - start
    median = statistics.median(times)
    print(f"top-20 of {n:>9,} vectors: filled in {filled:.1f} s ({size:,.0f} MiB on disk)")
    print(f"  first query {first * 1e3:,.0f} ms (loads the matrix from SQLite)")
    print(f"  then median {median * 1e3:.1f} ms; among 1,000 given keys {restricted * 1e3:.1f} ms")
    probe = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, str(directory)], capture_output=True, text=True
    )
    base, peak = map(float, probe.stdout.split())
    print(
        f"  peak RSS of a fresh process ranking them: {peak:,.0f} MiB "
        f"({base:,.0f} MiB before opening the cache; the matrix is {n * DIM * 4 / 2**20:,.0f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=1_000_000, help="largest top-k corpus")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    bench_embed()
    with tempfile.TemporaryDirectory(dir=HERE) as tmp:
        bench_put_get(Path(tmp) / "put-get")
    for n in (100_000, args.max):
        with tempfile.TemporaryDirectory(dir=HERE) as tmp:
            bench_topk(Path(tmp), n)
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"this benchmark's own peak RSS: {self_peak:,.0f} MiB")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
