"""pytest-orchestrator: ``pytest --orchestrate "COMMAND"`` turns one sentence into a tested,
gated pull request.

This facade imports nothing heavy: ``pytest --help`` and plain test runs load the plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_orchestrator.model import SimulationResult
    from pytest_orchestrator.plan import Plan, Step

__all__ = ["Plan", "SimulationResult", "Step", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("Plan", "Step"):
        from pytest_orchestrator import plan

        return getattr(plan, name)
    if name == "SimulationResult":
        from pytest_orchestrator.model import SimulationResult

        return SimulationResult
    raise AttributeError(f"module 'pytest_orchestrator' has no attribute {name!r}")
