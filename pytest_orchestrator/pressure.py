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
    memory limit on this process when one is set. Memory used by unrelated processes is not
    subtracted: the ratio is the run's share of what it may use.

    *Used* is the sum over the process tree of each process's PSS (proportional set size:
    a page shared by n processes counts 1/n in each), so the copy-on-write pages of a forked
    child count once rather than once per process as summed RSS would. Reading PSS makes the
    kernel walk page tables (~10 ms per GiB resident), so a process's PSS is read when it
    appears, when its RSS halves (an ``exec``), and otherwise only as often as 1 % of a core
    allows (and at most once a second). Between reads a process counts as
    ``PSS at last read + (RSS now - RSS at last read)``; RSS comes from ``statm`` (~10 µs).
    Without PSS (not Linux) RSS is used.

    Finding descendants means reading every process's parent (~1 ms per 100 processes), so the
    gauge rescans once a second (every sample above the soft mark) and in between samples the
    processes it knows. Processes that vanish or deny access are skipped.

Enforcing
    See :class:`PressureGauge`: above the soft mark scan work waits (:meth:`~PressureGauge.
    wait_below_soft`); near the threshold guarded children (:meth:`~PressureGauge.guard`) are
    stopped before the ratio crosses it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import signal
import struct
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, final

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

ENV_VAR: Final = "PYTEST_ORCHESTRATOR_PRESSURE"
"""Environment variable naming the shared record's path, for child processes."""

EventKind = Literal["soft", "threshold", "stopped_child", "recovered"]

_log: Final = logging.getLogger(__name__)
_UNLIMITED: Final = 1 << 62  # cgroup v1 writes 2**63 - page size for "no limit"
_TIMELINE_POINTS: Final = 600
_FAST_INTERVAL_FLOOR: Final = 0.025
_PSS_CPU_SHARE: Final = 0.01
_SIGKILL: Final = getattr(signal, "SIGKILL", signal.SIGTERM)


@final
@dataclass(frozen=True)
class Sample:
    """One reading of the gauge."""

    ratio: float
    """Tree memory divided by available memory."""
    rss_bytes: int
    """Memory of the process tree: PSS-based where the platform has it (see the module notes)."""
    available_bytes: int
    """The denominator: :func:`available_memory_bytes` or the gauge's override."""
    timestamp: float
    """``time.time()`` when the sample was taken."""


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


# --- how much memory there is -------------------------------------------------------------


