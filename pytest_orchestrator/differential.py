"""Differential sampling: the same inputs through a function on base and on candidate.

Parent side, `Sampler`: picks the targets (the functions Logic kept, and public functions
calling them), skips those with side effects (`pytest_orchestrator.sideeffects`), shards the
rest over children on the scan pool, and turns their outcome streams into a
`DifferentialReport`. Child side, `child_main`: imports the targets from its own tree, draws
inputs on the base side (`pytest_orchestrator.inputs`, captured ones first) and pickles them
for the candidate side, calls each function on a fresh unpickled copy of each input inside
the sandbox, and streams one JSON line per sample: return value, raised exception type and
arguments mutated, encoded by `pytest_orchestrator.outcomes`.

Files in the Monte Carlo work directory::

    inputs/<target>.pkl        the base side's inputs, a pickled list of pickled calls
    base-<round>-<shard>.jsonl outcome streams (and candidate-...)
    base.differential.json     the base side's report, read by the candidate side

The stream survives a kill: a target that began and never ended is the one that hung past
the cap, crashed the interpreter, or was stopped by the memory guard; the next round resumes
with the targets not yet done.
"""

from __future__ import annotations

import ast
import asyncio
import collections.abc as cabc
import contextlib
import inspect
import io
import itertools
import json
import pickle
import re
import signal
import sys
import time
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, Field

from pytest_orchestrator.children import ChildResult, ChildSpec
from pytest_orchestrator.inputs import Unsupported
from pytest_orchestrator.model import MetricDelta, SimulationResult

if TYPE_CHECKING:
    from pytest_orchestrator.plan import Plan
    from pytest_orchestrator.run import Run
    from pytest_orchestrator.simulation import Side

MAX_SAMPLES: Final = 2000
"""Samples per function at most (fewer when the time share runs out)."""
MAX_TARGETS: Final = 40
SAMPLE_SECONDS: Final = 1.0
"""A single call taking longer than this is a hang: the function is skipped."""
DETERMINISM_CHECKS: Final = 3
"""The first samples run twice on the base side; different answers mean nondeterminism."""
GENERATOR_ITEMS: Final = 1000
OUTPUT_LIMIT: Final = 1 << 20
"""Bytes of stdout a sampled call may print (the rest is dropped, not compared)."""
MAX_ROUNDS: Final = 4
PREFIX: Final = "differential:"


class Counterexample(BaseModel):
    """The smallest divergent input found, and what each side did with it."""

    model_config = ConfigDict(extra="forbid")

    sample: int
    input: str
    base: str
    candidate: str
    where: str
    shrunk_from: str = ""
    """The input sampling found, when shrinking simplified it (`pytest_orchestrator.shrink`)."""


class FunctionReport(BaseModel):
    """One function's evidence on one side (and the comparison, on the candidate side)."""

    model_config = ConfigDict(extra="forbid")

    target: str
    """``module.qualname`` on the base side."""
    candidate_name: str = ""
    """Where it was found on the candidate side, when renamed or moved."""
    samples: int = 0
    compared: int = 0
    divergent: int = 0
    counterexample: Counterexample | None = None
    skipped: str = ""
    """Why the function was not (fully) sampled; empty when it was."""
    sources: dict[str, int] = Field(default_factory=dict)
    """Inputs by origin: captured, docstring, generated."""
    seconds: float = 0.0
    raised: int = 0
    """Samples whose outcome was an exception."""


