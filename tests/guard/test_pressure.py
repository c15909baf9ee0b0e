"""The memory gauge: what it measures, where it publishes, and how it stops a runaway child."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_orchestrator.guard.pressure import (
    ENV_VAR,
    PressureEvent,
    PressureGauge,
    PressureView,
    Sample,
    _Proc,
    _Timeline,
    _why_act,
    available_memory_bytes,
    cgroup_limit_bytes,
    physical_memory_bytes,
    read_shared,
)
from tests.guard.pressure_helpers import MiB, tree_bytes

ROOT = Path(__file__).resolve().parents[2]
THREAD_NAME = "pytest-orchestrator-pressure"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PSS is Linux's")
pytestmark = pytest.mark.usefixtures("no_inherited_gauge")

ALLOCATE_AND_WAIT = """
import sys
buf = bytearray(b"\\x01") * int(sys.argv[1])  # written, so resident
print("ready", flush=True)
sys.stdin.read()
"""

FORK_AND_WAIT = """
import os, sys, time
buf = bytearray(b"\\x01") * int(sys.argv[1])
for _ in range(3):
    if os.fork() == 0:  # children share buf's pages copy-on-write
        time.sleep(120)
        os._exit(0)
print("ready", flush=True)
sys.stdin.read()
"""


@contextmanager
def child(code: str, *args: object, **popen: object) -> Iterator[subprocess.Popen[str]]:
    """A Python child running ``code``; waits for its "ready" line, kills its group after."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **popen,  # type: ignore[call-overload]
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):  # a test may have stopped it already
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


# --- measuring ------------------------------------------------------------------------------


def test_the_gauge_sees_a_childs_memory() -> None:
    """A child that allocates 256 MiB adds about 256 MiB to the sample, and leaves with it."""
    gauge = PressureGauge(export_env=False, rescan_interval=0.0)
    before = gauge.sample().rss_bytes
    with child(ALLOCATE_AND_WAIT, 256 * MiB):
        during = gauge.sample().rss_bytes
    after = gauge.sample().rss_bytes
    assert 256 * MiB <= during - before < 256 * MiB + 64 * MiB
    assert after < before + 32 * MiB


@linux_only
def test_forked_children_are_not_counted_twice() -> None:
    """Three forked children sharing a parent's 128 MiB count it once (PSS), not four times."""
    with child(FORK_AND_WAIT, 128 * MiB) as proc:
        tree = psutil.Process(proc.pid)
        members = [tree, *tree.children(recursive=True)]
        summed_rss = sum(p.memory_info().rss for p in members)
        measured = tree_bytes(root_pid=proc.pid)
    assert len(members) == 4
    assert summed_rss >= 4 * 128 * MiB
    assert 128 * MiB <= measured < 128 * MiB + 96 * MiB


def test_available_memory_is_physical_memory_or_a_tighter_cgroup_limit() -> None:
    """Available memory is positive and never more than the RAM installed."""
    limit = cgroup_limit_bytes()
    expected = physical_memory_bytes() if limit is None else min(limit, physical_memory_bytes())
    assert available_memory_bytes() == expected > 0


def fake_proc(tmp_path: Path, cgroup: str, mounts: list[tuple[str, str, str, str]]) -> Path:
    """A /proc/self with the given cgroup membership and mounts (root, point, fstype, opts)."""
    proc_self = tmp_path / "proc-self"
    proc_self.mkdir()
    (proc_self / "cgroup").write_text(cgroup)
    lines = [
        f"{30 + i} 1 0:{30 + i} {root} {point} rw,relatime shared:1 - {fstype} {fstype} {opts}"
        for i, (root, point, fstype, opts) in enumerate(mounts)
    ]
    (proc_self / "mountinfo").write_text("\n".join(lines) + "\n")
    return proc_self


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def test_a_cgroup_v2_limit_on_an_ancestor_binds(tmp_path: Path) -> None:
    """The tightest memory.max from the process's cgroup up to the mount is the limit."""
    mount = tmp_path / "cgroup2"
    write(mount / "jobs" / "memory.max", str(512 * MiB))
    write(mount / "jobs" / "run" / "memory.max", "max")
    proc_self = fake_proc(tmp_path, "0::/jobs/run\n", [("/", str(mount), "cgroup2", "rw")])
    assert cgroup_limit_bytes(proc_self) == 512 * MiB


