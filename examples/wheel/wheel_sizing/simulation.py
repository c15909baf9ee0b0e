"""Monte Carlo simulation of the wheel.

Price paths follow a geometric Brownian motion with optional Merton jumps.  Per step of length
``dt`` the log price moves by::

    dX = (mu - sigma^2 / 2 - lambda k) dt + sigma sqrt(dt) Z + sum_{j=1..N} Y_j
    Z ~ N(0, 1),   N ~ Poisson(lambda dt),   Y_j ~ N(mu_J, sigma_J^2)
    k  = E[e^Y - 1] = exp(mu_J + sigma_J^2 / 2) - 1

so that ``E[S_t] = S_0 exp(mu t)`` whatever the jump parameters (``-lambda k dt`` compensates
the jumps' drift).  With ``vol_of_vol = eta > 0`` each path draws its own diffusion volatility
``sigma_i = sigma exp(eta W_i - eta^2 / 2)``, ``W_i ~ N(0, 1)`` (so ``E[sigma_i] = sigma``): a
population of calm and turbulent regimes rather than one volatility for every path.

The wheel runs on each path in cycles of ``days_per_cycle`` trading days:

* **Holding cash** — sell cash-secured puts struck ``put_moneyness`` below spot, sized by
  :func:`~wheel_sizing.sizing.calculate_position_size`.  Expiring below the strike assigns
  ``100 n`` shares at the strike.
* **Holding shares** — sell covered calls on all round lots, struck ``call_moneyness`` above
  spot but never below the assignment strike.  Expiring at or above the strike calls the
  shares away at the strike and the path returns to cash.

Options are priced with Black-Scholes (zero rates and dividends).  The market quotes an
implied volatility of ``(1 + variance_risk_premium) * sigma_long``, with ``sigma_long`` the
realised volatility over the last ``iv_lookback`` days: the premium sellers harvest, anchored
on a slow estimate.  The sizer judges the odds at the recent ``vol_lookback``-day realised
volatility ``sigma_short`` with the same model: ``p = N(d2)`` and the average net loss when
assigned ``L = E[K - S_T | S_T < K] - c = P_fair / N(-d2) - c``, where ``P_fair`` is the put
priced at ``sigma_short``.  With these odds the full Kelly fraction reduces to
``f* = (c - P_fair) / c``, the share of the premium above its fair value: when the recent month
runs hotter than the quoted volatility the edge is negative and no puts are sold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from wheel_sizing.buying_power import CONTRACT_MULTIPLIER
from wheel_sizing.sizing import (
    DEFAULT_LIMITS,
    DEFAULT_TARGET_VOL,
    SizingLimits,
    calculate_position_size,
)
from wheel_sizing.volatility import TRADING_DAYS_PER_YEAR, realised_volatility_paths

__all__ = [
    "MarketModel",
    "PositionSizer",
    "WheelResult",
    "WheelStrategy",
    "black_scholes_call",
    "black_scholes_put",
    "put_sale_odds",
    "simulate_price_paths",
    "simulate_wheel",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _norm_cdf(x: FloatArray) -> FloatArray:
    """Standard normal CDF, ``N(x) = erfc(-x / sqrt 2) / 2`` (accurate in both tails)."""
    cdf: FloatArray = 0.5 * _erfc(-x / math.sqrt(2.0))
    return cdf


# --------------------------------------------------------------------------- price paths


@dataclass(frozen=True)
class MarketModel:
    """Parameters of the jump-diffusion the underlying follows (annualised).

    Attributes:
        spot: initial price ``S_0``.
        drift: ``mu``, expected log growth plus ``sigma^2 / 2`` (``E[S_t] = S_0 e^{mu t}``).
        volatility: ``sigma`` of the diffusion.
        jump_intensity: ``lambda``, expected jumps per year (0 disables jumps).
        jump_mean: ``mu_J``, mean log jump size.
        jump_std: ``sigma_J``, standard deviation of the log jump size.
        vol_of_vol: ``eta``, dispersion of the per-path volatility (0: every path uses
            ``volatility``).
        periods_per_year: simulation steps per year (``dt = 1 / periods_per_year``).
    """

    spot: float = 50.0
    drift: float = 0.08
    volatility: float = 0.30
    jump_intensity: float = 0.0
    jump_mean: float = -0.08
    jump_std: float = 0.10
    vol_of_vol: float = 0.0
    periods_per_year: int = TRADING_DAYS_PER_YEAR

    def __post_init__(self) -> None:
        if not self.spot > 0.0:
            raise ValueError(f"spot must be positive, got {self.spot!r}")
        if min(self.volatility, self.jump_intensity, self.jump_std, self.vol_of_vol) < 0.0:
            raise ValueError(
                "volatility, jump_intensity, jump_std and vol_of_vol must be non-negative"
            )
        if self.periods_per_year <= 0:
            raise ValueError(f"periods_per_year must be positive, got {self.periods_per_year!r}")


def simulate_price_paths(
    rng: np.random.Generator, n_paths: int, n_steps: int, model: MarketModel
) -> FloatArray:
    """Simulate ``n_paths`` price paths of ``n_steps`` steps (see the module docstring).

    The normal and Poisson draws are taken from ``rng`` in a fixed order, so a generator
    seeded the same way always gives the same paths.

    Returns:
        Array of shape ``(n_paths, n_steps + 1)``; column 0 is ``model.spot``.
    """
    if n_paths < 1 or n_steps < 1:
        raise ValueError(f"need n_paths >= 1 and n_steps >= 1, got {n_paths}, {n_steps}")
    dt = 1.0 / model.periods_per_year
    shape = (n_paths, n_steps)
    sigma = np.full((n_paths, 1), model.volatility)
    if model.vol_of_vol > 0.0:
        eta = model.vol_of_vol
        sigma *= np.exp(eta * rng.standard_normal((n_paths, 1)) - 0.5 * eta**2)
    z = rng.standard_normal(shape)
    increments = (model.drift - 0.5 * sigma**2) * dt + sigma * math.sqrt(dt) * z
    if model.jump_intensity > 0.0:
        k = math.expm1(model.jump_mean + 0.5 * model.jump_std**2)
        n_jumps = rng.poisson(model.jump_intensity * dt, shape)
        # The sum of N iid N(mu_J, sigma_J^2) jumps is N(N mu_J, N sigma_J^2).
        jumps = n_jumps * model.jump_mean + np.sqrt(n_jumps) * model.jump_std * rng.standard_normal(
            shape
        )
        increments += jumps - model.jump_intensity * k * dt
    log_growth = np.zeros((n_paths, n_steps + 1))
    np.cumsum(increments, axis=1, out=log_growth[:, 1:])
    return model.spot * np.exp(log_growth)


# --------------------------------------------------------------------------- option pricing


def _bs_inputs(
    spot: ArrayLike, strike: ArrayLike, vol: ArrayLike, t: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Validated ``(S, K, d1, d2)`` as float arrays."""
    s = np.asarray(spot, dtype=np.float64)
    k = np.asarray(strike, dtype=np.float64)
    v = np.asarray(vol, dtype=np.float64)
    if t <= 0.0:
        raise ValueError(f"time to expiry must be positive, got {t!r}")
    if np.any(s <= 0.0) or np.any(k <= 0.0) or np.any(v <= 0.0):
        raise ValueError("spot, strike and vol must be positive")
    sd = v * math.sqrt(t)
    d1 = (np.log(s / k) + 0.5 * sd**2) / sd
    return s, k, d1, d1 - sd


