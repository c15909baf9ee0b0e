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
from pytest_orchestrator.phases.plan.redact import redact
from pytest_orchestrator.phases.publish.change import Change, trailers
from pytest_orchestrator.phases.publish.forge import choose_forge
from pytest_orchestrator.plan import Plan
from pytest_orchestrator.repo.worktree import slugify
from pytest_orchestrator.run import Run

BODY_LIMIT: Final = 65_536
"""GitHub's limit on a pull request's body, in characters."""
NOTE_ROOM: Final = 1_500
"""Characters kept free for the note that says what was cut."""
SHRINK_ORDER: Final = (
    "Diff",
    "plan.json",
    "Model calls",
    "Text mentions",
    "Test changes",
    "Coverage",
    "Optimise",
    "Monte Carlo",
    "Attempts",
    "Gate",
)
"""The order in which PR.md's sections shrink to fit `BODY_LIMIT`: what the run directory
holds in full first (diff.patch, plan.json, run.json), the gate's verdict last."""


@pytest.hookimpl(trylast=True)
def pytest_orchestrator_publish(run: Run, attempt: Attempt, commit: str) -> PublishResult:
    from pytest_orchestrator.repo.git import git

    diff = git("diff", "--binary", run.base_commit, commit, cwd=run.worktree)
    write_bundle(run, attempt, diff=diff, commit=commit)
    forge = choose_forge(run.repo, run.settings.forge, run.settings.github_repo)
    merge, why_not = merge_decision(run, attempt)

    def render(branch: str) -> Path:
        return run.write("PR.md", pr_markdown(run, attempt, diff, commit, branch=branch))

    change = Change(
        repo=run.repo,
        command=run.command,
        branch=run.branch,
        shared_branch=f"orchestrate/{slugify(run.command)}",
        commit=commit,
        base=run.base_branch,
        title=_title(run),
        render=render,
        merge=merge,
        merge_method=run.settings.merge_method,
    )
    result = forge.publish(change)
    if why_not:
        result = result.model_copy(update={"notes": [*result.notes, why_not]})
    return result


def commit_message(run: Run, attempt: Attempt) -> str:
    """The tested commit's message: the command's first clause, the plan's summary, and the
    trailers by which a re-run of the same command on the same base finds its branch."""
    summary = attempt.plan.summary
    return f"{_title(run)}\n\n{summary}\n\n" + trailers(
        run.command, run.base_branch or run.base_commit, run.run_id
    )


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


def pr_markdown(
    run: Run, attempt: Attempt | None, diff: str, commit: str, *, branch: str = ""
) -> str:
    """PR.md; ``branch`` is where the change is published (default: the run's branch)."""
    branch = branch or run.branch
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
        (f"- Branch: `{branch}`" if branch else "- Branch: none (made only for a green commit)")
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
    sections: list[tuple[str, str]] = [("Summary", "\n".join(lines))]
    table = ["## Attempts", "", "| # | plan | steps | tests | failed checks | seconds |"]
    table.append("|---|---|---|---|---|---|")
    for a in run.attempts:
        steps = ", ".join(f"{s.step_id} {'✓' if s.ok else '✗'}" for s in a.steps)
        tests = f"{a.tests.passed} passed, {len(a.tests.failed)} failed" if a.tests else "not run"
        failed = ", ".join(c.name for c in a.checks if not c.ok) or "—"
        table.append(
            f"| {a.number} | `{a.plan_digest}` | {steps} | {tests} | {failed} | {a.seconds:.1f} |"
        )
        if not a.green and a.evidence():
            evidence = a.evidence().replace("\n", " ⏎ ")[:600]
            table.append(f"|   | evidence | {evidence} | | | |")
    sections.append(("Attempts", "\n".join(table)))
    sections.append(("Gate", _gate_section(run, attempt).strip()))
    for name, lines in (("Spec", _spec_section(attempt)), ("Coverage", _coverage_section(attempt))):
        if lines:
            sections.append((name, "\n".join(lines).strip()))
    if checks := checks_section(attempt).strip():
        sections.append(("Checks", checks))
    sections.append(("Monte Carlo", _mc_section(run).strip()))
    if mentions := mentions_section(attempt).strip():
        sections.append(("Text mentions", mentions))
    from pytest_orchestrator.phases.optimise.phase import pr_section as optimise_section

    if optimised := optimise_section(run).strip():
        sections.append(("Optimise", optimised))
    if run.ledger.calls:
        from pytest_orchestrator.phases.plan.llm import calls_table

        sections.append(("Model calls", f"## Model calls\n\n{calls_table(run.ledger.calls)}"))
    if tests_changed(attempt) and attempt is not None and attempt.gate is not None:
        changed = _files_of(diff, attempt.gate.tests_changed).rstrip()
        sections.append(("Test changes", f"## Test changes\n\n```diff\n{changed}\n```"))
    stat = ""
    if attempt is not None and attempt.diff_stat:
        stat = f"```\n{attempt.diff_stat}\n```\n\n"
    sections.append(("Diff", f"## Diff\n\n{stat}```diff\n{diff.rstrip()}\n```"))
    shown = plan.dumps().rstrip() if plan else "{}"
    sections.append(("plan.json", f"## plan.json\n\n```json\n{shown}\n```"))
    sections.append(("Trace", f"## Trace\n\n{run.tracer.link()}"))
    where = (
        f"the run directory `{run.run_dir.name}` (diff.patch, plan.json, run.json; a CI run "
        f"uploads it as an artefact) and on branch `{branch}`"
    )
    return fit_body(sections, where)


