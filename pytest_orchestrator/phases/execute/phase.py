"""Phase 6, Execute: one attempt, in the worktree, step item by step item.

The two pools, and why this mechanism: the xdist controller never collects
and freezes its items at collection, and an xdist worker runs an item only once the next
one has arrived, so plan steps cannot be xdist items without deadlocking on their ``needs``.
Instead:

* the **mutate** pool is this process, one step at a time, in DAG order, and only after
  every in-flight scan step has finished (a writer never races a reader);
* the **scan** pool is a small thread pool: a scan step starts as soon as its needs are met,
  so the target's tests and the Monte Carlo comparison run side by side. Their heavy work
  happens in subprocesses: the test run uses xdist workers (``-n``) inside the worktree,
  Monte Carlo its own children.

Each step is still a pytest item, run through ``pytest_runtest_protocol``, and records the
pool and worker that ran it.

After the steps comes the **gate run**, the orchestrator's own
(`pytest_orchestrator.phases.execute.gate`): the whole suite under the base's test
configuration, whatever the plan's own ``run_tests`` steps did. It starts as soon as every
mutate step has succeeded (the scan steps after them only read the tree) and the gate item,
last of the attempt, reports it. Its result counts only when every step succeeded.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import importlib
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, final

import pytest

from pytest_orchestrator.errors import OrchestratorError
from pytest_orchestrator.items import GateItem, PlanItem, StepFailed, StepItem
from pytest_orchestrator.model import (
    Attempt,
    ChangeCoverage,
    GateResult,
    SpecTest,
    StepResult,
    TestRunResult,
)
from pytest_orchestrator.options import GATE_TIMEOUT_FACTOR, GATE_TIMEOUT_FLOOR
from pytest_orchestrator.phases.execute import gate, reshape
from pytest_orchestrator.phases.execute.ops import AttemptState, OpOutcome, StepContext, inside
from pytest_orchestrator.plan import Plan, Step
from pytest_orchestrator.repo.worktree import Worktree
from pytest_orchestrator.run import Run

if TYPE_CHECKING:
    from pytest_orchestrator.phases.execute import impact, spec
    from pytest_orchestrator.phases.execute.testrun import Coverage

_NOTHING = TestRunResult(exitstatus=5, tests=[], seconds=0.0)
"""The result of no test run (an attempt stopped before any)."""

SCAN_THREADS = 2
"""Scan steps at once; their heavy work is in subprocesses, so threads are enough."""


@final
class Executor:
    """Runs attempts; registered as a plugin for the run, and the items' step runner."""

    def __init__(self, run: Run, tree: Worktree) -> None:
        self.run = run
        self.tree = tree
        self._state = AttemptState(0)
        self._results: dict[str, StepResult] = {}
        self._inflight: dict[str, Future[OpOutcome]] = {}
        self._lock = threading.Lock()
        self._scan: ThreadPoolExecutor | None = None
        self._verdict: tuple[TestRunResult, GateResult] | None = None
        self._gate_run: Future[tuple[TestRunResult, GateResult]] | None = None
        self._blobs: dict[str, str] | None = None
        self._touched: set[str] = set()
        """Files any attempt changed: their bytecode is deleted before each test run."""

    @pytest.hookimpl(trylast=True)
    def pytest_orchestrator_execute(
        self, run: Run, plan: Plan, number: int, items: list[PlanItem]
    ) -> Attempt:
        start = time.perf_counter()
        self.tree.reset()
        self._state = AttemptState(number)
        self._results, self._inflight = {}, {}
        self._verdict = self._gate_run = None
        self._scan = ThreadPoolExecutor(SCAN_THREADS, thread_name_prefix="scan")
        try:
            with run.tracer.span(f"attempt.{number}", plan=plan.digest()):
                for i, item in enumerate(items):
                    nextitem = items[i + 1] if i + 1 < len(items) else None
                    item.ihook.pytest_runtest_protocol(item=item, nextitem=nextitem)
                    if item.session.shouldstop:
                        break
        finally:
            self._scan.shutdown(wait=True, cancel_futures=True)
            if self._gate_run is not None:
                self._gate_run.exception()  # done before the tree is read or reset again
        steps = self._steps(plan)
        tests, verdict = self._verdict or (None, None)
        return Attempt(
            number=number,
            plan=plan,
            steps=steps,
            tests=tests,
            gate=verdict,
            diff_stat=self.tree.diff_stat(),
            seconds=round(time.perf_counter() - start, 3),
            montecarlo=self._state.montecarlo,
        )

    def _steps(self, plan: Plan) -> list[StepResult]:
        return [self._results[s.id] for s in plan.order() if s.id in self._results]

    def run_gate(self, item: GateItem) -> None:
        """The gate item: run the gate unless a step already made the attempt red."""
        plan = item.plan
        steps = self._steps(plan)
        if len(steps) < len(plan.steps) or not all(s.ok for s in steps):
            pytest.skip("a step did not succeed: the attempt is red without a gate run")
        self._start_gate(plan, item.number)  # a plan without mutate steps starts it here
        assert self._gate_run is not None
        tests, verdict = self._verdict = self._gate_run.result()
        item.user_properties.append(
            ("worker", f"xdist x{tests.workers}" if tests.workers else "subprocess")
        )
        problems = [f"FAILED {t.nodeid}" for t in tests.failed[:10]]
        problems += [f"base-passing test {m}" for m in verdict.missing[:10]]
        problems += [str(f) for f in verdict.findings[:10]]
        if problems:
            raise StepFailed("gate red:\n  " + "\n  ".join(problems))

    def _start_gate(self, plan: Plan, number: int) -> None:
        """Start the gate run once every mutate step has succeeded: the tree is final then,
        and the scan steps still to come only read it, so the suite runs beside them (the
        Monte Carlo comparison, above all) instead of after them."""
        if self._gate_run is not None:
            return
        writes = [self._results.get(s.id) for s in plan.steps if s.pool == "mutate"]
        if not all(r is not None and r.ok for r in writes):
            return
        steps = self._steps(plan)

        def gate_run() -> tuple[TestRunResult, GateResult]:
            with self.run.tracer.span(f"gate.{number}", kind="TOOL") as span:
                tests, verdict = self._gate(plan, number, steps)
                span.set_attribute("tests.passed", tests.passed)
                span.set_attribute("gate.findings", len(verdict.findings))
            return tests, verdict

        pool = ThreadPoolExecutor(1, thread_name_prefix="gate")
        self._gate_run = pool.submit(contextvars.copy_context().run, gate_run)
        pool.shutdown(wait=False)

    def _gate(
        self, plan: Plan, number: int, steps: list[StepResult]
    ) -> tuple[TestRunResult, GateResult]:
        """The orchestrator's own run of the whole suite, judged against the base; the
        affected tests (the spec first) run before it, and a red among them ends the attempt
        without the whole suite."""
        from pytest_orchestrator.phases.execute import impact, spec
        from pytest_orchestrator.phases.execute.testrun import Coverage

        run, root = self.run, self.tree.path
        baseline = run.baseline
        if baseline is None:
            raise OrchestratorError("internal: the gate needs the baseline test run")
        self.tree.verify()
        changed = gate.changes(root, run.base_commit)
        self._touched.update(c.path for c in changed)  # restored test files included
        held = gate.test_files(baseline)
        held |= gate.files_tests_name(root, run.base_commit, changed, held)
        names = gate.renames(plan) | reshape.moved_test_ids(root, plan)
        edits = gate.classify(changed, steps, is_test=held, command=run.command)
        found = gate.findings(root, run.base_commit, changed, edits, is_test=held, names=names)
        named = spec.Spec(run.settings.spec, run.spec_base) if run.spec_base else None
        # the spec is read-only for the plan; only a refactor op's mechanical rewrite of a
        # name in it (rope renaming a reference) is not an edit of what it asks for
        by_plan = [(c.status, c.path) for c in changed if c.path not in edits.mechanical]
        spec_edits = spec.edit_findings(by_plan, named) if named else []
        found += spec_edits
        args = gate.config_args(root, run.scratch, run.base_commit, baseline.inifile)
        diff = impact.changes(root, run.base_commit)
        config = f"base {baseline.inifile or 'pytest defaults (no config file)'} via -c"
        if edits.restore:
            config += f"; {len(edits.restore)} edited test file(s) run as at the base"
        verdict = functools.partial(
            gate.judge, baseline, names=names, diff_findings=found, edits=edits, config=config
        )
        sources = impact.measured_sources(root, diff)
        data = run.scratch / f"coverage-{number}" / ".coverage"
        data.parent.mkdir(parents=True, exist_ok=True)
        with self._base_tests(edits.restore):
            affected = self._affected(diff, names, named)
            cost = self._coverage_cost(affected, named)
            affordable = cost <= gate.coverage_budget(baseline)
            measure = (
                Coverage(data, [str(root / p) for p in sources]) if sources and affordable else None
            )
            # one process for the affected tests and the rest when nothing is known red
            # before any test runs (a diff finding: only the affected tests run) and the
            # suite runs without xdist, whose workers take tests in an order of their own
            whole = not found and run.settings.workers in (0, "0")
            first, spec_tests, ran_whole = self._affected_run(
                number, args, affected, None if spec_edits else named, names, measure, whole
            )
            if spec_edits and named is not None:  # an edited spec is not run: it is not met
                spec_tests = spec.judge(named, _NOTHING, names)
            ran = first or _NOTHING
            red = not ran.green or bool(named and spec.unmet(spec_tests))
            if spec_edits or (first is not None and (found or red)):
                only = set(affected.ids) | {t.nodeid for t in ran.tests}
                return ran, verdict(
                    ran,
                    spec=spec_tests,
                    affected=first,
                    only=only,
                    affected_ids=len(affected.ids),
                )
            # Once the affected tests passed, the rest of the suite runs (in the same process
            # when `whole`): together they are the whole suite, each test run once. The
            # change's coverage comes from the affected tests when they ran (under the
            # tracer a suite can take several times as long).
            if ran_whole is not None:
                result = ran_whole
            elif first is None:
                result = self._tests(f"gate{number}", args, coverage=measure)
            else:
                done = [t.nodeid for t in first.tests if t.outcome != "deselected"]
                result = gate.merge(first, self._tests(f"gate{number}", args, skip=done))
        covered = None
        if measure is not None:
            covered = impact.change_coverage(data, root, {p: diff.new[p] for p in sources})
            where = "the gate run" if first is None and ran_whole is None else "the affected tests"
            covered = covered.model_copy(update={"measured_in": where})
        elif sources:
            covered = ChangeCoverage(
                measured_in=f"no run: the tests that run the changed code took {cost:.0f}s at "
                "the base, and the coverage tracer multiplies that several times "
                f"(measured up to {gate.coverage_budget(baseline):.0f}s)"
            )
        return result, verdict(
            result,
            spec=spec_tests,
            affected=first,
            affected_ids=len(affected.ids),
            coverage=covered,
        )

    def _coverage_cost(self, affected: impact.Affected, named: spec.Spec | None) -> float:
        """Seconds the tests measuring the change took at the base (the whole suite's when
        no affected test is known)."""
        baseline = self.run.baseline
        assert baseline is not None
        if not affected.files and named is None:
            return sum(t.duration for t in baseline.tests)
        took = {t.nodeid: t.duration for t in baseline.tests}
        spec_ids = named.ids if named is not None else set()
        return sum(took.get(i, 0.0) for i in {*affected.ids, *spec_ids})

    def _affected(
        self, diff: impact.Changes, names: Mapping[str, str], named: spec.Spec | None
    ) -> impact.Affected:
        """The base tests this attempt affects, from the test-impact map."""
        from pytest_orchestrator.phases.execute import impact

        run, root = self.run, self.tree.path
        assert run.baseline is not None
        if self._blobs is None:
            self._blobs = impact.source_blobs(root, run.base_commit)
        blobs = self._blobs
        sources = {p: gate.base_text(root, run.base_commit, p) for p in diff.old if p in blobs}
        impacts = impact.ImpactMap.open(run.settings.cache_dir)
        try:
            return impact.affected(
                diff,
                baseline=run.baseline,
                impact=impacts,
                blobs=blobs,
                base_source=sources,
                names=names,
                exclude=named.ids if named is not None else set(),
            )
        finally:
            impacts.close()

    def _affected_run(
        self,
        number: int,
        args: list[str],
        affected: impact.Affected,
        named: spec.Spec | None,
        names: Mapping[str, str],
        measure: Coverage | None,
        whole: bool,
    ) -> tuple[TestRunResult | None, list[SpecTest], TestRunResult | None]:
        """The spec (as pytest selects it), then the other affected tests: the run of those
        (None when there is nothing to run first), the spec's verdicts, and with ``whole``
        the gate's whole run (the spec's tests included) when the affected tests passed in
        it: their run then went on with the rest of the suite in the same process."""
        from pytest_orchestrator.phases.execute import spec

        first: TestRunResult | None = None
        spec_tests: list[SpecTest] = []
        if named is not None:
            opts, paths = named.selection.pytest_args()
            first = self._tests(
                f"spec{number}", [*args, *opts], paths=paths, workers=0, coverage=measure
            )
            spec_tests = spec.judge(named, first, names)
            if not first.green or spec.unmet(spec_tests):
                return first, spec_tests, None
        files = [f for f in affected.files if (self.tree.path / f).is_file()]
        if not files:
            return first, spec_tests, None
        more = (
            dataclasses.replace(measure, fresh=False) if first is not None and measure else measure
        )
        if whole:
            done = [t.nodeid for t in first.tests if t.outcome != "deselected"] if first else []
            ran = self._tests(
                f"gate{number}", args, first=affected.keep(), skip=done or None, coverage=more
            )
            whole_run = ran if first is None else gate.merge(first, ran)
            part = gate.first_part(ran, affected.keep())
            if not part.tests:  # none of them collected now: the whole suite ran, none first
                return first, spec_tests, whole_run
            both = part if first is None else gate.merge(first, part)
            return both, spec_tests, whole_run if part.green else None
        rest = self._tests(
            f"affected{number}", args, paths=files, keep=affected.keep(), coverage=more
        )
        return (rest if first is None else gate.merge(first, rest)), spec_tests, None

    def _tests(
        self,
        label: str,
        args: list[str],
        *,
        paths: list[str] | None = None,
        keep: list[str] | None = None,
        skip: list[str] | None = None,
        first: list[str] | None = None,
        workers: int | str | None = None,
        coverage: Coverage | None = None,
    ) -> TestRunResult:
        """One inner run in the worktree, under the base's configuration (``args``)."""
        from pytest_orchestrator.phases.execute.baseline import bytecode_prefix
        from pytest_orchestrator.phases.execute.testrun import invalidate_bytecode, run_tests

        run = self.run
        assert run.baseline is not None
        self._touched.update(c.path for c in gate.changes(self.tree.path, run.base_commit))
        prefix = bytecode_prefix(run)
        invalidate_bytecode(prefix, self.tree.path, sorted(self._touched))
        extra = {}
        if run.gauge is not None:
            extra[run.gauge.ENV_VAR] = str(run.gauge.shared_path)
        return run_tests(
            self.tree.path,
            user_repo=run.repo,
            scratch=run.scratch,
            label=label,
            workers=run.settings.workers if workers is None else workers,
            paths=paths,
            config_args=args,
            timeout=gate.timeout(run.baseline),
            timeout_hint=f"an attempt's run may take {GATE_TIMEOUT_FACTOR:g}x the baseline's "
            f"{run.baseline.seconds:.0f}s (at least {GATE_TIMEOUT_FLOOR:g}s): does a test hang?",
            extra_env=extra,
            env_allow=run.settings.env_allow,
            gauge=run.gauge,
            keep=keep,
            skip=skip,
            first=first,
            coverage=coverage,
            pycache=prefix,
        )

    @contextlib.contextmanager
    def _base_tests(self, paths: list[str]) -> Iterator[None]:
        """Put ``paths`` back to their base content for the gate run, then as they were."""
        root = self.tree.path
        saved: dict[str, bytes | None] = {}
        try:
            for rel in paths:
                target = inside(root, rel)
                saved[rel] = target.read_bytes() if target.is_file() else None
                base = gate.base_blob(root, self.run.base_commit, rel)
                target.unlink(missing_ok=True)
                if base is not None:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(base)
            yield
        finally:
            for rel, data in saved.items():
                target = root / rel
                target.unlink(missing_ok=True)
                if data is not None:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)

    def run_step(self, item: StepItem) -> None:
        """Run one step item's op in its pool; a failed op fails the item."""
        step = item.step
        for need in step.needs:
            done = self._results.get(need)
            if done is None or not done.ok:
                pytest.skip(f"needs {need!r}, which did not succeed")
        if step.pool == "mutate":
            for future in list(self._inflight.values()):
                future.exception()  # wait for readers; their failures are their items' to report
            outcome = self._timed(item.plan, step, "mutate pool (controller, serial)")
            self._start_gate(item.plan, item.number)
        else:
            self._submit_ready(item.plan)
            started: Future[OpOutcome] | None = None
            with self._lock:
                if step.id in self._inflight:
                    started = self._inflight.pop(step.id)
            outcome = (started or self._submit(item.plan, step)).result()
        item.user_properties.append(("worker", outcome.worker))
        if not outcome.ok:
            raise StepFailed(f"{step.op} failed: {outcome.summary}")

    def _submit_ready(self, plan: Plan) -> None:
        """Start every scan step whose needs have all succeeded."""
        for step in plan.order():
            with self._lock:
                started = step.id in self._inflight or step.id in self._results
            if step.pool != "scan" or started:
                continue
            needs = [self._results.get(n) for n in step.needs]
            if all(r is not None and r.ok for r in needs):
                future = self._submit(plan, step)
                with self._lock:
                    self._inflight[step.id] = future

    def _submit(self, plan: Plan, step: Step) -> Future[OpOutcome]:
        assert self._scan is not None
        gauge = self.run.gauge

        def work() -> OpOutcome:
            if gauge is not None:
                gauge.wait_below_soft(timeout=30.0)  # new scan work waits above the soft mark
            return self._timed(plan, step, "scan pool (thread)")

        # spans opened in the pool must be children of the attempt's span: carry the context
        return self._scan.submit(contextvars.copy_context().run, work)

    def _timed(self, plan: Plan, step: Step, pool_worker: str) -> OpOutcome:
        started = time.perf_counter()
        try:
            outcome = self._run_op(plan, step)
        except OrchestratorError as exc:
            outcome = OpOutcome(False, str(exc))
        if outcome.worker == "controller":
            outcome.worker = pool_worker
        result = StepResult(
            step_id=step.id,
            op=step.op,
            pool="mutate" if step.pool == "mutate" else "scan",
            ok=outcome.ok,
            summary=outcome.summary,
            worker=outcome.worker,
            seconds=round(time.perf_counter() - started, 3),
            changed_files=outcome.changed_files,
            data={k: outcome.data[k] for k in ("failed", "mentions") if outcome.data.get(k)},
        )
        with self._lock:
            self._results[step.id] = result
        return outcome

    def _run_op(self, plan: Plan, step: Step) -> OpOutcome:
        spec = self.run.ops[step.op]
        module, _, attr = spec.impl.partition(":")
        impl = getattr(importlib.import_module(module), attr)
        args = spec.args.model_validate(step.args)
        ctx = StepContext(self.run, plan, step, self._state)
        with self.run.tracer.span(f"step.{step.id}", kind="TOOL", op=step.op, pool=step.pool):
            outcome: OpOutcome = impl(ctx, args)
        return outcome
