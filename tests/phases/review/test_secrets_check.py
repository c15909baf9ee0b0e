"""The secrets check: a credential the change adds is red, and its value is never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_orchestrator.phases.review.secrets import check
from tests.conftest import commit_all, git

KEY = "AKIA" + "Q3EXAMPLE7KEYZ2W"  # an AWS access key id's shape


def repo(tmp_path: Path, text: str) -> tuple[Path, str]:
    (tmp_path / "settings.py").write_text(text)
    git(tmp_path, "init", "-q", "-b", "main")
    commit_all(tmp_path)
    return tmp_path, git(tmp_path, "rev-parse", "HEAD").strip()


def test_a_planted_key_is_red_and_withheld(tmp_path: Path) -> None:
    root, base = repo(tmp_path, "DEBUG = False\n")
    (root / "settings.py").write_text(f"DEBUG = False\nAWS_KEY = '{KEY}'\n")
    result = check(root, base)
    assert not result.ok
    (finding,) = result.findings
    assert (finding.path, finding.line) == ("settings.py", 2)
    assert KEY not in result.model_dump_json()


def test_a_value_of_a_credential_variable_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = "plainword-but-secret-42"
    monkeypatch.setenv("MY_SERVICE_TOKEN", value)
    root, base = repo(tmp_path, "A = 1\n")
    (root / "settings.py").write_text(f"A = 1\nB = {value!r}\n")
    result = check(root, base)
    assert [f.rule for f in result.findings] == ["env-value"]
    assert value not in result.model_dump_json()


def test_a_credential_already_at_the_base_is_not_the_change(tmp_path: Path) -> None:
    root, base = repo(tmp_path, f"AWS_KEY = '{KEY}'\n")
    (root / "settings.py").write_text(f"AWS_KEY = '{KEY}'  # moved\nX = 1\n")
    assert check(root, base).ok


def test_adding_a_dotenv_file_is_red(tmp_path: Path) -> None:
    root, base = repo(tmp_path, "A = 1\n")
    (root / ".env").write_text("NAME=value\n")
    assert [f.rule for f in check(root, base).findings] == ["secret-file"]
