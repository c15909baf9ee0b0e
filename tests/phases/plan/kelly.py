"""The tiny repository the planner tests plan against: one ``kelly`` function to rename."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pytest_orchestrator.phases.plan.planners import PlanContext
from pytest_orchestrator.plan import OPS, Budgets
from pytest_orchestrator.tokens import TokenLedger

COMMAND = "Rename kelly to kelly_fraction"
PLAN = [
    {
        "id": "rename",
        "pool": "mutate",
        "op": "rename_symbol",
        "args": {"symbol": "kelly", "new_name": "kelly_fraction", "path": "sizing.py"},
    },
    {"id": "tests", "pool": "scan", "op": "run_tests", "needs": ["rename"]},
]
"""A plan a scripted model answer carries: the rename and a test run."""


def kelly_repo(tmp_path: Path) -> Path:
    """``tmp_path/repo``: a git repository holding ``sizing.py`` with ``kelly``."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "sizing.py").write_text("def kelly(p, b):\n    return p - (1 - p) / b\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def kelly_context(root: Path, **extra: object) -> PlanContext:
    """The planning context of `COMMAND` on ``root`` (``extra`` overrides fields)."""
    values: dict[str, object] = {"budgets": Budgets(), **extra}
    return PlanContext(
        command=COMMAND,
        worktree=root,
        slices=[],
        outline=["sizing.py"],
        tests=[],
        ops=dict(OPS),
        ledger=TokenLedger(),
        **values,  # type: ignore[arg-type]
    )
