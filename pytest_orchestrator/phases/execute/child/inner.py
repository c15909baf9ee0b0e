"""The plugin loaded into every inner test session
(``-p pytest_orchestrator.phases.execute.child.inner``).

It writes the results as JSON for the orchestrator to read back structurally: every test's
outcome (deselected ones included, so the gate can tell a test that was dropped from one
that was never there), the config file in effect, and the modules imported from outside
the worktree and the Python installation. The orchestrator checks those against the user's
checkout (an editable install or an inherited PYTHONPATH can silently test it instead); the
checkout's path is never given to the tests. Under xdist, workers send their findings to
the controller through ``workeroutput`` (builtins only).

Requests may come with the run, through the environment:

* ``PYTEST_ORCHESTRATOR_COVERAGE`` (JSON): measure the named files with ``coverage``, from
  the moment this plugin is imported (before any conftest imports the code under test),
  optionally with each test's node id as its dynamic context — the test-impact map and the
  coverage of the change are read from those data files;
* ``PYTEST_ORCHESTRATOR_KEEP`` (a file of node ids): run only those tests of the collected
  files (the affected tests of an attempt; a path keeps its whole file), the others
  reported deselected; ``PYTEST_ORCHESTRATOR_SKIP`` the opposite (the rest of the suite,
  once the affected tests passed);
* ``PYTEST_ORCHESTRATOR_FIRST`` (a file of node ids, paths as for KEEP): the gate's one run
  of the whole suite with the affected tests first. The collected items are split into those
  tests and the rest, each group in its collected (the base's) order, the affected group
  first; when it ends with a failure, an error or a collection error, the session stops
  there (the rest is never run, nor reported), and coverage, if measured, stops with it, so
  the rest runs untraced. Why one process is no weaker than two (affected tests, then the
  rest in a fresh process): every test of the rest runs after the same tests of the rest as
  at the base, and after all the affected tests, those the base ran before it among them, so
  state the changed code leaks into a later test is seen; a second process hid it. The one
  departure from the base's order: affected tests the base ran *after* a test of the rest
  now run before it. A test of the rest runs no changed code (it would be affected), so the
  change could break it only through state, and this order would hide that only if a later
  affected test mended the state a test of the rest now needs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Final

import pytest

REPORT_ENV: Final = "PYTEST_ORCHESTRATOR_REPORT"
WORKTREE_ENV: Final = "PYTEST_ORCHESTRATOR_WORKTREE"
MESSAGE_LIMIT: Final = 1500
FOREIGN_LIMIT: Final = 500

_results: dict[str, dict[str, Any]] = {}
_collection_errors: list[dict[str, Any]] = []
_foreign: set[str] = set()
_deselected: set[str] = set()
COVERAGE_ENV: Final = "PYTEST_ORCHESTRATOR_COVERAGE"
KEEP_ENV: Final = "PYTEST_ORCHESTRATOR_KEEP"
SKIP_ENV: Final = "PYTEST_ORCHESTRATOR_SKIP"
FIRST_ENV: Final = "PYTEST_ORCHESTRATOR_FIRST"


def _start_coverage() -> Any:
    """A started `coverage.Coverage` when the run asks for one (each process of the run,
    xdist workers included, writes its own suffixed data file)."""
    request = os.environ.get(COVERAGE_ENV)
    if not request:
        return None
    import coverage

    spec = json.loads(request)
    cov = coverage.Coverage(
        data_file=spec["data_file"],
        data_suffix=True,
        include=spec["include"],
        config_file=False,
    )
    cov.start()
    return cov


_coverage: Any = _start_coverage()
_contexts: bool = bool(_coverage) and json.loads(os.environ[COVERAGE_ENV]).get("contexts", False)
_last_first: pytest.Item | None = None
"""With a first group: its last test, after which the run may stop."""
_RED: Final = ("failed", "error", "xpassed")


def selected(nodeid: str, wanted: set[str]) -> bool:
    """Whether a node id is one of ``wanted`` (node ids, or paths naming whole files)."""
    return nodeid in wanted or nodeid.split("::", 1)[0] in wanted


def _foreign_modules() -> list[str]:
    """Files of imported modules outside the worktree and the Python installation."""
    worktree = os.environ.get(WORKTREE_ENV)
    if not worktree:
        return []
    trusted = {Path(worktree).resolve()} | {
        Path(p).resolve() for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}
    }
    found = []
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not file:
            continue
        path = Path(file).resolve()
        if not any(path.is_relative_to(root) for root in trusted):
            found.append(str(path))
    return sorted(found)[:FOREIGN_LIMIT]


def _message(report: pytest.TestReport | pytest.CollectReport) -> str:
    if report.passed:
        return ""
    text = getattr(report, "longreprtext", "") or str(report.longrepr or "")
    if len(text) > MESSAGE_LIMIT:
        text = "…" + text[-MESSAGE_LIMIT:]
    return text


def pytest_configure(config: pytest.Config) -> None:
    """End this session's process group if the orchestrator dies (no-op outside a run)."""
    from pytest_orchestrator.guard.containment import start_watchdog

    start_watchdog()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Any:
    """With contexts, every line a test runs is recorded under its node id. After the last
    test of a first group, coverage stops, and so does the session if the group is red."""
    try:
        if not (_contexts and _coverage is not None):
            return (yield)
        _coverage.switch_context(item.nodeid)
        try:
            return (yield)
        finally:
            _coverage.switch_context("")
    finally:
        if item is _last_first:
            _stop_coverage()
            red = [r for r in _results.values() if r.get("outcome") in _RED]
            if red or _collection_errors:
                item.session.shouldfail = (
                    "the affected tests are red: the rest of the suite is not run"
                )