class DifferentialReport(BaseModel):
    """``mc_differential.json``: what was sampled, what diverged, what was skipped and why."""

    model_config = ConfigDict(extra="forbid")

    side: str
    seed: int
    functions: list[FunctionReport] = Field(default_factory=list)
    samples: int = 0
    child_seconds: float = 0.0
    """Wall time of the sampling children, summed (interpreter start and imports included)."""
    sampling_seconds: float = 0.0
    """Time spent inside the functions' sampling loops, summed over children."""
    samples_per_second_per_core: float = 0.0
    """``samples / sampling_seconds``: throughput of one core once the child is up."""
    peak_mem_ratio: float | None = None
    rounds: int = 0
    errors: list[str] = Field(default_factory=list)

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")

    def results(self) -> list[SimulationResult]:
        """One pseudo-simulation per sampled function, so the summary counts them."""
        return [
            SimulationResult(
                name=PREFIX + f.target,
                samples=f.samples,
                metrics={"raised": float(f.raised), "divergent": float(f.divergent)},
            )
            for f in self.functions
            if f.samples
        ]

    def deltas(self) -> list[MetricDelta]:
        return [
            MetricDelta(
                simulation=PREFIX + f.target,
                metric="divergent_samples",
                base=0.0,
                candidate=float(f.divergent),
                within_tolerance=f.divergent == 0,
            )
            for f in self.functions
            if f.compared or f.divergent
        ]

    def notes(self) -> list[str]:
        out: list[str] = []
        for f in self.functions:
            c = f.counterexample
            if c is not None:
                found = f"shrunk from sample {c.sample}" if c.shrunk_from else f"sample {c.sample}"
                out.append(
                    f"counterexample {f.target}{c.input} (seed {self.seed}, {found}):"
                    f" base {c.base}, candidate {c.candidate}"
                )
        for f in self.functions:
            if f.skipped:
                out.append(f"skipped {f.target}: {f.skipped}")
        if self.samples:
            rate = f"{self.samples_per_second_per_core:,.0f} samples/s/core"
            peak = f", peak mem_ratio {self.peak_mem_ratio:.2f}" if self.peak_mem_ratio else ""
            out.append(f"differential {self.side}: {self.samples} samples, {rate}{peak}")
        out += [f"differential: {e}" for e in self.errors]
        return out


@dataclass(frozen=True)
class Target:
    module: str
    qualname: str

    @property
    def id(self) -> str:
        return f"{self.module}.{self.qualname}"

    @property
    def file_id(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]", "_", self.id)


# ---------------------------------------------------------------------------- parent


def module_name(path: str) -> str | None:
    """``src/pkg/mod.py`` -> ``pkg.mod``; None for tests, scripts and non-Python files."""
    parts = list(Path(path).with_suffix("").parts)
    if not path.endswith(".py") or not parts:
        return None
    if parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts or any(p in ("tests", "test", "testing") for p in parts[:1]):
        return None
    if parts[-1].startswith(("test_", "conftest")) or parts[-1].endswith("_test"):
        return None
    if not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts)


def targets_from_run(run: Run) -> tuple[list[Target], list[FunctionReport]]:
    """Logic's kept functions and the public functions calling them; methods are skipped."""
    targets: list[Target] = []
    skipped: list[FunctionReport] = []
    if run.logic is None:
        return targets, skipped
    by_symbol: dict[str, Target] = {}
    for ranked in run.logic.kept:
        s = ranked.slice
        module = module_name(s.path)
        if module is None or s.kind not in ("function", "method") or not _dotted(s.symbol):
            continue
        target = Target(module, s.symbol)
        if s.kind == "method":
            skipped.append(FunctionReport(target=target.id, skipped="method: needs an instance"))
            continue
        targets.append(target)
        by_symbol[s.symbol] = target
    for caller, callee in run.logic.edges:
        if _leaf(callee) in {_leaf(k) for k in by_symbol}:
            resolved = _resolve_caller(run, caller)
            if resolved is not None and not _leaf(resolved.qualname).startswith("_"):
                targets.append(resolved)
    targets += public_callers(run.worktree, {_leaf(k) for k in by_symbol})
    unique = [t for t in dict.fromkeys(targets) if _dotted(t.qualname)]
    return unique[:MAX_TARGETS], skipped


def _dotted(symbol: str) -> bool:
    return bool(symbol) and all(part.isidentifier() for part in symbol.split("."))


def public_callers(tree: Path, names: set[str], max_files: int = 300) -> list[Target]:
    """Public top-level functions of the tree's modules that call one of ``names``.

    Logic's call graph covers its candidates only; a public entry point one call above a
    kept function is where a user sees a behaviour change, so it is sampled too.
    """
    if not names:
        return []
    found: list[Target] = []
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in sorted(names)) + r")\s*\(")
    files = [p for p in sorted(tree.rglob("*.py")) if ".orchestrate" not in p.parts][:max_files]
    for path in files:
        module = module_name(path.relative_to(tree).as_posix())
        if module is None:
            continue
        try:
            text = path.read_text(encoding="utf-8")
            if not pattern.search(text):
                continue
            parsed = ast.parse(text)
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in parsed.body:
            if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
                continue
            if node.name in names:
                continue
            called = {
                n.func.id if isinstance(n.func, ast.Name) else n.func.attr
                for n in ast.walk(node)
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Name | ast.Attribute)
            }
            if called & names:
                found.append(Target(module, node.name))
    return found


def _leaf(name: str) -> str:
    return name.split("::")[-1].split(":")[-1].rpartition(".")[2]


