"""Post-change checks end to end: real `pytest --orchestrate` runs on small repositories whose
own configuration (ruff, mypy, pre-commit) and trace decide the gate with the tests."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git

PYPROJECT = """\
[tool.ruff]
line-length = 100

[tool.ruff.lint]
select = ["E", "F", "N"]

[tool.mypy]
files = ["calc.py", "legacy.py"]
"""
LEGACY = 'LIMIT: int = "ten"  # a type error the base already has\n'
TIDY = {
    "id": "tidy",
    "pool": "mutate",
    "op": "replace_block",
    "args": {"path": "calc.py", "search": '"""Return a + b."""', "replace": '"""The sum."""'},
}
TESTS = {"id": "tests", "pool": "scan", "op": "run_tests", "needs": ["tidy"]}


def rename(new_name: str) -> dict[str, Any]:
    return {
        "id": "rename",
        "pool": "mutate",
        "op": "rename_symbol",
        "args": {"symbol": "add", "new_name": new_name, "path": "calc.py"},
    }


def edit(search: str, replace: str, path: str = "calc.py") -> dict[str, Any]:
    return {
        "id": "tidy",
        "pool": "mutate",
        "op": "replace_block",
        "args": {"path": path, "search": search, "replace": replace},
    }


@pytest.fixture
def checked_repo(make_repo: Callable[..., Path]) -> Callable[..., Path]:
    def make(extra: dict[str, str] | None = None) -> Path:
        return make_repo({"pyproject.toml": PYPROJECT, "legacy.py": LEGACY, **(extra or {})})

    return make


def orchestrate(
    pytester: pytest.Pytester,
    repo: Path,
    plans: list[list[dict[str, Any]]],
    command: str,
    *args: str,
) -> tuple[pytest.RunResult, dict[str, Any], Path]:
    script = repo.parent / "answers.json"
    script.write_text(json.dumps([{"steps": steps} for steps in plans]))
    result = pytester.runpytest_subprocess(
        "--orchestrate",
        command,
        "--orchestrate-planner=scripted",
        f"--orchestrate-script={script}",
        f"--orchestrate-attempts={len(plans)}",
        "-p",
        "no:randomly",
        *args,
    )
    (run_dir,) = (repo / ".orchestrate" / "runs").iterdir()
    return result, json.loads((run_dir / "run.json").read_text()), run_dir


def checks_of(record: dict[str, Any], attempt: int) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in record["attempts"][attempt - 1]["checks"]}


def test_a_rename_that_breaks_a_ruff_rule_is_red_and_the_replan_fixes_it(
    pytester: pytest.Pytester, checked_repo: Callable[..., Path]
) -> None:
    repo = checked_repo()
    result, record, run_dir = orchestrate(
        pytester, repo, [[rename("Plus")], [rename("plus")]], "Rename add to plus"
    )
    assert result.ret == 0, result.stdout.str()
    first, second = checks_of(record, 1), checks_of(record, 2)
    assert not first["ruff"]["ok"]
    assert [(f["rule"], f["path"]) for f in first["ruff"]["findings"]] == [("N802", "calc.py")]
    assert second["ruff"]["ok"]
    assert second["mypy"]["ok"]
    assert second["mypy"]["base_findings"] == second["mypy"]["attempt_findings"] == 1
    pr = (run_dir / "PR.md").read_text()
    assert "## Checks" in pr
    assert "| ruff | 0 | 0 | 0 | ok |" in pr
    assert "| mypy | 1 | 1 | 0 | ok |" in pr
    # what the planner was told: the structured finding, in the red attempt's evidence
    assert "ruff N802 calc.py:" in pr


def test_a_mypy_error_a_plan_introduces_is_red(
    pytester: pytest.Pytester, checked_repo: Callable[..., Path]
) -> None:
    repo = checked_repo()
    typed = edit("def add(a, b):", "def add(a: int, b: int) -> str:")
    result, record, _ = orchestrate(pytester, repo, [[typed]], "Annotate add")
    assert result.ret == 1, result.stdout.str()
    mypy = checks_of(record, 1)["mypy"]
    assert not mypy["ok"]
    assert [(f["rule"], f["path"], f["line"]) for f in mypy["findings"]] == [
        ("return-value", "calc.py", 8)
    ]  # the base's own error in legacy.py is not held against the change
    result.stdout.fnmatch_lines(["*attempt 1 mypy: mypy return-value calc.py:8: Incompatible*"])


def test_a_pre_existing_mypy_error_is_left_alone(
    pytester: pytest.Pytester, checked_repo: Callable[..., Path]
) -> None:
    repo = checked_repo()
    result, record, _ = orchestrate(pytester, repo, [[TIDY, TESTS]], "Tidy the docstring of add")
    assert result.ret == 0, result.stdout.str()
    mypy = checks_of(record, 1)["mypy"]
    assert (mypy["ok"], mypy["base_findings"], mypy["attempt_findings"]) == (True, 1, 1)


HOOK = """\
import sys
from pathlib import Path

for name in sys.argv[1:]:
    path = Path(name)
    path.write_text(path.read_text().replace("TODO", "DONE"))
