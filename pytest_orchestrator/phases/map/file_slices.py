"""The slices of one file on disk, reused from the slice cache while the file is unchanged.

A file's fingerprint is the git-blob SHA-1 of its bytes (what ``git ls-files -s`` shows for a
clean file): the same in every worktree of a commit, unlike a stat. When the slice cache holds
slices for that fingerprint they are rebuilt from the bytes without parsing; otherwise the file
is parsed (`pytest_orchestrator.phases.map.slicing`) and its slices recorded. Only a file that
changed is parsed again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from pytest_orchestrator.model import Slice
from pytest_orchestrator.phases.map.slicing import Kind, SlicedFile, blob_sha1, slice_source

if TYPE_CHECKING:
    from pytest_orchestrator.phases.map.slice_cache import SliceCache


def count(stats: dict[str, float], key: str, n: float = 1) -> None:
    """Add ``n`` to the statistic ``key`` (Map's ``MapResult.stats``)."""
    stats[key] = stats.get(key, 0) + n


def read_inside(root: Path, path: str) -> bytes | None:
    """The bytes of ``root/path`` if it is a regular file inside ``root``."""
    full = root / path
    try:
        real = full.resolve(strict=True)
        real.relative_to(root.resolve())
        if not real.is_file():
            return None
        return real.read_bytes()
    except (OSError, ValueError, RuntimeError):  # RuntimeError: a symlink loop
        return None


def slice_file(
    root: Path, path: str, cache: SliceCache | None, stats: dict[str, float]
) -> tuple[SlicedFile, bytes] | None:
    """Slice one file, reusing the cache's slices when its blob id is unchanged."""
    raw = read_inside(root, path)
    if raw is None:
        count(stats, "unreadable_files")
        return None
    fingerprint = blob_sha1(raw)
    if cache is not None:
        stored = cache.file_slice_keys(path, fingerprint)
        if stored is not None:
            count(stats, "cached_files")
            out = SlicedFile(path)
            for key, m in stored:
                out.slices.append(
                    Slice(
                        path=path,
                        symbol=m.symbol,
                        kind=cast(Kind, m.kind),
                        start_line=m.start_line,
                        end_line=m.end_line,
                        hash=key,
                        tokens=m.tokens,
                    )
                )
                out.byte_ranges.append((m.start_byte, m.end_byte))
            return out, raw
    sliced = slice_source(path, raw)
    count(stats, "parsed_files")
    if cache is not None and sliced.skipped is None:
        store(cache, sliced, fingerprint)
    return sliced, raw


def store(cache: SliceCache, sliced: SlicedFile, fingerprint: str) -> None:
    """Record a parsed file's slices; vectors are added when a ranking first needs them."""
    from pytest_orchestrator.phases.map.slice_cache import SliceMeta

    pairs = [
        (s.hash, SliceMeta(s.path, s.symbol, s.kind, s.start_line, s.end_line, a, b, s.tokens))
        for s, (a, b) in zip(sliced.slices, sliced.byte_ranges, strict=True)
    ]
    cache.put_file_slices(sliced.path, fingerprint, pairs)