def _resolve_caller(run: Run, caller: str) -> Target | None:
    if "::" in caller:
        path, symbol = caller.split("::", 1)
        module = module_name(path)
        return Target(module, symbol) if module and "." not in symbol else None
    if run.map is None:
        return None
    for ranked in run.map.slices:
        s = ranked.slice
        if s.kind == "function" and (s.symbol == caller or f"{s.path}:{s.symbol}" == caller):
            module = module_name(s.path)
            return Target(module, s.symbol) if module else None
    return None


def renames_from(plan: Plan | None) -> dict[str, str]:
    """Old name -> new name for every ``rename_symbol`` step (last segment of dotted names)."""
    out: dict[str, str] = {}
    for step in plan.steps if plan is not None else []:
        if step.op == "rename_symbol":
            old = str(step.args.get("symbol", "")).rpartition(".")[2]
            new = str(step.args.get("new_name", "")).rpartition(".")[2]
            if old and new:
                out[old] = new
    return out


def definers(tree: Path, names: set[str]) -> dict[str, list[str]]:
    """Modules of ``tree`` that define each name at top level (to follow moves)."""
    found: dict[str, list[str]] = {n: [] for n in names}
    if not names:
        return found
    pattern = re.compile(
        rb"^(?:async\s+def|def|class)\s+("
        + b"|".join(re.escape(n.encode()) for n in names)
        + rb")\b",
        re.M,
    )
    for path in sorted(tree.rglob("*.py")):
        rel = path.relative_to(tree).as_posix()
        if any(part.startswith(".") for part in Path(rel).parts):
            continue
        module = module_name(rel)
        if module is None:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for m in pattern.finditer(data):
            found[m.group(1).decode()].append(module)
    return found


