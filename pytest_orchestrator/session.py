"""The orchestrating session: the seven phases mapped onto pytest's stages.

==========================  ===========================================================
pytest stage                what the orchestrator does there
==========================  ===========================================================
``pytest_sessionstart``     check the repository, open the run directory, tracer, gauge
                            and cache; choose where the base is read
``pytest_collection``       1 Map, 2 Logic; the planner accepts the command, the worktree is
                            taken, the baseline test run starts; 3 Monte Carlo, 4 Plan,
                            5 Optimise; the plan's steps become the session's items
``pytest_runtestloop``      6 Execute and 7 Review, attempt after attempt
``pytest_sessionfinish``    the gate; publish when green; release the worktree
``pytest_terminal_summary`` the outcome, and where the PR is
==========================  ===========================================================

Early exits travel as `StopRun` (or an `OrchestratorError`, whose message is for the user)
and are caught in one place, `_guard`.
"""

from __future__ import annotations

import contextvars
import gc
import importlib
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

import pytest

from pytest_orchestrator import hookspecs
from pytest_orchestrator.errors import (
    EditError,
    OrchestratorError,
    PlanError,
    PlannerRefused,
    PlanValidationError,
    RepositoryError,
    StopRun,
    TestRunError,
)
from pytest_orchestrator.items import PlanFile, PlanItem
from pytest_orchestrator.model import (
    Attempt,
    ExitReason,
    Phase,
)
from pytest_orchestrator.plan import OPS, OpSpec, Plan, load_plan, validate_plan
from pytest_orchestrator.repo import checkout, git
from pytest_orchestrator.repo.worktree import Worktree
from pytest_orchestrator.run import Run
from pytest_orchestrator.settings import resolve

if TYPE_CHECKING:  # imported where used: a dry run never executes (~0.2 s of imports)
    from pytest_orchestrator.phases.execute.baseline import Baseline
    from pytest_orchestrator.phases.execute.phase import Executor

PHASE_PLUGINS: Final = tuple(
    f"pytest_orchestrator.phases.{name}.phase"
    for name in ("map", "logic", "montecarlo", "plan", "optimise", "review", "publish")
)
DRY_RUN_PHASES: Final = tuple(
    name for name in PHASE_PLUGINS if name.split(".")[2] in ("map", "logic", "plan")
)
"""What a dry run registers: it stops after Plan, so no other phase's hook is ever called
(Review's `pytest_orchestrator_phase_done` acts only after Optimise), and importing them
(Review's checks, Monte Carlo) is a tenth of a second of its start."""
_BAD_INPUT: Final = (RepositoryError, EditError, TestRunError)


