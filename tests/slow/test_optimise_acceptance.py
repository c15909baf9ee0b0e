"""Optimise inside a real `pytest --orchestrate` run: the grid's best point is what lands."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git

CONFTEST = """\
import pytest


@pytest.hookimpl(optionalhook=True)
def pytest_orchestrator_montecarlo(mc):
    from rates import RATE

    n = mc.samples(1000)
    return [{"name": "growth", "samples": n, "metrics": {"score": -(RATE - 0.3) ** 2}}]
"""


def test_grid_is_tuned_and_the_best_point_is_committed(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """Every grid point is simulated; the branch carries the best one, the table is kept."""
    repo = make_repo({"rates.py": "RATE = 0.5\n", "conftest.py": CONFTEST})
    plan = {
        "command": "make the rate a parameter and tune it",
        "steps": [
            {"id": "rate", "pool": "mutate", "op": "replace_block",
             "args": {"path": "rates.py", "search": "RATE = 0.5", "replace": "RATE = {{rate}}"}},
            {"id": "tests", "pool": "scan", "op": "run_tests", "needs": ["rate"]},
        ],
        "grid": {"rate": [0.1, 0.2, 0.3, 0.4], "@objective": ["growth.score"]},
    }  # fmt: skip
    path = repo.parent / "plan.json"
    path.write_text(json.dumps(plan))
    result = pytester.runpytest_subprocess(
        "--orchestrate", "make the rate a parameter and tune it", "--orchestrate-plan", str(path)
    )
    assert result.ret == 0, result.stdout.str()
    branch = "orchestrate/make-the-rate-a-parameter-and-tune-it"
    assert git(repo, "show", f"{branch}:rates.py").strip() == "RATE = 0.3"
    (run_dir,) = (repo / ".orchestrate" / "runs").iterdir()
    table = json.loads((run_dir / "optimise.json").read_text())["grid"]
    assert [row["params"]["rate"] for row in table][:2] == [0.3, 0.2]
    assert len(table) == 4
