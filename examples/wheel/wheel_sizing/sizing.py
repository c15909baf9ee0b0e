"""How many cash-secured puts to sell.

The size of a put sale combines three independent views of risk:

1. **Edge** — a fractional, capped Kelly fraction of the account (:mod:`wheel_sizing.kelly`),
   treating the put as a binary bet: win the premium ``c`` with probability ``p``, otherwise
   lose ``L`` per share on average (net of the premium), so the odds are ``b = c / L``.
2. **Regime** — that fraction is scaled by ``clip(target_vol / realised_vol, lo, hi)``: smaller
   when the underlying is running hot, larger (up to ``hi``) when it is quiet.
3. **Capacity** — the collateral ``K * 100 * n`` may not exceed the buying power the portfolio
   limit leaves free (:mod:`wheel_sizing.buying_power`).

The Kelly fraction is applied to *collateral*, not to the expected loss: a cash-secured put can
lose up to its whole strike, so staking the collateral is the conservative reading of "fraction
of capital at risk".  The number of contracts is therefore::

    f      = clip(m * (p - (1 - p) / b), 0, f_max)             # fractional, capped Kelly
    s      = clip(target_vol / realised_vol, lo, hi)           # volatility scale
    budget = min(f * s * A, max(u * A - bp_in_use, 0))         # Kelly vs buying power
    n      = floor(budget / (100 * K))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from wheel_sizing.buying_power import (
    CONTRACT_MULTIPLIER,
    available_buying_power,
    cash_secured_put_requirement,
    max_contracts_for_budget,
)
from wheel_sizing.kelly import KELLY_CAP, fractional_kelly

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TARGET_VOL",
    "PositionPlan",
    "SizingLimits",
    "calculate_position_size",
    "plan_cash_secured_put",
]

#: Annualised volatility a position is sized for when no target is given.
DEFAULT_TARGET_VOL: Final[float] = 0.25


@dataclass(frozen=True)
class SizingLimits:
    """Risk limits applied by :func:`calculate_position_size`.

    Attributes:
        kelly_multiplier: ``m``, the Kelly multiplier in ``(0, 1]`` (0.5 = half Kelly).
        kelly_cap: ``f_max``, ceiling on the Kelly fraction before volatility scaling.
        min_vol_scale: ``lo``, smallest volatility scale factor.
        max_vol_scale: ``hi``, largest volatility scale factor.
        max_bp_fraction: ``u``, share of the account that may be committed to collateral.
    """

    kelly_multiplier: float = 0.5
    kelly_cap: float = KELLY_CAP
    min_vol_scale: float = 0.25
    max_vol_scale: float = 1.5
    max_bp_fraction: float = 0.30

    def __post_init__(self) -> None:
        if not 0.0 < self.kelly_multiplier <= 1.0:
            raise ValueError(f"kelly_multiplier must be in (0, 1], got {self.kelly_multiplier!r}")
        if not 0.0 < self.kelly_cap <= 1.0:
            raise ValueError(f"kelly_cap must be in (0, 1], got {self.kelly_cap!r}")
        if not 0.0 < self.min_vol_scale <= self.max_vol_scale:
            raise ValueError(
                "need 0 < min_vol_scale <= max_vol_scale, got "
                f"{self.min_vol_scale!r} and {self.max_vol_scale!r}"
            )
        if not 0.0 < self.max_bp_fraction <= 1.0:
            raise ValueError(f"max_bp_fraction must be in (0, 1], got {self.max_bp_fraction!r}")


DEFAULT_LIMITS: Final[SizingLimits] = SizingLimits()


def calculate_position_size(
    account_value: float,
    strike: float,
    premium: float,
    win_prob: float,
    avg_loss: float,
    realised_vol: float,
    target_vol: float = DEFAULT_TARGET_VOL,
    *,
    limits: SizingLimits = DEFAULT_LIMITS,
    bp_in_use: float = 0.0,
) -> int:
    """Number of cash-secured puts to sell (see the module docstring for the formula).

    Args:
        account_value: ``A``, net liquidation value of the account, ``>= 0``.
        strike: ``K``, put strike per share, ``> 0``.
        premium: ``c``, premium received per share, ``> 0``.
        win_prob: ``p``, probability the put expires out of the money.
        avg_loss: ``L``, average loss per share, net of premium, when it does not, ``> 0``.
        realised_vol: current annualised volatility of the underlying, ``> 0``.
        target_vol: annualised volatility the position is sized for, ``> 0``.
        limits: Kelly, volatility-scale and buying-power limits.
        bp_in_use: collateral already committed elsewhere in the portfolio, ``>= 0``.

    Returns:
        A non-negative number of contracts.  It is zero when the edge is zero or negative
        (``p * b <= 1 - p``) or when a single contract does not fit in either budget, and never
        needs more collateral than ``max(u * A - bp_in_use, 0)``.

    Raises:
        ValueError: on any argument outside its domain.
    """
    if not 0.0 <= account_value < math.inf:
        raise ValueError(f"account_value must be non-negative and finite, got {account_value!r}")
    if not premium > 0.0:
        raise ValueError(f"premium must be positive, got {premium!r}")
    if not avg_loss > 0.0:
        raise ValueError(f"avg_loss must be positive, got {avg_loss!r}")
    if not realised_vol > 0.0:
        raise ValueError(f"realised_vol must be positive, got {realised_vol!r}")
    if not target_vol > 0.0:
        raise ValueError(f"target_vol must be positive, got {target_vol!r}")

    # Edge: fraction of the account the odds justify staking as collateral.
    fraction = fractional_kelly(
        win_prob, premium / avg_loss, fraction=limits.kelly_multiplier, cap=limits.kelly_cap
    )

    # Regime: lean toward the volatility target, within [min_vol_scale, max_vol_scale].
    vol_scale = target_vol / realised_vol
    vol_scale = min(max(vol_scale, limits.min_vol_scale), limits.max_vol_scale)
    fraction *= vol_scale

    # Capacity: the Kelly budget may not exceed the buying power the portfolio limit leaves.
    kelly_budget = fraction * account_value
    bp_budget = available_buying_power(account_value, limits.max_bp_fraction, bp_in_use)
    return max_contracts_for_budget(min(kelly_budget, bp_budget), strike)


@dataclass(frozen=True)
class PositionPlan:
    """A sized cash-secured put sale.

    Attributes:
        contracts: number of puts to sell.
        strike: strike per share.
        premium: premium per share received.
    """

    contracts: int
    strike: float
    premium: float

    @property
    def collateral(self) -> float:
        """Cash reserved against assignment, ``K * 100 * n``."""
        return cash_secured_put_requirement(self.strike, self.contracts)

    @property
    def premium_income(self) -> float:
        """Premium received up front, ``c * 100 * n``."""
        return self.premium * CONTRACT_MULTIPLIER * self.contracts

    @property
    def return_on_collateral(self) -> float:
        """Premium as a fraction of collateral for one cycle, ``c / K`` (not annualised)."""
        return self.premium / self.strike


def plan_cash_secured_put(
    account_value: float,
    strike: float,
    premium: float,
    win_prob: float,
    avg_loss: float,
    realised_vol: float,
    target_vol: float = DEFAULT_TARGET_VOL,
    *,
    limits: SizingLimits = DEFAULT_LIMITS,
    bp_in_use: float = 0.0,
) -> PositionPlan:
    """Size a put sale with :func:`calculate_position_size` and return it as a plan."""
    contracts = calculate_position_size(
        account_value,
        strike,
        premium,
        win_prob,
        avg_loss,
        realised_vol,
        target_vol,
        limits=limits,
        bp_in_use=bp_in_use,
    )
    return PositionPlan(contracts=contracts, strike=strike, premium=premium)
