"""Inputs from the module's own literals: a function that needs a format name from a dict of
formats raises on every random string, and returns on the dict's keys."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_orchestrator.phases.montecarlo import inputs
from pytest_orchestrator.phases.montecarlo.inputs import Generator, module_literals, rng_for

FORMATS = '''\
"""Table formats, looked up by name."""

FORMATS = {"plain": "{}", "grid": "|{}|", "pipe": "| {} |"}
WIDTH = 12
ALIGNS = ("left", "right")


def render(value: float, fmt: str) -> str:
    """Render ``value`` in a named format."""
    return FORMATS[fmt].format(value)


def aligned(text, how="left"):
    if how not in ALIGNS:
        raise ValueError(f"unknown alignment {how!r}")
    if how == "right":
        return text.rjust(WIDTH)
    return text.ljust(WIDTH)


def colour(name):
    if name == "red":
        return 31
    raise KeyError(name)
'''


@pytest.fixture
def module(tmp_path: Path) -> Iterator[ModuleType]:
    path = tmp_path / "tableformats.py"
    path.write_text(FORMATS)
    spec = importlib.util.spec_from_file_location("tableformats_under_test", path)
    assert spec is not None
    assert spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded
    spec.loader.exec_module(loaded)
    yield loaded
    del sys.modules[spec.name]
    inputs._module_cache.pop(spec.name, None)


def returned_share(func: Callable[..., Any], *, literals: bool, n: int = 300) -> float:
    """Draw ``n`` calls the way a sampling child does (each outcome noted) and count the
    calls that returned."""
    gen = Generator(func, rng_for(2024, func.__name__))
    if not literals:
        gen.literals = inputs.Literals({}, [], [])
    returned = 0
    for _ in range(n):
        args, kwargs = gen.draw()
        try:
            func(*args, **kwargs)
        except Exception:
            gen.note(False)
            continue
        gen.note(True)
        gen.learn(args, kwargs)
        returned += 1
    return returned / n


def test_the_literals_nearest_each_parameter(module: ModuleType) -> None:
    render = module_literals(module.render)
    assert render.params == {"fmt": ["plain", "grid", "pipe"]}
    aligned = module_literals(module.aligned)
    assert aligned.params["how"] == ["left", "right"]
    assert set(aligned.function) == {"left", "right", 12}
    assert module_literals(module.colour).params == {"name": ["red"]}
    everything = render.module
    assert {"plain", "left", "right", "red", 12} <= set(everything)
    assert not any("Render" in str(s) or "unknown" in str(s) for s in everything)  # no prose


@pytest.mark.parametrize("name", ["render", "aligned", "colour"])
def test_literals_raise_the_share_of_samples_reaching_a_return(
    module: ModuleType, name: str
) -> None:
    func = getattr(module, name)
    without = returned_share(func, literals=False)
    with_literals = returned_share(func, literals=True)
    assert with_literals > without + 0.3, (without, with_literals)


def test_a_module_without_source_has_no_literals() -> None:
    assert not module_literals(len)


def test_a_container_or_callable_parameter_takes_no_scalar_literal(module: ModuleType) -> None:
    import inspect

    def f(values: list[float], callback: Callable[[int], int], name: str | None = None) -> None:
        pass

    gen = Generator(f, rng_for(1, "f"))
    gen.literals = module_literals(module.render)
    params = {p.name: p for p in inspect.signature(f).parameters.values()}
    assert gen.literals_for(params["values"]) == []
    assert gen.literals_for(params["callback"]) == []
    assert "plain" in gen.literals_for(params["name"])
