"""The README's main command, end to end, on a fresh copy of the bundled example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import git, snapshot

EXAMPLES = Path(__file__).parents[2] / "examples"
BRANCH = "orchestrate/rename-calculate-position-size-to-position-size"


def test_the_example_run_ends_green_with_a_full_pr_bundle(tmp_path: Path) -> None:
    """examples/run.sh: a branch with one commit, every run-directory file, a clean checkout."""
    dest = tmp_path / "wheel"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # an activated venv
    proc = subprocess.run(
        ["bash", str(EXAMPLES / "run.sh"), str(dest)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PATH": path},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "orchestrate: GREEN" in proc.stdout

    # The branch: exactly one commit on top of main, touching definition, callers and tests.
    assert git(dest, "rev-list", "--count", f"main..{BRANCH}").strip() == "1"
    changed = set(git(dest, "diff", "--name-only", f"main..{BRANCH}").split())
    assert {
        "wheel_sizing/sizing.py",
        "wheel_sizing/__init__.py",
        "wheel_sizing/simulation.py",
        "conftest.py",
        "tests/test_sizing.py",
        "tests/test_simulation.py",
    } <= changed
    sizing = git(dest, "show", f"{BRANCH}:wheel_sizing/sizing.py")
    assert "def position_size(" in sizing
    assert "calculate_position_size" not in sizing

    # The user's checkout: still main, untouched, clean; no worktree left.
    assert git(dest, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    state = snapshot(dest)
    assert state["<git status>"] == ""
    assert state["<worktrees>"] == 1
    assert "calculate_position_size" in (dest / "wheel_sizing" / "sizing.py").read_text()

    # The run directory: every file of the contract, with real content.
    (run,) = (dest / ".orchestrate" / "runs").iterdir()
    assert (run / "command.txt").read_text().startswith("Rename calculate_position_size")
    slices = json.loads((run / "slices.json").read_text())
    top = slices["slices"][0]
    assert top["kept"]
    assert top["slice"]["symbol"] == "calculate_position_size"
    plan = json.loads((run / "plan.json").read_text())
    assert plan["planner"] == "rules"
    assert plan["behaviour_preserving"] is True
    mc = json.loads((run / "mc_summary.json").read_text())
    assert [s["name"] for s in mc["base"]] == [s["name"] for s in mc["candidate"]]
    assert "wheel_pnl" in [s["name"] for s in mc["base"]]
    assert mc["deltas"]
    assert all(d["within_tolerance"] for d in mc["deltas"])
    tests = json.loads((run / "tests.json").read_text())
    (attempt,) = tests["attempts"]
    outcomes = {t["outcome"] for t in attempt["result"]["tests"]}
    assert outcomes == {"passed"}
    assert len(attempt["result"]["tests"]) > 100
    assert "-def calculate_position_size(" in (run / "diff.patch").read_text()
    spans = json.loads((run / "trace.json").read_text())["spans"]
    assert {"phase.map", "phase.execute", "step.rename"} <= {s["name"] for s in spans}
    pr = (run / "PR.md").read_text()
    assert "**Gate: green** on attempt 1" in pr
    assert "wheel_pnl" in pr
    record = json.loads((run / "run.json").read_text())
    assert record["outcome"] == "green"
    assert record["publish"]["branch"] == BRANCH
    assert record["memory"]["peak_ratio"] < 0.70


def test_widening_win_prob_and_skipping_its_tests_is_refused(tmp_path: Path) -> None:
    """The red team's plan on the example: let win_prob reach 1.5 and mark the tests that
    reject it flaky. Refused: no branch, the checkout unchanged, the finding named."""
    plan = tmp_path / "widen.json"
    plan.write_text(
        json.dumps(
            {
                "command": "Allow win probabilities up to 1.5",
                "steps": [
                    {
                        "id": "widen",
                        "pool": "mutate",
                        "op": "replace_block",
                        "args": {
                            "path": "wheel_sizing/kelly.py",
                            "search": "if not 0.0 <= win_prob <= 1.0",
                            "replace": "if not 0.0 <= win_prob <= 1.5",
                        },
                    },
                    {
                        "id": "flaky",
                        "pool": "mutate",
                        "op": "replace_block",
                        "args": {
                            "path": "tests/test_kelly.py",
                            "search": "def test_invalid_odds_are_rejected(",
                            "replace": "@pytest.mark.skip(reason='flaky')\n"
                            "def test_invalid_odds_are_rejected(",
                        },
                    },
                ],
            }
        )
    )
    dest = tmp_path / "wheel"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    proc = subprocess.run(
        [
            "bash",
            str(EXAMPLES / "run.sh"),
            str(dest),
            "Allow win probabilities up to 1.5",
            f"--orchestrate-plan={plan}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PATH": path},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # the edited test ran as at the base, and so caught the widening; the marker is named
    assert "FAILED tests/test_kelly.py::test_invalid_odds_are_rejected[1.01-1.0]" in proc.stdout
    assert "tests/test_kelly.py:73: skip marker added" in proc.stdout
    assert "skip call added" not in proc.stdout
    assert git(dest, "branch", "--list", "orchestrate/*") == ""
    assert git(dest, "status", "--porcelain") == ""
