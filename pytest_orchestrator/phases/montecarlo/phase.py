"""Phase 3, Monte Carlo: behaviour evidence for every change.

`baseline` runs before any edit, on the base tree; `candidate` runs as the plan's
``montecarlo`` step on the edited tree, with the same seed. Each side runs in child processes
of its own (`pytest_orchestrator.phases.montecarlo.child.simulation`), started together on the
scan pool and killed by process group at the cap:

* the tree's ``pytest_orchestrator_montecarlo`` simulations (domain metrics, compared within
  each result's stated ``rtol``/``atol``);
* differential sampling of the functions Logic kept
  (`pytest_orchestrator.phases.montecarlo.differential`): the same inputs on both sides, return
  values, raised exception types and argument mutation compared, renames mapped through the
  plan.

Pools: these children are the scan pool's Monte Carlo shards, started here rather than as
xdist workers. A shard must import one revision in a fresh interpreter, lead its own process
group (killed whole at the cap, whatever it started), and be guarded one by one by the
pressure gauge; an xdist worker is a long-lived interpreter shared by many items, stopped only
with its whole session. Parallelism is the machine's cores (or ``--orchestrate-workers``):
the simulations hold one core for the phase, argument capture and the sampling shards share
the rest, and a new child waits while the gauge is above its soft mark.

Both land in `MonteCarloSummary`: a sampled function appears as the simulation
``differential:<module>.<function>``, and its divergent samples as a `MetricDelta`, so
``summary.diverged`` and ``summary.verdict`` cover both. The per-function detail (smallest
counterexample, skips and why, throughput, peak mem_ratio) goes to ``mc_differential.json``
in the run directory (`DIFFERENTIAL_FILE`).
"""

from __future__ import annotations

import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

from pytest_orchestrator.guard.children import (
    ChildResult,
    ChildSpec,
    Guard,
    child_env,
    run_children,
)
from pytest_orchestrator.model import (
    Check,
    MetricDelta,
    MonteCarloSummary,
    SimulationResult,
)
from pytest_orchestrator.phases.montecarlo.child.simulation import Side, is_close

if TYPE_CHECKING:
    from pytest_orchestrator.model import Attempt, LogicResult
    from pytest_orchestrator.plan import Plan
    from pytest_orchestrator.run import Run

WORK_DIR: Final = "montecarlo"
DIFFERENTIAL_FILE: Final = "mc_differential.json"
SOFT_SHARE: Final = 0.6
"""Share of the cap the base side's simulations may use before ``should_stop()``: the
candidate replays the same work and needs headroom for being slower."""
WRAP_UP_SECONDS: Final = 0.5
"""Children are killed this long before the cap, so reading their results ends within it."""
CAPTURE_SHARE: Final = 0.3
"""Share of the cap the base side may spend running tests to capture real arguments."""
STARTUP_SECONDS: Final = 0.8
"""Allowance for a child's interpreter and imports, taken off its soft budget."""
PRESERVING_WORDS: Final = ("rename", "move", "extract", "refactor", "inline")


@dataclass(frozen=True)
class Side_:
    """Where one side's files go."""

    work: Path
    side: Side

    @property
    def sim_out(self) -> Path:
        return self.work / f"{self.side}.sim.json"


def has_simulations(tree: Path) -> bool:
    """Whether the root conftest mentions the Monte Carlo hook (else no child is started)."""
    try:
        return b"pytest_orchestrator_montecarlo" in (tree / "conftest.py").read_bytes()
    except OSError:
        return False


def new_seed() -> int:
    """A fresh seed, recorded in the summary so any divergence can be replayed."""
    return secrets.randbits(63)


def cap_seconds(run: Run, plan: Plan | None = None) -> float:
    cap = run.settings.budgets.montecarlo_seconds
    if plan is not None:
        cap = min(cap, plan.budgets.montecarlo_seconds)
    return cap


