"""Numba kernels of the search: N:M mask selection and masked sums. Private kernels see only
arrays and scalars; wrappers in :mod:`search.masks` and :mod:`search.proxies` make arrays typed."""
from __future__ import annotations

import numpy as np

from simulator._jit import jit


@jit
def _nm_keep(scores, n_keep, m, out):
    """Keep the ``n_keep`` largest of every ``m`` consecutive scores along k (axis 1) per column,
    the earlier index winning ties; a short last group ranks only its real elements."""
    g_count, k, n = scores.shape
    rank = np.zeros((m, n), dtype=np.int32)
    for g in range(g_count):
        for k0 in range(0, k, m):
            hi = min(k, k0 + m)
            rank[:, :] = 0
            for i in range(k0, hi):
                for j in range(k0, hi):
                    if j < i:      # an earlier equal score ranks above
                        for c in range(n):
                            rank[i - k0, c] += scores[g, j, c] >= scores[g, i, c]
                    elif j > i:
                        for c in range(n):
                            rank[i - k0, c] += scores[g, j, c] > scores[g, i, c]
            for i in range(k0, hi):
                for c in range(n):
                    out[g, i, c] = rank[i - k0, c] < n_keep


@jit
def _masked_sum(values, mask):
    """sum(values[mask]) over flat float64 values and uint8 mask."""
    total = 0.0
    for i in range(values.size):
        total += values[i] * mask[i]
    return total


def masked_sum(values: np.ndarray, mask: np.ndarray) -> float:
    return float(_masked_sum(np.ascontiguousarray(values, dtype=np.float64).ravel(),
                             np.ascontiguousarray(mask).view(np.uint8).ravel()))


def nm_keep(scores: np.ndarray, n: int, m: int) -> np.ndarray:
    s = np.ascontiguousarray(scores)
    if s.dtype not in (np.float32, np.float64):
        s = s.astype(np.float64)
    out = np.empty(s.shape, dtype=np.bool_)
    _nm_keep(s, int(n), int(m), out)
    return out


@jit
def _gather_sum4(tables, pop, hw, n_cand, out):
    """out[p, :] = sum over layers l of tables[hw[p], l * n_cand + pop[p, l], :] for 4 metrics,
    summed in layer order (the accumulators stay in registers)."""
    n_pop, n_layers = pop.shape
    for p in range(n_pop):
        h = hw[p]
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for li in range(n_layers):
            row = li * n_cand + pop[p, li]
            s0 += tables[h, row, 0]
            s1 += tables[h, row, 1]
            s2 += tables[h, row, 2]
            s3 += tables[h, row, 3]
        out[p, 0] = s0
        out[p, 1] = s1
        out[p, 2] = s2
        out[p, 3] = s3


def gather_sum(tables: np.ndarray, pop: np.ndarray, hw: np.ndarray | None, n_cand: int) -> np.ndarray:
    """Totals ``(P, metrics)`` of a population ``pop`` ``(P, L)`` over ``tables`` ``(H, L*C, metrics)``,
    at most 4 metrics (``hw`` ``(P,)`` picks the table of each member; None: table 0)."""
    pop = np.ascontiguousarray(pop, dtype=np.int64)
    hw = np.zeros(len(pop), dtype=np.int64) if hw is None else np.ascontiguousarray(hw, dtype=np.int64)
    m = tables.shape[2]
    if m < 4:
        tables = np.concatenate([tables, np.zeros(tables.shape[:2] + (4 - m,))], axis=2)
    out = np.empty((pop.shape[0], 4), dtype=np.float64)
    _gather_sum4(np.ascontiguousarray(tables, dtype=np.float64), pop, hw, int(n_cand), out)
    return out[:, :m]