@dataclass
class Sampler:
    """One side's differential sampling, for the Monte Carlo phase."""

    side: Side
    seed: int
    work: Path
    tree: Path
    targets: list[Target]
    reports: dict[str, FunctionReport]
    renames: dict[str, str] = field(default_factory=dict)
    moves: dict[str, list[str]] = field(default_factory=dict)
    base_counts: dict[str, int] = field(default_factory=dict)
    base_sources: dict[str, dict[str, int]] = field(default_factory=dict)
    captured_dir: Path | None = None
    parallel: int = 2
    rounds: int = 0
    child_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    _streams: list[Path] = field(default_factory=list)

    @classmethod
    def for_run(cls, run: Run, side: Side, seed: int, plan: Plan | None, work: Path) -> Sampler:
        from pytest_orchestrator.sideeffects import ModuleIndex, analyse

        if side == "base":
            targets, skipped = targets_from_run(run)
            reports = {r.target: r for r in skipped}
            index = ModuleIndex(run.worktree)
            keep: list[Target] = []
            for t in targets:
                finding = analyse(index, t.module, t.qualname)
                if finding is not None:
                    reports[t.id] = FunctionReport(target=t.id, skipped=f"side effect: {finding}")
                else:
                    keep.append(t)
            sampler = cls(side, seed, work, run.worktree, keep, reports)
        else:
            sampler = cls.for_candidate(run.worktree, seed, work, plan)
        sampler.parallel = _cores()
        for stale in work.glob(f"{side}-*.jsonl"):
            stale.unlink()
        return sampler

    @classmethod
    def for_candidate(cls, tree: Path, seed: int, work: Path, plan: Plan | None) -> Sampler:
        base = read_report(work / "base.differential.json")
        targets: list[Target] = []
        reports: dict[str, FunctionReport] = {}
        counts: dict[str, int] = {}
        sources: dict[str, dict[str, int]] = {}
        for f in base.functions if base is not None else []:
            sources[f.target] = f.sources
            if f.samples and not f.skipped:
                module, _, qualname = _split_target(f.target)
                targets.append(Target(module, qualname))
                counts[f.target] = f.samples
            else:
                reports[f.target] = FunctionReport(
                    target=f.target, skipped=f.skipped or "no samples"
                )
        renames = renames_from(plan)
        names = {renames.get(t.qualname, t.qualname) for t in targets}
        return cls(
            "candidate", seed, work, tree, targets, reports, renames=renames,
            moves=definers(tree, names), base_counts=counts, base_sources=sources,
        )  # fmt: skip

    # -- children

    def child_specs(self, env: dict[str, str], until: float) -> list[ChildSpec]:
        """The children of the next round: the targets not yet done, in shards.

        ``until`` is the `time.monotonic` instant (system-wide on Linux) by which the base
        side stops drawing samples; the candidate side replays the base's sample counts.
        """
        todo = [t for t in self.targets if t.id not in self.reports]
        if not todo:
            return []
        self.rounds += 1
        shards = [todo[i :: self.parallel] for i in range(self.parallel)]
        specs = []
        for number, shard in enumerate(s for s in shards if s):
            out = self.work / f"{self.side}-{self.rounds}-{number}.jsonl"
            spec_path = self.work / f"{self.side}-{self.rounds}-{number}.spec.json"
            spec = {
                "targets": [
                    {
                        "id": t.id,
                        "file_id": t.file_id,
                        "module": t.module,
                        "qualname": t.qualname,
                        "new_name": self.renames.get(t.qualname, t.qualname),
                        "moved_to": self.moves.get(self.renames.get(t.qualname, t.qualname), []),
                        "samples": self.base_counts.get(t.id, MAX_SAMPLES),
                    }
                    for t in shard
                ],
                "inputs": str(self.work / "inputs"),
                "captured": str(self.captured_dir or self.work / "captured"),
                "renames": self.renames,
            }
            spec_path.write_text(json.dumps(spec), encoding="utf-8")
            self._streams.append(out)
            args = ["sample", "--side", self.side, "--seed", str(self.seed)]
            args += ["--spec", str(spec_path), "--out", str(out), "--until", f"{until:.3f}"]
            specs.append(
                ChildSpec(f"mc-{self.side}-sample-{self.rounds}.{number}",
                          "pytest_orchestrator.simulation", args, self.tree, env)
            )  # fmt: skip
        return specs

    def capture_spec(self, env: dict[str, str], cache: Path, commit: str) -> ChildSpec | None:
        """The base side's capture run: the test files mentioning a target, with the capture
        plugin. Captures are kept per base commit beside the slice cache, so a second run on
        the same commit reuses them; None when there is nothing (new) to capture."""
        from pytest_orchestrator.capture import ENV_VAR, affected_test_files

        if self.side != "base" or not self.targets:
            return None
        self.captured_dir = cache / "captured" / re.sub(r"[^0-9A-Za-z]", "_", commit)[:40]
        if self.captured_dir.is_dir() and any(self.captured_dir.iterdir()):
            self.errors.append(f"captured arguments reused from {self.captured_dir}")
            return None
        files = affected_test_files(
            self.tree, {t.qualname.rpartition(".")[2] for t in self.targets}
        )
        if not files:
            return None
        spec_path = self.work / "capture.spec.json"
        spec = {
            "out": str(self.captured_dir),
            "targets": [
                {"id": t.id, "module": t.module, "qualname": t.qualname, "file_id": t.file_id}
                for t in self.targets
            ],
        }
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        args = ["-p", "pytest_orchestrator.capture", "-q", "-p", "no:cacheprovider",
                "--continue-on-collection-errors", *files]  # fmt: skip
        return ChildSpec(
            "mc-capture",
            "pytest",
            args,
            self.tree,
            {**env, ENV_VAR: str(spec_path)},
        )

    def capture_note(self, child: ChildResult) -> str:
        counts = {}
        for path in sorted((self.captured_dir or self.work).glob("*.pkl")):
            counts[path.stem] = len(_captured(path.parent, path.stem))
        total = sum(counts.values())
        how = "cut at its share of the cap" if child.timed_out else f"tests {child.describe()}"
        return f"captured {total} real call(s) of {len(counts)} function(s) from the tests ({how})"

    def absorb(self, children: Sequence[ChildResult]) -> None:
        """Read this round's streams; a target begun and not ended is blamed on the child."""
        for child in children:
            self.child_seconds += child.seconds
        streams = self._streams[-len(children) :] if children else []
        for stream, child in zip(streams, children, strict=True):
            for target_id, state in _read_stream(stream).items():
                if target_id in self.reports:
                    continue
                report = state.report()
                if not state.ended:
                    why = _blame(child)
                    report.skipped = f"{why} during sample {state.next_sample}"
                    if self.side == "candidate" and not child.timed_out:
                        # the base side survived this input: dying on it is a divergence
                        report.divergent += 1
                self.reports[target_id] = report
            if not child.ok and not child.timed_out and not child.crashed:
                self.errors.append(f"{child.label} {child.describe()}")

    def collect(self, peak_ratio: float | None) -> DifferentialReport:
        """The side's report; on the candidate side, compared sample by sample with base."""
        functions = [
            self.reports.get(t.id)
            or FunctionReport(target=t.id, skipped="not reached before the cap")
            for t in self.targets
        ]
        functions += [r for k, r in self.reports.items() if k not in {t.id for t in self.targets}]
        if self.side == "candidate":
            functions = [self._compare(f) for f in functions]
        total = sum(f.samples for f in functions)
        busy = sum(f.seconds for f in functions)
        report = DifferentialReport(
            side=self.side,
            seed=self.seed,
            functions=functions,
            samples=total,
            child_seconds=round(self.child_seconds, 3),
            sampling_seconds=round(busy, 3),
            samples_per_second_per_core=round(total / busy, 1) if busy else 0.0,
            peak_mem_ratio=peak_ratio,
            rounds=self.rounds,
            errors=self.errors,
        )
        if self.side == "base":
            report.write(self.work / "base.differential.json")
        return report

    def _compare(self, f: FunctionReport) -> FunctionReport:
        from pytest_orchestrator.outcomes import agree

        f.sources = f.sources or self.base_sources.get(f.target, {})
        if f.skipped.startswith(_GONE) and self.base_counts.get(f.target):
            # the base answered these inputs; the candidate cannot even be called: that is a
            # behaviour change (an import that now fails, a rename the plan does not declare)
            f.divergent = 1
            f.counterexample = Counterexample(
                sample=0, input="(import)", base="callable", candidate=f.skipped, where="import"
            )
            return f
        if f.skipped and not f.divergent:
            return f
        base = _outcomes(self.work, "base", f.target)
        cand = _outcomes(self.work, "candidate", f.target)
        rename = _renamer(self.renames)
        divergent: list[tuple[int, str]] = []
        compared = 0
        for i, record in sorted(cand.items()):
            b = base.get(i)
            if b is None:
                continue
            compared += 1
            where = agree(b["o"], record["o"], rename=rename)
            if where is not None:
                divergent.append((i, where))
        crashed_at = None
        if f.divergent and f.skipped:  # the candidate died on a sample the base survived
            crashed_at = max(cand, default=-1) + 1
            if crashed_at in base:
                divergent.append((crashed_at, f"candidate {f.skipped}"))
        f.compared = compared
        f.divergent = len(divergent)
        if divergent:
            i, where = min(divergent, key=lambda d: (len(base[d[0]].get("in", "")), d[0]))
            f.counterexample = Counterexample(
                sample=i,
                input=base[i].get("in", "?"),
                base=_describe(base[i]["o"]),
                candidate=_describe(cand[i]["o"]) if i in cand else f.skipped,
                where=where,
            )
        return f


