"""Shrinking counterexamples: the simplest input that still tells base from candidate.

Sampling finds divergent inputs such as ``fractional_kelly(0.9731..., 0.9488...)``; a reviewer
reads ``fractional_kelly(1.0, 1.0)`` faster. With the time the cap leaves, each divergent
function's counterexample is simplified one argument at a time (numbers towards 0, 1 and
rounder values, strings and containers shorter) and every variant runs on both sides, base in
a snapshot of the base commit, candidate in the worktree, each in its own
child as always. The smallest variant that still diverges replaces the counterexample; a few
rounds repeat that. The base snapshot is written from the base commit only when there is a
counterexample to shrink.

Only inputs made of builtins are shrunk: the parent unpickles the counterexample to build
variants, and must never import the target's code (a restricted unpickler refuses anything
else, and such counterexamples are left as found).

Why our own shrinker, not Hypothesis's: Hypothesis shrinks the choices behind a value it
generated, one predicate evaluation after another, and cannot start from a counterexample
sampling found; here every evaluation is a base child and a candidate child (~0.4 s for the
pair), and the parent cannot build values from type hints without importing the target.
``benchmarks/bench_inputs.py`` measured both on 127 divergent (mutant, function) pairs: ours
ends at a median size of 15 characters (from 24) in at most 3 rounds, i.e. 3 child pairs,
since a round's variants run batched; ``hypothesis.find`` over the same call strategy with
"base and candidate disagree" as the predicate ends at the same median size 15 (smaller on
18 pairs, larger on 27, equal on 51), finds nothing on 31, and needs a median of 22
sequential evaluations (up to 1000): ~9 s of child pairs against a cap of 15 s for the whole
phase.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pytest_orchestrator.errors import RepositoryError
from pytest_orchestrator.guard.children import ChildSpec, Guard, run_children
from pytest_orchestrator.phases.montecarlo.targets import top_level
from pytest_orchestrator.repo.git import export, git

if TYPE_CHECKING:
    from pytest_orchestrator.phases.montecarlo.differential import (
        DifferentialReport,
        FunctionReport,
        Sampler,
    )

BASE_SNAPSHOT: Final = "base-src"
MAX_VARIANTS: Final = 48
MAX_ROUNDS: Final = 3
MAX_FUNCTIONS: Final = 3
ROUND_SECONDS: Final = 2.5
"""Time one round needs (two child start-ups); no round starts with less left."""
SNAPSHOT_FILES: Final = 5000
_BUILTINS: Final = {"builtins": {"complex", "frozenset", "set", "bytearray", "slice", "range"}}


def snapshot(tree: Path, commit: str, dest: Path) -> bool:
    """Write ``commit``'s files (the base) into ``dest`` for shrinking, once; False (no
    snapshot) for very large trees or when git cannot write it.

    Written only when a counterexample is to be shrunk (a run whose sampling finds no
    divergence, the usual one, never pays for it), from the base commit rather than a copy
    of the worktree: the commit cannot have changed since, whatever the attempt edited."""
    if dest.is_dir():
        return True
    try:
        listed = git("ls-tree", "-r", "-z", "--name-only", commit, cwd=tree, read_only=True)
        if listed.count("\0") > SNAPSHOT_FILES:
            return False
        export(tree, commit, dest)
    except (OSError, RepositoryError):
        shutil.rmtree(dest, ignore_errors=True)
        return False
    return True


class _BuiltinsOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if name in _BUILTINS.get(module, set()):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not a builtin")


def load_builtin_call(blob: bytes) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    try:
        args, kwargs = _BuiltinsOnly(io.BytesIO(blob)).load()
    except Exception:
        return None
    return tuple(args), dict(kwargs)


def simpler(value: Any) -> Iterator[Any]:
    """Simpler values than ``value``, simplest first."""
    if isinstance(value, bool):
        if value:
            yield False
    elif isinstance(value, int):
        for v in (0, 1, -1, value // 2, value - 1 if value > 0 else value + 1):
            if abs(v) < abs(value) or (v == 1 and value not in (0, 1)):
                yield v
    elif isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            yield 0.0
            return
        candidates = [0.0, 1.0, -1.0, 0.5, float(round(value)), round(value, 1), round(value, 2),
                      value / 2]  # fmt: skip
        for number in candidates:
            if number != value and _size(number) < _size(value):
                yield number
    elif isinstance(value, str | bytes):
        for text in (value[:0], value[: len(value) // 2], value[1:], value[:-1]):
            if len(text) < len(value):
                yield text
    elif isinstance(value, list | tuple):
        make = list if isinstance(value, list) else tuple
        for part in (value[:0], value[: len(value) // 2], value[1:], value[:-1]):
            if len(part) < len(value):
                yield make(part)
        for i, item in enumerate(value):
            for s in simpler(item):
                yield make([*value[:i], s, *value[i + 1 :]])
                break
    elif isinstance(value, dict) and value:
        yield {}
        first = next(iter(value))
        yield {k: v for k, v in value.items() if k != first}


def variants(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Calls differing from ``(args, kwargs)`` in one simpler argument, smallest first."""
    out: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for i, a in enumerate(args):
        out += [((*args[:i], s, *args[i + 1 :]), kwargs) for s in simpler(a)]
    for k, v in kwargs.items():
        out += [(args, {**kwargs, k: s}) for s in simpler(v)]
    unique: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    for call in out:
        unique.setdefault(repr(call), call)
    return sorted(unique.values(), key=lambda c: (len(_call_text(c)), _call_text(c)))[:MAX_VARIANTS]