def black_scholes_put(spot: ArrayLike, strike: ArrayLike, vol: ArrayLike, t: float) -> FloatArray:
    """Black-Scholes put with zero rates and dividends: ``P = K N(-d2) - S N(-d1)``.

    ``d1 = (ln(S/K) + sigma^2 t / 2) / (sigma sqrt t)``, ``d2 = d1 - sigma sqrt t``; arguments
    broadcast, ``t`` in years.
    """
    s, k, d1, d2 = _bs_inputs(spot, strike, vol, t)
    return k * _norm_cdf(-d2) - s * _norm_cdf(-d1)


def black_scholes_call(spot: ArrayLike, strike: ArrayLike, vol: ArrayLike, t: float) -> FloatArray:
    """Black-Scholes call with zero rates and dividends: ``C = S N(d1) - K N(d2)``."""
    s, k, d1, d2 = _bs_inputs(spot, strike, vol, t)
    return s * _norm_cdf(d1) - k * _norm_cdf(d2)


def put_sale_odds(
    spot: ArrayLike, strike: ArrayLike, premium: ArrayLike, vol: ArrayLike, t: float
) -> tuple[FloatArray, FloatArray]:
    """Odds of a short put held to expiry, under a lognormal model at volatility ``vol``.

    Returns:
        ``(win_prob, avg_loss)`` with ``win_prob = N(d2) = P(S_T >= K)`` and
        ``avg_loss = E[K - S_T | S_T < K] - c = P_fair / N(-d2) - c`` per share, floored at
        one cent so that the odds stay finite when the premium covers the expected shortfall.
    """
    _, _, _, d2 = _bs_inputs(spot, strike, vol, t)
    win_prob = _norm_cdf(d2)
    lose_prob = np.maximum(_norm_cdf(-d2), 1e-300)
    fair = black_scholes_put(spot, strike, vol, t)
    avg_loss = np.maximum(fair / lose_prob - np.asarray(premium, dtype=np.float64), 0.01)
    return win_prob, avg_loss


# --------------------------------------------------------------------------- the wheel


