"""The worktree: isolated from the checkout, reset between attempts, a persistent slot that
the next run resets; nothing else of a run outlives it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_orchestrator.errors import RepositoryError
from pytest_orchestrator.guard.proctree import process_start
from pytest_orchestrator.repo import worktree
from pytest_orchestrator.repo.worktree import Worktree, clean_stale, slots_home, slugify
from tests.conftest import git, snapshot


@pytest.mark.parametrize(
    ("command", "slug"),
    [
        (
            "Rename calculate_position_size to position_size, test at scale, post PR",
            "rename-calculate-position-size-to-position-size",
        ),
        ("Fix: the bug", "fix"),
        ("!!!", "change"),
        ("x" * 80, "x" * 60),
    ],
)
def test_branch_slugs_come_from_the_first_clause(command: str, slug: str) -> None:
    assert slugify(command) == slug


def test_a_worktree_is_outside_the_checkout_and_leaves_nothing(
    make_repo: Callable[..., Path],
) -> None:
    """Edits in the worktree never show in the checkout; remove() takes branch and lease
    away and leaves only the slot, outside the checkout, detached at the base."""
    repo = make_repo()
    before = snapshot(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = Worktree.create(repo, head, "Rename add to plus", "run1")
    assert tree.path == slots_home(repo) / "0" / "tree"
    assert not tree.path.is_relative_to(repo)
    assert (tree.branch, tree.reused) == ("", False)
    assert git(tree.path, "rev-parse", "--abbrev-ref", "HEAD").strip() == "HEAD"  # detached
    (tree.path / "calc.py").write_text("changed\n")
    (tree.path / "new.py").write_text("new\n")
    assert tree.changed_files() == ["calc.py", "new.py"]
    assert {k: v for k, v in snapshot(repo).items() if not k.startswith("<")} == {
        k: v for k, v in before.items() if not k.startswith("<")
    }
    tree.reset()
    assert tree.changed_files() == []
    assert not (tree.path / "new.py").exists()
    tree.remove()
    assert snapshot(repo) == before
    assert not (repo / ".git" / "orchestrate").exists()
    assert tree.path.is_dir()


def test_a_kept_branch_survives_removal(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = Worktree.create(repo, head, "Rename add to plus", "run1")
    (tree.path / "calc.py").write_text("changed\n")
    commit = tree.commit("change")
    tree.keep_branch(commit)
    assert json.loads(tree.lease.read_text())["commit"] == commit
    assert tree.kept_commit() == commit
    tree.remove()
    assert git(repo, "rev-parse", "orchestrate/rename-add-to-plus").strip() == commit
    assert tree.branch == "orchestrate/rename-add-to-plus"


def test_taken_branch_names_get_a_suffix(make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    git(repo, "branch", "orchestrate/rename-add-to-plus")
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = Worktree.create(repo, head, "Rename add to plus", "run1")
    try:
        (tree.path / "calc.py").write_text("changed\n")
        commit = tree.commit("change")
        assert tree.branch == "orchestrate/rename-add-to-plus-2"
        assert git(repo, "rev-parse", tree.branch).strip() == commit
    finally:
        tree.remove()
    assert "rename-add-to-plus-2" not in git(repo, "branch", "--list")  # not kept: deleted


def test_leases_of_live_processes_are_left_alone(make_repo: Callable[..., Path]) -> None:
    """clean_stale only removes what dead owners left; a live run keeps its worktree."""
    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = Worktree.create(repo, head, "Rename add to plus", "run1")
    try:
        assert clean_stale(repo) == []
        assert tree.path.is_dir()
    finally:
        tree.remove()


def test_a_worktree_on_an_unknown_commit_fails_cleanly(make_repo: Callable[..., Path]) -> None:
    """A failed creation leaves no branch, lease or temp dir behind."""
    repo = make_repo()
    before = snapshot(repo)
    with pytest.raises(Exception, match="worktree add"):
        Worktree.create(repo, "0" * 40, "Rename add to plus", "run1")
    assert snapshot(repo) == before
    assert not (repo / ".git" / "orchestrate").exists()


def test_changed_lines_are_the_base_lines_each_hunk_touches(
    make_repo: Callable[..., Path],
) -> None:
    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = Worktree.create(repo, head, "Rename add to plus", "run1")
    try:
        calc = tree.path / "calc.py"
        lines = calc.read_text().splitlines()
        lines[5] = "def plus(a, b):"  # line 6
        calc.write_text("\n".join(lines) + "\n")
        (tree.path / "new.py").write_text("x = 1\n")
        assert tree.changed_lines() == {"calc.py": {6}}
    finally:
        tree.remove()


def test_keeping_needs_the_commit_the_branch_points_at(make_repo: Callable[..., Path]) -> None:
    """Marking the base commit (no commit made yet) as the result is refused."""
    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = Worktree.create(repo, head, "Rename add to plus", "run1")
    try:
        with pytest.raises(RepositoryError, match="Commit first"):
            tree.keep_branch("1" * 40)
        assert tree.kept_commit() is None
    finally:
        tree.remove()
    assert "orchestrate/" not in git(repo, "branch", "--list")


ABANDON = """\
import os, sys
from pathlib import Path
from pytest_orchestrator.repo.worktree import Worktree
repo, head, keep = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
tree = Worktree.create(repo, head, "Rename add to plus", "dead")
(tree.path / "calc.py").write_text("changed\\n")
if keep != "none":
    commit = tree.commit("change")
    tree.keep_branch(commit)
    if keep == "moved":
        (tree.path / "calc.py").write_text("changed again\\n")
        tree.commit("after the keep")
