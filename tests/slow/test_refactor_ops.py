"""Each new refactoring end to end: a real ``pytest --orchestrate "…"`` run on a small
pricing library, green, with the minimal diff, and the project's own suite green on the
branch (run again here, outside the orchestrator, on the branch's files)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import commit_all, git, snapshot

PRICING = '''\
"""Prices with tax and discounts."""

TAX_RATE = 0.2


def with_tax(amount, region=None):
    """The amount with tax: ``with_tax(10) == 12.0``."""
    return round(amount * (1 + TAX_RATE), 2)


def discounted(amount, percent):
    # clamp
    rate = max(0, min(percent, 100))
    factor = (100 - rate) / 100

    price = amount * factor
    return round(price, 2)


def cents(amount):
    return int(round(amount * 100))


def total(items, percent=0):
    subtotal = sum(discounted(a, percent) for a in items)
    return with_tax(subtotal, None)
'''

TESTS = """\
from shop.pricing import cents, discounted, total, with_tax


def test_with_tax():
    assert with_tax(amount=10) == 12.0
    assert with_tax(10, "EU") == 12.0


def test_discounted():
    assert discounted(50, 10) == 45.0
    assert discounted(50, 150) == 0.0


def test_cents():
    assert cents(1.5) == 150


def test_total():
    assert total([10, 20], percent=50) == 18.0
"""

APP = """\
from shop import pricing


def receipt(items):
    return f"total: {pricing.total(items)} ({pricing.cents(pricing.total(items))} cents)"
"""


@pytest.fixture
def shop(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = pytester.path / "repo"
    for name, text in {
        # a -m in the project's own addopts is its configuration, not a spec (click)
        "pyproject.toml": "[tool.pytest.ini_options]\ntestpaths = ['tests']\n"
        "markers = ['stress: slow']\naddopts = \"-m 'not stress'\"\n",
        "shop/__init__.py": "",
        "shop/pricing.py": PRICING,
        "shop/app.py": APP,
        "tests/test_pricing.py": TESTS,
        "tests/test_app.py": "from shop.app import receipt\n\n\ndef test_receipt():\n"
        "    assert receipt([10]) == 'total: 12.0 (1200 cents)'\n",
    }.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "init", "-q", "-b", "main")
    commit_all(root)
    monkeypatch.chdir(root)
    return root


def suite_on_branch(repo: Path, branch: str, tmp: Path) -> str:
    """The project's own suite, run on the branch's files in a fresh clone."""
    clone = tmp / "clone"
    subprocess.run(["git", "clone", "-q", "-b", branch, str(repo), str(clone)], check=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout
    return proc.stdout


CASES: list[tuple[str, set[str], list[str]]] = [
    (
        "Move total to shop/checkout.py",
        {"shop/pricing.py", "shop/checkout.py", "shop/app.py", "tests/test_pricing.py"},
        ["+from shop.checkout import total", "+def total(items, percent=0):"],
    ),
    (
        "Move cents to shop/money.py and keep a re-export",
        {"shop/pricing.py", "shop/money.py", "shop/app.py", "tests/test_pricing.py"},
        ["+from shop.money import cents  # re-exported: moved", "+def cents(amount):"],
    ),
    (
        "Rename module shop.pricing to prices",
        {"shop/pricing.py", "shop/prices.py", "shop/app.py", "tests/test_pricing.py"},
        ["+from shop import prices", "+from shop.prices import cents, discounted, total, with_tax"],
    ),
    (
        "Add parameter currency='EUR' to total.",
        {"shop/pricing.py"},
        ["+def total(items, percent=0, currency='EUR'):"],
    ),
    (
        "Rename parameter amount of with_tax to net",
        {"shop/pricing.py", "tests/test_pricing.py"},
        ["+def with_tax(net, region=None):", "+    assert with_tax(net=10) == 12.0"],
    ),
    (
        "Remove unused parameter region from with_tax.",
        {"shop/pricing.py", "tests/test_pricing.py"},
        [
            "+def with_tax(amount):",
            "+    return with_tax(subtotal)",
            "+    assert with_tax(10) == 12.0",
        ],
    ),
    (
        "Inline the variable factor in discounted.",
        {"shop/pricing.py"},
        ["+    price = amount * ((100 - rate) / 100)"],
    ),
    (
        "Extract the block clamp in discounted into clamp_percent",
        {"shop/pricing.py"},
        ["+def clamp_percent(percent):", "+    factor = clamp_percent(percent)"],
    ),
]


@pytest.mark.parametrize(("command", "files", "lines"), CASES, ids=[c[0] for c in CASES])
def test_each_op_goes_green_with_a_minimal_diff(
    pytester: pytest.Pytester,
    shop: Path,
    tmp_path_factory: pytest.TempPathFactory,
    command: str,
    files: set[str],
    lines: list[str],
) -> None:
    result = pytester.runpytest_subprocess("--orchestrate", command)
    assert result.ret == 0, result.stdout.str()
    (run_dir,) = (shop / ".orchestrate" / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["outcome"] == "green"
    branch = git(shop, "branch", "--list", "orchestrate/*").strip().lstrip("* ")
    changed = set(git(shop, "diff", "--no-renames", "--name-only", "main", branch).split())
    assert changed == files
    diff = git(shop, "diff", "main", branch)
    for line in lines:
        assert line in diff.splitlines(), diff
    out = suite_on_branch(shop, branch, tmp_path_factory.mktemp("suite"))
    assert "5 passed" in out


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("Inline with_tax", "*used in tests*no longer check it*refused*"),
        ("Remove unused parameter amount from cents", "*'amount' is used in the body of 'cents'*"),
        (
            "Move with_tax to shop/tax.py",
            "*would make shop.pricing and shop.tax import each other*",
        ),
    ],
)
def test_unsafe_refactorings_are_refused_and_change_nothing(
    pytester: pytest.Pytester, shop: Path, command: str, message: str
) -> None:
    before = snapshot(shop)
    result = pytester.runpytest_subprocess("--orchestrate", command)
    assert result.ret == 4, result.stdout.str()
    result.stdout.fnmatch_lines([message])
    assert snapshot(shop) == before


# ------------------------------------------------- the shapes that failed on real projects

CORE = '''\
"""Formats and cache keys."""


def separated(sep):
    return "{}" + sep + "{}"


def keyed(*args, **kwargs):
    if kwargs:
        items = tuple(sorted(kwargs.items()))
        key = args + items
        key += tuple(type(v) for _, v in items)
    else:
        key = args
    key += tuple(type(v) for v in args)
    return key


def factory(n):
    def decorator(f):
        return f

    return decorator
'''

CORE_TESTS = """\
from fmt.core import factory, keyed


