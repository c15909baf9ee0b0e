"""Differential sampling: the same inputs through a function on base and on candidate.

`Sampler` takes the targets (`pytest_orchestrator.phases.montecarlo.targets`), skips those with
side effects (`pytest_orchestrator.phases.montecarlo.sideeffects`), shards the rest over
children on the scan pool (the child side is
`pytest_orchestrator.phases.montecarlo.child.sampling`), and turns their outcome streams into a
`DifferentialReport`: on the candidate side, compared sample by sample with the base, through
the plan's renames, the smallest divergent input kept as the counterexample.

Files in the Monte Carlo work directory::

    inputs/<target>.pkl        the base side's inputs, a pickled list of pickled calls
    base-<round>-<shard>.jsonl outcome streams (and candidate-...)
    base.differential.json     the base side's report, read by the candidate side

The stream survives a kill: a target that began and never ended is the one that hung past
the cap, crashed the interpreter, or was stopped by the memory guard; the next round resumes
with the targets not yet done.
"""

from __future__ import annotations

import json
import math
import re
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, Field

from pytest_orchestrator.guard.children import ChildResult, ChildSpec
from pytest_orchestrator.model import MetricDelta, SimulationResult
from pytest_orchestrator.phases.montecarlo.child.capture import read_captured
from pytest_orchestrator.phases.montecarlo.targets import (
    Target,
    definers,
    inlined_from,
    keyword_renames_from,
    qualified_renames_from,
    removed_params_from,
    renamed,
    renames_from,
    requalify,
    targets_from_run,
    top_level,
)

if TYPE_CHECKING:
    from pytest_orchestrator.phases.montecarlo.child.simulation import Side
    from pytest_orchestrator.plan import Plan
    from pytest_orchestrator.run import Run

MAX_SAMPLES: Final = 2000
"""Samples per function at most (fewer when the time share runs out)."""
SHARD_SECONDS: Final = 2.0
"""The candidate side's sampling a child must have ahead of it (judged by the base side's
time in its sampling loops) before the work is split into one more child: a child's
interpreter start and imports cost ~0.3 CPU-s, more than splitting a shorter loop saves, and
the candidate side runs beside the gate's tests, which hold a core already."""
STALL_SECONDS: Final = 4.0
"""A sampling child whose stream has not grown for this long is stuck (in C, where the
per-call alarm cannot reach): it is stopped, its function blamed, and sampling resumes. It
exceeds the child's start-up and the per-call alarm (1 s) by a wide margin."""
MAX_ROUNDS: Final = 4
"""Rounds of sampling children: the first, and resumptions after a crash or a kill."""
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
    """The input sampling found, when shrinking simplified it
    (`pytest_orchestrator.phases.montecarlo.shrink`)."""


