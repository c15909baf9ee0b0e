"""Monte Carlo phase: a tree's simulations on base and candidate, compared, and the gate."""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest

from pytest_orchestrator.model import (
    Attempt,
    LogicResult,
    MetricDelta,
    MonteCarloSummary,
    RankedSlice,
    SimulationResult,
    Slice,
    StepResult,
)
from pytest_orchestrator.phases.montecarlo import phase as mc
from pytest_orchestrator.plan import Budgets, Plan, Step
from pytest_orchestrator.run import Run
from pytest_orchestrator.settings import Settings
from pytest_orchestrator.tracing import Tracer

CALC = '''\
from __future__ import annotations


def scale(x: float, factor: float = 2.0) -> float:
    """Scale ``x``; negative inputs are refused.

    >>> scale(3.0, 2.0)
    6.0
    """
    if x < 0:
        raise ValueError("negative")
    return x * factor
'''

CONFTEST = """\
import pytest


@pytest.hookimpl(optionalhook=True)
def pytest_orchestrator_montecarlo(mc):
    from pkg.calc import scale

    n = mc.samples(2000)
    xs = mc.rng.random(n)
    mean = sum(scale(float(x)) for x in xs) / n
    return [{"name": "scale_sim", "samples": n, "metrics": {"mean": mean}, "rtol": 1e-9}]
"""


def make_tree(root: Path, calc: str = CALC, conftest: str = CONFTEST) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "calc.py").write_text(calc)
    (root / "conftest.py").write_text(conftest)
    return root


def make_run(
    tmp_path: Path,
    tree: Path,
    symbols: tuple[str, ...] = (),
    command: str = "rename scale to rescale",
    seconds: float = 15.0,
    seed: int | None = 1234,
) -> Run:
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    settings = Settings(
        command=command,
        run_root=tmp_path / "runs",
        cache_dir=tmp_path / "cache",
        seed=seed,
        budgets=Budgets(montecarlo_seconds=seconds),
    )
    pm = pluggy.PluginManager("pytest")
    run = Run("test", settings, tree, tree, "b", "c0ffee", None, run_dir, pm.hook,
              Tracer(run_dir / "trace.json"), {})  # fmt: skip
    slices = [
        RankedSlice(
            slice=Slice(
                path="pkg/calc.py",
                symbol=s,
                kind="function",
                start_line=1,
                end_line=2,
                hash="0",
                tokens=1,
            ),
            score=1.0,
        )
        for s in symbols
    ]
    run.logic = LogicResult(slices=slices, budget_tokens=4000, used_tokens=1)
    return run


def edit(tree: Path, old: str, new: str, path: str = "pkg/calc.py") -> None:
    target = tree / path
    text = target.read_text()
    assert old in text
    target.write_text(text.replace(old, new))


def plan_of(*steps: Step, preserving: bool = False, command: str = "change it") -> Plan:
    return Plan(command=command, steps=list(steps), behaviour_preserving=preserving)


NOOP = Step(id="edit", pool="mutate", op="replace_block", args={})
MC_STEP = StepResult(step_id="mc", op="montecarlo", pool="scan", ok=True, summary="")


def test_identical_simulation_is_within_tolerance(tmp_path: Path) -> None:
    """A refactor that keeps behaviour reproduces every metric exactly."""
    tree = make_tree(tmp_path / "tree")
    run = make_run(tmp_path, tree)
    base = mc.baseline(run)
    assert [r.name for r in base.base] == ["scale_sim"]
    assert base.verdict == "baseline only"
    edit(tree, "return x * factor", "result = x * factor\n    return result")
    cand = mc.candidate(run, base, plan_of(NOOP, preserving=True))
    assert cand.seed == base.seed
    assert cand.deltas
    assert not cand.diverged
    assert cand.verdict == "identical within tolerance"


def test_behaviour_change_diverges_and_fails_a_preserving_plan(tmp_path: Path) -> None:
    """A changed result moves the metric, and the Monte Carlo check blocks a 'refactor'."""
    tree = make_tree(tmp_path / "tree")
    run = make_run(tmp_path, tree)
    base = mc.baseline(run)
    edit(tree, "return x * factor", "return x * factor * 1.01")
    plan = plan_of(NOOP, preserving=True)
    cand = mc.candidate(run, base, plan)
    assert [(d.simulation, d.metric) for d in cand.diverged] == [("scale_sim", "mean")]
    checks = mc.pytest_orchestrator_review(
        run=run, attempt=Attempt(number=1, plan=plan, steps=[MC_STEP], montecarlo=cand)
    )
    assert [c.ok for c in checks] == [False]
    assert "scale_sim.mean" in checks[0].detail


def test_divergence_is_only_reported_for_a_change_that_promises_nothing(tmp_path: Path) -> None:
    """A behaviour change asked for ('make the cap a parameter') is reported, not blocked."""
    run = make_run(tmp_path, make_tree(tmp_path / "tree"), command="tune the cap")
    plan = plan_of(NOOP, command="tune the cap")
    summary = MonteCarloSummary(
        seed=1,
        base=[SimulationResult(name="s", samples=1, metrics={"m": 1.0})],
        deltas=[MetricDelta(simulation="s", metric="m", base=1.0, candidate=2.0,
                            within_tolerance=False)],
    )  # fmt: skip
    (check,) = mc.pytest_orchestrator_review(
        run=run, attempt=Attempt(number=1, plan=plan, steps=[MC_STEP], montecarlo=summary)
    )
    assert check.ok
    assert check.detail.startswith("reported")


