"""Price paths, option pricing and the wheel P&L simulator."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wheel_sizing import calculate_position_size, kelly_fraction, realised_volatility_paths
from wheel_sizing.simulation import (
    MarketModel,
    WheelResult,
    WheelStrategy,
    black_scholes_call,
    black_scholes_put,
    put_sale_odds,
    simulate_price_paths,
    simulate_wheel,
)

JUMPY = MarketModel(spot=50.0, drift=0.08, volatility=0.30, jump_intensity=1.5)
STRATEGY = WheelStrategy(cycles=6)


def wheel_paths(seed: int, n_paths: int = 200, strategy: WheelStrategy = STRATEGY) -> np.ndarray:
    return simulate_price_paths(np.random.default_rng(seed), n_paths, strategy.n_days, JUMPY)


# --------------------------------------------------------------------------- price paths


def test_paths_have_the_requested_shape_and_start_at_spot() -> None:
    paths = simulate_price_paths(np.random.default_rng(0), 7, 30, JUMPY)
    assert paths.shape == (7, 31)
    assert np.all(paths[:, 0] == 50.0)
    assert np.all(paths > 0.0)


def test_paths_are_deterministic_given_the_seed() -> None:
    np.testing.assert_array_equal(wheel_paths(11), wheel_paths(11))
    assert not np.array_equal(wheel_paths(11), wheel_paths(12))


def test_volatility_dispersion_gives_each_path_its_own_volatility() -> None:
    model = MarketModel(volatility=0.30, vol_of_vol=0.5)
    paths = simulate_price_paths(np.random.default_rng(3), 2_000, 252, model)
    vols = realised_volatility_paths(paths)
    assert np.mean(vols) == pytest.approx(0.30, rel=0.05)
    assert np.percentile(vols, 90) > 1.5 * np.percentile(vols, 10)


def test_zero_volatility_grows_at_the_drift() -> None:
    model = MarketModel(spot=100.0, drift=0.05, volatility=0.0)
    paths = simulate_price_paths(np.random.default_rng(0), 2, 252, model)
    np.testing.assert_allclose(paths[:, -1], 100.0 * math.exp(0.05), rtol=1e-12)


@pytest.mark.parametrize(("jump_intensity", "vol_of_vol"), [(0.0, 0.0), (4.0, 0.0), (4.0, 0.5)])
def test_expected_price_grows_at_the_drift(jump_intensity: float, vol_of_vol: float) -> None:
    # E[S_T] = S_0 exp(mu T) with jumps and dispersed volatility alike: each path's drift is
    # compensated for its own volatility and its jumps.
    model = MarketModel(
        spot=100.0,
        drift=0.10,
        volatility=0.25,
        jump_intensity=jump_intensity,
        vol_of_vol=vol_of_vol,
    )
    terminal = simulate_price_paths(np.random.default_rng(5), 40_000, 63, model)[:, -1]
    standard_error = terminal.std() / math.sqrt(terminal.size)
    assert abs(terminal.mean() - 100.0 * math.exp(0.10 * 0.25)) < 4.0 * standard_error


# --------------------------------------------------------------------------- option pricing


def test_black_scholes_known_value() -> None:
    # at the money, sigma = 20 %, one year: C = S (2 N(0.1) - 1)
    expected = 100.0 * math.erf(0.1 / math.sqrt(2.0))
    assert float(black_scholes_call(100.0, 100.0, 0.2, 1.0)) == pytest.approx(expected, rel=1e-12)


def test_put_call_parity() -> None:
    spot, strikes = 50.0, np.array([40.0, 47.5, 50.0, 52.5, 60.0])
    calls = black_scholes_call(spot, strikes, 0.35, 21 / 252)
    puts = black_scholes_put(spot, strikes, 0.35, 21 / 252)
    np.testing.assert_allclose(calls - puts, spot - strikes, atol=1e-12)


def test_put_sale_odds_price_the_edge_as_rich_premium() -> None:
    # With these odds f* = (c - P_fair) / c: the share of the premium above fair value.
    spot, strike, t, vol = 50.0, 47.5, 21 / 252, 0.30
    fair = float(black_scholes_put(spot, strike, vol, t))
    premium = float(black_scholes_put(spot, strike, 1.15 * vol, t))
    win_prob, avg_loss = put_sale_odds(spot, strike, premium, vol, t)
    f_star = kelly_fraction(float(win_prob), premium / float(avg_loss))
    assert f_star == pytest.approx((premium - fair) / premium, rel=1e-9)
    assert f_star > 0.0


# --------------------------------------------------------------------------- the wheel


def test_wheel_is_deterministic_given_the_paths() -> None:
    a = simulate_wheel(wheel_paths(3), STRATEGY)
    b = simulate_wheel(wheel_paths(3), STRATEGY)
    np.testing.assert_array_equal(a.equity, b.equity)
    np.testing.assert_array_equal(a.put_contracts, b.put_contracts)


def test_first_cycle_is_sized_by_calculate_position_size() -> None:
    paths = wheel_paths(4, n_paths=5)
    result = simulate_wheel(paths, STRATEGY)
    start, t = STRATEGY.warmup, STRATEGY.days_per_cycle / 252
    for i in range(paths.shape[0]):
        history = paths[i, : start + 1]
        short_vol = math.sqrt(252) * np.std(np.diff(np.log(history[-22:])), ddof=1)
        long_vol = math.sqrt(252) * np.std(np.diff(np.log(history[-64:])), ddof=1)
        spot = history[-1]
        strike = math.floor(0.95 * spot / 0.5) * 0.5
        premium = float(black_scholes_put(spot, strike, 1.15 * long_vol, t))
        win_prob, avg_loss = put_sale_odds(spot, strike, premium, short_vol, t)
        expected = calculate_position_size(
            250_000.0, strike, premium, float(win_prob), float(avg_loss), float(short_vol), 0.25
        )
        assert result.put_contracts[i, 0] == expected


def test_wheel_never_commits_more_than_the_buying_power_limit() -> None:
    seen: list[tuple[float, float, int]] = []

    def recording_sizer(account_value: float, strike: float, *args: Any, **kwargs: Any) -> int:
        n = calculate_position_size(account_value, strike, *args, **kwargs)
        seen.append((account_value, strike, n))
        return n

    simulate_wheel(wheel_paths(5), STRATEGY, sizer=recording_sizer)
    assert seen
    limit = STRATEGY.limits.max_bp_fraction
    assert all(strike * 100 * n <= limit * account for account, strike, n in seen)


def test_wheel_alternates_between_puts_and_covered_calls() -> None:
    result = simulate_wheel(wheel_paths(6), STRATEGY)
    assert result.assigned.any(), "expected some assignments on jumpy paths"
    # calls are only written in cycles that started with shares, puts only in cash cycles
    assert not np.any((result.call_contracts > 0) & result.put_cycles)
    assert not np.any((result.put_contracts > 0) & ~result.put_cycles)
    # an assignment is followed by a cycle holding shares
    i, c = np.argwhere(result.assigned[:, :-1])[0]
    assert not result.put_cycles[i, c + 1]
    assert result.call_contracts[i, c + 1] == result.put_contracts[i, c]


def test_not_trading_leaves_the_account_flat() -> None:
    result = simulate_wheel(wheel_paths(7), STRATEGY, sizer=lambda *a, **k: 0)
    np.testing.assert_array_equal(result.pnl, 0.0)
    assert result.mean_put_contracts() == 0.0
    assert result.assignment_rate() == 0.0


def test_batches_concatenate_to_the_full_run() -> None:
    paths = wheel_paths(8)
    whole = simulate_wheel(paths, STRATEGY)
    parts = WheelResult.concatenate(
        [simulate_wheel(paths[:70], STRATEGY), simulate_wheel(paths[70:], STRATEGY)]
    )
    np.testing.assert_array_equal(whole.equity, parts.equity)
    np.testing.assert_array_equal(whole.max_drawdown, parts.max_drawdown)


def test_a_lower_vol_target_sells_fewer_puts_and_risks_less() -> None:
    paths = wheel_paths(9, n_paths=400)
    bold = simulate_wheel(paths, STRATEGY)
    timid = simulate_wheel(paths, WheelStrategy(cycles=6, target_vol=0.10))
    assert timid.mean_put_contracts() < bold.mean_put_contracts()
    assert np.percentile(timid.pnl, 5) > np.percentile(bold.pnl, 5)


def test_paths_of_the_wrong_length_are_rejected() -> None:
    with pytest.raises(ValueError, match="shape"):
        simulate_wheel(np.full((3, 10), 50.0), STRATEGY)


def test_montecarlo_hook_is_deterministic(pytestconfig: pytest.Config) -> None:
    conftest = (pytestconfig.rootpath / "conftest.py").resolve()
    hook = next(
        plugin.pytest_orchestrator_montecarlo
        for plugin in pytestconfig.pluginmanager.get_plugins()
        if Path(getattr(plugin, "__file__", None) or ".").resolve() == conftest
    )

    class StandIn:
        """The attributes of the orchestrator's ``mc`` object, on a small budget."""

        def __init__(self, seed: int) -> None:
            self.rng, self.seed, self.side = np.random.default_rng(seed), seed, "base"

        def samples(self, n: int) -> int:
            return max(1, n // 50)

        def time_left(self) -> float:
            return 10.0

        def should_stop(self) -> bool:
            return False

    first, second = hook(StandIn(7)), hook(StandIn(7))
    assert first == second
    (result,) = first
    assert result["name"] == "wheel_pnl"
    assert result["samples"] == 200
    assert set(result["metrics"]) >= {"mean_pnl", "p05_pnl", "ruin_probability", "mean_contracts"}
    assert all(type(v) is float and math.isfinite(v) for v in result["metrics"].values())
