"""A module rename updates what readers see: its dotted name in docs, docstrings and
comments (cachetools' ``.. module:: cachetools.func`` was left stale); a changelog is
history and is left, with why; look-alike names are not touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_orchestrator.phases.execute import reshape
from pytest_orchestrator.phases.execute.mentions import module_pattern

DOCS = """\
:mod:`cachetools.func` --- decorators
=====================================

.. module:: cachetools.func

    @cachetools.func.lru_cache
    def fib(n): ...

Not ``cachetools.functools``, nor ``my_cachetools.func``.
"""


def nothing(rel: str) -> None:
    return None


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "cachetools").mkdir()
    (tmp_path / "cachetools" / "__init__.py").write_text("")
    (tmp_path / "cachetools" / "func.py").write_text(
        '"""Decorators; see cachetools.func.lru_cache."""\n\n\n'
        "def lru_cache():\n    return 'cachetools.func'  # cachetools.func: data\n"
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.rst").write_text(DOCS)
    (tmp_path / "CHANGELOG.rst").write_text("- Move decorators to ``cachetools.func``.\n")
    return tmp_path


def test_the_dotted_name_is_updated_in_docs_docstrings_and_comments(root: Path) -> None:
    changed = reshape.rename_module(root, "cachetools/func.py", "functions", nothing)
    assert "docs/index.rst" in changed
    docs = (root / "docs" / "index.rst").read_text()
    assert ":mod:`cachetools.functions` ---" in docs
    assert ".. module:: cachetools.functions\n" in docs
    assert "@cachetools.functions.lru_cache" in docs
    assert "``cachetools.functools``, nor ``my_cachetools.func``" in docs
    code = (root / "cachetools" / "functions.py").read_text()
    assert '"""Decorators; see cachetools.functions.lru_cache."""' in code
    assert "return 'cachetools.func'  # cachetools.functions: data" in code  # strings: data
    history = "- Move decorators to ``cachetools.func``.\n"
    assert (root / "CHANGELOG.rst").read_text() == history


@pytest.mark.parametrize(
    ("line", "hits"),
    [
        ("import inflection", 1),
        ("from inflection import camelize", 1),
        (".. automodule:: inflection", 1),
        (">>> inflection.camelize('x')", 1),
        ("https://inflection.readthedocs.io/", 0),
        ("the inflection project", 0),
        ("jpvanhal/inflection", 0),
    ],
)
def test_a_top_level_module_only_where_it_reads_as_one(line: str, hits: int) -> None:
    assert len(module_pattern("inflection").findall(line)) == hits