def test_an_attempt_without_a_montecarlo_step_gets_no_check(tmp_path: Path) -> None:
    """The summary left by an earlier attempt never judges a later one."""
    run = make_run(tmp_path, make_tree(tmp_path / "tree"))
    run.montecarlo = MonteCarloSummary(
        seed=1,
        base=[SimulationResult(name="s", samples=1, metrics={"m": 1.0})],
        deltas=[MetricDelta(simulation="s", metric="m", base=1.0, candidate=2.0,
                            within_tolerance=False)],
    )  # fmt: skip
    attempt = Attempt(number=2, plan=plan_of(NOOP))
    assert mc.pytest_orchestrator_review(run=run, attempt=attempt) == []


def test_no_candidate_comparison_means_no_check(tmp_path: Path) -> None:
    """Without a candidate run there is nothing to judge: the hook contributes no check."""
    run = make_run(tmp_path, make_tree(tmp_path / "tree"))
    attempt = Attempt(number=1, plan=plan_of(NOOP), montecarlo=MonteCarloSummary(seed=1))
    assert mc.pytest_orchestrator_review(run=run, attempt=attempt) == []


def test_seed_is_fresh_and_recorded_when_not_given(tmp_path: Path) -> None:
    """Without --orchestrate-seed a random seed is drawn and kept in the summary."""
    run = make_run(tmp_path, make_tree(tmp_path / "tree"), seed=None)
    base = mc.baseline(run)
    assert base.seed > 0
    assert str(base.seed) in base.summary_line()


def test_hanging_simulation_is_stopped_at_the_cap(tmp_path: Path) -> None:
    """A simulation that never returns is killed with its process group at the cap."""
    conftest = CONFTEST.replace(
        "    from pkg.calc", "    while True:\n        pass\n    from pkg.calc"
    )
    run = make_run(tmp_path, make_tree(tmp_path / "tree", conftest=conftest), seconds=2.0)
    base = mc.baseline(run)
    assert base.base == []
    assert any("stopped at the cap" in n for n in base.notes), base.notes


def test_broken_conftest_is_a_note_not_a_crash(tmp_path: Path) -> None:
    """A conftest that fails to import is reported; the phase still returns a summary."""
    run = make_run(
        tmp_path, make_tree(tmp_path / "tree", conftest="import no_such_module\n" + CONFTEST)
    )
    base = mc.baseline(run)
    assert base.base == []
    assert any("no_such_module" in n for n in base.notes)


def test_pr_section_leads_with_the_verdict(tmp_path: Path) -> None:
    """PR.md's section says the verdict and the seed first, then what diverged."""
    summary = MonteCarloSummary(
        seed=99,
        base=[SimulationResult(name="wheel_pnl", samples=10, metrics={"mean_pnl": 1.0})],
        candidate=[SimulationResult(name="wheel_pnl", samples=10, metrics={"mean_pnl": 2.0})],
        deltas=[MetricDelta(simulation="wheel_pnl", metric="mean_pnl", base=1.0, candidate=2.0,
                            within_tolerance=False)],
    )  # fmt: skip
    text = mc.pr_section(summary)
    head = text.splitlines()[:3]
    assert head[0] == "## Monte Carlo"
    assert "diverged" in head[2]
    assert "`99`" in head[2]
    assert "| wheel_pnl | mean_pnl | 1 | 2 |" in text


@pytest.mark.parametrize(
    ("command", "preserving", "expected"),
    [
        ("Rename calculate_position_size to position_size", False, True),
        ("extract the volatility scaling into a helper", False, True),
        ("make the Kelly fraction cap a parameter, tune it", False, False),
        ("make the Kelly fraction cap a parameter", True, True),
    ],
)
def test_which_commands_promise_preservation(
    command: str, preserving: bool, expected: bool
) -> None:
    """Renames, moves, extractions and refactors promise it; so does the plan's own flag."""
    plan = plan_of(NOOP, preserving=preserving, command=command)
    assert mc.promises_preservation(plan, command) is expected


def test_the_latest_comparison_is_the_last_attempts_else_the_base(tmp_path: Path) -> None:
    """mc_summary.json, PR.md and a replan show the last attempt's comparison; the run keeps
    the base side."""
    run = make_run(tmp_path, make_tree(tmp_path / "tree"))
    base = MonteCarloSummary(seed=1)
    first, second = MonteCarloSummary(seed=1, notes=["1"]), MonteCarloSummary(seed=1, notes=["2"])
    run.montecarlo = base
    assert run.latest_montecarlo() is base
    run.attempts += [Attempt(number=1, plan=plan_of(NOOP), montecarlo=first)]
    run.attempts += [Attempt(number=2, plan=plan_of(NOOP), montecarlo=second)]
    run.attempts += [Attempt(number=3, plan=plan_of(NOOP))]
    assert run.latest_montecarlo() is second
    assert run.montecarlo is base