"""


def test_a_pre_commit_hook_that_rewrites_files_is_reported_not_applied(
    pytester: pytest.Pytester, checked_repo: Callable[..., Path]
) -> None:
    import sys

    config = textwrap.dedent(f"""\
        repos:
          - repo: local
            hooks:
              - id: todo-fixer
                name: todo-fixer
                entry: {sys.executable} hooks/todo_fixer.py
                language: system
                types: [python]
          - repo: https://github.com/pre-commit/pre-commit-hooks
            rev: v4.6.0
            hooks:
              - id: end-of-file-fixer
        """)
    repo = checked_repo({".pre-commit-config.yaml": config, "hooks/todo_fixer.py": HOOK})
    todo = edit('"""Return a + b."""', '"""Return a + b."""  # TODO: a better name')
    note = edit('"""Return a + b."""', '"""Return a + b."""  # NOTE: a better name')
    result, record, _ = orchestrate(pytester, repo, [[todo], [note]], "Note a better name")
    assert result.ret == 0, result.stdout.str()
    hook = checks_of(record, 1)["pre-commit"]
    assert not hook["ok"]
    assert [(f["rule"], f["path"], f["message"]) for f in hook["findings"]] == [
        ("todo-fixer", "calc.py", "the hook rewrites this file (not applied)")
    ]
    assert (
        "end-of-file-fixer (from https://github.com/pre-commit/pre-commit-hooks" in (hook["detail"])
    )
    assert checks_of(record, 2)["pre-commit"]["ok"]
    branch = record["publish"]["branch"]
    assert "NOTE: a better name" in git(repo, "show", f"{branch}:calc.py")
    assert "DONE" not in git(repo, "show", f"{branch}:calc.py")


WARM_PLUGIN = """\
from pytest_orchestrator.phases.execute.ops import OpOutcome
from pytest_orchestrator.plan import LintArgs, OpSpec


def pytest_orchestrator_ops():
    return [OpSpec("warm_cache", "scan", LintArgs, "warm_plugin:warm_cache", "warm a cache")]


def warm_cache(ctx, args):
    try:
        with ctx.run.tracer.span("cache.fill"):
            raise ConnectionResetError("cache server hung up mid-fill")
    except ConnectionResetError:
        pass  # the step carries on as if nothing happened: only the trace knows
    return OpOutcome(True, "cache warmed")
"""


def test_a_step_whose_span_ends_in_error_is_retried_with_its_message(
    pytester: pytest.Pytester, checked_repo: Callable[..., Path]
) -> None:
    repo = checked_repo({"warm_plugin.py": WARM_PLUGIN})
    warm = {"id": "warm", "pool": "scan", "op": "warm_cache", "needs": ["tidy"]}
    result, record, run_dir = orchestrate(
        pytester, repo, [[TIDY, warm], [TIDY]], "Tidy the docstring of add", "-p", "warm_plugin"
    )
    assert result.ret == 0, result.stdout.str()
    trace = checks_of(record, 1)["trace"]
    assert not trace["ok"]
    assert "cache.fill: ConnectionResetError: cache server hung up mid-fill" in trace["detail"]
    assert checks_of(record, 2)["trace"]["ok"]
    assert "cache server hung up mid-fill" in (run_dir / "PR.md").read_text()  # the evidence


def test_a_planted_credential_is_red_and_never_shown(
    pytester: pytest.Pytester, checked_repo: Callable[..., Path]
) -> None:
    token = "ghp_" + "k3Yq9" * 8
    repo = checked_repo()
    plant = edit("SCALE = 10", f'SCALE = 10\nGITHUB = "{token}"')
    result, record, run_dir = orchestrate(pytester, repo, [[plant]], "Add the GitHub token")
    assert result.ret == 1, result.stdout.str()
    secrets = checks_of(record, 1)["secrets"]
    assert not secrets["ok"]
    assert [(f["rule"], f["path"], f["line"]) for f in secrets["findings"]] == [
        ("github-token", "calc.py", 4)
    ]
    assert token not in result.stdout.str() + result.stderr.str()
    assert token not in (run_dir / "run.json").read_text()


def test_extra_checks_that_hang_or_are_missing(
    pytester: pytest.Pytester, checked_repo: Callable[..., Path]
) -> None:
    """A hanging check is stopped at its timeout (as at the base: reported, not held against
    the change); a required one that is not installed is red, named."""
    import sys

    hang = f"{sys.executable} -c 'import time; time.sleep(600)'"
    ini = textwrap.dedent(f"""\
        [tool.pytest.ini_options]
        orchestrate_checks = [
            "{hang}",
            "no-such-linter --strict .",
        ]
        orchestrate_checks_required = ["no-such-linter --strict ."]
        orchestrate_check_timeout = 2
        """)
    # Without mypy: the 2 s timeout applies to every check, and a loaded machine cut mypy's
    # cold base run short, so the base's own type error counted against the change.
    ruff_only = PYPROJECT.split("[tool.mypy]")[0]
    repo = checked_repo({"pyproject.toml": ruff_only + "\n" + ini})
    result, record, _ = orchestrate(pytester, repo, [[TIDY]], "Tidy the docstring of add")
    assert result.ret == 1, result.stdout.str()
    checks = checks_of(record, 1)
    assert "mypy" not in checks
    assert checks[hang]["ok"]
    assert "did not finish in time and was stopped (at the base too)" in checks[hang]["detail"]
    missing = checks["no-such-linter --strict ."]
    assert not missing["ok"]
    assert missing["detail"] == "no-such-linter is not installed; skipped (required: red)"
    result.stdout.fnmatch_lines(["*failed checks: no-such-linter --strict .*"])
