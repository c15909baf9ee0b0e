"""Child processes under a cap: process-group kills, crash reports, throttling, memory."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pytest_orchestrator.guard.children import (
    SCRATCH_PREFIX,
    RssWatch,
    child_env,
    remove_orphaned_scratch,
    run_children,
)
from tests.guard.children_helpers import spec

SLEEPER = """\
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
open("grandchild.tmp", "w").write(str(child.pid))
os.replace("grandchild.tmp", "grandchild.pid")  # there whole, or not at all
time.sleep(300)
"""


def gone(pid: int, timeout: float = 30.0) -> bool:
    """Whether ``pid`` has ended (a zombie waiting for its reaper counts), polling up to
    ``timeout`` seconds: a killed process takes a moment to go on a busy machine."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def test_cap_kills_the_whole_process_group(tmp_path: Path) -> None:
    """At the deadline the child and everything it started are gone.

    The cap must fall after the child has started its grandchild, which a starved machine
    may not manage in 2 s: the cap then grows (10 s, 60 s) until it has. The grandchild
    sleeps far longer than the wait for it to go, so one that outlives the kill fails."""
    pid_file = tmp_path / "grandchild.pid"
    for cap in (2.0, 10.0, 60.0):
        (result,) = run_children([spec(tmp_path, SLEEPER)], time.monotonic() + cap)
        assert result.timed_out
        assert result.describe().startswith("stopped at the cap")
        if pid_file.exists():
            break
    pid = int(pid_file.read_text())
    assert gone(pid)


def test_a_crash_is_reported_with_its_signal(tmp_path: Path) -> None:
    """A segfault is a crash, named, not a timeout."""
    source = "import ctypes\nctypes.string_at(0)\n"
    (result,) = run_children([spec(tmp_path, source)], time.monotonic() + 30)
    assert result.crashed
    assert result.describe() == "killed by SIGSEGV"


def test_stderr_tail_and_exit_status_are_kept(tmp_path: Path) -> None:
    """A failing child says why in its last stderr line."""
    source = "import sys\nsys.stderr.write('x' * 100000 + '\\nlast words\\n')\nsys.exit(3)\n"
    (result,) = run_children([spec(tmp_path, source)], time.monotonic() + 30)
    assert result.returncode == 3
    assert result.describe() == "exit status 3: last words"
    assert len(result.stderr) <= 4000


def test_environment_is_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No inherited PYTHONPATH or secrets reach the child; the tree comes first on its path."""
    monkeypatch.setenv("SECRET_TOKEN", "x")
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    env = child_env(tmp_path)
    assert "/somewhere/else" not in env["PYTHONPATH"]
    assert "SECRET_TOKEN" not in env
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["OPENBLAS_NUM_THREADS"] == "1"


def test_children_wait_below_the_soft_mark_before_starting(tmp_path: Path) -> None:
    """Under memory pressure, each child start first waits on the gauge."""

    class Gauge:
        def __init__(self) -> None:
            self.waits: list[float] = []

        def guard(self, pid: int, label: str = "") -> None:
            pass

        def unguard(self, pid: int) -> None:
            pass

        def wait_below_soft(self, timeout: float | None = None) -> bool:
            self.waits.append(timeout or 0.0)
            return True

    gauge = Gauge()
    specs = [spec(tmp_path, "pass\n", "a"), spec(tmp_path, "pass\n", "b")]
    results = run_children(specs, time.monotonic() + 30, guard=gauge)
    assert [r.ok for r in results] == [True, True]
    assert len(gauge.waits) == 2


def test_rss_watch_stops_a_group_at_the_first_sample_over_its_mark() -> None:
    """Given samples of a growing group (injected), the watch leaves it alone below 85 % of
    the limit and kills the whole group at the first sample at or over it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )
    samples = iter([100, 200, 254, 255, 400])  # MB; the mark is 0.85 * 300 = 255
    seen: list[int] = []

    def measure(pid: int) -> int:
        assert pid == proc.pid
        seen.append(next(samples) * 1_000_000)
        return seen[-1]

    watch = RssWatch(limit_bytes=300_000_000, interval=3600.0, measure=measure)
    try:
        watch.guard(proc.pid, label="shard")
        for _ in range(3):
            watch.poll()
        assert watch.stopped == []
        assert proc.poll() is None
        watch.poll()
        assert watch.stopped == ["shard"]
        assert proc.wait(timeout=30) == -signal.SIGKILL
        watch.poll()  # unguarded once stopped: not measured again
    finally:
        watch.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert seen == [100_000_000, 200_000_000, 254_000_000, 255_000_000]
    assert watch.peak_bytes == 255_000_000


def test_scratch_left_by_a_killed_orchestrator_is_removed_by_the_next(tmp_path: Path) -> None:
    """kill -9 skips every cleanup: the directory of a process that is gone is removed; one
    of a process still running (ours) and anything not ours by name stay."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f"{SCRATCH_PREFIX}{dead.pid}-abc123"
    live = tmp_path / f"{SCRATCH_PREFIX}{os.getpid()}-def456"
    other = tmp_path / "orchestrate-childish-1-x"
    for d in (orphan, live, other):
        d.mkdir()
        (d / "0.stderr").write_text("")
    assert remove_orphaned_scratch(tmp_path) == [orphan]
    assert not orphan.exists()
    assert live.exists()
    assert other.exists()