def _size(value: Any) -> int:
    return len(repr(value))


def _call_text(call: tuple[tuple[Any, ...], dict[str, Any]]) -> str:
    args, kwargs = call
    return (
        "(" + ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]) + ")"
    )


def improve(
    report: DifferentialReport,
    sampler: Sampler,
    base_commit: str,
    env: dict[str, str],
    deadline: float,
    guard: Guard | None,
) -> int:
    """Shrink the report's counterexamples in place while time lasts; returns how many."""
    todo = [f for f in report.functions if f.counterexample is not None and f.compared]
    base_tree = sampler.work / BASE_SNAPSHOT
    if not todo or not snapshot(sampler.tree, base_commit, base_tree):
        return 0
    shrunk = 0
    for f in todo[:MAX_FUNCTIONS]:
        if _shrink_one(f, sampler, env, deadline, guard, base_tree):
            shrunk += 1
    return shrunk


def _shrink_one(
    f: FunctionReport,
    sampler: Sampler,
    env: dict[str, str],
    deadline: float,
    guard: Guard | None,
    base_tree: Path,
) -> bool:
    from pytest_orchestrator.phases.montecarlo.differential import Counterexample, _outcomes_in
    from pytest_orchestrator.phases.montecarlo.outcomes import agree
    from pytest_orchestrator.phases.montecarlo.targets import Target, renamed

    assert f.counterexample is not None
    target = next((t for t in sampler.targets if t.id == f.target), None)
    blob = _base_blob(sampler, target, f.counterexample.sample) if target else None
    call = load_builtin_call(blob) if blob is not None else None
    if target is None or call is None:
        return False
    assert isinstance(target, Target)
    best = call
    improved = False
    work = sampler.work / "shrink"
    for round_ in range(MAX_ROUNDS):
        if deadline - time.monotonic() < ROUND_SECONDS:
            break
        calls = variants(*best)
        if not calls:
            break
        shutil.rmtree(work, ignore_errors=True)
        (work / "inputs").mkdir(parents=True)
        blobs = [pickle.dumps(c, pickle.HIGHEST_PROTOCOL) for c in calls]
        (work / "inputs" / f"{target.file_id}.pkl").write_bytes(pickle.dumps(blobs))
        specs = []
        for side, tree in (("base", base_tree), ("candidate", sampler.tree)):
            renames = sampler.renames if side == "candidate" else {}
            name = renamed(target.qualname, renames)
            spec = {
                "targets": [{
                    "id": target.id, "file_id": target.file_id, "module": target.module,
                    "qualname": target.qualname, "new_name": name,
                    "moved_to": sampler.moves.get(name, []) if side == "candidate" else [],
                    "samples": len(blobs),
                }],
                "inputs": str(work / "inputs"), "captured": str(work / "none"),
                "renames": top_level(renames),
            }  # fmt: skip
            spec_path = work / f"{side}.spec.json"
            spec_path.write_text(json.dumps(spec), encoding="utf-8")
            # both replay the variants: "candidate" is the child's replay mode, not the tree
            args = ["sample", "--side", "candidate", "--seed", str(sampler.seed),
                    "--spec", str(spec_path), "--out", str(work / f"{side}.jsonl"),
                    "--until", f"{deadline:.3f}"]  # fmt: skip
            specs.append(ChildSpec(f"mc-shrink-{side}-{round_}",
                                   "pytest_orchestrator.phases.montecarlo.child.simulation",
                                   args, tree, env))  # fmt: skip
        run_children(specs, deadline, guard=guard, parallel=2)
        base = _outcomes_in(work / "base.jsonl", target.id)
        cand = _outcomes_in(work / "candidate.jsonl", target.id)
        found = None
        for i, c in enumerate(calls):
            if i in base and i in cand:
                where = agree(base[i]["o"], cand[i]["o"], rename=_renamer(sampler))
                if where is not None:
                    found = (i, c, where)
                    break  # calls are sorted smallest first
        if found is None:
            break
        i, best, where = found
        improved = True
        f.counterexample = Counterexample(
            sample=f.counterexample.sample,
            input=_call_text(best),
            base=_describe(base[i]["o"]),
            candidate=_describe(cand[i]["o"]),
            where=where,
            shrunk_from=f.counterexample.shrunk_from or f.counterexample.input,
        )
    return improved


def _base_blob(sampler: Sampler, target: object, sample: int) -> bytes | None:
    from pytest_orchestrator.phases.montecarlo.targets import Target

    assert isinstance(target, Target)
    try:
        blobs = pickle.loads((sampler.work / "inputs" / f"{target.file_id}.pkl").read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError):
        return None
    return blobs[sample] if 0 <= sample < len(blobs) else None


def _renamer(sampler: Sampler) -> Any:
    from pytest_orchestrator.phases.montecarlo.differential import _renamer as make

    return make(top_level(sampler.renames))


def _describe(outcome: dict[str, Any]) -> str:
    text = json.dumps(outcome, default=str)
    return text if len(text) <= 300 else text[:297] + "..."
