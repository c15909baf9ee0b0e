"""Live: the anthropic planner against the real API. Opt in with --run-live and a key."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pytest_orchestrator.options import DEFAULT_MODEL
from pytest_orchestrator.phases.plan.llm import LlmConfig
from pytest_orchestrator.phases.plan.planners import PlanContext
from pytest_orchestrator.phases.plan.planners.anthropic import AnthropicPlanner
from pytest_orchestrator.plan import OPS, Budgets, validate_plan
from pytest_orchestrator.tokens import TokenLedger

pytestmark = pytest.mark.live

# Read at import: the repository's conftest scrubs ANTHROPIC_* from every test's environment.
LIVE_KEY = os.environ.get("ANTHROPIC_API_KEY", "")
LIVE_BASE_URL = os.environ.get("ANTHROPIC_BASE_URL", "")
LIVE_MODEL = os.environ.get("ANTHROPIC_MODEL", DEFAULT_MODEL)


def test_a_real_model_plans_and_edits_within_the_budgets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claude returns a valid plan through submit_plan and a replace_block that applies."""
    if not LIVE_KEY:
        pytest.skip("set ANTHROPIC_API_KEY to run live tests")
    monkeypatch.setenv("ANTHROPIC_API_KEY", LIVE_KEY)
    if LIVE_BASE_URL:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", LIVE_BASE_URL)
    source = "def area(w, h):\n    return w * h\n"
    (tmp_path / "geometry.py").write_text(source)
    (tmp_path / "test_geometry.py").write_text(
        "from geometry import area\n\n\ndef test_area():\n    assert area(2, 3) == 6\n"
    )
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    context = PlanContext(
        command="Make area reject negative sizes with a ValueError",
        worktree=tmp_path,
        slices=[],
        outline=["geometry.py", "test_geometry.py"],
        tests=["test_geometry.py"],
        budgets=Budgets(),
        ops=dict(OPS),
        ledger=TokenLedger(),
    )
    planner = AnthropicPlanner(
        LlmConfig(
            model=LIVE_MODEL, mcp_max_tool_calls=0, max_output_tokens=2048, max_run_tokens=40_000
        )
    )
    (plan,) = planner.plan(context)
    validate_plan(plan, OPS)
    edits = [s for s in plan.steps if s.op == "replace_block"]
    assert edits, plan.dumps()
    assert source.count(edits[0].args["search"]) == 1
    assert all(c["input_tokens"] <= 4000 for c in context.ledger.calls)
