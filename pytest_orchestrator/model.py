"""The data a run produces, phase by phase.

Everything here is a pydantic model of builtins, so it serialises straight into the run
directory's JSON files (a public contract) and crosses process boundaries unchanged.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pytest_orchestrator.plan import Plan


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Phase(enum.Enum):
    """The seven phases of a run, plus publishing the result, in the order they run."""

    MAP = "map"
    LOGIC = "logic"
    MONTECARLO = "montecarlo"
    PLAN = "plan"
    OPTIMISE = "optimise"
    EXECUTE = "execute"
    REVIEW = "review"
    PUBLISH = "publish"


class ExitReason(enum.Enum):
    """Why a run ended. The exit status derives from it (see `exit_status`)."""

    GREEN = "green"
    DRY_RUN = "dry_run"
    TESTS_FAILED = "tests_failed"
    CHECKS_FAILED = "checks_failed"
    PUBLISH_FAILED = "publish_failed"
    BASELINE_RED = "baseline_red"
    PLANNER_REFUSED = "planner_refused"
    INVALID_PLAN = "invalid_plan"
    BAD_INPUT = "bad_input"
    INTERRUPTED = "interrupted"
    ERROR = "error"

    @property
    def exit_status(self) -> int:
        return _EXIT_STATUS[self]


# Mirrors pytest.ExitCode: 0 ok, 1 tests failed, 2 interrupted, 3 internal error, 4 usage.
_EXIT_STATUS: dict[ExitReason, int] = {
    ExitReason.GREEN: 0,
    ExitReason.DRY_RUN: 0,
    ExitReason.TESTS_FAILED: 1,
    ExitReason.CHECKS_FAILED: 1,
    ExitReason.PUBLISH_FAILED: 1,
    ExitReason.BASELINE_RED: 4,
    ExitReason.PLANNER_REFUSED: 4,
    ExitReason.INVALID_PLAN: 4,
    ExitReason.BAD_INPUT: 4,
    ExitReason.INTERRUPTED: 2,
    ExitReason.ERROR: 3,
}


# ---------------------------------------------------------------------------- Map / Logic


class Slice(Frozen):
    """A piece of source code the planner may see: a function, method, class or module block."""

    path: str = Field(description="POSIX path relative to the repository root")
    symbol: str = Field(description="qualified name inside the file: 'func', 'Class.method'")
    kind: Literal["function", "method", "class", "module"]
    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)
    hash: str = Field(description="SHA-1 of the slice's raw bytes, git-blob style")
    tokens: int = Field(ge=0, description="conservative local estimate of the slice's tokens")


class RankedSlice(Frozen):
    """A slice with its score, the score's parts, and whether Logic kept it and why."""

    slice: Slice
    score: float
    components: dict[str, float] = Field(default_factory=dict)
    kept: bool = True
    reason: str = ""


class MapResult(Frozen):
    """Phase 1: candidate files and slices for the command, best first."""

    terms: list[str] = Field(description="what was searched for")
    files: list[str] = Field(description="candidate files, best first")
    slices: list[RankedSlice]
    stats: dict[str, float] = Field(default_factory=dict)


class RankedFile(Frozen):
    """One candidate file in Map's order: its best slice's score and its 1-based rank."""

    path: str
    score: float
    rank: int = Field(ge=1)


def rank_files(slices: list[RankedSlice]) -> list[RankedFile]:
    """The files of ``slices``, best first: a file scores what its best slice scores (Map's
    own file order), ties broken by path."""
    best: dict[str, float] = {}
    for s in slices:
        if s.score > best.get(s.slice.path, float("-inf")):
            best[s.slice.path] = s.score
    order = sorted(best, key=lambda p: (-best[p], p))
    return [RankedFile(path=p, score=best[p], rank=i) for i, p in enumerate(order, 1)]


class LogicResult(Frozen):
    """Phase 2: the slices kept for the planner (fit the budget) and those dropped."""

    slices: list[RankedSlice] = Field(description="every candidate, kept or dropped, with why")
    files: list[RankedFile] = Field(
        default_factory=list,
        description="the candidate files, ranked: a flat view of the slices' ranking",
    )
    edges: list[tuple[str, str]] = Field(
        default_factory=list, description="call graph among candidates: (caller, callee)"
    )
    budget_tokens: int
    used_tokens: int

    @model_validator(mode="after")
    def _rank_files(self) -> LogicResult:
        """Fill ``files`` from the slices when not given, so every ``slices.json`` carries
        the flat ranking whichever code built the result."""
        if not self.files and self.slices:
            object.__setattr__(self, "files", rank_files(self.slices))
        return self

    @property
    def kept(self) -> list[RankedSlice]:
        return [s for s in self.slices if s.kept]


# ---------------------------------------------------------------------------- Monte Carlo