def test_a_cgroup_v1_memory_limit_is_read(tmp_path: Path) -> None:
    """cgroup v1: memory.limit_in_bytes of the memory hierarchy, seen through the mount root."""
    mount = tmp_path / "memory"
    write(mount / "memory.limit_in_bytes", "9223372036854771712")  # v1's "unlimited"
    write(mount / "task" / "memory.limit_in_bytes", str(300 * MiB))
    proc_self = fake_proc(
        tmp_path,
        "5:cpu,cpuacct:/\n4:memory:/docker/abc/task\n0::/\n",
        [("/docker/abc", str(mount), "cgroup", "rw,memory"), ("/", "/nonexistent", "cgroup2", "")],
    )
    assert cgroup_limit_bytes(proc_self) == 300 * MiB


def test_no_cgroups_means_no_limit(tmp_path: Path) -> None:
    """Unlimited cgroups, or no cgroup files at all, give no limit."""
    mount = tmp_path / "cgroup2"
    write(mount / "memory.max", "max")
    proc_self = fake_proc(tmp_path, "0::/\n", [("/", str(mount), "cgroup2", "rw")])
    assert cgroup_limit_bytes(proc_self) is None
    assert cgroup_limit_bytes(tmp_path / "missing") is None


def test_a_vanished_root_or_guarded_child_does_not_stop_sampling() -> None:
    """Processes that are gone are skipped; the gauge keeps sampling."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    gauge = PressureGauge(root_pid=gone.pid, export_env=False, available_bytes=MiB)
    gauge.guard(gone.pid + 1_000_000, label="never existed")
    assert gauge.sample().rss_bytes == 0
    assert gauge.sample().ratio == 0.0


class DeniedProcess:
    """A process psutil may not read (what an unprivileged gauge meets for foreign pids)."""

    pid = 2**22 + 1

    def memory_info(self) -> object:
        raise psutil.AccessDenied(self.pid)

    memory_full_info = memory_info


def test_a_process_that_denies_access_is_skipped_and_sampling_goes_on() -> None:
    """A member psutil may not read counts as zero; the rest of the tree is still measured."""
    gauge = PressureGauge(export_env=False, rescan_interval=3600.0)
    alone = gauge.sample().rss_bytes
    assert gauge._tree is not None
    gauge._tree.procs[DeniedProcess.pid] = _Proc(DeniedProcess())
    again = gauge.sample()
    assert again.rss_bytes > 0
    assert abs(again.rss_bytes - alone) < 16 * MiB


# --- publishing -----------------------------------------------------------------------------


def test_subscribers_fire_at_the_threshold() -> None:
    """Over the threshold a subscriber gets the sample and the soft/threshold events fire."""
    gauge = PressureGauge(threshold=0.5, available_bytes=tree_bytes(), export_env=False)
    samples: list[Sample] = []
    events: list[PressureEvent] = []
    gauge.subscribe(samples.append)
    gauge.on_event(events.append)
    sample = gauge.sample()
    assert samples == [sample]
    assert sample.ratio >= 0.5
    assert [e.kind for e in events] == ["soft", "threshold"]
    assert gauge.events == events


def test_subscribers_are_called_from_the_sampling_thread() -> None:
    """A running gauge calls subscribers on its own thread, until they unsubscribe."""
    called = threading.Event()
    threads: set[str] = set()

    def on_sample(_: object) -> None:
        threads.add(threading.current_thread().name)
        if threading.current_thread().name == THREAD_NAME:
            called.set()

    with PressureGauge(interval=0.01, export_env=False) as gauge:
        unsubscribe = gauge.subscribe(on_sample)
        assert called.wait(timeout=30)
        unsubscribe()
        calls = len(threads)
        threads.clear()
        gauge.sample()
    assert calls == 1
    assert threads == set()


def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    """A subscriber that raises is logged; the next one still gets the sample."""
    gauge = PressureGauge(export_env=False)
    seen: list[Sample] = []

    def broken(_: object) -> None:
        raise RuntimeError("boom")

    gauge.subscribe(broken)
    gauge.subscribe(seen.append)
    sample = gauge.sample()
    assert seen == [sample]


def test_a_child_process_reads_the_shared_record() -> None:
    """A child finds the record through the environment and reads the gauge's sample."""
    with PressureGauge(interval=0.05) as gauge:
        assert os.environ[ENV_VAR] == str(gauge.shared_path)
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "from pytest_orchestrator.guard.pressure import read_shared\n"
                "s = read_shared()\n"
                "print(s.available_bytes, s.ratio > 0, s.rss_bytes > 0)",
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=True,
        )
    assert out.stdout.split() == [str(gauge.available_bytes), "True", "True"]


