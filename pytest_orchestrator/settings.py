"""What the user asked for: command-line options and ini keys, resolved once per run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, cast, get_args

import pytest
from pydantic import BaseModel, ConfigDict, Field

from pytest_orchestrator import options
from pytest_orchestrator.errors import OrchestratorError
from pytest_orchestrator.options import (
    DEFAULT_ATTEMPTS,
    DEFAULT_CHECK_TIMEOUT,
    DEFAULT_FORGE,
    DEFAULT_MEM_THRESHOLD,
    DEFAULT_MERGE_METHOD,
    DEFAULT_MODEL,
    DEFAULT_PLANNER,
    DEFAULT_SAMPLE_INTERVAL,
    DEFAULT_TEST_TIMEOUT,
    DEFAULT_WORKERS,
    LLM_INI,
)
from pytest_orchestrator.plan import Budgets
from pytest_orchestrator.tokens import MAX_OUTPUT_TOKENS

MergeMethod = Literal["merge", "squash", "rebase"]


class TestSelection(BaseModel):
    """Tests named on the command line (``pytest PATH::TEST -k EXPR --orchestrate ...``): the
    spec of the change. They may fail at the base; the gate requires them to pass."""

    __test__ = False
    model_config = ConfigDict(frozen=True, extra="forbid")

    args: list[str] = Field(default_factory=list)
    """Paths and node ids, relative to the repository root (POSIX)."""
    keyword: str = ""
    """``-k`` as given."""
    markexpr: str = ""
    """``-m`` as given."""

    @property
    def named(self) -> bool:
        return bool(self.args or self.keyword or self.markexpr)

    def pytest_args(self) -> tuple[list[str], list[str]]:
        """(options, paths) that make pytest select exactly these tests."""
        opts = (["-k", self.keyword] if self.keyword else []) + (
            ["-m", self.markexpr] if self.markexpr else []
        )
        return opts, list(self.args)

    def shown(self) -> str:
        parts = list(self.args)
        parts += [f"-k {self.keyword!r}"] if self.keyword else []
        parts += [f"-m {self.markexpr!r}"] if self.markexpr else []
        return " ".join(parts)


class Settings(BaseModel):
    """The resolved options of one orchestrated run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command: str
    """The sentence to carry out (from ``--orchestrate`` or the plan file)."""
    plan_file: Path | None = None
    """``--orchestrate-plan``: run this plan instead of planning."""
    planner: str = DEFAULT_PLANNER
    """``rules``, ``anthropic``, ``scripted`` or ``auto`` (anthropic when a key is set)."""
    script: Path | None = None
    """Answers for the scripted planner (a JSON list of plans)."""
    base: str | None = None
    """Base branch; default the branch checked out."""
    dry_run: bool = False
    """Stop after Plan and print the plan."""
    spec: TestSelection = Field(default_factory=TestSelection)
    """The tests named on the command line: what the change must make pass."""
    fresh: bool = False
    """Ignore the cached baseline, test-impact map and Map/Logic results
    (``--orchestrate-fresh``)."""
    impact_map: bool = True
    """Record per-test coverage in the baseline run (``orchestrate_impact_map``)."""
    merge: bool = False
    """Merge into the base branch when the gate is green (only this flag or its ini key
    merges: the command's words never do)."""
    env_allow: list[str] = Field(default_factory=list)
    """Credential variables the target's tests may see (names or globs); others are scrubbed."""
    allow_test_changes: bool = False
    """Let ``merge`` merge a result whose tests were changed at the command's request."""
    attempts: int = Field(DEFAULT_ATTEMPTS, ge=1, le=10)
    """Most attempts (the first plus retries)."""
    run_root: Path
    """Where run directories go."""
    workers: int | Literal["auto"] = int(DEFAULT_WORKERS)
    """xdist workers of the inner test runs (0: no xdist)."""
    seed: int | None = None
    """Monte Carlo seed; random (and recorded) when unset."""
    test_timeout: float = Field(DEFAULT_TEST_TIMEOUT, gt=0)
    """Wall-clock limit of one inner test run."""
    cache_dir: Path
    mem_threshold: float = Field(DEFAULT_MEM_THRESHOLD, gt=0, le=1)
    sample_interval: float = Field(DEFAULT_SAMPLE_INTERVAL, gt=0)
    budgets: Budgets = Field(default_factory=Budgets)
    model: str = DEFAULT_MODEL
    """Anthropic model for the anthropic planner."""
    forge: str = DEFAULT_FORGE
    """Where a green change goes: ``local``, ``github``, or ``auto`` (GitHub with a token)."""
    github_repo: str | None = None
    """``owner/name`` on GitHub; else ``GITHUB_REPOSITORY``, else the ``origin`` remote's."""
    merge_method: MergeMethod = DEFAULT_MERGE_METHOD
    """How ``merge`` merges a GitHub pull request (the repository must allow it)."""
    trace_ui: str = ""
    """The trace UI PR.md links to when the OTLP endpoint is not Phoenix itself."""
    checks: list[str] = Field(default_factory=list)
    """Extra post-change check commands (``orchestrate_checks``)."""
    checks_discover: bool = True
    """Find the repository's own checks in its configuration."""
    checks_required: list[str] = Field(default_factory=list)
    """Checks whose absence makes the attempt red instead of being skipped."""
    check_timeout: float = Field(DEFAULT_CHECK_TIMEOUT, gt=0)
    """Wall-clock limit of one check command."""
    llm_env: dict[str, str] = Field(default_factory=dict)
    """Model-call settings from ini keys, named as their environment variables (`LLM_INI`)."""


