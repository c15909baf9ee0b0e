"""Process groups: one way to stop them, never a stranger's, and a watchdog in each child."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_orchestrator.guard import containment
from pytest_orchestrator.guard.proctree import Group, group_alive, process_start, stop_group
from pytest_orchestrator.repo.worktree import Worktree
from tests.conftest import git

# The leader starts a grandchild in its own group, prints the grandchild's pid, then waits
# for its stdin to close.
LEADER = """\
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
print(child.pid, flush=True)
sys.stdin.read()
"""


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition never held")
        time.sleep(0.05)


def gone(pid: int) -> bool:
    return process_start(pid) is None  # zombies count as gone


@pytest.fixture
def leader() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A group leader (own session) and the pid of the grandchild it started."""
    proc = subprocess.Popen(
        [sys.executable, "-c", LEADER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None
    grandchild = int(proc.stdout.readline())
    yield proc, grandchild
    for pid in (proc.pid, grandchild):
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


def test_stop_group_ends_the_leader_and_everything_it_started(
    leader: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, grandchild = leader
    group = Group(proc.pid, process_start(proc.pid) or 0.0)
    assert group_alive(group)
    assert stop_group(group, grace=1.0, leader=proc)
    assert proc.returncode is not None
    assert gone(grandchild)
    assert not group_alive(group)


def test_a_group_is_stopped_after_its_leader_exited(
    leader: tuple[subprocess.Popen[bytes], int],
) -> None:
    """What a killed run leaves: the leader is gone, its group lives on in a grandchild."""
    proc, grandchild = leader
    group = Group(proc.pid, process_start(proc.pid) or 0.0)
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait()
    assert not gone(grandchild)
    assert stop_group(group, grace=1.0)
    assert gone(grandchild)


def test_a_pid_with_another_start_time_is_never_signalled(
    leader: tuple[subprocess.Popen[bytes], int],
) -> None:
    """A recorded group whose pid now names another process (pid reuse) is left alone."""
    proc, grandchild = leader
    stranger = Group(proc.pid, (process_start(proc.pid) or 0.0) - 100.0)
    assert not group_alive(stranger)
    assert stop_group(stranger, grace=1.0)
    assert proc.poll() is None
    assert not gone(grandchild)


WATCHED = """\
import subprocess, sys, time
from pytest_orchestrator.guard.containment import start_watchdog
assert start_watchdog(interval=0.1) is not None
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
print(child.pid, flush=True)
time.sleep(300)
"""

# The owner starts the watched child in its own session, as the orchestrator does, and
# reports both pids; then it waits to be killed.
OWNER = f"""\
import os, subprocess, sys, time
from pytest_orchestrator.guard.containment import owner_env
env = {{**os.environ, **owner_env()}}
child = subprocess.Popen(
    [sys.executable, "-c", {WATCHED!r}], env=env, stdout=subprocess.PIPE,
    start_new_session=True,
)
print(child.pid, child.stdout.readline().decode().strip(), flush=True)
time.sleep(300)
"""


def test_a_child_ends_its_group_once_its_owner_is_killed() -> None:
    """The watchdog: kill -9 of the owner (no cleanup of any kind) ends the child's group."""
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE)
    assert owner.stdout is not None
    child, grandchild = map(int, owner.stdout.readline().split())
    try:
        assert not gone(child)
        assert not gone(grandchild)
        owner.kill()
        owner.wait()
        wait_for(lambda: gone(child) and gone(grandchild), timeout=30)
    finally:
        for pid in (child, grandchild):
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_without_an_owner_there_is_no_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain pytest run loading the inner plugin is not watched."""
    monkeypatch.delenv(containment.OWNER_ENV, raising=False)
    assert containment.start_watchdog() is None
    monkeypatch.setenv(containment.OWNER_ENV, "garbage")
    assert containment.start_watchdog() is None


def test_the_owner_identity_names_this_process() -> None:
    owner = containment.parse_owner(containment.owner_env()[containment.OWNER_ENV])
    assert owner is not None
    assert owner.pgid == os.getpid()
    assert containment.owner_alive(owner)
    assert not containment.owner_alive(owner._replace(started=owner.started - 100.0))


def test_registered_groups_are_recorded_in_the_lease(
    make_repo: Callable[..., Path], leader: tuple[subprocess.Popen[bytes], int]
) -> None:
    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = Worktree.create(repo, head, "Rename add to plus", "run1")
    proc, _ = leader
    try:
        group = containment.register(proc)
        recorded = json.loads(tree.lease.read_text())["groups"]
        assert recorded == [[proc.pid, group.started]]
        assert group.started == process_start(proc.pid)
        stop_group(group, grace=1.0, leader=proc)
        containment.release(group)
        assert json.loads(tree.lease.read_text())["groups"] == []
    finally:
        tree.remove()
    assert group not in containment.registered()


def test_a_child_started_after_the_cleanup_is_killed_at_once() -> None:
    """A background thread (the baseline's, a gate's) may start its child after an interrupted
    run's cleanup stopped every group: it must not live on, nor keep that thread (joined at
    exit) waiting for it. A new run reopens the registry."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(300)"]
    containment.stop_all(grace=0.1, close=True)
    try:
        late = subprocess.Popen(sleeper, start_new_session=True)
        group = containment.register(late)
        assert late.wait(timeout=30) == -signal.SIGKILL
        assert group not in containment.registered()
    finally:
        containment.reopen()
    again = subprocess.Popen(sleeper, start_new_session=True)
    group = containment.register(again)
    try:
        assert again.poll() is None
        assert group in containment.registered()
    finally:
        stop_group(group, grace=0.1)
        containment.release(group)
        again.wait(timeout=30)
