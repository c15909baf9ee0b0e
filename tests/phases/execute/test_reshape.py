"""Move, rename a module, change a signature, inline, extract: the edits, and the refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_orchestrator.errors import EditError
from pytest_orchestrator.phases.execute import reshape

CALC = '''\
"""Calc."""

SCALE = 10


def add(a, b, unused=None):
    """Return a + b."""
    return a + b


def scaled(x):
    # sum
    total = add(x, x)
    result = total * SCALE

    return result
'''

TESTS = """\
from calc import add, scaled
import calc


def test_calc():
    assert add(a=1, b=2) == 3
    assert calc.add(1, 2) == 3
    assert scaled(1) == 20
"""


def nothing(rel: str) -> None:
    return None


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "calc.py").write_text(CALC)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_calc.py").write_text(TESTS)
    return tmp_path


def suite_passes(root: Path) -> bool:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    return proc.returncode == 0


def test_move_a_function_to_a_new_module_keeps_from_imports(root: Path) -> None:
    changed = reshape.move(root, "add", "mathutils/ops.py", None, nothing, reexport=False)
    assert changed == ["calc.py", "mathutils/__init__.py", "mathutils/ops.py", "tests/test_calc.py"]
    assert "def add(a, b, unused=None)" in (root / "mathutils/ops.py").read_text()
    calc = (root / "calc.py").read_text()
    assert "def add" not in calc
    assert "from mathutils.ops import add" in calc
    assert "from mathutils.ops import add" in (root / "tests/test_calc.py").read_text()
    assert suite_passes(root)


def test_move_with_a_reexport_keeps_the_old_import_working(root: Path) -> None:
    (root / "calc.py").write_text(CALC + "\n\ndef double(x):\n    return 2 * x\n")
    (root / "tests/test_old.py").write_text(
        "import calc\n\n\ndef test_old():\n    assert calc.double(2) == 4\n"
    )
    reshape.move(root, "double", "doubling.py", "calc.py", nothing, reexport=True)
    assert "def double(x):" in (root / "doubling.py").read_text()
    assert "from doubling import double  # re-exported: moved" in (root / "calc.py").read_text()
    assert suite_passes(root)


def test_a_reexport_that_would_close_an_import_cycle_is_refused(root: Path) -> None:
    with pytest.raises(EditError, match=r"a re-export of 'scaled' would make"):
        reshape.move(root, "scaled", "scaling.py", "calc.py", nothing, reexport=True)


def test_a_constant_moves_and_its_old_module_imports_it(root: Path) -> None:
    """The old module still uses SCALE: rope imports it there, no re-export line is added."""
    reshape.move(root, "SCALE", "consts.py", "calc.py", nothing, reexport=True)
    assert (root / "consts.py").read_text().strip() == "SCALE = 10"
    assert (root / "calc.py").read_text().count("from consts import SCALE") == 1
    assert suite_passes(root)


def test_a_move_that_would_make_an_import_cycle_is_refused(root: Path) -> None:
    """``add`` moved alone is fine; ``scaled`` needs SCALE from calc and calc uses nothing of
    it; but moving a function the old module calls, that needs a constant the old module
    keeps, would make the two modules import each other."""
    (root / "calc.py").write_text(CALC.replace("return a + b", "return (a + b) * SCALE // SCALE"))
    with pytest.raises(EditError, match=r"would make calc and mathutils import each other"):
        reshape.move(root, "add", "mathutils.py", None, nothing, reexport=False)
    assert "def add" in (root / "calc.py").read_text()


def test_a_method_does_not_move(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("class A:\n    def f(self):\n        return 1\n")
    with pytest.raises(EditError, match="is a method: only module-level"):
        reshape.move(tmp_path, "A.f", "n.py", None, nothing, reexport=False)


def test_rename_a_module_moves_the_file_and_its_imports(root: Path) -> None:
    changed = reshape.rename_module(root, "calc.py", "arith", nothing)
    assert {"arith.py", "calc.py"} <= set(changed)
    assert not (root / "calc.py").exists()
    tests = (root / "tests/test_calc.py").read_text()
    assert "from arith import add, scaled\nimport arith\n" in tests
    assert suite_passes(root)


def test_rename_module_refuses_a_taken_name(root: Path) -> None:
    (root / "arith.py").write_text("")
    with pytest.raises(EditError, match="already exists"):
        reshape.rename_module(root, "calc.py", "arith", nothing)


def test_adding_a_parameter_with_a_default_touches_only_the_definition(root: Path) -> None:
    changed = reshape.add_parameter(root, "add", "precision", "2", None, nothing)
    assert changed == ["calc.py"]
    assert "def add(a, b, unused=None, precision=2):" in (root / "calc.py").read_text()
    assert (root / "tests/test_calc.py").read_text() == TESTS


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    pass\n", "def f(p=1):"),
        ("def f(a, *args, k: int = 2):\n    pass\n", "def f(a, *args, k: int = 2, p=1):"),
        ("def f(a, **kw):\n    pass\n", "def f(a, p=1, **kw):"),
        ("def f(\n    a: int,\n) -> None:\n    pass\n", "def f(\n    a: int, p: int = 1,\n)"),
    ],
)
def test_the_new_parameter_goes_where_python_accepts_it(
    tmp_path: Path, source: str, expected: str
) -> None:
    (tmp_path / "m.py").write_text(source)
    reshape.add_parameter(tmp_path, "f", "p", "1", None, nothing)
    text = (tmp_path / "m.py").read_text()
    assert expected in text
    compile(text, "m.py", "exec")


def test_renaming_a_parameter_updates_keyword_calls(root: Path) -> None:
    reshape.rename_parameter(root, "add", "a", "left", None, nothing)
    assert "def add(left, b, unused=None):\n" in (root / "calc.py").read_text()
    assert "return left + b" in (root / "calc.py").read_text()
    assert "add(left=1, b=2)" in (root / "tests/test_calc.py").read_text()
    assert suite_passes(root)


def test_removing_a_used_parameter_is_refused(root: Path) -> None:
    with pytest.raises(EditError, match="'a' is used in the body"):
        reshape.remove_parameter(root, "add", "a", None, nothing)


def test_removing_an_unused_parameter(root: Path) -> None:
    reshape.remove_parameter(root, "add", "unused", None, nothing)
    assert "def add(a, b):" in (root / "calc.py").read_text()
    assert suite_passes(root)


def test_inline_a_local_variable(root: Path) -> None:
    reshape.inline(root, "result", None, nothing, within="scaled")
    calc = (root / "calc.py").read_text()
    assert "result" not in calc
    assert "return (total * SCALE)" in calc  # parenthesised: evaluation order kept
    assert suite_passes(root)


def test_inlining_a_function_the_tests_call_is_refused(root: Path) -> None:
    with pytest.raises(EditError, match=r"used in tests.*no longer check it"):
        reshape.inline(root, "add", None, nothing)


def test_inlining_a_generator_function_is_refused(tmp_path: Path) -> None:
    source = "def evens(n):\n    yield from range(0, n, 2)\n\n\ndef first(n):\n"
    source += "    return evens(n)\n"
    (tmp_path / "gen.py").write_text(source)
    with pytest.raises(EditError, match=r"'evens' is a generator function.*refused"):
        reshape.check_inline(tmp_path, "evens", None)
    assert (tmp_path / "gen.py").read_text() == source


def test_extract_a_named_block(root: Path) -> None:
    start, end = reshape.block_lines(root, "calc.py", "scaled", "sum")
    assert (start, end) == (13, 14)
    reshape.extract(root, "calc.py", start, end, "compute", nothing)
    calc = (root / "calc.py").read_text()
    assert "def compute(x):" in calc
    assert "result = compute(x)" in calc
    assert suite_passes(root)


def test_extract_refuses_lines_outside_the_file(root: Path) -> None:
    with pytest.raises(EditError, match=r"lines 40-50 are not in calc\.py"):
        reshape.extract(root, "calc.py", 40, 50, "compute", nothing)


def test_every_write_is_checked_first(root: Path) -> None:
    """The op's check refuses before rope writes anything."""

    def refuse(rel: str) -> None:
        raise EditError(f"refused {rel}")

    with pytest.raises(EditError, match="refused"):
        reshape.rename_module(root, "calc.py", "arith", refuse)
    assert (root / "calc.py").read_text() == CALC


