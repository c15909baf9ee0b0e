"""Position sizing for the options wheel.

The wheel sells cash-secured puts until assigned, then covered calls on the assigned shares
until they are called away.  This package decides how many contracts to sell:

>>> from wheel_sizing import calculate_position_size
>>> calculate_position_size(
...     account_value=250_000, strike=47.5, premium=0.80, win_prob=0.80, avg_loss=2.0,
...     realised_vol=0.25, target_vol=0.25,
... )
7

and simulates the strategy's P&L over random price paths (:mod:`wheel_sizing.simulation`).
"""

from wheel_sizing.buying_power import (
    CONTRACT_MULTIPLIER,
    available_buying_power,
    cash_secured_put_requirement,
    covered_call_capacity,
    covered_call_shares,
    max_contracts_for_budget,
    naked_put_margin_requirement,
)
from wheel_sizing.kelly import KELLY_CAP, expected_log_growth, fractional_kelly, kelly_fraction
from wheel_sizing.sizing import (
    DEFAULT_LIMITS,
    DEFAULT_TARGET_VOL,
    PositionPlan,
    SizingLimits,
    calculate_position_size,
    plan_cash_secured_put,
)
from wheel_sizing.volatility import (
    TRADING_DAYS_PER_YEAR,
    log_returns,
    realised_volatility,
    realised_volatility_paths,
    scale_to_target_vol,
)

__version__ = "0.3.0"

__all__ = [
    "CONTRACT_MULTIPLIER",
    "DEFAULT_LIMITS",
    "DEFAULT_TARGET_VOL",
    "KELLY_CAP",
    "TRADING_DAYS_PER_YEAR",
    "PositionPlan",
    "SizingLimits",
    "available_buying_power",
    "calculate_position_size",
    "cash_secured_put_requirement",
    "covered_call_capacity",
    "covered_call_shares",
    "expected_log_growth",
    "fractional_kelly",
    "kelly_fraction",
    "log_returns",
    "max_contracts_for_budget",
    "naked_put_margin_requirement",
    "plan_cash_secured_put",
    "realised_volatility",
    "realised_volatility_paths",
    "scale_to_target_vol",
]
