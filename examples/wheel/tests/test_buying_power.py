"""Buying power of the two legs, the Reg T margin comparison, and budget limits."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from wheel_sizing import (
    CONTRACT_MULTIPLIER,
    available_buying_power,
    cash_secured_put_requirement,
    covered_call_capacity,
    covered_call_shares,
    max_contracts_for_budget,
    naked_put_margin_requirement,
)


def test_cash_secured_put_reserves_the_assignment_cost() -> None:
    assert cash_secured_put_requirement(47.5, 3) == 47.5 * 100 * 3 == 14_250.0
    assert cash_secured_put_requirement(47.5, 0) == 0.0


def test_covered_calls_need_round_lots() -> None:
    assert CONTRACT_MULTIPLIER == 100
    assert covered_call_shares(3) == 300
    assert covered_call_capacity(300) == 3
    assert covered_call_capacity(299) == 2  # an odd lot cannot be covered
    assert covered_call_capacity(0) == 0


@pytest.mark.parametrize(
    ("spot", "strike", "premium", "expected"),
    [
        # 5 OTM: max(0.20*50 - 5, 0.10*45) = 5.0, plus premium 0.50
        (50.0, 45.0, 0.50, 550.0),
        # at the money: max(10, 5) = 10, plus premium 2
        (50.0, 50.0, 2.00, 1_200.0),
        # far OTM: the 10 %-of-strike minimum applies, max(20 - 50, 5) = 5
        (100.0, 50.0, 0.10, 510.0),
    ],
)
def test_naked_put_margin_known_values(
    spot: float, strike: float, premium: float, expected: float
) -> None:
    assert naked_put_margin_requirement(spot, strike, premium) == pytest.approx(expected)
    assert naked_put_margin_requirement(spot, strike, premium, 4) == pytest.approx(4 * expected)


def test_margin_is_cheaper_than_cash_securing_an_otm_put() -> None:
    assert naked_put_margin_requirement(50.0, 47.5, 0.8) < cash_secured_put_requirement(47.5)


@pytest.mark.parametrize(
    ("budget", "strike", "expected"),
    [
        (14_250.0, 47.5, 3),
        (14_249.99, 47.5, 2),  # a cent short of three contracts
        (4_749.0, 47.5, 0),
        (0.0, 47.5, 0),
        (-1.0, 47.5, 0),
    ],
)
def test_max_contracts_for_budget(budget: float, strike: float, expected: int) -> None:
    assert max_contracts_for_budget(budget, strike) == expected


@pytest.mark.parametrize("budget", [1_000.0, 9_999.0, 50_000.0, 123_456.78])
@pytest.mark.parametrize("strike", [7.5, 33.0, 47.5, 212.5])
def test_max_contracts_fill_but_never_exceed_the_budget(budget: float, strike: float) -> None:
    n = max_contracts_for_budget(budget, strike)
    assert cash_secured_put_requirement(strike, n) <= budget
    assert cash_secured_put_requirement(strike, n + 1) > budget


def test_available_buying_power_under_a_portfolio_limit() -> None:
    assert available_buying_power(100_000.0, 0.30) == pytest.approx(30_000.0)
    assert available_buying_power(100_000.0, 0.30, bp_in_use=10_000.0) == pytest.approx(20_000.0)
    assert available_buying_power(100_000.0, 0.30, bp_in_use=45_000.0) == 0.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: cash_secured_put_requirement(0.0, 1),
        lambda: cash_secured_put_requirement(50.0, -1),
        lambda: covered_call_capacity(-100),
        lambda: naked_put_margin_requirement(50.0, 45.0, -0.1),
        lambda: available_buying_power(-1.0, 0.3),
        lambda: available_buying_power(100_000.0, 0.0),
        lambda: available_buying_power(100_000.0, 0.3, bp_in_use=-1.0),
        lambda: max_contracts_for_budget(10_000.0, 0.0),
    ],
    ids=[
        "zero-strike",
        "negative-contracts",
        "negative-shares",
        "negative-premium",
        "negative-account",
        "zero-bp-fraction",
        "negative-bp-in-use",
        "zero-strike-budget",
    ],
)
def test_invalid_inputs_are_rejected(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        call()
