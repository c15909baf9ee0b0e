"""Fixtures of Map's tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import commit_all, git

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "wheel"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The bundled example as a clean git repository of one commit (a tree Map may cache)."""
    root = Path(shutil.copytree(EXAMPLE, tmp_path / "wheel"))
    git(tmp_path, "init", "-q", "-b", "main", str(root))
    commit_all(root)
    return root