def test_blank_lines_rope_drops_on_its_own_are_kept() -> None:
    before = '"""Doc."""\n\nA = 1\n\n\ndef f():\n    return A\n'
    rope_wrote = '"""Doc."""\nA = 1\n\n\n'
    assert reshape.keep_blank_lines(before, rope_wrote) == '"""Doc."""\n\nA = 1\n'


def test_a_moved_doctest_keeps_its_identity_for_the_gate(tmp_path: Path) -> None:
    """The parity check maps the base's doctest id to the file the function moved to."""
    from pytest_orchestrator.plan import Plan, Step

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/__init__.py").write_text("")
    step = Step(
        id="move",
        pool="mutate",
        op="move_symbol",
        args={"symbol": "f", "path": "pkg/__init__.py", "to": "pkg/text.py"},
    )
    ids = reshape.moved_test_ids(tmp_path, Plan(command="move f", steps=[step]))
    assert ids == {"pkg/__init__.py::pkg.f": "pkg/text.py::pkg.text.f"}


def test_a_move_into_a_src_layout_adds_no_package_to_the_source_root(tmp_path: Path) -> None:
    (tmp_path / "src/pkg").mkdir(parents=True)
    (tmp_path / "src/pkg/__init__.py").write_text("")
    (tmp_path / "src/pkg/keys.py").write_text("def f():\n    return 1\n")
    changed = reshape.move(tmp_path, "f", "src/pkg/more/fkeys.py", None, nothing, reexport=False)
    assert "src/pkg/more/__init__.py" in changed
    assert not (tmp_path / "src/__init__.py").exists()


