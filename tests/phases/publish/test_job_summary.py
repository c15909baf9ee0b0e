"""The Actions job summary: appended to ``$GITHUB_STEP_SUMMARY`` when it is set, for red runs
as for green ones."""

from __future__ import annotations

from pathlib import Path

import pluggy

from pytest_orchestrator.model import ExitReason
from pytest_orchestrator.phases.publish.summary import write_job_summary
from pytest_orchestrator.plan import OPS
from pytest_orchestrator.run import Run
from pytest_orchestrator.settings import Settings
from pytest_orchestrator.tracing import Tracer


def make_run(tmp_path: Path) -> Run:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    settings = Settings(command="Rename add to plus", run_root=tmp_path, cache_dir=tmp_path)
    hook = pluggy.PluginManager("pytest").hook
    return Run("r1", settings, tmp_path, tmp_path, "orchestrate/x", "c0ffee", "main", run_dir,
               hook, Tracer(run_dir / "trace.json", env={}), dict(OPS))  # fmt: skip


def test_a_red_run_says_why_and_that_nothing_was_published(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.finish(ExitReason.TESTS_FAILED, "the gate stayed red: no commit, no PR")
    target = tmp_path / "summary.md"
    target.write_text("earlier step\n")
    assert write_job_summary(run, {"GITHUB_STEP_SUMMARY": str(target)}) == target
    text = target.read_text()
    assert text.startswith("earlier step\n## ❌ pytest-orchestrator: tests_failed")
    assert "the gate stayed red: no commit, no PR" in text
    assert "- Attempts: 0 of 3" in text
    assert "- PR: none (only a green gate is published)" in text
    assert f"- Trace: {run.run_dir / 'trace.json'}" in text


def test_outside_actions_nothing_is_written(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.finish(ExitReason.GREEN, "gate green")
    assert write_job_summary(run, {}) is None
    assert write_job_summary(run, {"GITHUB_STEP_SUMMARY": str(tmp_path / "no" / "dir")}) is None
