"""Files the tests name count as tests: a plan that edits the expected output is editing
what the tests expect, wherever the file lives."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytest_orchestrator.phases.execute.gate import Change, files_tests_name
from tests.conftest import git

READS = """\
from pathlib import Path

from calc import add


def test_matches_the_expected_output():
    expected = (Path(__file__).parent.parent / "golden" / "sum.txt").read_text()
    assert str(add(1, 2)) == expected.strip()
"""


def test_a_file_a_test_names_is_test_data(make_repo: Callable[..., Path]) -> None:
    repo = make_repo(
        {
            "tests/test_golden.py": READS,
            "golden/sum.txt": "3\n",
            "golden/unused.txt": "x\n",
            "README.md": "sum.txt is the expected sum\n",
            "pyproject.toml": "[project]\nname = 'calc'\n",
        }
    )
    base = git(repo, "rev-parse", "HEAD").strip()
    changed = [
        Change("M", "golden/sum.txt"),
        Change("M", "golden/unused.txt"),
        Change("M", "README.md"),
        Change("M", "pyproject.toml"),
        Change("A", "golden/new.txt"),
        Change("M", "calc.py"),
    ]
    held = {"tests/test_golden.py", "tests/test_calc.py"}
    assert files_tests_name(repo, base, changed, held) == {"golden/sum.txt"}
    assert files_tests_name(repo, base, changed, set()) == {"golden/sum.txt"}  # tests/: by its path
    assert files_tests_name(repo, base, [Change("M", "golden/unused.txt")], held) == set()
