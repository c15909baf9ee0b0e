"""The base side of the linters, kept across runs: hit, miss on any changed key, corrupt file.

Real ruff (installed with the dev extras) on a real git repository; each `BaseSide` is a new
run of its own, as in a second ``pytest --orchestrate`` on the same base.
"""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest

from pytest_orchestrator.phases.review import base_cache, checks
from pytest_orchestrator.phases.review.checks import BaseSide, ToolRun
from pytest_orchestrator.phases.review.commands import find_executable
from pytest_orchestrator.phases.review.tools import RUFF, command
from pytest_orchestrator.run import Run
from pytest_orchestrator.settings import Settings
from pytest_orchestrator.tracing import Tracer
from tests.conftest import commit_all, git

pytestmark = pytest.mark.skipif(find_executable("ruff") is None, reason="ruff not installed")

RUFF_CONFIG = '[tool.ruff]\nline-length = 100\n[tool.ruff.lint]\nselect = ["F"]\n'


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pyproject.toml").write_text(RUFF_CONFIG)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "mod.py").write_text("import os\n\n\ndef f():\n    return 1\n")
    git(root, "init", "-q")
    commit_all(root)
    return root


def base_run(repo: Path, tmp_path: Path, n: int, **settings: object) -> Run:
    """A new run on ``repo``'s HEAD, with its own scratch directory and the shared cache."""
    head = git(repo, "rev-parse", "HEAD").strip()
    opts = Settings(command="rename", run_root=tmp_path / "runs", cache_dir=tmp_path / "cache",
                    **settings)  # type: ignore[arg-type]  # fmt: skip
    run_dir = tmp_path / f"run{n}"
    run_dir.mkdir()
    return Run(f"run{n}", opts, repo, repo, "", head, None, run_dir,
               pluggy.PluginManager("pytest").hook, Tracer(run_dir / "trace.json"), {},
               scratch_dir=tmp_path / f"scratch{n}")  # fmt: skip


def ruff_at_base(run: Run) -> tuple[ToolRun, BaseSide]:
    side = BaseSide(run)
    return side.tools()["ruff"], side


def test_a_second_run_on_the_same_base_reuses_the_findings_and_writes_no_snapshot(
    repo: Path, tmp_path: Path
) -> None:
    first, side = ruff_at_base(base_run(repo, tmp_path, 1))
    assert first.status == "ok"
    assert [(f.rule, f.path, f.line) for f in first.findings] == [("F401", "pkg/mod.py", 1)]
    assert side.cached == {}
    assert (side.root / "pkg" / "mod.py").is_file()  # it ran on the base's snapshot

    again, side = ruff_at_base(base_run(repo, tmp_path, 2))
    assert side.cached == {"ruff": "run1"}
    assert again.findings == first.findings
    assert not side.root.exists()  # nothing ran at the base: nothing was written


def test_a_changed_base_misses(repo: Path, tmp_path: Path) -> None:
    ruff_at_base(base_run(repo, tmp_path, 1))
    (repo / "pkg" / "mod.py").write_text("import os\nimport sys\n")
    commit_all(repo, "more")
    now, side = ruff_at_base(base_run(repo, tmp_path, 2))
    assert side.cached == {}
    assert sorted(f.line for f in now.findings) == [1, 2]


def test_a_changed_configuration_misses(repo: Path, tmp_path: Path) -> None:
    """The project's configuration is in the base tree; a user-level one is hashed in."""
    ruff_at_base(base_run(repo, tmp_path, 1))
    (repo / "pyproject.toml").write_text(RUFF_CONFIG.replace('["F"]', '["E"]'))
    commit_all(repo, "no pyflakes")
    now, side = ruff_at_base(base_run(repo, tmp_path, 2))
    assert side.cached == {}
    assert now.findings == []


def test_the_key_covers_the_tool_its_environment_and_user_configuration(
    tmp_path: Path,
) -> None:
    env = ["python 3", "ruff==1"]
    home = tmp_path / "home"
    environ = {"HOME": str(home), "PATH": "/usr/bin"}
    key = base_cache.tool_key(RUFF, "tree1", env, environ)
    assert key is not None
    assert base_cache.tool_key(RUFF, "tree1", env, dict(environ)) == key
    assert base_cache.tool_key(RUFF, "tree2", env, environ) != key
    assert base_cache.tool_key(RUFF, "tree1", ["python 3", "ruff==2"], environ) != key
    assert base_cache.tool_key(RUFF, "tree1", env, {**environ, "RUFF_SELECT": "E"}) != key
    assert base_cache.tool_key(RUFF, "tree1", env, {**environ, "UNRELATED": "1"}) == key
    (home / ".config" / "ruff").mkdir(parents=True)
    (home / ".config" / "ruff" / "ruff.toml").write_text("line-length = 80\n")
    assert base_cache.tool_key(RUFF, "tree1", env, environ) != key
    # a project's own command may read anything: never cached
    assert base_cache.tool_key(command("ruff check ."), "tree1", env, environ) is None


def test_a_corrupt_cache_is_recomputed(repo: Path, tmp_path: Path) -> None:
    first, _ = ruff_at_base(base_run(repo, tmp_path, 1))
    for path in (tmp_path / "cache").glob(base_cache.FILENAME + "*"):
        path.write_bytes(b"not a database" * 100)
    again, side = ruff_at_base(base_run(repo, tmp_path, 2))
    assert side.cached == {}
    assert again.findings == first.findings
    third, side = ruff_at_base(base_run(repo, tmp_path, 3))  # stored again
    assert side.cached == {"ruff": "run2"}
    assert third.findings == first.findings


def test_a_damaged_row_is_a_miss(repo: Path, tmp_path: Path) -> None:
    ruff_at_base(base_run(repo, tmp_path, 1))
    cache = base_cache.FindingsCache.open(tmp_path / "cache")
    assert cache._conn is not None
    cache._conn.execute("UPDATE findings SET findings = '[{\"tool\": 1}'")
    cache._conn.commit()
    cache.close()
    _, side = ruff_at_base(base_run(repo, tmp_path, 2))
    assert side.cached == {}


def test_fresh_ignores_the_cache_and_refills_it(repo: Path, tmp_path: Path) -> None:
    ruff_at_base(base_run(repo, tmp_path, 1))
    _, side = ruff_at_base(base_run(repo, tmp_path, 2, fresh=True))
    assert side.cached == {}
    assert side.root.is_dir()
    _, side = ruff_at_base(base_run(repo, tmp_path, 3))
    assert side.cached == {"ruff": "run2"}


def test_a_failed_run_is_not_stored(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A timeout or an error is tried again next time, not remembered as the base's answer."""
    with monkeypatch.context() as m:
        m.setattr(checks, "run_tool", lambda *a: ToolRun("timeout", detail="stopped"))
        first, _ = ruff_at_base(base_run(repo, tmp_path, 1))
    assert first.status == "timeout"
    again, side = ruff_at_base(base_run(repo, tmp_path, 2))
    assert side.cached == {}
    assert again.status == "ok"
