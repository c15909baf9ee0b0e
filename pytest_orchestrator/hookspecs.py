"""The hooks of an orchestrated run: the table of contents of ``pytest --orchestrate``.

Each phase is a hook, so a ``conftest.py`` at the root of the target repository, or any
plugin, can extend or replace it. The plugin registers the default implementations with
``trylast``; returning a non-None value from your own implementation replaces the phase.

Phases 1-5 run in the controller during collection; 6 and 7 during ``pytest_runtestloop``;
publishing during ``pytest_sessionfinish``. Only the hooks that run the target's code
(``pytest_orchestrator_montecarlo``, ``pytest_orchestrator_strategies``) run elsewhere: in a
child process per revision, so that base and candidate code never share an interpreter.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pluggy

if TYPE_CHECKING:
    from numpy.random import Generator

    from pytest_orchestrator.items import PlanItem
    from pytest_orchestrator.model import (
        Attempt,
        Check,
        LogicResult,
        MapResult,
        MonteCarloSummary,
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


@hookspec(firstresult=True)
def pytest_orchestrator_sample(run: Run, slices: LogicResult) -> MonteCarloSummary | None:
    """Sample the base's behaviour: the simulations and the functions of the kept slices.

    :param slices: the result of Logic.

    The default runs `pytest_orchestrator_montecarlo` and samples the kept functions in a
    child process for the base tree, within ``run.settings.budgets.montecarlo_seconds``; a
    plan's ``montecarlo`` step later does the same for the candidate and compares.

    Stops at the first non-None result. Runs in the controller.
    """


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


# -------------------------------------------------------------------------------------------
# A target's own implementations: its root conftest, loaded one way everywhere
# -------------------------------------------------------------------------------------------

HOOK_PREFIX: Final = "pytest_orchestrator_"
CHILD_HOOKS: Final = frozenset({"pytest_orchestrator_montecarlo", "pytest_orchestrator_strategies"})
"""The hooks that run the target's code: called in the Monte Carlo children, one per revision,
never in the controller (whose process must not import the code under test)."""

_CONFTESTS: dict[Path, types.ModuleType] = {}


def target_hooks(tree: Path, *, in_child: bool) -> types.SimpleNamespace | None:
    """The ``pytest_orchestrator_*`` functions of ``tree``'s root ``conftest.py``, as one plugin
    object: `CHILD_HOOKS` in a child, the others in the controller. None when there are none.

    The controller registers the object with pytest's plugin manager, a child with
    `child_hooks`'s: either way pytest's rules apply (unmarked ``pytest_orchestrator_*``
    functions are implementations, signatures are validated against these specs). The
    conftest's fixtures and pytest hooks mean nothing to a run and are left out. A conftest
    whose text never names one of our hooks is not imported at all; one is imported by path,
    once per process, as ``conftest`` in a child where nothing else has that name, and under
    a private name in the controller. An exception while importing it propagates.
    """
    conftest = (tree / "conftest.py").resolve()
    try:
        if HOOK_PREFIX.encode() not in conftest.read_bytes():
            return None
    except OSError:
        return None
    module = _CONFTESTS.get(conftest)
    if module is None:
        free = in_child and "conftest" not in sys.modules
        name = "conftest" if free else f"_orchestrated_conftest_{id(conftest)}"
        spec = importlib.util.spec_from_file_location(name, conftest)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        _CONFTESTS[conftest] = module
    hooks = {
        name: value
        for name, value in vars(module).items()
        if name.startswith(HOOK_PREFIX)
        and inspect.isroutine(value)
        and (name in CHILD_HOOKS) == in_child
    }
    return types.SimpleNamespace(**hooks) if hooks else None


def child_hooks(tree: Path) -> tuple[pluggy.PluginManager, list[str]]:
    """In a Monte Carlo child: a plugin manager with these specs and the target's
    `CHILD_HOOKS`, and the problems met loading them (each a message for the summary)."""
    pm = _ChildManager("pytest")
    pm.add_hookspecs(sys.modules[__name__])
    try:
        plugin = target_hooks(tree, in_child=True)
    except Exception:
        return pm, [f"conftest.py failed to import:\n{traceback.format_exc()[-3000:]}"]
    if plugin is not None:
        try:
            pm.register(plugin, name="conftest.py")
        except pluggy.PluginValidationError as exc:
            return pm, [f"conftest.py: {exc}"]
    return pm, []


class _ChildManager(pluggy.PluginManager):
    """Accepts unmarked ``pytest_orchestrator_*`` functions, as pytest accepts ``pytest_*``."""

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(HOOK_PREFIX):
            return {
                "wrapper": False,
                "hookwrapper": False,
                "optionalhook": False,
                "tryfirst": False,
                "trylast": False,
                "specname": None,
            }
        return opts