class Orchestrator:
    """The per-session plugin object, registered only when ``--orchestrate`` is given."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.run: Run | None = None
        self.stop: StopRun | None = None
        self.preloaded: Plan | None = None
        self.baseline: Future[Baseline] | None = None
        self.items: list[PlanItem] = []
        self.final: Attempt | None = None
        self.executor: Executor | None = None
        self._old_sigterm: Any = None
        self._old_sigint: Any = None
        self._signalled = False  # SIGINT or SIGTERM arrived: the exit status is 2
        self._interrupted = False  # ... and was raised as KeyboardInterrupt once
        self._deferring = False  # signals are noted, not raised (the run is finishing)
        self._session: pytest.Session | None = None
        self._cleaned = False
        self._more_after = False
        self.tree: Worktree | None = None
        self._checkout: checkout.Snapshot | None = None
        self._scratch: Path | None = None
        self._runs_code = True  # False for a dry run or --collect-only (set at the start)
        # Tests named on the command line are the spec, for the inner runs to select: this
        # process never collects them (it loads no conftest of the target), and -k/-m must
        # not deselect the plan's steps, which are this session's items.
        # A -k/-m from the project's own `addopts` (click: -m 'not stress') is its test
        # configuration, which the inner runs read themselves, not a spec.
        opt = config.option
        from_args = config.args_source is pytest.Config.ArgsSource.ARGS
        typed = [a for a in config.invocation_params.args if not a.startswith("--")]
        self._named = (
            list(config.args) if from_args else [],
            (getattr(opt, "keyword", "") or "") if any(a.startswith("-k") for a in typed) else "",
            (getattr(opt, "markexpr", "") or "") if any(a.startswith("-m") for a in typed) else "",
        )
        opt.keyword = opt.markexpr = ""

    @property
    def _tree(self) -> Worktree:
        assert self.tree is not None, "the worktree exists once the planner accepted the command"
        return self.tree

    # ------------------------------------------------------------------ reporting

    def _write(self, line: str = "", **markup: bool) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            writer = self.config.get_terminal_writer()  # the reporter's own writer
            if writer.width_of_current_line:  # e.g. after pytest's deferred "[100%]"
                writer.line()
            reporter.write_line(line, **markup)

    def _progress(self, line: str) -> None:
        self._write(line, cyan=True)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """The one place an early exit is turned into the run's outcome."""
        try:
            yield
        except StopRun as stop:
            self._stop(stop)
        except PlannerRefused as exc:
            self._stop(StopRun(ExitReason.PLANNER_REFUSED, str(exc)))
        except (PlanValidationError, PlanError) as exc:
            self._stop(StopRun(ExitReason.INVALID_PLAN, str(exc)))
        except _BAD_INPUT as exc:
            self._stop(StopRun(ExitReason.BAD_INPUT, str(exc)))
        except OrchestratorError as exc:
            self._stop(StopRun(ExitReason.BAD_INPUT, str(exc)))
        except Exception as exc:
            # A bug (ours or a plugin's): keep the evidence, clean up, exit 3 like pytest's
            # internal errors, but never leave a half-finished worktree behind.
            trace = traceback.format_exc()
            if self.run is not None:
                self.run.write("error.txt", trace)
            self._write(trace, red=True)
            self._stop(StopRun(ExitReason.ERROR, f"internal error: {type(exc).__name__}: {exc}"))

    def _stop(self, stop: StopRun) -> None:
        if self.stop is None:
            self.stop = stop
            if self.run is not None:
                self.run.finish(stop.reason, stop.message)

    def pytest_report_header(self, config: pytest.Config) -> str:
        from pytest_orchestrator.phases.plan.planners import describe_planner

        opt = config.option
        planner = describe_planner(opt.orchestrate_planner or config.getini("orchestrate_planner"))
        what = opt.orchestrate or f"plan {opt.orchestrate_plan}"
        return f"orchestrate: {what!r} (planner: {planner})"

    # ------------------------------------------------------------------ sessionstart

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionstart(self, session: pytest.Session) -> Iterator[None]:
        yield  # after pytest's own start (and its header): our lines follow it
        with self._guard():
            self._start(session)

    def _start(self, session: pytest.Session) -> None:
        root = git.toplevel(self.config.invocation_params.dir)
        settings = resolve(self.config, root)
        if settings.plan_file is not None:
            # A rejected plan changes nothing: validate before any branch or directory exists.
            self.preloaded = load_plan(settings.plan_file, self._ops())
            if not settings.command:
                settings = settings.model_copy(update={"command": self.preloaded.command})
        if not settings.command.strip():
            raise StopRun(
                ExitReason.BAD_INPUT, '--orchestrate needs a command, e.g. "Rename a to b"'
            )
        if re.search(r"\bmerg(?:e|ed|ing)\b", settings.command, re.IGNORECASE) and not (
            settings.merge
        ):
            self._write(
                "orchestrate: the command mentions merging; words never merge. Pass "
                "--orchestrate-merge (or set orchestrate_merge = true) to merge a green result",
                yellow=True,
            )
        base_branch = settings.base or git.current_branch(root)
        base_commit = (
            git.git("rev-parse", "--verify", f"{settings.base}^{{commit}}", cwd=root).strip()
            if settings.base
            else git.head_commit(root)
        )
        from pytest_orchestrator.phases.execute import spec
        from pytest_orchestrator.repo import worktree

        named = spec.selection(
            self._named[0],
            *self._named[1:],
            invocation=self.config.invocation_params.dir,
            root=root,
        )
        if named.named:
            spec.check_at_base(root, base_commit, named)
            settings = settings.model_copy(update={"spec": named})
        for stale in worktree.clean_stale(root):
            self._write(f"orchestrate: removed leftovers of interrupted run {stale}", yellow=True)
        top = root.resolve()
        git.exclude(  # our output never shows as dirty
            root,
            *(
                "/" + ours.resolve().relative_to(top).parts[0] + "/"
                for ours in (settings.run_root, settings.cache_dir)
                if ours.resolve().is_relative_to(top)
            ),
        )
        # a dry run or --collect-only runs no code of the target: its checkout is never compared
        self._runs_code = not (settings.dry_run or self.config.option.collectonly)
        self._checkout = checkout.snapshot(root, files=self._runs_code)
        dirty = self._checkout.dirty()
        if dirty:
            shown = ", ".join(dirty[:5]) + (" …" if len(dirty) > 5 else "")
            self._write(
                f"orchestrate: uncommitted changes are not part of the run ({shown}); "
                f"it starts from {base_commit[:10]}",
                yellow=True,
            )
        run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        run_dir = settings.run_root / run_id
        try:
            run_dir.mkdir(parents=True)
        except OSError as exc:
            raise StopRun(
                ExitReason.BAD_INPUT,
                f"cannot create the run directory {run_dir}: {exc.strerror}. Point "
                "--orchestrate-run-dir (or orchestrate_run_dir) at a writable directory",
            ) from None
        self._install_sigterm()
        from pytest_orchestrator.guard import containment
        from pytest_orchestrator.repo import view

        containment.reopen()
        from pytest_orchestrator.tracing import Tracer

        tracer = Tracer(run_dir / "trace.json", ui=settings.trace_ui)
        self._scratch = Path(tempfile.mkdtemp(prefix=f"orchestrate-{run_id}-"))
        self.run = run = Run(
            run_id=run_id,
            settings=settings,
            repo=root,
            worktree=root,
            branch="",
            base_commit=base_commit,
            base_branch=base_branch,
            run_dir=run_dir,
            hook=self.config.hook,
            tracer=tracer,
            ops=self._ops(),
            report=self._progress,
            scratch_dir=self._scratch,
        )
        self._root_span = tracer.span("orchestrate", kind="AGENT", command=settings.command)
        self._root_span.__enter__()
        run.write("command.txt", settings.command + "\n")
        self._open_components(run)
        manager = self.config.pluginmanager
        for name in DRY_RUN_PHASES if settings.dry_run else PHASE_PLUGINS:
            if not manager.has_plugin(name):  # (a blocked name, `-p no:NAME`, stays blocked)
                # Imported and registered, not `import_plugin`-ed: that marks the module for
                # pytest's assertion rewriting, whose bytecode is never written under
                # PYTHONDONTWRITEBYTECODE, so every run parsed, rewrote and compiled the phases
                # again; their asserts are invariants, not tests (see the package's __init__).
                manager.register(importlib.import_module(name), name)
        self._progress(f"orchestrate: run {run_id} from {base_commit[:10]}")
        differs = view.checkout_differs(root, base_commit, self._checkout)
        if differs is None:  # Map, Logic and Plan read the checkout in place
            # it is the base and clean, untracked files included: the snapshot's status says
            # what Map's cache key would ask git again (which reads a ``.git`` there)
            run.base_tree = self._checkout.tree if (root / ".git").exists() else None
            self._load_target_hooks(run)
        else:
            self._progress(f"orchestrate: the base is read from a worktree ({differs})")
            self._take_worktree(run)
        if named.named:
            self._progress(f"orchestrate: the spec is the named tests: {named.shown()}")

    def _take_worktree(self, run: Run) -> None:
        """The run's worktree (a persistent slot reset to the base), once the run needs one:
        from now on every phase reads and writes there, and the target's hooks come from it."""
        if self.tree is not None:
            return
        from pytest_orchestrator.phases.execute.baseline import bytecode_prefix
        from pytest_orchestrator.phases.execute.phase import Executor
        from pytest_orchestrator.phases.execute.testrun import invalidate_bytecode
        from pytest_orchestrator.repo import worktree

        start = time.perf_counter()
        tree = worktree.Worktree.create(
            run.repo, run.base_commit, run.command, run.run_id, scratch=run.scratch
        )
        self.tree = tree
        run.worktree = tree.path
        # the slot's bytecode of files the reset rewrote is stale
        invalidate_bytecode(bytecode_prefix(run), tree.path, tree.rewritten)
        submodules = worktree.init_submodules(run.repo, tree.path, run.base_commit)
        for path in submodules:
            self._write(f"orchestrate: submodule {path} cloned from your checkout")
        # known only for a reused slot, verified clean by the reset, with nothing added since
        run.base_tree = None if submodules else tree.clean_tree
        self.executor = Executor(run, tree)
        self.config.pluginmanager.register(self.executor, "orchestrator-executor")
        self._load_target_hooks(run)
        how = (
            f"reused: {len(tree.rewritten)} file(s) differed from the base and were reset"
            if tree.reused
            else "checked out"
        )
        self._progress(
            f"orchestrate: worktree {tree.path} ({how}, {time.perf_counter() - start:.2f}s)"
        )

    def _ops(self) -> dict[str, OpSpec]:
        ops = dict(OPS)
        for contributed in self.config.hook.pytest_orchestrator_ops():
            for spec in contributed or []:
                ops[spec.name] = spec
        return ops

    def _open_components(self, run: Run) -> None:
        """The memory gauge (sampling from now on; only when the target's code will run: a dry
        run's record then has no memory figures) and the slice cache (never needed for
        correctness: an unusable directory falls back to memory with a warning)."""
        from pytest_orchestrator.guard.pressure import PressureGauge
        from pytest_orchestrator.phases.map.slice_cache import SliceCache

        run.scratch.mkdir(exist_ok=True)
        if self._runs_code:  # only sampling, the baseline and the attempts read it
            run.gauge = PressureGauge(
                interval=run.settings.sample_interval,
                threshold=run.settings.mem_threshold,
                shared_path=run.scratch / "pressure.bin",
            )
            run.gauge.start()
        run.cache = SliceCache.open(run.settings.cache_dir)

    def _load_target_hooks(self, run: Run) -> None:
        """Register the target's root conftest ``pytest_orchestrator_*`` hooks (not others;
        not the ones that run its code, which run in the Monte Carlo children), from where
        the run reads now: those of the checkout give way to the worktree's."""
        manager = self.config.pluginmanager
        if manager.has_plugin("target-conftest"):
            manager.unregister(name="target-conftest")
        # no bytecode of the conftest is written where it is read: not in the user's checkout,
        # and not in the worktree either, whose tree (`Run.base_tree`) is then the base's
        before = sys.dont_write_bytecode
        sys.dont_write_bytecode = True
        try:
            plugin = hookspecs.target_hooks(run.worktree, in_child=False)
            if plugin is not None:
                self.config.pluginmanager.register(plugin, "target-conftest")
        except Exception as exc:
            self._write(
                f"orchestrate: the target's conftest.py could not be loaded for phase hooks "
                f"({type(exc).__name__}: {exc}); import the code under test inside hook functions",
                yellow=True,
            )
        finally:
            sys.dont_write_bytecode = before

    def _start_baseline(self, run: Run) -> None:
        """On its own thread, beside Monte Carlo: the suite at the base (or its cached run)."""
        from pytest_orchestrator.phases.execute.baseline import measure

        pool = ThreadPoolExecutor(1, "baseline")
        self.baseline = pool.submit(contextvars.copy_context().run, measure, run)
        pool.shutdown(wait=False)

    def _install_sigterm(self) -> None:
        """SIGINT and SIGTERM stop the run: SIGTERM would skip ``finally`` and Ctrl-C reaches
        only our own process group, so both become one KeyboardInterrupt, after every process
        group the run started has been sent SIGTERM. A signal while the run is already
        stopping, or during cleanup, is only noted (the exit status becomes 2): raising there
        would cut the cleanup short and end in a traceback."""
        if threading.current_thread() is not threading.main_thread():
            return

        def interrupt(signum: int, frame: FrameType | None) -> None:
            from pytest_orchestrator.guard import containment

            self._signalled = True
            containment.signal_all(signal.SIGTERM)
            if self._interrupted or self._deferring:
                return
            self._interrupted = True
            raise KeyboardInterrupt(f"signal {signum}")

        self._old_sigint = signal.signal(signal.SIGINT, interrupt)
        self._old_sigterm = signal.signal(signal.SIGTERM, interrupt)

    # ------------------------------------------------------------------ collection: phases 1-5

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool:
        with self._guard():
            if self.stop is None and self.run is not None:
                self._phases_before_execute(self.run)
        if self.stop is None and self.run is not None and not self.run.settings.dry_run:
            plan_file = self._plan_file(session, self.run.plans[0], 1)
            report = plan_file.ihook.pytest_make_collect_report(collector=plan_file)
            session.ihook.pytest_collectreport(report=report)
            self.items = [i for i in report.result if isinstance(i, PlanItem)]
        items: list[pytest.Item] = list(self.items)
        self.config.hook.pytest_collection_modifyitems(
            session=session, config=self.config, items=items
        )
        session.items = items
        self.config.hook.pytest_collection_finish(session=session)
        session.testscollected = len(items)
        return True

    def _plan_file(self, session: pytest.Session, plan: Plan, number: int) -> PlanFile:
        assert self.run is not None
        return PlanFile.from_parent(
            session,
            path=self.run.run_dir / "plan.json",
            # shown as "plan.json::<pool>:<id>" from wherever pytest was invoked (both paths
            # are absolute, so this is what pytest's private ``bestrelpath`` gives)
            nodeid=os.path.relpath(
                self.config.invocation_params.dir / "plan.json", self.config.rootpath
            ),
            plan=plan,
            number=number,
            runner=self.executor,
        )

    def _phases_before_execute(self, run: Run) -> None:
        hook = self.config.hook
        with run.phase(Phase.MAP) as note:
            run.map = hook.pytest_orchestrator_map(run=run)
            assert run.map is not None
            note.summary = f"{len(run.map.files)} files, {len(run.map.slices)} slices"
        with run.phase(Phase.LOGIC) as note:
            run.logic = hook.pytest_orchestrator_logic(run=run, candidates=run.map)
            assert run.logic is not None
            note.summary = (
                f"kept {len(run.logic.kept)}/{len(run.logic.slices)} slices, "
                f"{run.logic.used_tokens}/{run.logic.budget_tokens} tokens"
            )
            # pydantic's own serialiser: 280 kB on a large tree, ~8 ms less than json.dumps
            run.write("slices.json", run.logic.model_dump_json(indent=2) + "\n")
        from pytest_orchestrator.phases.plan.phase import context_for, load, reading_base

        run.planner = load(run)
        # a dry run changes nothing before Plan (same view of the base, no Monte Carlo): the
        # planner's context (a listing of every tracked file) is made once for both calls
        context = None if self.preloaded is not None else context_for(run)
        if context is not None:
            # The planner says now whether it can plan at all: a refusal costs Map and
            # Logic, not a worktree, Monte Carlo and a run of the suite.
            with reading_base(run):
                run.planner.can_plan(context)
        if not run.settings.dry_run:
            self._take_worktree(run)  # --collect-only too: Optimise works on a copy of it
        if not (run.settings.dry_run or self.config.option.collectonly):
            # Nothing runs in a dry run or --collect-only: no sampling, no baseline.
            self._start_baseline(run)
            with run.phase(Phase.MONTECARLO) as note:
                run.montecarlo = hook.pytest_orchestrator_sample(run=run, slices=run.logic)
                assert run.montecarlo is not None
                run.write("mc_summary.json", run.montecarlo.model_dump(mode="json"))
                note.summary = run.montecarlo.summary_line()
            self._await_baseline(run)
        with run.phase(Phase.PLAN) as note:
            if self.preloaded is not None:
                plans = [self.preloaded]
            else:
                if context is None or not run.settings.dry_run:
                    context = context_for(run)  # the worktree, Monte Carlo's summary
                plans = self._validated(hook.pytest_orchestrator_plan(run=run, context=context))
            run.plans = plans
            run.write("plan.json", plans[0].dumps())
            note.summary = f"{len(plans[0].steps)} steps by {plans[0].planner} ({_pools(plans[0])})"
        if run.settings.dry_run:
            self._print_dry_run(run)
            raise StopRun(ExitReason.DRY_RUN, "dry run: stopped after Plan, nothing changed")
        with run.phase(Phase.OPTIMISE) as note:
            ranked = hook.pytest_orchestrator_optimise(run=run, plans=run.plans)
            run.plans = self._validated(ranked) if ranked else run.plans
            run.write("plan.json", run.plans[0].dumps())
            note.summary = f"{len(run.plans)} candidate plan(s), best {run.plans[0].digest()}"

    def _validated(self, plans: list[Plan] | None) -> list[Plan]:
        assert self.run is not None
        if not plans:
            raise StopRun(ExitReason.PLANNER_REFUSED, "the planner returned no plan")
        good, errors = [], []
        for plan in plans:
            try:
                validate_plan(plan, self.run.ops)
                good.append(plan)
            except PlanValidationError as exc:
                errors.append(str(exc))
        if not good:
            raise StopRun(ExitReason.INVALID_PLAN, "\n".join(errors))
        return good

    def _await_baseline(self, run: Run) -> None:
        if self.baseline is None:
            return  # a dry run or --collect-only changes nothing, so needs no baseline
        from pytest_orchestrator.phases.execute import spec

        measured = self.baseline.result()
        run.baseline = result = measured.result
        run.spec_base = measured.spec
        run.write("tests-baseline.json", result.model_dump(mode="json"))
        run.write(
            "baseline.json",
            {
                "cached_from": measured.cached_from,
                "seconds": measured.seconds,
                "coverage_recorded_files": measured.measured,
                "unmeasured_files": measured.unmeasured,
            },
        )
        self._check_checkout(run, "while Map, Monte Carlo and the baseline test run ran")
        if not result.tests and not result.collection_errors:
            raise StopRun(
                ExitReason.BASELINE_RED,
                "the repository has no tests (none collected at the base commit): "
                "there is no gate to pass, so nothing will be merged",
            )
        named = spec.Spec(run.settings.spec, measured.spec) if measured.spec else None
        failing = spec.failing_outside(result, named)
        if failing:
            why = spec.refusal(failing, run.base_commit, named)
            if measured.cached_from:
                why += (
                    f"\n(this baseline was cached from run {measured.cached_from}; "
                    "--orchestrate-fresh runs it again)"
                )
            raise StopRun(ExitReason.BASELINE_RED, why)
        if named is not None:
            if not named.ids and not named.base.collection_errors:
                raise StopRun(
                    ExitReason.BAD_INPUT,
                    f"the named tests ({run.settings.spec.shown()}) select no test at "
                    f"{run.base_commit[:10]}: name tests that exist in the base commit",
                )
            red = sum(t.outcome != "passed" for t in named.base.tests)
            broken = len(named.base.collection_errors)
            self._progress(
                f"{'spec':<10} {len(named.ids)} named test(s), {red} failing"
                + (f", {broken} file(s) not collecting" if broken else "")
                + " at the base commit: the change must make them pass"
            )
        how = (
            f"cached from run {measured.cached_from}, base tree and environment unchanged"
            if measured.cached_from
            else f"{result.seconds:.2f}s"
        )
        if measured.measured:
            how += f"; per-test coverage of {measured.measured} source file(s) recorded"
        self._progress(f"{'baseline':<10} {result.passed} tests pass at the base commit ({how})")

    def _check_checkout(self, run: Run, when: str) -> None:
        """End the run red if anything wrote to the user's checkout since the run began."""
        if self._checkout is None:
            return
        changed = checkout.differences(self._checkout, checkout.snapshot(run.repo))
        if changed:
            listed = "\n  ".join(changed[:20])
            raise StopRun(
                ExitReason.CHECKS_FAILED,
                f"your checkout changed {when}; the target's code (a test, a conftest, a "
                f"simulation) writes outside its worktree, so nothing was kept:\n  {listed}",
            )

    def _print_dry_run(self, run: Run) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        reporter.write_sep("-", "ranked slices")
        if run.logic is not None:
            try:
                from pytest_orchestrator.phases.logic.phase import format_ranking

                for line in format_ranking(run.logic):
                    reporter.write_line(line)
            except ImportError:
                pass
        reporter.write_sep("-", f"plan.json ({run.run_dir / 'plan.json'})")
        reporter.write_line(run.plans[0].dumps().rstrip())

    # ------------------------------------------------------------------ runtestloop: 6-7

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        run = self.run
        if self.stop is not None or run is None or not self.items:
            return True
        if self.config.option.collectonly:
            self._stop(StopRun(ExitReason.DRY_RUN, "collect only: the plan's steps, not run"))
            return True
        with self._guard():
            self._attempts(session, run)
        return True

    def _attempts(self, session: pytest.Session, run: Run) -> None:
        queue = list(run.plans)
        plan = queue.pop(0)
        items = self.items
        run.base_tree = None  # the attempts change the worktree: its tree is no longer known
        for number in range(1, run.settings.attempts + 1):
            self._more_after = number < run.settings.attempts and (
                bool(queue) or run.planner is None or run.planner.can_replan
            )
            with run.phase(Phase.EXECUTE) as note:
                attempt = self.config.hook.pytest_orchestrator_execute(
                    run=run, plan=plan, number=number, items=items
                )
                note.summary = f"attempt {number}: " + ", ".join(
                    f"{s.step_id} {'ok' if s.ok else 'FAILED'}" for s in attempt.steps
                )
            with run.phase(Phase.REVIEW) as note:
                checks = [
                    c
                    for cs in self.config.hook.pytest_orchestrator_review(run=run, attempt=attempt)
                    for c in cs or []
                ]
                attempt = attempt.model_copy(update={"checks": checks})
                failed = [c.name for c in checks if not c.ok]
                note.summary = "gate green" if attempt.green else f"gate red: {', '.join(failed)}"
            run.attempts.append(attempt)
            (run.run_dir / "plans").mkdir(exist_ok=True)
            run.write(f"plans/attempt-{number}.json", plan.dumps())
            self._check_checkout(run, f"during attempt {number}")
            if attempt.green:
                self.final = attempt
                return
            if number == run.settings.attempts:
                break
            if queue:
                plan = queue.pop(0)
            else:
                with run.phase(Phase.PLAN) as note:
                    from pytest_orchestrator.phases.plan.phase import context_for
                    from pytest_orchestrator.phases.plan.planners import Failure

                    failure = Failure(number, attempt.evidence(), self._tree.diff(), plan)
                    self._tree.reset()  # planners read the base, not the failed attempt
                    context = context_for(run, failures=[failure])
                    replans = self.config.hook.pytest_orchestrator_plan(run=run, context=context)
                    if not replans:
                        note.summary = "no further plan"
                        break
                    plans = self._validated(replans)
                    run.plans += plans  # every plan considered, for Review and PR.md
                    plan, queue = plans[0], plans[1:]
                    run.write("plan.json", plan.dumps())
                    note.summary = f"replan after attempt {number}: {len(plan.steps)} steps"
            pf = self._plan_file(session, plan, number + 1)
            report = pf.ihook.pytest_make_collect_report(collector=pf)
            items = [i for i in report.result if isinstance(i, PlanItem)]
            session.testscollected += len(items)
        self.final = run.attempts[-1] if run.attempts else None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if isinstance(item, PlanItem) and report.failed and getattr(self, "_more_after", False):
            report.outcome = "rerun"  # type: ignore[assignment]

    def pytest_report_teststatus(self, report: pytest.TestReport) -> Any:
        if str(report.outcome) == "rerun":
            return "retried", "R", ("RETRIED", {"yellow": True})
        return None

    # ------------------------------------------------------------------ sessionfinish

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        run = self.run
        self._session = session
        self._deferring = True  # from here on a signal is noted, except while publishing
        if run is not None:
            if exitstatus == pytest.ExitCode.INTERRUPTED or self._interrupted:
                run.finish(ExitReason.INTERRUPTED, "the run was interrupted: nothing was kept")
            elif exitstatus == pytest.ExitCode.INTERNAL_ERROR and self.stop is None:
                run.finish(ExitReason.ERROR, "pytest reported an internal error: nothing was kept")
            elif self.stop is None:
                self._deferring = False
                try:
                    with self._guard():
                        self._conclude(run)
                except KeyboardInterrupt:  # Ctrl-C while publishing
                    self._deferring = True
                    kept = self.tree.kept_commit() if self.tree is not None else None
                    run.finish(
                        ExitReason.INTERRUPTED,
                        "the run was interrupted while publishing: "
                        + (
                            f"the tested commit {kept[:12]} stays on branch {run.branch}; "
                            "check whether it was published"
                            if kept
                            else "nothing was kept"
                        ),
                    )
                finally:
                    self._deferring = True
            self._cleanup()
            session.exitstatus = run.record.exit_status or 0
            if self._signalled:
                session.exitstatus = pytest.ExitCode.INTERRUPTED
        elif self.stop is not None:
            session.exitstatus = self.stop.reason.exit_status

    def _conclude(self, run: Run) -> None:
        from pytest_orchestrator.phases.publish.phase import write_bundle

        final = self.final
        if final is not None and final.green:
            from pytest_orchestrator.phases.publish.phase import commit_message

            # The order is the guarantee: a branch is kept only once it holds the tested
            # commit, and the lease names that commit (an interruption before this line
            # leaves nothing; after it, exactly the result).
            commit = self._tree.commit(commit_message(run, final))
            run.branch = self._tree.branch
            self._tree.keep_branch(commit)
            try:
                with run.phase(Phase.PUBLISH) as note:
                    run.published = self.config.hook.pytest_orchestrator_publish(
                        run=run, attempt=final, commit=commit
                    )
                    assert run.published is not None
                    note.summary = f"{run.published.forge}: {run.published.url}"
            except OrchestratorError as exc:
                run.finish(
                    ExitReason.PUBLISH_FAILED,
                    f"the gate is green and the tested commit is on branch {run.branch}, "
                    f"but it could not be published: {exc}",
                )
                return
            run.finish(ExitReason.GREEN, f"gate green after {len(run.attempts)} attempt(s)")
            self._remember(run)
        else:
            reason = ExitReason.TESTS_FAILED
            if final is not None and final.tests is not None and final.tests.green:
                reason = ExitReason.CHECKS_FAILED
            run.finish(reason, "the gate stayed red: no commit, no branch, no PR")
            write_bundle(run, final, diff=self._tree.diff() if final else "")

    def _remember(self, run: Run) -> None:
        """Map's memory: the slices a green run changed, for similar commands later."""
        from pytest_orchestrator.phases.map.memory import remember

        touched = self._tree.changed_lines()
        chosen = [
            r.slice
            for r in (run.map.slices if run.map else [])
            if touched.get(r.slice.path, set())
            & set(range(r.slice.start_line, r.slice.end_line + 1))
        ]
        if chosen:
            remember(run.settings.cache_dir, run.command, chosen)

    def _cleanup(self) -> None:
        """Idempotent: also runs from unconfigure after an interruption. Signals arriving
        meanwhile are noted, not raised: a cleanup cut short would leave the worktree."""
        if self._cleaned:
            return
        self._cleaned = True
        self._deferring = True
        from pytest_orchestrator.guard import containment

        containment.stop_all(grace=1.0, close=True)
        if self.baseline is not None:
            self.baseline.cancel()
        run = self.run
        if run is not None:  # (the worktree, if any, was taken after the run began)
            try:
                self._root_span.__exit__(None, None, None)
                if run.gauge is not None:
                    run.gauge.stop()
                run.save_record()
                # copies of source made for the run's own use are not evidence: drop them
                if (run.run_dir / "montecarlo").exists():
                    from pytest_orchestrator.phases.montecarlo.shrink import BASE_SNAPSHOT

                    shutil.rmtree(run.run_dir / "montecarlo" / BASE_SNAPSHOT, ignore_errors=True)
            finally:
                if self.tree is not None:
                    self.tree.remove()
                if run.cache is not None:
                    run.cache.close()
                run.tracer.shutdown()
                from pytest_orchestrator.phases.publish.summary import write_job_summary

                write_job_summary(run)  # in Actions: the outcome on the workflow run's page
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._cleanup()
        # the run is over and its heap is freed at exit: pytest's exit-time gc.collect()
        # (for unraisable exceptions, of which the orchestrator raises none) need not walk it
        gc.freeze()
        if self._signalled and self._session is not None:
            self._session.exitstatus = pytest.ExitCode.INTERRUPTED
        if self._signalled:
            # The process is ending because of a signal. A user still pressing Ctrl-C must not
            # turn its last milliseconds into a traceback or a death by signal (Python resets
            # its own handlers at exit, but leaves SIG_IGN alone), so ignore further ones.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            return
        for signum, old in ((signal.SIGINT, self._old_sigint), (signal.SIGTERM, self._old_sigterm)):
            if old is not None:
                signal.signal(signum, old)

    # ------------------------------------------------------------------ terminal summary

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from pytest_orchestrator.phases.publish.phase import terminal_lines

        tr = terminalreporter
        if self.run is None:
            if self.stop is not None:
                tr.write_sep("=", "orchestrate: refused", red=True)
                tr.write_line(self.stop.message)
            return
        green = self.run.record.exit_reason == ExitReason.GREEN.value
        dry = self.run.record.exit_reason == ExitReason.DRY_RUN.value
        title = (
            "orchestrate: GREEN"
            if green
            else (
                "orchestrate: dry run"
                if dry
                else f"orchestrate: {self.run.record.exit_reason.upper()}"
            )
        )
        tr.write_sep("=", title, green=green or dry, red=not (green or dry))
        for line in terminal_lines(self.run):
            tr.write_line(line)


def _pools(plan: Plan) -> str:
    scan = sum(s.pool == "scan" for s in plan.steps)
    return f"{scan} scan, {len(plan.steps) - scan} mutate"