class PositionSizer(Protocol):
    """The signature of :func:`~wheel_sizing.sizing.calculate_position_size`."""

    def __call__(
        self,
        account_value: float,
        strike: float,
        premium: float,
        win_prob: float,
        avg_loss: float,
        realised_vol: float,
        target_vol: float = ...,
        *,
        limits: SizingLimits = ...,
        bp_in_use: float = ...,
    ) -> int: ...


@dataclass(frozen=True)
class WheelStrategy:
    """Rules of the simulated wheel.

    Attributes:
        account_value: starting cash.
        cycles: number of option cycles (12 monthly cycles = one year).
        days_per_cycle: trading days from sale to expiry.
        vol_lookback: trading days behind the realised volatility the sizer sees.
        iv_lookback: trading days behind the volatility the market prices options off; the
            price paths must start ``max(vol_lookback, iv_lookback)`` days before the first
            sale.
        put_moneyness: put strike as a fraction of spot (rounded down to the strike grid).
        call_moneyness: call strike as a fraction of spot (rounded up, floored at the cost).
        strike_increment: spacing of listed strikes.
        min_premium: smallest premium per share worth selling.
        variance_risk_premium: implied volatility = ``iv_lookback`` realised volatility
            * (1 + this).
        target_vol: volatility target passed to the sizer.
        limits: sizing limits passed to the sizer.
    """

    account_value: float = 250_000.0
    cycles: int = 12
    days_per_cycle: int = 21
    vol_lookback: int = 21
    iv_lookback: int = 63
    put_moneyness: float = 0.95
    call_moneyness: float = 1.05
    strike_increment: float = 0.5
    min_premium: float = 0.05
    variance_risk_premium: float = 0.15
    target_vol: float = DEFAULT_TARGET_VOL
    limits: SizingLimits = field(default=DEFAULT_LIMITS)
    periods_per_year: int = TRADING_DAYS_PER_YEAR

    def __post_init__(self) -> None:
        if not self.account_value > 0.0:
            raise ValueError(f"account_value must be positive, got {self.account_value!r}")
        if min(self.cycles, self.days_per_cycle) < 1:
            raise ValueError("cycles and days_per_cycle must be at least 1")
        if min(self.vol_lookback, self.iv_lookback) < 2:
            raise ValueError("vol_lookback and iv_lookback must be at least 2 days")
        if not 0.0 < self.put_moneyness <= 1.0 <= self.call_moneyness:
            raise ValueError("need 0 < put_moneyness <= 1 <= call_moneyness")
        if not self.variance_risk_premium > -1.0:
            raise ValueError("variance_risk_premium must exceed -1")

    @property
    def n_days(self) -> int:
        """Steps a price path needs: the longer lookback plus every cycle."""
        return self.warmup + self.cycles * self.days_per_cycle

    @property
    def warmup(self) -> int:
        """Days of price history before the first sale."""
        return max(self.vol_lookback, self.iv_lookback)


@dataclass(frozen=True)
class WheelResult:
    """Outcome of :func:`simulate_wheel` for ``n`` paths and ``m`` cycles.

    Attributes:
        equity: ``(n, m + 1)`` account value marked to market at each expiry (column 0 is the
            starting value).
        put_contracts: ``(n, m)`` puts sold per cycle.
        call_contracts: ``(n, m)`` calls sold per cycle.
        put_cycles: ``(n, m)`` true where the cycle started in cash (a put sale was sized).
        assigned: ``(n, m)`` true where the puts were assigned.
    """

    equity: FloatArray
    put_contracts: IntArray
    call_contracts: IntArray
    put_cycles: BoolArray
    assigned: BoolArray

    @property
    def pnl(self) -> FloatArray:
        """Profit and loss per path over the whole simulation."""
        return self.equity[:, -1] - self.equity[:, 0]

    @property
    def max_drawdown(self) -> FloatArray:
        """Largest peak-to-trough fall per path, ``max_t (1 - E_t / max_{s<=t} E_s)``."""
        peaks = np.maximum.accumulate(self.equity, axis=1)
        drawdown: FloatArray = np.max(1.0 - self.equity / peaks, axis=1)
        return drawdown

    def mean_put_contracts(self) -> float:
        """Average size of a put sale over all cycles that started in cash."""
        sized = self.put_contracts[self.put_cycles]
        return float(sized.mean()) if sized.size else 0.0

    def assignment_rate(self) -> float:
        """Share of put sales with at least one contract that ended in assignment."""
        sold = self.put_contracts > 0
        return float(self.assigned[sold].mean()) if sold.any() else 0.0

    @classmethod
    def concatenate(cls, parts: Sequence[WheelResult]) -> WheelResult:
        """Stack the paths of several results (e.g. batches) into one."""
        if not parts:
            raise ValueError("nothing to concatenate")
        return cls(
            equity=np.concatenate([p.equity for p in parts]),
            put_contracts=np.concatenate([p.put_contracts for p in parts]),
            call_contracts=np.concatenate([p.call_contracts for p in parts]),
            put_cycles=np.concatenate([p.put_cycles for p in parts]),
            assigned=np.concatenate([p.assigned for p in parts]),
        )


