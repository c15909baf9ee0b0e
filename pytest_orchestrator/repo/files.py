"""Files of the repository: which are tests, and the one atomic write."""

from __future__ import annotations

import os
from pathlib import Path

#: Directories whose files belong to a test suite, wherever they are in the tree.
TEST_DIRS = ("tests", "test", "testing")


def is_test_module_name(name: str) -> bool:
    """True for the file names pytest collects as test modules: ``test_*.py``, ``*_test.py``."""
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def is_test_path(path: str) -> bool:
    """True for files of a test suite (``path`` relative, ``/``-separated): under a
    `TEST_DIRS` directory, ``test_*``, ``*_test.py``, ``conftest.py``."""
    name = path.rsplit("/", 1)[-1]
    wrapped = f"/{path}"
    return (
        name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
        or any(f"/{d}/" in wrapped for d in TEST_DIRS)
    )


def atomic_write(path: Path, text: str, *, tmp: Path | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically: a reader, or a kill mid-write, sees the
    old content or the new, never a part. The text goes to a temp file in the same directory
    (``tmp``, default ``.<name>.<pid>.tmp``), which then replaces ``path``."""
    if tmp is None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
