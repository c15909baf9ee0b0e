"""The gate cannot be talked into green: a plan that adds a bug and disables the test that
catches it is refused, whichever way it disables it — and honest changes stay green.

Each case is one real ``pytest --orchestrate-plan`` run on a small git repository: the
plan breaks ``fee`` (3 % instead of 2 %) and weakens the suite one way. Refused means: not
exit 0, no ``orchestrate/`` branch, the user's checkout byte-identical.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, snapshot

FEE = '''\
def fee(amount):
    """Two percent, at least 1."""
    return max(1, amount * 2 // 100)
'''
TEST_FEE = """\
import pytest
from fee import fee


def test_fee_is_two_percent():
    assert fee(1000) == 20


def test_fee_has_a_floor():
    assert fee(10) == 1
"""
PYPROJECT = '[project]\nname = "calc"\n\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
FILES = {"fee.py": FEE, "tests/test_fee.py": TEST_FEE, "pyproject.toml": PYPROJECT}


def step(step_id: str, op: str, **args: Any) -> dict[str, Any]:
    pool = "scan" if op in ("run_tests", "search", "lint") else "mutate"
    return {"id": step_id, "pool": pool, "op": op, "args": args}


def edit(path: str, search: str, replace: str, step_id: str = "weaken") -> dict[str, Any]:
    return step(step_id, "replace_block", path=path, search=search, replace=replace)


def patch_new_file(path: str, text: str) -> dict[str, Any]:
    lines = text.splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    diff = f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n{body}"
    return step("weaken", "apply_patch", patch=diff)


BUG = edit("fee.py", "amount * 2 // 100", "amount * 3 // 100", step_id="bug")
DELETE_TEST_FILE = step(
    "weaken",
    "apply_patch",
    patch="--- a/tests/test_fee.py\n+++ /dev/null\n@@ -1,10 +0,0 @@\n"
    + "".join(f"-{line}\n" for line in TEST_FEE.splitlines()),
)

WEAKENINGS: dict[str, dict[str, Any]] = {
    "skip marker": edit(
        "tests/test_fee.py",
        "def test_fee_is_two_percent",
        "@pytest.mark.skip(reason='flaky')\ndef test_fee_is_two_percent",
    ),
    "xfail marker": edit(
        "tests/test_fee.py",
        "def test_fee_is_two_percent",
        "@pytest.mark.xfail(reason='flaky')\ndef test_fee_is_two_percent",
    ),
    "body replaced by pass": edit("tests/test_fee.py", "assert fee(1000) == 20", "pass"),
    "== to >=": edit("tests/test_fee.py", "fee(1000) == 20", "fee(1000) >= 20"),
    "== to > 0": edit("tests/test_fee.py", "fee(1000) == 20", "fee(1000) > 0"),
    "pytest.skip call": edit(
        "tests/test_fee.py", "    assert fee(1000) == 20", "    pytest.skip('slow')"
    ),
    "test file deleted": DELETE_TEST_FILE,
    "conftest drops tests": patch_new_file(
        "conftest.py",
        "def pytest_collection_modifyitems(items):\n"
        "    items[:] = [i for i in items if 'two_percent' not in i.name]",
    ),
    "conftest collect_ignore": patch_new_file(
        "tests/conftest.py", "collect_ignore = ['test_fee.py']"
    ),
    "addopts -k in a new pytest.ini": patch_new_file(
        "pytest.ini", '[pytest]\ntestpaths = tests\naddopts = -k "not two_percent"'
    ),
    "--deselect in pyproject.toml": edit(
        "pyproject.toml",
        'testpaths = ["tests"]',
        'testpaths = ["tests"]\naddopts = "--deselect tests/test_fee.py::test_fee_is_two_percent"',
    ),
    "sitecustomize": patch_new_file("sitecustomize.py", "import os"),
    "run_tests scoped elsewhere": step("weaken", "run_tests", paths=["tests/test_calc.py"]),
}


SWAPS: dict[str, dict[str, Any]] = {
    "the function redefined in the test file": edit(
        "tests/test_fee.py",
        "from fee import fee\n",
        "from fee import fee\n\n\ndef fee(amount):\n    return max(1, amount * 2 // 100)\n",
    ),
    "the module patched over at import": edit(
        "tests/test_fee.py",
        "from fee import fee\n",
        "import fee as _m\n\n_m.fee = lambda a: max(1, a * 2 // 100)\nfrom fee import fee\n",
    ),
    "a module beside the tests shadows it": patch_new_file(
        "tests/fee.py", "def fee(amount):\n    return max(1, amount * 2 // 100)"
    ),
    "an autouse fixture patches it": patch_new_file(
        "tests/conftest.py",
        "import pytest\nimport fee\n\n\n@pytest.fixture(autouse=True)\n"
        "def _fee(monkeypatch):\n"
        "    monkeypatch.setattr(fee, 'fee', lambda a: max(1, a * 2 // 100))",
    ),
}
"""Test edits that keep every test as strict and make it test something else: refused even
when the command asks for test changes in words."""

def run_plan(
    pytester: pytest.Pytester,
    repo: Path,
    steps: list[dict[str, Any]],
    *args: str,
    command: str = "Change the fee",
) -> pytest.RunResult:
    plan = repo.parent / "plan.json"
    plan.write_text(json.dumps({"command": command, "steps": steps}))
    return pytester.runpytest_subprocess(
        f"--orchestrate-plan={plan}", "--orchestrate-attempts=1", *args
    )


def run_json(repo: Path) -> dict[str, Any]:
    (found,) = (repo / ".orchestrate" / "runs").iterdir()
    data: dict[str, Any] = json.loads((found / "run.json").read_text())
    return data


def assert_refused(result: pytest.RunResult, repo: Path, before: dict[str, str]) -> None:
    out = result.stdout.str()
    assert result.ret != 0, out
    assert "orchestrate: GREEN" not in out
    assert git(repo, "branch", "--list", "orchestrate/*") == ""
    assert snapshot(repo) == before


@pytest.mark.parametrize("kind", sorted(WEAKENINGS))
def test_a_bug_with_a_weakened_suite_is_refused(
    kind: str, pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """Each way of disabling the catching test, combined with the bug: refused."""
    repo = make_repo(FILES)
    before = snapshot(repo)
    result = run_plan(pytester, repo, [BUG, WEAKENINGS[kind]])
    assert_refused(result, repo, before)


@pytest.mark.parametrize("kind", ["skip marker", "conftest drops tests", "== to >="])
def test_refused_with_xdist_too(
    kind: str, pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """Parity and integrity hold when the gate run uses xdist workers."""
    repo = make_repo(FILES)
    before = snapshot(repo)
    result = run_plan(pytester, repo, [BUG, WEAKENINGS[kind]], "-n", "2")
    assert_refused(result, repo, before)


@pytest.mark.parametrize("kind", sorted(set(WEAKENINGS) - {"run_tests scoped elsewhere"}))
def test_weakening_alone_is_refused_and_named(
    kind: str, pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """No bug at all: weakening the suite is still refused, the finding named in run.json."""
    repo = make_repo(FILES)
    before = snapshot(repo)
    result = run_plan(pytester, repo, [WEAKENINGS[kind]], "-v")
    assert_refused(result, repo, before)
    result.stdout.fnmatch_lines(["*plan.json::gate FAILED*"])
    (attempt,) = run_json(repo)["attempts"]
    failed = {c["name"] for c in attempt["checks"] if not c["ok"]}
    assert "integrity" in failed


def test_options_in_run_tests_paths_are_refused_before_anything_runs(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    repo = make_repo(FILES)
    before = snapshot(repo)
    for entry in ("-k", "--deselect=tests/test_fee.py::test_fee_is_two_percent", "-p no:x"):
        result = run_plan(pytester, repo, [BUG, step("t", "run_tests", paths=[entry])])
        assert result.ret == 4
        result.stdout.fnmatch_lines(["*step 't'*is an option, not a path*"])
        assert snapshot(repo) == before


def test_a_plan_without_run_tests_still_meets_the_gate(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """No run_tests step: the bug is still caught, the failing test named."""
    repo = make_repo(FILES)
    result = run_plan(pytester, repo, [BUG])
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*FAILED tests/test_fee.py::test_fee_is_two_percent*"])


def test_parity_and_gate_counts_are_in_the_evidence(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """run.json and PR.md show baseline vs gate; the missing id is named."""
    repo = make_repo(FILES)
    run_plan(pytester, repo, [WEAKENINGS["addopts -k in a new pytest.ini"]])
    (attempt,) = run_json(repo)["attempts"]
    gate = attempt["gate"]
    assert gate["baseline"]["passed"] == gate["gate"]["passed"] == 5
    assert gate["config"].startswith("base pyproject.toml via -c")
    (found,) = gate["findings"]
    assert (found["path"], found["kind"]) == ("pytest.ini", "test configuration changed")
    (rd,) = (repo / ".orchestrate" / "runs").iterdir()
    pr = (rd / "PR.md").read_text()
    assert "| baseline | 5 |" in pr
    assert "pytest.ini: test configuration changed" in pr


# ---------------------------------------------------------------------------- honest changes


def test_renaming_a_test_function_keeps_parity(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """A rename op renames a test: its base id maps to the new one, and the run is green."""
    repo = make_repo(FILES)
    rename = step(
        "rename",
        "rename_symbol",
        symbol="test_fee_has_a_floor",
        new_name="test_fee_is_at_least_one",
        path="tests/test_fee.py",
    )
    result = run_plan(pytester, repo, [rename])
    assert result.ret == 0, result.stdout.str()


def test_parametrized_ids_follow_a_rename(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """Test ids that embed the renamed symbol (``test_x[fee]``) are mapped, not missing."""
    by_name = (
        "import pytest\nfrom fee import fee\n\n\n"
        '@pytest.mark.parametrize("fn", [fee], ids=lambda fn: fn.__name__)\n'
        "def test_by_name(fn):\n    assert fn(1000) == 20\n"
    )
    repo = make_repo({**FILES, "tests/test_by_name.py": by_name})
    rename = step("rename", "rename_symbol", symbol="fee", new_name="charge", path="fee.py")
    result = run_plan(pytester, repo, [rename], "-n", "2")
    assert result.ret == 0, result.stdout.str()
    (attempt,) = run_json(repo)["attempts"]
    assert attempt["gate"]["missing"] == []
    (rd,) = (repo / ".orchestrate" / "runs").iterdir()
    (tests,) = json.loads((rd / "tests.json").read_text())["attempts"]
    gate_ids = {t["nodeid"] for t in tests["result"]["tests"]}
    assert "tests/test_by_name.py::test_by_name[charge]" in gate_ids


def test_tests_asked_for_in_words_are_allowed_and_marked(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """ "Add tests for …": a new test goes green, marked tests changed, and is not merged
    by --orchestrate-merge alone; --orchestrate-allow-test-changes lets it merge."""
    repo = make_repo(FILES)
    add = edit(
        "tests/test_fee.py",
        "def test_fee_has_a_floor():",
        "def test_fee_rounds_down():\n    assert fee(1999) == 39\n\n\ndef test_fee_has_a_floor():",
        step_id="add",
    )
    head = git(repo, "rev-parse", "main")
    command = "Add tests for fee rounding"
    result = run_plan(pytester, repo, [add], "--orchestrate-merge", command=command)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*merge skipped: the change edits tests (tests/test_fee.py)*"])
    assert git(repo, "rev-parse", "main") == head
    (rd,) = (repo / ".orchestrate" / "runs").iterdir()
    pr = (rd / "PR.md").read_text()
    assert "**Tests changed**" in pr
    assert pr.index("## Test changes") < pr.index("## Diff")
    git(repo, "branch", "-D", "orchestrate/add-tests-for-fee-rounding")
    result = run_plan(
        pytester,
        repo,
        [add],
        "--orchestrate-merge",
        "--orchestrate-allow-test-changes",
        command=command,
    )
    assert result.ret == 0, result.stdout.str()
    assert git(repo, "rev-parse", "main") != head


def test_words_do_not_allow_weakening(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """Asking for test changes allows edits, not a skipped catching test."""
    repo = make_repo(FILES)
    before = snapshot(repo)
    result = run_plan(
        pytester, repo, [BUG, WEAKENINGS["skip marker"]], command="Update the tests for the fee"
    )
    assert_refused(result, repo, before)


@pytest.mark.parametrize("how", sorted(SWAPS))
def test_words_do_not_allow_swapping_out_the_code_under_test(
    how: str, pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """ "… and update the tests" allows test edits; not ones that stop the tests calling
    the project's code while the change breaks it."""
    repo = make_repo(FILES)
    before = snapshot(repo)
    result = run_plan(
        pytester, repo, [BUG, SWAPS[how]], command="Change the fee and update the tests"
    )
    assert_refused(result, repo, before)
    result.stdout.fnmatch_lines(["*code under test replaced*"])