def simulate_wheel(
    paths: FloatArray,
    strategy: WheelStrategy,
    sizer: PositionSizer = calculate_position_size,
) -> WheelResult:
    """Run the wheel on every price path (see the module docstring for the rules).

    Pricing, strikes and settlement are vectorised over paths; the sizer is called once per
    path and cycle that starts in cash with a put premium of at least ``min_premium``, with the
    path's cash as the account value (so position sizes compound with the account).

    Args:
        paths: daily prices, shape ``(n_paths, strategy.n_days + 1)``.
        strategy: the wheel's rules.
        sizer: number of puts to sell; :func:`calculate_position_size` unless replaced.

    Returns:
        Per-path equity curve and per-cycle positions.
    """
    paths = np.asarray(paths, dtype=np.float64)
    if paths.ndim != 2 or paths.shape[1] != strategy.n_days + 1:
        raise ValueError(
            f"paths must have shape (n_paths, {strategy.n_days + 1}), got {paths.shape}"
        )
    n_paths, n_cycles = paths.shape[0], strategy.cycles
    t = strategy.days_per_cycle / strategy.periods_per_year
    inc = strategy.strike_increment
    lot = CONTRACT_MULTIPLIER

    cash = np.full(n_paths, strategy.account_value)
    shares = np.zeros(n_paths, dtype=np.int64)
    cost_basis = np.zeros(n_paths)

    equity = np.empty((n_paths, n_cycles + 1))
    equity[:, 0] = cash
    put_contracts = np.zeros((n_paths, n_cycles), dtype=np.int64)
    call_contracts = np.zeros((n_paths, n_cycles), dtype=np.int64)
    put_cycles = np.zeros((n_paths, n_cycles), dtype=np.bool_)
    assigned = np.zeros((n_paths, n_cycles), dtype=np.bool_)

    for c in range(n_cycles):
        start = strategy.warmup + c * strategy.days_per_cycle
        end = start + strategy.days_per_cycle
        spot, expiry = paths[:, start], paths[:, end]
        realised = realised_volatility_paths(
            paths[:, start - strategy.vol_lookback : start + 1], strategy.periods_per_year
        )
        implied = (1.0 + strategy.variance_risk_premium) * realised_volatility_paths(
            paths[:, start - strategy.iv_lookback : start + 1], strategy.periods_per_year
        )

        idle = np.flatnonzero(shares == 0)
        held = np.flatnonzero(shares > 0)

        # Cash-secured puts on the paths holding cash.
        put_cycles[idle, c] = True
        if idle.size:
            k_put = np.floor(strategy.put_moneyness * spot[idle] / inc) * inc
            premium = black_scholes_put(spot[idle], k_put, implied[idle], t)
            win_prob, avg_loss = put_sale_odds(spot[idle], k_put, premium, realised[idle], t)
            n = np.zeros(idle.size, dtype=np.int64)
            for j in np.flatnonzero(premium >= strategy.min_premium):
                n[j] = sizer(
                    float(cash[idle[j]]),
                    float(k_put[j]),
                    float(premium[j]),
                    float(win_prob[j]),
                    float(avg_loss[j]),
                    float(realised[idle[j]]),
                    strategy.target_vol,
                    limits=strategy.limits,
                )
            cash[idle] += premium * lot * n
            hit = (expiry[idle] < k_put) & (n > 0)
            put_contracts[idle, c] = n
            assigned[idle, c] = hit
            cash[idle[hit]] -= k_put[hit] * lot * n[hit]
            shares[idle[hit]] = lot * n[hit]
            cost_basis[idle[hit]] = k_put[hit]

        # Covered calls on the paths that held shares when the cycle started.
        if held.size:
            k_call = np.maximum(
                np.ceil(strategy.call_moneyness * spot[held] / inc) * inc, cost_basis[held]
            )
            premium = black_scholes_call(spot[held], k_call, implied[held], t)
            m = np.where(premium >= strategy.min_premium, shares[held] // lot, 0)
            cash[held] += premium * lot * m
            away = (expiry[held] >= k_call) & (m > 0)
            call_contracts[held, c] = m
            cash[held[away]] += k_call[away] * lot * m[away]
            shares[held[away]] -= lot * m[away]
            cost_basis[held[away]] = 0.0

        equity[:, c + 1] = cash + shares * expiry

    return WheelResult(
        equity=equity,
        put_contracts=put_contracts,
        call_contracts=call_contracts,
        put_cycles=put_cycles,
        assigned=assigned,
    )
