"""Fast mask selection, identical to :meth:`workloads.SparsityPattern.mask` (same ties, same masks).

The patterns pick masks with a stable ``argsort``, which dominates the time to build cost tables
(ResNet-50's unstructured masks alone take seconds). Here the same masks come from a linear-time
threshold (unstructured) and from pairwise ranks inside each group (N:M); other patterns fall back
to the pattern's own method. ``tests/test_search.py`` checks equality against the patterns.
"""
from __future__ import annotations

import math

import numpy as np

from workloads import NM, SparsityPattern, Unstructured


def _top_flat(scores: np.ndarray, keep: int) -> np.ndarray:
    """The ``keep`` largest of ``scores`` (flattened order breaks ties: earlier wins)."""
    flat = scores.ravel()
    if keep <= 0:
        return np.zeros(scores.shape, dtype=bool)
    if keep >= flat.size:
        return np.ones(scores.shape, dtype=bool)
    t = np.partition(flat, flat.size - keep)[flat.size - keep]   # the keep-th largest value
    out = flat > t
    need = keep - int(np.count_nonzero(out))
    if need > 0:
        ties = np.flatnonzero(flat == t)[:need]
        out[ties] = True
    return out.reshape(scores.shape)


def _nm(scores: np.ndarray, n: int, m: int) -> np.ndarray:
    g, k, cols = scores.shape
    groups = -(-k // m)
    pad = groups * m - k
    s = scores
    if pad:
        s = np.concatenate([s, np.full((g, pad, cols), -1.0, dtype=s.dtype)], axis=1)
    s = s.reshape(g, groups, m, cols)
    rank = np.zeros(s.shape, dtype=np.int16)
    for i in range(m):
        si = s[:, :, i, :]
        r = rank[:, :, i, :]
        for j in range(m):
            if j == i:
                continue
            # j ranks above i if larger, or equal and earlier
            r += (s[:, :, j, :] > si) if j > i else (s[:, :, j, :] >= si)
    keep = (rank < n).reshape(g, groups * m, cols)[:, :k, :]
    return keep


def pick(pattern: SparsityPattern, scores: np.ndarray) -> np.ndarray:
    """The mask ``pattern`` keeps on nonnegative ``scores`` ``(groups, k, n)``."""
    if isinstance(pattern, Unstructured):
        return _top_flat(scores, int(math.floor(pattern.density * scores.size + 0.5)))
    if isinstance(pattern, NM):
        return _nm(scores, pattern.n, pattern.m)
    return pattern.mask(scores)