def test_separated():
    from fmt.core import separated

    assert separated("|") == "{}|{}"


def test_keyed():
    assert keyed(1, a=2) == (1, ("a", 2), int, int)
    assert keyed(1) == (1, int)


def test_factory():
    assert factory(1)(len) is len
"""

SHAPES: list[tuple[str, list[str]]] = [
    (  # tabulate: a test's function-level import of the old location went red
        "Move separated to fmt/seps.py",
        ["+    from fmt.seps import separated", "-    from fmt.core import separated"],
    ),
    (  # cachetools: the returned closure's qualified name names the module
        "Rename module fmt.core to formats",
        ["+from fmt.formats import factory, keyed", "+    from fmt.formats import separated"],
    ),
    (  # cachetools: rope returned the generator's loop variable, not `key`
        "Extract lines 10-12 of fmt/core.py into keyed_items",
        ["+        key = keyed_items(kwargs, args)", "+    return key"],
    ),
]


@pytest.mark.parametrize(("command", "lines"), SHAPES, ids=[c[0] for c in SHAPES])
def test_the_real_project_failures_go_green(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    command: str,
    lines: list[str],
) -> None:
    root = pytester.path / "repo"
    for name, text in {
        "pyproject.toml": "[tool.pytest.ini_options]\ntestpaths = ['tests']\n",
        "fmt/__init__.py": "",
        "fmt/core.py": CORE,
        "tests/test_core.py": CORE_TESTS,
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q", "-b", "main")
    commit_all(root)
    monkeypatch.chdir(root)
    result = pytester.runpytest_subprocess("--orchestrate", command)
    assert result.ret == 0, result.stdout.str()
    (run_dir,) = (root / ".orchestrate" / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    checks = {c["name"]: c["ok"] for c in record["attempts"][-1]["checks"]}
    assert checks["montecarlo"]
    assert all(checks.values()), checks
    branch = git(root, "branch", "--list", "orchestrate/*").strip().lstrip("* ")
    diff = git(root, "diff", "main", branch).splitlines()
    for line in lines:
        assert line in diff, "\n".join(diff)
    assert "3 passed" in suite_on_branch(root, branch, tmp_path_factory.mktemp("suite"))
