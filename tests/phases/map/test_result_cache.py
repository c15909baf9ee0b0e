"""The result cache: a command Mapped before on the same clean tree is looked up, and any
change of what Map or Logic depends on is a miss."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_orchestrator.model import MapResult
from pytest_orchestrator.phases.logic.phase import prune, prune_cached
from pytest_orchestrator.phases.map import result_cache
from pytest_orchestrator.phases.map.memory import remember
from pytest_orchestrator.phases.map.phase import map_cached, map_repository
from pytest_orchestrator.phases.map.result_cache import (
    FILENAME,
    ResultCache,
    code_version,
    logic_key,
    map_key,
)
from pytest_orchestrator.phases.map.search_cache import SearchCache, tree_state
from tests.conftest import commit_all

RENAME = "Rename calculate_position_size to position_size"
#: names something that is nowhere in the example: Map reports it
MISSING = "Rename calculate_position_size and kelly_fraktion_typo to something"


def _answer(result: MapResult) -> tuple[object, ...]:
    """Everything of a Map result but its statistics (timings differ run to run)."""
    return result.terms, result.files, result.slices


def test_a_hit_returns_what_a_fresh_map_returns(repo: Path, tmp_path: Path) -> None:
    """The second Map of a command on an unchanged clean tree is a lookup, with the very
    result (and reported lines) of a fresh Map; Logic likewise."""
    cache_dir = tmp_path / "cache"
    first_lines: list[str] = []
    first, tree = map_cached(repo, MISSING, cache_dir, report=first_lines.append)
    assert tree == tree_state(repo)
    assert "cached_result" not in first.stats
    again_lines: list[str] = []
    again, _ = map_cached(repo, MISSING, cache_dir, report=again_lines.append)
    assert again.stats["cached_result"] == 1
    fresh = map_repository(repo, MISSING)
    assert _answer(again) == _answer(first) == _answer(fresh)
    assert any("kelly_fraktion_typo" in line for line in first_lines)
    assert again_lines == first_lines

    logic = prune_cached(first, repo, cache_dir, budget_tokens=2000, tree_id=tree)
    # a hit is recognised only by what it skipped: make the tree unreadable to `prune`
    moved = shutil.move(repo / "wheel_sizing", tmp_path / "elsewhere")
    assert prune(again, repo, budget_tokens=2000) != logic  # prune reads files: they're gone
    stored = prune_cached(again, repo, cache_dir, budget_tokens=2000, tree_id=tree)
    assert stored == logic
    shutil.move(moved, repo / "wheel_sizing")
    assert prune(fresh, repo, budget_tokens=2000) == logic


def test_every_part_of_the_key_changes_it(repo: Path, tmp_path: Path) -> None:
    """Tree, command, the memory's recall, the code's version: each one makes another key."""
    tree = tree_state(repo)
    assert tree is not None
    base = map_key(tree, RENAME, {})
    assert map_key(tree, RENAME, {}) == base
    assert map_key("0" * 40, RENAME, {}) != base
    assert map_key(tree, RENAME + ".", {}) != base
    assert map_key(tree, RENAME, {("wheel_sizing/kelly.py", "kelly"): 0.5}) != base
    assert map_key(tree, RENAME, {("wheel_sizing/kelly.py", "kelly"): 0.25}) != map_key(
        tree, RENAME, {("wheel_sizing/kelly.py", "kelly"): 0.5}
    )
    mapped = map_repository(repo, RENAME)
    logic = logic_key(tree, mapped, 2000)
    assert logic_key(tree, mapped, 2001) != logic
    assert logic_key("0" * 40, mapped, 2000) != logic
    fewer = mapped.model_copy(update={"slices": mapped.slices[1:]})
    assert logic_key(tree, fewer, 2000) != logic


def test_code_version_follows_the_source(tmp_path: Path) -> None:
    """Any edit of a source file of the package is another version."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "sub" / "b.json").write_text("{}\n")
    before = code_version.__wrapped__(package)
    assert code_version.__wrapped__(package) == before
    (package / "sub" / "b.json").write_text("{ }\n")
    assert code_version.__wrapped__(package) != before
    assert code_version() == code_version()  # the installed package: computed once


