"""pre-commit hooks: only those that need no installation run, and a rewrite is not applied."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_orchestrator.phases.review import precommit
from tests.conftest import commit_all, git

UPPER = Path(__file__).with_name("upper_hook.py")
CONFIG = f"""\
repos:
  - repo: https://github.com/pre-commit/pre-commit-hooks
    rev: v4.6.0
    hooks:
      - id: trailing-whitespace
  - repo: local
    hooks:
      - id: upper
        name: upper
        entry: {sys.executable} {UPPER}
        language: system
        files: \\.txt$
      - id: no-todo
        name: no-todo
        entry: "TODO"
        language: pygrep
      - id: built
        name: built
        entry: something
        language: python
"""

pytestmark = pytest.mark.skipif(
    precommit.find_executable("pre-commit") is None, reason="pre-commit is a dev dependency"
)


def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / precommit.CONFIG).write_text(CONFIG)
    (root / "a.txt").write_text("hello\n")
    (root / "b.py").write_text("x = 1\n")
    git(root, "init", "-q", "-b", "main")
    commit_all(root)
    return root


def test_hooks_that_need_the_network_or_an_environment_are_skipped(tmp_path: Path) -> None:
    hooks = precommit.select(repo(tmp_path))
    assert hooks.kept == ["upper", "no-todo"]
    assert hooks.skipped == [
        "trailing-whitespace (from https://github.com/pre-commit/pre-commit-hooks: "
        "installing it needs the network)",
        "built (language python needs an environment built)",
    ]


def test_a_rewriting_hook_is_a_finding_and_the_file_stays(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / "a.txt").write_text("changed\n")
    (root / "b.py").write_text("x = 1  # TODO later\n")
    hooks = precommit.select(root)
    outcome = precommit.run(root, hooks, ["a.txt", "b.py"], tmp_path / "s", "t", timeout=120)
    found = {(f.rule, f.path, f.line) for f in precommit.parse(outcome, root)}
    assert found == {("upper", "a.txt", 0), ("no-todo", "b.py", 1)}
    assert (root / "a.txt").read_text() == "changed\n"
