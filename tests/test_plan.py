"""plan.json: validation rejects every bad plan with the step and the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_orchestrator.errors import PlanError, PlanValidationError
from pytest_orchestrator.plan import (
    SCHEMA_FILE,
    Plan,
    Step,
    load_plan,
    plan_json_schema,
    repo_relative,
    validate_plan,
)


def plan(*steps: Step, **extra: object) -> Plan:
    return Plan(command="c", steps=list(steps), **extra)  # type: ignore[arg-type]


def search(step_id: str, needs: list[str] | None = None) -> Step:
    return Step(id=step_id, pool="scan", op="search", args={"pattern": "x"}, needs=needs or [])


def edit(
    step_id: str = "edit", path: str = "a.py", replace: str = "y", pool: str = "mutate"
) -> Step:
    args = {"path": path, "search": "x", "replace": replace}
    return Step(id=step_id, pool=pool, op="replace_block", args=args)


def problems(p: Plan) -> list[tuple[str, str]]:
    with pytest.raises(PlanValidationError) as info:
        validate_plan(p)
    return info.value.problems


def test_a_valid_plan_returns_each_steps_parsed_args() -> None:
    """A good plan validates and yields typed args per step."""
    parsed = validate_plan(plan(search("find"), edit()))
    assert parsed["edit"].path == "a.py"  # type: ignore[attr-defined]


def test_order_is_topological_and_stable() -> None:
    """Steps run after their needs; plan order breaks ties."""
    p = plan(search("c", ["b"]), search("a"), search("b", ["a"]), search("d"))
    assert [s.id for s in p.order()] == ["a", "d", "b", "c"]


@pytest.mark.parametrize(
    ("bad_plan", "expected"),
    [
        (plan(search("a"), search("a")), ("a", "duplicate step id")),
        (plan(search("a", ["ghost"])), ("a", "needs unknown step 'ghost'")),
        (plan(search("a", ["a"])), ("a", "needs itself")),
        (
            plan(Step(id="s", pool="fast", op="search", args={"pattern": "x"})),
            ("s", "unknown pool 'fast' (use 'scan' or 'mutate')"),
        ),
        (
            plan(edit(pool="scan")),
            ("edit", "op 'replace_block' writes files: it belongs in pool 'mutate'"),
        ),
        (
            plan(Step(id="bad id!", pool="scan", op="search", args={"pattern": "x"})),
            ("bad id!", "id must match [A-Za-z][A-Za-z0-9_.-]{0,63}"),
        ),
    ],
)
def test_structural_problems_name_the_step(bad_plan: Plan, expected: tuple[str, str]) -> None:
    """Duplicate ids, missing or self needs, unknown pools, writes in the scan pool."""
    assert expected in problems(bad_plan)


def test_cycles_are_rejected_with_every_step_on_them() -> None:
    """A cycle in needs names each step that is part of it."""
    found = problems(plan(search("a", ["c"]), search("b", ["a"]), search("c", ["b"]), search("d")))
    assert sorted(step for step, _ in found) == ["a", "b", "c"]


def test_unknown_ops_list_the_known_ones() -> None:
    (problem,) = problems(plan(Step(id="x", pool="scan", op="rm_rf", args={})))
    assert problem[0] == "x"
    assert "unknown op 'rm_rf'" in problem[1]
    assert "rename_symbol" in problem[1]


def test_oversize_edits_are_rejected() -> None:
    """An edit larger than the plan's max_edit_bytes is refused before it runs."""
    big = plan(edit(replace="x" * 2000), budgets={"max_edit_bytes": 1000})
    (problem,) = problems(big)
    assert problem == ("edit", "edit of 2000 bytes exceeds max_edit_bytes=1000")


def test_budgets_cannot_exceed_the_brief() -> None:
    """No plan may raise the 4k input / 4096 output token budgets or the 15 s Monte Carlo cap."""
    for budgets in (
        {"input_tokens_per_step": 5000},
        {"max_output_tokens": 8192},
        {"montecarlo_seconds": 60},
    ):
        with pytest.raises(ValueError, match="less than or equal"):
            plan(search("a"), budgets=budgets)


@pytest.mark.parametrize(
    "path", ["../x.py", "a/../../x.py", "/etc/passwd", "C:/x.py", ".git/config", "a\\b.py", ""]
)
def test_paths_outside_the_repository_are_rejected(path: str) -> None:
    with pytest.raises(ValueError, match="path"):
        repo_relative(path)


@given(st.lists(st.sampled_from(["a", "b", "..", ".", "c.py"]), min_size=1, max_size=6))
def test_accepted_paths_never_leave_the_root(parts: list[str]) -> None:
    """Property: whatever repo_relative accepts resolves inside the repository."""
    raw = "/".join(parts)
    try:
        clean = repo_relative(raw)
    except ValueError:
        return
    root = Path("/repo")
    assert (root / clean).resolve().is_relative_to(root)


def test_patch_paths_are_checked_too() -> None:
    """apply_patch may not touch files outside the repository either."""
    patch = "--- a/../../etc/passwd\n+++ b/../../etc/passwd\n@@ -1 +1 @@\n-x\n+y\n"
    found = problems(plan(Step(id="p", pool="mutate", op="apply_patch", args={"patch": patch})))
    assert found[0][0] == "p"
    assert "leaves the repository" in found[0][1]


def test_load_plan_explains_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text('{"command": "c", "steps": [{"id": 1}]}')
    with pytest.raises(PlanError, match=r"steps\.0\.pool: Field required"):
        load_plan(path)


def test_load_plan_validates(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(plan(search("a", ["b"])).dumps())
    with pytest.raises(PlanValidationError, match="needs unknown step 'b'"):
        load_plan(path)


def test_the_shipped_schema_file_is_current() -> None:
    """plan.schema.json in the package equals what the model publishes."""
    assert json.loads(SCHEMA_FILE.read_text()) == plan_json_schema()


def test_grid_parameters_validate_with_their_first_value() -> None:
    """Args with {{name}} placeholders validate against the grid's values."""
    p = plan(
        Step(
            id="e",
            pool="mutate",
            op="replace_block",
            args={"path": "a.py", "search": "CAP = 0.25", "replace": "CAP = {{cap}}"},
        ),
        grid={"cap": [0.1, 0.2]},
    )
    validate_plan(p)
