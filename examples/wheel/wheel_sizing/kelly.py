"""Kelly criterion for a repeated two-outcome bet.

A short option held to expiry is modelled as a binary bet: with probability ``p`` it expires
worthless and we keep the premium (the *win*), otherwise we lose on average ``L`` per share net
of the premium (the *loss*).  With ``b = premium / L`` the payoff odds, the fraction of capital
``f`` staked per bet gives the expected log growth

    g(f) = p * ln(1 + f * b) + (1 - p) * ln(1 - f)

which is maximised at the Kelly fraction ``f* = p - (1 - p) / b``.

Full Kelly is notoriously aggressive (it is optimal only when ``p`` and ``b`` are known exactly,
and its drawdowns are large), so sizing uses a *fractional, capped* Kelly:
``clip(fraction * f*, 0, cap)``.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = [
    "KELLY_CAP",
    "expected_log_growth",
    "fractional_kelly",
    "kelly_fraction",
]

#: Hard ceiling on the fraction of capital any single position may receive.
KELLY_CAP: Final[float] = 0.25


def _check_win_prob(win_prob: float) -> None:
    if not 0.0 <= win_prob <= 1.0 or math.isnan(win_prob):
        raise ValueError(f"win_prob must be in [0, 1], got {win_prob!r}")


def _check_win_loss_ratio(win_loss_ratio: float) -> None:
    if not win_loss_ratio > 0.0 or math.isinf(win_loss_ratio):
        raise ValueError(f"win_loss_ratio must be positive and finite, got {win_loss_ratio!r}")


def kelly_fraction(win_prob: float, win_loss_ratio: float) -> float:
    """Full Kelly fraction ``f* = p - (1 - p) / b``.

    Args:
        win_prob: probability ``p`` of the winning outcome, in ``[0, 1]``.
        win_loss_ratio: odds ``b`` = amount won / amount lost per unit staked, ``> 0``.

    Returns:
        The growth-optimal fraction of capital to stake.  It is negative when the bet has
        negative expectancy (``p * b < 1 - p``), zero at break-even, and at most ``p``
        (reached as ``b -> inf``); callers decide what to do with a negative value.

    Raises:
        ValueError: if ``win_prob`` is outside ``[0, 1]`` or ``win_loss_ratio`` is not positive.
    """
    _check_win_prob(win_prob)
    _check_win_loss_ratio(win_loss_ratio)
    return win_prob - (1.0 - win_prob) / win_loss_ratio


def fractional_kelly(
    win_prob: float,
    win_loss_ratio: float,
    fraction: float = 0.5,
    cap: float = KELLY_CAP,
) -> float:
    """Fractional, capped Kelly: ``clip(fraction * f*, 0, cap)``.

    A non-positive edge gives exactly ``0.0`` (never a short position: we only sell premium
    when the odds favour us).

    Args:
        win_prob: probability of the winning outcome, in ``[0, 1]``.
        win_loss_ratio: odds ``b``, ``> 0``.
        fraction: Kelly multiplier in ``(0, 1]``; 0.5 is the customary "half Kelly", which
            gives up 25 % of the optimal growth rate for half the volatility of wealth.
        cap: ceiling on the returned fraction, in ``(0, 1]``.

    Raises:
        ValueError: on any argument outside its domain.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if not 0.0 < cap <= 1.0:
        raise ValueError(f"cap must be in (0, 1], got {cap!r}")
    full = kelly_fraction(win_prob, win_loss_ratio)
    return min(max(fraction * full, 0.0), cap)


def expected_log_growth(stake: float, win_prob: float, win_loss_ratio: float) -> float:
    """Expected log growth per bet, ``g(f) = p ln(1 + f b) + (1 - p) ln(1 - f)``.

    Args:
        stake: fraction ``f`` of capital staked, in ``[0, 1)``.
        win_prob: probability of the winning outcome, in ``[0, 1]``.
        win_loss_ratio: odds ``b``, ``> 0``.

    Raises:
        ValueError: if ``stake`` is outside ``[0, 1)`` (staking everything risks ``ln 0``).
    """
    _check_win_prob(win_prob)
    _check_win_loss_ratio(win_loss_ratio)
    if not 0.0 <= stake < 1.0:
        raise ValueError(f"stake must be in [0, 1), got {stake!r}")
    return win_prob * math.log1p(stake * win_loss_ratio) + (1.0 - win_prob) * math.log1p(-stake)
