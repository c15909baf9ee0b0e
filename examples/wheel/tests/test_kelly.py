"""Kelly fraction: known values, optimality, and the fractional/capped variant."""

from __future__ import annotations

import math

import pytest

from wheel_sizing import KELLY_CAP, expected_log_growth, fractional_kelly, kelly_fraction


@pytest.mark.parametrize(
    ("win_prob", "win_loss_ratio", "expected"),
    [
        (0.6, 1.0, 0.2),  # even-money coin with a 60 % edge
        (0.5, 2.0, 0.25),  # fair coin paying 2:1
        (0.8, 0.4, 0.3),  # typical short put: often right, small wins
        (1.0, 0.1, 1.0),  # a sure thing stakes everything
    ],
)
def test_known_values(win_prob: float, win_loss_ratio: float, expected: float) -> None:
    assert kelly_fraction(win_prob, win_loss_ratio) == pytest.approx(expected)


def test_break_even_bet_stakes_nothing() -> None:
    # p * b = 1 - p  <=>  zero expectancy
    assert kelly_fraction(1 / 3, 2.0) == pytest.approx(0.0, abs=1e-15)


def test_negative_edge_gives_negative_fraction() -> None:
    assert kelly_fraction(0.4, 1.0) == pytest.approx(-0.2)


@pytest.mark.parametrize(("win_prob", "win_loss_ratio"), [(0.6, 1.0), (0.8, 0.4), (0.3, 4.0)])
def test_kelly_fraction_maximises_log_growth(win_prob: float, win_loss_ratio: float) -> None:
    f_star = kelly_fraction(win_prob, win_loss_ratio)
    g_star = expected_log_growth(f_star, win_prob, win_loss_ratio)
    for f in (0.0, 0.5 * f_star, 0.9 * f_star, 1.1 * f_star, min(2.0 * f_star, 0.99)):
        assert expected_log_growth(f, win_prob, win_loss_ratio) <= g_star + 1e-15


def test_half_kelly_keeps_three_quarters_of_the_growth() -> None:
    # For small stakes g(f) is quadratic, so g(f*/2) ~= 3/4 g(f*).
    p, b = 0.52, 1.0
    f_star = kelly_fraction(p, b)
    ratio = expected_log_growth(f_star / 2, p, b) / expected_log_growth(f_star, p, b)
    assert ratio == pytest.approx(0.75, abs=0.01)


def test_fractional_kelly_scales_below_the_cap() -> None:
    assert fractional_kelly(0.6, 1.0, fraction=0.5) == pytest.approx(0.1)
    assert fractional_kelly(0.6, 1.0, fraction=1.0) == pytest.approx(0.2)


@pytest.mark.parametrize("win_prob", [0.55, 0.7, 0.9, 0.99, 1.0])
@pytest.mark.parametrize("win_loss_ratio", [0.2, 1.0, 5.0, 100.0])
def test_fractional_kelly_respects_cap(win_prob: float, win_loss_ratio: float) -> None:
    f = fractional_kelly(win_prob, win_loss_ratio, fraction=1.0)
    assert 0.0 <= f <= KELLY_CAP
    assert fractional_kelly(win_prob, win_loss_ratio, fraction=1.0, cap=0.1) <= 0.1


@pytest.mark.parametrize(("win_prob", "win_loss_ratio"), [(1 / 3, 2.0), (0.4, 1.0), (0.0, 3.0)])
def test_fractional_kelly_is_zero_without_edge(win_prob: float, win_loss_ratio: float) -> None:
    assert fractional_kelly(win_prob, win_loss_ratio) == 0.0


@pytest.mark.parametrize(
    ("win_prob", "win_loss_ratio"),
    [(-0.01, 1.0), (1.01, 1.0), (math.nan, 1.0), (0.5, 0.0), (0.5, -1.0), (0.5, math.inf)],
)
def test_invalid_odds_are_rejected(win_prob: float, win_loss_ratio: float) -> None:
    with pytest.raises(ValueError, match=r"win_prob|win_loss_ratio"):
        kelly_fraction(win_prob, win_loss_ratio)


@pytest.mark.parametrize(("fraction", "cap"), [(0.0, 0.25), (1.5, 0.25), (0.5, 0.0), (0.5, 1.1)])
def test_invalid_fraction_or_cap_is_rejected(fraction: float, cap: float) -> None:
    with pytest.raises(ValueError, match=r"fraction|cap"):
        fractional_kelly(0.6, 1.0, fraction=fraction, cap=cap)


def test_log_growth_is_zero_without_a_stake_and_undefined_at_all_in() -> None:
    assert expected_log_growth(0.0, 0.6, 1.0) == 0.0
    with pytest.raises(ValueError, match="stake"):
        expected_log_growth(1.0, 0.6, 1.0)
