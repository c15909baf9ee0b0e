"""Realised volatility and volatility targeting.

Realised volatility is the annualised sample standard deviation of log returns::

    r_t   = ln(P_t / P_{t-1})
    sigma = sqrt(periods_per_year) * std(r, ddof=1)

Volatility targeting scales exposure by ``target_vol / realised_vol`` so that the position's
risk stays roughly constant across regimes; the scale is clipped to ``[floor, cap]`` so that a
quiet spell cannot lever the position up without bound and a volatile one cannot shrink it to
nothing.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "TRADING_DAYS_PER_YEAR",
    "log_returns",
    "realised_volatility",
    "realised_volatility_paths",
    "scale_to_target_vol",
]

#: Daily observations per year used to annualise.
TRADING_DAYS_PER_YEAR: Final[int] = 252


def log_returns(prices: ArrayLike) -> NDArray[np.float64]:
    """Log returns ``ln(P_t / P_{t-1})`` along the last axis.

    Args:
        prices: strictly positive prices, shape ``(..., T)`` with ``T >= 2``.

    Returns:
        Array of shape ``(..., T - 1)``.

    Raises:
        ValueError: if fewer than two prices are given or any price is not positive.
    """
    p = np.asarray(prices, dtype=np.float64)
    if p.ndim == 0 or p.shape[-1] < 2:
        raise ValueError("need at least two prices to form a return")
    if not np.all(p > 0.0):
        raise ValueError("prices must be strictly positive")
    return np.diff(np.log(p), axis=-1)


def realised_volatility_paths(
    prices: ArrayLike, periods_per_year: float = TRADING_DAYS_PER_YEAR
) -> NDArray[np.float64]:
    """Annualised realised volatility of every row of a price matrix.

    ``sigma_i = sqrt(periods_per_year) * std(ln(P_i,t / P_i,t-1), ddof=1)``

    Args:
        prices: shape ``(n_paths, T)`` with ``T >= 3`` (two returns for a sample std).
        periods_per_year: observations per year of the price series.

    Returns:
        Array of shape ``(n_paths,)``.
    """
    p = np.asarray(prices, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"prices must be two-dimensional (paths x time), got ndim={p.ndim}")
    if p.shape[1] < 3:
        raise ValueError("need at least three prices per path for a sample volatility")
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year!r}")
    vol: NDArray[np.float64] = np.std(log_returns(p), axis=1, ddof=1) * math.sqrt(periods_per_year)
    return vol


def realised_volatility(
    prices: ArrayLike, periods_per_year: float = TRADING_DAYS_PER_YEAR
) -> float:
    """Annualised realised volatility of a single price series (see module docstring).

    Args:
        prices: one-dimensional, strictly positive, at least three observations.
        periods_per_year: observations per year (252 for daily closes, 52 for weekly).

    Raises:
        ValueError: if the series is not one-dimensional, too short or not positive.
    """
    p = np.asarray(prices, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"prices must be one-dimensional, got ndim={p.ndim}")
    return float(realised_volatility_paths(p[np.newaxis, :], periods_per_year)[0])


def scale_to_target_vol(
    position: float,
    realised_vol: float,
    target_vol: float,
    *,
    floor: float = 0.25,
    cap: float = 1.5,
) -> float:
    """Scale a position toward a volatility target.

    ``position * clip(target_vol / realised_vol, floor, cap)``

    Args:
        position: exposure to scale (notional, shares or a capital fraction).
        realised_vol: current annualised volatility of the underlying, ``> 0``.
        target_vol: annualised volatility the position is sized for, ``> 0``.
        floor: smallest allowed scale factor, ``> 0``.
        cap: largest allowed scale factor, ``>= floor``.

    Raises:
        ValueError: on non-positive volatilities or an empty ``[floor, cap]`` interval.
    """
    if not realised_vol > 0.0:
        raise ValueError(f"realised_vol must be positive, got {realised_vol!r}")
    if not target_vol > 0.0:
        raise ValueError(f"target_vol must be positive, got {target_vol!r}")
    if not 0.0 < floor <= cap:
        raise ValueError(f"need 0 < floor <= cap, got floor={floor!r}, cap={cap!r}")
    scale = min(max(target_vol / realised_vol, floor), cap)
    return position * scale
