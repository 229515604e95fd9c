"""Numba kernels over masks. Private ``_`` kernels see only arrays and scalars and raise nothing;
the public wrappers validate and make arrays contiguous and typed (the STUMPY split)."""
from __future__ import annotations

import numpy as np

from ._jit import jit


@jit
def _block_max_counts(mask, m, col_block, n_blocks):
    """For a (groups, k, n) uint8 mask: per group, per M-group along k and per column block, the
    largest number of nonzeros any column of the block has in that M-group; and the histogram of
    per-(M-group, column) nonzero counts. Columns with ``col_block < 0`` are left out."""
    g_count, k, n = mask.shape
    kg_count = (k + m - 1) // m
    out = np.zeros((g_count, kg_count, n_blocks), dtype=np.int32)
    hist = np.zeros(m + 1, dtype=np.int64)
    cnt = np.zeros(n, dtype=np.int32)
    for g in range(g_count):
        for kg in range(kg_count):
            for c in range(n):
                cnt[c] = 0
            hi = min(k, kg * m + m)
            for kk in range(kg * m, hi):
                for c in range(n):
                    cnt[c] += mask[g, kk, c]
            for c in range(n):
                b = col_block[g, c]
                if b >= 0:
                    hist[cnt[c]] += 1
                    if cnt[c] > out[g, kg, b]:
                        out[g, kg, b] = cnt[c]
    return out, hist


@jit
def _nonzero_columns(mask):
    """(groups, n) bool: does the column hold any nonzero?"""
    g_count, k, n = mask.shape
    out = np.zeros((g_count, n), dtype=np.bool_)
    for g in range(g_count):
        for kk in range(k):
            for c in range(n):
                if mask[g, kk, c]:
                    out[g, c] = True
    return out


def as_u8(mask: np.ndarray) -> np.ndarray:
    """A C-contiguous uint8 (groups, k, n) view/copy of a bool mask."""
    if mask.ndim != 3:
        raise ValueError(f"expected a (groups, k, n) mask, got shape {mask.shape}")
    return np.ascontiguousarray(mask, dtype=np.bool_).view(np.uint8)


