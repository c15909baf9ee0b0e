"""The index build slices every file of the tree ahead of any command: a new command's Map
parses nothing, and gives the answer it gives when it parses."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

import pytest_orchestrator
from pytest_orchestrator.phases.map import index as index_mod
from pytest_orchestrator.phases.map.file_slices import preslice
from pytest_orchestrator.phases.map.phase import map_repository
from pytest_orchestrator.phases.map.search_cache import tree_state
from pytest_orchestrator.phases.map.slice_cache import SliceCache
from tests.conftest import commit_all, git

COMMANDS = ["Rename map_repository to map_tree", "SearchIndex returns stale postings"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The package's own source, committed, plus one file at two paths (one blob)."""
    root = tmp_path / "repo"
    shutil.copytree(
        Path(pytest_orchestrator.__file__).parent,
        root / "pytest_orchestrator",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (root / "copy").mkdir()
    shutil.copy(root / "pytest_orchestrator" / "store.py", root / "copy" / "store.py")
    git(tmp_path, "init", "-q", "-b", "main", str(root))
    commit_all(root)
    return root


def build(repo: Path, cache_dir: Path) -> None:
    tree = tree_state(repo)
    assert tree is not None
    assert index_mod.build(repo, tree, cache_dir)


def ranking(
    repo: Path, command: str, cache_dir: Path | None
) -> tuple[list[object], dict[str, float]]:
    with SliceCache.open(cache_dir) as cache:
        mapped = map_repository(repo, command, cache=cache)
    return [(r.slice, r.score, r.components) for r in mapped.slices], mapped.stats


@pytest.mark.parametrize("command", COMMANDS)
def test_a_new_command_parses_nothing_and_ranks_the_same(
    repo: Path, tmp_path: Path, command: str
) -> None:
    cache_dir = tmp_path / "cache"
    build(repo, cache_dir)
    got, stats = ranking(repo, command, cache_dir)
    expected, parsed = ranking(repo, command, None)
    assert parsed.get("parsed_files", 0) > 0
    assert stats.get("parsed_files", 0) == 0
    assert stats["cached_files"] == parsed["parsed_files"]
    assert got == expected


def test_a_blob_at_two_paths_is_recorded_for_each(repo: Path, tmp_path: Path) -> None:
    build(repo, tmp_path / "cache")
    with SliceCache.open(tmp_path / "cache") as cache:
        known = cache.fingerprints()
        for path in ("copy/store.py", "pytest_orchestrator/store.py"):
            stored = cache.file_slices(path, known[path])
            assert stored
            assert {m.path for m in stored} == {path}
        assert known["copy/store.py"] == known["pytest_orchestrator/store.py"]


def test_a_file_that_is_not_its_blob_is_parsed(repo: Path, tmp_path: Path) -> None:
    """Slices are recorded under the blob id; a checkout whose file differs (an edit, a
    filter) has another fingerprint, so its own bytes are parsed."""
    build(repo, tmp_path / "cache")
    target = repo / "pytest_orchestrator" / "phases" / "map" / "phase.py"
    target.write_text(target.read_text() + "\n\ndef map_tree_extra():\n    return 1\n")
    with SliceCache.open(tmp_path / "cache") as cache:
        mapped = map_repository(repo, "Rename map_tree_extra to more", cache=cache)
    assert mapped.stats.get("parsed_files", 0) >= 1
    assert any(r.slice.symbol == "map_tree_extra" for r in mapped.slices)


def test_only_what_the_cache_lacks_is_sliced_again(repo: Path, tmp_path: Path) -> None:
    build(repo, tmp_path / "cache")
    files = index_mod.searchable(repo, tree_state(repo) or "")
    gdir = index_mod.git_dir(repo)
    assert files
    assert gdir is not None
    asked: list[str] = []

    def contents(oids: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        asked.extend(oids)
        return index_mod.read_blobs(gdir, oids)

    with SliceCache.open(tmp_path / "cache") as cache:
        assert preslice(files, contents, cache) == 0
        assert asked == []
        (repo / "copy" / "store.py").write_text("def fresh():\n    return 2\n")
        commit_all(repo, "change")
        files = index_mod.searchable(repo, tree_state(repo) or "")
        assert files is not None
        assert preslice(files, contents, cache) == 1
        assert len(asked) == 1
