"""Arguments captured from the base revision's tests come first among sampling inputs."""

from __future__ import annotations

from pathlib import Path

from pytest_orchestrator.phases.montecarlo.child.capture import affected_test_files
from tests.phases.montecarlo.capture_helpers import make_tree


def test_affected_test_files_are_those_naming_a_target(tmp_path: Path) -> None:
    """Only test files that mention a target's name are run for capture."""
    tree = make_tree(tmp_path)
    assert affected_test_files(tree, {"area"}) == ["tests/test_geo.py"]
