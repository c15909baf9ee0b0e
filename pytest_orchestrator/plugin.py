"""The pytest entry point: options (`options.py`), hookspecs; inert unless ``--orchestrate``.

Like pytest's own ``stepwise`` plugin, the module-level hooks only declare options; the
stateful `~pytest_orchestrator.session.Orchestrator` is imported and registered only when a
run is asked for, so ``pytest --help`` and plain test runs stay as fast as without us.
"""

from __future__ import annotations

import json
import sys
from typing import Final

import pytest

from pytest_orchestrator import options

ORCHESTRATOR: Final = "orchestrator-session"


def pytest_addoption(parser: pytest.Parser) -> None:
    options.declare(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_orchestrator import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def _requested(config: pytest.Config) -> bool:
    """A run was asked for, even with an empty command (which the session then refuses)."""
    opt = config.option
    return getattr(opt, "orchestrate", None) is not None or bool(
        getattr(opt, "orchestrate_plan", None)
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """Keep the target's conftest files out of the orchestrating process.

    The controller never collects the target's tests (each attempt runs them in a fresh
    process inside the worktree), and a conftest imports the code under test from the
    user's checkout. Only the root conftest's ``pytest_orchestrator_*`` hooks are loaded,
    by the session, into a filtered plugin.
    """
    ns = early_config.known_args_namespace
    if getattr(ns, "orchestrate", None) is not None or getattr(ns, "orchestrate_plan", None):
        ns.noconftest = True


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.option.orchestrate_schema:
        from pytest_orchestrator.plan import plan_json_schema

        sys.stdout.write(json.dumps(plan_json_schema(), indent=2) + "\n")
        return 0
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.import_plugin("pytest_orchestrator.fixtures")
    if not _requested(config) or hasattr(config, "workerinput"):
        return
    # The controller itself never distributes: its items are plan steps, run in DAG order.
    # A `-n` given with --orchestrate is meant for the target's test runs, so hand it on.
    # The controller's items are plan steps: "last failed" bookkeeping of them means nothing,
    # and writing .pytest_cache would be a write into the user's checkout.
    for name in ("lfplugin", "nfplugin"):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)
    numprocesses = getattr(config.option, "numprocesses", None)
    if numprocesses:
        config.option.orchestrate_xdist_n = numprocesses
        config.option.numprocesses = None
        config.option.dist = "no"
    from pytest_orchestrator.session import Orchestrator

    config.pluginmanager.register(Orchestrator(config), ORCHESTRATOR)