def baseline(run: Run) -> MonteCarloSummary:
    """Phase 3: run the simulations (and sample the kept functions) on the base tree."""
    seed = run.settings.seed if run.settings.seed is not None else new_seed()
    return _run_side(run, "base", seed, cap_seconds(run), plan=None, base=None)


@pytest.hookimpl(trylast=True)
def pytest_orchestrator_sample(run: Run, slices: LogicResult) -> MonteCarloSummary:
    """Phase 3, the default: the base side (`baseline`)."""
    return baseline(run)


def candidate(run: Run, base: MonteCarloSummary, plan: Plan) -> MonteCarloSummary:
    """The plan's ``montecarlo`` step: the same work on the edited tree, compared with base."""
    return _run_side(run, "candidate", base.seed, cap_seconds(run, plan), plan=plan, base=base)


def _run_side(
    run: Run,
    side: Side,
    seed: int,
    cap: float,
    plan: Plan | None,
    base: MonteCarloSummary | None,
) -> MonteCarloSummary:
    from pytest_orchestrator.phases.montecarlo import differential

    start = time.monotonic()
    deadline = start + cap - WRAP_UP_SECONDS
    paths = Side_(run.run_dir / WORK_DIR, side)
    paths.work.mkdir(parents=True, exist_ok=True)
    env = child_env(run.worktree)
    soft = max(0.5, cap * SOFT_SHARE - STARTUP_SECONDS)
    args = ["simulate", "--side", side, "--seed", str(seed), "--out", str(paths.sim_out)]
    args += ["--seconds", f"{soft:.3f}"]
    base_record = Side_(paths.work, "base").sim_out
    if side == "candidate" and base_record.is_file():
        args += ["--replay", str(base_record)]
    simulating = has_simulations(run.worktree)
    cores = _parallel(run)
    sampler = differential.Sampler.for_run(run, side, seed, plan, paths.work)
    # The simulations take one core for the whole phase; capture and sampling share the rest.
    sampler.parallel = sampler.shards(max(1, cores - 1) if simulating else cores)
    sample_until = start + cap * SOFT_SHARE
    guard, watch = _guard(run)
    notes: list[str] = []
    sims: list[SimulationResult] = []
    with ThreadPoolExecutor(1, thread_name_prefix="mc-simulations") as pool:
        future = None
        if simulating:
            label = f"mc-{side}-simulations"
            spec = ChildSpec(
                label,
                "pytest_orchestrator.phases.montecarlo.child.simulation",
                args,
                run.worktree,
                env,
            )
            future = pool.submit(run_children, [spec], deadline, guard, 1)
        try:
            capture = sampler.capture_spec(env, run.settings.cache_dir, run.base_commit)
            if capture is not None:
                until = start + cap * CAPTURE_SHARE
                (child,) = run_children([capture], until, guard=guard, parallel=1)
                notes.append(sampler.capture_note(child))
            # a child that crashed or was stopped leaves targets undone: resume while time lasts
            while time.monotonic() < deadline - 1.0 and sampler.rounds < differential.MAX_ROUNDS:
                more = sampler.child_specs(env, max(sample_until, time.monotonic() + 1.0))
                if not more:
                    break
                sampler.absorb(run_children(more, deadline, guard, sampler.parallel))
        finally:
            if future is not None:
                (sim_child,) = future.result()
                sims, sim_notes = _read_simulations(paths.sim_out, sim_child)
                notes += sim_notes
            if watch is not None:
                watch.close()
    report = sampler.collect(peak_ratio=_peak(run, watch))
    if side == "candidate" and report.functions:
        from pytest_orchestrator.phases.montecarlo import shrink

        shrink.improve(report, sampler, run.base_commit, env, deadline, run.gauge)
    report.write(run.run_dir / DIFFERENTIAL_FILE)
    notes += report.notes()
    seconds = round(time.monotonic() - start, 3)
    results = sims + report.results()
    if side == "base":
        return MonteCarloSummary(seed=seed, base=results, seconds=seconds, notes=notes)
    assert base is not None
    deltas = compare(base.base, results) + report.deltas()
    notes = [n for n in base.notes if n.startswith("captured")] + notes  # where inputs came from
    return MonteCarloSummary(
        seed=seed,
        base=list(base.base),
        candidate=results,
        deltas=deltas,
        seconds=seconds,
        notes=notes,
    )


