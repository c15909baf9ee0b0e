"""`pytest --orchestrate` end to end, black-box, on small real git repositories."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_orchestrator.phases.map.memory import Memory
from tests.conftest import git, snapshot

RENAME = "Rename add to plus, test at scale, post PR"


def run_dir(repo: Path) -> Path:
    (found,) = (repo / ".orchestrate" / "runs").iterdir()
    return found


def write_plan(repo: Path, steps: list[dict[str, object]], name: str = "my-plan.json") -> Path:
    path = repo.parent / name
    path.write_text(json.dumps({"command": "scripted change", "steps": steps}))
    return path


BREAK_ADD = {
    "id": "break",
    "pool": "mutate",
    "op": "replace_block",
    "args": {"path": "calc.py", "search": "return a + b", "replace": "return a - b"},
}
FIX_ADD = {
    "id": "fix",
    "pool": "mutate",
    "op": "replace_block",
    "args": {
        "path": "calc.py",
        "search": '"""Return a + b."""',
        "replace": '"""Return the sum."""',
    },
}
TESTS = {"id": "tests", "pool": "scan", "op": "run_tests", "needs": []}


def test_rename_goes_green_and_leaves_a_branch(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """A rename the tests accept ends green: a commit on orchestrate/<slug> and a full bundle."""
    repo = make_repo()
    before = snapshot(repo)
    result = pytester.runpytest_subprocess("--orchestrate", RENAME, "-v")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "orchestrate: 'Rename add to plus, test at scale, post PR' (planner: rules)",
            "*map *files*slices*",
            "*logic *kept*",
            "*montecarlo *",
            "*baseline *3 tests pass*",
            "*plan *4 steps by rules*",
            "*plan.json::mutate:rename PASSED*",
            "*plan.json::gate PASSED*",
            "*orchestrate: GREEN*",
            "*branch: orchestrate/rename-add-to-plus*",
        ]
    )
    branch = "orchestrate/rename-add-to-plus"
    assert git(repo, "log", "-1", "--format=%s", branch).startswith("Rename add to plus")
    changed = git(repo, "show", "--stat", "--format=", branch)
    assert "calc.py" in changed
    assert "tests/test_calc.py" in changed
    assert "def plus(a, b)" in git(repo, "show", f"{branch}:calc.py")
    assert "from calc import plus, scaled" in git(repo, "show", f"{branch}:tests/test_calc.py")
    after = snapshot(repo)
    assert after.pop("<branches>") != before.pop("<branches>")  # the new branch, nothing else
    assert after == before  # the checkout is byte-identical, no worktree left
    rd = run_dir(repo)
    for name in (
        "command.txt",
        "slices.json",
        "plan.json",
        "mc_summary.json",
        "tests.json",
        "diff.patch",
        "trace.json",
        "PR.md",
        "run.json",
    ):
        assert (rd / name).is_file(), name
    record = json.loads((rd / "run.json").read_text())
    assert record["outcome"] == "green"
    assert record["exit_status"] == 0
    assert [p["phase"] for p in record["phases"]] == [
        "map",
        "logic",
        "montecarlo",
        "plan",
        "optimise",
        "execute",
        "review",
        "publish",
    ]
    assert record["attempts"][0]["tests_passed"] == 3
    pr = (rd / "PR.md").read_text()
    for section in ("## Summary", "## Diff", "## plan.json", "## Monte Carlo", "## Trace"):
        assert section in pr
    assert "-def add(a, b):" in (rd / "diff.patch").read_text()
    # Map's memory now knows which code a command like this one changed.
    memory = Memory.open(repo / ".orchestrate" / "cache")
    try:
        recalled = memory.recall("Rename add to minus")
    finally:
        memory.close()
    assert ("calc.py", "add") in recalled


def test_a_failing_test_blocks_the_pr(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """An edit that breaks a test: exit 1, no branch kept, the failing test named per attempt."""
    repo = make_repo()
    before = snapshot(repo)
    plan = write_plan(repo, [BREAK_ADD, {**TESTS, "needs": ["break"]}])
    result = pytester.runpytest_subprocess("--orchestrate-plan", str(plan))
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*orchestrate: TESTS_FAILED*",
            "*the gate stayed red*",
            "*attempt 1 FAILED tests/test_calc.py::test_add*",
        ]
    )
    assert snapshot(repo) == before
    record = json.loads((run_dir(repo) / "run.json").read_text())
    assert record["outcome"] == "tests_failed"
    assert "tests/test_calc.py::test_add" in record["attempts"][0]["tests_failed"]
    assert "Gate: red" in (run_dir(repo) / "PR.md").read_text()


def test_a_failed_attempt_is_replanned(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """The scripted planner's second plan fixes the first one's failure: green on attempt 2."""
    repo = make_repo()
    script = repo.parent / "answers.json"
    script.write_text(
        json.dumps(
            [
                {"steps": [BREAK_ADD, {**TESTS, "needs": ["break"]}]},
                {"steps": [FIX_ADD, {**TESTS, "needs": ["fix"]}]},
            ]
        )
    )
    result = pytester.runpytest_subprocess(
        "--orchestrate",
        "tidy the docstring of add",
        "--orchestrate-planner=scripted",
        f"--orchestrate-script={script}",
        "-v",
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*plan.json::scan:tests RETRIED*",
            "*replan after attempt 1*",
            "*plan.json::scan:tests?attempt2? PASSED*",
            "*orchestrate: GREEN*",
        ]
    )
    record = json.loads((run_dir(repo) / "run.json").read_text())
    assert [a["green"] for a in record["attempts"]] == [False, True]
    assert "| 1 |" in (run_dir(repo) / "PR.md").read_text()


def test_tests_failing_before_any_change_are_refused(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """A suite that is already red has no gate to pass: refuse, exit 4, nothing kept."""
    repo = make_repo({"tests/test_broken.py": "def test_broken():\n    assert False\n"})
    before = snapshot(repo)
    result = pytester.runpytest_subprocess("--orchestrate", RENAME)
    assert result.ret == 4
    result.stdout.fnmatch_lines(["*the tests already fail before any change*", "*test_broken*"])
    assert snapshot(repo) == before


def test_not_a_git_repository_is_refused(pytester: pytest.Pytester) -> None:
    """Outside a git repository the run refuses and says how to make one."""
    pytester.makepyfile(calc="def add(a, b):\n    return a + b\n")
    result = pytester.runpytest_subprocess("--orchestrate", RENAME)
    assert result.ret == 4
    result.stdout.fnmatch_lines(["*not inside a git repository*git init*"])


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("Rename subtract to minus", "*no definition of 'subtract'*"),
        ("Rename add to 2fast", "*'2fast' is not a valid Python identifier*"),
        ("Rename add to scaled", "*'scaled' already exists beside 'add'*"),
        ("Make it faster", "*needs an LLM planner*ANTHROPIC_API_KEY*"),
    ],
)
def test_bad_rename_commands_change_nothing(
    pytester: pytest.Pytester, make_repo: Callable[..., Path], command: str, message: str
) -> None:
    """Unknown symbols, bad or taken names, and commands beyond the rules planner: exit 4."""
    repo = make_repo()
    before = snapshot(repo)
    result = pytester.runpytest_subprocess("--orchestrate", command)
    assert result.ret == 4, result.stdout.str()
    result.stdout.fnmatch_lines([message])
    assert snapshot(repo) == before


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [
                {
                    "id": "a",
                    "pool": "scan",
                    "op": "search",
                    "args": {"pattern": "x"},
                    "needs": ["b"],
                },
                {
                    "id": "b",
                    "pool": "scan",
                    "op": "search",
                    "args": {"pattern": "x"},
                    "needs": ["a"],
                },
            ],
            "*step 'a': is part of a cycle*",
        ),
        (
            [{**BREAK_ADD, "args": {**BREAK_ADD["args"], "path": "../outside.py"}}],  # type: ignore[dict-item]
            "*step 'break': args.path*leaves the repository*",
        ),
        (
            [{**BREAK_ADD, "args": {**BREAK_ADD["args"], "path": "/etc/passwd"}}],  # type: ignore[dict-item]
            "*step 'break': args.path*absolute*",
        ),
        (
            [{"id": "x", "pool": "scan", "op": "format_disk", "args": {}}],
            "*unknown op 'format_disk'*",
        ),
        ([{**BREAK_ADD, "pool": "scan"}], "*step 'break': op 'replace_block' writes files*"),
    ],
)
def test_a_hostile_plan_is_rejected_before_anything_happens(
    pytester: pytest.Pytester,
    make_repo: Callable[..., Path],
    steps: list[dict[str, object]],
    message: str,
) -> None:
    """Cycles, escaping or absolute paths, unknown ops: exit 4, named step, nothing written."""
    repo = make_repo()
    before = snapshot(repo)
    result = pytester.runpytest_subprocess("--orchestrate-plan", str(write_plan(repo, steps)))
    assert result.ret == 4
    result.stdout.fnmatch_lines(["*invalid plan (nothing was changed)*", message])
    assert snapshot(repo) == before
    assert not (repo / ".orchestrate").exists()


def test_malformed_plan_json_is_rejected(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """A plan file that is not JSON at all gets a clear error and changes nothing."""
    repo = make_repo()
    bad = repo.parent / "bad.json"
    bad.write_text("{not json")
    result = pytester.runpytest_subprocess("--orchestrate-plan", str(bad))
    assert result.ret == 4
    result.stdout.fnmatch_lines(["*bad.json is not a valid plan.json*"])
    assert not (repo / ".orchestrate").exists()


def test_uncommitted_changes_are_left_out_with_a_warning(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """A dirty tree: the run warns, starts from HEAD, and leaves the dirty files as they were."""
    repo = make_repo()
    (repo / "calc.py").write_text((repo / "calc.py").read_text() + "\nDIRTY = True\n")
    before = snapshot(repo)
    result = pytester.runpytest_subprocess("--orchestrate", RENAME)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*uncommitted changes are not part of the run (calc.py)*"])
    after = snapshot(repo)
    after.pop("<branches>"), before.pop("<branches>")
    assert after == before
    branch_calc = git(repo, "show", "orchestrate/rename-add-to-plus:calc.py")
    assert "DIRTY" not in branch_calc


def test_a_target_conftest_can_veto_the_gate(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """A review hook in the target's conftest.py adds a check; failing it blocks the PR."""
    repo = make_repo(
        {
            "conftest.py": (
                "import pytest\n\n"
                "@pytest.hookimpl(optionalhook=True)\n"
                "def pytest_orchestrator_review(run, attempt):\n"
                "    from pytest_orchestrator.model import Check\n"
                "    return [Check(name='house-rule', ok=False, detail='no renames on Fridays')]\n"
            )
        }
    )
    result = pytester.runpytest_subprocess("--orchestrate", RENAME)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*review *gate red: house-rule*", "*orchestrate: CHECKS_FAILED*"])
    assert "orchestrate/" not in git(repo, "branch", "--list")


