"""A parameter the plan removes (the body never read it) is no behaviour change: the candidate
is called with the base's arguments less that one, by keyword or by its position; a parameter
that disappears without the plan saying so still diverges (tabulate: ``Remove unused parameter
rowalign from _append_basic_row`` failed Monte Carlo on the function itself)."""

from __future__ import annotations

import pytest

from pytest_orchestrator.phases.montecarlo import phase as mc
from pytest_orchestrator.phases.montecarlo.differential import FunctionReport, read_report
from pytest_orchestrator.phases.montecarlo.targets import removed_params_from
from pytest_orchestrator.plan import Plan, Step
from tests.phases.montecarlo.test_module_rename import make_run

BASE = '''\
def scaled(value: int, unused: int, factor: int) -> int:
    return value * factor


def offset(value: int, ignored: int, step: int) -> int:
    return value + step
'''

REMOVED = '''\
def scaled(value: int, factor: int) -> int:
    return value * factor


def offset(value: int, step: int) -> int:
    return value + step
'''

REMOVE = Step(id="remove", pool="mutate", op="change_signature",
              args={"symbol": "scaled", "action": "remove", "param": "unused"})  # fmt: skip


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FunctionReport]:
    tmp = tmp_path_factory.mktemp("removed")
    tree = tmp / "tree"
    (tree / "src" / "cache").mkdir(parents=True)
    (tree / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["src"]\n')
    (tree / "src" / "cache" / "__init__.py").write_text("")
    (tree / "src" / "cache" / "func.py").write_text(BASE)
    run = make_run(tmp, tree, ("scaled", "offset"))
    base = mc.baseline(run)
    (tree / "src" / "cache" / "func.py").write_text(REMOVED)  # `offset` loses one too, unplanned
    mc.candidate(run, base, Plan(command="remove unused from scaled", steps=[REMOVE]))
    report = read_report(run.run_dir / mc.DIFFERENTIAL_FILE)
    assert report is not None
    return {f.target.rpartition(".")[2]: f for f in report.functions}


def test_the_planned_removal_is_not_a_divergence(reports: dict[str, FunctionReport]) -> None:
    assert reports["scaled"].compared > 50
    assert reports["scaled"].divergent == 0


def test_an_unplanned_removal_still_diverges(reports: dict[str, FunctionReport]) -> None:
    assert reports["offset"].divergent > 0


def test_removals_are_read_from_the_plan() -> None:
    add = {"symbol": "scaled", "action": "add", "param": "x", "default": "1"}
    other = Step(id="add", pool="mutate", op="change_signature", args=add)
    assert removed_params_from(Plan(command="c", steps=[REMOVE, other])) == {"scaled": ["unused"]}
    assert removed_params_from(None) == {}