def _parallel(run: Run) -> int:
    import os

    workers = run.settings.workers
    cores = os.cpu_count() or 1
    return max(1, min(cores, workers if isinstance(workers, int) and workers > 0 else cores))


def _guard(run: Run) -> tuple[Guard | None, Any]:
    """The run's gauge, or a local RSS watch at the same threshold when there is none."""
    if run.gauge is not None:
        return run.gauge, None
    from pytest_orchestrator.guard.children import RssWatch

    watch = RssWatch(int(run.settings.mem_threshold * _available_bytes()))
    return watch, watch


def _available_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def _peak(run: Run, watch: Any) -> float | None:
    if run.gauge is not None:
        return run.gauge.peak
    if watch is not None and watch.peak_bytes:
        return float(watch.peak_bytes / max(1, _available_bytes() + watch.peak_bytes))
    return None


def _read_simulations(path: Path, child: ChildResult) -> tuple[list[SimulationResult], list[str]]:
    notes: list[str] = []
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [], [f"simulations produced no result ({child.describe()})"]
    results = [SimulationResult.model_validate(r) for r in record.get("results", [])]
    notes += [f"simulations: {e}" for e in record.get("errors", [])]
    if not child.ok:
        notes.append(f"simulations child {child.describe()}")
    return results, notes


def compare(base: list[SimulationResult], candidate: list[SimulationResult]) -> list[MetricDelta]:
    """One delta per base metric: equal within the base result's tolerance, NaN equal to NaN.

    A simulation or metric the candidate no longer reports is a divergence (NaN candidate).
    Differential pseudo-simulations are compared by
    `pytest_orchestrator.phases.montecarlo.differential`.
    """
    by_name = {r.name: r for r in candidate}
    deltas: list[MetricDelta] = []
    for b in base:
        if b.name.startswith("differential:"):
            continue
        c = by_name.get(b.name)
        for metric, value in sorted(b.metrics.items()):
            other = c.metrics.get(metric) if c is not None else None
            ok = other is not None and is_close(value, other, b.rtol, b.atol)
            deltas.append(
                MetricDelta(
                    simulation=b.name,
                    metric=metric,
                    base=value,
                    candidate=float("nan") if other is None else other,
                    within_tolerance=ok,
                )
            )
    return deltas


# ---------------------------------------------------------------------------- reporting


def pr_section(s: MonteCarloSummary) -> str:
    """Markdown for PR.md: verdict first, then what diverged, then the evidence."""
    lines = ["## Monte Carlo", ""]
    icon = "❌" if s.diverged else ("✅" if s.deltas else "ℹ️")  # noqa: RUF001
    lines.append(f"{icon} **{s.verdict}** - seed `{s.seed}`, {s.seconds:.1f}s")
    lines.append("")
    if s.diverged:
        lines += ["| simulation | metric | base | candidate |", "|---|---|---|---|"]
        for d in s.diverged[:20]:
            lines.append(f"| {d.simulation} | {d.metric} | {d.base:.6g} | {d.candidate:.6g} |")
        lines.append("")
    sims = [r for r in s.base if not r.name.startswith("differential:")]
    if sims:
        cand = {r.name: r for r in s.candidate}
        lines += ["| simulation | samples | metrics | within tolerance |", "|---|---|---|---|"]
        for r in sims:
            bad = sum(1 for d in s.diverged if d.simulation == r.name)
            ok = "n/a" if not s.deltas else ("yes" if not bad else f"{bad} off")
            n = f"{r.samples}" + (f" / {cand[r.name].samples}" if r.name in cand else "")
            lines.append(f"| {r.name} | {n} | {len(r.metrics)} | {ok} |")
        lines.append("")
    funcs = [r for r in s.base if r.name.startswith("differential:")]
    if funcs:
        total = sum(r.samples for r in funcs)
        lines.append(f"Differential sampling: {len(funcs)} function(s), {total} samples per side.")
        lines.append("")
        if weak := weak_evidence(funcs):
            lines += [weak, ""]
        off = {d.simulation: d.candidate for d in s.deltas if d.metric == "divergent_samples"}
        lines += ["| function | samples | raised | returned | divergent |", "|---|---|---|---|---|"]
        shown = sorted(funcs, key=lambda r: (-off.get(r.name, 0.0), r.name))[:12]
        for r in shown:
            name = r.name.removeprefix("differential:")
            divergent = "n/a" if r.name not in off else f"{off[r.name]:g}"
            raised = int(r.metrics.get("raised", 0))
            returned = f"{returned_share(r):.0%}"
            lines.append(f"| `{name}` | {r.samples} | {raised} | {returned} | {divergent} |")
        if len(funcs) > len(shown):
            lines.append(f"| ... {len(funcs) - len(shown)} more | | | | |")
        lines.append("")
    if s.notes:
        lines.append("<details><summary>Notes</summary>")
        lines.append("")
        lines += [f"- {n}" for n in s.notes[:40]]
        lines += ["", "</details>", ""]
    return "\n".join(lines)


