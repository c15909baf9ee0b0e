"""What the memory gauge publishes: the shared record children read, and the run timeline.

:class:`~pytest_orchestrator.guard.pressure.PressureGauge` rewrites, after every sample, a 128-byte
record in a file whose path it exports in the ``PYTEST_ORCHESTRATOR_PRESSURE`` environment
variable (:data:`ENV_VAR`). Child processes (xdist workers, Monte Carlo children) read it with
:func:`read_shared` or through a :class:`PressureView`; they never sample anything themselves.

For the run record (``run.json``) the gauge keeps a bounded, peak-preserving timeline of its
samples (``_Timeline``).
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, final

__all__ = ["ENV_VAR", "PressureView", "Sample", "read_shared"]

ENV_VAR: Final = "PYTEST_ORCHESTRATOR_PRESSURE"
"""Environment variable naming the shared record's path, for child processes."""
_TIMELINE_POINTS: Final = 600


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
