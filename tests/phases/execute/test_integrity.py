"""Weakening found in the diff: each kind, by itself, named with file and line."""

from __future__ import annotations

import pytest

from pytest_orchestrator.phases.execute.integrity import FileChange, findings
from pytest_orchestrator.phases.execute.integrity import tests_requested as asks_for_test_changes
from pytest_orchestrator.repo.files import is_test_path

BASE = """\
import pytest
from fee import fee


def test_two_percent():
    assert fee(1000) == 20
    assert fee(500) == 10


@pytest.mark.parametrize("amount", [10, 20, 30])
def test_floor(amount):
    assert fee(amount) == pytest.approx(1, rel=1e-9)


class TestRaises:
    def test_negative(self):
        with pytest.raises(ValueError):
            fee(-1)
"""


def kinds(new: str | None, base: str | None = BASE, path: str = "tests/test_fee.py") -> list[str]:
    found = findings([FileChange(path, base, new)], is_test=is_test_path, renames={"fee": "charge"})
    return [f.kind for f in found]


@pytest.mark.parametrize(
    ("new", "kind"),
    [
        (BASE.replace("def test_two", "@pytest.mark.skip\ndef test_two"), "skip marker added"),
        (BASE.replace("def test_two", "@pytest.mark.xfail\ndef test_two"), "skip marker added"),
        (
            BASE.replace("class TestRaises", "@pytest.mark.skip\nclass TestRaises"),
            "skip marker added",
        ),
        (BASE + "\npytestmark = pytest.mark.skip\n", "skip marker added"),
        (
            BASE.replace(
                "    assert fee(1000) == 20\n",
                "    pytest.skip('flaky')\n    assert fee(1000) == 20\n",
            ),
            "skip call added",
        ),
        (
            BASE.replace(
                "import pytest\n", "import pytest\npytest.skip('x', allow_module_level=True)\n"
            ),
            "skip call added",
        ),
        (BASE.replace("    assert fee(500) == 10\n", ""), "fewer assertions"),
        (
            BASE.replace(
                "    assert fee(500) == 10\n",
                "    try:\n        assert fee(500) == 10\n"
                "    except AssertionError:\n        pass\n",
            ),
            "fewer assertions",
        ),
        (
            BASE.replace(
                "    assert fee(500) == 10\n",
                "    with contextlib.suppress(Exception):\n        assert fee(500) == 10\n",
            ),
            "fewer assertions",
        ),
        (
            BASE.replace(
                "    assert fee(500) == 10\n",
                "    with pytest.raises(BaseException):\n        assert fee(500) == 10\n",
            ),
            "fewer assertions",
        ),
        (BASE.replace("assert fee(1000) == 20", "assert fee(1000) >= 20"), "assertion loosened"),
        (BASE.replace("assert fee(1000) == 20", "assert fee(1000) > 0"), "assertion loosened"),
        (BASE.replace("assert fee(1000) == 20", "assert fee(1000)"), "assertion loosened"),
        (
            BASE.replace("assert fee(1000) == 20", "assert fee(1000) == fee(1000)"),
            "assertion loosened",
        ),
        (
            BASE.replace("assert fee(1000) == 20", "assert fee(1000) == 20 or True"),
            "assertion loosened",
        ),
        (BASE.replace("rel=1e-9", "rel=0.5"), "tolerance widened"),
        (BASE.replace("[10, 20, 30]", "[10]"), "fewer cases"),
        (
            BASE.replace(
                "    assert fee(1000) == 20\n", "    return\n    assert fee(1000) == 20\n"
            ),
            "early return",
        ),
        (
            BASE.replace(
                "def test_two_percent():\n    assert fee(1000) == 20\n    assert fee(500) == 10\n",
                "",
            ),
            "deleted test",
        ),
        (BASE + "\ncollect_ignore = ['tests']\n", "collection changed"),
        (BASE + "\npytest_plugins = ['evil']\n", "collection changed"),
        (
            BASE + "\ndef pytest_collection_modifyitems(items):\n    items.clear()\n",
            "new pytest hook",
        ),
        (None, "deleted test file"),
    ],
)
def test_each_weakening_is_found(new: str | None, kind: str) -> None:
    """Every kind of weakening is a finding of its own kind."""
    assert kind in kinds(new)


def test_a_rename_and_a_stronger_test_are_not_weakening() -> None:
    """rope's rename, an added assertion and an added test find nothing."""
    renamed = BASE.replace("fee", "charge")
    assert kinds(renamed) == []
    stronger = BASE.replace(
        "    assert fee(500) == 10\n", "    assert fee(500) == 10\n    assert fee(0) == 1\n"
    )
    assert kinds(stronger + "\ndef test_more():\n    assert fee(1) == 1\n") == []


def test_a_marker_is_one_finding_not_two() -> None:
    """``@pytest.mark.skip(...)`` is a marker; only calls in the body are skip calls."""
    new = BASE.replace("def test_two", "@pytest.mark.skip(reason='flaky')\ndef test_two")
    assert kinds(new) == ["skip marker added"]


def test_findings_name_the_line() -> None:
    new = BASE.replace("assert fee(1000) == 20", "assert fee(1000) >= 20")
    (found,) = findings([FileChange("tests/test_fee.py", BASE, new)], is_test=is_test_path)
    assert (found.path, found.line) == ("tests/test_fee.py", 6)
    assert "`assert fee(1000) == 20` -> `assert fee(1000) >= 20`" in found.detail


@pytest.mark.parametrize(
    ("path", "base", "new"),
    [
        ("pytest.ini", None, ""),
        ("pytest.ini", None, "[pytest]\naddopts = -k 'not two'\n"),
        ("tests/pytest.ini", None, "[pytest]\n"),
        ("pyproject.toml", '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
         '[tool.pytest.ini_options]\ntestpaths = ["tests"]\naddopts = "--deselect x"\n'),
        ("tox.ini", "[tox]\nx = 1\n", "[tox]\nx = 1\n[pytest]\nnorecursedirs = t\n"),
        ("setup.cfg", "[tool:pytest]\npython_files = t_*.py\n", "[tool:pytest]\n"),
        ("pytest.toml", None, '[pytest]\naddopts = ["-p", "no:x"]\n'),
    ],
)  # fmt: skip
def test_test_configuration_changes_are_found(path: str, base: str | None, new: str) -> None:
    assert kinds(new, base, path) == ["test configuration changed"]


def test_unrelated_config_changes_are_not_findings() -> None:
    base = '[project]\nname = "x"\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
    new = base.replace('name = "x"', 'name = "y"')
    assert kinds(new, base, "pyproject.toml") == []


@pytest.mark.parametrize(
    "path",
    ["sitecustomize.py", "src/usercustomize.py", "evil.pth", "pytest.py", "json/__init__.py"],
)
def test_files_that_change_the_interpreter_are_found(path: str) -> None:
    assert kinds("x = 1\n", None, path) == ["interpreter changed"]


def test_a_new_ordinary_module_is_fine() -> None:
    assert kinds("x = 1\n", None, "refunds.py") == []


@pytest.mark.parametrize(
    ("command", "asks"),
    [
        ("Add tests for refund_fee", True),
        ("Rename add to plus and update the tests", True),
        ("write a regression test for the floor", True),
        ("Fix the failing test in test_fee.py", True),
        ("Add refund_fee so these tests pass", False),
        ("Refactor sizing, test at scale, post PR", False),
        ("Rename test_add to test_plus", False),
    ],
)
def test_test_changes_are_asked_for_in_words(command: str, asks: bool) -> None:
    assert bool(asks_for_test_changes(command)) is asks
