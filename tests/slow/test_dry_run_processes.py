"""The processes a real dry run starts: git only, and no ripgrep once the base is a clean tree
the identifier index holds (Map's searches and the rules planner's definition search both
come from the index)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git

RENAME = "Rename add to plus"
# Loaded with pytest's own plugins (-p): every process the session starts, by its arguments.
RECORDER = """\
import json, os, subprocess

STARTED = []
_real = subprocess.Popen


class Recording(_real):
    def __init__(self, args, *rest, **kwargs):
        STARTED.append([str(a) for a in args] if isinstance(args, (list, tuple)) else [args])
        super().__init__(args, *rest, **kwargs)


subprocess.Popen = Recording


def pytest_unconfigure(config):
    with open(os.environ["STARTED_OUT"], "w") as out:
        json.dump(STARTED, out)
"""


@pytest.fixture
def dry_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[[Path], list[list[str]]]:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "recorder.py").write_text(RECORDER)
    monkeypatch.setenv("PYTHONPATH", str(plugins))
    out = tmp_path / "started.json"
    monkeypatch.setenv("STARTED_OUT", str(out))

    def run(cache: Path) -> list[list[str]]:
        result = pytester.runpytest_subprocess(
            "-p", "recorder", "-p", "no:cacheprovider", "-o", f"orchestrate_cache_dir={cache}",
            "--orchestrate", RENAME, "--orchestrate-dry-run",
        )  # fmt: skip
        assert result.ret == 0, result.stdout.str()
        result.stdout.fnmatch_lines(["*rename_symbol*", "*orchestrate: dry run*"])
        started: list[list[str]] = json.loads(out.read_text())
        return started

    return run


def _programs(started: list[list[str]]) -> set[str]:
    return {Path(args[0]).name for args in started}


def test_an_indexed_clean_base_is_planned_without_ripgrep(
    make_repo: Callable[..., Path], dry_run: Callable[[Path], list[list[str]]], tmp_path: Path
) -> None:
    repo = make_repo()
    cold = dry_run(tmp_path / "cold")
    # the sanity check of this test: without the index, ripgrep searches (Map's, and the
    # planner's for the files that may define `add`)
    assert "rg" in _programs(cold)
    defining = [a for a in cold if Path(a[0]).name == "rg" and any("+add\\b|" in x for x in a)]
    assert len(defining) == 1, cold

    warm = tmp_path / "warm"
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    subprocess.run(  # what a full run starts aside: the index of the tree
        [sys.executable, "-m", "pytest_orchestrator.phases.map.index", str(repo), tree, str(warm)],
        check=True,
        capture_output=True,
    )
    started = dry_run(warm)
    assert _programs(started) == {"git"}, started
