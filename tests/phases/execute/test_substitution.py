"""Test changes that swap out the code under test: each swap found, honest edits not."""

from __future__ import annotations

import pytest

from pytest_orchestrator.phases.execute.integrity import FileChange
from pytest_orchestrator.phases.execute.substitution import (
    Project,
    changed_definitions,
    findings,
    top_level,
)
from pytest_orchestrator.repo.files import is_test_path

FEE = "def fee(amount):\n    return max(1, amount * 2 // 100)\n\n\ndef helper():\n    return 1\n"
BUGGED = FEE.replace("* 2 //", "* 3 //")
TEST = """\
import pytest
from fee import fee


def test_two_percent():
    assert fee(1000) == 20
"""
PROJECT = Project(
    modules={"fee": frozenset({"fee.py"}), "shop": frozenset({"src/shop/__init__.py"})},
    changed=frozenset(changed_definitions(FEE, BUGGED)),
    is_package=lambda folder: folder.startswith("src/shop"),
)


def kinds(
    new: str | None,
    base: str | None = TEST,
    path: str = "tests/test_fee.py",
    renames: dict[str, str] | None = None,
) -> list[str]:
    found = findings(
        [FileChange(path, base, new)], is_test=is_test_path, project=PROJECT, renames=renames
    )
    return [f"{f.kind}: {f.detail}" for f in found]


SWAPS = {
    "a def rebinds it": TEST.replace(
        "from fee import fee\n", "from fee import fee\n\n\ndef fee(a):\n    return 20\n"
    ),
    "an assignment rebinds it": TEST + "\nfee = lambda a: 20\n",
    "imported from elsewhere": TEST.replace("from fee import fee", "from helpers import fee"),
    "the import dropped, a def instead": TEST.replace(
        "from fee import fee\n", "\n\ndef fee(a):\n    return 20\n"
    ),
    "a lambda inside a test": TEST.replace(
        "    assert fee", "    fee = lambda a: 20  # noqa\n    assert fee"
    ),
    "module attribute assigned": TEST.replace(
        "from fee import fee\n", "from fee import fee\nimport fee as m\n\nm.fee = abs\n"
    ),
    "setattr": TEST.replace("from fee import fee\n", "import fee\n\nsetattr(fee, 'fee', abs)\n"),
    "monkeypatch.setattr on the module": TEST.replace(
        "def test_two_percent():",
        "import fee as m\n\n\n@pytest.fixture(autouse=True)\ndef _f(monkeypatch):\n"
        "    monkeypatch.setattr(m, 'fee', abs)\n\n\ndef test_two_percent():",
    ),
    "monkeypatch.setattr by dotted string": TEST.replace(
        "def test_two_percent():",
        "def test_two_percent(monkeypatch):\n    monkeypatch.setattr('fee.fee', abs)",
    ),
    "mock.patch": TEST.replace(
        "def test_two_percent():",
        "from unittest import mock\n\n\n@mock.patch('fee.fee', abs)\ndef test_two_percent():",
    ),
    "sys.modules written": TEST.replace(
        "import pytest\n", "import sys\nimport pytest\n\nsys.modules['fee'] = object()\n"
    ),
    "monkeypatch.setitem on sys.modules": TEST.replace(
        "def test_two_percent():",
        "def test_two_percent(monkeypatch):\n    monkeypatch.setitem(sys.modules, 'fee', None)",
    ),
}


@pytest.mark.parametrize("how", sorted(SWAPS))
def test_each_swap_is_found(how: str) -> None:
    found = kinds(SWAPS[how])
    assert found, how
    assert all(f.startswith("code under test replaced") for f in found)


def test_a_swap_in_a_new_conftest_is_found() -> None:
    conftest = "import fee\n\n\ndef pytest_configure():\n    fee.fee = abs\n"
    assert kinds(conftest, base=None, path="tests/conftest.py") == [
        "code under test replaced: the tests replace fee.fee, a name the change alters"
    ]


@pytest.mark.parametrize(
    ("new", "why"),
    [
        (TEST.replace("== 20", "== 30"), "a new expected value"),
        (TEST + "\n\ndef test_floor():\n    assert fee(10) == 1\n", "a new test"),
        (TEST.replace("    assert fee", "    fee_ = fee(1000)\n    assert fee"), "a local"),
        (TEST.replace("    assert fee", "    fee = fee(1000)  # noqa\n    assert fee"), "result"),
        (
            TEST.replace(
                "def test_two_percent():",
                "def test_two_percent(monkeypatch):\n    monkeypatch.setattr('fee.helper', abs)",
            ),
            "patching a name the change leaves alone",
        ),
        (TEST.replace("from fee import fee", "from shop.fees import fee"), "moved in the project"),
        (TEST + "\n\nclass TestFee:\n    def fee(self):\n        return 1\n", "a method"),
    ],
)
def test_honest_test_edits_are_not_swaps(new: str, why: str) -> None:
    assert kinds(new) == [], why


