"""Session fixtures for the memory gauge and the slice cache.

Registered as a plugin by ``plugin.py``. Importing this module costs nothing: psutil, numpy
and sqlite3 are imported inside the fixtures, when a test asks for one.

``orchestrator_pressure``
    The `PressureGauge` of this process, started for the session and stopped after it; or,
    where a gauge already runs in a parent process (xdist workers, the inner test run, Monte
    Carlo children find it through ``PYTEST_ORCHESTRATOR_PRESSURE``), a read-only
    `PressureView` of it, so one tree is never measured and policed twice.

``orchestrator_slice_cache``
    The `SliceCache` in ``orchestrate_cache_dir`` (default ``.orchestrate/cache`` under the
    rootdir), closed after the session. xdist workers each open their own connection to the
    same file.

Settings come from the ini keys
``orchestrate_cache_dir``, ``orchestrate_mem_threshold`` and ``orchestrate_sample_interval``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_orchestrator import options
from pytest_orchestrator.options import DEFAULT_MEM_THRESHOLD, DEFAULT_SAMPLE_INTERVAL

if TYPE_CHECKING:
    from pytest_orchestrator.guard.pressure import PressureGauge, PressureView
    from pytest_orchestrator.phases.map.slice_cache import SliceCache

__all__ = ["orchestrator_pressure", "orchestrator_slice_cache"]


def _ini(config: pytest.Config, name: str) -> Any:
    """`options.read`, a bad value failing the tests that use the fixture, saying why."""
    try:
        return options.read(config, name)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def _pressure_settings(config: pytest.Config) -> tuple[float, float]:
    """``(threshold, interval)`` from ``orchestrate_mem_threshold`` / ``_sample_interval``."""
    threshold = float(_ini(config, "orchestrate_mem_threshold"))
    interval = float(_ini(config, "orchestrate_sample_interval"))
    if not 0 < threshold <= 1:
        raise pytest.UsageError(
            f"ini orchestrate_mem_threshold = {threshold} must be a fraction in (0, 1], e.g. "
            f"{DEFAULT_MEM_THRESHOLD:.2f}"
        )
    if interval <= 0:
        raise pytest.UsageError(
            f"ini orchestrate_sample_interval = {interval} must be positive seconds, e.g. "
            f"{DEFAULT_SAMPLE_INTERVAL}"
        )
    return threshold, interval


def _cache_dir(config: pytest.Config) -> Path:
    """``orchestrate_cache_dir``, relative to the rootdir unless absolute."""
    return config.rootpath / str(_ini(config, "orchestrate_cache_dir"))


@pytest.fixture(scope="session")
def orchestrator_pressure(
    pytestconfig: pytest.Config,
) -> Iterator[PressureGauge | PressureView]:
    """The run's memory gauge (or, under a parent's gauge, a read-only view of it)."""
    from pytest_orchestrator.guard.pressure import PressureGauge, PressureView

    view = PressureView.from_env()
    if view is not None:
        yield view
        return
    threshold, interval = _pressure_settings(pytestconfig)
    with PressureGauge(interval=interval, threshold=threshold) as gauge:
        yield gauge


@pytest.fixture(scope="session")
def orchestrator_slice_cache(pytestconfig: pytest.Config) -> Iterator[SliceCache]:
    """The slice cache in ``orchestrate_cache_dir``, memory-only if that cannot be used."""
    from pytest_orchestrator.phases.map.slice_cache import SliceCache

    with SliceCache.open(_cache_dir(pytestconfig)) as cache:
        yield cache
