"""A move takes every import form with it (tabulate's function-level test imports went red):
module-level, inside a function, parenthesised lists, aliases, ``import m`` + ``m.name``,
relative imports; and the old module's ``__all__`` stops naming what it no longer holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_orchestrator.phases.execute import imports, reshape
from pytest_orchestrator.phases.execute.refactor import module_of

CORE = '''\
"""Formats."""

__all__ = ["other", "simple"]


def simple(sep):
    """A separator format.

    >>> simple("!")
    'x!'
    """
    return "x" + sep


def other():
    return "other"
'''

TESTS = """\
import pkg.core
import pkg.core as pc
from pkg import core
from pkg.core import (other,
    simple)
from pkg.core import simple as sp


def test_function_level():
    from pkg.core import simple
    assert simple("a") == "xa"


def test_attribute_uses():
    assert pkg.core.simple("b") == "xb"
    assert pc.simple("c") == "xc"
    assert core.simple("e") == "xe"
    assert core.other() == "other"
    assert sp("d") == "xd"
    assert simple("f") == "xf"
    assert other() == "other"
"""

RELATIVE = """\
def use():
    from .core import simple
    return simple("r")
"""


def nothing(rel: str) -> None:
    return None


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "core.py").write_text(CORE)
    (tmp_path / "pkg" / "user.py").write_text(RELATIVE)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_core.py").write_text(TESTS)
    (tmp_path / "tests" / "test_user.py").write_text(
        "from pkg.user import use\n\n\ndef test_use():\n    assert use() == 'xr'\n"
    )
    return tmp_path


def suite(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--doctest-modules"],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_every_import_form_follows_the_move(root: Path) -> None:
    assert suite(root).returncode == 0
    reshape.move(root, "simple", "pkg/formats.py", None, nothing, reexport=False)
    py = [p.relative_to(root).as_posix() for p in root.rglob("*.py")]
    modules = {rel: module_of(root, rel) for rel in py}
    assert imports.stale(root, py, modules, "pkg.core", "simple") == []
    tests = (root / "tests" / "test_core.py").read_text()
    assert "    from pkg.formats import simple\n" in tests
    assert "from pkg.formats import simple as sp\n" in tests
    assert "from pkg.core import other\n" in tests
    assert "pc.simple" not in tests
    assert "pkg.core.simple" not in tests
    assert "core.other()" in tests  # the binding still used for another name stays
    assert "import pkg.core as pc" not in tests  # used only for the moved name
    assert "from .core import simple" not in (root / "pkg" / "user.py").read_text()
    core = (root / "pkg" / "core.py").read_text()
    assert '__all__ = ["other"]' in core
    assert "def simple" not in core
    formats = (root / "pkg" / "formats.py").read_text()
    assert formats.startswith("def simple(sep):")  # no import the moved code does not read
    result = suite(root)
    assert result.returncode == 0, result.stdout


def test_a_reference_left_behind_is_reported_stale(root: Path) -> None:
    py = ["tests/test_core.py", "pkg/user.py"]
    modules = {rel: module_of(root, rel) for rel in py}
    found = imports.stale(root, py, modules, "pkg.core", "simple")
    assert [(s.path, s.line) for s in found] == [
        ("pkg/user.py", 2),
        ("tests/test_core.py", 4),
        ("tests/test_core.py", 6),
        ("tests/test_core.py", 10),
        ("tests/test_core.py", 15),
        ("tests/test_core.py", 16),
        ("tests/test_core.py", 17),
    ]


def test_a_module_the_moved_code_needs_is_imported_once(root: Path) -> None:
    """Moving ``other`` when ``simple`` stays: the old module keeps its own names, the tests
    import ``other`` from the new place, each binding rewritten once."""
    reshape.move(root, "other", "pkg/others.py", None, nothing, reexport=False)
    tests = (root / "tests" / "test_core.py").read_text()
    assert tests.count("import pkg.others\n") == 1
    assert "pkg.others.other()" in tests
    assert suite(root).returncode == 0


def test_each_function_gets_its_own_import(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "core.py").write_text(CORE)
    two = (
        "def test_a():\n    import pkg.core as pc\n    assert pc.simple('a') == 'xa'\n\n\n"
        "def test_b():\n    import pkg.core as pc\n    assert pc.simple('b') == 'xb'\n"
    )
    (tmp_path / "test_two.py").write_text(two)
    reshape.move(tmp_path, "simple", "pkg/formats.py", None, nothing, reexport=False)
    assert (tmp_path / "test_two.py").read_text().count("    import pkg.formats\n") == 2
    assert suite(tmp_path).returncode == 0


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('__all__ = ["a", "b", "c"]\n', '__all__ = ["a", "c"]\n'),
        ('__all__ = ["a", "b"]\n', '__all__ = ["a"]\n'),
        ('__all__ = ("b",)\n', "__all__ = ()\n"),
        ('__all__ = [\n    "a",\n    "b",\n]\n', '__all__ = [\n    "a",\n]\n'),
        ('__all__ = ["a"]\n', '__all__ = ["a"]\n'),
    ],
)
def test_drop_from_all(source: str, expected: str) -> None:
    assert imports.drop_from_all(source, "b") == expected


def test_an_import_only_the_doctests_read_stays_marked_for_linters() -> None:
    """tabulate's moved ``simple_separated_format`` has a doctest calling ``tabulate``: the
    import stays (the doctest needs it) and ruff does not report it unused."""
    text = (
        "from pkg.core import __all__, helper, render, unused\n\n\n"
        'def fmt(x):\n    """\n    >>> render(fmt(1))\n    \'1\'\n    """\n    return helper(x)\n'
    )
    kept = imports.drop_unused(text)
    assert kept.startswith(
        "from pkg.core import helper, render  # noqa: F401 - read by the doctests\n"
    )
    assert imports.drop_unused(kept) == kept


def test_the_old_module_keeps_pep8_spacing_and_its_author_layout() -> None:
    tail = "X = 1\ndef y():\n    pass\n"  # glued by its author: left so
    after = '"""Core."""\nfrom pkg.fmt import simple\ndef other():\n    return simple()\n' + tail
    authored = reshape.glued('"""Core."""\n\n\ndef simple():\n    pass\n' + tail)
    assert reshape.spaced(after, authored) == (
        '"""Core."""\n\nfrom pkg.fmt import simple\n\n\ndef other():\n    return simple()\n' + tail
    )
