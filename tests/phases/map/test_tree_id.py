"""A tree id the caller knows replaces Map's own ``git status``: same answers, no status run."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_orchestrator.phases.map.index import SearchIndex
from pytest_orchestrator.phases.map.phase import map_repository
from pytest_orchestrator.phases.map.search_cache import SearchCache, tree_state

RENAME = "Rename calculate_position_size to position_size"


@pytest.fixture
def git_commands(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every git command line Map starts (the real processes still run)."""
    seen: list[list[str]] = []

    class Popen(subprocess.Popen):  # type: ignore[type-arg]
        """`subprocess.run` starts its process through this name too."""

        def __init__(self, args: Any, *a: Any, **kw: Any) -> None:
            if isinstance(args, list | tuple) and args and Path(str(args[0])).name == "git":
                seen.append([str(x) for x in args])
            super().__init__(args, *a, **kw)

    monkeypatch.setattr(subprocess, "Popen", Popen)
    return seen


def _statuses(commands: list[list[str]]) -> int:
    return sum(1 for c in commands if "status" in c)


def test_a_known_tree_id_runs_no_git_status(
    repo: Path, tmp_path: Path, git_commands: list[list[str]]
) -> None:
    """With ``tree_id`` Map keys its caches on it and never asks git for the tree's state;
    the result is the one Map gets by asking."""
    tree = tree_state(repo)
    assert tree is not None
    git_commands.clear()
    asked = map_repository(repo, RENAME, searches=SearchCache(None))
    assert _statuses(git_commands) == 1  # the fixture sees Map's own status
    git_commands.clear()
    searches = SearchCache(None)
    told = map_repository(repo, RENAME, searches=searches, tree_id=tree)
    again = map_repository(repo, RENAME, searches=searches, tree_id=tree)
    assert _statuses(git_commands) == 0
    assert told.model_dump() == {**asked.model_dump(), "stats": told.stats}
    assert [r.model_dump() for r in told.slices] == [r.model_dump() for r in asked.slices]
    assert again.stats["cached_searches"] == 3  # keyed on the given tree


def test_a_known_tree_id_finds_the_index(
    repo: Path, tmp_path: Path, git_commands: list[list[str]]
) -> None:
    """The identifier index of the given tree is searched, without a ``git status``."""
    tree = tree_state(repo)
    assert tree is not None
    index = SearchIndex.open(tmp_path / "cache")
    assert index.update(repo, tree)
    git_commands.clear()
    mapped = map_repository(repo, RENAME, blob_index=index, tree_id=tree)
    index.close()
    assert mapped.stats["index"] == 1
    assert _statuses(git_commands) == 0


def test_the_hook_passes_the_sessions_tree(
    repo: Path, tmp_path: Path, git_commands: list[list[str]]
) -> None:
    """The default Map hook keys Map on ``run.base_tree`` when the session knows it."""
    from types import SimpleNamespace
    from typing import cast

    from pytest_orchestrator.phases.map.phase import pytest_orchestrator_map
    from pytest_orchestrator.run import Run

    tree = tree_state(repo)
    assert tree is not None
    git_commands.clear()
    run = SimpleNamespace(
        command=RENAME,
        worktree=repo,
        cache=None,
        settings=SimpleNamespace(cache_dir=tmp_path / "cache", dry_run=True, fresh=False),
        report=lambda line: None,
        base_tree=tree,
    )
    pytest_orchestrator_map(cast(Run, run))
    assert pytest_orchestrator_map(cast(Run, run)).stats["cached_result"] == 1  # a lookup
    assert _statuses(git_commands) == 0
    run.settings.fresh = True  # Map again: its searches are keyed on the tree id
    assert pytest_orchestrator_map(cast(Run, run)).stats["cached_searches"] == 3
    assert _statuses(git_commands) == 0


def test_no_tree_id_on_a_dirty_tree_caches_nothing(repo: Path) -> None:
    """Without a tree id Map asks git as before: an edited tree has no state, nothing cached."""
    (repo / "wheel_sizing" / "kelly.py").write_text("# edited\n")
    searches = SearchCache(None)
    map_repository(repo, RENAME, searches=searches)
    again = map_repository(repo, RENAME, searches=searches)
    assert "cached_searches" not in again.stats