print(tree.path, flush=True)
os._exit(0)  # like kill -9: no cleanup at all
"""


def abandon(repo: Path, keep: str) -> Path:
    """A run that dies without cleaning up, after keeping (or not) a commit; its worktree."""
    head = git(repo, "rev-parse", "HEAD").strip()
    out = subprocess.run(
        [sys.executable, "-c", ABANDON, str(repo), head, keep],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Path(out.strip())


@pytest.mark.parametrize(("keep", "kept"), [("none", False), ("kept", True), ("moved", False)])
def test_a_dead_runs_branch_stays_only_at_its_recorded_commit(
    make_repo: Callable[..., Path], keep: str, kept: bool
) -> None:
    """clean_stale keeps a branch only when it points at the commit the lease records; the
    dead run's slot stays for the next run, which resets it."""
    repo = make_repo()
    before = snapshot(repo)
    path = abandon(repo, keep)
    lease = json.loads(next((repo / ".git" / "orchestrate").glob("*.json")).read_text())
    assert path.is_dir()
    assert clean_stale(repo) == ["dead"]
    assert not (repo / ".git" / "orchestrate").exists()
    assert {k: v for k, v in snapshot(repo).items() if k != "<branches>"} == {
        k: v for k, v in before.items() if k != "<branches>"
    }
    head = git(repo, "rev-parse", "HEAD").strip()
    again = Worktree.create(repo, head, "Rename add to plus", "next")
    try:
        assert (again.path, again.reused, again.rewritten) == (path, True, ["calc.py"])
        assert (path / "calc.py").read_text() == (repo / "calc.py").read_text()
    finally:
        again.remove()
    branches = git(repo, "branch", "--list").split()
    assert ("orchestrate/rename-add-to-plus" in branches) == kept
    if kept:
        tip = git(repo, "rev-parse", "orchestrate/rename-add-to-plus").strip()
        assert tip == lease["commit"]


def test_a_keep_flag_without_a_commit_is_not_a_result(make_repo: Callable[..., Path]) -> None:
    """A lease from before commits were recorded (keep set, no commit) keeps nothing."""
    repo = make_repo()
    abandon(repo, "none")
    (lease,) = (repo / ".git" / "orchestrate").glob("*.json")
    record = json.loads(lease.read_text())
    record.pop("commit")
    lease.write_text(json.dumps({**record, "keep": True}))
    clean_stale(repo)
    assert "orchestrate/" not in git(repo, "branch", "--list")


HOLDER = """\
import os, subprocess, sys, time
from pathlib import Path
from pytest_orchestrator.guard import containment
from pytest_orchestrator.repo.worktree import Worktree
repo, head = Path(sys.argv[1]), sys.argv[2]
tree = Worktree.create(repo, head, "Rename add to plus", "dead")
# no watchdog in a plain sleep: only the lease can stop it
sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
containment.register(sleeper)
print(sleeper.pid, flush=True)
time.sleep(300)
"""


