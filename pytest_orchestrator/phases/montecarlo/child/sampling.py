"""The sampling child: calls a tree's functions on inputs and streams what they did.

Started by `pytest_orchestrator.phases.montecarlo.differential.Sampler` as ``python -m
pytest_orchestrator.phases.montecarlo.child.simulation sample --spec S --out O``, once per
shard and revision, with cwd = the tree. For each target it imports the function from this tree
(following the plan's renames and moves on the candidate side), gets its inputs (base: captured
calls, docstring calls, then draws from `pytest_orchestrator.phases.montecarlo.inputs`,
learning from calls that did not raise; candidate: the base side's pickled calls, unpickled
through the renames), and calls it once per input on a fresh copy, inside the `Sandbox`, with
stdout dropped, stdin empty and a per-call alarm. One JSON line per sample: the return value
(generators and iterators drained, coroutines awaited) or the raised exception's type, and the
arguments the call mutated, all encoded by `pytest_orchestrator.phases.montecarlo.outcomes`.
The stream is flushed line by line, so the parent can blame a target that began and never
ended.

This module imports nothing heavy itself (no pydantic): a child starts in well under a second.
"""

from __future__ import annotations

import asyncio
import collections.abc as cabc
import contextlib
import inspect
import io
import itertools
import json
import pickle
import signal
import sys
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pytest_orchestrator.phases.montecarlo.child.capture import read_captured
from pytest_orchestrator.phases.montecarlo.inputs import Unsupported
from pytest_orchestrator.phases.montecarlo.sideeffects import Sandbox, SideEffectBlocked

