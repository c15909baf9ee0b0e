"""A rename keeps sorted import lists and ``__all__`` sorted, by ruff's own rules (ruff is
the judge here: ``I`` and ``RUF022`` on the renamed files), and leaves unsorted ones alone."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_orchestrator.phases.execute import refactor, reshape
from pytest_orchestrator.phases.execute.ordering import all_key, isort_key, resort

RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


def ruff_sorted(folder: Path, *files: str) -> subprocess.CompletedProcess[str]:
    assert RUFF is not None
    command = [RUFF, "check", "--isolated", "--select", "I,RUF022", "--output-format", "concise"]
    return subprocess.run(
        [*command, *(files or ["."])],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )


PKG = '''\
"""Stats."""

__all__ = [
    "MAX_BINS",
    "Histogram",
    "add",
    "mean",  # the average
    "variance",
]

MAX_BINS = 10


class Histogram:
    pass


def add(a, b):
    return a + b


def mean(xs):
    return sum(xs) / len(xs)


def variance(xs):
    m = mean(xs)
    return sum((x - m) ** 2 for x in xs) / len(xs)
'''

USER = """\
from stats import (
    MAX_BINS,
    Histogram,
    add,
    mean,
    variance,
)


def test_it():
    assert mean([1, 3]) == 2
    assert add(1, 2) == 3
    assert MAX_BINS and Histogram and variance
"""

UNSORTED = """\
from stats import variance as var, mean as avg


def test_other():
    assert var([1, 1]) == avg([0, 0]) == 0
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "stats.py").write_text(PKG)
    (tmp_path / "test_stats.py").write_text(USER)
    (tmp_path / "test_unsorted.py").write_text(UNSORTED)
    return tmp_path


@pytest.mark.skipif(RUFF is None, reason="ruff is a dev dependency")
def test_a_rename_keeps_sorted_lists_sorted_for_ruff(root: Path) -> None:
    assert ruff_sorted(root, "stats.py", "test_stats.py").returncode == 0
    assert ruff_sorted(root, "test_unsorted.py").returncode == 1
    refactor.rename(root, "mean", "zmean")
    result = ruff_sorted(root, "stats.py", "test_stats.py")
    assert result.returncode == 0, result.stdout
    stats = (root / "stats.py").read_text()
    assert '    "variance",\n    "zmean",  # the average\n]' in stats  # the comment moves with it
    user = (root / "test_stats.py").read_text()
    assert "    variance,\n    zmean,\n)" in user
    unsorted = (root / "test_unsorted.py").read_text()
    assert "from stats import variance as var, zmean as avg\n" in unsorted  # was unsorted: left


@pytest.mark.skipif(RUFF is None, reason="ruff is a dev dependency")
def test_a_module_rename_keeps_a_sorted_member_list_sorted(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    for name in ("__init__", "alpha", "beta", "gamma"):
        (tmp_path / "pkg" / f"{name}.py").write_text("X = 1\n")
    use = "from pkg import alpha, beta, gamma\n\nprint(alpha, beta, gamma)\n"
    (tmp_path / "use.py").write_text(use)
    reshape.rename_module(tmp_path, "pkg/alpha.py", "zeta", lambda rel: None)
    assert (tmp_path / "use.py").read_text().startswith("from pkg import beta, gamma, zeta\n")
    assert ruff_sorted(tmp_path).returncode == 0


@pytest.mark.skipif(RUFF is None, reason="ruff is a dev dependency")
def test_the_orders_are_ruffs(tmp_path: Path) -> None:
    """Lists sorted by our keys pass ruff's I and RUF022 (random names, every kind)."""
    rng = random.Random(7)
    pool = ["a", "B", "CONST", "Abc", "abc", "ABC", "x10", "x2", "X", "_private", "Zeta", "zeta",
            "HTTPError", "http_error", "E2E", "e2e", "F1", "f1", "_A", "camelCase"]  # fmt: skip
    for i in range(20):
        names = rng.sample(pool, 7)
        imports = ", ".join(sorted(names, key=isort_key))
        exported = ", ".join(f'"{n}"' for n in sorted(names, key=all_key))
        (tmp_path / f"m{i}.py").write_text(f"from m import {imports}\n\n__all__ = [{exported}]\n")
    result = ruff_sorted(tmp_path)
    assert result.returncode == 0, result.stdout


def test_an_unsorted_list_is_left_alone() -> None:
    text = "from m import c, a, zed\n"
    assert resort(text, "b", "zed") == text
