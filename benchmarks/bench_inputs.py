"""Our input generator and shrinker against Hypothesis's, on the same functions and mutants.

Targets: the public functions of the bundled example (``examples/wheel/wheel_sizing``: kelly,
buying_power, sizing, volatility) and of two standard-library modules the mutation benchmark
uses (colorsys, textwrap). For each module, semantic mutants come from
``benchmarks/mutants.py``; each mutant is run beside the original, in this process, on the
same inputs (the production path runs the two sides in child interpreters; that cost is the
same for both generators and left out here).

Generators compared, at the same number of inputs per function:

* ``ours``: `pytest_orchestrator.phases.montecarlo.inputs.Generator`, seeded as in the child,
  learning from calls that did not raise (as the sampling child does);
* ``hypothesis``: ``st.from_type`` for each parameter's hint (the default's type when there is
  none), gathered with ``st.fixed_dictionaries`` (defaulted parameters optional), drawn by a
  ``@given`` run programmatically with ``database=None``, ``@seed``, ``deadline=None`` and the
  generate phase only.

Per generator: inputs drawn, generation cost per input, share of inputs that raise, distinct
outcomes, mutants detected (any function of the mutated module diverges), divergent inputs per
second of (generation + both sides' calls).

Shrinking compared, on each (mutant, function) pair ``ours`` detected:

* ``ours``: `pytest_orchestrator.phases.montecarlo.shrink.variants` rounds from the
  counterexample sampling found (at most ``MAX_ROUNDS`` rounds of ``MAX_VARIANTS``; one round
  is one base/candidate child pair in production, all variants batched);
* ``hypothesis``: ``hypothesis.find(call_strategy, diverges)`` (it cannot start from a given
  value: it searches, then shrinks); every evaluation of the predicate is sequential, so in
  production each would be one base/candidate child pair.

Size is the length of the printed call, ``(a, b, k=c)``.

Usage::

    .venv/bin/python benchmarks/bench_inputs.py [--n 300] [--mutants 25] [--seed 1]

Prints the tables; not run as a test.

Results (``--n 300 --mutants 20 --seed 1``, Hypothesis 6.170, a loaded 2-core machine; the
detection and size figures are reproducible, the microseconds vary with load)::

    Generation (300 inputs per function asked)
                  inputs  us/input  raise %  distinct    detected    div/s  found size
    ours            7800      99.8     43.5      2824      91/114     2557          24
    hypothesis      7204    1926.0     63.4      1912      64/114      314          12
    mutants detected only by ours: 27, only by hypothesis: 0

    Shrinking (127 divergent (mutant, function) pairs found by ours)
      sampling's counterexample: median size 24
      ours:       median size 15, rounds (child pairs) median 2 max 3, evaluations median 2
      hypothesis: median size 15 (missed 31), sequential evaluations (child pairs) median 22
                  max 1000, in-process 50.51s
      paired: hypothesis smaller on 18, equal on 51, larger on 27, no counterexample on 31

Per module, mutants detected (ours / hypothesis): kelly 18/16, buying_power 20/18, sizing
14/0, volatility 20/12, colorsys 19/18, textwrap 0/0 (its functions take an unannotated
``text``: neither generator makes a string for it). ``sizing`` has six validated float
parameters: Hypothesis's floats (nan, inf, huge, negative) almost never pass all six, while
ours learns from the calls that did not raise and reuses their values.

A child interpreter starts in 0.3-0.45 s here (``import ...child.simulation, numpy``), so a
base/candidate pair is ~0.4 s: ours needs at most ``MAX_ROUNDS`` pairs (all variants of a
round batched), Hypothesis's ``find`` a median of 22 pairs in sequence (~9 s) and up to 1000.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import inspect
import math
import os
import pickle
import signal
import statistics
import sys
import tempfile
import time
import types
import typing
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "examples" / "wheel"))

# Hypothesis caches the constants of local modules in its storage: not in this checkout
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", tempfile.mkdtemp(prefix="bench-inputs-"))

import hypothesis  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from mutants import STDLIB, mutants  # noqa: E402

from pytest_orchestrator.phases.montecarlo import inputs, shrink  # noqa: E402
from pytest_orchestrator.phases.montecarlo.outcomes import agree, encode, type_name  # noqa: E402

Call = tuple[tuple[Any, ...], dict[str, Any]]
MODULES = {
    "kelly": ROOT / "examples/wheel/wheel_sizing/kelly.py",
    "buying_power": ROOT / "examples/wheel/wheel_sizing/buying_power.py",
    "sizing": ROOT / "examples/wheel/wheel_sizing/sizing.py",
    "volatility": ROOT / "examples/wheel/wheel_sizing/volatility.py",
    "colorsys": STDLIB / "colorsys.py",
    "textwrap": STDLIB / "textwrap.py",
}
CALL_SECONDS = 0.5


class _Timeout(BaseException):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Timeout


def load(name: str, source: str, suffix: str = "") -> types.ModuleType:
    module = types.ModuleType(f"bench_inputs_{name}{suffix}")
    sys.modules[module.__name__] = module  # dataclasses and get_type_hints look it up
    exec(compile(source, str(MODULES[name]), "exec"), module.__dict__)
    return module


def public_functions(module: types.ModuleType) -> list[str]:
    names = []
    for name, obj in vars(module).items():
        if name.startswith("_") or not inspect.isfunction(obj):
            continue
        if obj.__module__ != module.__name__:
            continue
        names.append(name)
    return names


def outcome(func: Callable[..., Any], call: Call) -> Any:
    args, kwargs = copy.deepcopy(call)  # a fresh copy, as the child's unpickling makes
    signal.setitimer(signal.ITIMER_REAL, CALL_SECONDS)
    try:
        result = func(*args, **kwargs)
        return {"r": encode(result)}
    except _Timeout:
        return {"timeout": True}
    except RecursionError:
        return {"x": "builtins.RecursionError"}
    except Exception as exc:
        return {"x": type_name(exc)}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def call_text(call: Call) -> str:
    return shrink._call_text(call)


# ---------------------------------------------------------------------------- generators


def ours(func: Callable[..., Any], n: int, seed: int) -> tuple[list[Call], str]:
    try:
        gen = inputs.Generator(func, inputs.rng_for(seed, func.__name__))
    except inputs.Unsupported as exc:
        return [], str(exc)
    calls: list[Call] = []
    misses = 0
    why = ""
    while len(calls) < n and misses < 50:
        try:
            call = gen.draw()
            pickle.dumps(call)
        except Exception as exc:
            misses += 1
            why = why or str(exc)
            continue
        calls.append(call)
        if "x" not in outcome(func, call):  # the child learns from calls that did not raise
            gen.learn(*call)
    return calls, why if not calls else ""


def call_strategy(func: Callable[..., Any]) -> st.SearchStrategy[Call]:
    try:
        hints = typing.get_type_hints(func)
    except Exception:
        hints = {}
    required: list[Any] = []  # passed by position, as ours does, so printed sizes compare
    optional: dict[str, Any] = {}
    for p in inspect.signature(func).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        hint = hints.get(p.name)
        if hint is None:
            hint = type(p.default) if p.default not in (p.empty, None) else float | int
        if p.default is p.empty and p.kind is not p.KEYWORD_ONLY:
            required.append(st.from_type(hint))
        else:
            optional[p.name] = st.from_type(hint)
    return st.tuples(st.tuples(*required), st.fixed_dictionaries({}, optional=optional))


SETTINGS = settings(
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.generate],
)


def hyp(func: Callable[..., Any], n: int, seed: int) -> tuple[list[Call], str]:
    calls: list[Call] = []

    @hypothesis.seed(seed)
    @settings(SETTINGS, max_examples=n)
    @given(call_strategy(func))
    def collect(call: Call) -> None:
        pickle.dumps(call)
        calls.append(call)

    try:
        collect()
    except Exception as exc:
        return calls, f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
    return calls, ""


GENERATORS: dict[str, Callable[[Callable[..., Any], int, int], tuple[list[Call], str]]] = {
    "ours": ours,
    "hypothesis": hyp,
}


# ---------------------------------------------------------------------------- measurement


@dataclass
class Figures:
    inputs: int = 0
    gen_seconds: float = 0.0
    call_seconds: float = 0.0
    raised: int = 0
    distinct: int = 0
    unsupported: list[str] = field(default_factory=list)
    mutants: int = 0
    detected: int = 0
    divergent_inputs: int = 0
    sizes_found: list[int] = field(default_factory=list)
    caught: set[str] = field(default_factory=set)


@dataclass
class ShrinkFigures:
    pairs: int = 0
    ours_sizes: list[int] = field(default_factory=list)
    ours_rounds: list[int] = field(default_factory=list)
    ours_evals: list[int] = field(default_factory=list)
    found_sizes: list[int] = field(default_factory=list)
    hyp_sizes: list[int] = field(default_factory=list)
    hyp_evals: list[int] = field(default_factory=list)
    hyp_missed: int = 0
    paired: list[tuple[int, int | None]] = field(default_factory=list)
    ours_seconds: float = 0.0
    hyp_seconds: float = 0.0


def diverges(base: Callable[..., Any], cand: Callable[..., Any], call: Call) -> bool:
    return agree(outcome(base, call), outcome(cand, call)) is not None


def shrink_ours(
    base: Callable[..., Any], cand: Callable[..., Any], call: Call
) -> tuple[Call, int, int]:
    best, rounds, evals = call, 0, 0
    for _ in range(shrink.MAX_ROUNDS):
        calls = shrink.variants(*best)
        if not calls:
            break
        rounds += 1
        found = None
        for c in calls:  # production runs them all in one child pair; the first that diverges
            evals += 1
            if diverges(base, cand, c):
                found = c
                break
        if found is None:
            break
        best = found
    return best, rounds, evals


def shrink_hyp(
    base: Callable[..., Any], cand: Callable[..., Any], seed: int
) -> tuple[Call | None, int]:
    evals = 0

    def predicate(call: Call) -> bool:
        nonlocal evals
        evals += 1
        return diverges(base, cand, call)

    try:
        found = hypothesis.find(
            call_strategy(base),
            predicate,
            settings=settings(SETTINGS, max_examples=1000, phases=[Phase.generate, Phase.shrink]),
            random=__import__("random").Random(seed),
        )
    except (hypothesis.errors.NoSuchExample, Exception):
        return None, evals
    return found, evals


def bench_module(
    name: str, n: int, limit: int, seed: int, figures: dict[str, Figures], sh: ShrinkFigures
) -> None:
    source = MODULES[name].read_text()
    base = load(name, source)
    funcs = public_functions(base)
    drawn: dict[str, dict[str, list[Call]]] = {g: {} for g in GENERATORS}
    for g, make in GENERATORS.items():
        fig = figures[g]
        for fn in funcs:
            start = time.perf_counter()
            calls, why = make(getattr(base, fn), n, seed)
            gen = time.perf_counter() - start
            if g == "ours":  # its draw loop also ran each call once (to learn): not generation
                t0 = time.perf_counter()
                for c in calls:
                    outcome(getattr(base, fn), c)
                gen -= time.perf_counter() - t0
            fig.gen_seconds += max(gen, 0.0)
            if not calls:
                fig.unsupported.append(f"{name}.{fn}: {why}")
            drawn[g][fn] = calls
            outs = [outcome(getattr(base, fn), c) for c in calls]
            fig.inputs += len(calls)
            fig.raised += sum("x" in o for o in outs)
            fig.distinct += len({repr(o) for o in outs})
    for m in mutants(source, limit, seed):
        try:
            cand = load(name, m.source, f"_mutant{m.index}")
        except Exception:
            continue
        for g in GENERATORS:
            figures[g].mutants += 1
        for g in GENERATORS:
            fig = figures[g]
            hit = False
            for fn in funcs:
                start = time.perf_counter()
                divergent = [
                    c for c in drawn[g][fn] if diverges(getattr(base, fn), getattr(cand, fn), c)
                ]
                fig.call_seconds += time.perf_counter() - start
                fig.divergent_inputs += len(divergent)
                if not divergent:
                    continue
                hit = True
                smallest = min(divergent, key=lambda c: len(call_text(c)))
                fig.sizes_found.append(len(call_text(smallest)))
                if g != "ours":
                    continue
                sh.pairs += 1
                t0 = time.perf_counter()
                best, rounds, evals = shrink_ours(getattr(base, fn), getattr(cand, fn), smallest)
                sh.ours_seconds += time.perf_counter() - t0
                sh.found_sizes.append(len(call_text(smallest)))
                sh.ours_sizes.append(len(call_text(best)))
                sh.ours_rounds.append(rounds)
                sh.ours_evals.append(evals)
                t0 = time.perf_counter()
                found, hevals = shrink_hyp(getattr(base, fn), getattr(cand, fn), seed)
                sh.hyp_seconds += time.perf_counter() - t0
                sh.hyp_evals.append(hevals)
                size = None if found is None else len(call_text(found))
                sh.paired.append((len(call_text(best)), size))
                if found is None:
                    sh.hyp_missed += 1
                else:
                    sh.hyp_sizes.append(len(call_text(found)))
            fig.detected += hit
            if hit:
                fig.caught.add(f"{name}:{m.index}")


def _median(values: list[int]) -> str:
    return f"{statistics.median(values):g}" if values else "-"


def report(figures: dict[str, Figures], sh: ShrinkFigures, n: int) -> None:
    print(f"\nGeneration ({n} inputs per function asked)")
    print(f"{'':12}{'inputs':>8}{'us/input':>10}{'raise %':>9}{'distinct':>10}"
          f"{'detected':>12}{'div/s':>9}{'found size':>12}  unsupported")  # fmt: skip
    for g, f in figures.items():
        per = 1e6 * f.gen_seconds / f.inputs if f.inputs else math.nan
        rate = f.divergent_inputs / (f.gen_seconds + f.call_seconds or 1)
        print(f"{g:12}{f.inputs:>8}{per:>10.1f}{100 * f.raised / max(f.inputs, 1):>9.1f}"
              f"{f.distinct:>10}{f'{f.detected}/{f.mutants}':>12}{rate:>9.0f}"
              f"{_median(f.sizes_found):>12}  {len(f.unsupported)}")  # fmt: skip
        for u in f.unsupported:
            print(f"    unsupported by {g}: {u}")
    a, b = figures["ours"].caught, figures["hypothesis"].caught
    print(f"mutants detected only by ours: {len(a - b)}, only by hypothesis: {len(b - a)}")
    print(f"\nShrinking ({sh.pairs} divergent (mutant, function) pairs found by ours)")
    print(f"  sampling's counterexample: median size {_median(sh.found_sizes)}")
    print(f"  ours:       median size {_median(sh.ours_sizes)}, rounds (child pairs) median "
          f"{_median(sh.ours_rounds)} max {max(sh.ours_rounds, default=0)}, evaluations median "
          f"{_median(sh.ours_evals)}, in-process {sh.ours_seconds:.2f}s")  # fmt: skip
    print(f"  hypothesis: median size {_median(sh.hyp_sizes)} (missed {sh.hyp_missed}), "
          f"sequential evaluations (child pairs) median {_median(sh.hyp_evals)} max "
          f"{max(sh.hyp_evals, default=0)}, in-process {sh.hyp_seconds:.2f}s")  # fmt: skip
    pairs = [(o, h) for o, h in sh.paired if h is not None]
    print(f"  paired: hypothesis smaller on {sum(h < o for o, h in pairs)}, equal on "
          f"{sum(h == o for o, h in pairs)}, larger on {sum(h > o for o, h in pairs)}, "
          f"no counterexample on {sh.hyp_missed} of {sh.pairs}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--mutants", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--modules", default=",".join(MODULES))
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    warnings.simplefilter("ignore")  # the targets warn on odd inputs: not a measurement
    sys.setrecursionlimit(3000)
    figures = {g: Figures() for g in GENERATORS}
    sh = ShrinkFigures()
    for name in args.modules.split(","):
        before = (figures["ours"].detected, figures["hypothesis"].detected)
        bench_module(name, args.n, args.mutants, args.seed, figures, sh)
        print(f"{name}: detected ours {figures['ours'].detected - before[0]}, hypothesis "
              f"{figures['hypothesis'].detected - before[1]}", flush=True)  # fmt: skip
    report(figures, sh, args.n)


with contextlib.suppress(Exception):
    importlib.import_module("numpy")  # imported once up front: not charged to a generator

if __name__ == "__main__":
    main()
