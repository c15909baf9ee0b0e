"""The session fixtures plugin loads nothing heavy (its real pytest runs are in
tests/slow/test_fixtures.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_importing_the_fixtures_loads_nothing_heavy() -> None:
    """Registering the plugin imports neither psutil, numpy nor sqlite3."""
    code = (
        "import sys, pytest_orchestrator.fixtures\n"
        "print(sorted(m for m in ('psutil', 'numpy', 'sqlite3') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
