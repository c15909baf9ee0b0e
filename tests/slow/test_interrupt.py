"""Ctrl-C and SIGTERM mid-run leave the user's repository exactly as it was."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from pytest_orchestrator.guard.proctree import Group, group_alive
from pytest_orchestrator.repo.worktree import Worktree, clean_stale
from tests.conftest import git, snapshot

SLOW_TEST = "import time\n\ndef test_slow():\n    time.sleep(120)\n"


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the run never reached the point to interrupt")
        time.sleep(0.1)


def worktree_of(repo: Path) -> Path:
    """The worktree of the run going on in ``repo``, from its lease (waits for it)."""
    leases = repo / ".git" / "orchestrate"
    wait_for(lambda: any(leases.glob("*.json")))
    (lease,) = leases.glob("*.json")
    return Path(json.loads(lease.read_text())["path"])


def inner_runs(worktree: Path) -> list[psutil.Process]:
    """Processes working in ``worktree`` (the inner test runs), and only this run's."""
    found = []
    for proc in psutil.process_iter(["cwd"]):
        try:
            if (proc.info["cwd"] or "").startswith(str(worktree)):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def recorded_groups(repo: Path) -> list[Group]:
    """The process groups the running orchestration's lease records (waits for one)."""
    leases = repo / ".git" / "orchestrate"

    def groups() -> list[Group]:
        found = []
        for lease in leases.glob("*.json"):
            found += [Group(*g) for g in json.loads(lease.read_text()).get("groups", [])]
        return found

    wait_for(lambda: bool(groups()))
    return groups()


