"""The rules planner's sentences for the refactorings beyond rename: one op each, validated."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_orchestrator.errors import EditError, PlannerRefused
from pytest_orchestrator.phases.plan.planners import PlanContext
from pytest_orchestrator.phases.plan.planners.rules import RulesPlanner
from pytest_orchestrator.plan import OPS, Budgets, validate_plan
from pytest_orchestrator.tokens import TokenLedger


def mutate_step(root: Path, command: str) -> tuple[str, dict[str, object]]:
    context = PlanContext(
        command=command,
        worktree=root,
        slices=[],
        outline=[],
        tests=[],
        budgets=Budgets(),
        ops=dict(OPS),
        ledger=TokenLedger(),
    )
    (plan,) = RulesPlanner().plan(context)
    validate_plan(plan)
    assert plan.behaviour_preserving
    assert [s.op for s in plan.order()] == ["search", plan.steps[1].op, "lint", "montecarlo"]
    return plan.steps[1].op, plan.steps[1].args


@pytest.mark.parametrize(
    ("command", "op", "args"),
    [
        (
            "Move add to mathutils.py",
            "move_symbol",
            {"symbol": "add", "to": "mathutils.py", "path": "calc.py", "reexport": False},
        ),
        (
            "Move the function add to utils/math.py and keep a re-export.",
            "move_symbol",
            {"symbol": "add", "to": "utils/math.py", "path": "calc.py", "reexport": True},
        ),
        (
            "move SCALE from calc to consts.",
            "move_symbol",
            {"symbol": "SCALE", "to": "consts.py", "path": "calc.py", "reexport": False},
        ),
        ("Rename module calc to arith", "rename_module", {"path": "calc.py", "new_name": "arith"}),
        (
            "Rename the module `calc.py` to `arith.py`.",
            "rename_module",
            {"path": "calc.py", "new_name": "arith"},
        ),
        (
            "Add parameter precision=2 to add",
            "change_signature",
            {
                "symbol": "add",
                "action": "add",
                "param": "precision",
                "default": "2",
                "path": "calc.py",
            },
        ),
        (
            "Add a parameter strict with default False to scaled.",
            "change_signature",
            {
                "symbol": "scaled",
                "action": "add",
                "param": "strict",
                "default": "False",
                "path": "calc.py",
            },
        ),
        (
            "Rename parameter a of add to left",
            "change_signature",
            {
                "symbol": "add",
                "action": "rename",
                "param": "a",
                "new_name": "left",
                "path": "calc.py",
            },
        ),
        (
            "Rename the parameter x to value in Meter.reading.",
            "change_signature",
            {
                "symbol": "Meter.reading",
                "action": "rename",
                "param": "x",
                "new_name": "value",
                "path": "calc.py",
            },
        ),
        ("Inline SCALE", "inline", {"symbol": "SCALE", "path": "calc.py"}),
    ],
)
def test_each_sentence_plans_its_op(
    make_repo: Callable[..., Path], command: str, op: str, args: dict[str, object]
) -> None:
    assert mutate_step(make_repo(), command) == (op, args)


def test_removing_an_unused_parameter_is_planned(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"area.py": "def area(w, h, unit=None):\n    return w * h\n"})
    assert mutate_step(repo, "Remove unused parameter unit from area.") == (
        "change_signature",
        {"symbol": "area", "action": "remove", "param": "unit", "path": "area.py"},
    )


def test_removing_a_used_parameter_is_refused_when_planning(
    make_repo: Callable[..., Path],
) -> None:
    with pytest.raises(EditError, match=r"'b' is used in the body of 'add'"):
        mutate_step(make_repo(), "Remove unused parameter b from add")


def test_a_missing_module_is_named(make_repo: Callable[..., Path]) -> None:
    with pytest.raises(EditError, match="no module or package 'nowhere'"):
        mutate_step(make_repo(), "Rename module nowhere to somewhere")


def test_the_refusal_lists_every_sentence(make_repo: Callable[..., Path]) -> None:
    with pytest.raises(PlannerRefused, match=r"move NAME to .*inline NAME.*extract lines"):
        mutate_step(make_repo(), "Make sizing faster")


def test_inlining_a_variable_the_function_lacks_is_refused_when_planning(
    make_repo: Callable[..., Path],
) -> None:
    with pytest.raises(EditError, match=r"'result' is bound 0 times in 'scaled'"):
        mutate_step(make_repo(), "Inline the variable result in scaled")


def test_inlining_a_local_variable_is_planned(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"area.py": "def area(w, h):\n    size = w * h\n    return size\n"})
    assert mutate_step(repo, "Inline the variable size in area.") == (
        "inline",
        {"symbol": "size", "within": "area", "path": "area.py"},
    )


def test_an_extraction_a_call_cannot_express_is_refused_when_planning(
    make_repo: Callable[..., Path],
) -> None:
    repo = make_repo({"clip.py": "def clip(x):\n    if x < 0:\n        return 0\n    return x\n"})
    with pytest.raises(EditError, match=r"lines 2-3 of clip\.py contain a `return`"):
        mutate_step(repo, "Extract lines 2-3 of clip.py into floor")


SUMS = "def twice(x):\n    # sum\n    total = x + x\n    out = total * 2\n\n    return out\n"


@pytest.mark.parametrize(
    ("command", "args"),
    [
        (
            "Extract lines 3-4 of sums.py into a function named double",
            {"new_name": "double", "path": "sums.py", "start_line": 3, "end_line": 4},
        ),
        (
            "Extract the block 'sum' in twice into double.",
            {"new_name": "double", "path": "sums.py", "symbol": "twice", "block": "sum"},
        ),
    ],
)
def test_extract_sentences_plan_their_op(
    make_repo: Callable[..., Path], command: str, args: dict[str, object]
) -> None:
    assert mutate_step(make_repo({"sums.py": SUMS}), command) == ("extract", args)