def test_clean_stale_stops_the_process_groups_of_a_dead_run(
    make_repo: Callable[..., Path],
) -> None:
    repo = make_repo()
    before = snapshot(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    owner = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(repo), head], stdout=subprocess.PIPE
    )
    assert owner.stdout is not None
    sleeper = int(owner.stdout.readline())
    try:
        owner.kill()
        owner.wait()
        assert process_start(sleeper) is not None  # it outlived its owner
        assert clean_stale(repo) == ["dead"]
        assert process_start(sleeper) is None
        assert snapshot(repo) == before
        assert not (repo / ".git" / "orchestrate").exists()
    finally:
        if process_start(sleeper) is not None:
            subprocess.run(["kill", "-9", str(sleeper)], check=False)


def test_when_every_name_is_taken_the_error_says_what_to_do(
    make_repo: Callable[..., Path],
) -> None:
    repo = make_repo()
    for name in ("orchestrate/rename-add-to-plus", "orchestrate/rename-add-to-plus-2"):
        git(repo, "branch", name)
    before = snapshot(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = Worktree.create(repo, head, "Rename add to plus", "run1", attempts=2)
    try:
        (tree.path / "calc.py").write_text("changed\n")
        with pytest.raises(RepositoryError, match="Delete old orchestrate/"):
            tree.commit("change")
        assert tree.branch == ""
    finally:
        tree.remove()
    assert snapshot(repo) == before
    assert not (repo / ".git" / "orchestrate").exists()


def test_a_name_taken_after_the_check_is_left_to_its_owner(
    make_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race itself: another run created the branch between our check and ours."""
    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = Worktree.create(repo, head, "Rename add to plus", "run1")
    theirs = "orchestrate/rename-add-to-plus"
    real = worktree.branch_exists
    checked: list[str] = []

    def stale_check(root: Path, name: str) -> bool:
        if name == theirs and name not in checked:  # "not taken", said just before it was
            checked.append(name)
            git(repo, "branch", theirs)
            return False
        return real(root, name)

    monkeypatch.setattr(worktree, "branch_exists", stale_check)
    try:
        (tree.path / "calc.py").write_text("changed\n")
        commit = tree.commit("change")
        assert tree.branch == theirs + "-2"
        assert git(repo, "rev-parse", theirs).strip() == head
        assert git(repo, "rev-parse", tree.branch).strip() == commit
    finally:
        tree.remove()
    assert theirs in git(repo, "branch", "--list")
    assert theirs + "-2" not in git(repo, "branch", "--list")


RACER = """\
import sys, time
from pathlib import Path
from pytest_orchestrator.repo.worktree import Worktree
repo, head, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
while not go.exists():
    time.sleep(0.001)
tree = Worktree.create(repo, head, "Rename add to plus", sys.argv[4])
(tree.path / "calc.py").write_text(sys.argv[4] + "\\n")
tree.commit("change")
print(tree.branch, tree.path, flush=True)
(go.parent / f"made-{sys.argv[4]}").touch()
while len(list(go.parent.glob("made-*"))) < 4:  # hold the branch until every racer has one
    time.sleep(0.01)
tree.remove()
"""


def test_concurrent_runs_each_get_their_own_branch(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    """Runs released at the same moment race for one slot and one name: each works in a
    worktree of its own and ends with a branch of its own, none with a git error."""
    repo = make_repo()
    before = snapshot(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(repo), head, str(go), f"run{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    go.touch()
    results = [r.communicate(timeout=120) for r in racers]
    assert [r.returncode for r in racers] == [0] * 4, results
    assert len({out.split()[0] for out, _ in results}) == 4
    assert len({out.split()[1] for out, _ in results}) == 4
    assert snapshot(repo) == before


def test_a_redirected_git_pointer_stops_every_git_operation(
    make_repo: Callable[..., Path],
) -> None:
    """<worktree>/.git rewritten to the user's .git: no diff, commit or reset runs there."""
    repo = make_repo()
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = Worktree.create(repo, head, "Rename add to plus", "run1")
    try:
        (tree.path / ".git").write_text(f"gitdir: {repo / '.git'}\n")
        for operation in (tree.reset, tree.diff, lambda: tree.commit("x")):
            with pytest.raises(RepositoryError, match="git pointer"):
                operation()
        assert git(repo, "rev-parse", "HEAD").strip() == head
    finally:
        tree.remove()