def start_run(
    repo: Path, ready: Callable[[Path], bool], *options: str
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start an orchestration in its own session (like a terminal's foreground group) and
    return once ``ready(worktree)`` holds; also returns the run's worktree."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--orchestrate", "Rename add to plus", *options],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        tree = worktree_of(repo)
        wait_for(lambda: ready(tree))
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc, tree


def start_slow_run(repo: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """A run whose baseline test run is going."""
    return start_run(repo, lambda tree: bool(inner_runs(tree)))


def simulating(tree: Path) -> bool:
    """A Monte Carlo child of the run in ``tree`` is running."""
    return any(
        "pytest_orchestrator.phases.montecarlo.child.simulation" in " ".join(_cmdline(p))
        for p in inner_runs(tree)
    )


def _cmdline(proc: psutil.Process) -> list[str]:
    """``proc``'s command line; empty once it has exited (it may, between listing and now)."""
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def interrupt(proc: subprocess.Popen[bytes], sig: signal.Signals) -> str:
    """Ctrl-C goes to the whole foreground group, SIGTERM to the orchestrator alone; returns
    the run's output once it has ended."""
    try:
        os.killpg(proc.pid, sig) if sig == signal.SIGINT else proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return out.decode(errors="replace")


def slot_is_free(repo: Path, tree: Path) -> bool:
    """The run's worktree slot is free: the next run takes it, and resets it."""
    head = git(repo, "rev-parse", "HEAD").strip()
    again = Worktree.create(repo, head, "Rename add to plus", "after")
    try:
        return (again.path, again.reused) == (tree, True)
    finally:
        again.remove()


def assert_nothing_left(repo: Path, before: dict[str, str], tree: Path) -> None:
    """Nothing but the worktree slot, free again."""
    assert snapshot(repo) == before
    assert not (repo / ".git" / "orchestrate").exists()
    wait_for(lambda: not inner_runs(tree), timeout=30)
    assert slot_is_free(repo, tree)


# The Monte Carlo hook runs in a child per revision; this one outlasts the phase's cap.
SLOW_SIMULATION = """\
import time

import pytest


@pytest.hookimpl(optionalhook=True)
def pytest_orchestrator_montecarlo(mc):
    time.sleep(150)
    return []
"""

# Publishing that hangs (say, a forge that does not answer), after the gate went green.
SLOW_PUBLISH = """\
import time
from pathlib import Path

import pytest


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_orchestrator_publish(run, attempt):
    Path(run.run_dir, "publishing").touch()
    time.sleep(120)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupting_a_run_leaves_nothing_behind(
    make_repo: Callable[..., Path], sig: signal.Signals
) -> None:
    """Interrupted while the tests run: exit 2, checkout byte-identical, no worktree, branch,
    lease or test process left."""
    repo = make_repo({"tests/test_slow.py": SLOW_TEST})
    before = snapshot(repo)
    proc, tree = start_slow_run(repo)
    try:
        # Ctrl-C goes to the whole foreground group; SIGTERM to the orchestrator alone
        os.killpg(proc.pid, sig) if sig == signal.SIGINT else proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 2, out.decode()
    assert snapshot(repo) == before
    assert not (repo / ".git" / "orchestrate").exists()
    wait_for(lambda: not inner_runs(tree), timeout=10)
    record = next((repo / ".orchestrate" / "runs").glob("*/run.json")).read_text()
    assert '"outcome": "interrupted"' in record


def test_leftovers_of_a_killed_run_are_removed_by_the_next_run(
    make_repo: Callable[..., Path], pytester: pytest.Pytester
) -> None:
    """kill -9 skips all cleanup: the next run finds the dead owner's lease, stops what it
    left running, and resets its worktree slot rather than checking out a new one."""
    repo = make_repo({"tests/test_slow.py": SLOW_TEST})
    before = snapshot(repo)
    proc, stale = start_slow_run(repo)
    groups = recorded_groups(repo)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert stale.is_dir()  # the killed run's worktree, with whatever it had done
    (repo / "tests" / "test_slow.py").unlink()
    subprocess.run(["git", "commit", "-qam", "fast again"], cwd=repo, check=True)
    result = pytester.runpytest_subprocess("--orchestrate", "Rename add to plus")
    result.stdout.fnmatch_lines(
        [
            "*removed leftovers of interrupted run *",
            f"*worktree {stale} (reused: * file(s) differed from the base and were reset*",
        ]
    )
    assert result.ret == 0
    after = snapshot(repo)
    assert after["<worktrees>"] == before["<worktrees>"] == 1
    assert after["<branches>"].split() == ["*", "main", "orchestrate/rename-add-to-plus"]
    assert not (repo / ".git" / "orchestrate").exists()
    assert not any(group_alive(g) for g in groups)
    assert not inner_runs(stale)


def test_a_killed_runs_monte_carlo_children_do_not_outlive_it(
    make_repo: Callable[..., Path],
) -> None:
    """kill -9 while a simulation child runs: after the next cleanup none of the run's
    process groups is left, nor its worktree, branch or lease."""
    repo = make_repo({"conftest.py": SLOW_SIMULATION})
    before = snapshot(repo)
    proc, tree = start_run(repo, simulating)
    groups = recorded_groups(repo)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert len(clean_stale(repo)) == 1
    assert not any(group_alive(g) for g in groups)
    assert_nothing_left(repo, before, tree)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupting_monte_carlo_stops_its_children(
    make_repo: Callable[..., Path], sig: signal.Signals
) -> None:
    repo = make_repo({"conftest.py": SLOW_SIMULATION})
    before = snapshot(repo)
    proc, tree = start_run(repo, simulating)
    groups = recorded_groups(repo)
    out = interrupt(proc, sig)
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    assert not any(group_alive(g) for g in groups)
    assert_nothing_left(repo, before, tree)


def test_ctrl_c_while_publishing_exits_2_without_a_traceback(
    make_repo: Callable[..., Path],
) -> None:
    """The gate is green and publishing hangs: Ctrl-C ends the run cleanly, and no branch
    is left at the base commit (whatever stays is a tested commit)."""
    repo = make_repo({"conftest.py": SLOW_PUBLISH})
    base = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    runs = repo / ".orchestrate" / "runs"
    proc, tree = start_run(repo, lambda _: any(runs.glob("*/publishing")))
    out = interrupt(proc, signal.SIGINT)
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    assert "interrupted while publishing" in out
    assert not (repo / ".git" / "orchestrate").exists()
    assert slot_is_free(repo, tree)
    tips = subprocess.run(
        ["git", "for-each-ref", "--format=%(objectname)", "refs/heads/orchestrate/"],
        cwd=repo, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert base not in tips


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_signals_through_the_cleanup_still_exit_2_without_a_traceback(
    make_repo: Callable[..., Path], sig: signal.Signals
) -> None:
    """A user who keeps pressing Ctrl-C: signals keep arriving until the process is gone,
    during the interrupt report, sessionfinish, the cleanup and the summary."""
    repo = make_repo({"tests/test_slow.py": SLOW_TEST})
    before = snapshot(repo)
    proc, tree = start_slow_run(repo)
    try:
        while proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig) if sig == signal.SIGINT else proc.send_signal(sig)
            time.sleep(0.05)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 2, out.decode()
    assert b"Traceback" not in out
    assert_nothing_left(repo, before, tree)
