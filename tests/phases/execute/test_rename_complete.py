"""A rename a team would trust: stubs, src layouts, text mentions, overrides, hints."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_orchestrator.errors import EditError
from pytest_orchestrator.phases.execute.mentions import Mentions, rewrite_text, target_for
from pytest_orchestrator.phases.execute.refactor import rename
from pytest_orchestrator.phases.plan.planners.rules import RENAME, sentence_name
from pytest_orchestrator.repo.layout import source_roots


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


KEYS = 'def hashkey(*args):\n    """The key of ``args``."""\n    return args\n'


def test_a_stub_is_renamed_with_its_module_not_counted_twice(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "pkg/__init__.py": 'from .keys import hashkey\n__all__ = ["hashkey"]\n',
            "pkg/keys.py": KEYS,
            "pkg/keys.pyi": "def hashkey(*args: object) -> tuple[object, ...]: ...\n",
            "pkg/__init__.pyi": "from .keys import hashkey as hashkey\n",
        },
    )
    renamed = rename(root, "hashkey", "make_key")
    assert renamed.changed == [
        "pkg/__init__.py",
        "pkg/__init__.pyi",
        "pkg/keys.py",
        "pkg/keys.pyi",
    ]
    assert "def make_key(*args: object)" in (root / "pkg/keys.pyi").read_text()
    assert (root / "pkg/__init__.pyi").read_text() == "from .keys import make_key as make_key\n"
    assert '__all__ = ["make_key"]' in (root / "pkg/__init__.py").read_text()


@pytest.mark.parametrize(
    "config",
    [
        {"pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["lib"]\n'},
        {"pyproject.toml": '[tool.setuptools.packages.find]\nwhere = ["lib"]\n'},
        {"pyproject.toml": '[tool.hatch.build.targets.wheel]\npackages = ["lib/pkg"]\n'},
        {"setup.cfg": "[options]\npackage_dir =\n    =lib\n"},
    ],
)
def test_src_layout_roots_come_from_the_configuration(
    tmp_path: Path, config: dict[str, str]
) -> None:
    """rope stops at the first folder holding a package (here ``tests/``): without the
    configured root, the tests' ``from pkg.keys import hashkey`` would stay stale."""
    root = write(
        tmp_path,
        {
            **config,
            "lib/pkg/__init__.py": "",
            "lib/pkg/keys.py": KEYS,
            "tests/__init__.py": "",
            "tests/test_keys.py": "from pkg.keys import hashkey\n\n\ndef test_k():\n"
            "    assert hashkey(1) == (1,)\n",
        },
    )
    assert source_roots(root) == ["lib"]
    renamed = rename(root, "hashkey", "make_key")
    assert "tests/test_keys.py" in renamed.changed
    assert "from pkg.keys import make_key" in (root / "tests/test_keys.py").read_text()


def test_src_is_a_root_when_it_holds_a_package_and_not_otherwise(tmp_path: Path) -> None:
    write(tmp_path, {"src/notes.txt": "x", "pyproject.toml": "[project]\nname = 'x'\n"})
    assert source_roots(tmp_path) == []
    write(tmp_path, {"src/pkg/__init__.py": ""})
    assert source_roots(tmp_path) == ["src"]


DOCS = """\
Keys
====

Use :func:`tabulate.hashkey` or :func:`~pkg.keys.hashkey` to build keys.

.. autofunction:: pkg.keys.hashkey

Set ``pkg.WIDE_MODE = False``; ``operator.hashkey`` is another thing.

>>> from pkg.keys import hashkey
>>> hashkey(1)
(1,)
"""


