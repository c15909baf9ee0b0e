"""Review checks each refactoring op's own promise on the changed tree: done right it
passes; with a stale reference left (the kind the tests may not notice) it fails, saying
where."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_orchestrator.phases.execute import reshape
from pytest_orchestrator.phases.execute.refactor import rename
from pytest_orchestrator.phases.review import promises
from pytest_orchestrator.plan import Step

CORE = '''\
"""Core."""


def simple(sep, width=1, unused=None):
    return "x" * width + sep


def other():
    base = "o"
    return base + simple("-", width=2)
'''

TESTS = """\
from pkg import core
from pkg.core import other


def test_simple():
    from pkg.core import simple
    assert simple("a", width=1) == "xa"
    assert core.other() == other()
"""


def nothing(rel: str) -> None:
    return None


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "core.py").write_text(CORE)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_core.py").write_text(TESTS)
    return tmp_path


def step(op: str, **args: object) -> Step:
    return Step(id="s", pool="mutate", op=op, args=args)


def verdict(root: Path, s: Step) -> tuple[bool, str]:
    found = promises.check(root, s)
    assert found is not None
    return found.ok, found.detail


def test_a_move_done_right_keeps_its_promise(root: Path) -> None:
    reshape.move(root, "simple", "pkg/fmt.py", "pkg/core.py", nothing, reexport=False)
    s = step("move_symbol", symbol="simple", to="pkg/fmt.py", path="pkg/core.py")
    assert verdict(root, s) == (
        True,
        "simple defined in pkg/fmt.py; no import of it from the old module left",
    )


def test_a_stale_function_level_import_breaks_the_move_promise(root: Path) -> None:
    """What rope left in tabulate: the definition moved, a test still imports the old place."""
    (root / "pkg" / "fmt.py").write_text(CORE.split("def other")[0])
    (root / "pkg" / "core.py").write_text(
        'from pkg.fmt import simple\n\n\ndef other():\n    return simple("-")\n'
    )
    s = step("move_symbol", symbol="simple", to="pkg/fmt.py", path="pkg/core.py")
    ok, detail = verdict(root, s)
    assert not ok
    assert (
        "tests/test_core.py:6 still imports the old location (from pkg.core import simple)"
        in detail
    )


def test_a_module_rename_promise(root: Path) -> None:
    s = step("rename_module", path="pkg/core.py", new_name="kernel")
    reshape.rename_module(root, "pkg/core.py", "kernel", nothing)
    assert verdict(root, s)[0]
    (root / "tests" / "test_late.py").write_text("def test_late():\n    import pkg.core\n")
    ok, detail = verdict(root, s)
    assert not ok
    assert "tests/test_late.py:2 still imports pkg.core" in detail


def test_a_parameter_rename_promise(root: Path) -> None:
    s = step(
        "change_signature",
        symbol="simple",
        action="rename",
        param="width",
        new_name="count",
        path="pkg/core.py",
    )
    reshape.rename_parameter(root, "simple", "width", "count", "pkg/core.py", nothing)
    assert verdict(root, s)[0]
    text = (root / "tests" / "test_core.py").read_text()
    (root / "tests" / "test_core.py").write_text(text.replace("count=1", "width=1"))
    ok, detail = verdict(root, s)
    assert not ok
    assert "tests/test_core.py:7 still passes width= to simple" in detail


def test_add_and_remove_parameter_promises(root: Path) -> None:
    add = step("change_signature", symbol="simple", action="add", param="fill", default="' '")
    assert not verdict(root, add)[0]
    reshape.add_parameter(root, "simple", "fill", "' '", None, nothing)
    assert verdict(root, add)[0]
    remove = step("change_signature", symbol="simple", action="remove", param="unused")
    assert verdict(root, remove) == (False, "simple still has the parameter unused")
    reshape.remove_parameter(root, "simple", "unused", None, nothing)
    assert verdict(root, remove)[0]


def test_inline_promises(root: Path) -> None:
    local = step("inline", symbol="base", within="other", path="pkg/core.py")
    assert not verdict(root, local)[0]
    reshape.inline(root, "base", "pkg/core.py", nothing, within="other")
    assert verdict(root, local)[0]
    gone = step("inline", symbol="other")
    ok, detail = verdict(root, gone)
    assert not ok
    assert "pkg/core.py:8 still defines other" in detail


def test_extract_promise(root: Path) -> None:
    s = step("extract", path="pkg/core.py", new_name="prefix", start_line=9, end_line=9)
    assert verdict(root, s) == (
        False,
        "prefix is not defined in pkg/core.py; prefix is never called in pkg/core.py",
    )
    reshape.extract(root, "pkg/core.py", 9, 9, "prefix", nothing)
    assert verdict(root, s)[0]


def test_the_rename_check_is_still_named_rename(root: Path) -> None:
    rename(root, "other", "another")
    found = promises.check(root, step("rename_symbol", symbol="other", new_name="another"))
    assert found is not None
    assert (found.name, found.ok) == ("rename", True)


def test_ops_with_no_promise_have_no_check(root: Path) -> None:
    assert promises.check(root, step("search", pattern="x")) is None
