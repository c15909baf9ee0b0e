"""Realised volatility and volatility targeting."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from wheel_sizing import (
    TRADING_DAYS_PER_YEAR,
    log_returns,
    realised_volatility,
    realised_volatility_paths,
    scale_to_target_vol,
)


def test_log_returns_known_values() -> None:
    np.testing.assert_allclose(log_returns([100.0, 110.0, 99.0]), [math.log(1.1), math.log(0.9)])


def test_realised_volatility_known_value() -> None:
    # Two returns a, b have sample std |a - b| / sqrt(2).
    a, b = math.log(1.1), math.log(0.9)
    expected = math.sqrt(TRADING_DAYS_PER_YEAR) * abs(a - b) / math.sqrt(2.0)
    assert realised_volatility([100.0, 110.0, 99.0]) == pytest.approx(expected)


def test_constant_growth_has_no_volatility() -> None:
    prices = 100.0 * 1.001 ** np.arange(60)
    assert realised_volatility(prices) == pytest.approx(0.0, abs=1e-12)


def test_annualisation_scales_with_square_root_of_time() -> None:
    prices = [100.0, 103.0, 98.0, 101.0, 104.0]
    daily = realised_volatility(prices)
    weekly = realised_volatility(prices, periods_per_year=52)
    assert daily / weekly == pytest.approx(math.sqrt(252 / 52))


def test_recovers_the_volatility_of_a_simulated_gbm() -> None:
    rng = np.random.default_rng(2024)
    sigma, dt, n = 0.20, 1.0 / TRADING_DAYS_PER_YEAR, 20 * TRADING_DAYS_PER_YEAR
    steps = -0.5 * sigma**2 * dt + sigma * math.sqrt(dt) * rng.standard_normal(n)
    prices = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(steps)]))
    # standard error of a sample std is about sigma / sqrt(2n) ~= 0.002
    assert realised_volatility(prices) == pytest.approx(sigma, abs=0.01)


def test_path_volatilities_match_the_single_series_version() -> None:
    rng = np.random.default_rng(1)
    paths = 50.0 * np.exp(np.cumsum(0.02 * rng.standard_normal((4, 30)), axis=1))
    np.testing.assert_allclose(
        realised_volatility_paths(paths), [realised_volatility(row) for row in paths], rtol=1e-12
    )


@pytest.mark.parametrize(
    ("realised_vol", "expected_scale"),
    [
        (0.25, 1.0),  # on target
        (0.50, 0.5),  # twice as volatile: half the position
        (2.00, 0.25),  # floored
        (0.10, 1.5),  # capped
    ],
)
def test_scale_to_target_vol(realised_vol: float, expected_scale: float) -> None:
    assert scale_to_target_vol(10_000.0, realised_vol, 0.25) == pytest.approx(
        10_000.0 * expected_scale
    )


def test_target_vol_scaling_is_monotone_in_realised_vol() -> None:
    vols = np.linspace(0.05, 1.5, 40)
    scaled = [scale_to_target_vol(1.0, float(v), 0.25) for v in vols]
    assert all(x >= y for x, y in itertools.pairwise(scaled))


@pytest.mark.parametrize(
    "prices", [[100.0], [100.0, 101.0], [100.0, 0.0, 101.0], [100.0, -5.0, 101.0]]
)
def test_invalid_price_series_are_rejected(prices: list[float]) -> None:
    with pytest.raises(ValueError, match="prices"):
        realised_volatility(prices)


def test_invalid_vol_targets_are_rejected() -> None:
    with pytest.raises(ValueError, match="realised_vol"):
        scale_to_target_vol(1.0, 0.0, 0.25)
    with pytest.raises(ValueError, match="target_vol"):
        scale_to_target_vol(1.0, 0.3, -0.1)
    with pytest.raises(ValueError, match="floor"):
        scale_to_target_vol(1.0, 0.3, 0.25, floor=2.0, cap=1.5)
