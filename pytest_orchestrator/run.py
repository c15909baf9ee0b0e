"""One orchestrated run: its state, its record, and the phase context manager.

`Run` is what every phase hook receives. `Run.phase` times a phase, opens its span, and
records it in ``run.json``; `RunRecord` is saved in ``finally`` so even a crash leaves
evidence.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_orchestrator.model import (
    Attempt,
    ExitReason,
    LogicResult,
    MapResult,
    MonteCarloSummary,
    Phase,
    PublishResult,
    TestRunResult,
)
from pytest_orchestrator.repo.files import atomic_write
from pytest_orchestrator.tokens import TokenLedger

if TYPE_CHECKING:
    import pluggy

    from pytest_orchestrator.guard.pressure import PressureGauge
    from pytest_orchestrator.phases.map.slice_cache import SliceCache
    from pytest_orchestrator.phases.plan.planners import Planner
    from pytest_orchestrator.plan import OpSpec, Plan
    from pytest_orchestrator.settings import Settings
    from pytest_orchestrator.tracing import Tracer


@dataclass
class PhaseRecord:
    phase: str
    seconds: float
    summary: str
    peak_mem_ratio: float | None
    ok: bool


@dataclass
class RunRecord:
    """What ``run.json`` holds; builtins only."""

    run_id: str
    command: str
    started: float = field(default_factory=time.time)
    phases: list[PhaseRecord] = field(default_factory=list)
    outcome: str = "running"
    exit_reason: str = ""
    message: str = ""
    exit_status: int | None = None

    def to_json(self, run: Run) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "command": self.command,
            "started": self.started,
            "seconds": round(time.time() - self.started, 3),
            "base_commit": run.base_commit,
            "branch": run.branch,
            "worktree": str(run.worktree) if run.worktree != run.repo else None,
            "planner": run.settings.planner,
            "phases": [vars(p) for p in self.phases],
            "baseline": run.baseline.counts().model_dump() if run.baseline else None,
            "impact": _impact(run.attempts),
            "attempts": [
                {
                    "number": a.number,
                    "plan": a.plan_digest,
                    "green": a.green,
                    "seconds": round(a.seconds, 3),
                    "tests_passed": a.tests.passed if a.tests else 0,
                    "tests_failed": [t.nodeid for t in a.failing_tests()],
                    "failed_checks": [c.name for c in a.checks if not c.ok],
                    "checks": [c.model_dump(mode="json") for c in a.checks],
                    "gate": a.gate.model_dump(mode="json") if a.gate else None,
                    "steps": [s.model_dump(mode="json") for s in a.steps],
                }
                for a in run.attempts
            ],
            "tokens": {
                "input": run.ledger.input_tokens,
                "output": run.ledger.output_tokens,
                "calls": run.ledger.calls,
            },
            "memory": run.gauge.record() if run.gauge is not None else None,
            "outcome": self.outcome,
            "exit_reason": self.exit_reason,
            "exit_status": self.exit_status,
            "message": self.message,
            "publish": run.published.model_dump(mode="json") if run.published else None,
            "trace": run.tracer.link() if run.tracer else None,
        }


def _impact(attempts: list[Attempt]) -> dict[str, Any]:
    """How well the affected tests, run first, caught the red attempts."""
    red = [a for a in attempts if not a.green and a.gate is not None]
    caught = [a for a in red if a.gate is not None and a.gate.stage == "affected"]
    return {
        "red_attempts": len(red),
        "caught_by_affected": len(caught),
        "share": round(len(caught) / len(red), 3) if red else None,
    }


@dataclass
class Run:
    """The state of one ``pytest --orchestrate`` run, handed to every phase hook."""

    run_id: str
    settings: Settings
    repo: Path
    """The user's checkout: read for git metadata only, never written (but the run dir)."""
    worktree: Path
    """Where the phases read the base, and every mutate step writes: the run's worktree once
    it exists; before, for Map, Logic and Plan, the user's checkout when it equals the base
    (`pytest_orchestrator.repo.view`; read only). A run that will not change anything (a dry
    run, a refusal) never has a worktree."""
    branch: str
    """The run's branch: empty until the green result was committed."""
    base_commit: str
    base_branch: str | None
    run_dir: Path
    hook: pluggy.HookRelay
    tracer: Tracer
    ops: dict[str, OpSpec]
    gauge: PressureGauge | None = None
    cache: SliceCache | None = None
    base_tree: str | None = None
    """The git tree id of exactly what ``worktree`` holds (untracked files included) when the
    session knows it, so a phase keys its caches on it instead of asking git again; None:
    unknown, the phase asks git itself."""
    ledger: TokenLedger = field(default_factory=TokenLedger)
    planner: Planner | None = None
    report: Callable[[str], None] = lambda line: None
    """Progress output; the session points it at pytest's terminal reporter."""
    record: RunRecord = field(init=False)
    map: MapResult | None = None
    logic: LogicResult | None = None
    montecarlo: MonteCarloSummary | None = None
    """The base side of Monte Carlo (phase 3); each attempt carries its own comparison."""
    baseline: TestRunResult | None = None
    """The whole suite at the base commit: what every gate run is held to."""
    spec_base: TestRunResult | None = None
    """The tests named on the command line (the spec), run at the base; None without."""
    plans: list[Plan] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    published: PublishResult | None = None
    notes: list[str] = field(default_factory=list)
    scratch_dir: Path | None = None
    """See `scratch`; None: beside the worktree."""

    def __post_init__(self) -> None:
        self.record = RunRecord(self.run_id, self.settings.command)

    @property
    def command(self) -> str:
        return self.settings.command

    @property
    def scratch(self) -> Path:
        """Working files of inner runs and children: the run's own temporary directory,
        outside the checkout, removed at the end of the run (the session's, and a dead
        run's by the next run, through the lease)."""
        return self.scratch_dir or self.worktree.parent / "scratch"

    def latest_montecarlo(self) -> MonteCarloSummary | None:
        """The last Monte Carlo comparison an attempt made, else the base side's: what
        mc_summary.json, PR.md, the terminal and a replan show."""
        return next(
            (a.montecarlo for a in reversed(self.attempts) if a.montecarlo is not None),
            self.montecarlo,
        )

    def write(self, name: str, data: Any) -> Path:
        """Write one run-directory file atomically (JSON for non-str data)."""
        path = self.run_dir / name
        text = data if isinstance(data, str) else json.dumps(data, indent=2, default=str) + "\n"
        return atomic_write(path, text)

    def save_record(self) -> None:
        self.write("run.json", self.record.to_json(self))

    def finish(self, reason: ExitReason, message: str) -> None:
        self.record.outcome = "green" if reason is ExitReason.GREEN else reason.value
        self.record.exit_reason = reason.value
        self.record.exit_status = reason.exit_status
        self.record.message = message
        self.tracer.outcome = (reason.exit_status == 0, message)  # the root span's status

    @contextmanager
    def phase(self, phase: Phase) -> Iterator[PhaseNote]:
        """Time a phase, trace it, and record it; the body sets ``note.summary``."""
        note = PhaseNote()
        start = time.perf_counter()
        peak_before = self.gauge.peak if self.gauge is not None else None
        ok = False
        try:
            with self.tracer.span(f"phase.{phase.value}", phase=phase.value) as span:
                yield note
                span.set_attribute("summary", note.summary)
            ok = True
        finally:
            seconds = time.perf_counter() - start
            peak = self.gauge.peak if self.gauge is not None else peak_before
            self.record.phases.append(
                PhaseRecord(phase.value, round(seconds, 3), note.summary, peak, ok)
            )
            if ok:
                mem = f"  mem {peak:.0%}" if peak is not None else ""
                self.report(f"{phase.value:<10} {note.summary}  ({seconds:.2f}s{mem})")
                self.hook.pytest_orchestrator_phase_done(
                    run=self, phase=phase, summary=note.summary, seconds=seconds
                )


@dataclass
class PhaseNote:
    summary: str = ""
