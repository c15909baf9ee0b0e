"""The baseline: the suite at the base commit, what every gate run is held to.

One function, `measure`, runs on the session's baseline thread: it reuses a cached result
when the base tree and the environment are unchanged (`baseline_cache`), and otherwise runs
the suite once, measuring per-test coverage of the source files the test-impact map has not
seen yet (`impact`). With named tests, the spec is run on its own at the base too: pytest
itself selects it, and its red is what PR.md shows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pytest_orchestrator.model import TestRunResult
from pytest_orchestrator.options import DEFAULT_TEST_TIMEOUT, GATE_TIMEOUT_FACTOR
from pytest_orchestrator.phases.execute import baseline_cache, impact
from pytest_orchestrator.phases.execute.testrun import Coverage, run_tests
from pytest_orchestrator.repo.git import git
from pytest_orchestrator.run import Run

FIRST_TIMEOUT: Final = 3600.0
"""Seconds a baseline may take when nothing says how long this suite runs: generous (sympy
collects for minutes), yet a hung suite is still stopped."""


@dataclass(frozen=True)
class Timeout:
    """How long the baseline run may take, and why (for the message when it is cut off)."""

    seconds: float
    why: str

    def hint(self) -> str:
        return (
            f"the baseline may take {self.seconds:.0f}s ({self.why}). If the suite really "
            "needs longer, set orchestrate_test_timeout = SECONDS in your pytest configuration "
            "(e.g. [tool.pytest.ini_options] in pyproject.toml); if it hangs, find the test"
        )


def baseline_timeout(setting: float, recent: float | None) -> Timeout:
    """The baseline's own timeout. An ``orchestrate_test_timeout`` the user set is obeyed;
    left at its default, it is sized from how long this repository's suite took lately
    (``recent``, from the baseline cache): `GATE_TIMEOUT_FACTOR` times that, never below the
    default; with no earlier run, `FIRST_TIMEOUT`."""
    if setting != DEFAULT_TEST_TIMEOUT:
        return Timeout(setting, "orchestrate_test_timeout")
    if recent is not None:
        return Timeout(
            max(DEFAULT_TEST_TIMEOUT, GATE_TIMEOUT_FACTOR * recent),
            f"{GATE_TIMEOUT_FACTOR:g}x the {recent:.0f}s an earlier baseline took, "
            f"at least {DEFAULT_TEST_TIMEOUT:.0f}s",
        )
    return Timeout(FIRST_TIMEOUT, "no earlier baseline of this repository says how long it runs")


@dataclass(frozen=True)
class Baseline:
    result: TestRunResult
    spec: TestRunResult | None
    """The named tests run at the base; None without named tests."""
    cached_from: str | None
    """The run whose baseline was reused, or None when it ran now."""
    measured: int
    """Source files whose per-test coverage this run recorded."""
    unmeasured: int
    """Source files the impact map still lacks (a reused baseline measures nothing)."""
    seconds: float


def measure(run: Run) -> Baseline:
    """The baseline (and the spec's run at the base), from the cache or run now."""
    start = time.perf_counter()
    settings = run.settings
    tree_id = git("rev-parse", f"{run.base_commit}^{{tree}}", cwd=run.worktree).strip()
    env = baseline_cache.environment()
    cache = baseline_cache.BaselineCache.open(settings.cache_dir)
    impacts = impact.ImpactMap.open(settings.cache_dir)
    try:
        blobs = impact.source_blobs(run.worktree, run.base_commit)
        todo = sorted(blobs) if settings.fresh else impacts.unmeasured(blobs)
        if not settings.impact_map:
            todo = []
        what = ["baseline", str(settings.workers)]
        full_key = baseline_cache.key(tree_id, what, env)
        hit = None if settings.fresh else cache.get(full_key)
        measured = 0
        limit = baseline_timeout(settings.test_timeout, cache.recent_seconds())
        if hit is not None:
            result = hit.result
        else:
            data = run.scratch / "coverage-baseline" / ".coverage"
            data.parent.mkdir(parents=True, exist_ok=True)
            wanted = [str(run.worktree / p) for p in todo]
            coverage = Coverage(data, wanted, contexts=True) if todo else None
            result = _run(run, "baseline", limit, coverage)
            if todo:
                impacts.record(data, run.worktree, blobs, todo)
                measured = len(todo)
            if result.tests or result.collection_errors:
                cache.put(full_key, result, run.run_id)
        spec = None
        if settings.spec.named:
            opts, paths = settings.spec.pytest_args()
            spec_key = baseline_cache.key(tree_id, ["spec", *opts, "--", *paths], env)
            spec_hit = None if settings.fresh or hit is None else cache.get(spec_key)
            if spec_hit is not None:
                spec = spec_hit.result
            else:
                spec = _run(run, "spec-base", limit, None, opts, paths)
                cache.put(spec_key, spec, run.run_id)
        return Baseline(
            result=result,
            spec=spec,
            cached_from=hit.run_id if hit is not None else None,
            measured=measured,
            unmeasured=len(todo) - measured,
            seconds=round(time.perf_counter() - start, 3),
        )
    finally:
        cache.close()
        impacts.close()


def _run(
    run: Run,
    label: str,
    limit: Timeout,
    coverage: Coverage | None,
    options: list[str] | None = None,
    paths: list[str] | None = None,
) -> TestRunResult:
    with run.tracer.span(f"tests.{label}", kind="TOOL"):
        return run_tests(
            run.worktree,
            user_repo=run.repo,
            scratch=run.scratch,
            label=label,
            workers=run.settings.workers if coverage is not None or label == "baseline" else 0,
            config_args=options,
            paths=paths,
            env_allow=run.settings.env_allow,
            timeout=limit.seconds,
            timeout_hint=limit.hint(),
            gauge=run.gauge,
            coverage=coverage,
            pycache=bytecode_prefix(run),
        )


def bytecode_prefix(run: Run) -> Path:
    """The bytecode prefix the run's own test runs share: the worktree slot's, beside it,
    kept from run to run like the worktree (the interpreter's and the dependencies' bytecode
    is then written once, not once per run), never in the checkout, which no inner run's
    environment may name. What a run or an attempt rewrote is deleted from it before the
    next test run (`testrun.invalidate_bytecode`: the session after resetting the slot, the
    executor for each attempt's touched files)."""
    return run.worktree.parent / "pycache"