def fit_body(sections: list[tuple[str, str]], where: str, limit: int = BODY_LIMIT) -> str:
    """Join the sections (the first, the summary, never shrinks), shrinking the others in
    `SHRINK_ORDER` until the whole fits ``limit`` characters; then a note under the summary
    says what was cut and that the whole is in ``where``.

    Every section is redacted first (`redact`: credential shapes and the values of this
    process's credential variables): the body is posted where anyone who can read the
    repository reads it, and a plan, a diff or a test's output may carry a credential that
    the run itself refused (a red run's PR.md shows the plan that tried)."""
    texts = {name: redact(text) for name, text in sections}
    budget = limit - NOTE_ROOM
    cut: list[str] = []
    for name in SHRINK_ORDER:
        over = len(_joined(texts)) - budget
        if over <= 0:
            break
        if name not in texts:
            continue
        original = texts[name]
        texts[name] = _shrunk(name, original, len(original) - over)
        kept = len(texts[name])
        cut.append(
            f"{name} (left out, {len(original):,} characters)"
            if kept < 300
            else f"{name} (first {kept:,} of {len(original):,} characters)"
        )
    if cut:
        note = (
            f"> **Shortened to fit GitHub's {limit:,}-character limit** (sections shrink in "
            f"this order: {', '.join(SHRINK_ORDER)}). Cut: {'; '.join(cut)}. The whole is in "
            f"{where}."
        )
        first = next(iter(texts))
        texts[first] = texts[first] + "\n\n" + note[: NOTE_ROOM - 10]
    return _joined(texts)[:limit]


def _joined(texts: dict[str, str]) -> str:
    return "\n\n".join(texts.values()) + "\n"


def _shrunk(name: str, text: str, room: int) -> str:
    """``text`` cut to at most ``room`` characters at a line end, its code block closed, or a
    one-line stub when little would be left."""
    stub = f"## {name}\n\n_(left out: {len(text):,} characters; see the run directory)_"
    tail = "\n… (cut here; the whole is in the run directory)\n```"
    if room < 300 + len(tail):
        return stub
    kept = text[: room - len(tail)]
    kept = kept[: kept.rfind("\n")] if "\n" in kept else kept
    fences = sum(1 for line in kept.splitlines() if line.startswith("```"))
    return kept + (tail if fences % 2 else tail.removesuffix("\n```"))


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


def _spec_section(attempt: Attempt | None) -> list[str]:
    """Red-green: each named test at the base and after the change."""
    gate = attempt.gate if attempt is not None else None
    if gate is None or not gate.spec:
        return []
    lines = ["## Spec", "", "The tests named on the command line, at the base and after:", ""]
    lines += ["| test | base | after |", "|---|---|---|"]
    for t in gate.spec:
        lines.append(f"| `{t.nodeid}` | {_mark(t.base)} | {_mark(t.after)} |")
    return [*lines, ""]


def _mark(outcome: str) -> str:
    return f"{'🟢' if outcome == 'passed' else '🔴'} {outcome}"


def _coverage_section(attempt: Attempt | None) -> list[str]:
    """Changed lines the gate run executed, N of M, and the ones it did not."""
    gate = attempt.gate if attempt is not None else None
    cov = gate.coverage if gate is not None else None
    if cov is None:
        return []
    if cov.measured_in.startswith("no run"):
        return ["## Coverage of the change", "", f"Not measured ({cov.measured_in}).", ""]
    share = f" ({cov.covered / cov.total:.0%})" if cov.total else ""
    lines = [
        "## Coverage of the change",
        "",
        f"{cov.covered} of {cov.total} changed executable lines ran in {cov.measured_in}{share}.",
        "",
    ]
    if cov.uncovered:
        lines += ["Not covered:", ""]
        for path, missed in sorted(cov.uncovered.items()):
            lines.append(f"- `{path}`: lines {_ranges(missed)}")
        lines.append("")
    return lines


def _ranges(lines: list[int]) -> str:
    """``[1, 2, 3, 7]`` as ``1-3, 7``."""
    spans: list[list[int]] = []
    for n in sorted(lines):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)


def checks_section(attempt: Attempt | None) -> str:
    """The repository's own checks against the base: per tool, the findings at the base, after
    the change, and the ones the change added (those are what make a check red)."""
    rows = [
        c
        for c in (attempt.checks if attempt is not None else [])
        if c.attempt_findings is not None or c.skipped
    ]
    if not rows:
        return ""
    lines = [
        "## Checks",
        "",
        "| check | base findings | attempt findings | new | result |",
        "|---|---|---|---|---|",
    ]
    for c in rows:
        base = "—" if c.base_findings is None else str(c.base_findings)
        now = "—" if c.attempt_findings is None else str(c.attempt_findings)
        result = f"skipped: {c.skipped}" if c.skipped else ("ok" if c.ok else "**red**")
        lines.append(f"| {c.name} | {base} | {now} | {len(c.findings)} | {result} |")
    new = [f for c in rows for f in c.findings]
    if new:
        lines += ["", "Findings the change adds:", ""]
        lines += [f"- `{f.path}:{f.line}` {f.tool} {f.rule}: {f.message}" for f in new[:50]]
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
        for c in a.checks:
            if not c.ok:
                lines += [f"  attempt {a.number} {c.name}: {f}" for f in c.findings[:5]]
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