class FunctionReport(BaseModel):
    """One function's evidence on one side (and the comparison, on the candidate side)."""

    model_config = ConfigDict(extra="forbid")

    target: str
    """``module.qualname`` on the base side."""
    module: str = ""
    qualname: str = ""
    """``func`` or ``Class.method``: where the module name ends is not visible in ``target``."""
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
    keywords: dict[str, dict[str, str]] = field(default_factory=dict)
    """The plan's parameter renames: qualname -> {old keyword: new}."""
    removed: dict[str, list[str]] = field(default_factory=dict)
    """The plan's parameter removals: qualname -> the parameters it takes away."""
    qualified: dict[str, str] = field(default_factory=dict)
    """The dotted names a module rename or a move changes (`qualified_renames_from`)."""
    inlined: set[str] = field(default_factory=set)
    """Names the plan inlines: gone on the candidate side by design (`inlined_from`)."""
    moves: dict[str, list[str]] = field(default_factory=dict)
    base_counts: dict[str, int] = field(default_factory=dict)
    base_sources: dict[str, dict[str, int]] = field(default_factory=dict)
    base_sampling_seconds: float | None = None
    """The base side's time in its sampling loops (candidate side only)."""
    captured_dir: Path | None = None
    bad: dict[str, list[int]] = field(default_factory=dict)
    """Per target, positions of inputs that stalled or crashed a base child (skipped on retry)."""
    parallel: int = 2
    rounds: int = 0
    child_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    _streams: list[Path] = field(default_factory=list)
    _cache: dict[str, dict[str, dict[int, dict[str, Any]]]] = field(default_factory=dict)

    @classmethod
    def for_run(cls, run: Run, side: Side, seed: int, plan: Plan | None, work: Path) -> Sampler:
        from pytest_orchestrator.phases.montecarlo.sideeffects import ModuleIndex, analyse

        if side == "base":
            targets, skipped = targets_from_run(run)
            reports = {t: FunctionReport(target=t, skipped=why) for t, why in skipped.items()}
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
                module, _, qualname = f.target.rpartition(".")
                targets.append(Target(f.module or module, f.qualname or qualname))
                counts[f.target] = f.samples
            else:
                reports[f.target] = FunctionReport(
                    target=f.target, skipped=f.skipped or "no samples"
                )
        renames = renames_from(plan)
        names = {renamed(t.qualname, renames).split(".")[0] for t in targets}
        return cls(
            "candidate", seed, work, tree, targets, reports, renames=renames,
            keywords=keyword_renames_from(plan), removed=removed_params_from(plan),
            qualified=qualified_renames_from(tree, plan),
            inlined=inlined_from(tree, plan),
            moves=definers(tree, names), base_counts=counts, base_sources=sources,
            base_sampling_seconds=base.sampling_seconds if base is not None else None,
        )  # fmt: skip

    def shards(self, cores: int) -> int:
        """Children per round: one per core (``cores``), except on the candidate side, whose
        work the base side measured: one more child per `SHARD_SECONDS` of it."""
        if self.side != "candidate" or self.base_sampling_seconds is None:
            return cores
        return max(1, min(cores, math.ceil(self.base_sampling_seconds / SHARD_SECONDS)))

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
                        "new_name": renamed(t.qualname, self.renames),
                        "moved_to": self.moves.get(
                            renamed(t.qualname, self.renames).split(".")[0], []
                        ),
                        "samples": self.base_counts.get(t.id, MAX_SAMPLES),
                        "keywords": self.keywords.get(t.qualname, {}),
                        "removed": self.removed.get(t.qualname, []),
                        "skip": self.bad.get(t.id, []),
                    }
                    for t in shard
                ],
                "inputs": str(self.work / "inputs"),
                "captured": str(self.captured_dir or self.work / "captured"),
                "renames": top_level(self.renames),
            }
            spec_path.write_text(json.dumps(spec), encoding="utf-8")
            self._streams.append(out)
            args = ["sample", "--side", self.side, "--seed", str(self.seed)]
            args += ["--spec", str(spec_path), "--out", str(out), "--until", f"{until:.3f}"]
            specs.append(
                ChildSpec(f"mc-{self.side}-sample-{self.rounds}.{number}",
                          "pytest_orchestrator.phases.montecarlo.child.simulation", args,
                          self.tree, env, progress=out, stall_seconds=STALL_SECONDS)
            )  # fmt: skip
        return specs

    def capture_spec(self, env: dict[str, str], cache: Path, commit: str) -> ChildSpec | None:
        """The base side's capture run: the test files mentioning a target, with the capture
        plugin. Captures are kept per base commit beside the slice cache, so a second run on
        the same commit reuses them; None when there is nothing (new) to capture."""
        from pytest_orchestrator.phases.montecarlo.child.capture import ENV_VAR, affected_test_files

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
        args = ["-p", "pytest_orchestrator.phases.montecarlo.child.capture", "-q",
                "-p", "no:cacheprovider", "--continue-on-collection-errors", *files]  # fmt: skip
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
            counts[path.stem] = len(read_captured(path.parent, path.stem))
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
                if self._retry(target_id, state, child):
                    continue
                report = state.report()
                if not state.ended:
                    why = _blame(child)
                    report.skipped = f"{why} during sample {state.next_sample}"
                    if self.side == "candidate" and not (child.timed_out or child.stalled):
                        # the base side survived this input: dying on it is a divergence
                        report.divergent += 1
                self.reports[target_id] = report
            if not child.ok and not child.timed_out and not child.crashed:
                self.errors.append(f"{child.label} {child.describe()}")

    def _unfinished(self, target_id: str) -> str:
        bad = self.bad.get(target_id)
        if bad:
            return f"hung or crashed on input(s) {bad}; the cap came before another try"
        return "not reached before the cap"

    def _side_outcomes(self, side: str) -> dict[str, dict[int, dict[str, Any]]]:
        """Every sample record of one side, by target and index, read once."""
        if side not in self._cache:
            found: dict[str, dict[int, dict[str, Any]]] = {}
            for stream in sorted(self.work.glob(f"{side}-*.jsonl")):
                for record in _lines(stream):
                    target = record.get("t")
                    if isinstance(target, str) and "i" in record:
                        found.setdefault(target, {})[int(record["i"])] = record
            self._cache[side] = found
        return self._cache[side]

    def _retry(self, target_id: str, state: _StreamState, child: ChildResult) -> bool:
        """On the base side, a target whose child stalled or crashed on one input is sampled
        again in the next round without that input (twice at most)."""
        if self.side != "base" or state.ended or state.at is None:
            return False
        memory_guard = child.returncode in (-signal.SIGTERM, -signal.SIGKILL)
        if not (child.stalled or (child.crashed and not memory_guard)):
            return False  # a memory hog is not retried: another try would press memory again
        if len(self.bad.get(target_id, [])) >= 2:
            return False
        self.bad.setdefault(target_id, []).append(state.at)
        self.errors.append(f"{target_id}: input {state.at} {_blame(child)}; sampling it again")
        return True

    def collect(self, peak_ratio: float | None) -> DifferentialReport:
        """The side's report; on the candidate side, compared sample by sample with base."""
        functions = [
            self.reports.get(t.id) or FunctionReport(target=t.id, skipped=self._unfinished(t.id))
            for t in self.targets
        ]
        functions += [r for k, r in self.reports.items() if k not in {t.id for t in self.targets}]
        by_id = {t.id: t for t in self.targets}
        for f in functions:
            if f.target in by_id:
                f.module, f.qualname = by_id[f.target].module, by_id[f.target].qualname
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
        from pytest_orchestrator.phases.montecarlo.outcomes import agree

        f.sources = f.sources or self.base_sources.get(f.target, {})
        if f.skipped.startswith(_GONE[0]) and f.target in self.inlined:
            f.skipped = "inlined by the plan: its callers are compared"
            return f
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
        base = self._side_outcomes("base").get(f.target, {})
        cand = self._side_outcomes("candidate").get(f.target, {})
        qualified = self.qualified
        leaf = _renamer(top_level(self.renames))

        def rename(name: str) -> str:
            return leaf(requalify(name, qualified))

        def text(value: str) -> str:
            return requalify(value, qualified)

        divergent: list[tuple[int, str]] = []
        compared = 0
        for i, record in sorted(cand.items()):
            b = base.get(i)
            if b is None:
                continue
            compared += 1
            where = agree(b["o"], record["o"], rename=rename, text=text)
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
    if child.stalled:
        return "hung (no progress; stuck in a C call?)"
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
    at: int | None = None
    """Position of the input being run when the stream ends (base side)."""
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
        if "at" in record:
            state.at = int(record["at"])
        elif "i" in record:
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


def _outcomes_in(stream: Path, target: str) -> dict[int, dict[str, Any]]:
    return {
        int(record["i"]): record
        for record in _lines(stream)
        if record.get("t") == target and "i" in record
    }
