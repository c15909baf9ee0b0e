"""Containment: nothing a plan or the target's code does escapes the worktree, nothing is
merged unasked, and bad input is refused with exit 4 and changes nothing. Real runs."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_orchestrator.plan import MAX_STEPS, ReplaceBlockArgs, repo_relative
from tests.conftest import commit_all, git, snapshot


def run_plan(
    pytester: pytest.Pytester, repo: Path, steps: list[dict[str, Any]], *args: str
) -> pytest.RunResult:
    plan = repo.parent / "plan.json"
    plan.write_text(json.dumps({"command": "Change things", "steps": steps}))
    return pytester.runpytest_subprocess(
        f"--orchestrate-plan={plan}", "--orchestrate-attempts=1", *args
    )


def git_state(repo: Path) -> dict[str, str]:
    """What a write through .git would change: HEAD, refs, the index, staged changes."""
    return {
        "head": git(repo, "rev-parse", "HEAD"),
        "symbolic": git(repo, "symbolic-ref", "HEAD"),
        "refs": git(repo, "for-each-ref"),
        "index": git(repo, "ls-files", "--stage"),
        "staged": git(repo, "diff", "--cached"),
    }


@pytest.mark.parametrize(
    "path",
    ["calc/../.git", ".git/config", "a/.git/HEAD", ".GIT/index", "x/./../.Git", "tests/.git "],
)
def test_git_is_refused_anywhere_in_a_path(path: str) -> None:
    with pytest.raises(ValueError, match=r"\.git|leaves|repository itself"):
        repo_relative(path)
    with pytest.raises(ValueError, match="validation error"):
        ReplaceBlockArgs(path=path, search="a", replace="b")


def test_the_git_escape_is_refused_and_the_users_git_is_untouched(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """``calc/../.git`` (the worktree's gitdir pointer) is refused before anything runs."""
    repo = make_repo()
    (repo / "calc.py").write_text((repo / "calc.py").read_text() + "\n# staged\n")
    git(repo, "add", "calc.py")  # a staged change of the user's
    before, state = snapshot(repo), git_state(repo)
    step = {
        "id": "escape",
        "pool": "mutate",
        "op": "replace_block",
        "args": {"path": "calc/../.git", "search": "gitdir: ", "replace": "gitdir: ../"},
    }
    result = run_plan(pytester, repo, [step])
    assert result.ret == 4
    result.stdout.fnmatch_lines(["*step 'escape'*inside .git*"])
    assert git_state(repo) == state
    assert snapshot(repo) == before


def test_a_rename_never_writes_through_a_symlink(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """rope would follow a committed symlink out of the repository: the op refuses first."""
    outside = pytester.path / "outside"
    outside.mkdir()
    (outside / "ext.py").write_text(
        "from calc import add\n\n\ndef twice(x):\n    return add(x, x)\n"
    )
    repo = make_repo()
    (repo / "ext.py").symlink_to(outside / "ext.py")
    commit_all(repo, "link")
    before = (outside / "ext.py").read_text()
    step = {
        "id": "rename",
        "pool": "mutate",
        "op": "rename_symbol",
        "args": {"symbol": "twice", "new_name": "double", "path": "ext.py"},
    }
    result = run_plan(pytester, repo, [step])
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*symbolic link (ext.py)*"])
    assert (outside / "ext.py").read_text() == before
    assert git(repo, "branch", "--list", "orchestrate/*") == ""


def test_merge_in_a_symbol_name_or_the_words_never_merges(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """merge_* symbols and "…and merge" leave the base branch where it was."""
    merging = "def merge_sorted(a, b):\n    return sorted(a + b)\n"
    tests = (
        "from merging import merge_sorted\n\n\n"
        "def test_m():\n    assert merge_sorted([2], [1]) == [1, 2]\n"
    )
    repo = make_repo({"merging.py": merging, "tests/test_merging.py": tests})
    head, files = git(repo, "rev-parse", "main"), snapshot(repo)
    result = pytester.runpytest_subprocess(
        "--orchestrate", "Rename merge_sorted to merge_sorted_iterables, post PR"
    )
    assert result.ret == 0, result.stdout.str()
    assert "mentions merging" not in result.stdout.str()
    result = pytester.runpytest_subprocess("--orchestrate", "Rename add to plus, post PR and merge")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*the command mentions merging; words never merge*"])
    assert git(repo, "rev-parse", "main") == head
    files.pop("<branches>")
    after = snapshot(repo)
    after.pop("<branches>")
    assert after == files


LEAKY = """\
import subprocess
from pathlib import Path


def test_writes_into_the_checkout():
    common = subprocess.run(
        ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    (Path(common).parent / "leaked.txt").write_text("oops")
"""


def test_a_test_writing_into_the_checkout_ends_the_run_red(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """The checkout is compared after each stage: the write is found and named."""
    repo = make_repo({"tests/test_leaky.py": LEAKY})
    result = pytester.runpytest_subprocess("--orchestrate", "Rename add to plus")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*your checkout changed*", "*leaked.txt*"])
    assert git(repo, "branch", "--list", "orchestrate/*") == ""


def test_the_tests_see_no_credentials_and_not_the_checkout(
    pytester: pytest.Pytester, make_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inner run's environment has no keys (unless allowed) and never names the checkout."""
    env_test = (
        "import os\n\n\ndef test_env():\n"
        "    assert 'ANTHROPIC_API_KEY' not in os.environ\n"
        "    assert 'MY_SERVICE_TOKEN' not in os.environ\n"
        "    assert os.environ['ALLOWED_TOKEN'] == 'allowed-value-123'\n"
        f"    assert not any({str(pytester.path / 'repo')!r} in v for v in os.environ.values())\n"
    )
    make_repo({"tests/test_env.py": env_test})
    pytester.makeini("[pytest]\norchestrate_env_allow = ALLOWED_TOKEN\n")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-not-for-tests-0123456789")
    monkeypatch.setenv("MY_SERVICE_TOKEN", "service-token-0123456789")
    monkeypatch.setenv("ALLOWED_TOKEN", "allowed-value-123")
    result = pytester.runpytest_subprocess(
        "--orchestrate", "Rename add to plus", "--orchestrate-planner=rules"
    )
    assert result.ret == 0, result.stdout.str()


# ---------------------------------------------------------------------------- bad input


def test_bad_input_is_refused_with_exit_4_and_changes_nothing(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    repo = make_repo()
    before = snapshot(repo)
    huge = [
        {"id": f"s{i}", "pool": "scan", "op": "search", "args": {"pattern": "x"}}
        for i in range(MAX_STEPS + 1)
    ]
    cases: list[tuple[list[str], str]] = []
    big = repo.parent / "big.json"
    big.write_text(json.dumps({"command": "x", "steps": huge}))
    cases.append(([f"--orchestrate-plan={big}"], f"*at most {MAX_STEPS} are accepted*"))
    latin = repo.parent / "latin.json"
    latin.write_bytes('{"command": "caf\xe9", "steps": []}'.encode("latin-1"))
    cases.append(([f"--orchestrate-plan={latin}"], "*is not UTF-8 text*"))
    cases.append((["--orchestrate="], "*--orchestrate needs a command*"))
    blocker = repo.parent / "a-file"
    blocker.write_text("")
    cases.append(
        (
            ["--orchestrate", "Rename add to plus", f"--orchestrate-run-dir={blocker}/runs"],
            "*cannot create the run directory*",
        )
    )
    for args, message in cases:
        result = pytester.runpytest_subprocess(*args)
        assert result.ret == 4, (args, result.stdout.str())
        result.stdout.fnmatch_lines([message])
        assert "Traceback" not in result.stdout.str() + result.stderr.str()
        assert snapshot(repo) == before


def test_submodules_are_cloned_from_the_checkout(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """Tests that import from a submodule run in the worktree, with no network."""
    lib = pytester.path / "lib-origin"
    lib.mkdir()
    (lib / "helper.py").write_text("def two():\n    return 2\n")
    git(lib, "init", "-q", "-b", "main")
    commit_all(lib, "lib")
    uses = (
        "import sys\nsys.path.insert(0, 'vendor/lib')\nfrom helper import two\n\n\n"
        "def test_two():\n    assert two() == 2\n"
    )
    repo = make_repo({"tests/test_vendor.py": uses})
    subprocess.run(
        [
            "git",
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            str(lib),
            "vendor/lib",
        ],
        cwd=repo,
        check=True,
        env={**os.environ, "GIT_ALLOW_PROTOCOL": "file"},
    )
    commit_all(repo, "submodule")
    result = pytester.runpytest_subprocess("--orchestrate", "Rename add to plus")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*submodule vendor/lib cloned from your checkout*"])
