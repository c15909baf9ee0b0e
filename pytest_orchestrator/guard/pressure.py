"""The memory gauge: how much of the machine the orchestrated run uses, and the brake.

:class:`PressureGauge` samples, on one background thread, the memory of the orchestrating
process **and all its descendants** (test subprocesses, xdist workers, Monte Carlo children)
and publishes ``mem_ratio = tree memory / available memory``:

* to in-process subscribers (:meth:`PressureGauge.subscribe`, :meth:`PressureGauge.on_event`);
* to child processes through a small shared record, a 128-byte file whose path is in the
  ``PYTEST_ORCHESTRATOR_PRESSURE`` environment variable (:func:`read_shared`,
  :class:`PressureView`, which is what xdist workers get);
* to the run record (:meth:`PressureGauge.record`, builtins only, for ``run.json``).

Measuring
    *Available* is :func:`available_memory_bytes`: physical RAM, or the tightest cgroup v2/v1
    memory limit on this process when one is set (:mod:`pytest_orchestrator.guard.memlimits`).

    *Used* is the sum over the process tree of each process's PSS, read sparingly, with RSS
    deltas in between; :mod:`pytest_orchestrator.guard.proctree` explains the costs and the cadence.

Enforcing
    See :class:`PressureGauge`: above the soft mark scan work waits (:meth:`~PressureGauge.
    wait_below_soft`); near the threshold guarded children (:meth:`~PressureGauge.guard`) are
    stopped before the ratio crosses it.

The shared record, :func:`read_shared`, :class:`PressureView` and :class:`Sample` live in
:mod:`pytest_orchestrator.guard.pressure_record`; this module re-exports them, so
``from pytest_orchestrator.guard.pressure import ...`` works for every name in ``__all__``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, final

from pytest_orchestrator.guard.memlimits import (
    available_memory_bytes,
    cgroup_limit_bytes,
    physical_memory_bytes,
)
from pytest_orchestrator.guard.pressure_record import (
    ENV_VAR,
    PressureView,
    Sample,
    _encode,
    _Record,
    read_shared,
)

# Private names re-exported for the tests and benchmarks/bench_pressure.py, which import
# them from here.
from pytest_orchestrator.guard.pressure_record import _Timeline as _Timeline
from pytest_orchestrator.guard.proctree import _Proc as _Proc
from pytest_orchestrator.guard.proctree import _ProcessTree as _ProcessTree
from pytest_orchestrator.guard.proctree import _Tree as _Tree
from pytest_orchestrator.guard.proctree import kill_group

__all__ = [
    "ENV_VAR",
    "PressureEvent",
    "PressureGauge",
    "PressureView",
    "Sample",
    "available_memory_bytes",
    "cgroup_limit_bytes",
    "physical_memory_bytes",
    "read_shared",
]

EventKind = Literal["soft", "threshold", "stopped_child", "recovered"]

_log: Final = logging.getLogger(__name__)
_FAST_INTERVAL_FLOOR: Final = 0.025
_SLOW_FACTOR: Final = 8.0
"""The most intervals between two samples far below the soft mark (2 s by default: a
process tree growing at the rate the margin allows per interval needs longer than that to
reach the soft mark from there)."""
_SIGKILL: Final = getattr(signal, "SIGKILL", signal.SIGTERM)


@final
@dataclass(frozen=True)
class PressureEvent:
    """Something the gauge noticed or did; every one goes into the run record."""

    kind: EventKind
    """``soft`` (crossed the soft mark), ``threshold`` (acting at the threshold),
    ``stopped_child`` (a guarded child was stopped), ``recovered`` (back below soft)."""
    ratio: float
    timestamp: float
    detail: str
    """Why, in words and figures."""


def _why_act(ratio: float, predicted: float, threshold: float, margin: float) -> str | None:
    """Why the gauge must stop guarded children now, or ``None`` (see `PressureGauge`)."""
    if predicted >= threshold:
        return f"predicted ratio {predicted:.3f} at the next sample >= threshold {threshold:.2f}"
    if ratio >= threshold - margin:
        return f"ratio {ratio:.3f} >= threshold - margin {threshold - margin:.2f}"
    return None


@final
@dataclass
class _Stopping:
    handle: Any  # psutil.Process
    label: str
    members: list[int]
    kill_at: float
    killed: bool = False


@final
class PressureGauge:
    """Samples the run's memory, publishes it, and stops guarded children before it is too late.

    Thresholds, as fractions of available memory:

    * **soft** (default ``threshold - 0.10``): at or above it :meth:`wait_below_soft` blocks,
      so new scan work waits; the gauge also samples 4x faster and rescans the tree every
      sample, and records a ``soft`` event (``recovered`` when the ratio falls back below).
      Far below it, the gauge samples up to 8x more slowly (`_next_interval` says why that
      cannot miss the threshold).
    * **threshold** (default 0.70): the ratio the run must not cross. Guarded children (Monte
      Carlo shards, a runaway test step) are stopped *before* it is crossed. With ``r`` the
      ratio now, ``g`` the tree's growth rate (bytes/s, from the RSS deltas of processes present
      in both of the last two samples; the larger of the last two rates, so acceleration is not
      underestimated), ``Δ`` the time to the next sample and ``A`` the available bytes, the gauge
      acts when

          r >= threshold - margin          or          r + g·Δ / A >= threshold

      i.e. when the next sample would cross the line, or the line is within ``margin`` (default
      0.02, for a child that grows faster than its trend or a late sample). It then records a
      ``threshold`` event and stops guarded children, the one with the largest predicted next
      memory first, until the predicted and the current ratio without them are back under those
      lines. Stopping means SIGTERM to the child's process group (when the child leads its own
      group, e.g. started with ``start_new_session=True``) and to each of its known descendants,
      then SIGKILL after ``kill_grace`` seconds, or at once if the ratio reaches the threshold
      meanwhile. Each stop is a ``stopped_child`` event saying why.

    Unguarded processes are never signalled: a test step that may blow the budget should be
    guarded by whoever starts it. The thread starts with :meth:`start` (or ``with``), takes a
    first sample synchronously, and :meth:`stop` joins it; both are idempotent.

    Seams for deterministic tests: ``tree`` is what is measured (by default the real process
    tree of ``root_pid``; a fake with the same ``measure``/``procs``/``subtree`` injects
    samples) and ``clock`` is the monotonic clock the growth rate, the kill grace and the
    predictions use (default :func:`time.monotonic`).
    """

    ENV_VAR: Final = ENV_VAR

    def __init__(
        self,
        *,
        interval: float = 0.25,
        threshold: float = 0.70,
        soft: float | None = None,
        margin: float = 0.02,
        root_pid: int | None = None,
        shared_path: Path | None = None,
        available_bytes: int | None = None,
        kill_grace: float = 1.0,
        rescan_interval: float = 1.0,
        export_env: bool = True,
        tree: _ProcessTree | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        soft = max(threshold - 0.10, threshold / 2) if soft is None else soft
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if not 0 < soft < threshold:
            raise ValueError(f"soft mark must be in (0, threshold={threshold}), got {soft}")
        if interval <= 0 or margin < 0 or kill_grace < 0:
            raise ValueError("interval must be > 0, margin and kill_grace >= 0")
        if available_bytes is not None and available_bytes <= 0:
            raise ValueError(f"available_bytes must be positive, got {available_bytes}")
        self.interval: Final = interval
        self.threshold: Final = threshold
        self.soft: Final = soft
        self.margin: Final = margin
        self.kill_grace: Final = kill_grace
        self.root_pid: Final = os.getpid() if root_pid is None else root_pid
        self.available_bytes: Final = available_bytes or available_memory_bytes()
        self._owns_shared = shared_path is None
        self.shared_path: Final = shared_path or Path(tempfile.gettempdir()) / (
            f"pytest-orchestrator-pressure-{os.getpid()}-{secrets.token_hex(4)}.bin"
        )
        self._export_env = export_env
        self._rescan_interval = rescan_interval
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._sampling = threading.Lock()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._tree: _ProcessTree | None = tree
        self._clock = clock
        self._subscribers: list[Callable[[Sample], None]] = []
        self._event_subscribers: list[Callable[[PressureEvent], None]] = []
        self._latest: Sample | None = None
        self.peak_sample: Sample | None = None
        self._events: list[PressureEvent] = []
        self._timeline = _Timeline()
        self._count = 0
        self._started_at: float | None = None
        self._guards: dict[int, str] = {}
        self._stopping: dict[int, _Stopping] = {}
        self._pressed = False  # above soft since the last "recovered"
        self._acting = False  # a "threshold" event is open
        self._last_rss: tuple[float, dict[int, int]] | None = None
        self._last_rate = 0.0
        self._trend = 0.0  # bytes/s, the growth the last sample measured (never negative)
        self._shared: Any = None  # raw file object of the shared record
        self._seq = 0
        self._saved_env: str | None = None

    # -- lifecycle

    def __enter__(self) -> PressureGauge:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """The sampling thread is alive."""
        return self._thread is not None

    def start(self) -> None:
        """Open the shared record, export its path, take a first sample, start sampling."""
        with self._lock:
            if self._thread is not None:
                return
            flags = os.O_RDWR | os.O_CREAT | (os.O_EXCL if self._owns_shared else 0)
            try:  # kept open for the gauge's life, closed in stop()
                fd = os.open(self.shared_path, flags, 0o644)
                self._shared = open(fd, "r+b", buffering=0)  # noqa: SIM115
            except OSError:
                _log.warning("pressure gauge: no shared record at %s", self.shared_path)
                self._shared = None
            if self._export_env and self._shared is not None:
                self._saved_env = os.environ.get(ENV_VAR)
                os.environ[ENV_VAR] = str(self.shared_path)
            self._started_at = self._started_at or time.time()
            self._halt.clear()
            self._thread = threading.Thread(
                target=self._run, name="pytest-orchestrator-pressure", daemon=True
            )
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and join the thread; finish stopping children; close the record."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._halt.set()
        if thread is not threading.current_thread():
            thread.join()
        with self._lock:
            for stopping in self._stopping.values():  # decided already: do not leave them
                self._signal(stopping.handle.pid, stopping.members, _SIGKILL)
            self._stopping.clear()
            self._publish_shared(running=False)
            if self._shared is not None:
                self._shared.close()
            if self._owns_shared:
                with contextlib.suppress(OSError):
                    self.shared_path.unlink()
            if self._export_env and os.environ.get(ENV_VAR) == str(self.shared_path):
                if self._saved_env is None:
                    del os.environ[ENV_VAR]
                else:
                    os.environ[ENV_VAR] = self._saved_env
            self._changed.notify_all()

    def _run(self) -> None:
        while not self._halt.wait(self._next_interval()):
            try:
                self.sample()
            except Exception:  # never let one bad sample end the gauge
                _log.exception("pressure gauge: a sample failed; sampling continues")

    def _next_interval(self) -> float:
        """Seconds to the next sample: 4x faster above the soft mark; below it, slower the
        farther below (up to `_SLOW_FACTOR` intervals), so a run far from any limit spends
        little on sampling.

        Why that is safe: at the threshold the gauge already assumes that growth its trend
        did not predict is at most ``margin`` of available memory per interval (a child
        growing faster could cross between two samples). Below the soft mark the next sample
        is taken no later than the tree, growing at its measured trend plus that much, could
        reach the soft mark; from there on the sampling is as fast as before, so the
        threshold is caught as before."""
        if self._pressed:
            return min(self.interval, max(self.interval / 4, _FAST_INTERVAL_FLOOR))
        latest = self._latest
        if latest is None:
            return self.interval
        headroom = self.soft - latest.ratio
        per_interval = self.margin + self._trend * self.interval / latest.available_bytes
        if headroom <= 0 or per_interval <= 0:
            return self.interval
        return self.interval * min(_SLOW_FACTOR, max(1.0, headroom / per_interval))

    # -- reading

    @property
    def latest(self) -> Sample | None:
        """The latest sample, or ``None`` before the first."""
        return self._latest

    @property
    def ratio(self) -> float:
        """The latest ratio; 0.0 before the first sample."""
        latest = self._latest
        return 0.0 if latest is None else latest.ratio

    @property
    def peak(self) -> float:
        """The highest ratio sampled so far."""
        peak = self.peak_sample
        return 0.0 if peak is None else peak.ratio

    @property
    def events(self) -> list[PressureEvent]:
        """Every event so far, oldest first (a copy)."""
        with self._lock:
            return list(self._events)

    def subscribe(self, callback: Callable[[Sample], None]) -> Callable[[], None]:
        """Call ``callback(sample)`` on the sampling thread after every sample.

        Returns a function that unsubscribes. A callback that raises is logged and kept.
        """
        return self._add(self._subscribers, callback)

    def on_event(self, callback: Callable[[PressureEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns a function that unsubscribes."""
        return self._add(self._event_subscribers, callback)

    def _add(
        self, to: list[Callable[[Any], None]], callback: Callable[[Any], None]
    ) -> Callable[[], None]:
        with self._lock:
            to.append(callback)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                to.remove(callback)

        return unsubscribe

    def wait_below_soft(self, timeout: float | None = None) -> bool:
        """Block until the ratio is below the soft mark; scan work calls this before starting.

        Returns ``False`` if ``timeout`` seconds pass first. Returns ``True`` at once when the
        gauge is not running (a stopped gauge must not hold work back forever).
        """
        with self._changed:
            return self._changed.wait_for(
                lambda: self._thread is None or self.ratio < self.soft, timeout
            )

    # -- guarding children

    def guard(self, pid: int, label: str = "") -> None:
        """Watch a child (e.g. a Monte Carlo shard): it is stopped before the ratio crosses the
        threshold, see the class notes. Its memory counts even if it is not a descendant."""
        if pid in (os.getpid(), self.root_pid):
            raise ValueError(f"refusing to guard pid {pid}: it is the gauge's own root")
        with self._lock:
            self._guards[pid] = label or f"pid {pid}"

    def unguard(self, pid: int) -> None:
        """Stop watching ``pid`` (a child already being stopped is still stopped)."""
        with self._lock:
            self._guards.pop(pid, None)

    # -- sampling

    def sample(self) -> Sample:
        """Take one sample now (the thread calls this; tests and benchmarks may too)."""
        with self._sampling:
            if self._tree is None:
                self._tree = _Tree(self.root_pid, rescan_interval=self._rescan_interval)
            tree = self._tree
            now = self._clock()
            with self._lock:
                roots = list(self._guards)
            tree.measure(now, extra_roots=roots, rescan=self._pressed)
            memory = {pid: proc.memory for pid, proc in tree.procs.items()}
            total = sum(memory.values())
            sample = Sample(total / self.available_bytes, total, self.available_bytes, time.time())
            trend, rates = self._growth(now, {pid: p.rss for pid, p in tree.procs.items()})
            with self._lock:
                for pid in roots:  # a guarded child that is gone: never signal its pid again
                    if pid not in tree.procs:
                        self._guards.pop(pid, None)
                events = self._update(sample, now, tree, memory, trend, rates)
                self._publish_shared(running=self._thread is not None)
                self._changed.notify_all()
                subscribers, event_subscribers = (
                    list(self._subscribers),
                    list(self._event_subscribers),
                )
        for callback in subscribers:
            self._call(callback, sample)
        for event in events:
            for event_callback in event_subscribers:
                self._call(event_callback, event)
        return sample

    @staticmethod
    def _call(callback: Callable[[Any], None], arg: object) -> None:
        try:
            callback(arg)
        except Exception:
            _log.exception("pressure gauge: subscriber %r failed", callback)

    def _growth(self, now: float, rss: dict[int, int]) -> tuple[float, dict[int, float]]:
        """The tree's trend and each process's growth (bytes/s), over processes present in this
        and the previous sample (a process appearing is not growth). The trend is the larger of
        the last two totals, so an accelerating child is not underestimated."""
        last, self._last_rss = self._last_rss, (now, rss)
        if last is None or now <= last[0]:
            return 0.0, {}
        seconds = now - last[0]
        rates = {pid: (b - last[1][pid]) / seconds for pid, b in rss.items() if pid in last[1]}
        total = sum(rates.values())
        trend, self._last_rate = max(0.0, total, self._last_rate), total
        self._trend = trend
        return trend, rates

    def _update(
        self,
        sample: Sample,
        now: float,
        tree: _ProcessTree,
        memory: dict[int, int],
        trend: float,
        rates: dict[int, float],
    ) -> list[PressureEvent]:
        self._latest = sample
        self._count += 1
        if self.peak_sample is None or sample.ratio > self.peak_sample.ratio:
            self.peak_sample = sample
        if self._started_at is None:
            self._started_at = sample.timestamp
        self._timeline.add(sample.timestamp - self._started_at, sample.ratio)
        self._reap(now, sample.ratio)
        events: list[PressureEvent] = []

        def note(kind: EventKind, detail: str) -> None:
            events.append(PressureEvent(kind, sample.ratio, sample.timestamp, detail))

        if sample.ratio >= self.soft and not self._pressed:
            self._pressed = True
            note("soft", f"ratio {sample.ratio:.3f} >= soft mark {self.soft:.2f}: scan work waits")
        horizon = self._next_interval()
        available = sample.available_bytes
        predicted = sample.ratio + trend * horizon / available
        if _why_act(sample.ratio, predicted, self.threshold, self.margin):
            if not self._acting:
                self._acting = True
                note(
                    "threshold",
                    f"ratio {sample.ratio:.3f}, predicted {predicted:.3f} in {horizon:.3f}s; "
                    f"threshold {self.threshold:.2f}, margin {self.margin:.2f}",
                )
            self._stop_guarded(sample, predicted, horizon, tree, memory, rates, note)
        elif sample.ratio < self.soft and self._pressed:
            self._pressed = self._acting = False
            note("recovered", f"ratio {sample.ratio:.3f} < soft mark {self.soft:.2f}")
        self._events.extend(events)
        return events

    def _stop_guarded(
        self,
        sample: Sample,
        predicted: float,
        horizon: float,
        tree: _ProcessTree,
        memory: dict[int, int],
        rates: dict[int, float],
        note: Callable[[EventKind, str], None],
    ) -> None:
        available = sample.available_bytes
        candidates = []
        for pid, label in self._guards.items():
            members = tree.subtree(pid)
            if pid in self._stopping or not members:
                continue
            held = sum(memory.get(m, 0) for m in members)
            growth = max(0.0, sum(rates.get(m, 0.0) for m in members))
            candidates.append((held + growth * horizon, held, growth, pid, label, members))
        ratio = sample.ratio
        for next_bytes, held, growth, pid, label, members in sorted(candidates, reverse=True):
            why = _why_act(ratio, predicted, self.threshold, self.margin)
            if why is None:
                break
            self._signal(pid, members, signal.SIGTERM)
            self._stopping[pid] = _Stopping(
                tree.procs[pid].handle, label, members, self._clock() + self.kill_grace
            )
            note(
                "stopped_child",
                f"{label} (pid {pid}, {len(members)} process(es), {held / 2**20:.0f} MiB, "
                f"growing {growth / 2**20:.0f} MiB/s) stopped: {why}",
            )
            ratio -= held / available
            predicted -= next_bytes / available

    def _signal(self, pid: int, members: list[int], sig: int) -> None:
        """Send ``sig`` to the child's own process group, and to each known member."""
        if hasattr(os, "killpg"):
            with contextlib.suppress(OSError):
                group = os.getpgid(pid)
                if group == pid and group != os.getpgrp():
                    kill_group(group, sig)
        for member in members:
            if member not in (os.getpid(), self.root_pid):
                with contextlib.suppress(OSError):
                    os.kill(member, sig)

    def _reap(self, now: float, ratio: float) -> None:
        """Forget stopped children that are gone; SIGKILL the ones that outlive their grace."""
        for pid, stopping in list(self._stopping.items()):
            try:
                alive = stopping.handle.is_running() and stopping.handle.status() != "zombie"
            except Exception:  # psutil.NoSuchProcess and friends: gone
                alive = False
            if not alive:
                del self._stopping[pid]
                self._guards.pop(pid, None)
            elif not stopping.killed and (now >= stopping.kill_at or ratio >= self.threshold):
                self._signal(pid, stopping.members, _SIGKILL)
                stopping.killed = True

    def _publish_shared(self, *, running: bool) -> None:
        latest = self._latest
        if self._shared is None or self._shared.closed or latest is None:
            return
        self._seq += 1
        record = _Record(
            latest, self.peak, running, os.getpid(), self.threshold, self.soft, self.interval
        )
        try:
            self._shared.seek(0)
            self._shared.write(_encode(record, self._seq))
        except OSError:
            _log.warning("pressure gauge: cannot write %s", self.shared_path, exc_info=True)

    # -- the run record

    def record(self) -> dict[str, object]:
        """The gauge's part of ``run.json``: settings, peak, timeline and events (builtins)."""
        with self._lock:
            peak = self.peak_sample
            started = self._started_at or (peak.timestamp if peak else time.time())
            return {
                "interval": self.interval,
                "threshold": self.threshold,
                "soft": self.soft,
                "margin": self.margin,
                "available_bytes": int(self.available_bytes),
                "sample_count": self._count,
                "peak_ratio": round(self.peak, 4),
                "peak_rss_bytes": 0 if peak is None else int(peak.rss_bytes),
                "samples": [[round(t, 3), round(r, 4)] for t, r in self._timeline.points],
                "events": [
                    {**asdict(e), "t": round(e.timestamp - started, 3)} for e in self._events
                ],
            }
