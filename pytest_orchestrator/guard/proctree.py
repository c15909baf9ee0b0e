"""The process tree the memory gauge measures: the root's descendants and their memory.

Used is the sum over the tree of each process's PSS (proportional set size: a page shared by
n processes counts 1/n in each), so the copy-on-write pages of a forked child count once
rather than once per process as summed RSS would. Reading PSS makes the kernel walk page
tables (~10 ms per GiB resident), so a process's PSS is read when it appears, when its RSS
halves (an ``exec``), and otherwise only as often as 1 % of a core allows (and at most once a
second). Between reads a process counts as ``PSS at last read + (RSS now - RSS at last
read)``; RSS comes from ``statm`` (~10 µs). Without PSS (not Linux) RSS is used.

Finding descendants means reading every process's parent (~1 ms per 100 processes), so the
gauge rescans once a second (every sample above the soft mark) and in between samples the
processes it knows. Processes that vanish or deny access are skipped.

Those names are private: only :mod:`pytest_orchestrator.guard.pressure` (and its tests and
benchmark) use them. psutil is imported when a tree is first built, never at import.

The public part is the one way to stop a process group (`stop_group`; `kill_group` is the one
``os.killpg`` under it, for callers that must only send a signal). Every child that runs
the target's code leads its own group, so a group is what a run stops: on a timeout, at a
cap, on Ctrl-C, and in the next run after a ``kill -9``. The last case signals a group this
process did not start, so a group is named by its leader's pid *and start time* (`Group`): a
pid the system reused for something else is never signalled. Zombies count as gone: they
hold no resources, and an init that does not reap would otherwise keep a group "alive"
forever.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol, final

__all__ = [
    "Group",
    "group_alive",
    "kill_group",
    "process_start",
    "same_start",
    "signal_group",
    "stop_group",
]

_PSS_CPU_SHARE: Final = 0.01


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


class _ProcessTree(Protocol):
    """What the gauge needs of a process tree (`_Tree` is the real one; tests inject samples)."""

    procs: dict[int, _Proc]

    def measure(self, now: float, *, extra_roots: Collection[int], rescan: bool) -> None: ...

    def subtree(self, pid: int) -> list[int]: ...


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


# ---------------------------------------------------------------------------- process groups


class Group(NamedTuple):
    """A process group, named by its leader: ``pgid`` is the leader's pid, ``started`` its
    start time as `process_start` reports it (so a reused pid is told apart)."""

    pgid: int
    started: float


_START_TOLERANCE: Final = 0.005
"""Two reads of one process's start time agree to the clock tick (1/100 s on Linux): a
smaller difference is the same process."""


def _stat(pid: int) -> tuple[str, int, float] | None:
    """``(state, pgid, start)`` of ``pid``, zombies included; None when there is no such pid."""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
            fields = data[data.rindex(b")") + 2 :].split()
            ticks = os.sysconf("SC_CLK_TCK")
            return fields[0].decode(), int(fields[2]), int(fields[19]) / ticks
        except (OSError, ValueError, IndexError):
            return None
    import psutil

    try:
        proc = psutil.Process(pid)
        state = "Z" if proc.status() == psutil.STATUS_ZOMBIE else "R"
        return state, os.getpgid(pid), float(proc.create_time())
    except (psutil.Error, OSError):
        return None


def process_start(pid: int, *, zombie: bool = False) -> float | None:
    """When ``pid`` started (seconds, comparable only with this function's other answers);
    None when it is gone, or a zombie unless ``zombie`` is true."""
    stat = _stat(pid)
    return None if stat is None or (stat[0] == "Z" and not zombie) else stat[2]


def same_start(a: float, b: float) -> bool:
    return abs(a - b) < _START_TOLERANCE


def _pids() -> list[int]:
    if sys.platform.startswith("linux"):
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    import psutil

    return list(psutil.pids())


def _members(group: Group) -> list[int]:
    """The live (non-zombie) processes of ``group``, or none when the group is not ours.

    The kernel never hands out a pid that is still some group's id, so: if the leader's pid
    is taken by a process with another start time, our group is gone; if the pid is free,
    whoever is left in the group started after the leader (anything older is not ours).
    """
    if group.pgid <= 1 or group.pgid == os.getpgrp():
        return []
    leader = _stat(group.pgid)
    if leader is not None and not same_start(leader[2], group.started):
        return []
    members = []
    for pid in _pids():
        stat = _stat(pid)
        if stat is None or stat[1] != group.pgid or stat[0] == "Z":
            continue
        if leader is None and stat[2] < group.started - _START_TOLERANCE:
            return []
        members.append(pid)
    return members


def group_alive(group: Group) -> bool:
    """Some process of ``group`` still runs."""
    return bool(_members(group))


def kill_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to process group ``pgid`` as it is now, without checking whose it is;
    True if sent. Only `os` is used: safe in a watchdog thread or at exit."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def signal_group(group: Group, sig: int) -> bool:
    """Send ``sig`` to the whole group if it is still ours and alive; True if sent."""
    return bool(_members(group)) and kill_group(group.pgid, sig)


def stop_group(
    group: Group,
    *,
    grace: float = 3.0,
    leader: subprocess.Popen[Any] | None = None,
    timeout: float = 10.0,
) -> bool:
    """Stop every process of ``group``: SIGTERM, up to ``grace`` seconds to exit (0: none),
    then SIGKILL; return once none is left (True) or after ``timeout`` (False).

    The final SIGKILL always goes out, because a group's members (xdist workers, a test's
    own subprocesses) can outlive the leader. ``leader``, when this process started it, is
    reaped too. Safe to call for a group that is long gone.
    """
    if grace > 0 and signal_group(group, signal.SIGTERM):
        _wait(group, leader, grace)
    signal_group(group, signal.SIGKILL)
    if leader is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            leader.wait(timeout=timeout)
    return _wait(group, leader, timeout)


def _wait(group: Group, leader: subprocess.Popen[Any] | None, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if leader is not None:
            leader.poll()  # reap it as soon as it exits
        if not group_alive(group):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
