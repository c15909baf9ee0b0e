"""Where a project's importable code lives: its source roots, as its configuration says.

rope needs them to resolve imports in a ``src/`` layout (it stops at the first folder
holding a package), and the Monte Carlo children need them on ``sys.path`` to import the
code under test the way its own test suite does.
"""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path
from typing import Any


def source_roots(root: Path) -> list[str]:
    """The folders imports are resolved from, as the project configures them: pytest's
    ``pythonpath``, setuptools' ``package-dir`` / ``packages.find.where``, hatch's wheel
    ``packages``, poetry's ``from``, setup.cfg's ``package_dir``; else ``src/`` when it holds
    a package. rope finds the root by itself but stops at the first folder holding a package,
    so a ``src/`` beside a ``tests/`` package is never searched unless named."""
    found: list[str] = []
    pyproject = _toml(root / "pyproject.toml")
    tool = pyproject.get("tool", {}) if isinstance(pyproject.get("tool"), dict) else {}
    found += _strings(_dig(tool, "pytest", "ini_options", "pythonpath"))
    package_dir = _dig(tool, "setuptools", "package-dir")
    if isinstance(package_dir, dict):
        found += _strings(package_dir.get(""))
    found += _strings(_dig(tool, "setuptools", "packages", "find", "where"))
    found += [
        str(Path(p).parent)
        for p in _strings(_dig(tool, "hatch", "build", "targets", "wheel", "packages"))
    ]
    for entry in _dig(tool, "poetry", "packages") or []:
        if isinstance(entry, dict):
            found += _strings(entry.get("from"))
    for name, sections in (
        ("setup.cfg", ("tool:pytest", "options", "options.packages.find")),
        ("pytest.ini", ("pytest",)),
        ("tox.ini", ("pytest",)),
    ):
        found += _ini_roots(root / name, sections)
    if (root / "src").is_dir() and any((root / "src").glob("*/__init__.py")):
        found.append("src")
    roots: list[str] = []
    for entry in found:
        rel = Path(entry.strip().strip("=").strip() or ".")
        if rel.is_absolute() or ".." in rel.parts or str(rel) == ".":
            continue
        if (root / rel).is_dir() and rel.as_posix() not in roots:
            roots.append(rel.as_posix())
    return roots


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _ini_roots(path: Path, sections: tuple[str, ...]) -> list[str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, configparser.Error):
        return []
    out: list[str] = []
    for section in sections:
        if not parser.has_section(section):
            continue
        for key in ("pythonpath", "package_dir", "where"):
            value = parser.get(section, key, fallback="")
            out += [v.split("=")[-1] for v in value.split()]  # package_dir: "=src"
    return out