_GONE: Final = ("not found on the candidate side", "base inputs unreadable")


def _blame(child: ChildResult) -> str:
    if child.timed_out:
        return "hung until the cap"
    if child.returncode in (-signal.SIGTERM, -signal.SIGKILL):
        return "stopped by the memory guard"
    if child.crashed:
        return f"crashed the interpreter ({child.describe()})"
    return f"child ended early ({child.describe()})"


def _renamer(renames: dict[str, str]) -> Callable[[str], str]:
    def rename(name: str) -> str:
        head, _, leaf = name.rpartition(".")
        return f"{head}.{renames.get(leaf, leaf)}" if head else renames.get(leaf, leaf)

    return rename


def _describe(outcome: dict[str, Any]) -> str:
    text = json.dumps(outcome, default=str)
    return text if len(text) <= 300 else text[:297] + "..."


def _split_target(target: str) -> tuple[str, str, str]:
    module, _, qualname = target.rpartition(".")
    return module, ".", qualname


def _cores() -> int:
    import os

    return max(1, min(4, os.cpu_count() or 1))


def read_report(path: Path) -> DifferentialReport | None:
    try:
        return DifferentialReport.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass
class _StreamState:
    target: str
    ended: bool = False
    next_sample: int = 0
    end: dict[str, Any] = field(default_factory=dict)

    def report(self) -> FunctionReport:
        e = self.end
        return FunctionReport(
            target=self.target,
            candidate_name=e.get("found", ""),
            samples=int(e.get("n", self.next_sample)),
            skipped=e.get("skip", ""),
            sources=e.get("sources", {}),
            seconds=float(e.get("seconds", 0.0)),
            raised=int(e.get("raised", 0)),
        )


def _read_stream(path: Path) -> dict[str, _StreamState]:
    states: dict[str, _StreamState] = {}
    for record in _lines(path):
        target = record.get("t")
        if not isinstance(target, str):
            continue
        state = states.setdefault(target, _StreamState(target))
        if "i" in record:
            state.next_sample = int(record["i"]) + 1
        elif record.get("end"):
            state.ended = True
            state.end = record
    return states


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if isinstance(record, dict):
            yield record


