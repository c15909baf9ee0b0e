"""``python -m pytest_orchestrator.mcp``: serve the orchestrator's tools over stdio."""

from __future__ import annotations

from pytest_orchestrator.mcp import main

if __name__ == "__main__":
    main()