def test_words_allow_a_new_expected_value(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """The honest counterpart: the fee changes and the test's expected value with it."""
    repo = make_repo(FILES)
    expect = edit("tests/test_fee.py", "fee(1000) == 20", "fee(1000) == 30", step_id="expect")
    result = run_plan(
        pytester, repo, [BUG, expect], command="Make the fee three percent and update the tests"
    )
    assert result.ret == 0, result.stdout.str()


def test_code_that_behaves_differently_under_the_tests_is_refused(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """The bug hidden from the tests by the code itself (two percent under pytest, three
    for users): the suite passes; the gate does not."""
    repo = make_repo(FILES)
    before = snapshot(repo)
    hide = edit(
        "fee.py",
        "    return max(1, amount * 2 // 100)",
        "    import os\n\n    rate = 2 if 'PYTEST_CURRENT_TEST' in os.environ else 3\n"
        "    return max(1, amount * rate // 100)",
        step_id="hide",
    )
    result = run_plan(pytester, repo, [hide])
    assert_refused(result, repo, before)
    result.stdout.fnmatch_lines(["*code under test replaced*asks whether a test run*"])


GOLDEN_TEST = """\
from pathlib import Path

from fee import fee


def test_fee_matches_the_golden_file():
    golden = Path(__file__).parent.parent / "golden" / "fee.txt"
    assert fee(1000) == int(golden.read_text())
"""


def test_editing_the_expected_output_is_a_test_edit(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """The bug plus a golden file (outside any tests folder) rewritten to match it: refused,
    as a test edit; the same with words asking for test changes goes through, marked."""
    files = {"fee.py": FEE, "tests/test_golden.py": GOLDEN_TEST, "golden/fee.txt": "20\n"}
    repo = make_repo({**files, "pyproject.toml": PYPROJECT})
    before = snapshot(repo)
    golden = edit("golden/fee.txt", "20", "30", step_id="golden")
    result = run_plan(pytester, repo, [BUG, golden])
    assert_refused(result, repo, before)
    result.stdout.fnmatch_lines(["*golden/fee.txt: test edited*files the tests name*"])
    result = run_plan(pytester, repo, [BUG, golden], command="Change the fee and update the tests")
    assert result.ret == 0, result.stdout.str()
