"""Publish: write the PR bundle of the green attempt's commit, post it to the forge.

The run directory is a public contract (README.md, "The run directory"): ``command.txt``,
``slices.json``, ``plan.json``, ``mc_summary.json``, ``tests.json``, ``diff.patch``, ``trace.json``,
``PR.md`` and ``run.json``. `write_bundle` writes the ones that depend on the outcome, for
green and red runs alike (a red run's PR.md explains why there is no PR).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import pytest

from pytest_orchestrator.model import Attempt, PublishResult
from pytest_orchestrator.phases.publish.forge import choose_forge
from pytest_orchestrator.plan import Plan
from pytest_orchestrator.run import Run

DIFF_LIMIT: Final = 60_000


@pytest.hookimpl(trylast=True)
def pytest_orchestrator_publish(run: Run, attempt: Attempt, commit: str) -> PublishResult:
    from pytest_orchestrator.repo.git import git

    diff = git("diff", "--binary", run.base_commit, commit, cwd=run.worktree)
    pr = write_bundle(run, attempt, diff=diff, commit=commit)
    forge = choose_forge(run.repo, run.settings.forge, run.settings.github_repo)
    merge, why_not = merge_decision(run, attempt)
    result = forge.publish(run.repo, run.branch, commit, run.base_branch, pr, merge)
    if why_not:
        result = result.model_copy(update={"notes": [*result.notes, why_not]})
    return result


def commit_message(run: Run, attempt: Attempt) -> str:
    """The tested commit's message: the command's first clause, the plan's summary."""
    summary = attempt.plan.summary
    return f"{_title(run)}\n\n{summary}\n\nCommand: {run.command}\nRun: {run.run_id}\n"


def merge_decision(run: Run, attempt: Attempt) -> tuple[bool, str]:
    """Merge only when asked by flag or ini key; a *tests changed* result needs a second
    flag. Returns the decision and, when a request was declined, why."""
    if not run.settings.merge:
        return False, ""
    if attempt.gate and tests_changed(attempt) and not run.settings.allow_test_changes:
        files = ", ".join(attempt.gate.tests_changed)
        return False, (
            f"merge skipped: the change edits tests ({files}); review them, then merge "
            "yourself or rerun with --orchestrate-allow-test-changes"
        )
    return True, ""


def tests_changed(attempt: Attempt | None) -> bool:
    """The result is marked *tests changed*: test edits the command asked for in words."""
    gate = attempt.gate if attempt is not None else None
    return bool(gate and gate.allowed_because and gate.tests_changed)


def _plan_of(run: Run, attempt: Attempt | None) -> Plan | None:
    if attempt is None:
        return run.plans[0] if run.plans else None
    return attempt.plan


def _title(run: Run) -> str:
    first = run.command.split(",")[0].strip().rstrip(".")
    return first[:1].upper() + first[1:]


def write_bundle(run: Run, attempt: Attempt | None, *, diff: str, commit: str = "") -> Path:
    """Write diff.patch, tests.json, mc_summary.json and PR.md; return PR.md's path."""
    run.write("diff.patch", diff)
    run.write(
        "tests.json",
        {
            "attempts": [
                {"number": a.number, "result": a.tests.model_dump(mode="json") if a.tests else None}
                for a in run.attempts
            ]
        },
    )
    montecarlo = run.latest_montecarlo()
    if montecarlo is not None:
        run.write("mc_summary.json", montecarlo.model_dump(mode="json"))
    return run.write("PR.md", pr_markdown(run, attempt, diff, commit))


