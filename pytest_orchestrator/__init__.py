"""pytest-orchestrator: ``pytest --orchestrate "COMMAND"`` turns one sentence into a tested,
gated pull request.

This facade imports nothing heavy: ``pytest --help`` and plain test runs load the plugin.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_orchestrator.model import SimulationResult
    from pytest_orchestrator.plan import Plan, Step

__all__ = ["Plan", "SimulationResult", "Step", "__version__"]

__version__ = "0.1.0"


def _not_rewritten() -> None:
    """Keep pytest from rewriting this package's asserts when it imports the plugin.

    pytest marks every module of a distribution with a ``pytest11`` entry point for assertion
    rewriting, and keeps a rewritten module only as bytecode of its own, which is never written
    under ``PYTHONDONTWRITEBYTECODE=1`` (common in containers): every start then parsed,
    rewrote and compiled the package's ~200 modules again (~0.8 CPU-s of a dry run) instead of
    loading their installed bytecode. Nothing here needs it: the package's asserts are
    invariants, not tests (modules pytest is asked to import as plugins, ``fixtures`` and the
    phases, are marked again by pytest itself). pytest has no public way to unmark a package,
    so this reaches into its import hook, and does nothing if that ever changes.
    """
    for finder in sys.meta_path:
        if type(finder).__name__ != "AssertionRewritingHook":
            continue
        marked, seen = (
            getattr(finder, n, None) for n in ("_must_rewrite", "_marked_for_rewrite_cache")
        )
        if isinstance(marked, set) and isinstance(seen, dict):
            marked.discard(__name__)
            seen.clear()


_not_rewritten()


def __getattr__(name: str) -> Any:
    if name in ("Plan", "Step"):
        from pytest_orchestrator import plan

        return getattr(plan, name)
    if name == "SimulationResult":
        from pytest_orchestrator.model import SimulationResult

        return SimulationResult
    raise AttributeError(f"module 'pytest_orchestrator' has no attribute {name!r}")