SAMPLE_SECONDS: Final = 1.0
"""A single call taking longer than this is a hang: the function is skipped."""
DETERMINISM_CHECKS: Final = 3
"""The first samples run twice on the base side; different answers mean nondeterminism."""
MAX_HANGS: Final = 3
"""Inputs on which a call runs over `SAMPLE_SECONDS` are dropped; this many skip the function."""
GENERATOR_ITEMS: Final = 1000
"""Items drained from a returned generator or iterator."""
DEFAULT_SAMPLES: Final = 2000


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
    owner: type | None = None
    """The class of the method being sampled (None for a plain function)."""

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
            if self.side == "candidate" and t.get("keywords"):
                func = _renaming_keywords(func, dict(t["keywords"]))
            if self.side == "candidate" and t.get("removed"):
                func = _dropping(func, list(t["removed"]), self._base_params(t))
            end.update(self.sample(tid, func, stream, budget, start))
            end["sources"] = stream.sources
            if self.side == "base":
                path = self.inputs_dir / f"{t['file_id']}.pkl"
                self.inputs_dir.mkdir(parents=True, exist_ok=True)
                path.write_bytes(pickle.dumps(stream.used, protocol=pickle.HIGHEST_PROTOCOL))
                path.with_suffix(".params.json").write_text(json.dumps(_params(func)))
                if not stream.used and not end.get("skip"):
                    end["skip"] = stream.why or "no inputs"
        except _Skip as exc:
            end["skip"] = str(exc)
        end["seconds"] = round(time.monotonic() - start, 4)
        self.emit(end)

    def locate(self, t: dict[str, Any]) -> tuple[Callable[..., Any], str]:
        """The function (or the method, unbound) and where it was found; sets `owner`."""
        name = t["qualname"] if self.side == "base" else t["new_name"]
        modules = [t["module"], *(m for m in t.get("moved_to", []) if m != t["module"])]
        errors = []
        for module in modules:
            try:
                obj: Any = __import__(module, fromlist=["_"])
                holder: Any = None
                for part in name.split("."):
                    holder, obj = obj, getattr(obj, part)
            except Exception as exc:
                errors.append(f"{module}: {type(exc).__name__}: {exc}")
                continue
            if not callable(obj):
                raise _Skip(f"{module}.{name} is not callable")
            self.owner = holder if isinstance(holder, type) else None
            return obj, f"{module}.{name}"
        raise _Skip(f"not found on the {self.side} side ({'; '.join(errors)[:300]})")

    def _base_params(self, t: dict[str, Any]) -> list[str]:
        """The base function's parameter names, in order, as the base side recorded them."""
        path = self.inputs_dir / f"{t['file_id']}.params.json"
        try:
            return list(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise _Skip(f"base signature unreadable: {exc}") from None

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
        from pytest_orchestrator.phases.montecarlo import inputs

        stream = _Inputs(limit=t["samples"], skip=frozenset(t.get("skip", [])))
        stream.fixed += [(b, "captured") for b in read_captured(self.captured_dir, t["file_id"])]
        for call in inputs.docstring_calls(func):
            with contextlib.suppress(Exception):  # unpicklable: the candidate could not replay it
                stream.fixed.append((pickle.dumps(call, pickle.HIGHEST_PROTOCOL), "docstring"))
        try:
            stream.generator = inputs.Generator(
                func, inputs.rng_for(self.seed, t["id"]), self.strategies, owner=self.owner
            )
            stream.sandbox = self.sandbox
        except inputs.Unsupported as exc:
            stream.why = str(exc)
        return stream

    def sample(
        self, tid: str, func: Callable[..., Any], stream: _Inputs, budget: float, start: float
    ) -> dict[str, Any]:
        raised = 0
        n = 0
        hangs = 0
        base = self.side == "base"
        for k, blob in enumerate(stream):
            # the sample's index is its place among the inputs kept for the candidate
            i = len(stream.used) - 1 if base else k
            if base:  # where a child that dies on this input is told to skip it next time
                self.emit({"t": tid, "at": stream.position})
            outcome = self.call(func, blob)
            if base and "timeout" in outcome:
                hangs += 1
                stream.drop_last()  # this input hangs: never replay it on the candidate
                if hangs < MAX_HANGS:
                    continue
                skip = f"hangs: {hangs} calls ran over {SAMPLE_SECONDS}s"
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
        from pytest_orchestrator.phases.montecarlo.outcomes import encode, type_name

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
        except SideEffectBlocked as exc:
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
    limit: int = DEFAULT_SAMPLES
    fixed: list[tuple[bytes, str]] = field(default_factory=list)
    generator: Any = None
    sandbox: Any = None
    """Drawing may run the user's constructors and validators: inside the sandbox too."""
    why: str = ""
    used: list[bytes] = field(default_factory=list)
    skip: frozenset[int] = frozenset()
    """Positions (among all inputs produced) that stalled or crashed an earlier child."""
    stalled: set[bytes] = field(default_factory=set)
    """The inputs at those positions: never run again, wherever they are drawn."""
    dropped: int = 0
    position: int = 0
    """Position of the input last yielded."""
    sources: dict[str, int] = field(default_factory=dict)

    def __iter__(self) -> Iterator[bytes]:
        if self.replay is not None:
            yield from self.replay
            return
        position = 0  # over every input produced, kept or skipped: stable across rounds
        for blob, source in self.fixed[: self.limit]:
            self.position, position = position, position + 1
            if not self._stalled(blob):
                yield self._use(blob, source)
        misses = 0
        while self.generator is not None and len(self.used) < self.limit and misses < 50:
            try:
                with self.sandbox.active() if self.sandbox else contextlib.nullcontext():
                    call = self.generator.draw()
                blob = pickle.dumps(call, pickle.HIGHEST_PROTOCOL)
            except SideEffectBlocked as exc:
                self.why = f"side effect while building inputs: {exc}"
                return
            except Exception as exc:  # Unsupported for this draw, or unpicklable
                misses += 1
                unsupported = isinstance(exc, Unsupported)
                self.why = self.why or (
                    str(exc) if unsupported else f"inputs could not be drawn: {exc}"
                )
                continue
            misses = 0
            self.position, position = position, position + 1
            if self._stalled(blob):
                continue  # it stalled or crashed an earlier child: drawn, never run again
            yield self._use(blob, "generated")

    def _stalled(self, blob: bytes) -> bool:
        """The input at this position stalled or crashed an earlier child, or is equal to one
        that did (a literal of the module, or a doctest's argument, is drawn again and again)."""
        if self.position in self.skip:
            self.stalled.add(blob)
        return blob in self.stalled

    def drop_last(self) -> None:
        """Forget the input just yielded (it hung): it is neither compared nor replayed."""
        self.used.pop()
        self.dropped += 1

    def _use(self, blob: bytes, source: str) -> bytes:
        self.used.append(blob)
        self.sources[source] = self.sources.get(source, 0) + 1
        return blob

    def accept(self, blob: bytes, ok: bool) -> None:
        if self.generator is not None:
            self.generator.note(ok)
        if ok and self.generator is not None:
            with contextlib.suppress(Exception):
                self.generator.learn(*pickle.loads(blob))


def _call_repr(blob: bytes, limit: int = 300) -> str:
    try:
        args, kwargs = pickle.loads(blob)
        parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        text = "(" + ", ".join(parts) + ")"
    except Exception as exc:
        text = f"(<unprintable: {type(exc).__name__}>)"
    return text if len(text) <= limit else text[: limit - 4] + "...)"


def _on_alarm(signum: int, frame: object) -> None:
    raise _SampleTimeout


def child_main(spec_path: Path, side: str, seed: int, out: Path, until: float) -> int:
    """The ``sample`` mode of
    ``python -m pytest_orchestrator.phases.montecarlo.child.simulation``."""
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    loop = asyncio.new_event_loop()  # made before the sandbox: it opens a socket pair
    sandbox = Sandbox()
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


def _renaming_keywords(func: Callable[..., Any], names: dict[str, str]) -> Callable[..., Any]:
    """``func`` called with the base's keyword arguments under the plan's new names."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **{names.get(k, k): v for k, v in kwargs.items()})

    return call


def _params(func: Callable[..., Any]) -> list[str]:
    try:
        return list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return []


def _dropping(
    func: Callable[..., Any], removed: list[str], base_params: list[str]
) -> Callable[..., Any]:
    """``func`` called with the base's arguments less the removed parameters, whether they
    came by keyword or by their position in the base's signature."""
    positions = sorted((base_params.index(p) for p in removed if p in base_params), reverse=True)

    def call(*args: Any, **kwargs: Any) -> Any:
        kept = list(args)
        for i in positions:
            if i < len(kept):
                del kept[i]
        return func(*kept, **{k: v for k, v in kwargs.items() if k not in removed})

    return call


def user_strategies(tree: Path) -> tuple[dict[Any, Callable[[Any], Any]], str]:
    """``{type: callable(rng) -> value}`` from the conftest's
    ``pytest_orchestrator_strategies()``, which takes precedence over hint-based generators.

    Declare it ``@pytest.hookimpl(optionalhook=True)`` so plain pytest runs accept it.
    """
    from pytest_orchestrator.hookspecs import child_hooks

    pm, errors = child_hooks(tree)
    if errors:
        return {}, f"conftest strategies unavailable: {errors[0]}"
    found: dict[Any, Callable[[Any], Any]] = {}
    try:
        contributed = pm.hook.pytest_orchestrator_strategies()
    except Exception as exc:
        return {}, f"conftest strategies unavailable: {type(exc).__name__}: {exc}"
    for each in contributed:
        if not isinstance(each, dict):
            return {}, "pytest_orchestrator_strategies() must return a dict {type: callable(rng)}"
        found.update(each)
    return found, ""