def test_read_shared_is_none_without_a_record(tmp_path: Path) -> None:
    """No env var, a missing file or a file that is not a record all read as None."""
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(os.urandom(128))
    assert read_shared() is None
    assert read_shared(tmp_path / "missing.bin") is None
    assert read_shared(garbage) is None


def test_a_view_waits_while_the_gauge_is_above_soft_and_not_after_it_stops() -> None:
    """Scan work in a worker waits above the soft mark; a stopped gauge releases it."""
    gauge = PressureGauge(threshold=0.5, available_bytes=tree_bytes(), interval=0.05)
    with gauge:
        view = PressureView.from_env()
        assert view is not None
        assert view.live
        assert view.ratio >= gauge.soft
        assert view.peak >= view.ratio
        assert view.wait_below_soft(timeout=0.1) is False
    assert not view.live
    assert view.wait_below_soft() is True
    assert PressureView.from_env() is None


def test_scan_work_waits_above_the_soft_mark() -> None:
    """wait_below_soft times out above soft, passes below it, and never blocks when stopped."""
    high = PressureGauge(threshold=0.5, available_bytes=tree_bytes(), export_env=False)
    low = PressureGauge(export_env=False)
    with high, low:
        assert high.wait_below_soft(timeout=0.1) is False
        assert low.wait_below_soft(timeout=0.1) is True
    assert high.wait_below_soft() is True


def test_the_run_record_is_compact_builtins_with_the_peak() -> None:
    """record() survives JSON, holds at most 600 points, and its series contains the peak."""
    gauge = PressureGauge(export_env=False, rescan_interval=3600.0)
    for _ in range(1500):
        gauge.sample()
    record = gauge.record()
    assert json.loads(json.dumps(record)) == record
    samples = record["samples"]
    assert isinstance(samples, list)
    assert 300 <= len(samples) <= 600
    assert record["sample_count"] == 1500
    assert max(r for _, r in samples) == record["peak_ratio"]
    assert record["peak_rss_bytes"] == gauge.peak_sample.rss_bytes  # type: ignore[union-attr]


@given(st.lists(st.floats(0, 2, allow_nan=False), max_size=3000))
def test_the_timeline_is_bounded_ordered_and_keeps_the_peak(ratios: list[float]) -> None:
    """Downsampling keeps at most 600 points in time order and never loses the maximum."""
    timeline = _Timeline()
    for t, ratio in enumerate(ratios):
        timeline.add(float(t), ratio)
    times = [t for t, _ in timeline.points]
    assert len(timeline.points) <= 600
    assert times == sorted(times)
    assert max((r for _, r in timeline.points), default=None) == max(ratios, default=None)


# --- enforcing ------------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeTree:
    """The gauge's process tree with injected samples: ``memory`` maps real pids (so the
    gauge's signals are real) to the bytes the next sample reports for them."""

    def __init__(self, memory: dict[int, int]) -> None:
        self.memory = memory
        self.procs: dict[int, _Proc] = {}

    def measure(self, now: float, *, extra_roots: object, rescan: bool) -> None:
        for pid in self.procs.keys() - self.memory.keys():
            del self.procs[pid]
        for pid, size in self.memory.items():
            self.procs.setdefault(pid, _Proc(psutil.Process(pid))).rss = size

    def subtree(self, pid: int) -> list[int]:
        return [pid] if pid in self.procs else []


