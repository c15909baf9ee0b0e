"""The plugin loaded into every inner test session (``-p pytest_orchestrator.inner``).

It writes the results as JSON for the orchestrator to read back structurally, and checks
that the code under test was imported from the worktree, not from the user's checkout
(an editable install or an inherited PYTHONPATH can silently do that). Under xdist, workers
send their findings to the controller through ``workeroutput`` (builtins only).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Final

import pytest

REPORT_ENV: Final = "PYTEST_ORCHESTRATOR_REPORT"
FORBIDDEN_ENV: Final = "PYTEST_ORCHESTRATOR_FORBIDDEN_ROOT"
WORKTREE_ENV: Final = "PYTEST_ORCHESTRATOR_WORKTREE"
MESSAGE_LIMIT: Final = 1500

_results: dict[str, dict[str, Any]] = {}
_collection_errors: list[dict[str, Any]] = []
_offenders: set[str] = set()


def _wrong_checkout_modules() -> list[str]:
    """Modules whose file lies in the user's checkout instead of the worktree."""
    forbidden = os.environ.get(FORBIDDEN_ENV)
    worktree = os.environ.get(WORKTREE_ENV)
    if not forbidden or not worktree:
        return []
    bad_root, good_root = Path(forbidden).resolve(), Path(worktree).resolve()
    found = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not file:
            continue
        path = Path(file).resolve()
        if path.is_relative_to(bad_root) and not path.is_relative_to(good_root):
            found.append(f"{name} ({path})")
    return sorted(found)


def _message(report: pytest.TestReport | pytest.CollectReport) -> str:
    if report.passed:
        return ""
    text = getattr(report, "longreprtext", "") or str(report.longrepr or "")
    if len(text) > MESSAGE_LIMIT:
        text = "…" + text[-MESSAGE_LIMIT:]
    return text


def pytest_configure(config: pytest.Config) -> None:
    """End this session's process group if the orchestrator dies (no-op outside a run)."""
    from pytest_orchestrator.containment import start_watchdog

    start_watchdog()


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


def pytest_collection_finish(session: pytest.Session) -> None:
    _offenders.update(_wrong_checkout_modules())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _offenders.update(_wrong_checkout_modules())
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["orchestrate_offenders"] = sorted(_offenders)
        return
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    data = {
        "exitstatus": int(exitstatus),
        "tests": list(_results.values()),
        "collection_errors": _collection_errors,
        "offenders": sorted(_offenders),
    }
    Path(path).write_text(json.dumps(data), encoding="utf-8")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: gather each worker's wrong-checkout findings."""
    output = getattr(node, "workeroutput", None) or {}
    _offenders.update(output.get("orchestrate_offenders", []))
