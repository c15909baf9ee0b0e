"""The built-in ops: what each kind of plan step does.

An op takes a `StepContext` and its validated args, and returns an `OpOutcome`. Mutate ops
write only inside the worktree (every path is resolved and checked again here, after
validation, so a symlink cannot lead an edit out); scan ops only read.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_orchestrator.errors import EditError
from pytest_orchestrator.phases.execute import formatting, refactor, reshape
from pytest_orchestrator.phases.plan.edits import occurrences
from pytest_orchestrator.phases.plan.prompting import nearest_match
from pytest_orchestrator.plan import (
    ApplyPatchArgs,
    ChangeSignatureArgs,
    ExtractArgs,
    InlineArgs,
    LintArgs,
    MonteCarloArgs,
    MoveSymbolArgs,
    ReadSliceArgs,
    RenameModuleArgs,
    RenameSymbolArgs,
    ReplaceBlockArgs,
    RunTestsArgs,
    SearchArgs,
    repo_relative,
)
from pytest_orchestrator.repo.files import atomic_write

if TYPE_CHECKING:
    from pytest_orchestrator.model import MonteCarloSummary
    from pytest_orchestrator.plan import Plan, Step
    from pytest_orchestrator.run import Run


@dataclass
class AttemptState:
    """What the steps of one attempt produce beyond their `OpOutcome`s; the Executor puts it
    on the `Attempt` it returns."""

    number: int
    montecarlo: MonteCarloSummary | None = None


@dataclass(frozen=True)
class StepContext:
    run: Run
    plan: Plan
    step: Step
    attempt: AttemptState

    @property
    def root(self) -> Path:
        return self.run.worktree


@dataclass
class OpOutcome:
    ok: bool
    summary: str
    changed_files: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    worker: str = "controller"


def inside(root: Path, rel: str) -> Path:
    """``root / rel``, refused when it is or passes through a symbolic link, lies in
    ``.git``, or resolves outside ``root`` (checked on the disk, after plan validation)."""
    try:
        normal = repo_relative(rel)
    except ValueError as exc:
        raise EditError(f"{exc}: refused") from None
    current = root
    for part in normal.split("/"):
        current = current / part
        if current.is_symlink():
            raise EditError(
                f"{rel!r} is or passes through a symbolic link ({current.relative_to(root)}): "
                "edits never follow links, so nothing outside the worktree can be written"
            )
    target = current.resolve()
    home = root.resolve()
    if not target.is_relative_to(home) or target.is_relative_to(home / ".git"):
        raise EditError(f"{rel!r} resolves outside the worktree ({target}): refused")
    return target


# ---------------------------------------------------------------------------- scan ops


def search(ctx: StepContext, args: SearchArgs) -> OpOutcome:
    cmd = [refactor.rg_binary(), "--count-matches", "--", args.pattern, "."]
    if args.glob:
        cmd[1:1] = ["--glob", args.glob]
    proc = subprocess.run(cmd, cwd=ctx.root, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1):
        return OpOutcome(False, f"ripgrep failed: {proc.stderr.strip()}")
    counts = {}
    for line in proc.stdout.splitlines():
        path, _, n = line.rpartition(":")
        counts[path.removeprefix("./")] = int(n)
    total = sum(counts.values())
    return OpOutcome(True, f"{total} matches in {len(counts)} files", data={"matches": counts})


def read_slice(ctx: StepContext, args: ReadSliceArgs) -> OpOutcome:
    path = inside(ctx.root, args.path)
    found = refactor.find_definitions(ctx.root, args.symbol, args.path)
    if not found:
        return OpOutcome(False, f"{args.symbol} not found in {args.path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    text = "\n".join(lines[found[0].line - 1 : found[0].end_line])
    return OpOutcome(True, f"read {args.path}::{args.symbol}", data={"text": text})


def run_tests(ctx: StepContext, args: RunTestsArgs) -> OpOutcome:
    from pytest_orchestrator.phases.execute.testrun import run_tests as run

    settings = ctx.run.settings
    workers = args.workers if args.workers is not None else settings.workers
    extra = {}
    if ctx.run.gauge is not None:
        extra[ctx.run.gauge.ENV_VAR] = str(ctx.run.gauge.shared_path)
    with ctx.run.tracer.span("tests.run", kind="TOOL", attempt=ctx.attempt.number) as span:
        result = run(
            ctx.root,
            user_repo=ctx.run.repo,
            scratch=ctx.run.scratch,
            label=f"attempt{ctx.attempt.number}-{ctx.step.id}",
            workers=workers,
            paths=args.paths,
            timeout=settings.test_timeout,
            extra_env=extra,
            env_allow=settings.env_allow,
            gauge=ctx.run.gauge,
        )
        span.set_attribute("tests.passed", result.passed)
        span.set_attribute("tests.failed", len(result.failed))
    worker = f"xdist x{result.workers}" if result.workers else "subprocess"
    summary = f"{result.passed} passed, {len(result.failed)} failed in {result.seconds:.1f}s"
    if not result.tests and not result.failed:
        return OpOutcome(False, "no tests ran", worker=worker)
    failed = [t.model_dump(mode="json") for t in result.failed[:20]]
    return OpOutcome(result.green, summary, worker=worker, data={"failed": failed})


def montecarlo(ctx: StepContext, args: MonteCarloArgs) -> OpOutcome:
    from pytest_orchestrator.phases.montecarlo import phase as mc

    base = ctx.run.montecarlo  # the base side (phase 3)
    if base is None:
        return OpOutcome(True, "no Monte Carlo baseline: skipped")
    summary = mc.candidate(ctx.run, base, ctx.plan)
    ctx.attempt.montecarlo = summary  # the Executor puts it on the Attempt
    diverged = bool(summary.diverged)
    ok = not (diverged and ctx.plan.behaviour_preserving)
    return OpOutcome(ok, summary.summary_line(), worker="mc children")


def lint(ctx: StepContext, args: LintArgs) -> OpOutcome:
    paths = args.paths or [
        p for p in _changed(ctx.run.worktree, ctx.run.base_commit) if p.endswith(".py")
    ]
    errors = []
    for rel in paths:
        target = inside(ctx.root, rel)
        if not target.exists():
            continue
        try:
            compile(target.read_bytes(), rel, "exec", dont_inherit=True)
        except SyntaxError as exc:
            errors.append(f"{rel}:{exc.lineno}: {exc.msg}")
    if errors:
        return OpOutcome(False, "syntax errors: " + "; ".join(errors), data={"errors": errors})
    return OpOutcome(True, f"{len(paths)} changed Python files compile")


def _changed(root: Path, base: str) -> list[str]:
    from pytest_orchestrator.repo.git import changes_since

    return [path for status, path in changes_since(root, base) if status != "D"]


# ---------------------------------------------------------------------------- mutate ops


def rename_symbol(ctx: StepContext, args: RenameSymbolArgs) -> OpOutcome:
    renamed = refactor.rename(
        ctx.root, args.symbol, args.new_name, args.path, check=lambda rel: inside(ctx.root, rel)
    )
    for rel in renamed.changed:  # and verified after: what was written is still inside
        inside(ctx.root, rel)
    mentions = renamed.mentions
    note = _formatted(ctx, renamed.changed)
    return OpOutcome(
        True,
        f"renamed {args.symbol} -> {args.new_name} in {len(renamed.changed)} files "
        f"({len(mentions.updated)} text mentions updated, {len(mentions.left)} left, "
        f"{len(mentions.literals)} string literals to review{note})",
        changed_files=renamed.changed,
        data={"mentions": mentions.as_data()},
    )


def _formatted(ctx: StepContext, changed: list[str]) -> str:
    """The project's formatter over the refactored files (`formatting.reformat`); a note
    for the step's summary."""
    from pytest_orchestrator.errors import RepositoryError
    from pytest_orchestrator.repo.git import git

    def base(rel: str) -> str | None:
        try:
            return git("show", f"{ctx.run.base_commit}:{rel}", cwd=ctx.root, read_only=True)
        except RepositoryError:
            return None

    for rel in changed:
        inside(ctx.root, rel)
    done = formatting.reformat(ctx.root, changed, base)
    return f"; formatted as the project does: {', '.join(done)}" if done else ""


