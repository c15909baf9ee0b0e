"""Post-change checks from the repository's own configuration, held to the base.

Which checks: the tools its configuration names (`tools.discover`), its pre-commit hooks that
run offline (`precommit`), and the commands of ``orchestrate_checks``; discovery is off with
``orchestrate_checks_discover = false``. Each runs once at the base and once per attempt, and
only the findings the change adds (`findings.new_findings`) make its check red.

The cost: the base side runs **once per run**, on a background thread started when Optimise
is done, so it overlaps the first attempt's steps and gate run instead of adding to them; and
at most once per base for the linters this package discovers, whose base findings are kept
across runs (`base_cache`). What must run at the base runs on a snapshot of the base commit
in the run's scratch directory (`repo.git.export`), written only then; pre-commit's base side
runs on it for each new set of changed files (that is all it ever looks at). On the attempt
side, mypy's incremental cache is kept across runs (`tool_cache`), so a run whose base
findings were reused does not type-check the whole project cold.
An attempt whose steps did not all succeed is red already: its tools are not run.
"""

from __future__ import annotations

import contextvars
import re
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from pytest_orchestrator.errors import RepositoryError
from pytest_orchestrator.model import Attempt, Check, CheckFinding
from pytest_orchestrator.phases.execute.baseline_cache import environment
from pytest_orchestrator.phases.plan.redact import redact
from pytest_orchestrator.phases.review import base_cache, precommit, tool_cache
from pytest_orchestrator.phases.review.commands import Outcome, run_command
from pytest_orchestrator.phases.review.findings import DiffMap, diff_map, finding, new_findings
from pytest_orchestrator.phases.review.tools import Tool, command, discover
from pytest_orchestrator.repo.git import export, git
from pytest_orchestrator.run import Run
from pytest_orchestrator.settings import Settings

PRE_COMMIT: Final = "pre-commit"
KEPT_FINDINGS: Final = 200
"""New findings of one check kept in run.json (the detail says how many there were)."""


@dataclass
class ToolRun:
    """One check on one side: its findings, or why there are none."""

    status: Literal["ok", "missing", "timeout", "error"]
    findings: list[CheckFinding] = field(default_factory=list)
    detail: str = ""


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:40] or "check"


def _tail(text: str, limit: int = 400) -> str:
    """The end of a command's output, redacted (it may print the line it complains about)."""
    text = text.strip()
    return redact(text if len(text) <= limit else "…" + text[-limit:])


def _judge_outcome(name: str, outcome: Outcome, tool: Tool | None, root: Path) -> ToolRun:
    """The findings of one finished command (a tool's report, or a failed command)."""
    shown = " ".join(outcome.argv[:3])
    if outcome.missing:
        return ToolRun("missing", detail=f"{outcome.argv[0]} is not installed")
    if outcome.timed_out:
        return ToolRun("timeout", detail=f"{shown} … did not finish in time and was stopped")
    found: list[CheckFinding] | None
    if tool is None:  # pre-commit
        found = precommit.parse(outcome, root) if outcome.returncode else []
    elif outcome.returncode in tool.ok_codes:
        found = tool.parse(outcome.output, root)
    elif tool.ok_codes == (0,) and tool.name not in ("ruff",):  # a project's own command
        found = tool.parse(outcome.output, root) or [
            finding(
                name, "exit-status", "", 0, f"exit {outcome.returncode}: " + _tail(outcome.output)
            )
        ]
    else:
        found = None
    if found is None:
        cut = " (output cut)" if outcome.truncated else ""
        return ToolRun(
            "error", detail=f"{shown} … exited {outcome.returncode}{cut}: {_tail(outcome.output)}"
        )
    if tool is not None:  # pre-commit reports its rewrites itself
        found += [
            finding(name, "modified-files", path, 0, "the check rewrote this file (not applied)")
            for path in outcome.modified
        ]
    return ToolRun("ok", found, "output cut at 4 MB" if outcome.truncated else "")


def run_tool(
    tool: Tool, root: Path, scratch: Path, label: str, timeout: float, kept: Path | None = None
) -> ToolRun:
    """``kept``: the tool's cache kept across runs (`tool_cache`), else one in ``scratch``."""
    cache = kept or scratch / ("cache-base" if label == "base" else "cache-attempt")
    seed = scratch / "cache-base"
    if label != "base" and not any(_entries(cache)) and seed.is_dir():
        # the base side has finished (`review` waits for it): its cache of the installed
        # packages' modules (numpy's stubs, say) is as valid here, and the costly part
        shutil.copytree(seed, cache, symlinks=True, dirs_exist_ok=True)
    outcome = run_command(
        tool.argv(cache), root, scratch, f"{_slug(tool.name)}-{label}", timeout=timeout
    )
    return _judge_outcome(tool.name, outcome, tool, root)


def _entries(folder: Path) -> Iterator[Path]:
    return folder.iterdir() if folder.is_dir() else iter(())