def _stop_coverage() -> None:
    """Stop measuring and save what was measured (at most once)."""
    global _coverage
    if _coverage is not None:
        _coverage.stop()
        _coverage.save()
        _coverage = None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep only the requested tests (the collected files hold others too), or skip some;
    then put a first group first."""
    keep_file, skip_file = os.environ.get(KEEP_ENV), os.environ.get(SKIP_ENV)
    wanted = None
    if keep_file:
        keep = set(Path(keep_file).read_text(encoding="utf-8").splitlines())
        wanted = [selected(i.nodeid, keep) for i in items]
    elif skip_file:
        skip = set(Path(skip_file).read_text(encoding="utf-8").splitlines())
        wanted = [i.nodeid not in skip for i in items]
    if wanted is not None and not all(wanted):
        config.hook.pytest_deselected(
            items=[i for i, w in zip(items, wanted, strict=True) if not w]
        )
        items[:] = [i for i, w in zip(items, wanted, strict=True) if w]
    first_file = os.environ.get(FIRST_ENV)
    if first_file:
        _first_first(items, set(Path(first_file).read_text(encoding="utf-8").splitlines()))


def _first_first(items: list[pytest.Item], first: set[str]) -> None:
    """The ``first`` tests before the others, each group in its collected order."""
    global _last_first
    group = [i for i in items if selected(i.nodeid, first)]
    items[:] = group + [i for i in items if not selected(i.nodeid, first)]
    _last_first = group[-1] if group else None
    if not group:  # nothing to run first: the change's coverage is not the suite's
        _stop_coverage()


def pytest_unconfigure(config: pytest.Config) -> None:
    _stop_coverage()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _results.setdefault(report.nodeid, {"nodeid": report.nodeid, "duration": 0.0})
    entry["duration"] = round(entry["duration"] + report.duration, 6)
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if xfail:
            entry["outcome"] = "xfailed" if report.skipped else "xpassed"
        else:
            entry["outcome"] = report.outcome
        entry["message"] = _message(report)
    elif report.failed:
        entry["outcome"] = "error"
        entry["message"] = f"error in {report.when}: " + _message(report)
    elif report.skipped and "outcome" not in entry:
        entry["outcome"] = "xfailed" if xfail else "skipped"
        entry["message"] = _message(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _collection_errors.append(
            {
                "nodeid": report.nodeid or "<collection>",
                "outcome": "error",
                "message": "collection error: " + _message(report),
            }
        )


def pytest_deselected(items: list[pytest.Item]) -> None:
    _deselected.update(item.nodeid for item in items)


def pytest_collection_finish(session: pytest.Session) -> None:
    _foreign.update(_foreign_modules())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _foreign.update(_foreign_modules())
    config = session.config
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["orchestrate_foreign"] = sorted(_foreign)
        workeroutput["orchestrate_deselected"] = sorted(_deselected)
        return
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    tests = list(_results.values())
    tests += [
        {"nodeid": nodeid, "outcome": "deselected"}
        for nodeid in sorted(_deselected - _results.keys())
    ]
    inipath = config.inipath
    data = {
        "exitstatus": int(exitstatus),
        "tests": tests,
        "collection_errors": _collection_errors,
        "foreign_modules": sorted(_foreign),
        "inifile": _relative(inipath, config.rootpath) if inipath else None,
    }
    # imported here, after the last look at sys.modules, so it is never counted as foreign
    from pytest_orchestrator.repo.files import atomic_write

    atomic_write(Path(path), json.dumps(data))


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: gather each worker's findings."""
    output = getattr(node, "workeroutput", None) or {}
    _foreign.update(output.get("orchestrate_foreign", []))
    _deselected.update(output.get("orchestrate_deselected", []))
