"""The search cache: an unchanged, clean git tree is not searched twice."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_orchestrator.phases.map.phase import map_repository
from pytest_orchestrator.phases.map.search_cache import FILENAME, SearchCache, tree_state

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "wheel"
RENAME = "Rename calculate_position_size to position_size"


def git(root: Path, *args: str) -> None:
    cmd = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = Path(shutil.copytree(EXAMPLE, tmp_path / "wheel"))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    return root


def test_only_a_clean_git_tree_has_a_state(repo: Path, tmp_path: Path) -> None:
    """A clean work tree is named by its tree id; edits, untracked files or no git: no name."""
    assert tree_state(repo) is not None
    (repo / "new.py").write_text("x = 1\n")
    assert tree_state(repo) is None
    (repo / "new.py").unlink()
    (repo / "wheel_sizing" / "kelly.py").write_text("# edited\n")
    assert tree_state(repo) is None
    assert tree_state(tmp_path) is None


def test_a_second_map_of_a_clean_tree_runs_no_search(repo: Path) -> None:
    """The same command on the same clean tree takes every search from the cache, same result."""
    searches = SearchCache(None)
    first = map_repository(repo, RENAME, searches=searches)
    second = map_repository(repo, RENAME, searches=searches)
    assert "cached_searches" not in first.stats
    assert second.stats["cached_searches"] == 3  # words, identifiers, importers
    assert [(r.slice, r.score) for r in second.slices] == [(r.slice, r.score) for r in first.slices]


def test_a_new_commit_is_searched_afresh(repo: Path) -> None:
    """A commit changes the tree id, so nothing cached for the old tree is used."""
    searches = SearchCache(None)
    map_repository(repo, RENAME, searches=searches)
    (repo / "wheel_sizing" / "extra.py").write_text(
        "def calculate_position_size_twice():\n    pass\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "more")
    again = map_repository(repo, RENAME, searches=searches)
    assert "cached_searches" not in again.stats
    assert any(r.slice.path == "wheel_sizing/extra.py" for r in again.slices)


def test_a_corrupt_search_cache_is_rebuilt(tmp_path: Path) -> None:
    """Garbage in search.sqlite is replaced by an empty cache, not an error."""
    (tmp_path / FILENAME).write_bytes(b"not sqlite at all" * 64)
    cache = SearchCache.open(tmp_path)
    assert cache.get("k") is None
    cache.put("k", {"a": [1, 2]})
    assert cache.get("k") == {"a": [1, 2]}
    cache.close()
