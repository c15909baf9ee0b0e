"""The project's own formatter over what a refactoring wrote.

rope writes an inlined expression on the line of the call it replaces, a moved import where
the old one was, a longer name where a shorter one stood: correct code, in a shape the
project's formatter would not leave (click: a 101-character line where ``ruff format`` keeps
88, red at the gate's ruff). A person would run the formatter; so does this module, with
the formatter the project configures (ruff's or black's, in ``pyproject.toml`` or its
pre-commit hooks), and only on files the formatter leaves unchanged at the base: then every
change it makes is to what the refactoring wrote.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from pytest_orchestrator.repo.files import atomic_write

Formatter = Callable[[str, str], str | None]
"""(file path, text) -> the formatted text, or None when the formatter failed on it."""


def _executable(name: str) -> str | None:
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


def _configured(root: Path) -> str | None:
    """``ruff`` or ``black`` when the project formats with it; None otherwise."""
    texts = []
    for name in ("pyproject.toml", ".pre-commit-config.yaml", "ruff.toml", ".ruff.toml"):
        try:
            texts.append((root / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            texts.append("")
    pyproject, precommit, *ruff_files = texts
    if "ruff-format" in precommit or "[tool.ruff.format]" in pyproject:
        return "ruff"
    if any("[format]" in t for t in ruff_files):
        return "ruff"
    if "psf/black" in precommit or "[tool.black]" in pyproject:
        return "black"
    return None


def formatter(root: Path) -> Formatter | None:
    """The project's formatter as a function of a file's text, or None (none configured, or
    not installed)."""
    tool = _configured(root)
    exe = _executable(tool) if tool else None
    if tool is None or exe is None:
        return None
    command = [exe, "format"] if tool == "ruff" else [exe, "-q"]

    def run(rel: str, text: str) -> str | None:
        try:
            proc = subprocess.run(
                [*command, "--stdin-filename", rel, "-"],
                cwd=root,
                input=text,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout if proc.returncode == 0 else None

    return run


def reformat(root: Path, changed: list[str], base: Callable[[str], str | None]) -> list[str]:
    """Format each changed Python file the formatter leaves unchanged at the base (``base``:
    a path's text there, None for a file the change created); the files rewritten."""
    fmt = formatter(root)
    if fmt is None:
        return []
    out = []
    for rel in changed:
        path = root / rel
        if not rel.endswith(".py") or not path.is_file():
            continue
        before = base(rel)
        if before is not None and fmt(rel, before) != before:
            continue  # the project does not keep this file formatted: leave it as written
        text = path.read_text(encoding="utf-8")
        formatted = fmt(rel, text)
        if formatted is not None and formatted != text:
            atomic_write(path, formatted)
            out.append(rel)
    return out
