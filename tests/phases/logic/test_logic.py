"""Logic: call graph among candidates, tiers, budget fitting, and the dry-run listing."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from pytest_orchestrator.model import LogicResult
from pytest_orchestrator.phases.logic.phase import format_ranking, prune
from pytest_orchestrator.phases.map.phase import map_repository

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "wheel"
RENAME = "Rename calculate_position_size to position_size, test at scale, post PR"


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXAMPLE, tmp_path / "wheel"))


def logic_of(root: Path, command: str, budget: int = 4000) -> LogicResult:
    return prune(map_repository(root, command), root, budget_tokens=budget)


def test_the_definition_is_kept_first(wheel: Path) -> None:
    """For a rename, the first kept slice is the named symbol's definition."""
    result = logic_of(wheel, RENAME)
    first = result.kept[0]
    assert (first.slice.path, first.slice.symbol) == (
        "wheel_sizing/sizing.py",
        "calculate_position_size",
    )
    assert first.reason.startswith("target")


def test_callers_across_modules_are_edges(wheel: Path) -> None:
    """The call graph links callers in other modules to the definition they import."""
    result = logic_of(wheel, RENAME)
    callee = "wheel_sizing/sizing.py::calculate_position_size"
    callers = {caller for caller, target in result.edges if target == callee}
    assert "wheel_sizing/sizing.py::plan_cash_secured_put" in callers
    assert any(c.startswith("tests/test_sizing.py::") for c in callers)


def test_kept_slices_fit_the_budget(wheel: Path) -> None:
    """Kept slices never exceed the budget, and every slice says why it was kept or dropped."""
    result = logic_of(wheel, RENAME, budget=2000)
    assert result.used_tokens == sum(r.slice.tokens for r in result.kept)
    assert result.used_tokens <= result.budget_tokens
    assert all(r.reason for r in result.slices)
    assert any("over budget" in r.reason for r in result.slices if not r.kept)


def test_the_least_relevant_are_dropped_first(tmp_path: Path) -> None:
    """With room for only some context, the higher-scored context slices are the ones kept."""
    body = "\n".join(f"    widget_{i} = {i}" for i in range(40))
    files = {
        f"m{i}.py": f"def widget_part_{i}():\n" + "\n".join([body] + ["    widget = 1"] * i)
        for i in range(1, 6)
    }
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text) + "\n")
    candidates = map_repository(tmp_path, "widget")
    budget = 1000 + candidates.slices[0].slice.tokens + candidates.slices[1].slice.tokens
    result = prune(candidates, tmp_path, budget_tokens=budget, floor=0.0)
    kept = [r.score for r in result.slices if r.kept]
    dropped = [r.score for r in result.slices if not r.kept]
    assert kept
    assert dropped
    assert min(kept) >= max(dropped)


def test_format_ranking_lists_files_then_slices(wheel: Path) -> None:
    """The dry-run listing names the ranked files and the slices with kept/dropped marks."""
    lines = format_ranking(logic_of(wheel, RENAME), limit=5)
    text = "\n".join(lines)
    assert lines[0].startswith("ranked files")
    assert "wheel_sizing/sizing.py::calculate_position_size" in text
    assert "[kept]" in text
    assert "more in slices.json" in text


def test_logic_result_serialises_for_slices_json(wheel: Path) -> None:
    """Everything slices.json needs is in the model dump: components, kept and reason."""
    dumped = logic_of(wheel, RENAME).model_dump(mode="json")
    first = dumped["slices"][0]
    assert set(first) >= {"slice", "score", "components", "kept", "reason"}
    assert {"definition", "lexical", "graph", "vector"} <= set(first["components"])


def test_map_and_logic_run_alone_from_the_command_line(
    wheel: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`python -m pytest_orchestrator.phases.logic.phase` prints the ranking and can save
    slices.json."""
    from pytest_orchestrator.phases.logic.phase import main

    out = tmp_path / "slices.json"
    assert main([RENAME, "--root", str(wheel), "--limit", "3", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wheel_sizing/sizing.py::calculate_position_size" in printed
    assert LogicResult.model_validate_json(out.read_text()).kept


def test_a_target_too_large_for_the_budget_keeps_its_head(tmp_path: Path) -> None:
    """A definition larger than the budget is dropped whole but its first lines are kept."""
    body = "\n".join(f"    step_{i} = compute({i})" for i in range(400))
    (tmp_path / "big.py").write_text(f'def giant_function(x):\n    """Doc."""\n{body}\n')
    result = logic_of(tmp_path, "Rename giant_function to huge_function", budget=2000)
    whole, head = result.slices[0], result.slices[1]
    assert not whole.kept
    assert "its first lines" in whole.reason
    assert head.kept
    assert (head.slice.symbol, head.slice.start_line) == ("giant_function", 1)
    assert head.slice.end_line < whole.slice.end_line
    assert result.used_tokens <= result.budget_tokens


def test_the_hook_fits_the_runs_per_step_budget(wheel: Path) -> None:
    """The default Logic hook budgets with the run's input_tokens_per_step."""
    from types import SimpleNamespace
    from typing import cast

    from pytest_orchestrator.phases.logic.phase import PROMPT_RESERVE, pytest_orchestrator_logic
    from pytest_orchestrator.run import Run

    run = SimpleNamespace(
        worktree=wheel,
        base_tree=None,
        settings=SimpleNamespace(
            budgets=SimpleNamespace(input_tokens_per_step=2500),
            cache_dir=wheel.parent / "cache",
            fresh=False,
        ),
    )
    result = pytest_orchestrator_logic(cast(Run, run), map_repository(wheel, RENAME))
    assert result.budget_tokens == 2500 - PROMPT_RESERVE
    assert result.used_tokens <= result.budget_tokens
