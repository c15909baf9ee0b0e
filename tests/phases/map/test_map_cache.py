"""Map with the slice cache: a second run reuses everything, an edit redoes only its file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_orchestrator.phases.map.phase import map_repository
from pytest_orchestrator.phases.map.slice_cache import SliceCache

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "wheel"
RENAME = "Rename calculate_position_size to position_size"


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXAMPLE, tmp_path / "wheel"))


@pytest.fixture
def cache(tmp_path: Path) -> SliceCache:
    with SliceCache.open(tmp_path / "cache") as c:
        yield c  # type: ignore[misc]


def test_a_second_run_parses_nothing(wheel: Path, cache: SliceCache) -> None:
    """On an unchanged tree the second Map takes every file's slices from the cache."""
    first = map_repository(wheel, RENAME, cache=cache)
    second = map_repository(wheel, RENAME, cache=cache)
    assert first.stats["parsed_files"] == first.stats["candidate_files"]
    assert "parsed_files" not in second.stats
    assert second.stats["cached_files"] == second.stats["candidate_files"]


def test_cached_and_fresh_runs_rank_alike(wheel: Path, cache: SliceCache) -> None:
    """The cache never changes the result: same slices, same scores, with or without it."""
    without = map_repository(wheel, RENAME)
    map_repository(wheel, RENAME, cache=cache)
    warm = map_repository(wheel, RENAME, cache=cache)
    assert [(r.slice, r.score) for r in warm.slices] == [(r.slice, r.score) for r in without.slices]


def test_editing_one_file_reparses_only_that_file(wheel: Path, cache: SliceCache) -> None:
    """After one file changes, only it is parsed again, and its new slice is seen."""
    map_repository(wheel, RENAME, cache=cache)
    sizing = wheel / "wheel_sizing" / "sizing.py"
    sizing.write_text(sizing.read_text() + "\n\ndef calculate_position_size_v2():\n    return 0\n")
    again = map_repository(wheel, RENAME, cache=cache)
    assert again.stats["parsed_files"] == 1
    assert again.stats["cached_files"] == again.stats["candidate_files"] - 1
    assert any(r.slice.symbol == "calculate_position_size_v2" for r in again.slices)


def test_slice_hashes_are_the_cache_keys(wheel: Path, cache: SliceCache) -> None:
    """Every slice's hash has a vector in the cache after a run."""
    result = map_repository(wheel, RENAME, cache=cache)
    assert all(cache.get(r.slice.hash) is not None for r in result.slices)
