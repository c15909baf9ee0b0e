"""A fixed amount of pure-Python work, timed, so every benchmark shows how fast the host was.

On a shared machine the same suite's CPU seconds move by 2x between hours; a figure is only
comparable with the reference measured beside it. ``reference()`` runs the loop in a fresh
interpreter (so the benchmark's own state does not colour it) and returns wall and CPU
seconds with the 1-minute load average; ``line()`` says it in one line for a table's header.

Usage::

    python benchmarks/reference.py        # prints the line
    from reference import line            # (benchmarks put their folder on sys.path)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

#: ten million additions: 0.56 CPU-s at load 0.5 on the machine of results.md, 0.8 in a slow hour
LOOP = (
    "import json, time\n"
    "t, c = time.perf_counter(), time.process_time()\n"
    "s = 0\n"
    "for i in range(10_000_000):\n"
    "    s += i\n"
    "print(json.dumps([time.perf_counter() - t, time.process_time() - c]))\n"
)


def reference() -> dict[str, float]:
    """Wall and CPU seconds of the fixed loop, and the load average before it."""
    load = os.getloadavg()[0]
    out = subprocess.run(
        [sys.executable, "-c", LOOP], capture_output=True, text=True, check=True
    ).stdout
    wall, cpu = json.loads(out)
    return {"wall": wall, "cpu": cpu, "load": load}


def line() -> str:
    r = reference()
    return (
        f"speed reference (10M-addition loop): {r['cpu']:.2f} CPU-s in {r['wall']:.2f} s wall"
        f" at load {r['load']:.2f}"
    )


if __name__ == "__main__":
    print(line())
