"""Child processes under a wall-clock cap and a memory guard.

Monte Carlo and Optimise run the target's code only in children started here: a scrubbed
environment (no inherited ``PYTHONPATH``, one BLAS thread, a private ``PYTHONPYCACHEPREFIX``),
cwd = the tree, their own process group, stdin closed, stdout discarded and stderr kept in a
file (a child that prints megabytes cannot block on a pipe). At the cap the whole process
group is killed, since the target's code may start processes of its own. Each group is
registered with the run's lease, and each child gets the orchestrator's identity for its
watchdog (`pytest_orchestrator.guard.containment`): a ``kill -9`` of the orchestrator ends them too.

Memory: the run's `PressureGauge` (``run.gauge``) stops a guarded child's process group
before the threshold is crossed. Without a gauge (unit tests, benchmarks) `RssWatch` does
the same job for the children started here; both satisfy `Guard`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import pytest_orchestrator
from pytest_orchestrator.guard import containment
from pytest_orchestrator.guard.proctree import Group, kill_group, process_start, stop_group

# Variables a child keeps from our environment; everything else is dropped so neither an
# editable install nor the user's PYTHONPATH can make the child import the wrong tree.
_KEEP_ENV: Final = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "USER")
PRESSURE_ENV: Final = "PYTEST_ORCHESTRATOR_PRESSURE"
"""Same name as ``PressureGauge.ENV_VAR``; copied so importing the gauge stays lazy."""
STDERR_TAIL: Final = 4000
SCRATCH_PREFIX: Final = "orchestrate-child-"
"""The children's stderr files live in ``<tmp>/orchestrate-child-<our pid>-<random>``."""


class Guard(Protocol):
    """What `run_children` needs from a memory gauge (``PressureGauge`` satisfies it)."""

    def guard(self, pid: int, label: str = ...) -> None: ...

    def unguard(self, pid: int) -> None: ...


def package_root() -> Path:
    """The directory that holds ``pytest_orchestrator``: put on the child's path after the tree."""
    return Path(pytest_orchestrator.__file__).resolve().parent.parent


