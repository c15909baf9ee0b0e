"""plan.json: the contract between a planner and the executor.

A plan is a DAG of steps. Each step names an op from the registry, the pool it runs in and
the steps it needs. ``scan`` steps only read and may run in parallel; ``mutate`` steps write
to the worktree, one at a time, in DAG order. `validate_plan` rejects a plan before anything
runs, naming the step and the reason, so a rejected plan changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pytest_orchestrator.errors import PlanError, PlanValidationError
from pytest_orchestrator.tokens import MAX_INPUT_TOKENS_PER_STEP, MAX_OUTPUT_TOKENS

Pool = Literal["scan", "mutate"]
JsonScalar = str | int | float | bool

SCHEMA_FILE: Final = Path(__file__).with_name("plan.schema.json")
_STEP_ID: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
MAX_STEPS: Final = 200
"""Most steps one plan may have: far above any real change, far below a runaway planner."""
MAX_PLAN_BYTES: Final = 2_000_000
"""Largest plan.json accepted (its edits are bounded one by one by ``max_edit_bytes``)."""


class Budgets(BaseModel):
    """Hard limits for a run; a planner may lower them, never raise them past the brief."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_tokens_per_step: int = Field(
        MAX_INPUT_TOKENS_PER_STEP, ge=256, le=MAX_INPUT_TOKENS_PER_STEP
    )
    """Most input tokens one model call may carry (local conservative estimate)."""
    max_output_tokens: int = Field(MAX_OUTPUT_TOKENS, ge=64, le=MAX_OUTPUT_TOKENS)
    """``max_tokens`` of any model call."""
    montecarlo_seconds: float = Field(15.0, gt=0, le=15.0)
    """Wall-clock cap of the Monte Carlo phase."""
    max_edit_bytes: int = Field(64_000, ge=1, le=1_000_000)
    """Largest text one edit may write."""