def physical_memory_bytes() -> int:
    """Installed RAM as the kernel reports it (cgroup limits not applied)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX
        import psutil

        return int(psutil.virtual_memory().total)


def available_memory_bytes() -> int:
    """The memory this process may use: min of physical RAM and any cgroup memory limit."""
    limit = cgroup_limit_bytes()
    physical = physical_memory_bytes()
    return physical if limit is None else min(physical, limit)


def cgroup_limit_bytes(proc_self: Path = Path("/proc/self")) -> int | None:
    """The tightest cgroup v2 ``memory.max`` or v1 ``memory.limit_in_bytes`` on this process.

    Reads the process's cgroups from ``proc_self/cgroup``, finds where each hierarchy is
    mounted from ``proc_self/mountinfo``, and checks the limit file of the process's cgroup and
    of every ancestor up to the mount (a parent's limit binds its children). ``None`` when no
    limit is set or cgroups are absent (not Linux, no cgroupfs, unreadable files).
    """
    try:
        membership = (proc_self / "cgroup").read_text()
        mountinfo = (proc_self / "mountinfo").read_text()
    except OSError:
        return None
    mounts = [m for m in map(_parse_mount, mountinfo.splitlines()) if m is not None]
    limits: list[int] = []
    for line in membership.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, cgroup_path = rest.partition(":")
        if hierarchy == "0" and not controllers:
            fstype, option, limit_file = "cgroup2", "", "memory.max"
        elif "memory" in controllers.split(","):
            fstype, option, limit_file = "cgroup", "memory", "memory.limit_in_bytes"
        else:
            continue
        for root, point, mount_fstype, options in mounts:
            if mount_fstype == fstype and (not option or option in options):
                limits += _limits_along(root, point, cgroup_path, limit_file)
    return min(limits, default=None)


def _parse_mount(line: str) -> tuple[str, str, str, list[str]] | None:
    """(root, mount point, fstype, super options) of one mountinfo line."""
    fields = line.split()
    if "-" not in fields:
        return None
    dash = fields.index("-")
    if dash < 5 or len(fields) < dash + 4:
        return None

    def unescape(text: str) -> str:
        return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), text)

    root, point = unescape(fields[3]), unescape(fields[4])
    return root, point, fields[dash + 1], fields[dash + 3].split(",")


def _limits_along(root: str, point: str, cgroup_path: str, limit_file: str) -> list[int]:
    """Limits set on the cgroup and its ancestors within one mount."""
    prefix = root.rstrip("/")
    if cgroup_path != root and not cgroup_path.startswith(prefix + "/"):
        cgroup_path = prefix  # outside this mount's view (a cgroup namespace): use its top
    parts = [p for p in cgroup_path[len(prefix) :].split("/") if p and p != ".."]
    top = Path(point)
    found = []
    for directory in [top.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]:
        try:
            text = (directory / limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < _UNLIMITED:
            found.append(int(text))
    return found


# --- the shared record ----------------------------------------------------------------------

# magic, version, state, writer pid, seq, ratio, peak, tree bytes, available bytes, timestamp,
# threshold, soft, interval; then a CRC-32 of those bytes. The writer rewrites it in place with
# one write; a reader that catches a half-written record sees a bad CRC and reads again.
_RECORD: Final = struct.Struct("<8sIIqQddQQdddd")
_CRC: Final = struct.Struct("<I")
_MAGIC: Final = b"PTOPRES1"
_VERSION: Final = 1
_RECORD_SIZE: Final = 128
_RUNNING, _STOPPED = 0, 1


@final
@dataclass(frozen=True)
class _Record:
    sample: Sample
    peak: float
    running: bool
    pid: int
    threshold: float
    soft: float
    interval: float

    @property
    def live(self) -> bool:
        """Written by a running gauge recently enough to trust."""
        stale_after = max(5.0, 20 * self.interval)
        return self.running and time.time() - self.sample.timestamp < stale_after


def _encode(rec: _Record, seq: int) -> bytes:
    s = rec.sample
    state = _RUNNING if rec.running else _STOPPED
    body = _RECORD.pack(
        _MAGIC, _VERSION, state, rec.pid, seq, s.ratio, rec.peak, s.rss_bytes,
        s.available_bytes, s.timestamp, rec.threshold, rec.soft, rec.interval,
    )  # fmt: skip
    return (body + _CRC.pack(zlib.crc32(body))).ljust(_RECORD_SIZE, b"\0")


def _decode(data: bytes) -> _Record | None:
    if len(data) < _RECORD.size + _CRC.size or not data.startswith(_MAGIC):
        return None
    body = data[: _RECORD.size]
    if _CRC.unpack_from(data, _RECORD.size)[0] != zlib.crc32(body):
        return None
    (_, version, state, pid, _, ratio, peak, rss, available, ts, threshold, soft, interval) = (
        _RECORD.unpack(body)
    )
    if version != _VERSION:
        return None
    sample = Sample(ratio=ratio, rss_bytes=rss, available_bytes=available, timestamp=ts)
    return _Record(sample, peak, state == _RUNNING, pid, threshold, soft, interval)


def _read_record(path: Path | str) -> _Record | None:
    try:
        with open(path, "rb", buffering=0) as f:
            for _ in range(5):  # a torn read fails the CRC; the next one will not
                f.seek(0)
                record = _decode(f.read(_RECORD_SIZE))
                if record is not None:
                    return record
    except OSError:
        pass
    return None


def read_shared(path: Path | str | None = None) -> Sample | None:
    """The latest sample a gauge published, read from its shared record (one 128-byte read).

    ``path`` defaults to the ``PYTEST_ORCHESTRATOR_PRESSURE`` environment variable. ``None``
    when there is no record, it is unreadable, or it is not a gauge's record.
    """
    where = os.environ.get(ENV_VAR) if path is None else path
    record = _read_record(where) if where else None
    return None if record is None else record.sample


@final
class PressureView:
    """A read-only view of a gauge running in another process.

    What xdist workers and Monte Carlo children use: it reads the gauge's shared record and
    never samples, signals or enforces anything itself. A record that is missing, stopped or
    stale (no write for 20 intervals) counts as "no pressure", so a dead gauge never blocks
    its children.
    """

    def __init__(self, path: Path | str) -> None:
        self.shared_path: Final = Path(path)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PressureView | None:
        """A view of the gauge named by ``PYTEST_ORCHESTRATOR_PRESSURE``, if one is running."""
        path = (os.environ if environ is None else environ).get(ENV_VAR)
        if not path:
            return None
        view = cls(path)
        return view if view.live else None

    @property
    def live(self) -> bool:
        """The gauge behind this view is running and writing."""
        record = _read_record(self.shared_path)
        return record is not None and record.live

    @property
    def latest(self) -> Sample | None:
        """The latest published sample (whatever its age), or ``None``."""
        record = _read_record(self.shared_path)
        return None if record is None else record.sample

    @property
    def ratio(self) -> float:
        """The latest published ratio; 0.0 without a record."""
        latest = self.latest
        return 0.0 if latest is None else latest.ratio

    @property
    def peak(self) -> float:
        """The peak ratio the gauge has seen; 0.0 without a record."""
        record = _read_record(self.shared_path)
        return 0.0 if record is None else record.peak

    def wait_below_soft(self, timeout: float | None = None) -> bool:
        """Block until the published ratio is below the gauge's soft mark (see the gauge's).

        Returns ``False`` if ``timeout`` seconds pass first; ``True`` at once when the gauge
        is gone or stale.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = _read_record(self.shared_path)
            if record is None or not record.live or record.sample.ratio < record.soft:
                return True
            pause = record.interval
            if deadline is not None:
                pause = min(pause, deadline - time.monotonic())
                if pause <= 0:
                    return False
            time.sleep(pause)