def test_dry_run_prints_the_plan_and_changes_nothing(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """--orchestrate-dry-run stops after Plan: ranked slices and plan.json, no branch."""
    repo = make_repo()
    before = snapshot(repo)
    result = pytester.runpytest_subprocess("--orchestrate", RENAME, "--orchestrate-dry-run")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*ranked slices*", "*calc.py*add*", "*plan.json*", '*"op": "rename_symbol"*']
    )
    assert snapshot(repo) == before


def test_collect_only_lists_the_plan_steps_and_runs_nothing(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """--collect-only shows the plan as items; nothing is executed or kept."""
    repo = make_repo()
    before = snapshot(repo)
    result = pytester.runpytest_subprocess("--orchestrate", RENAME, "--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["plan.json::scan:find", "plan.json::mutate:rename", "*dry run*"])
    assert "tests pass at the base commit" not in result.stdout.str()  # no baseline run
    assert snapshot(repo) == before


def test_merge_fast_forwards_the_base_branch(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """--orchestrate-merge: the base branch points at the tested commit afterwards."""
    repo = make_repo()
    result = pytester.runpytest_subprocess("--orchestrate", RENAME, "--orchestrate-merge")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*merged into main*"])
    assert "def plus(a, b)" in (repo / "calc.py").read_text()
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    ("option", "worker"),
    [
        ("--orchestrate-workers=0", "subprocess"),
        ("--orchestrate-workers=2", "xdist x2"),
        ("-n2", "xdist x2"),  # -n with --orchestrate is for the target's runs, not the steps
    ],
)
def test_inner_runs_with_and_without_xdist_agree(
    pytester: pytest.Pytester, make_repo: Callable[..., Path], option: str, worker: str
) -> None:
    """The target's suite gives the same verdict with -n 0 and -n 2."""
    more = "from calc import add\n\ndef test_more():\n    assert add(1, 1) == 2\n"
    make_repo({"tests/test_more.py": more})
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess("--orchestrate", RENAME, option, f"--junitxml={junit}")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*attempt 1: 4 passed, 0 failed*"])
    assert f'name="worker" value="{worker}"' in junit.read_text()  # the gate item's


def test_schema_can_be_printed(pytester: pytest.Pytester) -> None:
    """--orchestrate-schema prints plan.json's JSON Schema, including every op's args."""
    result = pytester.runpytest_subprocess("--orchestrate-schema")
    assert result.ret == 0
    schema = json.loads(result.stdout.str())
    assert schema["title"] == "pytest-orchestrator plan.json"
    assert "rename_symbol" in schema["$defs"]["ops"]
