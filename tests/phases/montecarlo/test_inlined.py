"""A function the plan inlines is gone from the candidate by design: its callers are
compared, and it is not a divergence; a function that disappears without the plan saying
so still is (tabulate: ``Inline _flat_list`` failed Monte Carlo on the inlined function)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_orchestrator.phases.montecarlo.differential import FunctionReport
from pytest_orchestrator.phases.montecarlo.targets import inlined_from
from pytest_orchestrator.plan import Plan, Step
from tests.phases.montecarlo.differential_helpers import compare

BASE = '''\
def flat(items: list[int]) -> list[int]:
    return [x * 2 for x in items]


def total(items: list[int]) -> int:
    return sum(flat(items))


def other(n: int) -> int:
    return n + 1
'''

INLINED = '''\
def total(items: list[int]) -> int:
    return sum([x * 2 for x in items])
'''

INLINE = Step(id="inline", pool="mutate", op="inline",
              args={"symbol": "flat", "path": "src/cache/func.py"})  # fmt: skip


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FunctionReport]:
    def change(package: Path) -> None:
        (package / "func.py").write_text(INLINED)

    return compare(
        tmp_path_factory.mktemp("inlined"), BASE, change,
        Plan(command="inline flat", steps=[INLINE]), ("flat", "total", "other"),
    )  # fmt: skip


def test_the_inlined_function_is_not_a_divergence(reports: dict[str, FunctionReport]) -> None:
    assert reports["flat"].divergent == 0
    assert reports["flat"].skipped == "inlined by the plan: its callers are compared"
    assert reports["total"].compared > 50
    assert reports["total"].divergent == 0


def test_a_function_gone_without_the_plan_saying_so_diverges(
    reports: dict[str, FunctionReport],
) -> None:
    assert reports["other"].divergent == 1


def test_only_module_level_inlines_count(tmp_path: Path) -> None:
    local = Step(id="i", pool="mutate", op="inline",
                 args={"symbol": "x", "within": "f", "path": "m.py"})  # fmt: skip
    plan = Plan(command="x", steps=[INLINE, local])
    assert inlined_from(tmp_path, plan) == {"src.cache.func.flat"}  # no source root here
