"""The pytest entry point: options, ini keys, hookspecs; inert unless ``--orchestrate``.

Like pytest's own ``stepwise`` plugin, the module-level hooks only declare options; the
stateful `~pytest_orchestrator.session.Orchestrator` is imported and registered only when a
run is asked for, so ``pytest --help`` and plain test runs stay as fast as without us.
"""

from __future__ import annotations

import json
import sys
from typing import Final

import pytest

ORCHESTRATOR: Final = "orchestrator-session"

# The defaults of the options and ini keys, stated once: the ini keys are declared with them
# (so ``config.getini`` returns them when unset), the help texts show them, and `Settings`
# and the fixtures use them. The ini keys stay plain strings (not ``type="int"``/``"float"``)
# so that a bad value is reported as it always was.
DEFAULT_PLANNER: Final = "auto"
DEFAULT_ATTEMPTS: Final = 3
DEFAULT_RUN_DIR: Final = ".orchestrate/runs"
DEFAULT_WORKERS: Final = 0
DEFAULT_TEST_TIMEOUT: Final = 600
DEFAULT_CACHE_DIR: Final = ".orchestrate/cache"
DEFAULT_MEM_THRESHOLD: Final = 0.70
DEFAULT_SAMPLE_INTERVAL: Final = 0.25
DEFAULT_MODEL: Final = "claude-sonnet-5-5"
DEFAULT_FORGE: Final = "auto"

LLM_INI: Final = {
    # ini key -> the environment variable it stands in for (the environment wins)
    "orchestrate_thinking_budget": "CLAUDE_CODE_THINKING_BUDGET_TOKENS",
    "orchestrate_parallelism": "CLAUDE_CODE_PARALLELISM",
    "orchestrate_max_run_tokens": "ORCHESTRATE_MAX_RUN_TOKENS",
    "orchestrate_llm_wall_clock": "ORCHESTRATE_LLM_WALL_CLOCK",
    "orchestrate_llm_timeout": "ORCHESTRATE_LLM_TIMEOUT",
    "orchestrate_llm_retries": "ORCHESTRATE_LLM_RETRIES",
    "orchestrate_mcp_config": "ORCHESTRATE_MCP_CONFIG",
    "orchestrate_mcp_servers": "ORCHESTRATE_MCP_SERVERS",
    "orchestrate_mcp_max_tool_calls": "ORCHESTRATE_MCP_MAX_TOOL_CALLS",
    "orchestrate_mcp_project": "ORCHESTRATE_MCP_PROJECT",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("orchestrate", "orchestrate: one sentence to a gated PR")
    group.addoption(
        "--orchestrate",
        metavar="COMMAND",
        default=None,
        help='carry out COMMAND, e.g. "Rename old to new, test at scale, post PR"',
    )
    group.addoption(
        "--orchestrate-plan",
        metavar="FILE",
        default=None,
        help="run this plan.json instead of planning (validated first)",
    )
    group.addoption(
        "--orchestrate-planner",
        metavar="NAME",
        default=None,
        help="rules, anthropic, scripted or auto (default: anthropic with a key, else rules)",
    )
    group.addoption(
        "--orchestrate-script",
        metavar="FILE",
        default=None,
        help="answers for the scripted planner: a JSON list of plans, replayed in order",
    )
    group.addoption("--orchestrate-base", metavar="BRANCH", default=None, help="base branch")
    group.addoption(
        "--orchestrate-dry-run",
        action="store_true",
        help="stop after Plan: print the ranked slices and the plan, change nothing",
    )
    group.addoption(
        "--orchestrate-merge",
        action="store_true",
        help="merge into the base branch when the gate is green",
    )
    group.addoption(
        "--orchestrate-allow-test-changes",
        action="store_true",
        help="let --orchestrate-merge merge a result whose tests the command asked to change",
    )
    group.addoption(
        "--orchestrate-attempts",
        metavar="N",
        type=int,
        default=None,
        help=f"most attempts, the first plus retries (default {DEFAULT_ATTEMPTS})",
    )
    group.addoption(
        "--orchestrate-run-dir",
        metavar="DIR",
        default=None,
        help=f"where run directories go (default {DEFAULT_RUN_DIR})",
    )
    group.addoption(
        "--orchestrate-workers",
        metavar="N",
        default=None,
        help="xdist workers for the target's test runs: a number or auto "
        f"(default {DEFAULT_WORKERS})",
    )
    group.addoption(
        "--orchestrate-seed", metavar="N", type=int, default=None, help="Monte Carlo seed"
    )
    group.addoption(
        "--orchestrate-mcp-project",
        action="store_true",
        help="start the MCP servers of the repository's own .mcp.json (they run its commands)",
    )
    group.addoption(
        "--orchestrate-schema",
        action="store_true",
        help="print the JSON Schema of plan.json and exit",
    )
    ini: list[tuple[str, str, object]] = [
        ("orchestrate_planner", "planner: rules, anthropic, scripted, auto", DEFAULT_PLANNER),
        ("orchestrate_script", "answers file of the scripted planner", ""),
        ("orchestrate_base", "default base branch", ""),
        ("orchestrate_attempts", "most attempts", DEFAULT_ATTEMPTS),
        ("orchestrate_run_dir", "run directory root", DEFAULT_RUN_DIR),
        ("orchestrate_workers", "xdist workers for the target's test runs", DEFAULT_WORKERS),
        ("orchestrate_test_timeout", "seconds one test run may take", DEFAULT_TEST_TIMEOUT),
        (
            "orchestrate_forge",
            "local, github, or auto (github when GITHUB_TOKEN is set)",
            DEFAULT_FORGE,
        ),
        ("orchestrate_github_repo", "owner/name of the GitHub repository (default: origin's)", ""),
        (
            "orchestrate_model",
            "Anthropic model of the anthropic planner (ANTHROPIC_MODEL wins)",
            DEFAULT_MODEL,
        ),
        ("orchestrate_cache_dir", "slice cache directory", DEFAULT_CACHE_DIR),
        ("orchestrate_mem_threshold", "memory ratio at which work stops", DEFAULT_MEM_THRESHOLD),
        ("orchestrate_sample_interval", "memory gauge interval, seconds", DEFAULT_SAMPLE_INTERVAL),
    ]
    ini += [(key, f"anthropic planner: like ${env}", "") for key, env in LLM_INI.items()]
    for name, help_text, default in ini:
        shown = f" (default {default})" if default != "" and name != "orchestrate_forge" else ""
        parser.addini(name, help_text + shown, default=str(default))
    parser.addini(
        "orchestrate_merge", "merge into the base branch when green", type="bool", default=False
    )
    parser.addini("orchestrate_dry_run", "always stop after Plan", type="bool", default=False)
    parser.addini(
        "orchestrate_env_allow",
        "credential variables the target's tests may see (names or globs; others are scrubbed)",
        type="linelist",
        default=[],
    )
    parser.addini(
        "orchestrate_allow_test_changes",
        "let orchestrate_merge merge a result whose tests the command asked to change",
        type="bool",
        default=False,
    )


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
