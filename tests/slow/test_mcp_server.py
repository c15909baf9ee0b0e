"""Our MCP server's orchestrate tool, driven by the mcp client: a dry run on a real repository."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pytest_orchestrator.mcp.client import McpHub, McpServerConfig

CALC = 'def add(a, b):\n    """Return a + b."""\n    return a + b\n'
TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


def test_orchestrate_runs_pytest_orchestrate_and_returns_run_json(tmp_path: Path) -> None:
    """orchestrate(command, root, dry_run=True) plans with the rules planner and changes nothing."""
    repo = tmp_path / "calc"
    repo.mkdir()
    (repo / "calc.py").write_text(CALC)
    (repo / "test_calc.py").write_text(TESTS)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "calc"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    ours = McpServerConfig(
        "orchestrator",
        sys.executable,
        ("-m", "pytest_orchestrator.mcp"),
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    with McpHub.start([ours], root=tmp_path) as planning:
        assert "mcp__orchestrator__orchestrate" not in planning.tools  # it may write
    with McpHub.start([ours], root=tmp_path, read_only=False) as hub:
        text, is_error = hub.call(
            "mcp__orchestrator__orchestrate",
            {
                "command": "Rename add to plus",
                "root": str(repo),
                "dry_run": True,
                "planner": "rules",
            },
            timeout=600,
        )
    assert not is_error, text
    answer = json.loads(text)
    assert answer["exit_status"] == 0, answer
    assert answer["run"]["exit_reason"] == "dry_run"
    assert answer["run"]["planner"] == "rules"
    plan = json.loads((Path(answer["run_dir"]) / "plan.json").read_text())
    assert any(s["op"] == "rename_symbol" for s in plan["steps"])
    assert (repo / "calc.py").read_text() == CALC
