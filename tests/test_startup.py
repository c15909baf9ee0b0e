"""The plugin's start-up: pytest loads the package without rewriting its asserts."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PROBE = """
import sys

def test_loaded_plainly():
    loaders = {
        name: type(module.__loader__).__name__
        for name, module in sys.modules.items()
        if name == "pytest_orchestrator" or name.startswith("pytest_orchestrator.")
    }
    assert "pytest_orchestrator.plugin" in loaders
    rewritten = sorted(n for n, kind in loaders.items() if kind == "AssertionRewritingHook")
    print("REWRITTEN", rewritten)
"""


def test_the_package_is_not_assert_rewritten(tmp_path: Path) -> None:
    """pytest marks every module of a ``pytest11`` distribution for rewriting, which under
    ``PYTHONDONTWRITEBYTECODE=1`` recompiled the whole package at every start; only the
    package's ``__init__`` (imported before it can unmark the rest) and the modules pytest is
    asked to import as plugins by name (``fixtures``; the phases in a run) are."""
    (tmp_path / "test_probe.py").write_text(PROBE)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "test_probe.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("REWRITTEN"))
    rewritten = set(ast.literal_eval(line.removeprefix("REWRITTEN ")))
    assert rewritten <= {"pytest_orchestrator", "pytest_orchestrator.fixtures"}, line
