"""Capture real arguments: a pytest plugin for the base revision's affected tests.

Differential sampling values inputs from the tests above generated ones: they are the
distribution the code is actually used with. The Monte Carlo phase runs the test files that
mention a target, in a child on the base tree, with this plugin::

    python -m pytest -p pytest_orchestrator.phases.montecarlo.child.capture -q <test files>

with ``PYTEST_ORCHESTRATOR_CAPTURE`` naming a JSON spec (targets, output directory). After
collection (the test modules have imported the code) each target function is wrapped
wherever a module holds it (its own module, and every ``from x import f`` copy; a method on
its class, so ``self`` is recorded as the first argument), and each
call's ``(args, kwargs)`` is pickled *before* the call runs, appended to
``<output>/<target>.pkl`` and flushed, so a capture cut short at the cap keeps what it got.
At most `LIMIT` distinct calls per target; unpicklable calls are skipped.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pytest

from pytest_orchestrator.repo.files import is_test_module_name

ENV_VAR: Final = "PYTEST_ORCHESTRATOR_CAPTURE"
LIMIT: Final = 500


class Recorder:
    """Appends one target's distinct calls to its stream."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: set[bytes] = set()
        self.fh = path.open("ab")

    def record(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if len(self.seen) >= LIMIT:
            return
        try:
            blob = pickle.dumps((args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            return
        digest = hashlib.sha1(blob).digest()
        if digest in self.seen:
            return
        self.seen.add(digest)
        pickle.dump(blob, self.fh)
        self.fh.flush()


def wrap(func: Callable[..., Any], recorder: Recorder) -> Callable[..., Any]:
    @functools.wraps(func)
    def captured(*args: Any, **kwargs: Any) -> Any:
        recorder.record(args, kwargs)
        return func(*args, **kwargs)

    captured.__orchestrator_captured__ = True  # type: ignore[attr-defined]
    return captured


def install(spec: dict[str, Any]) -> list[str]:
    """Wrap every target wherever it is held; returns the targets that could not be found."""
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    missing = []
    for target in spec["targets"]:
        owner_name, _, name = target["qualname"].rpartition(".")
        try:
            module = importlib.import_module(target["module"])
            owner: Any = module
            for part in owner_name.split(".") if owner_name else []:
                owner = getattr(owner, part)
            func = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        except Exception:
            missing.append(target["id"])
            continue
        if getattr(func, "__orchestrator_captured__", False) or not callable(func):
            continue  # classmethods and staticmethods are not callables here: not captured
        wrapper = wrap(func, Recorder(out / f"{target['file_id']}.pkl"))
        if isinstance(owner, type):
            setattr(owner, name, wrapper)  # a method: calls record 'self' as the first argument
            continue
        for holder in list(sys.modules.values()):
            namespace = getattr(holder, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for name, value in list(namespace.items()):
                if value is func:
                    namespace[name] = wrapper
    return missing


def pytest_configure(config: pytest.Config) -> None:
    """End this capture run's process group if the orchestrator dies (no-op outside a run)."""
    from pytest_orchestrator.guard.containment import start_watchdog

    start_watchdog()


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    path = os.environ.get(ENV_VAR)
    if not path:
        return
    spec = json.loads(Path(path).read_text(encoding="utf-8"))
    install(spec)


def affected_test_files(tree: Path, names: set[str], limit: int = 20) -> list[str]:
    """Test files of ``tree`` that mention any of ``names``, as paths relative to it."""
    found: list[str] = []
    for path in sorted(tree.rglob("*.py")):
        rel = path.relative_to(tree)
        if any(part.startswith(".") or part in ("node_modules", "venv") for part in rel.parts):
            continue
        if not is_test_module_name(path.name):
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if any(n in text for n in names):
            found.append(rel.as_posix())
            if len(found) >= limit:
                break
    return found


def read_captured(directory: Path, file_id: str) -> list[bytes]:
    """The pickled calls captured for one target, in capture order ([] when none)."""
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
