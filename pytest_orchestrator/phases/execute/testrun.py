"""Run the target's test suite once, in a fresh process inside the worktree.

Every trap we measured is handled here:

* a fresh ``python -m pytest`` per attempt (a second ``pytest.main`` in one process tests
  stale imports), never the console script, with a scrubbed environment: no inherited
  ``PYTHONPATH``/``PYTEST_ADDOPTS``/``PYTEST_PLUGINS``, the worktree (and its ``src/``) first
  on the path;
* bytecode in a private ``PYTHONPYCACHEPREFIX``, never beside the user's or the worktree's
  files, and always written there (``PYTHONDONTWRITEBYTECODE`` is dropped: without it every
  import of every run compiles from source, 2.5-4.5x slower). The orchestrator's own runs
  share one prefix beside the worktree, so the interpreter's and the dependencies'
  bytecode is compiled once per run; before each run the bytecode of every file the run's
  attempts changed is deleted (`invalidate_bytecode`), so a same-second, same-size edit can
  never run a stale ``.pyc``;
* ``--continue-on-collection-errors`` so ``-n 0`` and ``-n N`` agree;
* its own session (process group), registered with the run's lease and stopped as a group
  on timeout or interruption, so xdist workers are never orphaned; a watchdog in the inner
  session ends the group if the orchestrator dies (`pytest_orchestrator.guard.containment`);
* results read back as JSON written by `pytest_orchestrator.phases.execute.child.inner`, which
  also proves the code under test came from the worktree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pytest_orchestrator.errors import TestRunError
from pytest_orchestrator.guard import containment
from pytest_orchestrator.guard.proctree import stop_group
from pytest_orchestrator.model import TestOutcome, TestRunResult
from pytest_orchestrator.phases.execute.child.inner import (
    COVERAGE_ENV,
    FIRST_ENV,
    KEEP_ENV,
    REPORT_ENV,
    SKIP_ENV,
    WORKTREE_ENV,
)

if TYPE_CHECKING:
    from pytest_orchestrator.guard.pressure import PressureGauge

SCRUBBED: Final = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONSAFEPATH",
    "PYTHONNOUSERSITE",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_CURRENT_TEST",
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "PYTHONDONTWRITEBYTECODE",
)


def inner_environment(worktree: Path, pycache: Path, allow: Sequence[str] = ()) -> dict[str, str]:
    """The inner run's environment: ours without what could redirect the run or its imports,
    and without credentials (API keys, tokens, passwords: `redact.scrub_environment`) unless
    the ``orchestrate_env_allow`` ini key names them — the tests of a change need no keys.

    The user's checkout is not named in it (the run's scratch files live beside the
    worktree, outside the checkout), so a test cannot find the checkout through it.
    """
    from pytest_orchestrator.phases.plan.redact import scrub_environment

    env = {k: v for k, v in scrub_environment(os.environ, allow).items() if k not in SCRUBBED}
    paths = [str(worktree)] + ([str(worktree / "src")] if (worktree / "src").is_dir() else [])
    env.update(
        PYTHONPATH=os.pathsep.join(paths),
        PYTHONPYCACHEPREFIX=str(pycache),
        PYTHONHASHSEED="0",
        PYTHONUNBUFFERED="1",
        **{WORKTREE_ENV: str(worktree)},
    )
    return env


@dataclass(frozen=True)
class Coverage:
    """What an inner run measures: ``files`` (absolute paths), each test's lines under its
    node id when ``contexts``; the data files are ``data_file`` and its suffixed siblings."""

    data_file: Path
    files: list[str]
    contexts: bool = False
    fresh: bool = True
    """Delete earlier data first (False: add to it, e.g. a second run of one attempt)."""

    def request(self) -> str:
        for old in self.data_file.parent.glob(self.data_file.name + "*") if self.fresh else ():
            old.unlink()
        return json.dumps(
            {"data_file": str(self.data_file), "include": self.files, "contexts": self.contexts}
        )


def invalidate_bytecode(prefix: Path, worktree: Path, paths: Iterable[str]) -> None:
    """Delete the bytecode ``prefix`` holds for ``paths`` (relative to ``worktree``)."""
    for rel in paths:
        if not rel.endswith(".py"):
            continue
        source = (worktree / rel).absolute()
        folder = prefix.joinpath(*source.parent.parts[1:])
        for pyc in folder.glob(f"{source.stem}.{sys.implementation.cache_tag}*.pyc"):
            pyc.unlink(missing_ok=True)


def run_tests(
    worktree: Path,
    *,
    user_repo: Path,
    scratch: Path,
    label: str,
    workers: int | str = 0,
    paths: list[str] | None = None,
    config_args: list[str] | None = None,
    timeout: float = 600.0,
    extra_env: dict[str, str] | None = None,
    env_allow: Sequence[str] = (),
    gauge: PressureGauge | None = None,
    keep: Sequence[str] | None = None,
    skip: Sequence[str] | None = None,
    first: Sequence[str] | None = None,
    coverage: Coverage | None = None,
    pycache: Path | None = None,
    timeout_hint: str = "raise orchestrate_test_timeout if your suite needs longer",
) -> TestRunResult:
    """Run the suite in ``worktree``; ``scratch`` receives the report, log and pycache.

    ``config_args`` are the orchestrator's own options (the gate's ``-c BASE_INI``);
    ``paths`` are repository paths or node ids only, and go after ``--`` so that none of
    them can be read as an option. With a ``gauge``, the run's process group is guarded:
    a suite that would push memory past the threshold is stopped before it takes the
    machine down. ``keep``: run only these node ids of the collected ``paths``; ``skip``:
    all but these. ``first``: these node ids (a path: its whole file) run first, and when one
    of them fails the run stops there (`child.inner`); coverage is measured in them only.
    ``coverage``: measure its files (`Coverage`), the data left in its ``data_file``.
    ``pycache``: the bytecode prefix (default: one of this run's own, in ``scratch``).
    """
    scratch.mkdir(parents=True, exist_ok=True)
    report = scratch / f"tests-{label}.json"
    log = scratch / f"tests-{label}.log"
    report.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "pytest_orchestrator.phases.execute.child.inner",
        "-p",
        "no:cacheprovider",
        "--continue-on-collection-errors",
        "-q",
        "-rfE",
    ]
    if workers not in (0, "0"):
        cmd += ["-n", str(workers)]
    cmd += list(config_args or [])
    if paths:
        cmd += ["--", *paths]
    env = inner_environment(worktree, pycache or scratch / f"pycache-{label}", env_allow)
    env[REPORT_ENV] = str(report)
    env.update(containment.owner_env())
    env.update(extra_env or {})
    if keep is not None:
        keep_file = scratch / f"keep-{label}.txt"
        keep_file.write_text("\n".join(keep) + "\n", encoding="utf-8")
        env[KEEP_ENV] = str(keep_file)
    if skip is not None:
        skip_file = scratch / f"skip-{label}.txt"
        skip_file.write_text("\n".join(skip) + "\n", encoding="utf-8")
        env[SKIP_ENV] = str(skip_file)
    if first is not None:
        first_file = scratch / f"first-{label}.txt"
        first_file.write_text("\n".join(first) + "\n", encoding="utf-8")
        env[FIRST_ENV] = str(first_file)
    if coverage is not None:
        env[COVERAGE_ENV] = coverage.request()
    start = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=worktree,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        group = containment.register(proc)
        if gauge is not None:
            gauge.guard(proc.pid, label=f"tests ({label})")
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(group, leader=proc)
            raise TestRunError(
                f"the test run ({label}) took longer than {timeout:.0f}s and was stopped; "
                + timeout_hint
            ) from None
        finally:
            if gauge is not None:
                gauge.unguard(proc.pid)
            stop_group(group, leader=proc)
            containment.release(group)
    seconds = time.perf_counter() - start
    if not report.exists():
        stopped = [
            e
            for e in (gauge.events if gauge is not None else [])
            if e.kind == "stopped_child" and f"(pid {proc.pid}," in e.detail
        ]
        if stopped:
            raise TestRunError(
                f"the test run ({label}) was stopped by the memory gauge at "
                f"{stopped[-1].ratio:.0%} of available memory: {stopped[-1].detail}"
            )
        tail = log.read_text(errors="replace")[-2000:]
        raise TestRunError(
            f"the test run ({label}) ended with status {proc.returncode} before reporting "
            f"any result; its output ends with:\n{tail}"
        )
    data = json.loads(report.read_text(encoding="utf-8"))
    offenders = _in_checkout(data["foreign_modules"], user_repo, worktree)
    if offenders:
        listed = "\n  ".join(offenders[:10])
        raise TestRunError(
            "the test run imported code from your checkout instead of the worktree, so its "
            "result says nothing about the change. An editable install or PYTHONPATH "
            f"entry points at your checkout:\n  {listed}"
        )
    tests = [
        TestOutcome(
            nodeid=t["nodeid"],
            outcome=t.get("outcome", "error"),
            duration=t.get("duration", 0.0),
            message=t.get("message", ""),
        )
        for t in data["tests"]
    ]
    errors = [TestOutcome(**e) for e in data["collection_errors"]]
    return TestRunResult(
        exitstatus=data["exitstatus"],
        tests=tests,
        collection_errors=errors,
        seconds=round(seconds, 3),
        workers=0
        if workers in (0, "0")
        else (os.cpu_count() or 1 if workers == "auto" else int(workers)),
        command=cmd[1:],
        inifile=data.get("inifile"),
    )


def _in_checkout(files: list[str], user_repo: Path, worktree: Path) -> list[str]:
    """Files of imported modules that lie in the user's checkout rather than the worktree."""
    bad, good = user_repo.resolve(), worktree.resolve()
    return [f for f in files if Path(f).is_relative_to(bad) and not Path(f).is_relative_to(good)]
