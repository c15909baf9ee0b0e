"""The source tree the capture tests share: a module with a function and a method, and tests
that call them through every import style."""

from __future__ import annotations

from pathlib import Path

LIB = """\
def area(shape, size):
    if shape == "square":
        return size * size
    raise ValueError(shape)


class Tile:
    def __init__(self, size):
        self.size = size

    def area(self):
        return area("square", self.size)
"""


TESTS = """\
from pkg.geo import area
import pkg.geo


def test_square():
    assert area("square", 3) == 9


def test_through_module():
    assert pkg.geo.area("square", 4) == 16


def test_tile():
    assert pkg.geo.Tile(5).area() == 25
"""


def make_tree(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "geo.py").write_text(LIB)
    (root / "tests").mkdir()
    (root / "tests" / "test_geo.py").write_text(TESTS)
    (root / "tests" / "test_other.py").write_text("def test_nothing():\n    pass\n")
    return root
