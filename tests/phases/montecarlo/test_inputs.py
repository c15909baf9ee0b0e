"""Inputs drawn from type hints, defaults and docstrings, reproducible from the seed."""

from __future__ import annotations

import dataclasses
import enum
from typing import Literal

import numpy as np
import pytest
from numpy.typing import NDArray

from pytest_orchestrator.phases.montecarlo.inputs import (
    Generator,
    Unsupported,
    docstring_calls,
    draw_value,
    rng_for,
)


class Side(enum.Enum):
    PUT = "put"
    CALL = "call"


@dataclasses.dataclass(frozen=True)
class Limits:
    cap: float = 0.25
    lots: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.cap <= 1:
            raise ValueError("cap")


def sized(
    win_prob: float,
    ratio: float,
    side: Side,
    limits: Limits,
    mode: Literal["a", "b"],
    prices: NDArray[np.float64],
    tags: list[str],
    cap: float = 0.25,
) -> float:
    """>>> sized(0.6, 1.5, Side.PUT, Limits(), 'a', None, [])"""
    return 0.0


def test_same_seed_same_inputs() -> None:
    """The seed and the function's name fix every draw."""
    a = [repr(Generator(sized, rng_for(7, "m.sized")).draw()) for _ in range(20)]
    b = [repr(Generator(sized, rng_for(7, "m.sized")).draw()) for _ in range(20)]
    c = [repr(Generator(sized, rng_for(8, "m.sized")).draw()) for _ in range(20)]
    assert a == b
    assert a != c


def test_each_hint_gets_a_value_of_its_type() -> None:
    """Enums, dataclasses (validated), Literals, arrays and lists come out typed."""
    gen = Generator(sized, rng_for(1, "x"))
    for _ in range(50):
        args, _ = gen.draw()
        assert isinstance(args[2], Side)
        assert isinstance(args[3], Limits)
        assert args[4] in ("a", "b")
        assert isinstance(args[5], np.ndarray)
        assert all(isinstance(t, str) for t in args[6])


def test_edge_cases_are_drawn() -> None:
    """Zero, NaN and infinities come up among float draws."""
    rng = rng_for(3, "edges")
    seen = [draw_value(float, rng) for _ in range(2000)]
    assert 0.0 in seen
    assert any(v != v for v in seen)
    assert float("inf") in seen


def test_learning_steers_draws_into_the_valid_domain() -> None:
    """Values from calls that did not raise come back, so valid draws become common."""

    def f(p: float) -> float:
        return p

    gen = Generator(f, rng_for(1, "f"))
    gen.learn((0.123456,), {})
    drawn = [gen.draw()[0][0] for _ in range(200)]
    assert sum(1 for v in drawn if v == pytest.approx(0.123456, rel=0.3)) > 50


def test_docstring_calls_are_taken_literally() -> None:
    """'>>> f(1, x=2.5)' becomes an input; non-literal arguments are left out."""

    def f(a: int, x: float = 0.0) -> float:
        """Example.

        >>> f(1, x=2.5)
        >>> f(len('abc'))
        """
        return a + x

    assert docstring_calls(f) == [((1,), {"x": 2.5})]


def test_user_strategy_wins_over_the_hint() -> None:
    """A strategy registered for a type is used for it."""
    value = draw_value(Limits, rng_for(1, "s"), {Limits: lambda rng: Limits(cap=0.5)})
    assert value == Limits(cap=0.5)


def test_callable_parameters_are_unsupported() -> None:
    """No generator for callables: the function will be skipped with this reason."""
    from collections.abc import Callable

    with pytest.raises(Unsupported, match="callable"):
        draw_value(Callable[[int], int], rng_for(1, "c"))


class Plain:
    def __init__(self, qty: int, label: str = "x") -> None:
        self.qty = qty
        self.label = label


def test_plain_classes_are_built_from_their_init_hints() -> None:
    """A class that is neither a dataclass nor a model is built through its __init__."""
    value = draw_value(Plain, rng_for(2, "plain"))
    assert isinstance(value, Plain)
    assert isinstance(value.qty, int)
