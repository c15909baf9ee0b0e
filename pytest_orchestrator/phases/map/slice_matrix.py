"""The slice cache's ranking tier: every cached vector as one row of a float32 matrix.

`pytest_orchestrator.phases.map.slice_cache.SliceCache.topk` loads the matrix on first use and
refreshes it incrementally; ranking is then one matrix-vector product and a partial sort.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import final

import numpy as np

from pytest_orchestrator.phases.map.embedding import Vector

__all__: list[str] = []


@final
class _Matrix:
    """Every cached vector, L2-normalised, as rows of one float32 matrix: top-k is one product.

    float32 rather than float16, measured on the project's 2-core machine with 1M x 256
    vectors: float32 matrix x vector takes ~48 ms; float16 takes ~1.1 s (numpy has no
    half-precision BLAS) or ~0.6 s converting 64k-row chunks to float32 first. Halving the
    memory (1 GiB -> 512 MiB at a million slices) is not worth ranking 12x slower, and the
    matrix exists only in the process that ranks, once it ranks.
    """

    def __init__(self, dim: int, capacity: int = 0) -> None:
        self.keys: list[str] = []
        self.rows: dict[str, int] = {}
        self.data: Vector = np.empty((capacity, dim), np.float32)

    def update(self, keys: Sequence[str], block: Vector) -> None:
        """Set the rows of ``keys`` (distinct) to ``block``'s rows, normalised."""
        start = len(self.keys)
        targets = []
        for key in keys:
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = len(self.keys)
                self.keys.append(key)
            targets.append(row)
        end = len(self.keys)
        if end > self.data.shape[0]:
            grown = np.empty((max(end, self.data.shape[0] * 3 // 2), block.shape[1]), np.float32)
            grown[:start] = self.data[:start]
            self.data = grown
        if end - start == len(keys):  # all new (a load): copy and normalise in place
            _normalise(self.data[start:end], block)
        else:
            rows = np.empty_like(block)
            _normalise(rows, block)
            self.data[targets] = rows

    def topk(self, query: Vector, k: int, keys: Collection[str] | None) -> list[tuple[str, float]]:
        if keys is None:
            rows = None
            scores = self.data[: len(self.keys)] @ query
        else:
            rows = np.fromiter({self.rows[key] for key in keys if key in self.rows}, np.intp)
            scores = self.data[rows] @ query
        k = min(k, len(scores))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(k)
        top = top[np.argsort(-scores[top], kind="stable")]
        index = top if rows is None else rows[top]
        return [(self.keys[i], float(scores[j])) for i, j in zip(index, top, strict=True)]


def _normalise(out: Vector, rows: Vector) -> None:
    """``out[i] = rows[i] / |rows[i]|`` (zero rows stay zero) without a full-size temporary."""
    np.copyto(out, rows)
    norms = np.sqrt(np.einsum("ij,ij->i", out, out))
    norms[norms == 0] = 1
    out /= norms[:, None]
