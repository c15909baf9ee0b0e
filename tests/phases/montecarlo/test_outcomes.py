"""Encoding what a call did, and deciding whether two of those agree."""

from __future__ import annotations

import dataclasses
import enum
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_orchestrator.phases.montecarlo.outcomes import agree, encode


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Colour(enum.Enum):
    RED = 1


def test_numpy_arrays_compare_by_dtype_shape_and_values() -> None:
    """Equal arrays agree; a changed dtype, shape or value does not."""
    a = np.array([[1.0, 2.0], [3.0, np.nan]])
    assert agree(encode(a), encode(a.copy())) is None
    assert agree(encode(a), encode(a.astype(np.float32))) is not None
    assert agree(encode(a), encode(a.reshape(4))) is not None
    assert agree(encode(a), encode(a + 1e-3)) is not None


def test_floats_agree_within_tolerance_and_nan_equals_nan() -> None:
    """Last-bit differences and NaN == NaN are agreement; a real change is not."""
    assert agree(encode(0.1 + 0.2), encode(0.3)) is None
    assert agree(encode(float("nan")), encode(float("nan"))) is None
    assert agree(encode(float("inf")), encode(float("-inf"))) is not None
    assert agree(encode(1.0), encode(1.0001)) == "value: 1.0 != 1.0001"


def test_where_they_differ_is_named() -> None:
    """The difference is located inside containers and objects."""
    where = agree(encode({"a": [1, Point(1.0, 2.0)]}), encode({"a": [1, Point(1.0, 3.0)]}))
    assert where is not None
    assert ".y" in where


def test_a_renamed_class_is_the_same_class() -> None:
    """With the plan's renames, OldName objects agree with NewName objects."""
    base = {"object": "pkg.Old", "fields": {"x": 1}}
    cand = {"object": "pkg.New", "fields": {"x": 1}}
    assert agree(base, cand) is not None
    assert agree(base, cand, rename=lambda s: s.replace("Old", "New")) is None


def test_unhashable_unpicklable_and_address_reprs_are_encoded_stably() -> None:
    """Locks, lambdas and objects whose repr holds an address encode the same way twice."""

    def make() -> object:
        return {"lock": threading.Lock(), "f": lambda: 1, "o": object(), "e": Colour.RED}

    assert agree(encode(make()), encode(make())) is None


def test_sets_and_dicts_ignore_order() -> None:
    """Iteration order of sets and dicts is not behaviour."""
    assert agree(encode({3, 1, 2}), encode({2, 3, 1})) is None
    assert agree(encode({"b": 1, "a": 2}), encode({"a": 2, "b": 1})) is None


def test_bool_is_not_int() -> None:
    """True and 1 are different answers."""
    assert agree(encode(True), encode(1)) is not None


@pytest.mark.parametrize("size", [0, 10, 10_000])
def test_long_containers_are_truncated_with_their_length(size: int) -> None:
    """Huge results stay small on the wire but a different length still shows."""
    enc = encode(list(range(size)))
    assert len(enc["list"]) == min(size, 200)
    assert agree(enc, encode(list(range(size + 1)))) is not None


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
def test_every_value_agrees_with_itself(value: object) -> None:
    """Whatever the value, its encoding agrees with a fresh encoding of it."""
    assert agree(encode(value), encode(value)) is None
