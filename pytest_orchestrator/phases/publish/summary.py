"""The GitHub Actions job summary: what a run did, on the workflow run's page.

In Actions, ``$GITHUB_STEP_SUMMARY`` names a file whose Markdown GitHub shows on the run's
summary page. Written once per run, after cleanup (so the trace link reflects the final
export): the outcome, the attempts, the baseline against the gate run, the Monte Carlo
verdict, and the PR and trace links. Outside Actions the variable is unset and nothing is
written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pytest_orchestrator.run import Run


def job_summary(run: Run) -> str:
    """The summary's Markdown."""
    rec = run.record
    icon = "✅" if rec.exit_status == 0 else "❌"
    lines = [
        f"## {icon} pytest-orchestrator: {rec.outcome}",
        "",
        f"`pytest --orchestrate {run.command!r}`",
        "",
        f"{rec.message}" if rec.message else "",
        "",
        f"- Attempts: {len(run.attempts)} of {run.settings.attempts}",
    ]
    for a in run.attempts:
        tests = (
            f"{a.tests.passed} passed, {len(a.tests.failed)} failed" if a.tests else "no gate run"
        )
        failed = ", ".join(c.name for c in a.checks if not c.ok)
        lines.append(
            f"  - attempt {a.number}: {'green' if a.green else 'red'} — {tests}"
            + (f"; failed checks: {failed}" if failed else "")
        )
    montecarlo = run.latest_montecarlo()
    lines.append(f"- Monte Carlo: {montecarlo.verdict if montecarlo else 'did not run'}")
    if run.published is not None:
        p = run.published
        lines.append(f"- PR: {p.url}" + (" (merged)" if p.merged else ""))
        lines += [f"  - {note}" for note in p.notes]
    else:
        lines.append("- PR: none (only a green gate is published)")
    lines.append(f"- Trace: {run.tracer.link()}")
    lines.append(f"- Run directory: `{run.run_dir}`")
    gate = next((a.gate for a in reversed(run.attempts) if a.gate is not None), None)
    if gate is not None:
        lines += [
            "",
            "| tests | collected | passed | failed | skipped | xfailed | deselected | errors |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, c in (("baseline", gate.baseline), ("gate", gate.gate)):
            lines.append(
                f"| {name} | {c.collected} | {c.passed} | {c.failed} | {c.skipped} "
                f"| {c.xfailed} | {c.deselected} | {c.errors} |"
            )
    elif run.baseline is not None:
        lines.append(f"- Baseline: {run.baseline.passed} passed at the base commit; no gate run")
    return "\n".join(lines) + "\n\n"


def write_job_summary(run: Run, env: Mapping[str, str] = os.environ) -> Path | None:
    """Append the summary to ``$GITHUB_STEP_SUMMARY``; never fails the run over it."""
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    try:
        with path.open("a", encoding="utf-8") as out:
            out.write(job_summary(run))
    except OSError:
        return None
    return path