def child_env(tree: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A scrubbed environment for a child whose cwd (and so ``sys.path[0]``) is ``tree``.

    Bytecode: the child compiles the tree's own modules from source on every import
    (`pytest_orchestrator.phases.montecarlo.child.simulation.fresh_imports`), so no stale
    ``.pyc`` can stand in for an edit, and writes no bytecode at all (nothing lands in the
    user's tree). Dependencies load from their installed ``__pycache__``. A private
    ``PYTHONPYCACHEPREFIX`` would also defeat staleness, but it hides those installed caches:
    every child would recompile numpy and pydantic, seconds of a 15-second cap.
    """
    del tree  # the child's cwd; kept in the signature for the call sites' clarity
    env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    env["PYTHONPATH"] = str(package_root())  # after the tree: `python -m` puts cwd first
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"  # the scan pool owns the cores; a BLAS pool per child would oversubscribe
    if PRESSURE_ENV in os.environ:
        env[PRESSURE_ENV] = os.environ[PRESSURE_ENV]
    env.update(containment.owner_env())
    env.update(extra or {})
    return env


@dataclass
class ChildSpec:
    """One child to start: ``python -m <module> <args>`` in ``cwd``."""

    label: str
    module: str
    args: list[str]
    cwd: Path
    env: dict[str, str]
    progress: Path | None = None
    """A file the child appends to as it works (an outcome stream)."""
    stall_seconds: float = 0.0
    """Kill the child when ``progress`` has not grown for this long (0: never). A call stuck
    in C ignores the in-child alarm; this stops it long before the cap."""


@dataclass
class ChildResult:
    """How a child ended."""

    label: str
    returncode: int | None
    seconds: float
    timed_out: bool = False
    """Killed at the wall-clock cap."""
    stalled: bool = False
    """Killed because its progress file stopped growing (see `ChildSpec.stall_seconds`)."""
    stderr: str = ""
    """The last `STDERR_TAIL` characters of its stderr."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def crashed(self) -> bool:
        """Ended by a signal we did not send at the cap (a segfault, or the memory guard)."""
        return (
            self.returncode is not None
            and self.returncode < 0
            and not self.timed_out
            and not self.stalled
        )

    def describe(self) -> str:
        if self.stalled:
            return f"stopped after {self.seconds:.1f}s without progress"
        if self.timed_out:
            return f"stopped at the cap after {self.seconds:.1f}s"
        if self.returncode is not None and self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"killed by {name}"
        if self.returncode:
            last = self.stderr.strip().splitlines()[-1:] or [""]
            return f"exit status {self.returncode}: {last[0][:200]}"
        return "ok"


@dataclass
class _Running:
    proc: subprocess.Popen[bytes]
    group: Group
    started: float
    err_path: Path

    def stop(self) -> None:
        """Kill the child and everything it started at once: a child past its cap or stalled
        gets no grace. Also clears out grandchildren of a child that exited."""
        stop_group(self.group, grace=0, leader=self.proc)
        containment.release(self.group)


def run_children(
    specs: Sequence[ChildSpec],
    deadline: float,
    guard: Guard | None = None,
    parallel: int = 2,
) -> list[ChildResult]:
    """Run ``specs``, at most ``parallel`` at a time; kill what is left at ``deadline``.

    ``deadline`` is a `time.monotonic` instant. Results come back in the order of ``specs``;
    a child never started because the deadline passed first is reported as timed out.
    """
    pending = list(enumerate(specs))
    running: dict[int, _Running] = {}
    results: dict[int, ChildResult] = {}
    watch: dict[int, tuple[int, float]] = {}  # index -> (progress size, when it last grew)
    remove_orphaned_scratch()
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-") as tmp:
        try:
            while pending or running:
                while pending and len(running) < max(1, parallel):
                    index, spec = pending.pop(0)
                    if time.monotonic() >= deadline:
                        results[index] = ChildResult(spec.label, None, 0.0, timed_out=True)
                        continue
                    _throttle(guard, deadline)
                    err_path = Path(tmp) / f"{index}.stderr"
                    proc, group = _start(spec, err_path, guard)
                    running[index] = _Running(proc, group, time.monotonic(), err_path)
                for index, child in list(running.items()):
                    timed_out = stalled = False
                    if child.proc.poll() is None:
                        if _stalled(specs[index], watch, index):
                            child.stop()
                            stalled = True
                        elif time.monotonic() < deadline:
                            continue
                        else:
                            child.stop()
                            timed_out = True
                    code = child.proc.wait()
                    child.stop()  # grandchildren left behind by a child that exited
                    if guard is not None:
                        guard.unguard(child.proc.pid)
                    results[index] = ChildResult(
                        specs[index].label,
                        code,
                        time.monotonic() - child.started,
                        timed_out=timed_out,
                        stalled=stalled,
                        stderr=_tail(child.err_path),
                    )
                    del running[index]
                if running:
                    time.sleep(0.02)
        finally:
            for child in running.values():
                child.stop()
                if guard is not None:
                    guard.unguard(child.proc.pid)
    return [results[i] for i in range(len(specs))]


def remove_orphaned_scratch(root: Path | None = None) -> list[Path]:
    """Remove the scratch directories of orchestrators that no longer run (a ``kill -9``
    skips every cleanup, so the next run does it); return what was removed. Only our own
    directories, and only those whose process is gone."""
    removed = []
    for entry in Path(root or tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = entry.name.removeprefix(SCRATCH_PREFIX).split("-", 1)[0]
        try:
            ours = entry.is_dir() and entry.stat().st_uid == os.getuid()
        except OSError:
            continue
        if ours and pid.isdigit() and process_start(int(pid)) is None:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _stalled(spec: ChildSpec, watch: dict[int, tuple[int, float]], index: int) -> bool:
    if spec.progress is None or spec.stall_seconds <= 0:
        return False
    now = time.monotonic()
    try:
        size = spec.progress.stat().st_size
    except OSError:
        size = -1
    last_size, since = watch.get(index, (size, now))
    if size != last_size or index not in watch:
        watch[index] = (size, now)
        return False
    return now - since > spec.stall_seconds


def _throttle(guard: Guard | None, deadline: float) -> None:
    """Above the gauge's soft mark, wait (at most until the deadline) before starting more."""
    wait = getattr(guard, "wait_below_soft", None)
    if callable(wait):
        wait(max(0.0, min(2.0, deadline - time.monotonic())))


def _start(
    spec: ChildSpec, err_path: Path, guard: Guard | None
) -> tuple[subprocess.Popen[bytes], Group]:
    with err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", spec.module, *spec.args],
            cwd=spec.cwd,
            env=spec.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    group = containment.register(proc)
    if guard is not None:
        guard.guard(proc.pid, label=spec.label)
    return proc, group


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - STDERR_TAIL))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


@dataclass
class RssWatch:
    """A stand-in for the pressure gauge: stop a guarded process group whose resident memory
    would cross ``limit_bytes``.

    Polls every ``interval`` seconds. A child that grows faster than one poll can overshoot
    by what it allocates in ``interval``; the gauge's own margin (soft threshold) covers the
    same gap in a real run.
    """

    limit_bytes: int
    interval: float = 0.05
    margin: float = 0.85
    """Kill at ``margin * limit_bytes``, before the limit itself."""
    measure: Callable[[int], int] = field(default=lambda pid: _group_rss(pid), repr=False)
    """Resident bytes of the group led by a pid (a seam: tests inject samples)."""
    peak_bytes: int = 0
    stopped: list[str] = field(default_factory=list)
    _pids: dict[int, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _halt: threading.Event = field(default_factory=threading.Event)

    def guard(self, pid: int, label: str = "") -> None:
        with self._lock:
            self._pids[pid] = label
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="rss-watch", daemon=True)
            self._thread.start()

    def unguard(self, pid: int) -> None:
        with self._lock:
            self._pids.pop(pid, None)

    def close(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._halt.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        """Measure every guarded group once; kill the ones at or over the mark."""
        with self._lock:
            pids = dict(self._pids)
        for pid, label in pids.items():
            rss = self.measure(pid)
            self.peak_bytes = max(self.peak_bytes, rss)
            if rss >= self.margin * self.limit_bytes:
                if not kill_group(pid, signal.SIGKILL):
                    continue
                self.stopped.append(label)
                self.unguard(pid)


def _group_rss(pid: int) -> int:
    import psutil as ps  # lazily: plain pytest runs never load it

    try:
        proc = ps.Process(pid)
        procs: Iterable[ps.Process] = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs)
    except (ps.NoSuchProcess, ps.AccessDenied):
        return 0
