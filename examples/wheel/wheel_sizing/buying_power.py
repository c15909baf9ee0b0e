"""Buying-power arithmetic for the two legs of the wheel.

Equity options are written on ``CONTRACT_MULTIPLIER`` = 100 shares.  All money amounts are in
account currency; prices (strike, spot, premium) are per share.

* A **cash-secured put** reserves the full assignment cost, ``K * 100 * n``.
* A **covered call** is backed by shares already held: ``n`` calls need ``100 * n`` shares and
  no further buying power.
* A **naked put** in a margin account needs the Reg T / CBOE initial margin instead, which is
  shown for comparison (the wheel in this package always secures its puts with cash).
"""

from __future__ import annotations

import math
from typing import Final

__all__ = [
    "CONTRACT_MULTIPLIER",
    "available_buying_power",
    "cash_secured_put_requirement",
    "covered_call_capacity",
    "covered_call_shares",
    "max_contracts_for_budget",
    "naked_put_margin_requirement",
]

#: Shares delivered per equity option contract.
CONTRACT_MULTIPLIER: Final[int] = 100


def _check_positive(name: str, value: float) -> None:
    if not value > 0.0 or math.isinf(value):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")


def _check_contracts(contracts: int) -> None:
    if contracts < 0:
        raise ValueError(f"contracts must be non-negative, got {contracts!r}")


def cash_secured_put_requirement(strike: float, contracts: int = 1) -> float:
    """Cash reserved to secure ``contracts`` short puts: ``K * 100 * n``.

    Raises:
        ValueError: if ``strike <= 0`` or ``contracts < 0``.
    """
    _check_positive("strike", strike)
    _check_contracts(contracts)
    return strike * CONTRACT_MULTIPLIER * contracts


def covered_call_shares(contracts: int) -> int:
    """Shares that must be held to cover ``contracts`` short calls: ``100 * n``."""
    _check_contracts(contracts)
    return CONTRACT_MULTIPLIER * contracts


def covered_call_capacity(shares: int) -> int:
    """Number of calls that ``shares`` can cover: ``floor(shares / 100)``.

    Odd lots (fewer than 100 leftover shares) cannot be covered and are ignored.
    """
    if shares < 0:
        raise ValueError(f"shares must be non-negative, got {shares!r}")
    return shares // CONTRACT_MULTIPLIER


def naked_put_margin_requirement(
    spot: float, strike: float, premium: float, contracts: int = 1
) -> float:
    """Reg T / CBOE initial margin for ``contracts`` uncovered short puts.

    Per share the requirement is the premium plus the larger of 20 % of the underlying less the
    out-of-the-money amount, and 10 % of the strike::

        req = 100 * n * (premium + max(0.20 * S - max(S - K, 0), 0.10 * K))

    Raises:
        ValueError: if ``spot`` or ``strike`` is not positive, ``premium < 0`` or
            ``contracts < 0``.
    """
    _check_positive("spot", spot)
    _check_positive("strike", strike)
    if premium < 0.0:
        raise ValueError(f"premium must be non-negative, got {premium!r}")
    _check_contracts(contracts)
    out_of_the_money = max(spot - strike, 0.0)
    per_share = premium + max(0.20 * spot - out_of_the_money, 0.10 * strike)
    return per_share * CONTRACT_MULTIPLIER * contracts


def available_buying_power(
    account_value: float, max_bp_fraction: float, bp_in_use: float = 0.0
) -> float:
    """Buying power still available under a portfolio limit.

    The portfolio may commit at most ``max_bp_fraction`` of the account to collateral::

        available = max(max_bp_fraction * account_value - bp_in_use, 0)

    Raises:
        ValueError: if ``account_value < 0``, ``max_bp_fraction`` is outside ``(0, 1]`` or
            ``bp_in_use < 0``.
    """
    if account_value < 0.0:
        raise ValueError(f"account_value must be non-negative, got {account_value!r}")
    if not 0.0 < max_bp_fraction <= 1.0:
        raise ValueError(f"max_bp_fraction must be in (0, 1], got {max_bp_fraction!r}")
    if bp_in_use < 0.0:
        raise ValueError(f"bp_in_use must be non-negative, got {bp_in_use!r}")
    return max(max_bp_fraction * account_value - bp_in_use, 0.0)


def max_contracts_for_budget(budget: float, strike: float) -> int:
    """Largest whole number of cash-secured puts whose collateral fits in ``budget``.

    ``n = floor(budget / (K * 100))``; a budget of zero (or less) gives zero contracts.

    Raises:
        ValueError: if ``strike <= 0``.
    """
    _check_positive("strike", strike)
    if budget <= 0.0:
        return 0
    return math.floor(budget / (strike * CONTRACT_MULTIPLIER))
