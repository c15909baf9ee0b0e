"""Ctrl-C and SIGTERM mid-run leave the user's repository exactly as it was."""

from __future__ import annotations

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

from tests.conftest import snapshot

pytestmark = pytest.mark.slow

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


def start_slow_run(repo: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """Start an orchestration in its own session (like a terminal's foreground group) and
    return once its baseline test run is going; also returns the run's worktree."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--orchestrate", "Rename add to plus"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        tree = worktree_of(repo)
        wait_for(lambda: bool(inner_runs(tree)))
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc, tree


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
    """kill -9 skips all cleanup: the next run finds the dead owner's lease and removes its
    worktree and branch before starting."""
    repo = make_repo({"tests/test_slow.py": SLOW_TEST})
    before = snapshot(repo)
    proc, stale = start_slow_run(repo)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    for child in inner_runs(stale):
        child.kill()
    assert snapshot(repo)["<worktrees>"] == 2  # the killed run's worktree is still there
    assert stale.is_dir()
    (repo / "tests" / "test_slow.py").unlink()
    subprocess.run(["git", "commit", "-qam", "fast again"], cwd=repo, check=True)
    result = pytester.runpytest_subprocess("--orchestrate", "Rename add to plus")
    result.stdout.fnmatch_lines(
        ["*removed leftovers of an interrupted run (orchestrate/rename-add-to-plus)*"]
    )
    assert result.ret == 0
    assert not stale.exists()
    after = snapshot(repo)
    assert after["<worktrees>"] == before["<worktrees>"] == 1
    assert after["<branches>"].split() == ["*", "main", "orchestrate/rename-add-to-plus"]
    assert not (repo / ".git" / "orchestrate").exists()
