"""Files on disk: the one atomic write."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: Path, text: str, *, tmp: Path | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically: a reader, or a kill mid-write, sees the
    old content or the new, never a part. The text goes to a temp file in the same directory
    (``tmp``, default ``.<name>.<pid>.tmp``), which then replaces ``path``."""
    if tmp is None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
