"""Nothing a run starts outlives it: the process groups it owns, and a watchdog in each.

Every process that runs the target's code (an inner test run, a Monte Carlo child) leads its
own process group, so Ctrl-C in the terminal does not reach it and nothing the orchestrator
does not do will stop it. Two mechanisms cover the orchestrator's own death:

* **The registry** (this process's side). A caller that starts such a child registers it,
  ``group = register(proc)``, right after ``Popen``, and ``release(group)`` once it has
  stopped the group. Registered groups are passed on to every attached sink — the run's
  `Worktree`, which writes them into its lease — so after a ``kill -9`` the next run knows
  which groups to stop (`pytest_orchestrator.repo.worktree.clean_stale`). `signal_all` and
  `stop_all` reach every registered group at once (Ctrl-C, cleanup).
* **The watchdog** (the child's side). The orchestrator's pid and start time travel in
  `OWNER_ENV` (`owner_env`); a child that calls `start_watchdog` checks every half second
  that this very process still runs and, once it does not, kills its own process group.
  It is a thread, not ``prctl(PR_SET_PDEATHSIG)``: that fires when the parent *thread*
  ends, and test runs are started from thread pools.

Registering costs a lease rewrite per child, well under a millisecond.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Final, Protocol

from pytest_orchestrator.guard.proctree import (
    Group,
    kill_group,
    process_start,
    same_start,
    signal_group,
    stop_group,
)

OWNER_ENV: Final = "PYTEST_ORCHESTRATOR_OWNER"
"""``<pid>:<start time>`` of the orchestrator a child belongs to."""
WATCH_INTERVAL: Final = 0.5


class GroupSink(Protocol):
    """Something that keeps a durable record of the groups a run owns (the lease)."""

    def add_group(self, group: Group) -> None: ...

    def drop_group(self, group: Group) -> None: ...


# A re-entrant lock: the Ctrl-C handler (`signal_all`) may run on the main thread while that
# same thread is inside `register`.
_lock = threading.RLock()
_groups: dict[Group, None] = {}
_sinks: list[GroupSink] = []
_closed = False
"""Set by `stop_all(close=True)` (the run's cleanup): a child a background thread starts
after it is killed at once. Otherwise that thread would wait for it (a test sleeping for
minutes) and, being joined at exit, hold the process open long after the run ended."""


def reopen() -> None:
    """A run begins: children may be started again (one process can hold several runs)."""
    global _closed
    with _lock:
        _closed = False


def attach(sink: GroupSink) -> None:
    """Record every group registered from now on in ``sink`` too."""
    with _lock:
        if sink not in _sinks:
            _sinks.append(sink)


def detach(sink: GroupSink) -> None:
    with _lock:
        if sink in _sinks:
            _sinks.remove(sink)


def register(proc: subprocess.Popen[bytes]) -> Group:
    """Register the group ``proc`` leads (it was started with ``start_new_session=True``)."""
    # an unreaped child keeps its pid, so its start time is readable even if it has exited
    group = Group(proc.pid, process_start(proc.pid, zombie=True) or 0.0)
    with _lock:
        if _closed:  # the run has stopped: nothing may start now
            kill_group(group.pgid, signal.SIGKILL)
            return group
        _groups[group] = None
        sinks = list(_sinks)
    for sink in sinks:
        sink.add_group(group)
    return group


def release(group: Group) -> None:
    """Forget a group the caller has stopped."""
    with _lock:
        _groups.pop(group, None)
        sinks = list(_sinks)
    for sink in sinks:
        sink.drop_group(group)


def registered() -> list[Group]:
    with _lock:
        return list(_groups)


def signal_all(sig: int = signal.SIGTERM) -> None:
    """Signal every registered group without waiting (safe inside a signal handler)."""
    for group in registered():
        signal_group(group, sig)


def stop_all(grace: float = 1.0, *, close: bool = False) -> None:
    """Stop every registered group and wait until they are gone (cleanup, interruption);
    with ``close``, a group registered from now on is killed at once (until `reopen`)."""
    global _closed
    if close:
        with _lock:
            _closed = True
    for group in registered():
        signal_group(group, signal.SIGTERM)
    for group in registered():
        stop_group(group, grace=grace)
        release(group)


# ---------------------------------------------------------------------------- the watchdog


def owner_env() -> dict[str, str]:
    """The environment entry that ties a child to this process (see `start_watchdog`)."""
    return {OWNER_ENV: f"{os.getpid()}:{process_start(os.getpid())!r}"}


def parse_owner(value: str) -> Group | None:
    """The owner named by an `OWNER_ENV` value, as a pid and start time; None if malformed."""
    pid, _, started = value.partition(":")
    try:
        return Group(int(pid), float(started))
    except ValueError:
        return None


def owner_alive(owner: Group) -> bool:
    started = process_start(owner.pgid)
    return started is not None and same_start(started, owner.started)


def start_watchdog(interval: float = WATCH_INTERVAL) -> threading.Thread | None:
    """In a child: end this process group once the orchestrator named in `OWNER_ENV` is gone.

    A no-op without the variable (a plain pytest run loading the plugin). Returns the
    daemon thread, for tests.
    """
    owner = parse_owner(os.environ.get(OWNER_ENV, ""))
    if owner is None:
        return None
    thread = threading.Thread(
        target=_watch, args=(owner, interval), name="orchestrator-watchdog", daemon=True
    )
    thread.start()
    return thread


def _watch(owner: Group, interval: float) -> None:
    while owner_alive(owner):
        time.sleep(interval)
    _end_own_group()


def _end_own_group() -> None:
    """SIGKILL this process's group — but only a group that leads its own session, as every
    child started by the orchestrator does; anywhere else only this process ends."""
    group = os.getpgrp()
    if group == os.getsid(0) and group > 1:
        kill_group(group, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