def configured_tools(settings: Settings, root: Path) -> list[Tool]:
    found = discover(root) if settings.checks_discover else []
    return found + [command(line) for line in settings.checks if line.strip()]


class BaseSide:
    """The base commit's checks, computed once per run; the discovered linters' findings come
    from `base_cache` when the base, the tool and its configuration are unchanged. A snapshot
    of the base is written only for a tool that must run there (a miss, a project's own
    command) or for pre-commit."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.root = run.scratch / "checks-base"
        self.scratch = run.scratch / "checks"
        self._future: Future[dict[str, ToolRun]] | None = None
        self._lock = threading.Lock()
        self._snapshot_lock = threading.Lock()
        self._snapshot_error: str | None = None
        self._snapshot_made = False
        self._precommit: dict[frozenset[str], ToolRun] = {}
        self.cached: dict[str, str] = {}
        """Tool name -> the run whose base findings were reused."""

    def start(self) -> None:
        with self._lock:
            if self._future is not None:
                return
            pool = ThreadPoolExecutor(1, thread_name_prefix="checks-base")
            self._future = pool.submit(contextvars.copy_context().run, self._compute)
            pool.shutdown(wait=False)

    def tools(self) -> dict[str, ToolRun]:
        self.start()
        assert self._future is not None
        return self._future.result()

    def _compute(self) -> dict[str, ToolRun]:
        run = self.run
        tools = configured_tools(run.settings, run.worktree)
        with run.tracer.span("checks.base", kind="TOOL", tools=[t.name for t in tools]) as span:
            keys = self._keys(tools)
            cache = base_cache.FindingsCache.open(run.settings.cache_dir)
            try:
                timeout, results = run.settings.check_timeout, {}
                for t in tools:
                    key = keys.get(t.name)
                    # --orchestrate-fresh: measured now, then stored
                    hit = None if key is None or run.settings.fresh else cache.get(key)
                    if hit is not None:
                        results[t.name] = ToolRun("ok", hit[0], hit[1])
                        self.cached[t.name] = hit[2]
                        continue
                    if run.record.exit_reason:  # the run ended meanwhile: start nothing more
                        results[t.name] = ToolRun("error", detail="the run ended first")
                        continue
                    problem = self.snapshot()
                    if problem is not None:
                        results[t.name] = ToolRun("error", detail=f"no base snapshot: {problem}")
                        continue
                    results[t.name] = result = run_tool(t, self.root, self.scratch, "base", timeout)
                    if key is not None and result.status == "ok":
                        cache.put(key, result.findings, result.detail, run.run_id)
            finally:
                cache.close()
            span.set_attribute("cached", sorted(self.cached))
            return results

    def _keys(self, tools: list[Tool]) -> dict[str, str]:
        """Each cacheable tool's key."""
        if not any(t.name in base_cache.CACHED for t in tools):
            return {}
        try:
            tree = git("rev-parse", f"{self.run.base_commit}^{{tree}}", cwd=self.run.worktree)
        except RepositoryError:
            return {}
        env = environment()
        keys = {t.name: base_cache.tool_key(t, tree.strip(), env) for t in tools}
        return {name: key for name, key in keys.items() if key is not None}

    def snapshot(self) -> str | None:
        """Write the base commit's files into ``self.root`` once, a git repository of its
        own (pre-commit and the tree-state guard need one; nothing is committed there);
        None when it is there, else why it could not be made."""
        with self._snapshot_lock:
            if not self._snapshot_made and self._snapshot_error is None:
                try:
                    export(self.run.worktree, self.run.base_commit, self.root)
                    git("init", "-q", cwd=self.root)
                    self._snapshot_made = True
                except (OSError, RepositoryError) as exc:
                    self._snapshot_error = str(exc)
            return self._snapshot_error

    def precommit(self, hooks: precommit.Hooks, files: list[str]) -> ToolRun:
        """pre-commit's findings at the base on ``files`` (base paths), cached per file set."""
        key = frozenset(files)
        if key in self._precommit:
            return self._precommit[key]
        problem = self.snapshot()
        if problem is not None:
            result = ToolRun("error", detail=f"no base snapshot: {problem}")
            self._precommit[key] = result
            return result
        listed = (
            git(
                "ls-tree",
                "-r",
                "--name-only",
                self.run.base_commit,
                "--",
                *files,
                cwd=self.run.worktree,
            )
            if files
            else ""
        )
        present = sorted(set(listed.split()) & key)
        if present:  # as at the base, whatever an earlier hook run did
            export(self.run.worktree, self.run.base_commit, self.root, present)
        label = f"base{len(self._precommit) + 1}"
        outcome = precommit.run(
            self.root, hooks, present, self.scratch, label, timeout=self.run.settings.check_timeout
        )
        result = _judge_outcome(PRE_COMMIT, outcome, None, self.root)
        self._precommit[key] = result
        return result