def _reshaped(ctx: StepContext, summary: str, changed: list[str]) -> OpOutcome:
    for rel in changed:  # what was written is still inside
        inside(ctx.root, rel)
    note = _formatted(ctx, changed)
    return OpOutcome(True, f"{summary} ({len(changed)} files{note})", changed_files=changed)


def move_symbol(ctx: StepContext, args: MoveSymbolArgs) -> OpOutcome:
    def check(rel: str) -> object:
        return inside(ctx.root, rel)

    changed = reshape.move(ctx.root, args.symbol, args.to, args.path, check, reexport=args.reexport)
    return _reshaped(ctx, f"moved {args.symbol} to {args.to}", changed)


def rename_module(ctx: StepContext, args: RenameModuleArgs) -> OpOutcome:
    changed = reshape.rename_module(
        ctx.root, args.path, args.new_name, lambda rel: inside(ctx.root, rel)
    )
    return _reshaped(ctx, f"renamed module {args.path} -> {args.new_name}", changed)


def change_signature(ctx: StepContext, args: ChangeSignatureArgs) -> OpOutcome:
    def check(rel: str) -> object:
        return inside(ctx.root, rel)

    if args.action == "add":
        default = args.default or "None"
        changed = reshape.add_parameter(
            ctx.root, args.symbol, args.param, default, args.path, check
        )
        what = f"added {args.param}={default} to {args.symbol}"
    elif args.action == "rename":
        new = args.new_name or ""
        changed = reshape.rename_parameter(ctx.root, args.symbol, args.param, new, args.path, check)
        what = f"renamed parameter {args.param} -> {new} of {args.symbol}"
    else:
        changed = reshape.remove_parameter(ctx.root, args.symbol, args.param, args.path, check)
        what = f"removed parameter {args.param} of {args.symbol}"
    return _reshaped(ctx, what, changed)