SLEEPER = "import sys\nprint('ready', flush=True)\nsys.stdin.read()\n"
IGNORES_SIGTERM = (
    "import signal, sys\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\nsys.stdin.read()\n"
)
ROOT_BYTES = 105 * MiB


def scripted_gauge(
    hog_pid: int, *, threshold: float = 0.5, margin: float = 0.05, interval: float = 0.1
) -> tuple[PressureGauge, FakeTree, FakeClock]:
    """A gauge over 1000 MiB whose tree is this process (105 MiB) and a guarded hog (0 MiB)."""
    tree, clock = FakeTree({os.getpid(): ROOT_BYTES, hog_pid: 0}), FakeClock()
    gauge = PressureGauge(interval=interval, threshold=threshold, margin=margin,
                          available_bytes=1000 * MiB, export_env=False, tree=tree,
                          clock=clock, kill_grace=1.0)  # fmt: skip
    gauge.guard(hog_pid, label="montecarlo shard 3")
    return gauge, tree, clock


def grow_until_stopped(
    gauge: PressureGauge, tree: FakeTree, clock: FakeClock, hog_pid: int, step: int, dt: float
) -> list[Sample]:
    """Samples every ``dt`` seconds while the hog grows ``step`` bytes a sample, up to the
    sample at which the gauge stops it (at most 100 samples)."""
    samples = [gauge.sample()]
    while not any(e.kind == "stopped_child" for e in gauge.events) and len(samples) < 100:
        clock.now += dt
        tree.memory[hog_pid] += step
        samples.append(gauge.sample())
    return samples


def test_a_steadily_growing_child_is_stopped_at_the_margin_below_the_threshold() -> None:
    """Given samples of a child growing 30 MiB per 50 ms: soft at ratio 0.405, then it is
    stopped at the first sample within the margin (0.465 >= 0.50 - 0.05), before the line."""
    with child(SLEEPER) as proc:
        gauge, tree, clock = scripted_gauge(proc.pid)
        samples = grow_until_stopped(gauge, tree, clock, proc.pid, 30 * MiB, 0.05)
        assert [round(s.ratio, 3) for s in samples[-4:]] == [0.375, 0.405, 0.435, 0.465]
        assert proc.wait(timeout=30) == -signal.SIGTERM
        del tree.memory[proc.pid]
        clock.now += 0.05
        gauge.sample()
    assert gauge.peak == pytest.approx(0.465)
    assert gauge.peak < gauge.threshold
    assert [e.kind for e in gauge.events] == ["soft", "threshold", "stopped_child", "recovered"]
    stopped = gauge.events[2]
    assert stopped.ratio == pytest.approx(0.465)
    assert "montecarlo shard 3" in stopped.detail
    assert "ratio 0.465 >= threshold - margin 0.45" in stopped.detail
    record = json.loads(json.dumps(gauge.record()))
    assert [e["kind"] for e in record["events"]] == ["soft", "threshold", "stopped_child",
                                                     "recovered"]  # fmt: skip


def test_a_fast_child_is_stopped_on_its_predicted_ratio_while_still_below_soft() -> None:
    """Given a child growing 150 MiB per 50 ms (3 GiB/s), the second sample (ratio 0.255)
    predicts 0.555 at the next one, over the line: it is stopped then, below even soft."""
    with child(SLEEPER) as proc:
        gauge, tree, clock = scripted_gauge(proc.pid)
        samples = grow_until_stopped(gauge, tree, clock, proc.pid, 150 * MiB, 0.05)
        assert proc.wait(timeout=30) == -signal.SIGTERM
    assert [round(s.ratio, 3) for s in samples] == [0.105, 0.255]
    assert [e.kind for e in gauge.events] == ["threshold", "stopped_child"]
    assert "predicted ratio 0.555 at the next sample >= threshold 0.50" in gauge.events[1].detail
    assert gauge.peak < gauge.soft


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    """SIGTERM first; SIGKILL at the first sample after ``kill_grace`` seconds (fake clock)."""
    with child(IGNORES_SIGTERM) as proc:
        gauge, tree, clock = scripted_gauge(proc.pid)
        grow_until_stopped(gauge, tree, clock, proc.pid, 30 * MiB, 0.05)
        for _ in range(3):  # within the grace: still alive, whatever the wall clock does
            clock.now += 0.25
            gauge.sample()
        assert proc.poll() is None
        clock.now += 0.3
        gauge.sample()
        assert proc.wait(timeout=30) == -signal.SIGKILL