# --- the process tree -----------------------------------------------------------------------


def _ppid_map() -> dict[int, int]:
    """Parent of every process on the machine: the O(all processes) scan, ~10 µs each."""
    parents: dict[int, int] = {}
    if sys.platform.startswith("linux"):
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/stat", "rb") as f:
                        data = f.read()
                    parents[int(name)] = int(data[data.rindex(b")") + 2 :].split(None, 2)[1])
                except (OSError, ValueError, IndexError):
                    continue
        return parents
    import psutil

    for proc in psutil.process_iter(["ppid"]):
        ppid = proc.info.get("ppid")
        if isinstance(ppid, int):
            parents[proc.pid] = ppid
    return parents


@final
class _Proc:
    """What the gauge knows of one process in the tree."""

    __slots__ = ("handle", "pss", "rss", "rss_at_pss")

    def __init__(self, handle: Any) -> None:
        self.handle = handle  # psutil.Process
        self.rss = 0
        self.pss: int | None = None
        self.rss_at_pss = 0

    @property
    def memory(self) -> int:
        if self.pss is None:
            return self.rss
        return max(0, self.pss + self.rss - self.rss_at_pss)


@final
class _Tree:
    """Finds the root's descendants and measures them; the gauge serialises calls."""

    def __init__(self, root_pid: int, *, rescan_interval: float) -> None:
        import psutil

        self._psutil: Any = psutil
        self.root_pid = root_pid
        self.rescan_interval = rescan_interval
        self.procs: dict[int, _Proc] = {}
        self.children: dict[int, list[int]] = {}
        self._next_rescan = 0.0
        self._next_pss = 0.0
        self._has_pss = bool(psutil.LINUX) and Path(f"/proc/{os.getpid()}/smaps_rollup").exists()

    def measure(self, now: float, *, extra_roots: Collection[int], rescan: bool) -> None:
        """Refresh the membership if due and every member's memory."""
        fresh: set[int] = set()
        unknown = any(pid not in self.procs for pid in extra_roots)
        if rescan or unknown or now >= self._next_rescan:
            fresh = self._rescan(extra_roots)
            self._next_rescan = now + self.rescan_interval
        stale: list[int] = []
        for pid, proc in list(self.procs.items()):
            try:
                proc.rss = int(proc.handle.memory_info().rss)
            except self._psutil.NoSuchProcess:
                del self.procs[pid]
                continue
            except self._psutil.Error:  # access denied: skip it, keep sampling the rest
                proc.rss, proc.pss = 0, None
                continue
            if proc.pss is None or proc.rss < proc.rss_at_pss // 2:
                stale.append(pid)
        if not self._has_pss:
            return
        if now >= self._next_pss:
            started = time.thread_time()
            for member in list(self.procs.values()):
                self._read_pss(member)
            cost = time.thread_time() - started
            self._next_pss = now + max(1.0, cost / _PSS_CPU_SHARE)
            return
        # A fork changes the parent's share too; an exec shrinks the child.
        parents = {ppid for ppid, kids in self.children.items() if fresh.intersection(kids)}
        for pid in fresh | parents | set(stale):
            if pid in self.procs:
                self._read_pss(self.procs[pid])

    def subtree(self, pid: int) -> list[int]:
        """``pid`` and its known descendants."""
        found: dict[int, None] = {}
        stack = [pid]
        while stack:
            current = stack.pop()
            if current in self.procs and current not in found:
                found[current] = None
                stack.extend(self.children.get(current, ()))
        return list(found)

    def _rescan(self, extra_roots: Collection[int]) -> set[int]:
        parents = _ppid_map()
        children: dict[int, list[int]] = {}
        for pid, ppid in parents.items():
            children.setdefault(ppid, []).append(pid)
        members: set[int] = set()
        stack = [self.root_pid, *extra_roots]
        while stack:
            pid = stack.pop()
            if pid in parents and pid not in members:
                members.add(pid)
                stack.extend(children.get(pid, ()))
        self.children = {pid: children.get(pid, []) for pid in members}
        for pid in self.procs.keys() - members:
            del self.procs[pid]
        fresh = set()
        for pid in members - self.procs.keys():
            try:
                self.procs[pid] = _Proc(self._psutil.Process(pid))
            except self._psutil.Error:
                continue
            fresh.add(pid)
        return fresh

    def _read_pss(self, proc: _Proc) -> None:
        try:
            info = proc.handle.memory_full_info()
        except self._psutil.Error:
            proc.pss = None
            return
        proc.pss, proc.rss, proc.rss_at_pss = int(info.pss), int(info.rss), int(info.rss)


