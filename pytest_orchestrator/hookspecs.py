"""The hooks of an orchestrated run: the table of contents of ``pytest --orchestrate``.

Each phase is a hook, so a ``conftest.py`` at the root of the target repository, or any
plugin, can extend or replace it. The plugin registers the default implementations with
``trylast``; returning a non-None value from your own implementation replaces the phase.

Phases 1-5 run in the controller during collection; 6 and 7 during ``pytest_runtestloop``;
publishing during ``pytest_sessionfinish``. Only the Monte Carlo hook runs elsewhere: in a
child process per revision, so that base and candidate code never share an interpreter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from numpy.random import Generator

    from pytest_orchestrator.items import PlanItem
    from pytest_orchestrator.model import (
        Attempt,
        Check,
        LogicResult,
        MapResult,
        Phase,
        PublishResult,
        SimulationResult,
    )
    from pytest_orchestrator.phases.montecarlo.child.simulation import MonteCarloContext
    from pytest_orchestrator.phases.plan.planners import PlanContext
    from pytest_orchestrator.plan import OpSpec, Plan
    from pytest_orchestrator.run import Run

hookspec = pluggy.HookspecMarker("pytest")


# -------------------------------------------------------------------------------------------
# 1. Map: the command -> candidate files and slices
# -------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def pytest_orchestrator_map(run: Run) -> MapResult | None:
    """Find the code the command is about: search, import graph, memory, candidate slices.

    :param run: the run; ``run.command`` is the sentence, ``run.worktree`` the tree to read.

    Stops at the first non-None result. Runs in the controller.
    """


# -------------------------------------------------------------------------------------------
# 2. Logic: candidates -> the slices the planner sees, within the token budget
# -------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def pytest_orchestrator_logic(run: Run, candidates: MapResult) -> LogicResult | None:
    """Prune the candidates with the call graph and fit them into the per-step budget.

    :param candidates: the result of Map.

    Stops at the first non-None result. Runs in the controller.
    """


# -------------------------------------------------------------------------------------------
# 3. Monte Carlo: behaviour evidence, base against candidate
# -------------------------------------------------------------------------------------------


@hookspec
def pytest_orchestrator_montecarlo(
    mc: MonteCarloContext,
) -> list[SimulationResult | dict[str, Any]] | None:
    """Contribute simulations: run them and return their metrics.

    :param mc: ``mc.rng`` (seeded identically on both sides), ``mc.seed``, ``mc.side``
        (``"base"`` or ``"candidate"``), ``mc.samples(n)``, ``mc.time_left()``,
        ``mc.should_stop()``.

    Runs in a child process once per revision, with that revision's tree first on
    ``sys.path``; every implementation's results are collected and compared metric by
    metric within each result's ``rtol``/``atol``. Import the code under test inside the
    function, and declare the hookimpl ``optionalhook=True`` so plain pytest runs without
    the plugin still work.
    """


@hookspec
def pytest_orchestrator_strategies() -> dict[type, Callable[[Generator], Any]] | None:
    """Contribute input generators for differential sampling: ``{type: draw(rng)}``.

    For argument types no built-in generator can make (a domain object, say). Runs in the
    Monte Carlo child of each revision, read from the target's root conftest only; declare
    the hookimpl ``optionalhook=True``. Takes precedence over generators from type hints.
    """


# -------------------------------------------------------------------------------------------
# 4. Plan: the command and the slices -> candidate plans
# -------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def pytest_orchestrator_plan(run: Run, context: PlanContext) -> list[Plan] | None:
    """Write plans for the command, best first. ``context.failure`` is set on a replan.

    An empty list means "no (further) plan": the run stops. Plans are validated after
    this hook; an invalid plan is fed back once, then the attempt fails.

    Stops at the first non-None result. Runs in the controller.
    """


# -------------------------------------------------------------------------------------------
# 5. Optimise: rank plans and parameter grids, keep the top-k
# -------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def pytest_orchestrator_optimise(run: Run, plans: list[Plan]) -> list[Plan] | None:
    """Rank the candidate plans (and expand parameter grids); the retry loop walks them.

    Stops at the first non-None result. Runs in the controller.
    """


# -------------------------------------------------------------------------------------------
# 6. Execute: one attempt, in the worktree
# -------------------------------------------------------------------------------------------


@hookspec
def pytest_orchestrator_ops() -> list[OpSpec] | None:
    """Contribute ops to the registry plans are validated against.

    Collected from every implementation at the start of a run.
    """


@hookspec(firstresult=True)
def pytest_orchestrator_execute(
    run: Run, plan: Plan, number: int, items: list[PlanItem]
) -> Attempt | None:
    """Run one attempt: reset the worktree, run the plan's steps (mutate serialised, in DAG
    order; scan may run in parallel), including the target's tests.

    :param number: the attempt, from 1.
    :param items: the attempt's step items in DAG order; run each through
        ``item.ihook.pytest_runtest_protocol`` so it reports like a test.

    Stops at the first non-None result. Runs in the controller (``pytest_runtestloop``).
    """


# -------------------------------------------------------------------------------------------
# 7. Review: post-change checks; the gate is green only if every check passes
# -------------------------------------------------------------------------------------------


@hookspec
def pytest_orchestrator_review(run: Run, attempt: Attempt) -> list[Check] | None:
    """Contribute checks of an attempt (tests, Monte Carlo, syntax, leftovers, ...).

    Every implementation's checks are collected; one failed check blocks the PR and, when
    attempts remain, its evidence goes to the planner's replan.
    """


# -------------------------------------------------------------------------------------------
# Publish: a green attempt -> branch, commit, PR (and merge when asked)
# -------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def pytest_orchestrator_publish(run: Run, attempt: Attempt, commit: str) -> PublishResult | None:
    """Post the green attempt's commit to the forge. Called only when the gate is green,
    after the session committed the attempt (``commit``) and marked its branch as kept.

    Stops at the first non-None result. Runs in the controller (``pytest_sessionfinish``).
    """


# -------------------------------------------------------------------------------------------
# Observing a run
# -------------------------------------------------------------------------------------------


@hookspec
def pytest_orchestrator_phase_done(run: Run, phase: Phase, summary: str, seconds: float) -> None:
    """Called after each phase with a one-line summary. Observational: return nothing."""