@pytest.mark.parametrize(
    ("ratio", "predicted", "why"),
    [
        (0.50, 0.66, None),  # far from the line, slow trend: nothing to do
        (0.60, 0.71, "predicted ratio 0.710 at the next sample >= threshold 0.70"),
        (0.69, 0.69, "ratio 0.690 >= threshold - margin 0.68"),
    ],
)
def test_the_gauge_acts_on_the_predicted_or_the_near_crossing(
    ratio: float, predicted: float, why: str | None
) -> None:
    """Act when the next sample is predicted over the threshold, or within the margin of it."""
    assert _why_act(ratio, predicted, threshold=0.70, margin=0.02) == why


def test_unguarded_children_are_never_signalled() -> None:
    """Over the threshold, a child nobody guarded keeps running."""
    with child(ALLOCATE_AND_WAIT, 16 * MiB) as proc:
        gauge = PressureGauge(
            threshold=0.5, available_bytes=tree_bytes(), export_env=False, rescan_interval=0.0
        )
        gauge.sample()
        assert gauge.events[-1].kind == "threshold"
        assert proc.poll() is None


def test_guarding_the_gauges_own_root_is_refused() -> None:
    """The gauge will not guard (and so never signals) its own process."""
    gauge = PressureGauge(export_env=False)
    with pytest.raises(ValueError, match="own root"):
        gauge.guard(os.getpid(), label="me")


# --- lifecycle ------------------------------------------------------------------------------


def gauge_threads() -> int:
    return sum(t.name == THREAD_NAME for t in threading.enumerate())


def test_start_and_stop_are_idempotent_and_leave_no_thread_behind() -> None:
    """Starting twice runs one thread; stopping joins it, restores the env, removes the file."""
    gauge = PressureGauge(interval=0.01)
    gauge.start()
    gauge.start()
    assert gauge_threads() == 1
    assert gauge.shared_path.exists()
    assert gauge.latest is not None
    gauge.stop()
    gauge.stop()
    assert gauge_threads() == 0
    assert ENV_VAR not in os.environ
    assert not gauge.shared_path.exists()
    with gauge:
        assert gauge.running
        assert gauge_threads() == 1
    assert gauge_threads() == 0


def test_a_given_shared_path_is_kept_and_marked_stopped(tmp_path: Path) -> None:
    """A caller's shared path survives stop(), holding the last sample, no longer live."""
    path = tmp_path / "pressure.bin"
    with PressureGauge(shared_path=path, export_env=False) as gauge:
        pass
    assert read_shared(path) == gauge.latest
    assert not PressureView(path).live


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": 0.5, "soft": 0.6}, "soft"),
        ({"interval": 0.0}, "interval"),
        ({"available_bytes": -1}, "available_bytes"),
    ],
)
def test_nonsense_settings_are_rejected(kwargs: dict[str, float], message: str) -> None:
    """Thresholds outside (0, 1], soft above threshold, a zero interval: ValueError."""
    with pytest.raises(ValueError, match=message):
        PressureGauge(**kwargs)  # type: ignore[arg-type]


# --- sampling more slowly far below the soft mark -------------------------------------------


