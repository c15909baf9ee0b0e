"""The repository's own checks, found in its configuration, and how to read each one's output.

A tool is a check when the repository configures it (``[tool.ruff]``, ``[flake8]``,
``[tool.mypy]`` / ``[mypy]``, ``[tool.pyright]``, or the tool's own file) and it is installed
beside the interpreter running us or on PATH; one configured but not installed is skipped and
named. Each runs over the whole project as configured, in report-only mode (``ruff check
--no-fix``), with its cache outside the tree, so a check never writes into the attempt.
Commands of the ``orchestrate_checks`` ini key run as given, read as ``path:line: message``.
"""

from __future__ import annotations

import configparser
import json
import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_orchestrator.model import CheckFinding
from pytest_orchestrator.phases.review.findings import Collector, parse_located

Parser = Callable[[str, Path], list[CheckFinding] | None]
"""Output and tree root to findings; None when the output is not the tool's report."""


@dataclass(frozen=True)
class Tool:
    """One check command: ``argv(scratch)`` runs it, ``parse`` reads its output."""

    name: str
    argv: Callable[[Path], list[str]]
    parse: Parser
    ok_codes: tuple[int, ...] = (0, 1)
    """Exit statuses of a completed run (1 usually means "found something")."""


def _pyproject(root: Path) -> dict[str, Any]:
    try:
        return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _ini_sections(root: Path, *names: str) -> set[str]:
    sections: set[str] = set()
    for name in names:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(root / name, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue
        sections.update(parser.sections())
    return sections


def discover(root: Path) -> list[Tool]:
    """The tools ``root``'s configuration asks for, in a fixed order."""
    tool = _pyproject(root).get("tool", {})
    ini = _ini_sections(root, "setup.cfg", "tox.ini", ".flake8", "mypy.ini", ".mypy.ini")
    found = []
    if "ruff" in tool or (root / "ruff.toml").is_file() or (root / ".ruff.toml").is_file():
        found.append(RUFF)
    if "flake8" in ini:
        found.append(FLAKE8)
    if "mypy" in tool or "mypy" in ini:
        targets = tool.get("mypy", {})
        has_targets = any(k in targets for k in ("files", "packages", "modules"))
        found.append(_mypy(has_targets or _mypy_ini_targets(root)))
    if "pyright" in tool or (root / "pyrightconfig.json").is_file():
        found.append(PYRIGHT)
    return found


def _mypy_ini_targets(root: Path) -> bool:
    for name in ("mypy.ini", ".mypy.ini", "setup.cfg"):
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(root / name, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue
        if parser.has_section("mypy") and any(
            parser.has_option("mypy", k) for k in ("files", "packages", "modules")
        ):
            return True
    return False


def command(line: str) -> Tool:
    """A tool for one ``orchestrate_checks`` line, named by the line itself."""
    argv = shlex.split(line)
    return Tool(
        name=line,
        argv=lambda scratch: list(argv),
        parse=lambda out, root: parse_located(Path(argv[0]).name, out, root),
        ok_codes=(0,),
    )


# ---------------------------------------------------------------------------- ruff


def _ruff(output: str, root: Path) -> list[CheckFinding] | None:
    try:
        items = json.loads(output)
    except json.JSONDecodeError:
        return None
    if not isinstance(items, list):
        return None
    make = Collector("ruff", root)
    return [
        make(
            str(i.get("code") or "syntax"),
            str(i.get("filename", "")),
            int((i.get("location") or {}).get("row") or 0),
            str(i.get("message", "")),
        )
        for i in items
    ]


RUFF = Tool(
    name="ruff",
    argv=lambda scratch: [
        "ruff",
        "check",
        "--no-cache",
        "--no-fix",
        "--exit-zero",
        "--output-format=json",
        "--quiet",
        ".",
    ],
    parse=_ruff,
    ok_codes=(0,),
)

# ---------------------------------------------------------------------------- flake8

FLAKE8 = Tool(
    name="flake8",
    argv=lambda scratch: ["flake8", "."],
    parse=lambda out, root: parse_located("flake8", out, root),
)

# ---------------------------------------------------------------------------- mypy


def _mypy_parse(output: str, root: Path) -> list[CheckFinding] | None:
    found, make = [], Collector("mypy", root)
    for line in output.splitlines():
        path, sep, rest = line.partition(":")
        lineno, sep2, rest = rest.partition(":")
        if not (sep and sep2 and lineno.strip().isdigit()):
            continue
        kind, _, message = rest.strip().partition(":")
        if kind != "error":
            continue  # notes explain an error already counted
        message = message.strip()
        rule = "error"
        if message.endswith("]") and "  [" in message:
            message, _, code = message.rpartition("  [")
            rule = code.rstrip("]")
        found.append(make(rule, path, int(lineno), message))
    return found


def _mypy(has_targets: bool) -> Tool:
    def argv(scratch: Path) -> list[str]:
        args = [
            "mypy",
            "--no-error-summary",
            "--show-error-codes",
            "--no-pretty",
            "--no-color-output",
            "--hide-error-context",
            "--cache-dir",
            str(scratch / "mypy-cache"),
        ]
        return args if has_targets else [*args, "."]

    return Tool(name="mypy", argv=argv, parse=_mypy_parse)


# ---------------------------------------------------------------------------- pyright


def _pyright(output: str, root: Path) -> list[CheckFinding] | None:
    try:
        data = json.loads(output)
    except json.JSONDecodeError:
        return None
    found, make = [], Collector("pyright", root)
    for d in data.get("generalDiagnostics", []):
        if d.get("severity") != "error":
            continue
        start = (d.get("range") or {}).get("start") or {}
        found.append(
            make(
                str(d.get("rule") or "error"),
                str(d.get("file", "")),
                int(start.get("line", -1)) + 1,
                str(d.get("message", "")),
            )
        )
    return found


PYRIGHT = Tool(
    name="pyright",
    argv=lambda scratch: ["pyright", "--outputjson"],
    parse=_pyright,
)