_BASES: dict[str, BaseSide] = {}
_BASES_LOCK = threading.Lock()


def base_side(run: Run) -> BaseSide:
    """The run's one `BaseSide` (created on first use)."""
    with _BASES_LOCK:
        if run.run_id not in _BASES:
            _BASES[run.run_id] = BaseSide(run)
        return _BASES[run.run_id]


def judge(name: str, base: ToolRun, now: ToolRun, moves: DiffMap, required: bool) -> Check:
    """The check of one tool: red for findings the change added, or for a tool that ran at
    the base and fails to run now; a tool missing on both sides is skipped unless required."""
    if now.status == "missing":
        why = f"{now.detail}; skipped" + (" (required: red)" if required else "")
        return Check(name=name, ok=not required, detail=why, skipped=now.detail)
    if now.status != "ok":
        if base.status == now.status:
            return Check(
                name=name, ok=True, detail=f"{now.detail} (at the base too)", skipped=now.detail
            )
        return Check(name=name, ok=False, detail=f"ran at the base, fails now: {now.detail}")
    base_findings = base.findings if base.status == "ok" else []
    new = new_findings(base_findings, now.findings, moves)
    counts = f"base {len(base_findings)}, attempt {len(now.findings)}"
    if base.status != "ok":
        counts += f"; no base result ({base.detail}): every finding counts"
    if new:
        shown = "; ".join(str(f) for f in new[:3])
        return Check(
            name=name,
            ok=False,
            detail=f"{len(new)} new finding(s) ({counts}): {shown}",
            findings=new[:KEPT_FINDINGS],
            base_findings=len(base_findings) if base.status == "ok" else None,
            attempt_findings=len(now.findings),
        )
    return Check(
        name=name,
        ok=True,
        detail=f"no new findings ({counts})" + (f"; {now.detail}" if now.detail else ""),
        base_findings=len(base_findings) if base.status == "ok" else None,
        attempt_findings=len(now.findings),
    )


def review(run: Run, attempt: Attempt) -> list[Check]:
    """The repository's own checks of ``attempt`` (the worktree as the attempt left it)."""
    settings, root = run.settings, run.worktree
    tools = configured_tools(settings, root)
    required = set(settings.checks_required)
    names = {t.name for t in tools}
    use_precommit = settings.checks_discover and precommit.configured(root)
    checks = [
        Check(name=r, ok=False, detail="required by orchestrate_checks_required, not configured")
        for r in sorted(required - names - ({PRE_COMMIT} if use_precommit else set()))
    ]
    if not tools and not use_precommit:
        return checks
    base = base_side(run)
    base.start()
    moves = diff_map(root, run.base_commit)
    scratch = run.scratch / "checks"
    label = f"attempt{attempt.number}"
    base_runs = base.tools() if tools else {}
    for tool in tools:
        with (
            run.tracer.span(f"check.{_slug(tool.name)}", kind="TOOL"),
            tool_cache.held(settings.cache_dir, tool, root, fresh=settings.fresh) as kept,
        ):
            now = run_tool(tool, root, scratch, label, settings.check_timeout, kept)
        check = judge(tool.name, base_runs[tool.name], now, moves, tool.name in required)
        if tool.name in base.cached:
            reused = f"; base findings reused from run {base.cached[tool.name]}"
            check = check.model_copy(update={"detail": check.detail + reused})
        checks.append(check)
    if use_precommit:
        checks.append(_precommit(run, attempt, base, moves, PRE_COMMIT in required))
    return checks


def _precommit(run: Run, attempt: Attempt, base: BaseSide, moves: DiffMap, required: bool) -> Check:
    hooks = precommit.select(run.worktree)
    if hooks.problem:
        return Check(
            name=PRE_COMMIT,
            ok=not required,
            detail=f"skipped: {hooks.problem}",
            skipped=hooks.problem,
        )
    skipped = f"; skipped hooks: {', '.join(hooks.skipped)}" if hooks.skipped else ""
    if not hooks.kept:
        return Check(
            name=PRE_COMMIT,
            ok=True,
            detail=f"no hook runs offline{skipped}",
            skipped="no hook runs offline",
        )
    changed = git(
        "diff", "--cached", "--name-only", "--no-renames", run.base_commit, cwd=run.worktree
    ).split()
    back = {new: old for old, new in moves.renames.items()}
    with run.tracer.span("check.pre-commit", kind="TOOL", hooks=hooks.kept):
        outcome = precommit.run(
            run.worktree,
            hooks,
            changed,
            run.scratch / "checks",
            f"attempt{attempt.number}",
            timeout=run.settings.check_timeout,
        )
        now = _judge_outcome(PRE_COMMIT, outcome, None, run.worktree)
        before = base.precommit(hooks, sorted({back.get(f, f) for f in changed}))
    check = judge(PRE_COMMIT, before, now, moves, required)
    return check.model_copy(update={"detail": check.detail + skipped})
