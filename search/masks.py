"""Fast mask selection, identical to :meth:`workloads.SparsityPattern.mask` (same ties, same masks).

The patterns pick masks with a stable ``argsort``, which dominates the time to build cost tables
(ResNet-50's unstructured masks alone take seconds). Here the same masks come from a linear-time
threshold (unstructured) and from pairwise ranks inside each group (N:M); other patterns fall back
to the pattern's own method. ``tests/test_search.py`` checks equality against the patterns.
"""
from __future__ import annotations

import math

import numpy as np

from workloads import NM, Block, SparsityPattern, Unstructured

from .kernels import nm_keep


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


def _block(scores: np.ndarray, pattern: Block) -> np.ndarray:
    """Block.mask's arithmetic (same block means, bit for bit) with the linear-time top-k."""
    g, k, n = scores.shape
    bh, bw = pattern.bh, pattern.bw
    bk, bn = -(-k // bh), -(-n // bw)
    mag = np.zeros((g, bk * bh, bn * bw))
    mag[:, :k, :n] = np.abs(scores)
    cnt = np.zeros_like(mag)
    cnt[:, :k, :n] = 1.0
    blk_sum = mag.reshape(g, bk, bh, bn, bw).sum(axis=(2, 4))
    blk_cnt = cnt.reshape(g, bk, bh, bn, bw).sum(axis=(2, 4))
    keep_blk = _top_flat(blk_sum / blk_cnt, int(math.floor(pattern.density * blk_sum.size + 0.5)))
    return np.repeat(np.repeat(keep_blk, bh, axis=1), bw, axis=2)[:, :k, :n]


def pick(pattern: SparsityPattern, scores: np.ndarray) -> np.ndarray:
    """The mask ``pattern`` keeps on nonnegative ``scores`` ``(groups, k, n)``."""
    if isinstance(pattern, Unstructured):
        return _top_flat(scores, int(math.floor(pattern.density * scores.size + 0.5)))
    if isinstance(pattern, NM):
        return nm_keep(scores, pattern.n, pattern.m)
    if isinstance(pattern, Block):
        return _block(scores, pattern)
    return pattern.mask(scores)
