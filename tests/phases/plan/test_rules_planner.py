"""The rules planner: renames, planned offline and deterministically; everything else refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_orchestrator.errors import EditError, PlannerRefused
from pytest_orchestrator.phases.execute.refactor import rename
from pytest_orchestrator.phases.plan.planners import PlanContext
from pytest_orchestrator.phases.plan.planners.rules import RENAME, RulesPlanner
from pytest_orchestrator.plan import OPS, Budgets, validate_plan
from pytest_orchestrator.tokens import TokenLedger


def context(root: Path, command: str) -> PlanContext:
    return PlanContext(
        command=command,
        worktree=root,
        slices=[],
        outline=[],
        tests=[],
        budgets=Budgets(),
        ops=dict(OPS),
        ledger=TokenLedger(),
    )


@pytest.mark.parametrize(
    ("command", "old", "new"),
    [
        ("Rename add to plus", "add", "plus"),
        ("rename the function `add` to `plus`, test at scale, post PR", "add", "plus"),
        ("Please RENAME method Meter.reading into measure and merge", "Meter.reading", "measure"),
        ("rename SCALE -> FACTOR", "SCALE", "FACTOR"),
    ],
)
def test_rename_commands_are_understood(command: str, old: str, new: str) -> None:
    match = RENAME.search(command)
    assert match is not None
    assert (match["old"], match["new"]) == (old, new)


def test_a_rename_plan_is_valid_and_promises_behaviour(make_repo: Callable[..., Path]) -> None:
    """The plan: search, rename (mutate), then lint and Monte Carlo in the scan pool; the
    whole suite is the gate's to run, not the plan's."""
    repo = make_repo()
    (plan,) = RulesPlanner().plan(context(repo, "Rename add to plus, post PR"))
    validate_plan(plan)
    assert [(s.id, s.pool) for s in plan.order()] == [
        ("find", "scan"),
        ("rename", "mutate"),
        ("lint", "scan"),
        ("montecarlo", "scan"),
    ]
    assert plan.step("rename").args == {"symbol": "add", "new_name": "plus", "path": "calc.py"}
    assert plan.behaviour_preserving


def test_commands_beyond_rules_name_the_planner_that_can(make_repo: Callable[..., Path]) -> None:
    with pytest.raises(PlannerRefused, match=r"needs an LLM planner.*ANTHROPIC_API_KEY"):
        RulesPlanner().plan(context(make_repo(), "Refactor sizing, test at scale, post PR"))


def test_the_rules_planner_never_replans() -> None:
    """A deterministic plan that failed would fail again: no second attempt is offered."""
    assert RulesPlanner.can_replan is False


def test_methods_and_constants_are_renamed_everywhere(make_repo: Callable[..., Path]) -> None:
    """rope follows methods through instances and constants through their uses."""
    repo = make_repo()
    rename(repo, "Meter.reading", "measure")
    rename(repo, "SCALE", "FACTOR")
    calc = (repo / "calc.py").read_text()
    assert "def measure(self, x)" in calc
    assert "* FACTOR" in calc
    assert "SCALE" not in calc
    assert "Meter().measure(2)" in (repo / "tests" / "test_calc.py").read_text()


def test_an_ambiguous_name_asks_for_the_class(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"other.py": "class Gauge:\n    def reading(self):\n        return 1\n"})
    with pytest.raises(
        EditError, match=r"defined in several places.*e\.g\. 'Meter\.reading' or 'Gauge\.reading'"
    ):
        RulesPlanner().plan(context(repo, "rename reading to measure"))


def test_can_plan_decides_before_anything_runs(make_repo: Callable[..., Path]) -> None:
    """The early decision: a command it does not understand, or a symbol that does not
    exist, is refused by ``can_plan``, which the session calls before sampling and tests."""
    from pytest_orchestrator.phases.plan.planners import Planner
    from pytest_orchestrator.phases.plan.planners.scripted import ScriptedPlanner

    repo = make_repo()
    planner = RulesPlanner()
    assert isinstance(planner, Planner)
    assert isinstance(ScriptedPlanner([]), Planner)  # the protocol names can_plan
    planner.can_plan(context(repo, "Rename add to plus"))
    with pytest.raises(PlannerRefused, match="does not understand"):
        planner.can_plan(context(repo, "Make the calculator faster"))
    with pytest.raises((PlannerRefused, EditError)):
        planner.can_plan(context(repo, "Rename nowhere_to_be_found to plus"))


def test_plan_reuses_the_parse_can_plan_made(
    make_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """can_plan then plan on the same base: the definition is looked up once (on a large
    tree each lookup is a ripgrep pass and a parse of the files it names)."""
    from pytest_orchestrator.phases.execute import refactor

    lookups: list[str] = []
    real = refactor.locate

    def counted(root: Path, old: str, new: str, path: str | None = None) -> refactor.Definition:
        lookups.append(old)
        return real(root, old, new, path)

    monkeypatch.setattr(refactor, "locate", counted)
    repo = make_repo()
    planner = RulesPlanner()
    planner.can_plan(context(repo, "Rename add to plus"))
    (plan,) = planner.plan(context(repo, "Rename add to plus"))
    assert lookups == ["add"]
    assert plan.step("rename").args == {"symbol": "add", "new_name": "plus", "path": "calc.py"}
    (other,) = planner.plan(context(repo, "Rename scaled to times"))  # another command
    assert lookups == ["add", "scaled"]
    assert other.step("rename").args["symbol"] == "scaled"
