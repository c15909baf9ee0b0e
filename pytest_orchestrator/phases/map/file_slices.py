"""The slices of one file on disk, reused from the slice cache while the file is unchanged.

A file's fingerprint is the git-blob SHA-1 of its bytes (what ``git ls-files -s`` shows for a
clean file): the same in every worktree of a commit, unlike a stat. When the slice cache holds
slices for that fingerprint they are rebuilt from the bytes without parsing; otherwise the file
is parsed (`pytest_orchestrator.phases.map.slicing`) and its slices recorded. Only a file that
changed is parsed again.

`preslice` records the slices of every file of a tree ahead of any command (the identifier
index's build does it, in its own process), so that a new command finds its candidates
sliced: parsing them was most of a warm Map's time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, cast

from pytest_orchestrator.model import Slice
from pytest_orchestrator.phases.map.slicing import Kind, SlicedFile, blob_sha1, slice_source

if TYPE_CHECKING:
    from pytest_orchestrator.phases.map.slice_cache import SliceCache, SliceMeta

#: Files recorded per slice-cache transaction by `preslice`: short transactions, since the
#: Maps of running sessions write to the same file meanwhile.
PRESLICE_BATCH: Final = 200


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
                    # the cache's own rows, checked when they were stored: not validated again
                    Slice.model_construct(
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
    cache.put_file_slices(sliced.path, fingerprint, _metas(sliced, sliced.path))


def _metas(sliced: SlicedFile, path: str) -> list[tuple[str, SliceMeta]]:
    """The cache's (key, meta) of each slice of ``sliced``, as the slices of ``path``."""
    from pytest_orchestrator.phases.map.slice_cache import SliceMeta

    return [
        (s.hash, SliceMeta(path, s.symbol, s.kind, s.start_line, s.end_line, a, b, s.tokens))
        for s, (a, b) in zip(sliced.slices, sliced.byte_ranges, strict=True)
    ]


def preslice(
    files: Iterable[tuple[str, str]],
    contents: Callable[[Sequence[str]], Iterator[tuple[str, bytes]]],
    cache: SliceCache,
    *,
    stop: threading.Event | None = None,
) -> int:
    """Slice and record every file of ``files`` (path, git blob id) whose slices ``cache`` does
    not hold at that blob id; ``contents(blob ids)`` yields (blob id, bytes). A blob at several
    paths is parsed once. Each file is recorded whole, so an interrupted run leaves nothing
    half-done (the next continues it), and `slice_file` still checks every file's own bytes
    against the blob id it was recorded under. Returns the files recorded."""
    known = cache.fingerprints()
    wanted: dict[str, list[str]] = {}
    for path, oid in files:
        if known.get(path) != oid:
            wanted.setdefault(oid, []).append(path)
    recorded = 0
    batch: list[tuple[str, str, Sequence[tuple[str, SliceMeta]]]] = []
    for oid, raw in contents(sorted(wanted)):
        if stop is not None and stop.is_set():
            break
        paths = wanted[oid]
        sliced = slice_source(paths[0], raw)
        if sliced.skipped is None:  # as `slice_file`: a skipped file is not recorded
            batch += [(path, oid, _metas(sliced, path)) for path in paths]
        if len(batch) >= PRESLICE_BATCH:
            cache.put_many_file_slices(batch)
            recorded += len(batch)
            batch = []
    cache.put_many_file_slices(batch)
    return recorded + len(batch)
