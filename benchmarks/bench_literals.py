"""Share of generated inputs that reach a return, with and without the module's literals.

For every module-level function of the given modules that the generator supports, draw the
same number of inputs twice from the same seed (once with `inputs.module_literals`, once
with none), call the function on each (one second at most per call, output discarded) and
count the calls that returned. Captured calls and docstring calls are left out on purpose:
this is the case the literals are for (no test captured a call).

    python benchmarks/bench_literals.py --path /tmp/tabulate --path /tmp/inflection \
        tabulate inflection
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import signal
import sys
from typing import Any

from pytest_orchestrator.phases.montecarlo import inputs


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Timeout


def returned_share(func: Any, n: int, *, literals: bool) -> float | None:
    try:
        gen = inputs.Generator(func, inputs.rng_for(2024, func.__qualname__))
    except (inputs.Unsupported, TypeError, ValueError):
        return None
    if not literals:
        gen.literals = inputs.Literals({}, [], [])
    returned = 0
    for _ in range(n):
        try:
            args, kwargs = gen.draw()
        except Exception:
            continue
        ok = False
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        try:
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                func(*args, **kwargs)
            ok = True
        except _Timeout:
            pass
        except Exception:
            pass
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        gen.note(ok)
        if ok:
            gen.learn(args, kwargs)
            returned += 1
    return returned / n


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("modules", nargs="+")
    parser.add_argument("--path", action="append", default=[])
    parser.add_argument("-n", type=int, default=300)
    args = parser.parse_args()
    sys.path[:0] = args.path
    signal.signal(signal.SIGALRM, _alarm)
    print("| module | functions | mostly raising without literals | returned: without | with |")
    print("|---|---|---|---|---|")
    for name in args.modules:
        module = importlib.import_module(name)
        rows = []
        for fname, func in sorted(vars(module).items()):
            if not inspect.isfunction(func) or func.__module__ != module.__name__:
                continue
            without = returned_share(func, args.n, literals=False)
            if without is None:
                continue
            with_ = returned_share(func, args.n, literals=True)
            rows.append((fname, without, with_ or 0.0))
        raising = [r for r in rows if r[1] < 0.5]
        print(
            f"| {name} | {len(rows)} | {len(raising)} | "
            f"{mean([r[1] for r in raising]):.0%} | {mean([r[2] for r in raising]):.0%} |"
        )


if __name__ == "__main__":
    main()
