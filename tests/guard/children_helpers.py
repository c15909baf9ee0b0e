"""A child module to run under `run_children`, shared by the child-process tests."""

from __future__ import annotations

from pathlib import Path

from pytest_orchestrator.guard.children import ChildSpec, child_env


def spec(tmp_path: Path, source: str, label: str = "c") -> ChildSpec:
    (tmp_path / f"{label}_mod.py").write_text(source)
    return ChildSpec(label, f"{label}_mod", [], tmp_path, child_env(tmp_path))
