"""Model-written edits applied in memory, and the prompt fitting they rely on (pure functions)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_orchestrator.phases.plan.edits import (
    EditProblems,
    apply_edits,
    creation_patch,
    file_change,
    modification_patch,
)
from pytest_orchestrator.phases.plan.prompting import (
    BaseTree,
    SliceView,
    locate_symbol,
    nearest_match,
    render_slices,
    trim_text,
)
from pytest_orchestrator.tokens import estimate_tokens

SOURCE = '''\
import math


@cache
def area(w, h):
    """Area."""
    return w * h


class Shape:
    def area(self):
        return 0
'''

lines = st.lists(st.sampled_from(["a\n", "b\n", "def f():\n", "    return 1\n", "\n"]), max_size=12)


@given(old=lines, new=lines)
def test_a_file_change_is_unique_and_exact(old: list[str], new: list[str]) -> None:
    """For any two texts, the replacement's search occurs once and yields exactly the new text."""
    before, after = "".join(old), "".join(new)
    if not before or before == after:
        return
    change = file_change(before, after)
    assert before.count(change.search) == 1
    assert before.replace(change.search, change.replace, 1) == after


def test_a_file_change_is_the_smallest_unique_region() -> None:
    """Only the changed lines (widened until unique) are searched for."""
    change = file_change("a\nb\nc\nd\n", "a\nB\nc\nd\n")
    assert (change.search, change.replace) == ("b\n", "B\n")


def test_search_replace_and_symbol_edits_apply_in_order() -> None:
    """Edits apply one after another; a symbol edit replaces the definition with decorators."""
    edits = [
        {"search": "import math\n", "replace": "import math\nimport functools\n"},
        {"symbol": "area", "replace": "def area(w, h):\n    return abs(w * h)"},
        {"symbol": "Shape.area", "replace": "    def area(self):\n        return 1\n"},
    ]
    result = apply_edits("shape.py", SOURCE, edits)
    assert "import functools\n" in result
    assert "@cache" not in result
    assert "    return abs(w * h)\n" in result
    assert "        return 1\n" in result


def test_every_edit_that_does_not_apply_is_reported() -> None:
    """Not found (with the nearest match), ambiguous, unknown symbol: all reported at once."""
    edits = [
        {"search": "return w * height", "replace": "x"},
        {"search": "area", "replace": "x"},
        {"symbol": "volume", "replace": "x"},
        {"replace": "x"},
    ]
    with pytest.raises(EditProblems) as info:
        apply_edits("shape.py", SOURCE, edits)
    first, second, third, fourth = info.value.problems
    assert first.startswith("edit 1: search text not found in shape.py; nearest match at line 7")
    assert "return w * h" in first
    assert "occurs more than once" in second
    assert "no function or class 'volume'" in third
    assert "give either 'search'" in fourth


def test_an_edit_that_breaks_the_syntax_is_refused() -> None:
    """A Python file must still parse after the edits."""
    with pytest.raises(EditProblems, match="does not parse"):
        apply_edits("shape.py", SOURCE, [{"search": "return w * h", "replace": "return w *"}])


def test_patches_create_and_fill_files_git_can_apply(tmp_path: Path) -> None:
    """creation_patch and modification_patch are accepted by git apply."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "empty.py").write_text("")
    for patch in (creation_patch("new.py", "X = 1"), modification_patch("empty.py", "", "Y = 2\n")):
        subprocess.run(["git", "apply", "-"], cwd=tmp_path, input=patch, text=True, check=True)
    assert (tmp_path / "new.py").read_text() == "X = 1\n"
    assert (tmp_path / "empty.py").read_text() == "Y = 2\n"


# ---------------------------------------------------------------------------- prompting


def test_locate_symbol_finds_functions_methods_and_decorators() -> None:
    """Line ranges include decorators; Class.method is resolved through the class."""
    assert locate_symbol(SOURCE, "area") == (4, 7)
    assert locate_symbol(SOURCE, "Shape.area") == (11, 12)
    assert locate_symbol(SOURCE, "missing") is None
    assert locate_symbol("def (:", "x") is None


def test_nearest_match_points_at_the_closest_lines() -> None:
    """The nearest match is the most similar window of the same height."""
    line, ratio, text = nearest_match(SOURCE, "    return w*h\n")
    assert line == 7
    assert ratio > 0.8
    assert text == "    return w * h\n"


@given(st.text(alphabet="ab \n", max_size=400), st.integers(min_value=5, max_value=60))
def test_trim_text_respects_its_budget(text: str, budget: int) -> None:
    """A trimmed text never exceeds the budget by more than its marker (~head, ~tail)."""
    assert estimate_tokens(trim_text(text, budget)) <= budget + 8


def test_slices_are_shown_whole_then_as_signatures_then_dropped() -> None:
    """Best slices get bodies; when the budget runs short, signatures; then nothing."""
    body = "def f{i}(x):\n" + "    x = x + 1  # work\n" * 30 + "    return x"
    views = [SliceView("m.py", f"f{i}", 1, 32, body.format(i=i)) for i in range(12)]
    text, stats = render_slices(views, 400)
    assert stats["whole"] >= 1
    assert stats["signature"] >= 1
    assert stats["dropped"] >= 1
    assert text.index("m.py::f0") < text.index("body omitted")
    assert estimate_tokens(text) <= 400


def test_the_base_tree_reads_the_commit_not_the_disk(tmp_path: Path) -> None:
    """BaseTree serves HEAD's text; files added since are absent; outside git, the disk."""
    (tmp_path / "a.py").write_text("base\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    (tmp_path / "a.py").write_text("dirty\n")
    (tmp_path / "b.py").write_text("new\n")
    tree = BaseTree(tmp_path)
    assert tree.read("a.py") == "base\n"
    assert tree.read("b.py") is None
    outside = tmp_path / "plain"
    outside.mkdir()
    (outside / "c.py").write_text("disk\n")
    assert BaseTree(Path("/")).read(str(outside / "c.py").lstrip("/")) == "disk\n"