WEAK_SHARE: Final = 0.5
"""Below this share of samples reaching a return, a comparison mostly compares error paths."""


def returned_share(result: SimulationResult) -> float:
    """The share of a function's samples that reached a return (did not raise)."""
    if not result.samples:
        return 0.0
    return max(0.0, 1.0 - result.metrics.get("raised", 0.0) / result.samples)


def weak_evidence(funcs: list[SimulationResult]) -> str:
    """A plain sentence when most samples raised: agreement on error paths says little
    about behaviour on the inputs that matter. "" when the evidence is not weak."""
    total = sum(r.samples for r in funcs)
    if not total:
        return ""
    share = sum(returned_share(r) * r.samples for r in funcs) / total
    weak = sorted(
        r.name.removeprefix("differential:") for r in funcs if returned_share(r) < WEAK_SHARE
    )
    if share >= WEAK_SHARE and not weak:
        return ""
    named = ", ".join(f"`{n}`" for n in weak[:8]) + (" …" if len(weak) > 8 else "")
    return (
        f"**Weak evidence**: {share:.0%} of the samples reached a return; the rest raised. "
        f"Where most inputs raise ({named}), base and candidate agree mostly on error paths, "
        "which says little about behaviour on valid inputs: read the diff, and add tests or "
        "`pytest_orchestrator_strategies` for these functions."
    )


def promises_preservation(plan: Plan | None, command: str) -> bool:
    """Renames, moves, extractions and refactors promise behaviour preservation."""
    if plan is not None and plan.behaviour_preserving:
        return True
    words = command.lower()
    return any(w in words for w in PRESERVING_WORDS)


@pytest.hookimpl(trylast=True)
def pytest_orchestrator_review(run: Run, attempt: Attempt) -> list[Check]:
    """The Monte Carlo check: a divergence fails it when the plan promises preservation."""
    summary = attempt.montecarlo  # None when this attempt ran no Monte Carlo comparison
    if summary is None or not summary.deltas:
        return []
    strict = promises_preservation(attempt.plan, attempt.plan.command)
    if not summary.diverged:
        return [Check(name="montecarlo", ok=True, detail=summary.summary_line())]
    shown = "; ".join(
        f"{d.simulation}.{d.metric}: {d.base:.6g} -> {d.candidate:.6g}"
        for d in summary.diverged[:5]
    )
    counter = next((n for n in summary.notes if n.startswith("counterexample")), "")
    detail = f"behaviour changed: {shown}" + (f"; {counter}" if counter else "")
    if strict:
        return [Check(name="montecarlo", ok=False, detail=detail)]
    return [Check(name="montecarlo", ok=True, detail=f"reported (change not preserving): {detail}")]
