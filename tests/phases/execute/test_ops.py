"""The built-in ops, run directly against a worktree-like directory."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_orchestrator.errors import EditError
from pytest_orchestrator.phases.execute import ops
from pytest_orchestrator.plan import ApplyPatchArgs, ReadSliceArgs, ReplaceBlockArgs


def ctx(root: Path) -> Any:
    """A StepContext stand-in: these ops only need the root."""
    return SimpleNamespace(root=root)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "m.py").write_text(
        "import math\n\n\n@staticmethod\ndef area(r):\n    x = r * r\n    return math.pi * x\n\n\n"
        "def other():\n    return 1\n"
    )
    return tmp_path


def test_replace_block_edits_exactly_one_place(root: Path) -> None:
    out = ops.replace_block(
        ctx(root), ReplaceBlockArgs(path="m.py", search="return 1", replace="return 2")
    )
    assert out.ok
    assert out.changed_files == ["m.py"]
    assert "return 2" in (root / "m.py").read_text()


def test_replace_block_without_a_match_shows_the_nearest_text(root: Path) -> None:
    """The error carries the closest block, for the user and for the replan."""
    args = ReplaceBlockArgs(path="m.py", search="    x = r * r * 2\n", replace="")
    with pytest.raises(EditError, match=r"0 times.*nearest match \(line 6"):
        ops.replace_block(ctx(root), args)


def test_overlapping_matches_count_as_ambiguous(tmp_path: Path) -> None:
    """'b\\nb\\n' occurs twice (overlapping) in 'b\\nb\\nb\\n': refused, not edited."""
    (tmp_path / "f.py").write_text("b\nb\nb\n")
    with pytest.raises(EditError, match="more than once"):
        ops.replace_block(
            ctx(tmp_path), ReplaceBlockArgs(path="f.py", search="b\nb\n", replace="c\n")
        )
    assert (tmp_path / "f.py").read_text() == "b\nb\nb\n"


def test_a_symlink_cannot_lead_an_edit_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("secret = 1\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "link.py").symlink_to(outside)
    args = ReplaceBlockArgs(path="link.py", search="secret = 1", replace="secret = 2")
    with pytest.raises(EditError, match="symbolic link"):
        ops.replace_block(ctx(repo), args)
    assert outside.read_text() == "secret = 1\n"


def test_read_slice_returns_the_whole_definition(root: Path) -> None:
    out = ops.read_slice(ctx(root), ReadSliceArgs(path="m.py", symbol="area"))
    assert out.data["text"] == "def area(r):\n    x = r * r\n    return math.pi * x"


def test_a_patch_that_does_not_apply_changes_nothing(root: Path) -> None:
    before = (root / "m.py").read_text()
    patch = "--- a/m.py\n+++ b/m.py\n@@ -1,1 +1,1 @@\n-import os\n+import sys\n"
    with pytest.raises(EditError, match="the patch does not apply"):
        ops.apply_patch(ctx(root), ApplyPatchArgs(patch=patch))
    assert (root / "m.py").read_text() == before
