"""Options, ini keys and the environment resolve into one Settings per run."""

from __future__ import annotations

import pytest

from pytest_orchestrator.errors import OrchestratorError
from pytest_orchestrator.phases.plan.llm import LlmConfig
from pytest_orchestrator.settings import resolve


def test_options_beat_ini_keys(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\norchestrate_planner = scripted\norchestrate_attempts = 2\n"
        "orchestrate_merge = true\n"
    )
    config = pytester.parseconfig("--orchestrate", "Rename a to b", "--orchestrate-attempts=5")
    settings = resolve(config, pytester.path)
    assert (settings.planner, settings.attempts, settings.merge) == ("scripted", 5, True)
    assert settings.run_root == pytester.path / ".orchestrate" / "runs"


def test_the_commands_words_never_merge(pytester: pytest.Pytester) -> None:
    """ "merge" in a command (or a symbol like merge_sorted) is not a request to merge."""
    for command in ("Rename a to b, post PR and merge", "Rename merge_sorted to merge_all"):
        config = pytester.parseconfig("--orchestrate", command)
        assert not resolve(config, pytester.path).merge
    config = pytester.parseconfig("--orchestrate", "Rename a to b", "--orchestrate-merge")
    assert resolve(config, pytester.path).merge


def test_model_ini_keys_reach_the_planner_and_the_environment_wins(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """orchestrate_llm_retries etc. configure model calls; their environment variable wins."""
    pytester.makeini(
        "[pytest]\norchestrate_llm_retries = 7\norchestrate_max_run_tokens = 5000\n"
        "orchestrate_parallelism = 3\n"
    )
    monkeypatch.setenv("CLAUDE_CODE_PARALLELISM", "2")
    settings = resolve(pytester.parseconfig("--orchestrate", "x"), pytester.path)
    llm = LlmConfig.from_env(settings)
    assert (llm.max_retries, llm.max_run_tokens, llm.parallelism) == (7, 5000, 2)


def test_output_tokens_are_capped_at_4096(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_CODE_MAX_OUTPUT_TOKENS", "32000")
    settings = resolve(pytester.parseconfig("--orchestrate", "x"), pytester.path)
    assert settings.budgets.max_output_tokens == 4096


def test_the_repositorys_mcp_servers_need_a_flag_ini_key_or_variable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off by default; --orchestrate-mcp-project, orchestrate_mcp_project or the variable."""
    monkeypatch.delenv("ORCHESTRATE_MCP_PROJECT", raising=False)
    plain = resolve(pytester.parseconfig("--orchestrate", "x"), pytester.path)
    assert not LlmConfig.from_env(plain).mcp_project
    flag = pytester.parseconfig("--orchestrate", "x", "--orchestrate-mcp-project")
    assert LlmConfig.from_env(resolve(flag, pytester.path)).mcp_project
    pytester.makeini("[pytest]\norchestrate_mcp_project = true\n")
    ini = resolve(pytester.parseconfig("--orchestrate", "x"), pytester.path)
    assert LlmConfig.from_env(ini).mcp_project
    monkeypatch.setenv("ORCHESTRATE_MCP_PROJECT", "no")
    assert not LlmConfig.from_env(ini).mcp_project  # the environment wins, as for every key
    monkeypatch.setenv("ORCHESTRATE_MCP_PROJECT", "maybe")
    with pytest.raises(OrchestratorError, match="use true or false"):
        LlmConfig.from_env(ini)


def test_the_merge_method_and_trace_ui_are_ini_keys(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfig("--orchestrate", "Rename a to b")
    settings = resolve(config, pytester.path)
    assert (settings.merge_method, settings.trace_ui) == ("merge", "")
    pytester.makeini(
        "[pytest]\norchestrate_merge_method = squash\n"
        "orchestrate_trace_ui = https://ui.example/trace/{trace_id}\n"
    )
    settings = resolve(pytester.parseconfig("--orchestrate", "Rename a to b"), pytester.path)
    assert (settings.merge_method, settings.trace_ui) == (
        "squash",
        "https://ui.example/trace/{trace_id}",
    )


def test_an_unknown_merge_method_is_refused_with_the_choices(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\norchestrate_merge_method = fast-forward\n")
    config = pytester.parseconfig("--orchestrate", "Rename a to b")
    with pytest.raises(OrchestratorError, match="use merge, squash or rebase"):
        resolve(config, pytester.path)


def test_unset_ini_keys_give_their_declared_typed_defaults(pytester: pytest.Pytester) -> None:
    settings = resolve(pytester.parseconfig("--orchestrate", "x"), pytester.path)
    assert (settings.attempts, settings.test_timeout, settings.mem_threshold) == (3, 600.0, 0.7)
    assert (settings.workers, settings.planner, settings.forge) == (0, "auto", "auto")


def test_an_ini_value_of_the_wrong_type_is_bad_input_naming_the_fix(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\norchestrate_attempts = three\n")
    with pytest.raises(
        OrchestratorError, match=r"it takes an int, e\.g\. orchestrate_attempts = 3"
    ):
        resolve(pytester.parseconfig("--orchestrate", "x"), pytester.path)
