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


@jit
def _swap_gains(v, nth, d, rows, group_of, out):
    """out[a, b] for a in rows, every b: d[a] + d[b] + sum_j relu(v[b, j] - nth[a, j]) + relu(v[a, j] - nth[b, j])
    (the magnitude N:M keeps more when channels a and b trade groups), -inf within one group."""
    c, q = v.shape
    for ai in range(rows.size):
        a = rows[ai]
        for b in range(c):
            if group_of[a] == group_of[b]:
                out[a, b] = -np.inf
                continue
            s = 0.0
            for j in range(q):
                t = v[b, j] - nth[a, j]
                if t > 0:
                    s += t
                t = v[a, j] - nth[b, j]
                if t > 0:
                    s += t
            out[a, b] = d[a] + d[b] + s


def swap_gains(v: np.ndarray, nth: np.ndarray, d: np.ndarray, rows: np.ndarray, group_of: np.ndarray) -> np.ndarray:
    """``(c, c)`` gains of channel swaps (rows not in ``rows``: -inf); see :func:`search.permute._swap_gains`."""
    c = v.shape[0]
    out = np.full((c, c), -np.inf)
    _swap_gains(np.ascontiguousarray(v, dtype=np.float64), np.ascontiguousarray(nth, dtype=np.float64),
                np.ascontiguousarray(d, dtype=np.float64), np.ascontiguousarray(rows, dtype=np.int64),
                np.ascontiguousarray(group_of, dtype=np.int64), out)
    return out


@jit
def _swap_gains_windows(v, nth, d, windows, group_of, out):
    """:func:`_swap_gains` for the pairs inside each row of ``windows`` (channel indices) only."""
    q = v.shape[1]
    for w in range(windows.shape[0]):
        for i in range(windows.shape[1]):
            a = windows[w, i]
            for k in range(windows.shape[1]):
                b = windows[w, k]
                if group_of[a] == group_of[b]:
                    continue
                s = 0.0
                for j in range(q):
                    t = v[b, j] - nth[a, j]
                    if t > 0:
                        s += t
                    t = v[a, j] - nth[b, j]
                    if t > 0:
                        s += t
                out[a, b] = d[a] + d[b] + s


def swap_gains_windows(v, nth, d, windows, group_of) -> np.ndarray:
    """``(c, c)`` gains of the swaps inside each window (a row of ``windows``); -inf elsewhere."""
    c = v.shape[0]
    out = np.full((c, c), -np.inf)
    _swap_gains_windows(np.ascontiguousarray(v, dtype=np.float64), np.ascontiguousarray(nth, dtype=np.float64),
                        np.ascontiguousarray(d, dtype=np.float64), np.ascontiguousarray(windows, dtype=np.int64),
                        np.ascontiguousarray(group_of, dtype=np.int64), out)
    return out


@jit
def _group_stats(v, order, n, m, rem_top, rem_nth, cur):
    """Per channel and column: the top-``n`` sum and ``n``-th largest value of its group (channels
    ``order[g*m:(g+1)*m]``) without it; per group and column: the top-``n`` sum. Ties: the earlier
    position in the group ranks first (a stable descending sort's order)."""
    c, q = v.shape
    g_count = c // m
    vals = np.empty(m)
    rank = np.empty(m, dtype=np.int64)
    srt = np.empty(m)
    for g in range(g_count):
        for j in range(q):
            for i in range(m):
                vals[i] = v[order[g * m + i], j]
            for i in range(m):          # rank: larger first, earlier first on ties
                r = 0
                for k in range(m):
                    if vals[k] > vals[i] or (vals[k] == vals[i] and k < i):
                        r += 1
                rank[i] = r
                srt[r] = vals[i]
            top = 0.0
            for r in range(n):
                top += srt[r]
            top1 = top + (srt[n] if n < m else 0.0)
            cur[g, j] = top
            for i in range(m):
                ch = order[g * m + i]
                if rank[i] < n:
                    rem_top[ch, j] = top1 - vals[i]
                    rem_nth[ch, j] = srt[n] if n < m else 0.0
                else:
                    rem_top[ch, j] = top
                    rem_nth[ch, j] = srt[n - 1]


def group_stats(v: np.ndarray, order: np.ndarray, n: int, m: int):
    c, q = v.shape
    rem_top, rem_nth, cur = np.empty((c, q)), np.empty((c, q)), np.empty((c // m, q))
    _group_stats(np.ascontiguousarray(v, dtype=np.float64), np.ascontiguousarray(order, dtype=np.int64), int(n),
                 int(m), rem_top, rem_nth, cur)
    return rem_top, rem_nth, cur


@jit
def _pair_regroup(v, order, pairs, parts, n, m, gain, choice):
    """For each pair of channel groups ``pairs[t] = (ga, gb)`` (group positions in ``order``), the
    best of the re-partitions ``parts`` (rows of 2m pool positions: the first m form group a) of
    their 2m channels, by the magnitude N:M keeps over every column: ``gain[t]`` over the current
    split (``parts[0]``, the identity), ``choice[t]`` the row."""
    q = v.shape[1]
    n_parts = parts.shape[0]
    pool = np.empty(2 * m, dtype=np.int64)
    acc = np.empty(n_parts)
    vals = np.empty(2 * m)
    tmp = np.empty(m)
    for t in range(pairs.shape[0]):
        for i in range(m):
            pool[i] = order[pairs[t, 0] * m + i]
            pool[m + i] = order[pairs[t, 1] * m + i]
        acc[:] = 0.0
        for j in range(q):
            for i in range(2 * m):
                vals[i] = v[pool[i], j]
            for p in range(n_parts):
                s = 0.0
                for side in range(2):
                    for i in range(m):
                        tmp[i] = vals[parts[p, side * m + i]]
                    for a in range(n):            # partial selection: the n largest
                        best = a
                        for b in range(a + 1, m):
                            if tmp[b] > tmp[best]:
                                best = b
                        x = tmp[a]
                        tmp[a] = tmp[best]
                        tmp[best] = x
                        s += tmp[a]
                acc[p] += s
        bi = 0
        for p in range(1, n_parts):
            if acc[p] > acc[bi] + 1e-12:
                bi = p
        gain[t] = acc[bi] - acc[0]
        choice[t] = bi


def pair_regroup(v: np.ndarray, order: np.ndarray, pairs: np.ndarray, parts: np.ndarray, n: int, m: int):
    """``(gain (T,), choice (T,))`` of :func:`_pair_regroup` (checked, typed arrays)."""
    pairs = np.ascontiguousarray(pairs, dtype=np.int64).reshape(-1, 2)
    gain = np.zeros(len(pairs))
    choice = np.zeros(len(pairs), dtype=np.int64)
    _pair_regroup(np.ascontiguousarray(v, dtype=np.float64), np.ascontiguousarray(order, dtype=np.int64), pairs,
                  np.ascontiguousarray(parts, dtype=np.int64), int(n), int(m), gain, choice)
    return gain, choice