def _outcomes(work: Path, side: str, target: str) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for stream in sorted(work.glob(f"{side}-*.jsonl")):
        out.update(_outcomes_in(stream, target))
    return out


def _outcomes_in(stream: Path, target: str) -> dict[int, dict[str, Any]]:
    return {
        int(record["i"]): record
        for record in _lines(stream)
        if record.get("t") == target and "i" in record
    }


# ---------------------------------------------------------------------------- child


class _SampleTimeout(BaseException):
    """Raised by SIGALRM inside a sampled call that runs over `SAMPLE_SECONDS`."""


class _Sink(io.TextIOBase):
    """Stands in for stdout/stdin during a call: drops output past a limit, reads as empty."""

    def __init__(self) -> None:
        self.written = 0

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.written += len(s)
        return len(s)

    def read(self, size: int | None = -1) -> str:
        return ""

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        return ""


class _Renaming(pickle.Unpickler):
    """Unpickles base-side inputs on the candidate side, following renames and moves."""

    def __init__(self, data: bytes, renames: dict[str, str], moved: dict[str, list[str]]) -> None:
        super().__init__(io.BytesIO(data))
        self.renames = renames
        self.moved = moved

    def find_class(self, module: str, name: str) -> Any:
        new = self.renames.get(name, name)
        try:
            return super().find_class(module, new)
        except (AttributeError, ModuleNotFoundError):
            for other in self.moved.get(new, []):
                with contextlib.suppress(AttributeError, ModuleNotFoundError):
                    return super().find_class(other, new)
            raise


