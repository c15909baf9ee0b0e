"""The Monte Carlo child: `MonteCarloContext` and the entry point ``python -m`` starts.

A child runs one revision's tree, never both (base and candidate code must not share an
interpreter). The parent (`pytest_orchestrator.phases.montecarlo.phase`) starts it with cwd = the
tree, a scrubbed environment and its own process group, and kills the group at the cap::

    python -m pytest_orchestrator.phases.montecarlo.child.simulation simulate --side base \\
        --seed 7 --seconds 9 --out r.json
    python -m pytest_orchestrator.phases.montecarlo.child.simulation sample --side base \\
        --seed 7 --spec s.json --out o.jsonl

``simulate`` loads the tree's root ``conftest.py`` the one way every part of a run does
(`pytest_orchestrator.hookspecs.child_hooks`), calls
``pytest_orchestrator_montecarlo(mc=ctx)`` and writes builtins JSON. ``sample`` runs the
differential sampler (`pytest_orchestrator.phases.montecarlo.child.sampling`).

Reproducibility: both sides get the same seed, and the candidate *replays* every answer the
base gave to ``mc.samples(n)`` and ``mc.should_stop()``, so a simulation that stopped early on
the base (time, memory) draws exactly as many samples on the candidate.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from pytest_orchestrator.hookspecs import child_hooks
from pytest_orchestrator.repo.files import atomic_write

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np

Side = Literal["base", "candidate"]
Decision = list[Any]
"""``["samples", n, answer]`` or ``["should_stop", answer]``, as JSON."""

SOFT_RATIO: Final = 0.60
"""Memory ratio at which ``should_stop()`` turns true and ``samples(n)`` shrinks; the gauge
stops children at the hard threshold (0.70), so simulations get a chance to stop cleanly."""


@dataclass
class MonteCarloContext:
    """What a ``pytest_orchestrator_montecarlo`` implementation receives as ``mc``."""

    rng: np.random.Generator
    """Seeded identically on both sides: draw every random number from it."""
    seed: int
    side: Side
    """``"base"`` or ``"candidate"``."""
    deadline: float
    """`time.monotonic` instant after which ``should_stop()`` is true (on the base side)."""
    scale: float = 1.0
    """Factor ``samples(n)`` applies, e.g. when Optimise shares the cap among grid points."""
    params: dict[str, Any] = field(default_factory=dict)
    """The grid point being evaluated by Optimise (empty otherwise)."""
    replay: list[Decision] | None = None
    """The base side's decisions, replayed on the candidate side."""
    decisions: list[Decision] = field(default_factory=list)
    """Every answer given, in order (recorded for the candidate's replay)."""
    replay_broken: str = ""
    """Why replay stopped (the candidate asked something the base did not)."""
    pressure: Callable[[], float | None] = field(default=lambda: _shared_ratio())

    def samples(self, n: int) -> int:
        """How many of the ``n`` samples you would like to draw: fewer under time or memory
        pressure, never fewer than 1."""
        replayed = self._replayed("samples", n)
        if replayed is not None:
            return int(replayed)
        answer = max(1, int(n * self.scale))
        ratio = self.pressure()
        if ratio is not None and ratio >= SOFT_RATIO:
            answer = max(1, answer // 4)
        self.decisions.append(["samples", n, answer])
        return answer

    def time_left(self) -> float:
        """Seconds left before the simulation should wrap up."""
        return max(0.0, self.deadline - time.monotonic())

    def should_stop(self) -> bool:
        """True once the deadline has passed or memory pressure is high: stop drawing."""
        replayed = self._replayed("should_stop", None)
        if replayed is not None:
            return bool(replayed)
        ratio = self.pressure()
        answer = self.time_left() <= 0.0 or (ratio is not None and ratio >= SOFT_RATIO)
        self.decisions.append(["should_stop", answer])
        return answer

    def _replayed(self, kind: str, n: int | None) -> Any:
        if self.replay is None or self.replay_broken:
            return None
        if not self.replay:
            self.replay_broken = f"the candidate asked {kind}() more often than the base"
            return None
        head = self.replay[0]
        if head[0] != kind or (kind == "samples" and head[1] != n):
            self.replay_broken = (
                f"the candidate asked {kind}({n or ''}) where the base asked {head}"
            )
            return None
        self.replay.pop(0)
        self.decisions.append(head)
        return head[-1]


def _shared_ratio() -> float | None:
    """The gauge's latest mem_ratio from its shared record, or None without a gauge."""
    if "PYTEST_ORCHESTRATOR_PRESSURE" not in os.environ:
        return None
    try:
        from pytest_orchestrator.guard import pressure
    except ImportError:  # the gauge is optional in a child
        return None
    sample = pressure.read_shared()
    return None if sample is None else float(sample.ratio)


# ---------------------------------------------------------------------------- conftest hooks


def normalise_results(raw: Sequence[Any] | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Flatten the hook's per-implementation lists into SimulationResult dicts (builtins)."""
    from pydantic import BaseModel, ValidationError

    from pytest_orchestrator.model import SimulationResult

    out: list[dict[str, Any]] = []
    errors: list[str] = []
    for contribution in raw or []:
        if contribution is None:
            continue
        items = [contribution] if isinstance(contribution, (dict, BaseModel)) else contribution
        for item in items:
            data = item.model_dump() if isinstance(item, BaseModel) else item
            try:
                result = SimulationResult.model_validate(data)
            except ValidationError as exc:
                errors.append(f"invalid simulation result {str(data)[:200]}: {exc}")
                continue
            out.append(result.model_dump(mode="json"))
    names = [r["name"] for r in out]
    for name in {n for n in names if names.count(n) > 1}:
        errors.append(f"simulation name {name!r} is used more than once; metrics may mix")
    return out, errors


def simulate(
    tree: Path,
    side: Side,
    seed: int,
    seconds: float,
    scale: float = 1.0,
    params: dict[str, Any] | None = None,
    replay: list[Decision] | None = None,
) -> dict[str, Any]:
    """Run the tree's simulations in this process and return the builtins record."""
    import numpy as np

    start = time.monotonic()
    pm, errors = child_hooks(tree)
    ctx = MonteCarloContext(
        rng=np.random.default_rng(seed),
        seed=seed,
        side=side,
        deadline=start + seconds,
        scale=scale,
        params=dict(params or {}),
        replay=list(replay) if replay is not None else None,
    )
    results: list[dict[str, Any]] = []
    if not errors:
        try:
            raw = pm.hook.pytest_orchestrator_montecarlo(mc=ctx)
        except Exception:
            errors.append(f"pytest_orchestrator_montecarlo raised:\n{_short_tb()}")
        else:
            results, bad = normalise_results(raw)
            errors += bad
    if ctx.replay_broken:
        errors.append(f"replay of the base side's decisions broke: {ctx.replay_broken}")
    return {
        "side": side,
        "seed": seed,
        "results": results,
        "decisions": ctx.decisions,
        "errors": errors,
        "seconds": round(time.monotonic() - start, 4),
        "peak_rss": _peak_rss(),
    }


def fresh_imports(tree: Path) -> None:
    """Compile the tree's modules from source on every import, never from a ``.pyc``.

    A same-second, same-size edit can leave a stale ``.pyc`` that Python trusts; the
    candidate side must run the edited source. Modules outside the tree (numpy, pydantic,
    ...) keep their bytecode caches, so a child starts in under a second rather than
    recompiling its dependencies (which a fresh ``PYTHONPYCACHEPREFIX`` alone would force).
    """
    import importlib.machinery as machinery

    root = tree.resolve()

    class _SourceLoader(machinery.SourceFileLoader):
        def get_code(self, fullname: str) -> Any:
            source = self.get_data(self.path)
            return self.source_to_code(source, self.path)

    def hook(entry: str) -> Any:
        try:
            inside = Path(entry or ".").resolve().is_relative_to(root)
        except (OSError, ValueError):
            inside = False
        if not inside:
            raise ImportError("outside the tree")  # the next path hook takes it
        return machinery.FileFinder(
            entry,
            (_SourceLoader, machinery.SOURCE_SUFFIXES),
            (machinery.ExtensionFileLoader, machinery.EXTENSION_SUFFIXES),
        )

    sys.path_hooks.insert(0, hook)
    sys.path_importer_cache.clear()


def _peak_rss() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _short_tb(limit: int = 3000) -> str:
    return traceback.format_exc()[-limit:]


def write_json(path: Path, data: Any) -> None:
    """Write builtins JSON atomically (the parent may read after a kill)."""
    atomic_write(path, json.dumps(data, allow_nan=True))


def is_close(a: float, b: float, rtol: float, atol: float) -> bool:
    """Float equality within tolerance where NaN equals NaN and infinities equal themselves."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


# ---------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_orchestrator.phases.montecarlo.child.simulation"
    )
    parser.add_argument("mode", choices=["simulate", "sample"])
    parser.add_argument("--side", choices=["base", "candidate"], required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=10.0, help="simulate: soft budget")
    parser.add_argument("--until", type=float, help="sample: monotonic instant to stop drawing")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--params", default="{}", help="JSON object: the grid point")
    parser.add_argument("--replay", type=Path, help="the base side's record (candidate only)")
    parser.add_argument("--spec", type=Path, help="sample mode: the functions and inputs")
    args = parser.parse_args(argv)
    from pytest_orchestrator.guard.containment import start_watchdog

    start_watchdog()  # this child ends when the orchestrator does, even after a kill -9
    tree = Path.cwd()
    if str(tree) not in sys.path[:1]:
        sys.path.insert(0, str(tree))
    from pytest_orchestrator.repo.layout import source_roots

    for k, root in enumerate(source_roots(tree), start=1):  # a src/ layout, as configured
        sys.path.insert(k, str(tree / root))
    fresh_imports(tree)
    if args.mode == "sample":
        from pytest_orchestrator.phases.montecarlo.child import sampling

        until = args.until if args.until is not None else time.monotonic() + args.seconds
        return sampling.child_main(args.spec, args.side, args.seed, args.out, until)
    replay = None
    if args.replay is not None:
        replay = json.loads(args.replay.read_text(encoding="utf-8")).get("decisions")
    record = simulate(
        tree, args.side, args.seed, args.seconds, args.scale, json.loads(args.params), replay
    )
    write_json(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