class Step(BaseModel):
    """One node of the plan's DAG."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    """Unique within the plan; shown as the item ``plan.json::<pool>:<id>``."""
    pool: str
    """``scan`` (read-only, parallel) or ``mutate`` (writes, serialised)."""
    op: str
    """An op from the registry (`OPS`), e.g. ``rename_symbol`` or ``run_tests``."""
    args: dict[str, Any] = Field(default_factory=dict)
    """The op's arguments, validated by the op's own model."""
    needs: list[str] = Field(default_factory=list)
    """Ids of the steps that must finish first."""
    why: str = ""
    """One line for the reviewer: what this step is for."""


class Plan(BaseModel):
    """plan.json: the command, its steps, the budgets and an optional parameter grid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    command: str
    """The sentence the user gave."""
    planner: str = "unknown"
    """Which planner wrote this plan."""
    summary: str = ""
    """What the change does, in one paragraph: the PR's description starts with it."""
    steps: list[Step]
    budgets: Budgets = Field(default_factory=Budgets)
    grid: dict[str, list[JsonScalar]] | None = None
    """Parameter grid for Optimise: name -> candidate values (``{{name}}`` in step args)."""
    behaviour_preserving: bool = False
    """A promise that the change keeps behaviour (rename, move, extract): Monte Carlo must agree."""

    def digest(self) -> str:
        return hashlib.sha1(self.model_dump_json().encode()).hexdigest()[:12]

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def order(self) -> list[Step]:
        """The steps in a deterministic topological order (plan order breaks ties)."""
        position = {s.id: i for i, s in enumerate(self.steps)}
        pending = {s.id: set(s.needs) for s in self.steps}
        done: list[Step] = []
        while pending:
            ready = sorted((i for i, n in pending.items() if not n), key=position.__getitem__)
            if not ready:
                raise PlanValidationError([(i, "is part of a cycle in 'needs'") for i in pending])
            for step_id in ready:
                del pending[step_id]
                done.append(self.steps[position[step_id]])
                for needs in pending.values():
                    needs.discard(step_id)
        return done

    def dumps(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"


# ---------------------------------------------------------------------------- ops


def repo_relative(value: str) -> str:
    """A path inside the repository, normalised: relative, POSIX, no ``..`` escape, and no
    component that is ``.git`` (in any case, anywhere: ``calc/../.git`` is ``.git``)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a path must be a non-empty string")
    if "\\" in value or "\x00" in value:
        raise ValueError(f"path {value!r} must use '/' and contain no NUL")
    path = PurePosixPath(value)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", value):
        raise ValueError(f"path {value!r} is absolute; plans may only name paths inside the repo")
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if not parts:
                raise ValueError(f"path {value!r} leaves the repository")
            parts.pop()
        elif part != ".":
            parts.append(part)
    if not parts:
        raise ValueError(f"path {value!r} names the repository itself, not a file in it")
    if any(p.casefold().rstrip(". ") == ".git" for p in [*path.parts, *parts]):
        raise ValueError(f"path {value!r} is inside .git: git's own files are never edited")
    return "/".join(parts)


class OpArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SearchArgs(OpArgs):
    pattern: str = Field(min_length=1)
    """A ripgrep regex."""
    glob: str | None = None


class ReadSliceArgs(OpArgs):
    path: str
    symbol: str

    _path = field_validator("path")(repo_relative)


class RenameSymbolArgs(OpArgs):
    symbol: str = Field(min_length=1)
    """The name to rename; ``Class.method`` for a method."""
    new_name: str
    path: str | None = None
    """The file that defines ``symbol``; found by search when omitted."""

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else repo_relative(value)


def _optional_path(value: str | None) -> str | None:
    return None if value is None else repo_relative(value)


class MoveSymbolArgs(OpArgs):
    symbol: str = Field(min_length=1)
    """A module-level function, class or constant (``name`` or ``module.name``)."""
    to: str
    """The destination module file, e.g. ``calc/rounding.py``; created when missing."""
    path: str | None = None
    """The file that defines ``symbol``; found by search when omitted."""
    reexport: bool = False
    """Leave ``from <to> import <name>`` in the old module, so old imports keep working."""

    _to = field_validator("to")(repo_relative)
    _path = field_validator("path")(_optional_path)


class RenameModuleArgs(OpArgs):
    path: str
    """The module file (``calc.py``) or package folder (``pkg/util``) to rename."""
    new_name: str = Field(min_length=1)
    """The new last segment of its dotted name (no ``.py``)."""

    _path = field_validator("path")(repo_relative)


class ChangeSignatureArgs(OpArgs):
    symbol: str = Field(min_length=1)
    """The function or method (``Class.method``) whose signature changes."""
    action: Literal["add", "rename", "remove"]
    """``add`` a parameter with a default, ``rename`` one (keyword call sites follow),
    ``remove`` one the body never uses (call sites drop the argument)."""
    param: str = Field(min_length=1)
    new_name: str | None = None
    """For ``rename``: the parameter's new name."""
    default: str | None = None
    """For ``add``: the default, as Python source (``2``, ``None``, ``'utf-8'``)."""
    path: str | None = None

    _path = field_validator("path")(_optional_path)

    @model_validator(mode="after")
    def _complete(self) -> ChangeSignatureArgs:
        if self.action == "rename" and not self.new_name:
            raise ValueError("action 'rename' needs new_name")
        if self.action == "add" and self.default is None:
            raise ValueError("action 'add' needs a default (call sites are not changed)")
        return self


class InlineArgs(OpArgs):
    symbol: str = Field(min_length=1)
    """A function (calls replaced by its body) or a variable (uses replaced by its value)."""
    within: str | None = None
    """For a local variable: the function (``name`` or ``Class.method``) it lives in."""
    path: str | None = None

    _path = field_validator("path")(_optional_path)


class ExtractArgs(OpArgs):
    path: str
    new_name: str = Field(min_length=1)
    """The new function's (or method's) name."""
    start_line: int | None = Field(None, ge=1)
    end_line: int | None = Field(None, ge=1)
    """The lines to extract, 1-based and inclusive; or name a block instead:"""
    symbol: str | None = None
    block: str | None = None
    """The statements after the comment ``# <block>`` inside ``symbol``, up to a blank line."""

    _path = field_validator("path")(repo_relative)

    @model_validator(mode="after")
    def _one_way(self) -> ExtractArgs:
        lines = self.start_line is not None and self.end_line is not None
        named = self.symbol is not None and self.block is not None
        if lines == named:
            raise ValueError("give either start_line and end_line, or symbol and block")
        if lines and (self.end_line or 0) < (self.start_line or 0):
            raise ValueError("end_line is before start_line")
        return self


class ReplaceBlockArgs(OpArgs):
    path: str
    search: str = Field(min_length=1)
    """Exact current text (must occur once)."""
    replace: str

    _path = field_validator("path")(repo_relative)


class ApplyPatchArgs(OpArgs):
    patch: str = Field(min_length=1)
    """A unified diff (``git apply`` format) relative to the repository root."""

    @field_validator("patch")
    @classmethod
    def _paths_inside(cls, value: str) -> str:
        for line in value.splitlines():
            if line.startswith(("--- ", "+++ ")):
                target = line[4:].split("\t")[0].strip()
                if target != "/dev/null":
                    repo_relative(re.sub(r"^[ab]/", "", target))
            elif line.startswith(("rename from ", "rename to ", "copy from ", "copy to ")):
                repo_relative(line.split(" ", 2)[2].strip())
            elif line.startswith("diff --git "):
                for target in line[len("diff --git ") :].split(" "):
                    repo_relative(re.sub(r"^[ab]/", "", target))
            elif re.match(r"^(?:new file |new |old |deleted file )?mode 1[26]0000", line):
                raise ValueError("patches may not create symbolic links or submodules")
        return value


class RunTestsArgs(OpArgs):
    paths: list[str] = Field(default_factory=list)
    """Repository paths or node ids (``tests/test_x.py::test_y``); never options. Empty =
    the whole suite as the repository configures it. The gate runs regardless."""
    workers: int | Literal["auto"] | None = Field(None, ge=0, le=64)
    """xdist workers for this run (None = the run's setting)."""

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        checked = []
        for entry in value:
            if entry.lstrip().startswith("-"):
                raise ValueError(
                    f"{entry!r} is an option, not a path: run_tests takes repository paths "
                    "or node ids only (the orchestrator decides how tests run)"
                )
            path, sep, rest = entry.partition("::")
            checked.append(repo_relative(path) + sep + rest)
        return checked


class MonteCarloArgs(OpArgs):
    seconds: float | None = Field(None, gt=0, le=15.0)


class LintArgs(OpArgs):
    paths: list[str] = Field(default_factory=list)

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        return [repo_relative(p) for p in value]


@dataclass(frozen=True)
class OpSpec:
    """An op: its pool, its argument model, and where its implementation lives."""

    name: str
    pool: Pool
    args: type[OpArgs]
    impl: str
    """``module:function`` taking ``(StepContext, args)``; imported only when the op runs."""
    doc: str = ""
    edits: Callable[[OpArgs], Iterable[str]] = field(default=lambda _args: ())
    """The texts an op writes, checked against ``Budgets.max_edit_bytes``."""


def _builtin_ops() -> dict[str, OpSpec]:
    ops = "pytest_orchestrator.phases.execute.ops"
    specs = [
        OpSpec("search", "scan", SearchArgs, f"{ops}:search", "ripgrep the worktree"),
        OpSpec("read_slice", "scan", ReadSliceArgs, f"{ops}:read_slice", "read one slice"),
        OpSpec("run_tests", "scan", RunTestsArgs, f"{ops}:run_tests", "the target's suite"),
        OpSpec("montecarlo", "scan", MonteCarloArgs, f"{ops}:montecarlo", "base vs candidate"),
        OpSpec("lint", "scan", LintArgs, f"{ops}:lint", "syntax check of changed files"),
        OpSpec(
            "rename_symbol",
            "mutate",
            RenameSymbolArgs,
            f"{ops}:rename_symbol",
            "rename a function, class, method or constant everywhere (rope)",
        ),
        OpSpec(
            "move_symbol",
            "mutate",
            MoveSymbolArgs,
            f"{ops}:move_symbol",
            "to another module",
        ),
        OpSpec(
            "rename_module",
            "mutate",
            RenameModuleArgs,
            f"{ops}:rename_module",
            "imports follow",
        ),
        OpSpec(
            "change_signature",
            "mutate",
            ChangeSignatureArgs,
            f"{ops}:change_signature",
            "add/rename/remove",
        ),
        OpSpec(
            "inline",
            "mutate",
            InlineArgs,
            f"{ops}:inline",
            "into its uses",
        ),
        OpSpec(
            "extract",
            "mutate",
            ExtractArgs,
            f"{ops}:extract",
            "into a function",
        ),
        OpSpec(
            "replace_block",
            "mutate",
            ReplaceBlockArgs,
            f"{ops}:replace_block",
            "search/replace edit of exact current text",
            edits=lambda a: [a.replace] if isinstance(a, ReplaceBlockArgs) else [],
        ),
        OpSpec(
            "apply_patch",
            "mutate",
            ApplyPatchArgs,
            f"{ops}:apply_patch",
            "apply a unified diff",
            edits=lambda a: [a.patch] if isinstance(a, ApplyPatchArgs) else [],
        ),
    ]
    return {s.name: s for s in specs}


OPS: Final[dict[str, OpSpec]] = _builtin_ops()
"""The op registry. Plugins add ops with the ``pytest_orchestrator_ops`` hook."""


# ---------------------------------------------------------------------------- validation


def validate_plan(plan: Plan, ops: Mapping[str, OpSpec] | None = None) -> dict[str, OpArgs]:
    """Check everything that can be checked before a step runs; return each step's args.

    Raises `PlanValidationError` listing every problem found (not only the first).
    """
    ops = OPS if ops is None else ops
    problems: list[tuple[str, str]] = []
    parsed: dict[str, OpArgs] = {}
    seen: set[str] = set()
    if not plan.steps:
        problems.append(("<plan>", "has no steps"))
    if len(plan.steps) > MAX_STEPS:
        raise PlanValidationError(
            [("<plan>", f"has {len(plan.steps)} steps; at most {MAX_STEPS} are accepted")]
        )
    size = len(plan.model_dump_json())
    if size > MAX_PLAN_BYTES:
        raise PlanValidationError(
            [("<plan>", f"is {size} bytes; at most {MAX_PLAN_BYTES} are accepted")]
        )
    for step in plan.steps:
        if not _STEP_ID.match(step.id):
            problems.append((step.id, "id must match [A-Za-z][A-Za-z0-9_.-]{0,63}"))
        if step.id in seen:
            problems.append((step.id, "duplicate step id"))
        seen.add(step.id)
        if step.pool not in ("scan", "mutate"):
            problems.append((step.id, f"unknown pool {step.pool!r} (use 'scan' or 'mutate')"))
        spec = ops.get(step.op)
        if spec is None:
            known = ", ".join(sorted(ops))
            problems.append((step.id, f"unknown op {step.op!r} (known: {known})"))
            continue
        if spec.pool == "mutate" and step.pool == "scan":
            problems.append((step.id, f"op {step.op!r} writes files: it belongs in pool 'mutate'"))
        try:
            args = spec.args.model_validate(_fill_grid_defaults(step.args, plan.grid))
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "args"
                problems.append((step.id, f"args.{where}: {err['msg']}"))
            continue
        for text in spec.edits(args):
            size = len(text.encode())
            if size > plan.budgets.max_edit_bytes:
                limit = plan.budgets.max_edit_bytes
                problems.append((step.id, f"edit of {size} bytes exceeds max_edit_bytes={limit}"))
        parsed[step.id] = args
    ids = {s.id for s in plan.steps}
    for step in plan.steps:
        for need in step.needs:
            if need not in ids:
                problems.append((step.id, f"needs unknown step {need!r}"))
            elif need == step.id:
                problems.append((step.id, "needs itself"))
    if not problems:
        try:
            plan.order()
        except PlanValidationError as exc:
            problems += exc.problems
    if problems:
        raise PlanValidationError(problems)
    return parsed


def _fill_grid_defaults(args: dict[str, Any], grid: Mapping[str, list[JsonScalar]] | None) -> Any:
    """Validate grid-parameterised args with the grid's first value in place of ``{{name}}``."""
    if not grid:
        return args
    text = json.dumps(args)
    for name, values in grid.items():
        if values:
            text = text.replace(f"{{{{{name}}}}}", str(values[0]))
    return json.loads(text)


def load_plan(path: Path, ops: Mapping[str, OpSpec] | None = None) -> Plan:
    """Read and validate a plan.json; every failure is a `PlanError` that says what to fix."""
    try:
        if path.stat().st_size > MAX_PLAN_BYTES:
            raise PlanError(f"{path} is larger than {MAX_PLAN_BYTES} bytes: not a plan to run")
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"cannot read plan {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise PlanError(
            f"{path} is not UTF-8 text (byte {exc.start}): plan.json must be UTF-8 JSON"
        ) from None
    try:
        plan = Plan.model_validate_json(raw)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        ]
        raise PlanError(f"{path} is not a valid plan.json:\n" + "\n".join(lines)) from None
    validate_plan(plan, ops)
    return plan


def plan_json_schema() -> dict[str, Any]:
    """The published JSON Schema of plan.json (also shipped as ``plan.schema.json``)."""
    schema = Plan.model_json_schema()
    schema["$id"] = "https://pytest-orchestrator.invalid/plan.schema.json"
    schema["title"] = "pytest-orchestrator plan.json"
    schema.setdefault("$defs", {})["ops"] = {
        name: {"pool": spec.pool, "doc": spec.doc, "args": spec.args.model_json_schema()}
        for name, spec in sorted(OPS.items())
    }
    return schema