def pr_markdown(run: Run, attempt: Attempt | None, diff: str, commit: str) -> str:
    plan = _plan_of(run, attempt)
    green = attempt is not None and attempt.green
    lines = [f"# {_title(run)}", "", f"> `pytest --orchestrate {json.dumps(run.command)}`", ""]
    lines += ["## Summary", ""]
    if plan is not None and plan.summary:
        lines += [plan.summary, ""]
    if green:
        number = attempt.number if attempt is not None else 0
        lines.append(f"- **Gate: green** on attempt {number} of {run.settings.attempts}")
    else:
        lines.append("- **Gate: red** — no commit, no PR; see the attempts below")
    lines.append(
        f"- Branch: `{run.branch}`"
        + (f" at `{commit[:12]}`" if commit else "")
        + f", from `{run.base_branch or 'HEAD'}` at `{run.base_commit[:12]}`"
    )
    if attempt is not None and attempt.tests is not None:
        t = attempt.tests
        lines.append(
            f"- Gate run: {t.passed} passed, {len(t.failed)} failed ({t.seconds:.1f}s), "
            "the whole suite under the base's test configuration"
        )
    if tests_changed(attempt) and attempt is not None and attempt.gate is not None:
        lines.append(
            f"- **Tests changed** at the command's request ({attempt.gate.allowed_because!r}): "
            f"{', '.join(attempt.gate.tests_changed)} — review the test changes first"
        )
    montecarlo = run.latest_montecarlo()
    if montecarlo is not None:
        lines.append(f"- Monte Carlo: {montecarlo.verdict}")
    calls = len(run.ledger.calls)
    lines.append(
        f"- Model use: {calls} call(s), {run.ledger.input_tokens} input / "
        f"{run.ledger.output_tokens} output tokens (planner: {plan.planner if plan else '?'})"
    )
    lines.append(f"- Trace: {run.tracer.link()}")
    lines += [
        "",
        "## Attempts",
        "",
        "| # | plan | steps | tests | failed checks | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for a in run.attempts:
        steps = ", ".join(f"{s.step_id} {'✓' if s.ok else '✗'}" for s in a.steps)
        tests = f"{a.tests.passed} passed, {len(a.tests.failed)} failed" if a.tests else "not run"
        failed = ", ".join(c.name for c in a.checks if not c.ok) or "—"
        lines.append(
            f"| {a.number} | `{a.plan_digest}` | {steps} | {tests} | {failed} | {a.seconds:.1f} |"
        )
        if not a.green and a.evidence():
            evidence = a.evidence().replace("\n", " ⏎ ")[:600]
            lines.append(f"|   | evidence | {evidence} | | | |")
    lines += ["", _gate_section(run, attempt).strip(), ""]
    lines += [_mc_section(run).strip(), ""]
    if mentions := mentions_section(attempt).strip():
        lines += [mentions, ""]
    from pytest_orchestrator.phases.optimise.phase import pr_section as optimise_section

    if optimised := optimise_section(run).strip():
        lines += [optimised, ""]
    if run.ledger.calls:
        from pytest_orchestrator.phases.plan.llm import calls_table

        lines += ["## Model calls", "", calls_table(run.ledger.calls), ""]
    if tests_changed(attempt) and attempt is not None and attempt.gate is not None:
        lines += ["## Test changes", "", "```diff"]
        lines += [_files_of(diff, attempt.gate.tests_changed).rstrip(), "```", ""]
    lines += ["## Diff", ""]
    if attempt is not None and attempt.diff_stat:
        lines += ["```", attempt.diff_stat, "```", ""]
    shown = (
        diff if len(diff) <= DIFF_LIMIT else diff[:DIFF_LIMIT] + "\n… (truncated; see diff.patch)\n"
    )
    lines += ["```diff", shown.rstrip(), "```", ""]
    lines += ["## plan.json", "", "```json", plan.dumps().rstrip() if plan else "{}", "```", ""]
    lines += ["## Trace", "", run.tracer.link(), ""]
    return "\n".join(lines)


def _gate_section(run: Run, attempt: Attempt | None) -> str:
    """Baseline against the gate run, then everything the gate found."""
    gate = attempt.gate if attempt is not None else None
    if attempt is None or gate is None:
        return "## Gate\n\nNo gate run: a step of the last attempt did not succeed."
    head = (
        "| run | collected | passed | failed | skipped | xfailed | xpassed | deselected | errors |"
    )
    lines = ["## Gate", "", head, "|---|---|---|---|---|---|---|---|---|"]
    for name, c in (("baseline", gate.baseline), (f"gate, attempt {attempt.number}", gate.gate)):
        lines.append(
            f"| {name} | {c.collected} | {c.passed} | {c.failed} | {c.skipped} | {c.xfailed} "
            f"| {c.xpassed} | {c.deselected} | {c.errors} |"
        )
    lines += ["", f"Configuration: {gate.config}.", ""]
    if gate.missing:
        lines += ["Tests that passed at the base and do not pass now:", ""]
        lines += [f"- `{m}`" for m in gate.missing] + [""]
    if gate.findings:
        lines += ["Integrity findings (the change weakens the gate):", ""]
        lines += [f"- {f}" for f in gate.findings] + [""]
    if not gate.missing and not gate.findings:
        lines.append("Every test that passed at the base passes; nothing in the diff weakens them.")
    return "\n".join(lines)


def mentions_section(attempt: Attempt | None) -> str:
    """What a rename did to the text around the code: docs, docstrings, comments, doctests
    updated; mentions left on purpose, each with why; string literals for review."""
    found = [s.data["mentions"] for s in (attempt.steps if attempt else []) if "mentions" in s.data]
    if not found:
        return ""
    lines = ["## Text mentions", ""]
    for title, key in (
        ("Text mentions updated", "updated"),
        ("Left on purpose", "left"),
        ("String literals naming the symbol (not changed: review them)", "literals"),
    ):
        rows = [row for data in found for row in data.get(key, [])]
        lines += [f"{title}: {len(rows)}", ""]
        for row in rows[:50]:
            why = f" — {row['why']}" if key == "left" else ""
            lines.append(f"- `{row['path']}:{row['line']}` `{row['text']}`{why}")
        if len(rows) > 50:
            lines.append(f"- … and {len(rows) - 50} more")
        lines.append("")
    return "\n".join(lines)


def _files_of(diff: str, paths: list[str]) -> str:
    """The sections of a git diff that touch ``paths``."""
    wanted = set(paths)
    keep, out = False, []
    for line in diff.splitlines(keepends=True):
        if line.startswith("diff --git "):
            a, _, b = line[len("diff --git ") :].strip().partition(" ")
            keep = a.removeprefix("a/") in wanted or b.removeprefix("b/") in wanted
        if keep:
            out.append(line)
    return "".join(out)


def _mc_section(run: Run) -> str:
    from pytest_orchestrator.phases.montecarlo.phase import pr_section

    montecarlo = run.latest_montecarlo()
    if montecarlo is None:
        return "## Monte Carlo\n\nNo Monte Carlo phase ran."
    return pr_section(montecarlo)


def terminal_lines(run: Run) -> list[str]:
    rec = run.record
    lines = [rec.message] if rec.message else []
    for a in run.attempts:
        if a.tests is not None:
            t = a.tests
            lines.append(
                f"attempt {a.number}: {t.passed} passed, {len(t.failed)} failed"
                + (
                    ""
                    if a.green
                    else f"; failed checks: {', '.join(c.name for c in a.checks if not c.ok)}"
                )
            )
            for f in t.failed[:10]:
                lines.append(f"  attempt {a.number} FAILED {f.nodeid}")
        else:
            lines.append(
                f"attempt {a.number}: no gate run; "
                f"failed checks: {', '.join(c.name for c in a.checks if not c.ok)}"
            )
            for f in a.failing_tests()[:10]:
                lines.append(f"  attempt {a.number} FAILED {f.nodeid}")
    montecarlo = run.latest_montecarlo()
    if montecarlo is not None:
        lines.append(f"monte carlo: {montecarlo.verdict}")
    lines.append(
        f"tokens: {run.ledger.input_tokens} in / {run.ledger.output_tokens} out "
        f"in {len(run.ledger.calls)} model call(s)"
    )
    lines += run.planner.notes if run.planner is not None else []
    if run.published is not None:
        p = run.published
        lines.append(f"branch: {p.branch} @ {p.commit[:12]}" + (" (merged)" if p.merged else ""))
        lines.append(f"PR: {p.url}")
        lines += p.notes
    lines.append(f"run directory: {run.run_dir}")
    lines.append(f"trace: {run.tracer.link()}")
    return lines
