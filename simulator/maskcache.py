"""Per-layer mask statistics kept between ``simulate`` calls on the same layer object.

A sweep simulates one masked workload on many accelerators. What the engine reads from a mask (the
contiguous uint8 ``(groups, k, n)`` copy, which columns are live, the nonzero count, and per
``(M, block width)`` the largest count of any column block in each M-group) depends only on the
mask and the array geometry, not on the rest of the design; recomputing it per point cost most of a
point's time. Entries are keyed by the layer object (layers are immutable) and vanish with it.
"""
from __future__ import annotations

import weakref

import numpy as np

from .kernels import as_u8, block_max_counts, column_blocks, nonzero_columns

_ENTRIES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class MaskEntry:
    """What the engine needs of one layer's mask; ``u8`` is None for a dense layer."""

    __slots__ = ("_u8", "_layer", "live", "live_k", "nnz", "_blocks", "_counts", "derived")

    def __init__(self, u8, live, live_k, nnz, layer=None):
        self._u8, self.live, self.live_k, self.nnz = u8, live, live_k, nnz
        # a seeded entry (see seed) makes its uint8 mask from the layer on first use
        self._layer = None if layer is None else weakref.ref(layer)
        self._blocks: dict = {}
        self._counts: dict = {}
        self.derived: dict = {}   # what the engine derives from the statistics, keyed by its inputs

    @property
    def u8(self):
        """The mask as a C-contiguous uint8 ``(groups, k, n)`` array (None for a dense layer)."""
        if self._u8 is None and self._layer is not None:
            self._u8 = as_u8(self._layer().gemm_mask())
            self._layer = None
        return self._u8

    def blocks(self, block_width: int):
        """``column_blocks(live, block_width)``, computed once per width."""
        got = self._blocks.get(block_width)
        if got is None:
            got = self._blocks[block_width] = column_blocks(self.live, block_width)
        return got

    def block_max_counts(self, m: int, block_width: int):
        """``block_max_counts`` for group size ``m`` over the blocks of ``block_width``."""
        key = (m, block_width)
        got = self._counts.get(key)
        if got is None:
            col_block, n_blocks, _ = self.blocks(block_width)
            got = self._counts[key] = block_max_counts(self.u8, m, col_block, n_blocks)
        return got


def mask_entry(layer) -> MaskEntry:
    """The cached :class:`MaskEntry` of ``layer`` (computed on first use)."""
    entry = _ENTRIES.get(layer)
    if entry is None:
        gm = layer.gemm_mask()
        if gm is None:
            g, k, n = layer.gemm_shape
            entry = MaskEntry(None, np.ones((g, n), dtype=bool), np.full(g, k, dtype=np.int64), g * k * n)
        else:
            u8 = as_u8(gm)
            entry = MaskEntry(u8, nonzero_columns(u8), u8.any(axis=2).sum(axis=1).astype(np.int64),
                              int(np.count_nonzero(u8)))
        _ENTRIES[layer] = entry
    return entry


def statistics(layer):
    """``(live, live_k, nnz)`` of a masked layer (see :func:`seed`), or None when it is dense."""
    if layer.mask is None:
        return None
    entry = mask_entry(layer)
    return entry.live, entry.live_k, entry.nnz


def seed(layer, stats) -> None:
    """Give ``layer`` the statistics :func:`statistics` returned for an equal mask (a workload
    read back from disk: the process that masked it computed them), so they are not computed
    again; its uint8 mask is made on first use."""
    if stats is not None and layer not in _ENTRIES:
        live, live_k, nnz = stats
        _ENTRIES[layer] = MaskEntry(None, live, live_k, nnz, layer)


def clear() -> None:
    """Forget every entry (tests; memory)."""
    _ENTRIES.clear()


def share(template, layer) -> None:
    """Give ``layer`` the very entry of ``template`` when both hold the same mask array (an LLM
    phase's copy of a traced layer with other rows): nothing is computed twice, the uint8 mask included."""
    if layer.mask is not None and layer.mask is template.mask and layer not in _ENTRIES:
        _ENTRIES[layer] = mask_entry(template)