def test_swaps_the_base_already_made_are_not_the_change() -> None:
    base = TEST.replace("from fee import fee\n", "from fee import fee\nimport fee as m\n") + (
        "\n\ndef test_patched(monkeypatch):\n    monkeypatch.setattr(m, 'fee', abs)\n"
        "    assert m.fee(-1) == 1\n"
    )
    assert kinds(base.replace("== 20", "== 30"), base=base) == []
    assert len(kinds(base + "\nm.fee = abs\n", base=base)) == 1


def test_a_rename_is_followed_not_reported() -> None:
    """A rename op rewrites the import (the module keeps its name): no swap; a swap of the
    new name after it still is one."""
    renamed = TEST.replace("import fee", "import charge")
    renamed = renamed.replace("assert fee(", "assert charge(")
    assert kinds(renamed, renames={"fee": "charge"}) == []
    assert len(kinds(renamed + "\ncharge = abs\n", renames={"fee": "charge"})) == 1


@pytest.mark.parametrize(
    ("path", "shadows"),
    [
        ("tests/fee.py", True),
        ("tests/unit/fee/__init__.py", True),
        ("fee.py", False),  # the project's own file (not new in practice; never a shadow)
        ("src/shop/fee.py", False),  # inside a package: shop.fee, not fee
        ("tests/helpers.py", False),
        ("tests/test_shop.py", False),
        ("tests/shop.py", True),
    ],
)
def test_a_new_module_shadowing_the_project_is_found(path: str, shadows: bool) -> None:
    found = kinds("x = 1\n", base=None, path=path)
    assert bool(found) == shadows, found


def test_changed_definitions() -> None:
    assert changed_definitions(FEE, BUGGED) == {"fee"}
    moved = FEE.split("\n\n\n")[1] + "\n\n\n" + FEE.split("\n\n\n")[0]
    assert changed_definitions(FEE, moved) == set()
    method = "class C:\n    def m(self):\n        return 1\n"
    assert changed_definitions(method, method.replace("1", "2")) == {"C", "m"}
    assert changed_definitions(FEE, "def (") == {"fee", "helper"}
    assert changed_definitions(None, "RATE = 3\n") == {"RATE"}


def test_top_level_names_follow_source_roots() -> None:
    paths = ["fee.py", "src/shop/__init__.py", "src/shop/cart.py", "docs/conf.py", "setup.py"]
    found = top_level(paths, ["", "src"])
    assert found == {
        "fee": frozenset({"fee.py"}),
        "shop": frozenset({"src/shop/__init__.py", "src/shop/cart.py"}),
        "setup": frozenset({"setup.py"}),
    }


@pytest.mark.parametrize(
    "asks",
    [
        "os.environ.get('PYTEST_CURRENT_TEST')",
        "'PYTEST_XDIST_WORKER' in os.environ",
        "'pytest' in sys.modules",
        "sys.modules.get('_pytest') is not None",
        "'pytest' in sys.argv[0]",
    ],
)
def test_code_that_asks_whether_it_is_tested_is_found(asks: str) -> None:
    bugged = BUGGED.replace(
        "    return max(1, amount * 3 // 100)",
        f"    rate = 2 if {asks} else 3\n    return max(1, amount * rate // 100)",
    )
    (found,) = kinds(bugged, base=FEE, path="fee.py")
    assert "asks whether a test run is calling it" in found


def test_asking_as_the_base_already_did_is_not_the_change() -> None:
    base = "import sys\n\nTESTING = 'pytest' in sys.modules\n" + FEE
    assert kinds(base.replace("* 2 //", "* 3 //"), base=base, path="fee.py") == []
    assert kinds(FEE.replace("1)", "2)"), base=FEE, path="fee.py") == []


def test_a_test_turned_away_from_the_altered_code_is_found() -> None:
    """The test now checks another function (a copy of the old behaviour, say)."""
    (found,) = kinds(TEST.replace("assert fee(1000)", "assert helper(1000)"))
    assert "test_two_percent no longer uses 'fee', which the change alters" in found
    assert kinds(TEST.replace("assert fee(1000) == 20", "assert fee(1000) == 30")) == []