def test_renaming_a_package_lists_every_file_it_moves(tmp_path: Path) -> None:
    """The gate attributes each moved file (a doctest module among them) to the op."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/__init__.py").write_text('"""\n>>> 1\n1\n"""\n')
    (tmp_path / "pkg/core.py").write_text("X = 1\n")
    (tmp_path / "use.py").write_text("from pkg.core import X\n")
    changed = reshape.rename_module(tmp_path, "pkg", "lib", nothing)
    assert {"pkg/__init__.py", "pkg/core.py", "lib/__init__.py", "lib/core.py"} <= set(changed)
    assert "use.py" in changed
    assert (tmp_path / "use.py").read_text() == "from lib.core import X\n"


def test_a_renamed_package_keeps_its_doctest_ids_for_the_gate(tmp_path: Path) -> None:
    from pytest_orchestrator.plan import Plan, Step

    (tmp_path / "inflect").mkdir()
    (tmp_path / "inflect/__init__.py").write_text("")
    (tmp_path / "inflect/tests").mkdir()
    (tmp_path / "inflect/tests/__init__.py").write_text("")
    (tmp_path / "inflect/tests/test_x.py").write_text("")
    step = Step(
        id="rename",
        pool="mutate",
        op="rename_module",
        args={"path": "inflection", "new_name": "inflect"},
    )
    ids = reshape.moved_test_ids(tmp_path, Plan(command="rename", steps=[step]))
    nodeid = "inflection/__init__.py::inflection.camelize"
    from pytest_orchestrator.phases.execute.gate import map_id

    assert map_id(nodeid, ids) == "inflect/__init__.py::inflect.camelize"
    test = "inflection/tests/test_x.py::test_a"
    assert map_id(test, ids) == "inflect/tests/test_x.py::test_a"


def test_what_rope_cannot_inline_is_refused_when_checked(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "def early(x):\n    if x:\n        return 1\n    return 2\n\n\n"
        "def use():\n    return early(0)\n"
    )
    with pytest.raises(EditError, match="rope could not inline 'early'"):
        reshape.check_inline(tmp_path, "early", None)


def test_a_parameter_added_to_annotated_code_is_annotated(tmp_path: Path) -> None:
    source = "def f(x: int) -> int:\n    return x\n\n\ndef g(x):\n    return x\n"
    (tmp_path / "m.py").write_text(source)
    reshape.add_parameter(tmp_path, "f", "strict", "False", None, nothing)
    reshape.add_parameter(tmp_path, "g", "strict", "False", None, nothing)
    text = (tmp_path / "m.py").read_text()
    assert "def f(x: int, strict: bool = False) -> int:" in text
    assert "def g(x, strict=False):" in text


def test_a_function_with_a_nested_function_is_not_inlined(tmp_path: Path) -> None:
    """inflection's ``_irregular``: rope rewrote the nested function's ``return``."""
    (tmp_path / "m.py").write_text(
        "def outer(s):\n    def inner(c):\n        return c.upper()\n\n    print(inner(s))\n\n\n"
        "outer('a')\n"
    )
    with pytest.raises(EditError, match="defines the function 'inner'"):
        reshape.check_inline(tmp_path, "outer", None)