def idle_gauge(ratio: float) -> tuple[PressureGauge, FakeTree, FakeClock]:
    """A gauge over 1000 MiB (threshold 0.70, soft 0.60, margin 0.02, interval 0.25) whose
    tree holds ``ratio`` of it, after one sample."""
    tree, clock = FakeTree({os.getpid(): int(ratio * 1000 * MiB)}), FakeClock()
    gauge = PressureGauge(available_bytes=1000 * MiB, export_env=False, tree=tree, clock=clock)
    gauge.sample()
    return gauge, tree, clock


@pytest.mark.parametrize(
    ("ratio", "intervals"),
    [
        (0.05, 8.0),  # far below: the slowest cadence
        (0.50, 5.0),  # 0.10 of headroom, 0.02 a sample: five intervals
        (0.59, 1.0),  # within one margin of soft: the normal cadence
        (0.65, 0.25),  # above soft: 4x faster
    ],
)
def test_the_cadence_follows_the_headroom_to_the_soft_mark(ratio: float, intervals: float) -> None:
    gauge, _, _ = idle_gauge(ratio)
    assert gauge._next_interval() == pytest.approx(intervals * gauge.interval)


def test_a_growing_tree_is_sampled_sooner() -> None:
    """At 0.30 idle: 8 intervals. At 0.30 after growing 40 MiB/s (0.01 of 1000 MiB per
    0.25 s interval, on top of the margin's 0.02): 0.30 / 0.03 = 10 intervals' growth fits,
    capped at 8; after growing 200 MiB/s (0.05 an interval): 0.30 / 0.07 = 4.3 intervals."""
    gauge, tree, clock = idle_gauge(0.30)
    assert gauge._next_interval() == pytest.approx(8 * gauge.interval)
    for rate, intervals in ((40, 8.0), (200, 0.30 / 0.07)):
        gauge, tree, clock = idle_gauge(0.30 - rate / 1000)
        clock.now += 1.0
        tree.memory[os.getpid()] += rate * MiB
        gauge.sample()
        assert gauge.ratio == pytest.approx(0.30, abs=1e-3)
        assert gauge._next_interval() == pytest.approx(intervals * gauge.interval, rel=0.01)


@given(
    ratio=st.floats(0.0, 0.599),
    trend=st.floats(0.0, 4000.0),  # MiB/s
)
def test_below_soft_the_next_sample_comes_before_the_soft_mark_can_be_reached(
    ratio: float, trend: float
) -> None:
    """Growing at its trend plus the margin's rate, the tree reaches at most the soft mark by
    the next sample, or the gauge keeps its normal cadence (where the threshold's own
    guarantee applies)."""
    gauge, _, _ = idle_gauge(ratio)
    gauge._trend = trend * MiB
    wait = gauge._next_interval()
    assert gauge.interval <= wait <= 8 * gauge.interval
    grown = ratio + (gauge.margin / gauge.interval + trend / 1000) * wait
    assert wait == pytest.approx(gauge.interval) or grown <= gauge.soft + 1e-9


def test_a_child_growing_as_fast_as_the_margin_allows_is_still_stopped_below_the_threshold() -> (
    None
):
    """Sampled at the gauge's own cadence (fake clock), a guarded child that starts growing
    right after a slow sample at 0.02 of memory per 0.25 s (80 MiB/s here) is stopped
    before the ratio reaches the threshold; the samples came up to 2 s apart before."""
    with child(SLEEPER) as proc:
        tree, clock = FakeTree({os.getpid(): 50 * MiB, proc.pid: 0}), FakeClock()
        gauge = PressureGauge(available_bytes=1000 * MiB, export_env=False, tree=tree,
                              clock=clock, kill_grace=1.0)  # fmt: skip
        gauge.guard(proc.pid, label="tests (gate1)")
        gauge.sample()
        waits = []
        while not any(e.kind == "stopped_child" for e in gauge.events) and len(waits) < 500:
            wait = gauge._next_interval()
            waits.append(wait)
            clock.now += wait
            tree.memory[proc.pid] += int(80 * MiB * wait)
            gauge.sample()
        assert proc.wait(timeout=30) == -signal.SIGTERM
    assert max(waits) == pytest.approx(8 * gauge.interval)
    assert gauge.peak < gauge.threshold