def test_text_mentions_are_updated_where_they_name_the_symbol(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/keys.py": (
                '"""Keys.\n\n>>> hashkey(2)\n(2,)\n"""\n\n\n'
                "def hashkey(*args):\n"
                '    """See :func:`pkg.keys.hashkey`."""\n'
                "    return args  # hashkey is pure\n"
            ),
            "docs/keys.rst": DOCS,
            "README.md": "Call `hashkey(...)`; the hashkey_cache is unrelated.\n",
            "tests/test_keys.py": (
                "from unittest import mock\nfrom pkg.keys import hashkey\n\n\n"
                "def test_k():\n    with mock.patch('pkg.keys.hashkey'):\n        pass\n"
            ),
        },
    )
    renamed = rename(root, "hashkey", "make_key")
    rst = (root / "docs/keys.rst").read_text()
    assert ":func:`~pkg.keys.make_key`" in rst
    assert ".. autofunction:: pkg.keys.make_key" in rst
    assert ">>> from pkg.keys import make_key\n>>> make_key(1)" in rst
    assert "``operator.hashkey``" in rst  # another object's name stays
    assert ":func:`tabulate.hashkey`" in rst  # qualified by another module: left
    keys = (root / "pkg/keys.py").read_text()
    assert ">>> make_key(2)" in keys
    assert ":func:`pkg.keys.make_key`" in keys
    assert "# hashkey is pure" in keys  # a plain word in a comment: left, with why
    readme = (root / "README.md").read_text()
    assert readme == "Call `make_key(...)`; the hashkey_cache is unrelated.\n"
    # a string literal naming the symbol is reported, never changed
    assert "mock.patch('pkg.keys.hashkey')" in (root / "tests/test_keys.py").read_text()
    (literal,) = renamed.mentions.literals
    assert literal.path == "tests/test_keys.py"
    whys = {m.why for m in renamed.mentions.left}
    assert "qualified by `operator`: another object" in whys
    assert "qualified by `tabulate`: another object" in whys
    assert "docs/keys.rst" in renamed.changed
    assert "README.md" in renamed.changed


def test_a_plain_word_in_prose_is_left_with_the_reason() -> None:
    out = Mentions()
    target = target_for("add", "plus", "calc")
    text = "We add the numbers with add(); see `add` and calc.add.\n"
    new = rewrite_text(text, target, code_like=False, path="README.md", first_line=1, out=out)
    assert new == "We add the numbers with plus(); see `plus` and calc.plus.\n"
    assert [m.why for m in out.left] == ["`add` as a plain word in prose: may not mean the symbol"]


def test_a_distinctive_name_is_updated_in_prose_and_code_blocks() -> None:
    out = Mentions()
    target = target_for("WIDE_CHARS_MODE", "WIDE_CHARS", "tabulate")
    text = "Set tabulate.WIDE_CHARS_MODE = False\n```python\nWIDE_CHARS_MODE\n```\n"
    new = rewrite_text(text, target, code_like=False, path="README.md", first_line=1, out=out)
    assert new == "Set tabulate.WIDE_CHARS = False\n```python\nWIDE_CHARS\n```\n"
    assert out.left == []


def test_overriding_a_method_from_outside_the_repository_is_refused(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "wrap.py": (
                "import textwrap\n\n\nclass Wrap(textwrap.TextWrapper):\n"
                "    def _handle_long_word(self, chunks, cur_line, cur_len, width):\n"
                "        return super()._handle_long_word(chunks, cur_line, cur_len, width)\n\n"
                "    def own(self):\n        return 1\n"
            )
        },
    )
    with pytest.raises(EditError, match=r"overrides .*TextWrapper\._handle_long_word.*outside"):
        rename(root, "Wrap._handle_long_word", "_long_word")
    assert "def _handle_long_word" in (root / "wrap.py").read_text()
    rename(root, "Wrap.own", "mine")  # a method of its own renames as before
    assert "def mine(self)" in (root / "wrap.py").read_text()


def test_module_level_ambiguity_suggests_module_qualified_names(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {"a/one.py": "def add(a, b):\n    return a + b\n", "b/two.py": "def add():\n    pass\n"},
    )
    with pytest.raises(EditError, match=r"e\.g\. 'a\.one\.add' or 'b\.two\.add'"):
        rename(root, "add", "plus")
    renamed = rename(root, "one.add", "plus")
    assert renamed.changed == ["a/one.py"]


@pytest.mark.parametrize(
    ("command", "old", "new"),
    [
        ("Rename underscore to snake_case.", "underscore", "snake_case"),
        ('Rename "add" to "plus".', "add", "plus"),
        ("Rename add to plus!", "add", "plus"),
        ("Rename `calc.add` to `plus`.", "calc.add", "plus"),
    ],
)
def test_the_sentence_punctuation_is_not_part_of_the_name(command: str, old: str, new: str) -> None:
    match = RENAME.search(command)
    assert match is not None
    assert (sentence_name(match["old"]), sentence_name(match["new"])) == (old, new)