class SimulationResult(Frozen):
    """One simulation's metrics on one side (base or candidate)."""

    name: str
    samples: int = Field(ge=0)
    metrics: dict[str, float]
    rtol: float = 1e-9
    atol: float = 1e-12


class MetricDelta(Frozen):
    simulation: str
    metric: str
    base: float
    candidate: float
    within_tolerance: bool


class MonteCarloSummary(Frozen):
    """Behaviour evidence: base-side results (phase 3) and the comparison (review)."""

    seed: int
    base: list[SimulationResult] = Field(default_factory=list)
    candidate: list[SimulationResult] = Field(default_factory=list)
    deltas: list[MetricDelta] = Field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = Field(default_factory=list)

    @property
    def diverged(self) -> list[MetricDelta]:
        return [d for d in self.deltas if not d.within_tolerance]

    @property
    def verdict(self) -> str:
        if not self.base:
            return "no simulations"
        if not self.deltas:
            return "baseline only"
        return "diverged" if self.diverged else "identical within tolerance"

    def summary_line(self) -> str:
        """One line for the terminal: what ran, the verdict, the seed."""
        sims = [r for r in self.base if not r.name.startswith("differential:")]
        funcs = [r for r in self.base if r.name.startswith("differential:")]
        parts = []
        if sims:
            metrics = sum(len(r.metrics) for r in sims)
            parts.append(f"{len(sims)} simulation(s), {metrics} metric(s)")
        if funcs:
            parts.append(f"{len(funcs)} function(s), {sum(r.samples for r in funcs)} samples")
        if not parts:
            parts.append("nothing to simulate")
        verdict = self.verdict
        if self.diverged:
            verdict = f"DIVERGED: {len(self.diverged)} metric(s)"
        skipped = sum(n.startswith("skipped") for n in self.notes)
        tail = f", {skipped} skipped" if skipped else ""
        return f"{'; '.join(parts)}{tail} - {verdict} (seed {self.seed}, {self.seconds:.1f}s)"


# ---------------------------------------------------------------------------- Execute


class TestOutcome(Frozen):
    """One test of the target's suite, as the inner session reported it."""

    __test__ = False

    nodeid: str
    outcome: Literal["passed", "failed", "skipped", "error", "xfailed", "xpassed", "deselected"]
    duration: float = 0.0
    message: str = Field(default="", description="assertion message / trimmed traceback")


class TestRunResult(Frozen):
    """The target's suite run once, in a fresh process inside the worktree."""

    __test__ = False

    exitstatus: int
    tests: list[TestOutcome]
    collection_errors: list[TestOutcome] = Field(default_factory=list)
    seconds: float
    workers: int = 0
    command: list[str] = Field(default_factory=list)
    inifile: str | None = Field(
        default=None, description="the pytest config file in effect, relative to the rootdir"
    )

    def counts(self) -> TestCounts:
        """How many tests ended each way (collected counts deselected ones too)."""
        by = {k: 0 for k in ("passed", "failed", "skipped", "error", "xfailed", "xpassed")}
        deselected = 0
        for t in self.tests:
            if t.outcome == "deselected":
                deselected += 1
            else:
                by[t.outcome] += 1
        return TestCounts(
            collected=len(self.tests),
            deselected=deselected,
            errors=by["error"] + len(self.collection_errors),
            **{k: v for k, v in by.items() if k != "error"},
        )

    @property
    def failed(self) -> list[TestOutcome]:
        bad = {"failed", "error", "xpassed"}
        return [t for t in self.tests if t.outcome in bad] + list(self.collection_errors)

    @property
    def passed(self) -> int:
        return sum(t.outcome == "passed" for t in self.tests)

    @property
    def green(self) -> bool:
        return self.exitstatus in (0, 5) and not self.failed and bool(self.tests)


class TestCounts(Frozen):
    """One test run at a glance: what the gate compares between the base and an attempt."""

    __test__ = False

    collected: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    xfailed: int = 0
    xpassed: int = 0
    deselected: int = 0
    errors: int = 0

    def line(self) -> str:
        shown = [f"{v} {k}" for k, v in self.model_dump().items() if v and k != "collected"]
        return f"{self.collected} collected" + (f" ({', '.join(shown)})" if shown else "")


class Finding(Frozen):
    """One way a change weakened the gate, found in the diff or in the gate run."""

    path: str
    line: int = 0
    kind: str
    detail: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.kind}: {self.detail}"


class SpecTest(Frozen):
    """One test of the spec (the tests named on the command line), at the base and after."""

    __test__ = False

    nodeid: str
    base: str
    """Its outcome at the base (``not collected`` when its file did not collect there)."""
    after: str
    """Its outcome after the change."""


class ChangeCoverage(Frozen):
    """The changed lines the gate run executed: ``covered`` of ``total`` executable ones."""

    covered: int = 0
    total: int = 0
    measured_in: str = Field(
        "the gate run",
        description="the run measured: the affected tests' (they cover what the change "
        "touches, and cost less under the tracer) or, without them, the gate run",
    )
    uncovered: dict[str, list[int]] = Field(
        default_factory=dict, description="file -> changed executable lines the run missed"
    )


