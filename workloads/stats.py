"""Mask statistics: density, N:M compliance and the histogram of nonzeros per M-group."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def group_counts(gemm_mask: np.ndarray, m: int) -> np.ndarray:
    """Nonzeros in every group of ``m`` consecutive elements along k: shape ``(groups, ceil(k/m), n)``.

    ``gemm_mask`` is a ``(groups, k, n)`` boolean array; a short last group counts what it has.
    """
    g, k, n = gemm_mask.shape
    kg = -(-k // m)
    pad = kg * m - k
    a = gemm_mask.astype(np.int32, copy=False)
    if pad:
        a = np.concatenate([a, np.zeros((g, pad, n), dtype=np.int32)], axis=1)
    return a.reshape(g, kg, m, n).sum(axis=2)


@dataclass(frozen=True)
class MaskStats:
    """Statistics of one layer's mask, for M-groups along the reduction axis.

    ``histogram[j]`` is the number of M-groups that hold exactly ``j`` nonzeros (``j = 0..M``).
    """

    size: int
    nnz: int
    m: int
    histogram: tuple[int, ...]

    @property
    def density(self) -> float:
        return self.nnz / self.size if self.size else 1.0

    @property
    def max_per_group(self) -> int:
        nz = [j for j, c in enumerate(self.histogram) if c]
        return max(nz) if nz else 0

    def compliance(self, n: int) -> float:
        """Fraction of M-groups with at most ``n`` nonzeros (1.0 means the mask is N:M)."""
        total = sum(self.histogram)
        return sum(self.histogram[: n + 1]) / total if total else 1.0

    def is_nm(self, n: int) -> bool:
        return self.max_per_group <= n


def mask_stats(gemm_mask: np.ndarray | None, shape: tuple[int, int, int], m: int = 4) -> MaskStats:
    """Stats of a ``(groups, k, n)`` mask; ``None`` means dense of the given GEMM ``shape``."""
    if gemm_mask is None:
        gemm_mask = np.ones(shape, dtype=bool)
    counts = group_counts(gemm_mask, m)
    hist = np.bincount(counts.ravel(), minlength=m + 1)
    return MaskStats(size=int(gemm_mask.size), nnz=int(np.count_nonzero(gemm_mask)), m=m,
                     histogram=tuple(int(x) for x in hist))
