"""Fixtures for acceptance tests: small, real git repositories with a pytest suite."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from pytest_orchestrator.repo.worktree import TREES
from pytest_orchestrator.testing.fake_anthropic import FakeAnthropic

# When this suite itself runs in GitHub Actions, the runs it starts must not find the job's
# repository, API host or step summary: each test names the stand-in it talks to.
for _name in ("GITHUB_STEP_SUMMARY", "GITHUB_REPOSITORY", "GITHUB_SERVER_URL", "GITHUB_API_URL"):
    os.environ.pop(_name, None)

# Property tests check answers, never speed: on a loaded CI machine Hypothesis' per-example
# deadline and its "too slow" health check would fail a correct test now and then.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

CALC = '''\
"""Tiny arithmetic used by the acceptance tests."""

SCALE = 10


def add(a, b):
    """Return a + b."""
    return a + b


def scaled(x):
    return add(x, x) * SCALE


class Meter:
    def reading(self, x):
        return scaled(x)
'''

TESTS = """\
from calc import add, scaled
from calc import Meter


def test_add():
    assert add(2, 3) == 5


def test_scaled():
    assert scaled(1) == 20


def test_meter():
    assert Meter().reading(2) == 40
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def commit_all(repo: Path, message: str = "initial") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def snapshot(repo: Path) -> dict[str, str]:
    """Hashes of every file in the checkout (outside .git and our run dir) plus git status."""
    state = {
        str(p.relative_to(repo)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*"))
        if p.is_file()
        and ".git" not in p.parts
        and ".orchestrate" not in p.parts
        and "__pycache__" not in p.parts
    }
    state["<git status>"] = git(repo, "status", "--porcelain")
    state["<branches>"] = git(repo, "branch", "--list")
    state["<worktrees>"] = sum(  # the persistent worktree slots are kept by design
        line.startswith("worktree ") and f"/{TREES}/" not in line
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
    )
    return state


@pytest.fixture
def make_repo(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """A git repository with the calc module and its tests, committed; the cwd is its root.

    It lives in a subdirectory of pytester.path, where pytester keeps its own files.
    """

    def make(files: dict[str, str] | None = None) -> Path:
        repo = pytester.path / "repo"
        content = {"calc.py": CALC, "tests/test_calc.py": TESTS, **(files or {})}
        for name, text in content.items():
            path = repo / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(repo, "init", "-q", "-b", "main")
        commit_all(repo)
        monkeypatch.chdir(repo)
        return repo

    return make


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    """The fake Anthropic API, reached the production way: ANTHROPIC_BASE_URL and the key."""
    with FakeAnthropic() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        yield server


@pytest.fixture
def no_inherited_gauge(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pressure gauge inherited through the environment (say, from an outer run)."""
    from pytest_orchestrator.guard.pressure import ENV_VAR

    monkeypatch.delenv(ENV_VAR, raising=False)



@pytest.fixture(scope="session", autouse=True)
def no_slots_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Remove the worktree slots of this session's throw-away repositories: a run keeps its
    slot for the next run on the same repository, and no later run comes for these. (Each
    xdist worker removes those of the repositories under its own temporary directory.)"""
    yield
    import shutil
    import tempfile

    ours = tmp_path_factory.getbasetemp().resolve()
    for home in (Path(tempfile.gettempdir()) / TREES).glob("*"):
        try:
            recorded = Path((home / "repository").read_text(encoding="utf-8"))
        except OSError:
            continue
        if recorded.resolve().is_relative_to(ours):
            shutil.rmtree(home, ignore_errors=True)
