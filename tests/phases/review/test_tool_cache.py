"""mypy's incremental cache kept across runs for the attempt side: reused by the next run,
held by one run at a time, ignored by --orchestrate-fresh, pruned to the most recent few."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pytest_orchestrator.phases.review import tool_cache
from pytest_orchestrator.phases.review.checks import run_tool
from pytest_orchestrator.phases.review.commands import find_executable
from pytest_orchestrator.phases.review.tools import RUFF, Tool, _mypy, _mypy_parse
from tests.conftest import git

# A stand-in for mypy: lists its cache directory (the findings it "reports"), then adds an
# entry of its own there, as mypy writes one per module it checked.
FAKE = (
    "import pathlib, sys\n"
    "cache = pathlib.Path(sys.argv[1])\n"
    "cache.mkdir(parents=True, exist_ok=True)\n"
    "seen = sorted(p.name for p in cache.iterdir())\n"
    "for name in seen:\n"
    "    print(f'mod.py:1: error: saw {name}  [cache]')\n"
    "(cache / f'entry{len(seen)}').touch()\n"
)


def fake_mypy() -> Tool:
    def argv(cache: Path) -> list[str]:
        return [sys.executable, "-c", FAKE, str(cache / "mypy-cache")]

    return Tool(name="mypy", argv=argv, parse=_mypy_parse)


def tree(path: Path) -> Path:
    """A git repository (checks run in one: their tree-state guard)."""
    path.mkdir()
    git(path, "init", "-q")
    return path


def attempt(cache_dir: Path, root: Path, scratch: Path, *, fresh: bool = False) -> list[str]:
    """One run's attempt side of the tool: the cache entries it found."""
    tool = fake_mypy()
    with tool_cache.held(cache_dir, tool, root, fresh=fresh) as kept:
        result = run_tool(tool, root, scratch, "attempt1", timeout=60, kept=kept)
    assert result.status == "ok", result.detail
    return [f.message for f in result.findings]


def test_the_next_run_finds_the_cache_the_last_one_left(tmp_path: Path) -> None:
    root, cache = tree(tmp_path / "tree"), tmp_path / "cache"
    assert attempt(cache, root, tmp_path / "scratch1") == []
    assert attempt(cache, root, tmp_path / "scratch2") == ["saw entry0"]
    # without a kept cache (today's scratch directory) each run starts empty
    assert attempt(cache, root, tmp_path / "scratch3", fresh=True) == []


def test_another_tree_or_tool_has_a_cache_of_its_own(tmp_path: Path) -> None:
    one, two, cache = tmp_path / "one", tmp_path / "two", tmp_path / "cache"
    assert tool_cache.folder_for(cache, fake_mypy(), one) != tool_cache.folder_for(
        cache, fake_mypy(), two
    )
    with tool_cache.held(cache, RUFF, one) as kept:  # ruff runs with --no-cache: none kept
        assert kept is None


def test_a_cache_another_run_holds_is_not_shared(tmp_path: Path) -> None:
    root, cache = tree(tmp_path / "tree"), tmp_path / "cache"
    with tool_cache.held(cache, fake_mypy(), root) as first:
        assert first is not None
        with tool_cache.held(cache, fake_mypy(), root) as second:
            assert second is None
        # the second run falls back to its scratch directory: the held cache is untouched
        assert attempt(cache, root, tmp_path / "scratch") == []
        assert not first.joinpath("mypy-cache").exists()
    with tool_cache.held(cache, fake_mypy(), root) as again:  # released: usable again
        assert again == first


def test_a_run_seeds_an_empty_kept_cache_from_the_base_side(tmp_path: Path) -> None:
    root, cache, scratch = tree(tmp_path / "tree"), tmp_path / "cache", tmp_path / "scratch"
    (scratch / "cache-base" / "mypy-cache").mkdir(parents=True)
    (scratch / "cache-base" / "mypy-cache" / "stubs").touch()
    assert attempt(cache, root, scratch) == ["saw stubs"]
    assert attempt(cache, root, tmp_path / "scratch2") == ["saw entry1", "saw stubs"]


def test_only_the_most_recent_caches_are_kept_and_a_held_one_never_goes(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    roots = [tmp_path / f"tree{i}" for i in range(tool_cache.KEEP + 3)]
    folders = [tool_cache.folder_for(cache, fake_mypy(), r) for r in roots]
    for i, folder in enumerate(folders[:-1]):
        folder.mkdir(parents=True)
        os.utime(folder, (1000 + i, 1000 + i))  # folders[0] is the least recently used
    with tool_cache.held(cache, fake_mypy(), roots[0]) as busy:  # refreshed, and held
        assert busy == folders[0]
        with tool_cache.held(cache, fake_mypy(), roots[-1]) as newest:
            assert newest == folders[-1]
    kept = {p for p in (cache / tool_cache.FOLDER).iterdir() if p.is_dir()}
    # the newest, folders[0] (used again) and the next most recent: KEEP in all
    assert kept == {folders[-1], folders[0], *folders[-1 - (tool_cache.KEEP - 2) : -1]}


@pytest.mark.skipif(find_executable("mypy") is None, reason="mypy not installed")
def test_real_mypy_reads_the_kept_cache_and_answers_the_same(tmp_path: Path) -> None:
    root, cache = tree(tmp_path / "tree"), tmp_path / "cache"
    (root / "mod.py").write_text("def f() -> int:\n    return 'x'\n")
    tool = _mypy(has_targets=False)
    answers = []
    for n in (1, 2):
        with tool_cache.held(cache, tool, root) as kept:
            assert kept is not None
            result = run_tool(tool, root, tmp_path / f"scratch{n}", "attempt1", 120, kept)
        assert result.status == "ok", result.detail
        answers.append([(f.rule, f.path, f.line) for f in result.findings])
        version_dirs = list((kept / "mypy-cache").iterdir())
        assert version_dirs, "mypy wrote its cache into the kept folder"
    assert answers[0] == answers[1] == [("return-value", "mod.py", 2)]
    assert not (tmp_path / "scratch2" / "cache-attempt").exists()