def ini(config: pytest.Config, name: str) -> Any:
    """`options.read`, a bad value being bad input (exit 4)."""
    try:
        return options.read(config, name)
    except ValueError as exc:
        raise OrchestratorError(str(exc)) from None


def resolve(config: pytest.Config, root: Path) -> Settings:
    """Build `Settings` from options, ini keys and the environment (options win)."""
    opt = config.option
    workers_raw = str(opt.orchestrate_workers or ini(config, "orchestrate_workers"))
    if getattr(opt, "orchestrate_xdist_n", None):
        workers_raw = str(opt.orchestrate_xdist_n)
    try:
        workers: int | Literal["auto"] = "auto" if workers_raw == "auto" else int(workers_raw)
    except ValueError:
        raise OrchestratorError(
            f"workers {workers_raw!r}: give a number of xdist workers or auto"
        ) from None
    max_out = os.environ.get("CLAUDE_CODE_MAX_OUTPUT_TOKENS", "")
    run_root = Path(opt.orchestrate_run_dir or ini(config, "orchestrate_run_dir"))
    cache_dir = Path(ini(config, "orchestrate_cache_dir"))
    plan_file = Path(opt.orchestrate_plan) if opt.orchestrate_plan else None
    script = opt.orchestrate_script or ini(config, "orchestrate_script")
    invocation = config.invocation_params.dir
    merge_method = ini(config, "orchestrate_merge_method")
    if merge_method not in get_args(MergeMethod):
        raise OrchestratorError(
            f"orchestrate_merge_method = {merge_method!r}: use merge, squash or rebase "
            "(one the repository allows)"
        )
    return Settings(
        command=opt.orchestrate or "",
        plan_file=(invocation / plan_file) if plan_file else None,
        planner=opt.orchestrate_planner or ini(config, "orchestrate_planner"),
        script=(invocation / script) if script else None,
        base=opt.orchestrate_base or ini(config, "orchestrate_base") or None,
        dry_run=opt.orchestrate_dry_run or ini(config, "orchestrate_dry_run"),
        fresh=bool(getattr(opt, "orchestrate_fresh", False)),
        impact_map=ini(config, "orchestrate_impact_map"),
        merge=opt.orchestrate_merge or ini(config, "orchestrate_merge"),
        env_allow=ini(config, "orchestrate_env_allow"),
        allow_test_changes=(
            opt.orchestrate_allow_test_changes or ini(config, "orchestrate_allow_test_changes")
        ),
        attempts=opt.orchestrate_attempts or ini(config, "orchestrate_attempts"),
        run_root=run_root if run_root.is_absolute() else root / run_root,
        workers=workers,
        seed=opt.orchestrate_seed,
        test_timeout=ini(config, "orchestrate_test_timeout"),
        cache_dir=cache_dir if cache_dir.is_absolute() else root / cache_dir,
        mem_threshold=ini(config, "orchestrate_mem_threshold"),
        sample_interval=ini(config, "orchestrate_sample_interval"),
        budgets=Budgets(
            max_output_tokens=min(MAX_OUTPUT_TOKENS, int(max_out))
            if max_out.isdigit()
            else MAX_OUTPUT_TOKENS
        ),
        model=os.environ.get("ANTHROPIC_MODEL") or ini(config, "orchestrate_model"),
        forge=ini(config, "orchestrate_forge"),
        github_repo=ini(config, "orchestrate_github_repo") or None,
        merge_method=cast(MergeMethod, merge_method),  # checked above
        trace_ui=ini(config, "orchestrate_trace_ui"),
        checks=ini(config, "orchestrate_checks"),
        checks_discover=ini(config, "orchestrate_checks_discover"),
        checks_required=ini(config, "orchestrate_checks_required"),
        check_timeout=ini(config, "orchestrate_check_timeout"),
        llm_env={env: ini(config, key) for key, env in LLM_INI.items() if ini(config, key)}
        | ({"ORCHESTRATE_MCP_PROJECT": "true"} if opt.orchestrate_mcp_project else {}),
    )