def inline(ctx: StepContext, args: InlineArgs) -> OpOutcome:
    changed = reshape.inline(
        ctx.root, args.symbol, args.path, lambda rel: inside(ctx.root, rel), args.within
    )
    return _reshaped(ctx, f"inlined {args.symbol}", changed)


def extract(ctx: StepContext, args: ExtractArgs) -> OpOutcome:
    if args.symbol is not None and args.block is not None:
        start, end = reshape.block_lines(ctx.root, args.path, args.symbol, args.block)
    else:
        start, end = args.start_line or 0, args.end_line or 0
    inside(ctx.root, args.path)
    changed = reshape.extract(
        ctx.root, args.path, start, end, args.new_name, lambda rel: inside(ctx.root, rel)
    )
    return _reshaped(ctx, f"extracted {args.path}:{start}-{end} into {args.new_name}", changed)


def replace_block(ctx: StepContext, args: ReplaceBlockArgs) -> OpOutcome:
    path = inside(ctx.root, args.path)
    if not path.is_file():
        raise EditError(f"{args.path} does not exist in the repository")
    text = path.read_text(encoding="utf-8")
    count = occurrences(text, args.search)  # overlaps count: str.count would miss them
    if count != 1:
        raise EditError(
            f"the search text occurs {'more than once' if count > 1 else '0 times'} in "
            f"{args.path} (it must occur exactly once)"
            + ("" if count else _nearest(text, args.search))
        )
    atomic_write(path, text.replace(args.search, args.replace, 1))
    return OpOutcome(True, f"edited {args.path}", changed_files=[args.path])


def _nearest(text: str, search: str) -> str:
    """The closest block of the file to ``search`` (`nearest_match`), for the error message
    and the replan; nothing below 30% similar."""
    line, ratio, near = nearest_match(text, search)
    if ratio < 0.3:
        return ""
    return f"; nearest match (line {line}, {ratio:.0%} similar):\n{near.rstrip()}"


def apply_patch(ctx: StepContext, args: ApplyPatchArgs) -> OpOutcome:
    from pytest_orchestrator.repo.git import git

    patch = args.patch if args.patch.endswith("\n") else args.patch + "\n"
    check = subprocess.run(
        ["git", "apply", "--check", "--whitespace=nowarn", "-"],
        cwd=ctx.root,
        input=patch,
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        raise EditError(f"the patch does not apply: {check.stderr.strip()}")
    files = subprocess.run(
        ["git", "apply", "--numstat", "-z", "-"],
        cwd=ctx.root,
        input=patch,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    changed = _numstat_paths(files)
    for rel in changed:
        inside(ctx.root, rel)
    git("apply", "--whitespace=nowarn", "-", cwd=ctx.root, stdin=patch)
    for rel in changed:
        inside(ctx.root, rel)
    return OpOutcome(True, f"patched {len(changed)} files", changed_files=changed)


def _numstat_paths(out: str) -> list[str]:
    """Paths of ``git apply --numstat -z`` (a rename lists its old and new path)."""
    paths: list[str] = []
    fields = out.split("\0")
    i = 0
    while i < len(fields):
        entry = fields[i]
        if not entry.strip():
            i += 1
            continue
        path = entry.split("\t")[-1]
        if path:
            paths.append(path)
            i += 1
        else:  # a rename: "added\tdeleted\t" then the old and the new path
            paths += [p for p in fields[i + 1 : i + 3] if p]
            i += 3
    return paths