class GateResult(Frozen):
    """The orchestrator's own test run of an attempt, and what it found against the base.

    The gate run is the target's whole suite under the base commit's test configuration;
    ``missing`` names every test that passed at the base and does not pass now (not
    collected, skipped, xfailed, deselected), ``findings`` every weakening found in the diff.
    """

    baseline: TestCounts
    gate: TestCounts
    missing: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    config: str = Field("", description="how the base's test configuration was applied")
    tests_changed: list[str] = Field(
        default_factory=list, description="test files the change edits (allowed edits only)"
    )
    allowed_because: str = Field("", description="why test edits were allowed, if they were")
    spec: list[SpecTest] = Field(
        default_factory=list, description="the named tests, red at the base, after the change"
    )
    stage: Literal["affected", "full"] = Field(
        "full",
        description="affected: the attempt went red on its affected tests (or a finding) and "
        "the whole suite did not run",
    )
    affected: TestCounts | None = Field(
        None, description="the affected tests' run that came first (spec included)"
    )
    affected_ids: int = Field(0, description="how many tests the affected set named")
    coverage: ChangeCoverage | None = None


class StepResult(Frozen):
    """What a plan step did. ``pool`` and ``worker`` make the pool semantics observable."""

    step_id: str
    op: str
    pool: Literal["scan", "mutate"]
    ok: bool
    summary: str
    worker: str = "controller"
    seconds: float = 0.0
    changed_files: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)


class CheckFinding(Frozen):
    """One finding of a post-change check (a linter message, a type error, a secret): what a
    replan needs to fix it, and what baseline parity compares (tool, rule, location)."""

    tool: str
    rule: str = Field(description="the tool's code for it: 'F401', 'arg-type', a hook id")
    path: str = ""
    line: int = 0
    message: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else (self.path or "-")
        return f"{self.tool} {self.rule} {where}: {self.message}"


class Check(Frozen):
    """One post-change check; the gate is green only when every check passes.

    Checks that compare the attempt with the base (the repository's own linters, type checker
    and hooks) also carry how many findings each side had and the ones the change added.
    """

    name: str
    ok: bool
    detail: str = ""
    findings: list[CheckFinding] = Field(
        default_factory=list, description="what the change added (these make the check red)"
    )
    base_findings: int | None = Field(None, description="findings at the base; None: not run")
    attempt_findings: int | None = Field(None, description="findings after the change")
    skipped: str = Field("", description="why the check did not run, when it did not")


EVIDENCE_FINDINGS = 20
"""Findings of one failed check shown to the planner; the planner trims the whole evidence to
its token budget on top of this."""


class Attempt(Frozen):
    """One pass of Execute + Review with one plan."""

    number: int
    plan: Plan
    """The plan this attempt carried out."""
    steps: list[StepResult] = Field(default_factory=list)
    tests: TestRunResult | None = None
    """The gate run's result (the orchestrator's own run of the whole suite)."""
    gate: GateResult | None = None
    checks: list[Check] = Field(default_factory=list)
    diff_stat: str = ""
    seconds: float = 0.0
    montecarlo: MonteCarloSummary | None = None
    """The Monte Carlo comparison of this attempt's ``montecarlo`` step (base against this
    candidate); None when the attempt ran none, or it did not produce one."""

    @property
    def plan_digest(self) -> str:
        return self.plan.digest()

    @property
    def green(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def failing_tests(self) -> list[TestOutcome]:
        """The gate run's failures, else those of the plan's own test runs."""
        if self.tests is not None:
            return self.tests.failed
        return [TestOutcome.model_validate(t) for s in self.steps for t in s.data.get("failed", [])]

    def evidence(self) -> str:
        """What went wrong, for the planner's replan and the terminal."""
        lines = [f"{s.step_id}: {s.summary}" for s in self.steps if not s.ok]
        for t in self.failing_tests():
            lines.append(f"{t.outcome.upper()} {t.nodeid}: {t.message}".rstrip())
        for c in self.checks:
            if not c.ok:
                lines.append(f"check {c.name} failed: {c.detail}")
                lines += [f"  {f}" for f in c.findings[:EVIDENCE_FINDINGS]]
                if len(c.findings) > EVIDENCE_FINDINGS:
                    lines.append(f"  ... and {len(c.findings) - EVIDENCE_FINDINGS} more")
        if self.gate is not None:
            lines += [f"gate: {f}" for f in self.gate.findings]
        return "\n".join(lines)


class PublishResult(Frozen):
    """Where the result went: a branch, a PR URL or the local run directory, a merge."""

    forge: str
    branch: str
    commit: str
    url: str
    merged: bool = False
    notes: list[str] = Field(default_factory=list)