@dataclass
class _Child:
    side: str
    seed: int
    out: io.TextIOWrapper
    deadline: float
    renames: dict[str, str]
    inputs_dir: Path
    captured_dir: Path
    sandbox: Any = None
    loop: asyncio.AbstractEventLoop | None = None
    strategies: dict[Any, Callable[[Any], Any]] = field(default_factory=dict)

    def emit(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record, allow_nan=True, default=str) + "\n")
        self.out.flush()

    def run_target(self, t: dict[str, Any], budget: float) -> None:
        start = time.monotonic()
        tid = t["id"]
        self.emit({"t": tid, "begin": True})
        end: dict[str, Any] = {"t": tid, "end": True}
        try:
            func, found = self.locate(t)
            end["found"] = found
            stream = self.inputs_for(t, func)
            end.update(self.sample(tid, func, stream, budget, start))
            end["sources"] = stream.sources
            if self.side == "base":
                path = self.inputs_dir / f"{t['file_id']}.pkl"
                self.inputs_dir.mkdir(parents=True, exist_ok=True)
                path.write_bytes(pickle.dumps(stream.used, protocol=pickle.HIGHEST_PROTOCOL))
                if not stream.used and not end.get("skip"):
                    end["skip"] = stream.why or "no inputs"
        except _Skip as exc:
            end["skip"] = str(exc)
        end["seconds"] = round(time.monotonic() - start, 4)
        self.emit(end)

    def locate(self, t: dict[str, Any]) -> tuple[Callable[..., Any], str]:
        name = t["qualname"] if self.side == "base" else t["new_name"]
        modules = [t["module"], *(m for m in t.get("moved_to", []) if m != t["module"])]
        errors = []
        for module in modules:
            try:
                obj: Any = __import__(module, fromlist=["_"])
                for part in name.split("."):
                    obj = getattr(obj, part)
            except Exception as exc:
                errors.append(f"{module}: {type(exc).__name__}: {exc}")
                continue
            if not callable(obj):
                raise _Skip(f"{module}.{name} is not callable")
            return obj, f"{module}.{name}"
        raise _Skip(f"not found on the {self.side} side ({'; '.join(errors)[:300]})")

    def inputs_for(self, t: dict[str, Any], func: Callable[..., Any]) -> _Inputs:
        if self.side == "candidate":
            path = self.inputs_dir / f"{t['file_id']}.pkl"
            try:
                blobs: list[bytes] = pickle.loads(path.read_bytes())
            except (OSError, pickle.UnpicklingError, EOFError) as exc:
                raise _Skip(f"base inputs unreadable: {exc}") from None
            return _Inputs(replay=blobs[: t["samples"]])
        if inspect.isasyncgenfunction(func):
            raise _Skip("async generator: not sampled")
        from pytest_orchestrator import inputs

        stream = _Inputs(limit=t["samples"])
        stream.fixed += [(b, "captured") for b in _captured(self.captured_dir, t["file_id"])]
        for call in inputs.docstring_calls(func):
            with contextlib.suppress(Exception):  # unpicklable: the candidate could not replay it
                stream.fixed.append((pickle.dumps(call, pickle.HIGHEST_PROTOCOL), "docstring"))
        try:
            stream.generator = inputs.Generator(
                func, inputs.rng_for(self.seed, t["id"]), self.strategies
            )
        except inputs.Unsupported as exc:
            stream.why = str(exc)
        return stream

    def sample(
        self, tid: str, func: Callable[..., Any], stream: _Inputs, budget: float, start: float
    ) -> dict[str, Any]:
        raised = 0
        n = 0
        base = self.side == "base"
        for i, blob in enumerate(stream):
            outcome = self.call(func, blob)
            if base and "timeout" in outcome:
                skip = f"hangs: a call ran over {SAMPLE_SECONDS}s (sample {i})"
                return {"n": n, "raised": raised, "skip": skip}
            if base and "blocked" in outcome:
                return {"n": n, "raised": raised, "skip": f"side effect: {outcome['blocked']}"}
            if base and i < DETERMINISM_CHECKS:
                again = self.call(func, blob)
                if json.dumps(again, default=str) != json.dumps(outcome, default=str):
                    skip = "nondeterministic: the same input gave different outcomes"
                    return {"n": n, "raised": raised, "skip": skip}
            record: dict[str, Any] = {"t": tid, "i": i, "o": outcome}
            if base:
                record["in"] = _call_repr(blob)
                stream.accept(blob, ok="x" not in outcome)
            self.emit(record)
            raised += "x" in outcome
            n += 1
            if base and time.monotonic() - start > budget:
                break  # checked after a sample, so no drawn input goes unused
        if base and stream.why and n:
            stream.why = ""  # captured or docstring inputs were enough to compare
        return {"n": n, "raised": raised, **({"skip": stream.why} if stream.why else {})}

    def call(self, func: Callable[..., Any], blob: bytes) -> dict[str, Any]:
        from pytest_orchestrator.outcomes import encode, type_name

        if self.side == "candidate":
            args, kwargs = _Renaming(blob, self.renames, {}).load()
        else:
            args, kwargs = pickle.loads(blob)
        before = [encode(a) for a in args] + [encode(v) for v in kwargs.values()]
        sink = _Sink()
        saved = sys.stdout, sys.stdin
        outcome: dict[str, Any]
        try:
            sys.stdout, sys.stdin = sink, sink
            signal.setitimer(signal.ITIMER_REAL, SAMPLE_SECONDS)
            with self.sandbox.active():
                result = func(*args, **kwargs)
                result = self.settle(result)
            outcome = {"r": encode(result)}
        except _SampleTimeout:
            outcome = {"timeout": True}
        except _Blocked as exc:
            outcome = {"blocked": str(exc)}
        except RecursionError:
            outcome = {"x": "builtins.RecursionError"}
        except Exception as exc:
            outcome = {"x": type_name(exc)}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout, sys.stdin = saved
        after = [encode(a) for a in args] + [encode(v) for v in kwargs.values()]
        mutated = {str(k): a for k, (b, a) in enumerate(zip(before, after, strict=True)) if a != b}
        if mutated:
            outcome["m"] = mutated
        return outcome

    def settle(self, result: Any) -> Any:
        """Drain generators and iterators (their items are the result); await coroutines."""
        if isinstance(result, types.GeneratorType | cabc.Iterator) and not isinstance(
            result, str | bytes | io.IOBase
        ):
            return list(itertools.islice(result, GENERATOR_ITEMS))
        if inspect.iscoroutine(result):
            assert self.loop is not None
            return self.loop.run_until_complete(result)
        return result


class _Skip(Exception):
    pass


