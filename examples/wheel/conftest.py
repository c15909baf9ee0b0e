"""Repository-wide pytest configuration for wheel-sizing.

Besides being an ordinary conftest, this file implements ``pytest_orchestrator_montecarlo``, the
Monte Carlo hook of pytest-orchestrator: the orchestrator runs it in a fresh process on the base
revision and on the candidate revision with identically seeded generators, and compares the
metrics it returns.  A pure refactor must reproduce them exactly; a change in behaviour moves
them.

The hook is declared ``optionalhook`` so that a plain ``pytest`` run without the plugin installed
does not reject it as an unknown hook, and it imports ``wheel_sizing`` only when called, so that
each side measures the package as it is in that side's tree.
"""

from __future__ import annotations

from typing import Any

import pytest

#: Price paths simulated at full scale (each path runs 12 monthly wheel cycles).
N_PATHS = 10_000
#: Paths per batch; ``mc.should_stop()`` is checked between batches.
BATCH_SIZE = 1_000
#: Drawdown, as a fraction of the account's running peak, that counts as ruin.
RUIN_DRAWDOWN = 0.10


@pytest.hookimpl(optionalhook=True)
def pytest_orchestrator_montecarlo(mc: Any) -> list[dict[str, Any]]:
    """Simulate one year of the wheel on jump-diffusion price paths.

    The underlying is a $50 stock with 8 % drift, 30 % average volatility dispersed across
    paths (``vol_of_vol`` 0.35) and 1.5 jumps a year of -8 % on average; the account starts
    with $250,000 in cash.

    Every put sale on every path is sized by ``calculate_position_size``; all randomness comes
    from ``mc.rng``.  Batches are drawn one after the other from the same generator, so a run
    is a deterministic function of the seed and the number of paths.

    Metrics (per path P&L in account currency, over 12 cycles of 21 trading days):

    * ``mean_pnl`` and ``p05_pnl``, the mean and the 5th percentile of P&L;
    * ``ruin_probability``, the share of paths whose drawdown reaches ``RUIN_DRAWDOWN``;
    * ``mean_contracts``, the average number of puts per put sale;
    * ``assignment_rate``, the share of put sales that were assigned.
    """
    import numpy as np

    from wheel_sizing import calculate_position_size
    from wheel_sizing.simulation import (
        MarketModel,
        WheelResult,
        WheelStrategy,
        simulate_price_paths,
        simulate_wheel,
    )

    market = MarketModel(
        spot=50.0,
        drift=0.08,
        volatility=0.30,
        vol_of_vol=0.35,
        jump_intensity=1.5,
        jump_mean=-0.08,
        jump_std=0.10,
    )
    strategy = WheelStrategy(account_value=250_000.0, cycles=12, days_per_cycle=21)

    n_paths = max(1, mc.samples(N_PATHS))
    parts: list[WheelResult] = []
    done = 0
    while done < n_paths:
        if parts and mc.should_stop():
            break
        batch = min(BATCH_SIZE, n_paths - done)
        paths = simulate_price_paths(mc.rng, batch, strategy.n_days, market)
        parts.append(simulate_wheel(paths, strategy, sizer=calculate_position_size))
        done += batch

    result = WheelResult.concatenate(parts)
    pnl = result.pnl
    return [
        {
            "name": "wheel_pnl",
            "samples": int(pnl.size),
            "metrics": {
                "mean_pnl": float(np.mean(pnl)),
                "p05_pnl": float(np.percentile(pnl, 5.0)),
                "ruin_probability": float(np.mean(result.max_drawdown >= RUIN_DRAWDOWN)),
                "mean_contracts": result.mean_put_contracts(),
                "assignment_rate": result.assignment_rate(),
            },
            "rtol": 1e-9,
            "atol": 1e-9,
        }
    ]
