"""The project's formatter over a refactoring's output: only where the project uses one, and
only on files it keeps formatted at the base."""

from __future__ import annotations

from pathlib import Path

from pytest_orchestrator.phases.execute import formatting

BASE = "def f(stream):\n    return g(stream) and h(stream)\n"
INLINED = (
    "def f(stream):\n"
    '    return is_ascii_encoding(getattr(stream, "encoding", None) or "ascii") and h(stream)\n'
)
WRAPPED = (
    "def f(stream):\n"
    "    return is_ascii_encoding(\n"
    '        getattr(stream, "encoding", None) or "ascii"\n'
    "    ) and h(stream)\n"
)


def project(tmp_path: Path, config: str, text: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(config)
    (tmp_path / "m.py").write_text(text)
    return tmp_path


RUFF = "[tool.ruff]\nline-length = 80\n\n[tool.ruff.format]\nquote-style = 'double'\n"


def test_a_file_formatted_at_the_base_is_formatted_again(tmp_path: Path) -> None:
    root = project(tmp_path, RUFF, INLINED)
    assert formatting.reformat(root, ["m.py"], lambda rel: BASE) == ["m.py"]
    assert (root / "m.py").read_text() == WRAPPED


def test_a_file_the_project_does_not_keep_formatted_is_left_as_written(tmp_path: Path) -> None:
    root = project(tmp_path, RUFF, INLINED)
    unformatted = "def f( stream ):\n    return g(stream) and h(stream)\n"
    assert formatting.reformat(root, ["m.py"], lambda rel: unformatted) == []
    assert (root / "m.py").read_text() == INLINED


def test_no_formatter_configured_changes_nothing(tmp_path: Path) -> None:
    root = project(tmp_path, "[tool.ruff]\nline-length = 80\n", INLINED)
    assert formatting.reformat(root, ["m.py"], lambda rel: BASE) == []
    assert (root / "m.py").read_text() == INLINED


def test_the_formatter_read_from_the_pre_commit_hooks(tmp_path: Path) -> None:
    root = project(tmp_path, "[tool.ruff]\nline-length = 80\n", INLINED)
    (root / ".pre-commit-config.yaml").write_text(
        "repos:\n  - repo: https://github.com/astral-sh/ruff-pre-commit\n"
        "    hooks:\n      - id: ruff-format\n"
    )
    assert formatting.reformat(root, ["m.py"], lambda rel: None) == ["m.py"]  # a new file
    assert (root / "m.py").read_text() == WRAPPED
