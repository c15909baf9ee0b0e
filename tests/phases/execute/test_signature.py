"""Removing an unused parameter: each call shape rewritten, each unseeable use refused."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_orchestrator.errors import EditError
from pytest_orchestrator.phases.execute import reshape, signature


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def remove(root: Path, symbol: str, param: str) -> dict[str, str]:
    changed = reshape.remove_parameter(root, symbol, param, None, lambda rel: None)
    return {rel: (root / rel).read_text() for rel in changed}


def runs(root: Path, code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


FUNCTION = """\
def pad(text, width, unused, fill=" ", *, strict=False):
    return text.ljust(width, fill) if not strict else text
"""


def test_a_module_function_and_its_calls_by_position_keyword_alias_and_module(
    tmp_path: Path,
) -> None:
    root = write(
        tmp_path,
        {
            "pkg/__init__.py": "from .text import pad\n",
            "pkg/text.py": FUNCTION
            + "\n\ndef row(cells):\n    return [pad(c, 4, None) for c in cells]\n",
            "app.py": """\
                import pkg.text
                from pkg import pad as p
                from pkg.text import pad


                def show():
                    return [
                        pad("a", 3, 0, "."),
                        p("b", 3, unused=1, fill="-"),
                        pkg.text.pad(
                            "c",
                            3,
                            None,  # nothing
                        ),
                    ]
                """,
        },
    )
    before = runs(root, "import app, pkg.text; print(app.show(), pkg.text.row(['x']))")
    changed = remove(root, "pad", "unused")
    assert sorted(changed) == ["app.py", "pkg/text.py"]
    assert 'def pad(text, width, fill=" ", *, strict=False):' in changed["pkg/text.py"]
    assert "pad(c, 4)" in changed["pkg/text.py"]
    assert 'pad("a", 3, ".")' in changed["app.py"]
    assert 'p("b", 3, fill="-")' in changed["app.py"]
    assert 'pkg.text.pad(\n            "c",\n            3,\n        )' in changed["app.py"]
    assert runs(root, "import app, pkg.text; print(app.show(), pkg.text.row(['x']))") == before


def test_a_keyword_only_parameter_takes_its_bare_star_along(tmp_path: Path) -> None:
    root = write(tmp_path, {"m.py": "def f(a, *, b=1):\n    return a\n\n\nf(1, b=2)\n"})
    assert remove(root, "f", "b")["m.py"] == "def f(a):\n    return a\n\n\nf(1)\n"


def test_a_positional_only_parameter_and_its_slash(tmp_path: Path) -> None:
    root = write(tmp_path, {"m.py": "def f(a, /, b):\n    return b\n\n\nf(1, 2)\nf(1, b=2)\n"})
    assert remove(root, "f", "a")["m.py"] == "def f(b):\n    return b\n\n\nf(2)\nf(b=2)\n"


def test_the_only_argument_with_a_trailing_comma(tmp_path: Path) -> None:
    root = write(tmp_path, {"m.py": "def f(\n    a,\n):\n    return 1\n\n\nf(\n    2,\n)\n"})
    text = remove(root, "f", "a")["m.py"]
    assert "def f():" in text
    assert "f()" in text


METHODS = """\
    class Table:
        def put(self, row, unused=None):
            return [row]

        def twice(self, row):
            return self.put(row, 1) + Table.put(self, row, unused=2)

        @staticmethod
        def glue(cells, sep, unused):
            return sep.join(cells)

        @classmethod
        def make(cls, unused, size):
            return cls() if size else None


    class Wide(Table):
        def both(self, row):
            return super().put(row, None) + Wide.put(self, row, 3)


    def use(t):
        return t.put("r", 4), Table.glue(["a"], "-", 0), Table.make(0, 1) is not None
    """


def test_methods_through_self_super_the_class_and_a_subclass(tmp_path: Path) -> None:
    root = write(tmp_path, {"m.py": METHODS})
    before = runs(
        root, "import m; print(m.Wide().both('x'), m.Table().twice('y'), m.use(m.Wide()))"
    )
    text = remove(root, "Table.put", "unused")["m.py"]
    assert "def put(self, row):" in text
    assert "self.put(row) + Table.put(self, row)" in text
    assert "super().put(row) + Wide.put(self, row)" in text
    assert 't.put("r")' in text
    text = remove(root, "Table.glue", "unused")["m.py"]
    assert "def glue(cells, sep):" in text
    assert 'Table.glue(["a"], "-")' in text
    text = remove(root, "Table.make", "unused")["m.py"]
    assert "def make(cls, size):" in text
    assert "Table.make(1)" in text
    after = runs(root, "import m; print(m.Wide().both('x'), m.Table().twice('y'), m.use(m.Wide()))")
    assert after == before


def test_a_stub_loses_the_parameter_too(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "m.py": "def f(a, b=None):\n    return a\n",
            "m.pyi": "def f(a: int, b: object = ...) -> int: ...\n",
        },
    )
    changed = remove(root, "f", "b")
    assert changed["m.pyi"] == "def f(a: int) -> int: ...\n"


REFUSED = [
    ("def f(a, b):\n    return a + b\n", "f", "b", r"'b' is used in the body of 'f' \(line 2\)"),
    ("def f(a, b):\n    return locals()\n", "f", "b", r"reads its own locals \(locals\(\)"),
    ("def f(a, *b):\n    return a\n", "f", "b", r"collects the extra arguments"),
    ("def f(a):\n    return a\n", "f", "z", r"'f' has no parameter 'z'"),
    (
        "def f(a, b):\n    return a\n\n\nrow = f\n",
        "f",
        "b",
        r"'f' is used as a value at m\.py:5 .*cannot all be seen",
    ),
    (
        "def f(a, b):\n    return a\n\n\nprint(list(map(f, [1], [2])))\n",
        "f",
        "b",
        r"used as a value at m\.py:5",
    ),
    (
        "import functools\n\n\n@functools.singledispatch\ndef f(a, b):\n    return a\n",
        "f",
        "b",
        r"decorated with @singledispatch, which could call it",
    ),
    (
        "def f(a, b):\n    return a\n\n\ndef g(*args):\n    return f(*args)\n",
        "f",
        "b",
        r"the call at m\.py:6 passes \*args",
    ),
    (
        "def f(a, b=1):\n    return a\n\n\ndef g(**kw):\n    return f(1, **kw)\n",
        "f",
        "b",
        r"passes \*\*kwargs, which may hold 'b'",
    ),
    (
        "def f(a, b):\n    return a\n\n\nf(1, print('x'))\n",
        "f",
        "b",
        r"argument passed as 'b' at m\.py:5 is computed \(print\('x'\)\)",
    ),
    (
        "def f(a, b):\n    return a\n\n\ng = getattr(__import__('m'), 'f')\n",
        "f",
        "b",
        r"named in the string 'f' at m\.py:5",
    ),
    (
        'def f(a, b):\n    """\n    >>> f(1, 2)\n    1\n    """\n    return a\n',
        "f",
        "b",
        r"appears in a doctest at m\.py:3",
    ),
    (
        "def _parse(v, b):\n    return v\n\n\ndef __getattr__(name):\n"
        "    return globals()[f'_{name}']\n",
        "_parse",
        "b",
        r"may be looked up by a computed name at m\.py:6",
    ),
    (
        "class V:\n    def visit(self, n):\n        return getattr(self, f'visit_{n}')(n, 0)\n\n"
        "    def visit_Macro(self, n, frame):\n        return n\n",
        "V.visit_Macro",
        "frame",
        r"may be looked up by a computed name at m\.py:3",
    ),
    (
        "class C:\n    def __exit__(self, a, b, c):\n        return None\n",
        "C.__exit__",
        "a",
        r"special method: Python itself calls it",
    ),
    (
        "class C:\n    def close(self, now=False):\n        return 1\n",
        "C.close",
        "now",
        r"builtin types also have a method 'close'",
    ),
    (
        "class C:\n    def area(self, unit=None):\n        return 1\n\n\n"
        "class D(C):\n    def area(self, unit=None):\n        return 2\n",
        "C.area",
        "unit",
        r"D\.area \(m\.py:7\) is another method named 'area'.*an override would keep",
    ),
    (
        "import textwrap\n\n\nclass W(textwrap.TextWrapper):\n"
        "    def _split(self, text, unused=None):\n        return []\n",
        "W._split",
        "unused",
        r"overrides .*TextWrapper\._split, defined outside the repository",
    ),
    (
        "class C:\n    def area(self, unit=None):\n        return 1\n\n\nhook = C().area\n",
        "C.area",
        "unit",
        r"'area' is used as a value at m\.py:6",
    ),
]


@pytest.mark.parametrize(("source", "symbol", "param", "message"), REFUSED)
def test_what_cannot_be_seen_or_is_used_is_refused_and_nothing_changes(
    tmp_path: Path, source: str, symbol: str, param: str, message: str
) -> None:
    (tmp_path / "m.py").write_text(source)
    with pytest.raises(EditError, match=message):
        signature.plan_removal(tmp_path, symbol, param, None)
    assert (tmp_path / "m.py").read_text() == source


def test_a_local_of_the_same_name_is_not_a_call_of_the_function(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "m.py": """\
                def f(a, b):
                    return a


                def g(f):
                    return f(1, 2)


                print(f(1, 2), g(max))
                """
        },
    )
    text = remove(root, "f", "b")["m.py"]
    assert "return f(1, 2)" in text  # g's parameter, not the module function
    assert "print(f(1), g(max))" in text


DOCUMENTED = '''\
def f(a, unused=None, b=2):
    """Do it.

    :param a: the input
    :param unused: ignored, kept for compatibility
        with old callers
    :type unused: object
    :param b: the other

    Args:
        unused (object): ignored.
        b: the other
    """
    return a + b
'''


def test_the_docstring_entries_of_the_parameter_go_with_it(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(DOCUMENTED)
    text = remove(tmp_path, "f", "unused")["m.py"]
    assert "unused" not in text
    assert ":param a: the input\n    :param b: the other\n" in text
    assert "Args:\n        b: the other\n" in text


def test_a_star_import_binds_the_function_too(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.core import *\n",
            "pkg/core.py": "def area(w, h, unit=None):\n    return w * h\n",
            "app.py": "from pkg import *\n\nprint(area(2, 3, 'cm'))\n",
        },
    )
    assert "print(area(2, 3))" in remove(root, "area", "unit")["app.py"]
