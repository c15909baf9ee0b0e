"""Monte Carlo inside real `pytest --orchestrate` runs: evidence for a rename, and a catch."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest


def run_dir(repo: Path) -> Path:
    (found,) = (repo / ".orchestrate" / "runs").iterdir()
    return found


def test_rename_comes_with_behaviour_evidence(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """The renamed function is sampled on both sides under its two names and agrees."""
    repo = make_repo()
    result = pytester.runpytest_subprocess(
        "--orchestrate", "Rename add to plus, test at scale, post PR"
    )
    assert result.ret == 0, result.stdout.str()
    rd = run_dir(repo)
    summary = json.loads((rd / "mc_summary.json").read_text())
    assert summary["deltas"]
    assert not [d for d in summary["deltas"] if not d["within_tolerance"]]
    report = json.loads((rd / "mc_differential.json").read_text())
    add = next(f for f in report["functions"] if f["target"] == "calc.add")
    assert add["candidate_name"] == "calc.plus"
    assert add["compared"] > 0
    assert add["divergent"] == 0
    assert "identical within tolerance" in (rd / "PR.md").read_text()


def test_behaviour_change_the_tests_miss_fails_a_preserving_plan(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """A 'refactor' the suite lets through is caught by sampling, with a counterexample."""
    repo = make_repo()
    plan = {
        "command": "refactor scaled",
        "behaviour_preserving": True,
        "steps": [
            {"id": "edit", "pool": "mutate", "op": "replace_block",
             "args": {"path": "calc.py", "search": "return add(x, x) * SCALE",
                      "replace": "return add(x, x) * SCALE if x < 50 else 0"}},
            {"id": "tests", "pool": "scan", "op": "run_tests", "needs": ["edit"]},
            {"id": "montecarlo", "pool": "scan", "op": "montecarlo", "needs": ["edit"]},
        ],
    }  # fmt: skip
    path = repo.parent / "plan.json"
    path.write_text(json.dumps(plan))
    result = pytester.runpytest_subprocess(
        "--orchestrate", "refactor scaled", "--orchestrate-plan", str(path),
        "--orchestrate-attempts", "1",
    )  # fmt: skip
    assert result.ret == 1, result.stdout.str()
    rd = run_dir(repo)
    report = json.loads((rd / "mc_differential.json").read_text())
    scaled = next(f for f in report["functions"] if f["target"] == "calc.scaled")
    assert scaled["divergent"] > 0
    assert scaled["counterexample"]["input"].startswith("(")
    run = json.loads((rd / "run.json").read_text())
    (attempt,) = run["attempts"]
    assert attempt["tests_failed"] == []  # the suite alone would have let it through
    mc_step = next(s for s in attempt["steps"] if s["op"] == "montecarlo")
    assert not mc_step["ok"] or "montecarlo" in attempt["failed_checks"]