def test_a_changed_key_is_a_miss(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new commit, a memory that now recalls something, new code, ``fresh``: Map runs."""
    cache_dir = tmp_path / "cache"
    map_cached(repo, RENAME, cache_dir)
    assert map_cached(repo, RENAME, cache_dir)[0].stats.get("cached_result") == 1
    assert "cached_result" not in map_cached(repo, RENAME, cache_dir, fresh=True)[0].stats
    # a green run of a similar command: the recall, hence the key, differs
    first = map_repository(repo, RENAME)
    remember(cache_dir, "Rename calculate_position_size to size", [first.slices[-1].slice])
    recalled, _ = map_cached(repo, RENAME, cache_dir)
    assert "cached_result" not in recalled.stats
    assert recalled.slices[-1].components["memory"] >= 0
    assert map_cached(repo, RENAME, cache_dir)[0].stats.get("cached_result") == 1
    monkeypatch.setattr(result_cache, "code_version", lambda: "another version")
    assert "cached_result" not in map_cached(repo, RENAME, cache_dir)[0].stats
    monkeypatch.undo()
    (repo / "wheel_sizing" / "extra.py").write_text("def calculate_position_size_2():\n    pass\n")
    commit_all(repo, "more")
    newer, _ = map_cached(repo, RENAME, cache_dir)
    assert "cached_result" not in newer.stats
    assert "wheel_sizing/extra.py" in newer.files


def test_a_dirty_tree_is_not_cached(repo: Path, tmp_path: Path) -> None:
    """No tree id, no entry: every Map of a dirty tree runs (and asks git once per Map)."""
    cache_dir = tmp_path / "cache"
    (repo / "untracked.py").write_text("def calculate_position_size_3():\n    pass\n")
    _, tree = map_cached(repo, RENAME, cache_dir)
    assert tree is None
    again, _ = map_cached(repo, RENAME, cache_dir)
    assert "cached_result" not in again.stats
    assert "untracked.py" in again.files
    assert not (cache_dir / FILENAME).exists()
    assert prune_cached(again, repo, cache_dir, budget_tokens=2000, tree_id=None) == prune(
        again, repo, budget_tokens=2000
    )


def test_a_corrupt_entry_is_ignored_and_rebuilt(repo: Path, tmp_path: Path) -> None:
    """An entry that is not a result is a miss, replaced by the result made again; a file
    that is not SQLite at all is rebuilt."""
    cache_dir = tmp_path / "cache"
    fresh, tree = map_cached(repo, RENAME, cache_dir)
    assert tree is not None
    key = map_key(tree, RENAME, {})
    logic = prune_cached(fresh, repo, cache_dir, budget_tokens=2000, tree_id=tree)
    store = SearchCache.open(cache_dir, FILENAME)
    store.put(key, {"map": {"terms": "not a list"}, "reports": []})
    store.put(logic_key(tree, fresh, 2000), {"logic": [1, 2, 3]})
    store.close()
    again, _ = map_cached(repo, RENAME, cache_dir)
    assert "cached_result" not in again.stats
    assert _answer(again) == _answer(fresh)
    assert prune_cached(again, repo, cache_dir, budget_tokens=2000, tree_id=tree) == logic
    results = ResultCache(cache_dir)
    stored = results.get_map(key)
    assert stored is not None
    assert _answer(stored[0]) == _answer(fresh)
    assert results.get_logic(logic_key(tree, fresh, 2000)) == logic
    results.close()
    for path in cache_dir.glob(FILENAME + "*"):
        path.unlink()
    (cache_dir / FILENAME).write_bytes(b"not sqlite at all" * 64)
    rebuilt, _ = map_cached(repo, RENAME, cache_dir)
    assert "cached_result" not in rebuilt.stats
    assert map_cached(repo, RENAME, cache_dir)[0].stats.get("cached_result") == 1


def test_the_cache_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past `MAX_ENTRIES` the oldest entries go."""
    monkeypatch.setattr(result_cache, "MAX_ENTRIES", 3)
    results = ResultCache(tmp_path)
    empty = MapResult(terms=[], files=[], slices=[])
    for n in range(5):
        results.put_map(f"k{n}", empty, [str(n)])
    kept = [results.get_map(f"k{n}") is not None for n in range(5)]
    assert kept == [False, False, True, True, True]
    results.close()
