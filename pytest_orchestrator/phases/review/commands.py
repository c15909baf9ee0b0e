"""Run one check command in a tree, the way every post-change check runs: bounded and guarded.

* **Missing**: a tool that is not installed is named and skipped (`Outcome.missing`).
* **Hanging**: the command leads its own process group, registered with the run's lease
  (`guard.containment`), and the whole group is stopped at the timeout.
* **Megabytes of output**: output goes to a file; at most `OUTPUT_LIMIT` bytes are read back.
* **Editing files**: a check must never change the attempt silently. The tree's state is taken
  before and after (``git add -A`` + ``git write-tree``: a tree id covering every file git does
  not ignore); anything the command changed is put back and reported as `Outcome.modified`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pytest_orchestrator.guard import containment
from pytest_orchestrator.guard.proctree import stop_group
from pytest_orchestrator.phases.plan.redact import scrub_environment
from pytest_orchestrator.repo.git import git

OUTPUT_LIMIT: Final = 4_000_000
"""Bytes of a check's output that are read back; the rest is cut (and said so)."""


@dataclass
class Outcome:
    """What one check command did."""

    argv: list[str]
    returncode: int | None = None
    output: str = ""
    truncated: bool = False
    missing: bool = False
    timed_out: bool = False
    seconds: float = 0.0
    modified: list[str] = field(default_factory=list)
    """Files the command changed (already put back)."""


def find_executable(name: str) -> str | None:
    """The tool beside the interpreter running us (its virtualenv) first, then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def tree_state(root: Path) -> str:
    """A git tree id of every non-ignored file under ``root`` as it is now."""
    git("add", "-A", cwd=root)
    return git("write-tree", cwd=root).strip()


def restore(root: Path, before: str, after: str) -> list[str]:
    """Put ``root`` back to the state ``before``; return the paths that differed."""
    listed = git("diff", "--name-status", "--no-renames", before, after, cwd=root)
    changed: list[str] = []
    back: list[str] = []
    for line in listed.splitlines():
        status, _, path = line.partition("\t")
        changed.append(path)
        if status == "A":
            (root / path).unlink(missing_ok=True)
        else:
            back.append(path)
    if back:
        git("checkout", before, "--", *back, cwd=root)
    git("add", "-A", cwd=root)
    return changed


def run_command(
    argv: list[str],
    root: Path,
    scratch: Path,
    label: str,
    *,
    timeout: float,
    env: dict[str, str] | None = None,
) -> Outcome:
    """Run ``argv`` in ``root`` (no shell), stdout and stderr to a file in ``scratch``."""
    outcome = Outcome(argv=argv)
    exe = find_executable(argv[0]) if "/" not in argv[0] else argv[0]
    if exe is None:
        outcome.missing = True
        return outcome
    scratch.mkdir(parents=True, exist_ok=True)
    log = scratch / f"check-{label}.log"
    before = tree_state(root)
    environ = scrub_environment(os.environ)
    environ.update(containment.owner_env())
    environ.update(env or {})
    start = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [exe, *argv[1:]],
            cwd=root,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        group = containment.register(proc)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            outcome.timed_out = True
        finally:
            stop_group(group, leader=proc, grace=1.0)
            containment.release(group)
    outcome.seconds = round(time.perf_counter() - start, 3)
    outcome.returncode = proc.returncode
    with log.open("rb") as f:
        data = f.read(OUTPUT_LIMIT + 1)
    outcome.truncated = len(data) > OUTPUT_LIMIT
    outcome.output = data[:OUTPUT_LIMIT].decode("utf-8", errors="replace")
    after = tree_state(root)
    if after != before:
        outcome.modified = restore(root, before, after)
    return outcome
