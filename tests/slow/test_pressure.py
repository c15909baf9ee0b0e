"""The memory gauge, end to end: the running gauge stops a real runaway child and its group."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading

import psutil
import pytest

from pytest_orchestrator.guard.pressure import PressureEvent, PressureGauge
from tests.guard.pressure_helpers import MiB, tree_bytes

pytestmark = pytest.mark.usefixtures("no_inherited_gauge")

RUNAWAY = """
import subprocess, sys, time
sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(sleeper.pid, flush=True)
chunks = []
while len(chunks) < int(sys.argv[1]):  # 1 MiB every 10 ms, up to a cap the test never reaches
    chunks.append(bytearray(b"\\x01") * (1 << 20))
    print(len(chunks), flush=True)
    time.sleep(0.01)
"""


def test_a_runaway_montecarlo_child_is_stopped_by_the_running_gauge() -> None:
    """End to end: a guarded child growing 100 MiB/s is stopped, with its group, by the real
    gauge, and the run record says so. How close to the line it gets depends on the machine
    (benchmarks/bench_pressure.py measures it); the decision is tested in
    tests/guard/test_pressure.py."""
    threshold, headroom = 0.5, 160 * MiB
    available = int((tree_bytes(rescan_interval=0.0) + headroom) / threshold)
    gauge = PressureGauge(
        interval=0.05, threshold=threshold, margin=0.05, available_bytes=available
    )
    with gauge:
        proc = subprocess.Popen(
            [sys.executable, "-c", RUNAWAY, "2000"],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        gauge.guard(proc.pid, label="montecarlo shard 3")
        recovered = threading.Event()

        def on_event(event: PressureEvent) -> None:
            if event.kind == "recovered":
                recovered.set()

        gauge.on_event(on_event)
        out, _ = proc.communicate(timeout=300)
        assert recovered.wait(timeout=60)
    sleeper_pid, *_ = map(int, out.split())
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(sleeper_pid).wait(timeout=60)  # raises TimeoutExpired if still alive
    assert not psutil.pid_exists(sleeper_pid)  # the group went down with the child

    assert proc.returncode in (-signal.SIGTERM, -signal.SIGKILL)
    kinds = [e.kind for e in gauge.events]
    assert {"threshold", "stopped_child"} <= set(kinds)
    assert kinds[-1] == "recovered"
    stopped = next(e for e in gauge.events if e.kind == "stopped_child")
    assert "montecarlo shard 3" in stopped.detail
    recorded = json.loads(json.dumps(gauge.record()))["events"]
    assert "stopped_child" in [e["kind"] for e in recorded]