def column_blocks(live: np.ndarray, block_width: int) -> tuple[np.ndarray, int, np.ndarray]:
    """Assign live columns of each group to blocks of ``block_width`` in order; dead columns get -1.

    Returns (col_block (groups, n) int32, number of blocks, live columns per group)."""
    live_n = live.sum(axis=1).astype(np.int64)
    rank = np.cumsum(live, axis=1) - 1
    col_block = np.where(live, rank // block_width, -1).astype(np.int32)
    n_blocks = int(max(1, -(-int(live_n.max(initial=0)) // block_width)))
    return col_block, n_blocks, live_n


def block_max_counts(mask_u8: np.ndarray, m: int, col_block: np.ndarray, n_blocks: int):
    return _block_max_counts(mask_u8, np.int64(m), np.ascontiguousarray(col_block, dtype=np.int32),
                             np.int64(n_blocks))


def nonzero_columns(mask_u8: np.ndarray) -> np.ndarray:
    return _nonzero_columns(mask_u8)


@jit
def _double_buffered_cycles(t_rows, r, c, load_per_row, stream_per_row, fill_extra):
    """Cycles from the first weight row accepted to the last output of folds run back to back on the
    double-buffered weight-stationary array (hdl/rtl/nm_array.sv), with no backpressure.

    Fold f loads its R weight rows into bank f % 2 once the previous load is done and the bank's
    previous user, fold f-2, has drained (its last row left the array R + C + fill_extra cycles
    after it was accepted); its stream starts when its weights are in and fold f-1's stream is done.
    """
    count = t_rows.shape[0]
    if count == 0:
        return 0.0
    load = r * load_per_row
    lat = r + c + fill_extra
    e_prev2 = -1.0e18
    e_prev = -1.0e18
    w_prev = 0.0
    last_end = 0.0
    for f in range(count):
        if f == 0:
            w = 0.0
        else:
            w = max(w_prev + load, e_prev2 + lat)
        s = max(w + load, e_prev + 1.0)
        e = s + (t_rows[f] - 1) * stream_per_row
        e_prev2 = e_prev
        e_prev = e
        w_prev = w
        last_end = e
    return last_end + lat + 1.0


def double_buffered_cycles(t_rows, r: int, c: int, load_per_row: float = 1.0, stream_per_row: float = 1.0,
                           fill_extra: float = 0.0) -> float:
    """See :func:`_double_buffered_cycles`; ``t_rows``: streamed rows of each fold, in order."""
    return float(_double_buffered_cycles(np.ascontiguousarray(t_rows, dtype=np.float64), float(r), float(c),
                                         float(load_per_row), float(stream_per_row), float(fill_extra)))


@jit
def _db_step(t, w_prev, e_prev, e_prev2, first, load, lat, stream_per_row):
    w = 0.0 if first else max(w_prev + load, e_prev2 + lat)
    s = max(w + load, e_prev + 1.0)
    e = s + (t - 1.0) * stream_per_row
    return w, e, e_prev


@jit
def _uniform(a0, a1, a2, b0, b1, b2):
    """The shift d when (a0, a1, a2) = (b0, b1, b2) + d in every component, else NaN."""
    d = a0 - b0
    if abs((a1 - b1) - d) <= 1e-9 * (1.0 + abs(d)) and abs((a2 - b2) - d) <= 1e-9 * (1.0 + abs(d)):
        return d
    return np.nan


@jit
def _double_buffered_runs(values, counts, reps, r, c, load_per_row, stream_per_row, fill_extra):
    """:func:`_double_buffered_cycles` over ``reps`` repetitions of the fold sequence given as runs
    (``counts[i]`` folds of ``values[i]`` rows each), without enumerating the folds.

    The recurrence is max-plus and homogeneous: shifting its state (w_prev, e_prev, e_prev2) by d
    shifts every later fold by d. So once a fold of a run leaves the state shifted uniformly from
    the fold before, every further fold of that run adds the same shift, exactly; likewise a whole
    repetition of the sequence. Period-2 steady states (the two weight banks) are caught by comparing
    with the state two folds back.
    """
    load = r * load_per_row
    lat = r + c + fill_extra
    w, e, e2 = 0.0, -1.0e18, -1.0e18
    first = True
    done = 0                                   # folds run so far
    bw, be, be2 = 0.0, 0.0, 0.0               # state at the end of the previous repetition
    cw, ce, ce2 = 0.0, 0.0, 0.0               # and of the one before it
    rep = 0
    while rep < reps:
        for i in range(values.shape[0]):
            t = values[i]
            left = counts[i]
            p1w, p1e, p1e2 = np.nan, np.nan, np.nan    # state one fold back
            p2w, p2e, p2e2 = np.nan, np.nan, np.nan    # two folds back
            while left > 0:
                p2w, p2e, p2e2 = p1w, p1e, p1e2
                p1w, p1e, p1e2 = w, e, e2
                w, e, e2 = _db_step(t, w, e, e2, first, load, lat, stream_per_row)
                first = False
                left -= 1
                done += 1
                if done < 3 or left == 0:
                    continue
                d = _uniform(w, e, e2, p1w, p1e, p1e2)
                if not np.isnan(d):
                    w += d * left
                    e += d * left
                    e2 += d * left
                    done += left
                    left = 0
                    continue
                if left >= 2 and not np.isnan(p2w):
                    d2 = _uniform(w, e, e2, p2w, p2e, p2e2)
                    if not np.isnan(d2):
                        k = left // 2
                        w += d2 * k
                        e += d2 * k
                        e2 += d2 * k
                        done += 2 * k
                        left -= 2 * k
                        p1w, p1e, p1e2 = np.nan, np.nan, np.nan
                        p2w, p2e, p2e2 = np.nan, np.nan, np.nan
        rep += 1
        if rep >= 2 and rep < reps:
            d = _uniform(w, e, e2, bw, be, be2)
            if not np.isnan(d):
                k = reps - rep
                w += d * k
                e += d * k
                e2 += d * k
                rep = reps
            elif rep >= 3 and reps - rep >= 2:
                # a period of two repetitions (a repetition of an odd number of folds alternates the
                # two weight banks): the same shift every two
                d2 = _uniform(w, e, e2, cw, ce, ce2)
                if not np.isnan(d2):
                    k = (reps - rep) // 2
                    w += d2 * k
                    e += d2 * k
                    e2 += d2 * k
                    rep += 2 * k
        cw, ce, ce2 = bw, be, be2
        bw, be, be2 = w, e, e2
    if done == 0:
        return 0.0
    return e + lat + 1.0


def double_buffered_runs(values, counts, reps: int, r: int, c: int, load_per_row: float = 1.0,
                         stream_per_row: float = 1.0, fill_extra: float = 0.0) -> float:
    """:func:`double_buffered_cycles` of ``reps`` repetitions of the runs ``(values[i] rows) x counts[i]``,
    in time independent of the number of folds (see :func:`_double_buffered_runs`)."""
    return float(_double_buffered_runs(np.ascontiguousarray(values, dtype=np.float64),
                                       np.ascontiguousarray(counts, dtype=np.int64), np.int64(reps), float(r),
                                       float(c), float(load_per_row), float(stream_per_row), float(fill_extra)))
