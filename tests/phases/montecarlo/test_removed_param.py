"""A parameter the plan removes (the body never read it) is no behaviour change: the candidate
is called with the base's arguments less that one, by keyword or by its position; a parameter
that disappears without the plan saying so still diverges (tabulate: ``Remove unused parameter
rowalign from _append_basic_row`` failed Monte Carlo on the function itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_orchestrator.phases.montecarlo.differential import FunctionReport
from pytest_orchestrator.phases.montecarlo.targets import removed_params_from
from pytest_orchestrator.plan import Plan, Step
from tests.phases.montecarlo.differential_helpers import compare

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
    def change(package: Path) -> None:
        (package / "func.py").write_text(REMOVED)

    return compare(
        tmp_path_factory.mktemp("removed"), BASE, change,
        Plan(command="remove unused from scaled", steps=[REMOVE]), ("scaled", "offset"),
    )  # fmt: skip


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