# --- the run record's memory timeline -------------------------------------------------------


@final
class _Timeline:
    """A bounded, peak-preserving series: each point is [seconds from start, max ratio].

    Every sample lands in a bucket; when the series outgrows ``limit`` points, neighbouring
    buckets merge (keeping their maximum) and buckets hold twice as many samples from then on.
    Memory stays bounded for runs of any length and the peak is never averaged away.
    """

    def __init__(self, limit: int = _TIMELINE_POINTS) -> None:
        self.limit = limit
        self.points: list[list[float]] = []
        self._stride = 1
        self._fill = 0

    def add(self, offset: float, ratio: float) -> None:
        if self.points and self._fill < self._stride:
            self.points[-1][1] = max(self.points[-1][1], ratio)
            self._fill += 1
            return
        self.points.append([offset, ratio])
        self._fill = 1
        if len(self.points) > self.limit:
            pairs = zip(self.points[0::2], [*self.points[1::2], [0.0, 0.0]], strict=True)
            self.points = [[a[0], max(a[1], b[1])] for a, b in pairs]
            self._stride *= 2
            self._fill = self._stride


# --- the gauge ------------------------------------------------------------------------------


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
        self._tree: _Tree | None = None
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
        if self._pressed:
            return min(self.interval, max(self.interval / 4, _FAST_INTERVAL_FLOOR))
        return self.interval

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
            now = time.monotonic()
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
        return trend, rates

    def _update(
        self,
        sample: Sample,
        now: float,
        tree: _Tree,
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
        tree: _Tree,
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
                tree.procs[pid].handle, label, members, time.monotonic() + self.kill_grace
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
                    os.killpg(group, sig)
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
