"""Measuring what a fresh memory gauge sees, shared by the gauge tests."""

from __future__ import annotations

from pytest_orchestrator.guard.pressure import PressureGauge

MiB = 1 << 20


def tree_bytes(**kwargs: object) -> int:
    """What a fresh gauge measures right now."""
    return PressureGauge(export_env=False, **kwargs).sample().rss_bytes  # type: ignore[arg-type]
