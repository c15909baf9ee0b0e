"""Slice vectors: hashed identifier features, deterministic across processes and runs.

`embed` turns a slice's source (or a command) into a `DIM`-dimensional, L2-normalised float32
vector; cosine similarity of two vectors is then their dot product. Map stores the vectors in
the slice cache (`pytest_orchestrator.phases.map.slice_cache`) and ranks them against the command.
"""

from __future__ import annotations

import keyword
import math
import re
import zlib
from collections import Counter
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

from pytest_orchestrator.phases.map.terms import STOP_WORDS, split_identifier

__all__ = ["DIM", "Vector", "embed"]

Vector = npt.NDArray[np.float32]

DIM: Final = 256
"""Vector dimension: 256 hashed buckets keep collisions rare for the few hundred distinct
terms of a slice, at 1 KiB per vector."""
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOISE: Final = STOP_WORDS | {w.lower() for w in keyword.kwlist} | {"self", "cls"}


def embed(text: str, dim: int = DIM) -> Vector:
    """A slice's (or a command's) vector: hashed identifier and term features.

    Every identifier is split into lower-case sub-words (``calculatePositionSize`` and
    ``calculate_position_size`` both give ``calculate position size``, see
    `pytest_orchestrator.phases.map.terms.split_identifier`); stop words, Python keywords and
    one-letter words are dropped. Each sub-word is a feature, and so is a multi-word name as a
    whole, so the exact identifier counts extra. A feature goes into bucket ``crc32 % dim``
    with a sign from another bit of the hash (collisions cancel rather than add up), weighted
    ``1 + ln tf``. The result is L2-normalised float32, zero for text without features;
    deterministic across processes and runs (CRC-32, not ``hash()``).
    """
    if dim < 1:
        raise ValueError(f"dim must be positive, got {dim}")
    # each distinct name once, in order of first occurrence: the features' order (hence the
    # float32 sums' order) and their counts are those of a pass over every occurrence
    counts: Counter[str] = Counter()
    for name, n in Counter(_IDENTIFIER.findall(text)).items():
        for feature in _features(name):
            counts[feature] += n
    vector = np.zeros(dim, np.float32)
    for feature, tf in counts.items():
        bucket, sign = _slot(feature, dim)
        vector[bucket] += sign * (1.0 + math.log(tf))
    norm = float(np.linalg.norm(vector))
    if norm > 0:
        vector /= norm
    return vector


@lru_cache(maxsize=1 << 16)
def _features(name: str) -> tuple[str, ...]:
    """The features of one identifier: its sub-words, and the whole name if it has several."""
    words = tuple(w for w in split_identifier(name) if len(w) > 1 and w not in _NOISE)
    return (*words, "_".join(words)) if len(words) > 1 else words


@lru_cache(maxsize=1 << 16)
def _slot(feature: str, dim: int) -> tuple[int, float]:
    h = zlib.crc32(feature.encode())
    return h % dim, 1.0 if h & 0x8000_0000 else -1.0
