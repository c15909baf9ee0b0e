"""calculate_position_size: known values, limits, monotonicity, validation."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from wheel_sizing.buying_power import available_buying_power, cash_secured_put_requirement
from wheel_sizing.sizing import (
    DEFAULT_LIMITS,
    PositionPlan,
    SizingLimits,
    calculate_position_size,
    plan_cash_secured_put,
)

# A $50 stock, the 47.5 put for 0.80 with 80 % odds of expiring worthless and an average
# net loss of 2.00 when it does not: b = 0.4, f* = 0.8 - 0.2 / 0.4 = 0.3.
PUT: dict[str, Any] = {
    "account_value": 250_000.0,
    "strike": 47.5,
    "premium": 0.80,
    "win_prob": 0.80,
    "avg_loss": 2.00,
    "realised_vol": 0.25,
    "target_vol": 0.25,
}


def size(**overrides: Any) -> int:
    return calculate_position_size(**{**PUT, **overrides})


def test_known_value_half_kelly_on_target_vol() -> None:
    # half Kelly 0.15 of 250k = 37,500 of collateral; 37,500 / 4,750 = 7.9 -> 7 contracts
    assert size() == 7


def test_volatility_scaling_shrinks_the_position() -> None:
    # twice the target vol halves the Kelly budget: 18,750 / 4,750 -> 3 contracts
    assert size(realised_vol=0.50) == 3


@pytest.mark.parametrize(
    ("realised_vol", "expected"),
    [
        # scale capped at 1.5, not 5: 0.15 * 1.5 * 250k = 56,250 -> 11 (not 39)
        (0.05, 11),
        # scale floored at 0.25, not 0.125: 0.15 * 0.25 * 250k = 9,375 -> 1 (not 0)
        (2.00, 1),
    ],
)
def test_volatility_scale_is_clipped(realised_vol: float, expected: int) -> None:
    assert size(realised_vol=realised_vol, limits=SizingLimits(max_bp_fraction=1.0)) == expected


def test_returns_a_plain_int() -> None:
    assert type(size()) is int


@pytest.mark.parametrize(
    ("win_prob", "premium", "avg_loss"),
    [
        (0.5, 1.0, 1.0),  # zero edge: p * b == 1 - p
        (0.7, 0.8, 2.0),  # negative edge: 0.7 * 0.4 < 0.3
        (0.0, 0.8, 2.0),  # never wins
    ],
)
def test_no_edge_means_no_contracts(win_prob: float, premium: float, avg_loss: float) -> None:
    assert size(win_prob=win_prob, premium=premium, avg_loss=avg_loss) == 0


def test_kelly_cap_binds_on_a_huge_edge() -> None:
    limits = SizingLimits(kelly_multiplier=1.0, max_bp_fraction=1.0)
    # f* = 0.99 - 0.01 / 10 ~= 0.989, capped at 0.25: 62,500 / 4,750 -> 13
    assert size(win_prob=0.99, premium=5.0, avg_loss=0.5, limits=limits) == 13


def test_buying_power_binds_when_kelly_and_vol_scale_allow_more() -> None:
    limits = SizingLimits(kelly_multiplier=1.0)
    # capped Kelly 0.25 * vol scale 1.5 = 0.375 > 0.30 buying-power limit: 75,000 / 4,750 -> 15
    assert size(win_prob=0.99, premium=5.0, avg_loss=0.5, realised_vol=0.10, limits=limits) == 15


def test_buying_power_in_use_is_respected() -> None:
    assert size(bp_in_use=70_000.0) == 1  # 5,000 of the 75,000 limit left
    assert size(bp_in_use=75_000.0) == 0


_GRID = list(
    itertools.product(
        [10_000.0, 250_000.0, 3_000_000.0],  # account_value
        [4.5, 47.5, 410.0],  # strike
        [0.55, 0.8, 0.97],  # win_prob
        [0.05, 0.4, 0.9],  # realised_vol
        [0.0, 40_000.0],  # bp_in_use
    )
)


@pytest.mark.parametrize("limits", [DEFAULT_LIMITS, SizingLimits(kelly_multiplier=1.0)])
def test_never_exceeds_available_buying_power(limits: SizingLimits) -> None:
    for account, strike, win_prob, vol, used in _GRID:
        premium, avg_loss = 0.03 * strike, 0.06 * strike
        n = calculate_position_size(
            account, strike, premium, win_prob, avg_loss, vol, limits=limits, bp_in_use=used
        )
        assert n >= 0
        budget = available_buying_power(account, limits.max_bp_fraction, used)
        assert cash_secured_put_requirement(strike, n) <= budget
        # ... and never more collateral than the capped, vol-scaled Kelly fraction allows
        assert cash_secured_put_requirement(strike, n) <= (
            limits.kelly_cap * limits.max_vol_scale * account
        )


def _is_monotone(values: list[int], *, increasing: bool) -> bool:
    pairs = list(itertools.pairwise(values))
    return all(a <= b for a, b in pairs) if increasing else all(a >= b for a, b in pairs)


@pytest.mark.parametrize(
    ("name", "grid", "increasing"),
    [
        ("account_value", [10_000.0 * 1.4**k for k in range(20)], True),
        ("win_prob", [0.70 + 0.015 * k for k in range(20)], True),
        ("premium", [0.5 + 0.1 * k for k in range(20)], True),
        ("target_vol", [0.05 * k for k in range(1, 20)], True),
        ("realised_vol", [0.05 * k for k in range(1, 20)], False),
        ("avg_loss", [1.0 + 0.25 * k for k in range(20)], False),
        ("strike", [10.0 + 5.0 * k for k in range(20)], False),
    ],
)
def test_monotone_in_each_input(name: str, grid: list[float], increasing: bool) -> None:
    sizes = [size(**{name: x}) for x in grid]
    assert _is_monotone(sizes, increasing=increasing), sizes
    assert sizes[0] != sizes[-1], "grid too narrow to show the effect"


@pytest.mark.parametrize(
    "overrides",
    [
        {"account_value": -1.0},
        {"account_value": math.inf},
        {"strike": 0.0},
        {"premium": 0.0},
        {"avg_loss": -2.0},
        {"win_prob": 1.2},
        {"realised_vol": 0.0},
        {"target_vol": -0.25},
        {"bp_in_use": -1.0},
    ],
    ids=lambda o: next(iter(o)),
)
def test_invalid_inputs_are_rejected(overrides: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(overrides))):
        size(**overrides)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kelly_multiplier": 0.0},
        {"kelly_cap": 1.5},
        {"min_vol_scale": 2.0, "max_vol_scale": 1.5},
        {"max_bp_fraction": 0.0},
    ],
)
def test_invalid_limits_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SizingLimits(**kwargs)


def test_zero_account_sells_nothing() -> None:
    assert size(account_value=0.0) == 0


def test_position_plan_wraps_the_sizer() -> None:
    plan = plan_cash_secured_put(**PUT)
    assert plan == PositionPlan(contracts=size(), strike=47.5, premium=0.80)
    assert plan.collateral == pytest.approx(7 * 4_750.0)
    assert plan.premium_income == pytest.approx(7 * 80.0)
    assert plan.return_on_collateral == pytest.approx(0.80 / 47.5)