@dataclass
class _Inputs:
    """One function's inputs as pickled calls: replayed (candidate) or drawn (base).

    On the base side the fixed calls (captured, docstring) come first, then the generator's,
    which learns from every call that did not raise (`Generator.learn`), so the draws drift
    towards the function's valid domain. ``used`` is what was actually run, in order: the
    candidate side replays exactly that.
    """

    replay: list[bytes] | None = None
    limit: int = MAX_SAMPLES
    fixed: list[tuple[bytes, str]] = field(default_factory=list)
    generator: Any = None
    why: str = ""
    used: list[bytes] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)

    def __iter__(self) -> Iterator[bytes]:
        if self.replay is not None:
            yield from self.replay
            return
        for blob, source in self.fixed[: self.limit]:
            yield self._use(blob, source)
        misses = 0
        while self.generator is not None and len(self.used) < self.limit and misses < 50:
            try:
                blob = pickle.dumps(self.generator.draw(), pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # Unsupported for this draw, or unpicklable
                misses += 1
                unsupported = isinstance(exc, Unsupported)
                self.why = self.why or (
                    str(exc) if unsupported else f"inputs could not be drawn: {exc}"
                )
                continue
            misses = 0
            yield self._use(blob, "generated")

    def _use(self, blob: bytes, source: str) -> bytes:
        self.used.append(blob)
        self.sources[source] = self.sources.get(source, 0) + 1
        return blob

    def accept(self, blob: bytes, ok: bool) -> None:
        if ok and self.generator is not None:
            with contextlib.suppress(Exception):
                self.generator.learn(*pickle.loads(blob))


_Blocked: type[BaseException] = BaseException  # replaced by SideEffectBlocked in the child


def _call_repr(blob: bytes, limit: int = 300) -> str:
    try:
        args, kwargs = pickle.loads(blob)
        parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        text = "(" + ", ".join(parts) + ")"
    except Exception as exc:
        text = f"(<unprintable: {type(exc).__name__}>)"
    return text if len(text) <= limit else text[: limit - 4] + "...)"


def _captured(directory: Path, file_id: str) -> list[bytes]:
    """Calls captured from the base side's tests (`pytest_orchestrator.capture`)."""
    path = directory / f"{file_id}.pkl"
    calls: list[bytes] = []
    try:
        with path.open("rb") as fh:
            while True:
                try:
                    calls.append(pickle.load(fh))
                except EOFError:
                    break
    except (OSError, pickle.UnpicklingError):
        pass
    return calls


def _on_alarm(signum: int, frame: object) -> None:
    raise _SampleTimeout


def child_main(spec_path: Path, side: str, seed: int, out: Path, until: float) -> int:
    """The ``sample`` mode of ``python -m pytest_orchestrator.simulation``."""
    global _Blocked
    from pytest_orchestrator.sideeffects import Sandbox, SideEffectBlocked

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    loop = asyncio.new_event_loop()  # made before the sandbox: it opens a socket pair
    sandbox = Sandbox()
    _Blocked = SideEffectBlocked
    signal.signal(signal.SIGALRM, _on_alarm)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
    with out.open("a", encoding="utf-8") as fh:
        child = _Child(
            side, seed, fh, until, dict(spec.get("renames", {})),
            Path(spec["inputs"]), Path(spec["captured"]), sandbox, loop,
        )  # fmt: skip
        child.strategies, problem = user_strategies(Path.cwd())
        if problem:
            child.emit({"error": problem})
        sandbox.install()  # after our own files are open: the hook only acts inside calls
        targets = spec["targets"]
        for k, t in enumerate(targets):
            remaining = max(0.05, child.deadline - time.monotonic())
            child.run_target(t, remaining / (len(targets) - k))
    return 0


def user_strategies(tree: Path) -> tuple[dict[Any, Callable[[Any], Any]], str]:
    """``{type: callable(rng) -> value}`` from the conftest's
    ``pytest_orchestrator_strategies()``, which takes precedence over hint-based generators.

    Declare it ``@pytest.hookimpl(optionalhook=True)`` so plain pytest runs accept it.
    """
    from pytest_orchestrator.simulation import load_conftest

    try:
        if b"pytest_orchestrator_strategies" not in (tree / "conftest.py").read_bytes():
            return {}, ""  # do not import a conftest that has nothing for us
    except OSError:
        return {}, ""
    try:
        module = load_conftest(tree)
        hook = getattr(module, "pytest_orchestrator_strategies", None)
        found = hook() if callable(hook) else {}
    except Exception as exc:
        return {}, f"conftest strategies unavailable: {type(exc).__name__}: {exc}"
    if not isinstance(found, dict):
        return {}, "pytest_orchestrator_strategies() must return a dict {type: callable(rng)}"
    return found, ""


def parse_call(text: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``"(1, 2.0, x='a')"`` back into arguments, for reproducing a counterexample by hand."""
    node = ast.parse(f"f{text}", mode="eval").body
    assert isinstance(node, ast.Call)
    args = tuple(ast.literal_eval(a) for a in node.args)
    return args, {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
