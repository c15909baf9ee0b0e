"""The state of the base, read once by a real dry run: one ``git status`` before Map, and
``Run.base_tree`` equal to what Map's search cache would ask git for (None when unknown)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git

RENAME = "Rename add to plus"
# Loaded with pytest's own plugins (-p): counts every git process the session starts.
COUNTER = """\
import subprocess

CALLS = []
_real = subprocess.Popen


class Counting(_real):
    def __init__(self, args, *rest, **kwargs):
        if isinstance(args, (list, tuple)) and args and str(args[0]).endswith("git"):
            CALLS.append([str(a) for a in args[1:]])
        super().__init__(args, *rest, **kwargs)


subprocess.Popen = Counting


def pytest_unconfigure(config):
    import json, os

    with open(os.environ["GITCOUNT_OUT"], "w") as out:
        json.dump(CALLS, out)
"""
# The target's hook runs before the default Map: what the session knows, what git says.
CONFTEST = """\
import json
import sys


def pytest_orchestrator_map(run):
    import gitcount
    from pytest_orchestrator.phases.map.search_cache import tree_state

    statuses = sum("status" in args for args in gitcount.CALLS)
    seen = {"base_tree": run.base_tree, "statuses": statuses}
    seen["tree_state"] = tree_state(run.worktree)
    seen["in_place"] = run.worktree == run.repo
    seen["gauge"] = run.gauge is not None
    seen["phases"] = sorted(
        name.split(".")[2]
        for name in sys.modules
        if name.startswith("pytest_orchestrator.phases.") and name.endswith(".phase")
    )
    seen["rewritten"] = sorted(
        name
        for name, module in sys.modules.items()
        if name.startswith("pytest_orchestrator.phases.")
        and type(getattr(module, "__loader__", None)).__name__ == "AssertionRewritingHook"
    )
    (run.run_dir / "seen.json").write_text(json.dumps(seen))
"""


@pytest.fixture
def dry_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Callable[[Path], dict[str, object]]:
    plugins = pytester.path / "plugins"
    plugins.mkdir()
    (plugins / "gitcount.py").write_text(COUNTER)
    monkeypatch.setenv("PYTHONPATH", str(plugins))
    monkeypatch.setenv("GITCOUNT_OUT", str(pytester.path / "calls.json"))

    def run(repo: Path) -> dict[str, object]:
        result = pytester.runpytest_subprocess(
            "-p", "gitcount", "--orchestrate", RENAME, "--orchestrate-dry-run"
        )
        assert result.ret == 0, result.stdout.str()
        runs = sorted((repo / ".orchestrate" / "runs").iterdir())
        seen: dict[str, object] = json.loads((runs[-1] / "seen.json").read_text())
        seen["calls"] = json.loads((pytester.path / "calls.json").read_text())
        return seen

    return run


def test_a_clean_checkout_read_in_place_is_looked_at_once(
    make_repo: Callable[..., Path], dry_run: Callable[[Path], dict[str, object]]
) -> None:
    repo = make_repo({"conftest.py": CONFTEST, ".gitignore": "build/\n"})
    (repo / "build").mkdir()  # ignored: still the base
    seen = dry_run(repo)
    assert seen["in_place"] is True
    assert seen["base_tree"] == git(repo, "rev-parse", "HEAD^{tree}").strip()
    assert seen["base_tree"] == seen["tree_state"]
    assert seen["statuses"] == 1  # the snapshot's, answering every question before Map
    assert seen["gauge"] is False  # nothing of the target's runs: no memory sampling
    # the phases are plain imports: not parsed, rewritten and compiled again at every start
    # under PYTHONDONTWRITEBYTECODE, as pytest's assertion rewriting would have them
    assert seen["rewritten"] == []
    assert seen["phases"] == ["logic", "map", "plan"]  # the phases a dry run reaches
    # the planner's context lists the tracked files once, for can_plan and plan alike
    calls = seen["calls"]
    assert isinstance(calls, list)
    assert sum(args == ["ls-files"] for args in calls) == 1


def test_a_dirty_checkout_gives_a_tree_only_for_a_verified_slot(
    make_repo: Callable[..., Path], dry_run: Callable[[Path], dict[str, object]]
) -> None:
    repo = make_repo({"conftest.py": CONFTEST})
    (repo / "notes.txt").write_text("untracked: not the base\n")
    first = dry_run(repo)  # a new slot, checked out: its tree is not known
    assert (first["in_place"], first["base_tree"]) == (False, None)
    second = dry_run(repo)  # the slot reset and verified: known, and what git says
    assert second["in_place"] is False
    assert second["base_tree"] == git(repo, "rev-parse", "HEAD^{tree}").strip()
    assert second["base_tree"] == second["tree_state"]
