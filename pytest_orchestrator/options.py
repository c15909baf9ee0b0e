"""Every command-line option and ini key of ``--orchestrate``, with its default, stated once.

The ini keys are declared typed (``int``, ``float``, ``bool``, ``linelist``) with these
defaults, so ``config.getini`` returns the default when a key is unset; the help texts show
them; `~pytest_orchestrator.settings.Settings` uses the same constants as its field defaults.
This module imports nothing but pytest: ``plugin.py`` declares the options through it on
every pytest run.
"""

from __future__ import annotations

from typing import Any, Final

import pytest

DEFAULT_PLANNER: Final = "auto"
DEFAULT_ATTEMPTS: Final = 3
DEFAULT_RUN_DIR: Final = ".orchestrate/runs"
DEFAULT_WORKERS: Final = "0"
DEFAULT_TEST_TIMEOUT: Final = 600.0
DEFAULT_CACHE_DIR: Final = ".orchestrate/cache"
DEFAULT_MEM_THRESHOLD: Final = 0.70
DEFAULT_SAMPLE_INTERVAL: Final = 0.25
DEFAULT_MODEL: Final = "claude-sonnet-5-5"
DEFAULT_FORGE: Final = "auto"
DEFAULT_MERGE_METHOD: Final = "merge"
COVERAGE_BUDGET_SHARE: Final = 0.5
"""The change's coverage is measured when the tests running it took at most this share of
the suite's test time at the base: the tracer slows them several times."""
GATE_TIMEOUT_FLOOR: Final = 60.0
"""Seconds an attempt's test run may always take, however fast the baseline was."""
GATE_TIMEOUT_FACTOR: Final = 3.0
"""An attempt's test run may take this many times the baseline's duration (above the floor):
a long suite is not cut off, a hung one still is."""
DEFAULT_CHECK_TIMEOUT: Final = 300.0

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

# ini key -> (help, type, default)
INI: Final[dict[str, tuple[str, str, object]]] = {
    "orchestrate_planner": ("planner: rules, anthropic, scripted, auto", "string", DEFAULT_PLANNER),
    "orchestrate_script": ("answers file of the scripted planner", "string", ""),
    "orchestrate_base": ("default base branch", "string", ""),
    "orchestrate_attempts": ("most attempts", "int", DEFAULT_ATTEMPTS),
    "orchestrate_run_dir": ("run directory root", "string", DEFAULT_RUN_DIR),
    "orchestrate_workers": (
        "xdist workers for the target's test runs: a number or auto",
        "string",
        DEFAULT_WORKERS,
    ),
    "orchestrate_test_timeout": (
        "seconds the baseline test run may take (an attempt's run: "
        f"{GATE_TIMEOUT_FACTOR:g}x the baseline's time, at least {GATE_TIMEOUT_FLOOR:g}s)",
        "float",
        DEFAULT_TEST_TIMEOUT,
    ),
    "orchestrate_forge": (
        "local, github, or auto (github when GITHUB_TOKEN is set)",
        "string",
        DEFAULT_FORGE,
    ),
    "orchestrate_github_repo": (
        "owner/name of the GitHub repository (default: GITHUB_REPOSITORY, else origin's)",
        "string",
        "",
    ),
    "orchestrate_merge_method": (
        "how --orchestrate-merge merges a GitHub pull request: merge, squash or rebase",
        "string",
        DEFAULT_MERGE_METHOD,
    ),
    "orchestrate_trace_ui": (
        "trace UI for PR links: a Phoenix base URL, or a URL containing {trace_id}",
        "string",
        "",
    ),
    "orchestrate_model": (
        "Anthropic model of the anthropic planner (ANTHROPIC_MODEL wins)",
        "string",
        DEFAULT_MODEL,
    ),
    "orchestrate_cache_dir": ("slice cache directory", "string", DEFAULT_CACHE_DIR),
    "orchestrate_mem_threshold": (
        "memory ratio at which work stops",
        "float",
        DEFAULT_MEM_THRESHOLD,
    ),
    "orchestrate_sample_interval": (
        "memory gauge interval, seconds",
        "float",
        DEFAULT_SAMPLE_INTERVAL,
    ),
    "orchestrate_merge": ("merge into the base branch when green", "bool", False),
    "orchestrate_dry_run": ("always stop after Plan", "bool", False),
    "orchestrate_impact_map": (
        "record per-test coverage in the baseline run (the test-impact map that picks an "
        "attempt's affected tests; costs the coverage tracer's overhead once per file content)",
        "bool",
        True,
    ),
    "orchestrate_env_allow": (
        "credential variables the target's tests may see (names or globs; others are scrubbed)",
        "linelist",
        [],
    ),
    "orchestrate_allow_test_changes": (
        "let orchestrate_merge merge a result whose tests the command asked to change",
        "bool",
        False,
    ),
    "orchestrate_checks": (
        "extra post-change check commands, one a line, run in the worktree (no shell)",
        "linelist",
        [],
    ),
    "orchestrate_checks_discover": (
        "find checks in the repository's configuration (pre-commit, ruff, flake8, mypy, "
        "pyright); false runs only orchestrate_checks",
        "bool",
        True,
    ),
    "orchestrate_checks_required": (
        "checks (tool names, or commands of orchestrate_checks) whose absence is red, not skipped",
        "linelist",
        [],
    ),
    "orchestrate_check_timeout": (
        "seconds one check command may take",
        "float",
        DEFAULT_CHECK_TIMEOUT,
    ),
    **{key: (f"anthropic planner: like ${env}", "string", "") for key, env in LLM_INI.items()},
}


def declare(parser: pytest.Parser) -> None:
    """Add the ``orchestrate`` option group and the ini keys to pytest's parser."""
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
        "--orchestrate-fresh",
        action="store_true",
        help="ignore the cached baseline, test-impact map and Map/Logic results: run and "
        "measure the base again",
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
    for name, (help_text, kind, default) in INI.items():
        shown = f" (default {default})" if default not in ("", [], False) else ""
        if name == "orchestrate_forge":
            shown = ""
        parser.addini(name, help_text + shown, type=kind, default=default)  # type: ignore[arg-type]


def read(config: pytest.Config, name: str) -> Any:
    """An ini key's value, typed as declared; unset, its declared default.

    :raises ValueError: the value is not of the key's type, with the fix in the message.
    """
    try:
        return config.getini(name)
    except (pytest.UsageError, TypeError, ValueError) as exc:  # pytest 9 raises UsageError
        _, kind, default = INI[name]
        article = "an" if kind == "int" else "a"
        raise ValueError(
            f"ini {name}: {exc}; it takes {article} {kind}, e.g. {name} = {default}"
        ) from None
