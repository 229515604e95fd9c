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
