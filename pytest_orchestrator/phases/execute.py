"""Phase 6, Execute: one attempt, in the worktree, step item by step item.

The two pools, and why this mechanism (DESIGN.md §2): the xdist controller never collects
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
"""

from __future__ import annotations

import contextvars
import importlib
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import final

import pytest

from pytest_orchestrator.errors import OrchestratorError
from pytest_orchestrator.items import StepFailed, StepItem
from pytest_orchestrator.model import Attempt, StepResult
from pytest_orchestrator.ops import AttemptState, OpOutcome, StepContext
from pytest_orchestrator.plan import Plan, Step
from pytest_orchestrator.run import Run
from pytest_orchestrator.worktree import Worktree

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

    @pytest.hookimpl(trylast=True)
    def pytest_orchestrator_execute(
        self, run: Run, plan: Plan, number: int, items: list[StepItem]
    ) -> Attempt:
        start = time.perf_counter()
        self.tree.reset()
        self._state = AttemptState(number)
        self._results, self._inflight = {}, {}
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
        return Attempt(
            number=number,
            plan_digest=plan.digest(),
            steps=[self._results[s.id] for s in plan.order() if s.id in self._results],
            tests=self._state.tests,
            diff_stat=self.tree.diff_stat(),
            seconds=round(time.perf_counter() - start, 3),
        )

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
