"""The fast engine: closed-form timing, traffic and energy per layer, driven by the real masks.

One engine serves every dataflow (see :mod:`simulator.dataflow`); layers are independent, so a
workload's cost is the sum of its layers' (the search relies on it). Per layer:

1. **Zeros.** Output channels (GEMM columns) whose weights are all zero are removed before mapping,
   and so are input rows (k) that are zero in every column in dense mode: the compiler shrinks
   the GEMM on any hardware.
2. **Schedule blocks.** Columns that share one schedule: the columns of a fold when n is on the
   array (WS, OS), all columns when n streams (IS).
3. **Compressed reduction.** In an N:M mode a PE row takes one M-wide group of activations and its
   weight slot picks one of them by index. What a group in which a column keeps ``j`` weights
   costs depends on the hardware's ``nm_overflow`` (:class:`accel.NmOverflow`):
   ``passes`` (flexible, VEGETA-style): ``ceil(j / N)`` passes of N slots, an all-zero group none;
   ``dense`` (fixed units: NVIDIA sparse tensor cores, SAT): the mode is usable only if every group
   holds at most N, and then every group costs N slots. The columns of a block share the schedule,
   so a block's group costs the most any of its columns needs; ``K'`` is the sum over groups.
   WS and IS map k to rows, so K' sets the row folds; OS streams k, so K' shortens the stream.
4. **Mode.** Every mode the hardware has (dense, and each usable N:M mode when zeros are skipped)
   is costed, memory included; the fewest cycles win, then the fewest DRAM bytes (on ties dense,
   then the larger N; ``mapper.objective: dram`` ranks DRAM bytes first, here and in the mapper).
   ``zero_handling: gate`` keeps dense timing and saves MAC energy.
5. **Folds and mapping** (:mod:`simulator.mapping`). The mapper tiles the layer into the buffers
   and picks the loop order; a tile of the streamed dimension cuts the stream into chunks, each a
   fold. Folds follow the accelerator's fold rule: ``scalesim`` (each ``2R + C + T - 2`` cycles
   (WS, IS) or ``R + C + T - 2`` (OS), the layer their sum minus one plus the pipeline latency:
   SCALE-Sim v3's count) or ``rtl`` (the double-buffered weight schedule of ``hdl/rtl/nm_array.sv``,
   whose parameters ``sparsim calibrate`` fits).
6. **Traffic.** DRAM bytes per operand from the mapping (never below compulsory: each operand
   once); SRAM bytes from the folds: A is read once per fold of n on the array (IS: once per
   chunk), W once per fold of m (WS: per stream chunk), partial sums at accumulator width across k
   folds. N:M weights move compressed (kept slots) with their metadata.
7. **Time.** The pipeline of :func:`simulator.mapping.pipeline_cycles` over the mapping's steps;
   ``stall_cycles = cycles - compute_cycles``.
8. **Energy.** Action counts x the accelerator's table: MACs on nonzero weights at full energy,
   executed zero slots (padding of N:M passes, gated zeros) at gated energy, a register write per
   executed MAC, an index-mux select per executed MAC in N:M modes, SRAM and DRAM bytes, metadata
   bytes, static power x time.

:func:`plan_layer` returns all of it as a :class:`LayerPlan`; it is the one source of truth that both
the fast engine (:func:`simulate_layer`) and the event engine consume.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from accel import Accelerator, Dataflow, MapperObjective, NmOverflow, Operand, Ports, TimingModel, ZeroHandling
from workloads import Layer, Phase, Workload

from .columns import COLUMNS, column_values
from .columns import totals as column_totals
from .dataflow import DATAFLOWS, DataflowMap, fold_time
from ._jit import jit
from .errors import SimulationError
from .limits import check_workload
from .lru import Lru
from .maskcache import mask_entry
from .kernels import _double_buffered_runs
from .mapping import DIMS, ORDERS, MapProblem, Mapping, _search, a_cuts, m_tile_candidates, tile_candidates

_OPS = (Operand.ACTIVATION, Operand.WEIGHT, Operand.METADATA, Operand.OUTPUT)


@dataclass
class _Candidate:
    label: str
    n: int                 # N of the N:M mode (0 for dense)
    m: int                 # M of the mode (0 for dense)
    kprime: np.ndarray     # (groups, blocks) compressed reduction length
    stored_slots: int      # weight values stored (kept slots, over all live columns)
    # worked out once per mask (_candidates_of): the longest compressed reduction, the MACs per row
    # (kprime x live columns, summed), and what a mode's cost depends on of kprime (_mode_plan)
    kp_max: int = 0
    executed_k: int = 0
    sig: tuple = ()


@dataclass(frozen=True)
class LayerPlan:
    """One layer's cost, as the fast engine computes it: **the interface the event engine consumes**.

    A plan is a layer run in one mode with one mapping. Its ``steps`` are the tiles of the DRAM-level
    loop nest (``mapping.steps``), each a group of array folds; the fast engine spreads the layer's
    compute, traffic and SRAM port time evenly over them (``step_*``) and runs them through
    :func:`simulator.mapping.pipeline_cycles` to get ``cycles``. An event engine takes the same
    per-step quantities (DMA loads per operand, compute, write-back) and schedules them on its own
    resources. Totals are per layer; bytes are bytes, cycles are array clock cycles. On a design
    with ``double_buffered: streamed`` memories, ``double_buffered`` says whether this layer runs
    double buffered and ``extra`` holds ``reload_cycles`` / ``reload_bytes`` (the resident tiles'
    exposed reloads, :mod:`simulator.mapping`) and ``reload_operand`` (an ``Operand`` or None).
    """

    name: str
    mode: str                          # "dense" or "N:M"
    mapping: Mapping
    folds: int                         # array folds (stream chunks included)
    compute_cycles: int                # the array alone (SCALE-Sim's count under the scalesim rule)
    dram_read_bytes: dict              # Operand -> bytes read from DRAM (OUTPUT: partial sums re-read)
    dram_write_bytes: float            # outputs (and spilled partial sums) written to DRAM
    compulsory_bytes: float            # every operand once
    sram_read_bytes: dict              # memory name -> bytes read (by the array and by write-back)
    sram_write_bytes: dict             # memory name -> bytes written (fills from DRAM, partial sums)
    sram_port_cycles: float            # the busiest buffer port's time for the array's accesses
    double_buffered: bool
    cycles: int                        # the fast engine's latency, memory included
    executed_macs: int
    effective_macs: int
    weight_loads: int
    meta_sram_read_bytes: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return self.mapping.steps

    @property
    def dram_bytes(self) -> float:
        return sum(self.dram_read_bytes.values()) + self.dram_write_bytes

    @property
    def step_compute_cycles(self) -> float:
        """Compute cycles of one step (the array's, or the SRAM ports' when those are busier)."""
        return max(self.compute_cycles, self.sram_port_cycles) / max(1, self.steps)

    def step_dram_read_bytes(self) -> dict:
        """DRAM bytes one step loads, per operand."""
        return {op: b / max(1, self.steps) for op, b in self.dram_read_bytes.items()}

    @property
    def step_dram_write_bytes(self) -> float:
        return self.dram_write_bytes / max(1, self.steps)


# ------------------------------------------------------------------------------------------ sizes
def _conv_sizes(layer: Layer, a_b: float):
    """(input bytes read from DRAM, halo bytes per cut of m, feature-map pixels per GEMM row / kernel
    positions, batch, the geometry :class:`simulator.mapping.MapProblem` ``conv`` takes for a 2-D
    conv (else ``()``)) of a conv layer's input, or None.

    Only the input pixels some output reads come from DRAM: per spatial dimension the window of the
    outputs, ``(out - 1) x stride + (kernel - 1) x dilation + 1`` positions of the padded input,
    less its padding, which is made on chip (the address generator feeds zeros). A stride-2 3x3
    conv of a 56x56 map reads 56x56, not the 58x58 padded map (whose last row and column no output
    uses) nor 57x57."""
    c = layer.conv
    if c is None:
        return None
    return _conv_geometry(c, int(_fwd_m(layer)), float(a_b))


@lru_cache(maxsize=4096)
def _conv_geometry(c, fwd_m: int, a_b: float):
    """:func:`_conv_sizes` of a conv ``c`` whose forward GEMM has ``fwd_m`` rows (kept per shape: a
    network repeats its convs, and every design plans them again)."""
    used = [max(0, min((int(o) - 1) * int(s) + (int(k) - 1) * int(d) + 1, int(p) + int(i)) - int(p))
            for i, p, k, s, d, o in zip(c.input_size, c.padding, c.kernel, c.stride, c.dilation, c.output_size)]
    out_px = max(1, math.prod(c.output_size))
    batch = max(1, -(-fwd_m // out_px))
    fmap = batch * c.in_channels * math.prod(used)
    halo_rows = max(0, (int(c.kernel[0]) - 1) * int(c.dilation[0]) + 1 - int(c.stride[0]))
    halo = halo_rows * math.prod(used[1:]) * c.in_channels * a_b
    factor = min(1.0, (batch * math.prod(used) / fwd_m) / max(1, math.prod(c.kernel)))
    geo = ()
    if len(c.output_size) == 2 and batch * out_px == fwd_m:
        geo = (batch, *map(int, c.output_size), *map(int, c.input_size), *map(int, c.stride),
               *((int(k) - 1) * int(d) + 1 for k, d in zip(c.kernel, c.dilation)), *map(int, c.padding),
               c.in_channels * a_b, max(1, math.prod(c.kernel)))
    return fmap * a_b, halo, factor, batch, geo


def _fwd_m(layer: Layer) -> int:
    """The forward GEMM's rows (output pixels x batch) of a possibly backward layer."""
    return layer.k if layer.phase is Phase.BACKWARD_WEIGHT else layer.m


# ---------------------------------------------------------------------------------- mask statistics
def _candidates(layer: Layer, acc: Accelerator, dmap: DataflowMap):
    """The modes a layer can run in on ``acc``, with the per-block compressed reduction of each; the
    live columns per block and group, live columns per group, the nonzero count, and a hashable
    summary of all of it. Kept per layer and (block width, sparse support)."""
    comp = acc.compute
    sparse = comp.sparse
    n = layer.gemm_shape[2]
    masks = mask_entry(layer)  # mask statistics cached per layer object (simulator/maskcache.py)
    if dmap.cols == "n":
        bw = comp.cols
    elif dmap.rows == "n":
        bw = comp.rows
    else:
        bw = max(1, n)
    got = masks.derived.get(("candidates", bw, sparse))
    if got is None:
        got = masks.derived[("candidates", bw, sparse)] = _candidates_of(masks, sparse, bw)
    return got


def _candidates_of(masks, sparse, bw: int):
    u8, live_k = masks.u8, masks.live_k   # live_k: k rows with any nonzero, per group
    col_block, n_blocks, live_n = masks.blocks(bw)
    starts = np.arange(n_blocks, dtype=np.int64)[None, :] * bw
    ncols = np.clip(live_n[:, None] - starts, 0, bw)
    nnz = masks.nnz
    dense_k = np.where(ncols > 0, live_k[:, None], 0).astype(np.int64)
    cands = [_Candidate("dense", 0, 0, dense_k, int((live_k * live_n).sum()))]
    if u8 is not None and sparse.zero_handling is ZeroHandling.SKIP:
        strict = sparse.overflow is NmOverflow.DENSE
        for mm in sparse.group_sizes():
            bm, hist = masks.block_max_counts(mm, bw)
            js = np.arange(mm + 1)
            for nn in sparse.ns_for(mm):
                if nn >= mm:
                    continue
                if strict:
                    if hist[nn + 1:].sum() > 0:
                        continue   # a group holds more than N: fixed N:M hardware runs the layer dense
                    kp = np.where(ncols > 0, nn * bm.shape[1], 0).astype(np.int64)
                    stored = int(hist.sum() * nn)
                else:
                    passes = -(-bm // nn)
                    kp = np.where(ncols > 0, nn * passes.sum(axis=1), 0).astype(np.int64)
                    stored = int((hist * nn * (-(-js // nn))).sum())
                cands.append(_Candidate(f"{nn}:{mm}", nn, mm, kp, stored))
    # what a plan depends on of all this (see plan_layer), as a 128-bit digest: a depthwise layer's
    # per-group arrays are long, and plans are kept by the thousand
    h = hashlib.blake2b(digest_size=16)
    for part in (np.asarray(ncols.shape, dtype=np.int64), ncols, live_n):
        h.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
    for c in cands:
        h.update(f"|{c.label}|{c.stored_slots}|{c.kprime.shape}|".encode())
        h.update(np.ascontiguousarray(c.kprime, dtype=np.int64).tobytes())
    stats = (nnz, h.digest())
    for c in cands:
        c.kp_max, c.executed_k = int(c.kprime.max(initial=0)), int((c.kprime * ncols).sum())
        c.sig = (c.kprime.dtype.str, c.kprime.shape, c.kprime.tobytes(), c.stored_slots)
    # live columns over all groups, the most in a group, live blocks over all groups (_LayerSetup)
    sums = (int(live_n.sum()), int(live_n.max(initial=0)), int((ncols > 0).sum()))
    return cands, ncols, live_n, nnz, stats, sums


# ------------------------------------------------------------------------------------------ timing
@jit
def _fold_tiles(kprime, ncols, m_rows, row_dim, col_dim, stream_dim, r, c, preload_rows, overhead, tiles):
    """Over the (group, block)s of a mode and for each stream tile size: the array folds, the sum of
    their cycles, and the stream chunks of the longest block; with the folds before chunking and the
    longest stream. Dimensions are 0 (m), 1 (n), 2 (k); a block's m is ``m_rows``, its k
    ``kprime``, its n ``ncols``; a block with no live column or reduction has no folds. Blocks in a
    row that stream equally long share one pass over the tile sizes (integer sums: exact)."""
    nt = tiles.shape[0]
    folds = np.zeros(nt, dtype=np.int64)
    fold_sum = np.zeros(nt, dtype=np.int64)
    chunks_max = np.ones(nt, dtype=np.int64)
    weight_folds = 0
    longest = 0
    run_t, run_base = -1, 0     # the current run of blocks streaming run_t rows, and their base folds
    for gi in range(kprime.shape[0]):
        for bi in range(kprime.shape[1]):
            kp, nc = kprime[gi, bi], ncols[gi, bi]
            d_rows = m_rows if row_dim == 0 else (nc if row_dim == 1 else kp)
            d_cols = m_rows if col_dim == 0 else (nc if col_dim == 1 else kp)
            t = m_rows if stream_dim == 0 else (nc if stream_dim == 1 else kp)
            longest = max(longest, t)
            base = -(-d_rows // r) * -(-d_cols // c) if (nc > 0 and kp > 0) else 0
            weight_folds += base
            if t == run_t:
                run_base += base
                continue
            if run_t >= 0:
                _fold_run(run_t, run_base, tiles, r, c, preload_rows, overhead, folds, fold_sum, chunks_max)
            run_t, run_base = t, base
    if run_t >= 0:
        _fold_run(run_t, run_base, tiles, r, c, preload_rows, overhead, folds, fold_sum, chunks_max)
    return folds, fold_sum, chunks_max, weight_folds, longest


@jit
def _fold_run(t, base, tiles, r, c, preload_rows, overhead, folds, fold_sum, chunks_max):
    """Add ``base`` folds each streaming ``t`` rows, cut into chunks of every tile size."""
    for ti in range(tiles.shape[0]):
        ts = tiles[ti]
        chunks = max(1, -(-t // ts))
        chunks_max[ti] = max(chunks_max[ti], chunks)
        t_last = t - (chunks - 1) * ts
        per = ((chunks - 1) * fold_time(preload_rows, r, c, ts) + fold_time(preload_rows, r, c, t_last)
               + chunks * overhead)
        folds[ti] += base * chunks
        fold_sum[ti] += base * per


@jit
def _rtl_compute(weight_folds, stream, tile, r, c, load_per_row, stream_per_row, fill_extra, values, counts):
    """:func:`simulator.mapping.rtl_cycles` rounded up to whole cycles (compiled, for :func:`_mode_cost`;
    ``values``/``counts``: scratch arrays of two)."""
    if weight_folds == 0:
        return 0.0
    chunks = -(-stream // tile)
    last = stream - (chunks - 1) * tile
    values[0], values[1] = float(tile), float(last)
    counts[0], counts[1] = chunks - 1, 1
    first = 0 if chunks > 1 else 1
    return np.ceil(_double_buffered_runs(values[first:], counts[first:], weight_folds, float(r), float(c),
                                         load_per_row, stream_per_row, fill_extra) - 1e-9)


@jit
def _mode_cost(kprime, ncols, m_rows, row_dim, col_dim, stream_dim, r, c, preload_rows, overhead, rtl, latency,
               load_per_row, stream_per_row, fill_extra, tiles_m, tiles_n, tiles_k, a_total, a_fold_bytes, w_vals,
               meta_vals, w_fold_mult, psum_stream_bytes, acc_b, op_mem, used, usable, read_bw, write_bw, ports,
               double_buffered, bw, prologue, epilogue, n, k, a_cut_m, a_pass_bytes, a_cut_factor_m,
               a_tile_factor, w_bytes, meta_bytes, w_tile_factor, meta_tile_factor, o_final_bytes,
               psum_bytes, psum_on_chip, size, streamed, groups, dram_first, cut):
    """One mode of one layer, everything that varies with the stream tile size in one compiled call:
    per stream tile candidate the folds and compute cycles (:func:`_fold_tiles`; the ``rtl`` rule,
    or the fold sum minus one plus ``latency``), the array's buffer reads (activation, weight,
    metadata; partial sums written and re-read) and the busiest buffer port's time; then the
    mapper's search (:func:`simulator.mapping.search`) with one unchunked fold's compute.

    Returns (order, tile indices m/n/k, fits, pipeline cycles, DRAM traffic (a, w, meta, out_wr,
    psum_rd), and for the chosen stream tile: compute cycles, folds, activation / weight /
    metadata reads, port cycles; partial-sum writes and reads; the mapping's operand levels and its
    use of ``streamed`` memories, as :func:`simulator.mapping._search` returns them). ``cut``: the
    rank another mode reaches (:func:`simulator.mapping._search`; order -1: this mode loses to it,
    -2: call again with no ``cut``)."""
    tiles = tiles_m if stream_dim == 0 else (tiles_n if stream_dim == 1 else tiles_k)
    folds, fold_sum, chunks, weight_folds, longest = _fold_tiles(kprime, ncols, m_rows, row_dim, col_dim, stream_dim,
                                                                 r, c, preload_rows, overhead, tiles)
    nt = tiles.shape[0]
    compute = np.empty(nt, dtype=np.float64)
    values, counts = np.empty(2, dtype=np.float64), np.empty(2, dtype=np.int64)
    for i in range(nt):
        if rtl:
            # WS: every block streams the same m rows, so the fold sequence is one chunk pattern repeated
            compute[i] = _rtl_compute(weight_folds, longest, tiles[i], r, c, load_per_row, stream_per_row, fill_extra,
                                      values, counts)
        else:
            compute[i] = float(fold_sum[i] - 1) + latency if fold_sum[i] > 0 else 0.0
    # the array's buffer reads per stream tile: A per fold of n (IS: per chunk of n), W and its
    # metadata per fold of m (WS: per stream chunk)
    a_rd = np.empty(nt, dtype=np.float64)
    w_rd = np.empty(nt, dtype=np.float64)
    meta_rd = np.empty(nt, dtype=np.float64)
    for i in range(nt):
        ch = float(chunks[i])
        a_rd[i] = a_total * ch if stream_dim == 1 else a_fold_bytes
        w_mult = ch if stream_dim == 0 else w_fold_mult
        w_rd[i] = w_vals * w_mult
        meta_rd[i] = meta_vals * w_mult
    # partial sums at accumulator width: written per fold of k, re-read by every fold of k after the first;
    # as accesses (for ports that serve whole accesses): one row of partial sums, one per array column
    # (or row) holding n, per streamed step
    wide = c if col_dim == 1 else r
    if stream_dim != 2:
        sw, sr, aw, ar = 0, 0, 0, 0
        for gi in range(kprime.shape[0]):
            for bi in range(kprime.shape[1]):
                nc = ncols[gi, bi]
                if nc > 0:
                    kf = -(-kprime[gi, bi] // r)
                    sw += kf * m_rows * nc
                    sr += max(kf - 1, 0) * m_rows * nc
                    aw += kf * m_rows * -(-nc // wide)
                    ar += max(kf - 1, 0) * m_rows * -(-nc // wide)
        psum_w, psum_r = float(sw) * acc_b, float(sr) * acc_b
        acc_w, acc_r = float(aw), float(ar)
    else:
        psum_w, psum_r = psum_stream_bytes, 0.0
        acc_w, acc_r = float(math.ceil(psum_stream_bytes / (wide * acc_b))), 0.0     # the array drains rows
    # the busiest buffer port: per memory, its operands' reads (A, W, metadata, partial sums) at its
    # read bandwidth, then the partial-sum writes at its write bandwidth (accel.Ports: bandwidth); with
    # ports that serve whole accesses, each partial-sum row read or write takes whole cycles, one
    # read-write port adding them (single), a read and a write port overlapping them (dual)
    port = np.zeros(nt, dtype=np.float64)
    for j in range(usable.shape[0]):
        if not used[j]:
            continue
        for i in range(nt):
            v = 0.0
            if op_mem[0] == j:
                v = v + a_rd[i] / read_bw[j]
            if op_mem[1] == j:
                v = v + w_rd[i] / read_bw[j]
            if op_mem[2] == j:
                v = v + meta_rd[i] / read_bw[j]
            if op_mem[3] == j:
                if ports[j] == 0:
                    v = v + psum_r / read_bw[j] + psum_w / write_bw[j]
                else:
                    rd = acc_r * math.ceil(wide * acc_b / read_bw[j])
                    wr = acc_w * math.ceil(wide * acc_b / write_bw[j])
                    v = v + rd + wr if ports[j] == 1 else max(v + rd, wr)
            port[i] = max(port[i], v)
    one_fold = compute[nt - 1] / max(1, folds[nt - 1])
    o, im, jn, ik, ok, cyc, tr, lv, use = _search(tiles_m, tiles_n, tiles_k, stream_dim, compute, port, m_rows, n, k,
                                         a_cut_m, a_pass_bytes, a_cut_factor_m, a_tile_factor, w_bytes,
                                         meta_bytes, w_tile_factor, meta_tile_factor, o_final_bytes, psum_bytes,
                                         acc_b, psum_on_chip, op_mem, used, usable, double_buffered, bw, prologue,
                                         epilogue, one_fold, size, streamed, groups, dram_first, cut)
    j = im if stream_dim == 0 else (jn if stream_dim == 1 else ik)
    return (o, im, jn, ik, ok, cyc, tr, compute[j], folds[j], a_rd[j], w_rd[j], meta_rd[j], port[j], psum_w,
            psum_r, lv, use)


# ------------------------------------------------------------------------------------------- plan
_PORTS = (Ports.BANDWIDTH, Ports.SINGLE, Ports.DUAL)     # accel.Ports as _mode_cost's codes


@lru_cache(maxsize=256)
def _buffers(memories: tuple):
    """Per buffer set: the memory of each operand, whether all are double buffered, and for the
    mapper the memory index of each operand (activation, weight, metadata, output), which memories
    hold any, their usable bytes and read and write bandwidths, their whole bytes and which are
    ``double_buffered: streamed``."""
    mems = {op: next(mem for mem in memories if op in mem.holds) for op in _OPS}
    names = [mem.name for mem in memories]
    op_mem = np.array([names.index(mems[op].name) for op in _OPS], dtype=np.int64)
    used = np.zeros(len(names), dtype=np.bool_)
    used[op_mem] = True
    usable = np.array([float(mem.usable_bytes) for mem in memories], dtype=np.float64)
    read_bw = np.array([float(mem.read_bw_bytes_per_cycle) for mem in memories], dtype=np.float64)
    write_bw = np.array([float(mem.write_bw_bytes_per_cycle) for mem in memories], dtype=np.float64)
    size = np.array([float(mem.size_bytes) for mem in memories], dtype=np.float64)
    streamed = np.array([mem.streamed for mem in memories], dtype=np.bool_)
    ports = np.array([_PORTS.index(mem.ports) for mem in memories], dtype=np.int64)
    return (mems, all(mem.double_buffered for mem in memories), op_mem, used, usable, read_bw, write_bw, size,
            streamed, ports, bool(streamed.any()))


class _LayerSetup:
    """What every mode of one layer on one design shares (sizes, conv geometry, buffers, constants)."""

    __slots__ = ("comp", "names", "g", "k", "m_rows", "a_b", "w_b", "acc_b", "live_cols", "n_max", "conv", "mems",
                 "double", "op_mem", "used", "usable", "read_bw", "write_bw", "bw", "epilogue", "dims", "a_total",
                 "a_fold_bytes", "w_fold_mult", "psum_stream_bytes", "timing", "rtl", "full", "size", "streamed",
                 "dram_first", "ports", "any_streamed")

    def __init__(self, layer: Layer, acc: Accelerator, dmap: DataflowMap, sums):
        """``sums``: :func:`_candidates`' live columns, widest group and live blocks."""
        comp = self.comp = acc.compute
        self.names = [mem.name for mem in acc.memories]
        self.g, self.k, _ = layer.gemm_shape
        m_rows = self.m_rows = int(layer.m)
        a_b = self.a_b = comp.activation_bits / 8
        # the right operand's bytes per stored value: the layer's own storage (quantized LLM weights
        # with their group scales, a KV cache's bits) or the array's weight width
        self.w_b = comp.weight_bits / 8 if layer.quant is None else layer.quant.bytes_per_value
        acc_b = comp.accumulator_bits / 8
        self.acc_b = acc_b
        self.live_cols, self.n_max, live_blocks = sums
        self.conv = _conv_sizes(layer, a_b)
        (self.mems, self.double, self.op_mem, self.used, self.usable, self.read_bw,
         self.write_bw, self.size, self.streamed, self.ports, self.any_streamed) = _buffers(acc.memories)
        self.bw = acc.dram_bytes_per_cycle
        self.epilogue = comp.rows * comp.cols * comp.accumulator_bits / 8 / self.bw
        self.dims = (DIMS.index(dmap.rows), DIMS.index(dmap.cols), DIMS.index(dmap.stream))
        self.a_total = m_rows * self.k * self.g * a_b
        self.a_fold_bytes = float(live_blocks * m_rows * self.k * a_b)
        m_tile = comp.rows if dmap.rows == "m" else comp.cols
        self.w_fold_mult = float(-(-m_rows // m_tile))
        self.psum_stream_bytes = m_rows * self.live_cols * acc_b
        timing = self.timing = comp.timing
        if timing.fold_overhead_cycles != int(timing.fold_overhead_cycles):
            raise SimulationError(f"accelerator '{acc.name}': compute.timing.fold_overhead_cycles: expected an "
                                  f"integer, got {timing.fold_overhead_cycles!r}")
        self.rtl = timing.model is TimingModel.RTL
        self.dram_first = acc.mapper_objective is MapperObjective.DRAM
        self.full = {"m": int(layer.m), "n": int(layer.n), "k": int(layer.k)}   # before compression


def _map_problem(layer: Layer, dmap: DataflowMap, cand: _Candidate, ls: _LayerSetup) -> MapProblem:
    """The mapper's problem for ``layer`` in mode ``cand`` (what :func:`_mode_plan` searches)."""
    comp = ls.comp
    m_rows, k, a_b, w_b, acc_b = ls.m_rows, ls.k, ls.a_b, ls.w_b, ls.acc_b
    live_cols = ls.live_cols
    kp_max = cand.kp_max
    a_gemm = m_rows * k * ls.g * a_b if live_cols and kp_max else 0.0   # no live column: nothing is read
    a_pass, halo, factor, cut_free, geo = a_gemm, 0.0, 1.0, 0, ()
    o_final = m_rows * live_cols * a_b
    if ls.conv is not None:
        fmap, halo_b, fac, batch, conv = ls.conv
        if layer.phase is Phase.FORWARD:
            a_pass, halo, factor, cut_free = min(fmap, a_gemm), halo_b, fac, batch - 1
            # output pixels streamed: their tiles are rectangles of rows x columns (mapping.a_cut)
            geo = conv if dmap.stream == "m" else ()
        elif layer.phase is Phase.BACKWARD_WEIGHT:
            a_pass, factor = min(fmap, a_gemm), fac   # A^T is the input feature map, read as im2col rows
        else:
            o_final = min(fmap, o_final)              # dX leaves through col2im as the feature map
    meta_bits = comp.sparse.metadata_bits(cand.n, cand.m) if cand.n > 0 else 0.0
    k_ratio = k / kp_max if kp_max else 1.0
    return MapProblem(
        m=m_rows, n=ls.n_max, k=kp_max, groups=ls.g, stream=dmap.stream, row_dim=dmap.rows, col_dim=dmap.cols,
        rows=comp.rows, cols=comp.cols, a_pass_bytes=a_pass, a_halo_bytes=halo, a_cut_free=cut_free,
        a_gemm_bytes=a_gemm, a_tile_factor=a_b * factor * k_ratio, w_bytes=cand.stored_slots * w_b,
        meta_bytes=cand.stored_slots * meta_bits / 8, w_tile_factor=w_b, meta_tile_factor=meta_bits / 8,
        o_final_bytes=o_final, psum_bytes=m_rows * live_cols * acc_b, acc_bytes=acc_b,
        psum_on_chip=(dmap.rows == "k" or dmap.cols == "k") and kp_max > comp.rows, conv=geo)


def _mode_plan(layer: Layer, dmap: DataflowMap, cand: _Candidate, ncols, nnz, ls: _LayerSetup, costs: dict,
               best=None):
    """``(cycles, DRAM bytes, make)`` of ``layer`` in mode ``cand`` with its best mapping, where
    ``make()`` builds its :class:`LayerPlan` (only the chosen mode's is built). ``costs``: the
    layer's :func:`_mode_cost` results so far, by what they depend on of the mode (its compressed
    reduction, stored slots and metadata bits): a 2:4 mask costs the same in 1:4 and 2:4 modes of
    passes hardware, and is costed once. ``best``: the rank (cycles, DRAM bytes; with
    ``mapper.objective: dram`` the other way round) another mode of the layer reaches, or None;
    returns None when this mode's rank is sure to be worse (its search skips what cannot beat it).
    The cost of a mode that loses is kept too: any later rank to beat is no worse than ``best``."""
    comp = ls.comp
    m_rows, a_b, w_b, acc_b = ls.m_rows, ls.a_b, ls.w_b, ls.acc_b
    p = _map_problem(layer, dmap, cand, ls)
    kp_max = p.k
    meta_bytes, meta_tile_factor = p.meta_bytes, p.meta_tile_factor
    gran = {dmap.rows: comp.rows, dmap.cols: comp.cols, dmap.stream: 1}
    size = {"m": m_rows, "n": ls.n_max, "k": kp_max}
    tm_, tn_, tk_ = (m_tile_candidates(p, gran["m"]) if d == "m" else tile_candidates(max(1, size[d]), gran[d])
                     for d in DIMS)
    # what cannot overlap (mapping-independent, so that cutting the stream never pays off by itself):
    # the first fold's stationary tile as loaded (a layer narrower than the array loads only its
    # part), the last fold's outputs, one unchunked fold's compute
    stat_b = {"m": w_b, "n": a_b, "k": 0.0}[dmap.stream] + (meta_tile_factor if dmap.stream == "m" else 0.0)
    prologue = min(comp.rows, ls.full[dmap.rows]) * min(comp.cols, ls.full[dmap.cols]) * stat_b / ls.bw
    timing = ls.timing
    row_dim, col_dim, stream_dim = ls.dims
    sig = (*cand.sig, meta_tile_factor)
    got = costs.get(sig)
    # the other mode's rank in the search's terms: its cycles plus one half (cycles that round to
    # more), or its DRAM bytes (see mapping._search)
    cut = math.inf if best is None else (float(best[0]) if ls.dram_first else best[0] + 0.5)
    while got is None:
        cut_bytes, cut_factor = a_cuts(p, tm_)
        got = costs[sig] = _mode_cost(
            np.ascontiguousarray(cand.kprime, dtype=np.int64), np.ascontiguousarray(ncols, dtype=np.int64), m_rows,
            row_dim, col_dim, stream_dim, int(comp.rows), int(comp.cols), int(comp.rows) if dmap.preload else 0,
            int(timing.fold_overhead_cycles), ls.rtl, float(timing.pipeline_latency_cycles),
            float(timing.weight_load_cycles_per_row), float(timing.stream_cycles_per_row),
            float(timing.fill_drain_extra_cycles), tm_, tn_, tk_, float(ls.a_total), ls.a_fold_bytes,
            float(cand.stored_slots * w_b), float(meta_bytes), ls.w_fold_mult, float(ls.psum_stream_bytes), float(acc_b),
            ls.op_mem, ls.used, ls.usable, ls.read_bw, ls.write_bw, ls.ports, bool(ls.double), float(ls.bw), float(prologue),
            float(ls.epilogue), ls.n_max, kp_max, cut_bytes, float(p.a_pass_bytes), cut_factor,
            float(p.a_tile_factor), float(p.w_bytes), float(meta_bytes), float(w_b),
            float(meta_tile_factor), float(p.o_final_bytes), float(p.psum_bytes), bool(p.psum_on_chip), ls.size,
            ls.streamed, ls.g, ls.dram_first, cut)
        if got[0] == -2:     # nothing costed fits: search again in full
            got, cut = None, math.inf
    if got[0] == -1:
        return None
    o, im, jn, ik, ok, cyc, traffic, compute_j, folds_j, a_rd, w_rd, meta_rd, port, psum_w, psum_r, lv, use = got
    a, w, meta, out_wr, psum_rd = traffic
    compute_cycles = int(compute_j)
    cycles = max(int(math.floor(cyc + 0.5)), compute_cycles)
    dram = 0 + a + w + meta + psum_rd + out_wr     # LayerPlan.dram_bytes, summed in the same order

    def make() -> LayerPlan:
        tm, tn, tk = int(tm_[im]), int(tn_[jn]), int(tk_[ik])
        mapping = Mapping(order=ORDERS[o], tile_m=tm, tile_n=tn, tile_k=tk, count_m=-(-max(1, m_rows) // tm),
                          count_n=-(-max(1, ls.n_max) // tn), count_k=-(-max(1, kp_max) // tk), groups=ls.g,
                          fits=bool(ok), levels=tuple(int(x) for x in lv))
        # buffer bytes: the array's accesses, fills from DRAM, write-back to DRAM
        mems = ls.mems
        rd = dict.fromkeys(ls.names, 0.0)
        wr = dict.fromkeys(rd, 0.0)
        rd[mems[Operand.ACTIVATION].name] += a_rd
        wr[mems[Operand.ACTIVATION].name] += a
        rd[mems[Operand.WEIGHT].name] += w_rd
        wr[mems[Operand.WEIGHT].name] += w
        rd[mems[Operand.METADATA].name] += meta_rd
        wr[mems[Operand.METADATA].name] += meta
        rd[mems[Operand.OUTPUT].name] += psum_r + out_wr
        wr[mems[Operand.OUTPUT].name] += psum_w + psum_rd
        executed = m_rows * cand.executed_k
        double, extra = ls.double, {"n": cand.n, "m": cand.m}
        if ls.any_streamed:
            double, reload, resident = _streamed_buffers(use, ls)
            # the resident tiles' exposed reloads, for the event engine and the tests
            extra.update(reload_cycles=reload, reload_bytes=reload * ls.bw, reload_operand=resident)
        return LayerPlan(
            name=layer.name, mode=cand.label, mapping=mapping, folds=int(folds_j), compute_cycles=compute_cycles,
            dram_read_bytes={Operand.ACTIVATION: a, Operand.WEIGHT: w, Operand.METADATA: meta, Operand.OUTPUT: psum_rd},
            dram_write_bytes=out_wr, compulsory_bytes=p.a_pass_bytes + p.w_bytes + meta_bytes + p.o_final_bytes,
            sram_read_bytes=rd, sram_write_bytes=wr, sram_port_cycles=float(port), double_buffered=double,
            cycles=cycles, executed_macs=executed, effective_macs=m_rows * nnz,
            weight_loads=int(round(cand.stored_slots * float(w_rd / max(p.w_bytes, 1e-30)))) if p.w_bytes else 0,
            meta_sram_read_bytes=float(meta_rd), extra=extra)
    return cycles, dram, make


def _streamed_buffers(use, ls: _LayerSetup):
    """For a design with ``double_buffered: streamed`` memories, how the chosen mapping uses them (the
    search's own account, :func:`simulator.mapping._search`): whether the layer runs double buffered,
    the array cycles the resident tiles' reloads take (0 when none is held once), and the resident
    operand (an :class:`accel.Operand`, or None)."""
    double, resident, reload = bool(use[0]) and ls.double, int(use[1]), float(use[2])
    if not double or reload <= 0.0:
        return double, 0.0, None
    return double, reload, next(op for bit, op in ((1, Operand.ACTIVATION), (8, Operand.OUTPUT),
                                                     (2, Operand.WEIGHT), (4, Operand.METADATA)) if resident & bit)


def plan_layer(layer: Layer, acc: Accelerator, dmap: DataflowMap | None = None) -> LayerPlan:
    """The mode, mapping, per-step compute and traffic of one layer: the one source of truth for the
    fast engine's totals and for the event engine (see :class:`LayerPlan`).

    A plan depends only on the layer's shape, its mask statistics as the array sees them (the
    candidates' compressed reductions and live columns), the array, buffers and DRAM bandwidth, and
    the dataflow; plans are kept per process under that key (:data:`_PLANS`), so repeated layers
    (a ResNet's identical blocks) and repeated designs cost one mapping search."""
    dmap = dmap or DATAFLOWS[acc.compute.dataflow]
    best = _shared_plan(layer, acc, dmap, _design_key(acc, dmap))
    # a copy under this layer's name (callers may keep or change what a plan holds)
    return replace(best, name=layer.name, dram_read_bytes=dict(best.dram_read_bytes),
                   sram_read_bytes=dict(best.sram_read_bytes), sram_write_bytes=dict(best.sram_write_bytes),
                   extra=dict(best.extra))


def _design_key(acc: Accelerator, dmap: DataflowMap):
    """What a plan depends on of the design (see :func:`plan_layer`), hashed once per workload."""
    return _Hashed((acc.compute, acc.memories, acc.dram_bytes_per_cycle, dmap, acc.mapper_objective))


class _Hashed:
    """A key whose hash is computed once (equal when the wrapped keys are equal)."""

    __slots__ = ("key", "hash")

    def __init__(self, key):
        self.key, self.hash = key, hash(key)

    def __hash__(self):
        return self.hash

    def __eq__(self, other):
        return isinstance(other, _Hashed) and self.hash == other.hash and self.key == other.key


def _shared_plan(layer: Layer, acc: Accelerator, dmap: DataflowMap, design) -> LayerPlan:
    """The plan of ``layer`` as kept in :data:`_PLANS` (shared: callers must not change it)."""
    cands, ncols, _, nnz, stats, sums = _candidates(layer, acc, dmap)
    key = (design, int(layer.m), int(layer.n), int(layer.k), int(layer.groups), layer.phase, layer.conv, stats,
           layer.quant)
    best = _PLANS.get(key)
    if best is None:
        ls = _LayerSetup(layer, acc, dmap, sums)
        costs, got, low = {}, [None] * len(cands), None
        # the sparse modes first (they usually win), so that the searches of the modes that lose
        # stop early (_mode_plan's best); which mode is chosen does not depend on this order
        for i in (*range(1, len(cands)), 0):
            r = _mode_plan(layer, dmap, cands[i], ncols, nnz, ls, costs, low)
            if r is not None:
                cycles, dram, make = r
                rank = (dram, cycles) if ls.dram_first else (cycles, dram)
                got[i] = (rank, make)
                low = rank if low is None or rank < low else low
        chosen = None
        for cand, r in zip(cands, got):
            if r is None:
                continue     # its rank is above another's
            # the fewest cycles, then DRAM bytes (mapper.objective: dram: the other way round);
            # ties: dense first (no metadata), then the mode with fewer passes (larger N)
            rank, make = r
            if chosen is None or rank < chosen[0] or (rank == chosen[0] and 0 < chosen[1] < cand.n):
                chosen = (rank, cand.n, make)
        best = chosen[2]()
        _PLANS.put(key, best)
    return best


#: plans per (design, dataflow, layer shape, mask statistics); see :func:`plan_layer`
_PLANS = Lru(8192)


# ------------------------------------------------------------------------------------------ energy
def _energy(plan: LayerPlan, layer: Layer, acc: Accelerator) -> dict:
    comp = acc.compute
    e = acc.energy
    sparse_mode = plan.extra["n"] > 0
    bits = max(comp.activation_bits, comp.weight_bits)
    mac_pj = e.mac(bits, comp.data_type)
    nnz_exec = min(plan.effective_macs, plan.executed_macs)
    zero_exec = plan.executed_macs - nnz_exec
    # a zero slot is gated when the hardware gates zeros, and always in an N:M mode (padding slots
    # of a pass are known from the metadata); dense hardware multiplies zeros like any value
    gated = comp.sparse.zero_handling is ZeroHandling.GATE or sparse_mode
    zero_pj = e.gated_mac(bits, comp.data_type) if gated else mac_pj
    energy_mac = nnz_exec * mac_pj + zero_exec * zero_pj + plan.executed_macs * e.register_pj
    mems = {mem.name: mem for mem in acc.memories}
    meta_mem = acc.memory_for(Operand.METADATA)
    meta_dram = plan.dram_read_bytes[Operand.METADATA]
    energy_meta = (plan.meta_sram_read_bytes * meta_mem.read_energy_pj_per_byte
                   + meta_dram * meta_mem.write_energy_pj_per_byte + meta_dram * acc.dram.energy_pj_per_byte
                   + (plan.executed_macs * e.index_mux_pj if sparse_mode else 0.0))
    energy_sram = 0.0
    for nm, mem in mems.items():
        rd, wr = plan.sram_read_bytes[nm], plan.sram_write_bytes[nm]
        if nm == meta_mem.name:
            rd -= plan.meta_sram_read_bytes
            wr -= meta_dram
        energy_sram += rd * mem.read_energy_pj_per_byte + wr * mem.write_energy_pj_per_byte
    energy_dram = (plan.dram_bytes - meta_dram) * acc.dram.energy_pj_per_byte
    energy_static = e.static_power_w * plan.cycles / comp.clock_hz * 1e12
    return {"energy_pj": energy_mac + energy_sram + energy_dram + energy_meta + energy_static,
            "energy_mac_pj": energy_mac, "energy_sram_pj": energy_sram, "energy_dram_pj": energy_dram,
            "energy_meta_pj": energy_meta, "energy_static_pj": energy_static}


def _density(layer: Layer) -> float:
    """``layer.density``, counted once per layer object."""
    derived = mask_entry(layer).derived
    got = derived.get("density")
    if got is None:
        got = derived["density"] = layer.density
    return got


def _row(plan: LayerPlan, layer: Layer, acc: Accelerator) -> dict:
    g, k, n = layer.gemm_shape
    mp = plan.mapping
    return {
        "name": layer.name, "kind": layer.kind.value, "phase": layer.phase.value, "m": int(layer.m), "n": n, "k": k,
        "groups": g, "pattern": layer.pattern_label, "density": _density(layer), "mode": plan.mode,
        "folds": plan.folds, "cycles": plan.cycles, "compute_cycles": plan.compute_cycles,
        "stall_cycles": plan.cycles - plan.compute_cycles, "macs": layer.macs, "effective_macs": plan.effective_macs,
        "executed_macs": plan.executed_macs, "weight_loads": plan.weight_loads,
        "utilization": plan.effective_macs / (plan.cycles * acc.compute.pes) if plan.cycles else 0.0,
        "sram_bytes": sum(plan.sram_read_bytes.values()) + sum(plan.sram_write_bytes.values()),
        "dram_bytes": plan.dram_bytes, "meta_bytes": plan.dram_read_bytes[Operand.METADATA],
        **_energy(plan, layer, acc),
        "loop_order": mp.order, "tile_m": mp.tile_m, "tile_n": mp.tile_n, "tile_k": mp.tile_k,
        "dram_act_bytes": plan.dram_read_bytes[Operand.ACTIVATION],
        "dram_weight_bytes": plan.dram_read_bytes[Operand.WEIGHT] + plan.dram_read_bytes[Operand.METADATA],
        "dram_out_bytes": plan.dram_write_bytes + plan.dram_read_bytes[Operand.OUTPUT],
        "compulsory_bytes": plan.compulsory_bytes,
        "fits": bool(mp.fits),     # not a column: SimResult.unfit names the layers where it is False
    }


def simulate_layer(layer: Layer, acc: Accelerator, dmap: DataflowMap | None = None) -> dict:
    """One row of :attr:`SimResult.layers`: the layer's :func:`plan_layer` with its energy."""
    return _row(plan_layer(layer, acc, dmap), layer, acc)


def simulate(workload: Workload, accelerator: Accelerator, engine: str = "fast", dataflow=None, trace: bool = False):
    """Simulate every layer of ``workload`` on ``accelerator``; returns a :class:`SimResult`.
    ``engine="event"``: the SimPy model (:mod:`simulator.event`); ``trace`` keeps its timeline."""
    from .result import SimResult
    _check(workload, accelerator, engine)
    accelerator = _with_dataflow(accelerator, dataflow)
    if engine == "event":
        from .event import simulate_event
        return simulate_event(workload, accelerator, dataflow=dataflow, trace=trace)
    if trace:
        raise SimulationError("trace: only engine='event' records a timeline")
    return SimResult.from_rows(_fast_rows(workload, accelerator), accelerator, workload)


def simulate_columns(workload: Workload, accelerator: Accelerator, dataflow=None,
                     unfit: list | None = None) -> tuple[dict, dict]:
    """The fast engine's :func:`simulate` without building pandas objects: ``(columns, totals)``
    where ``columns[c]`` is ``SimResult.layers[c].tolist()`` and ``totals`` is
    ``SimResult.totals_dict()``, value for value and type for type (sweeps store these).
    ``unfit``: a list the names of the layers whose mapping does not fit are appended to
    (``SimResult.unfit``)."""
    _check(workload, accelerator, "fast")
    accelerator = _with_dataflow(accelerator, dataflow)
    rows = _fast_rows(workload, accelerator)
    if unfit is not None:
        unfit.extend(r["name"] for r in rows if r["fits"] is False)
    totals = column_totals(rows, accelerator.compute.pes, accelerator.compute.clock_hz)
    return dict(zip(COLUMNS, column_values(rows, COLUMNS))), totals


def _check(workload, accelerator, engine: str) -> None:
    if engine not in ("fast", "event"):
        raise SimulationError(f"engine: expected 'fast' or 'event', got {engine!r}")
    if not isinstance(workload, Workload):
        raise SimulationError(f"simulate: expected a workloads.Workload, got {type(workload).__name__}")
    if not isinstance(accelerator, Accelerator):
        raise SimulationError(f"simulate: expected an accel.Accelerator, got {type(accelerator).__name__}")
    check_workload(workload)   # sizes the engine counts exactly; an empty workload is an error


def _with_dataflow(accelerator: Accelerator, dataflow) -> Accelerator:
    if dataflow is None:
        return accelerator
    try:
        df = Dataflow(str(dataflow).lower())
    except ValueError:
        raise SimulationError(f"dataflow must be one of ws, os, is; got {dataflow!r}") from None
    return accelerator.with_dataflow(df)   # as a description file would say it (rtl rule: ws only)


def _fast_rows(workload: Workload, accelerator: Accelerator) -> list[dict]:
    """The fast engine's rows, one per layer (inputs checked)."""
    if accelerator.cores is not None and len(accelerator.cores.cores) > 1:
        raise SimulationError(f"accelerator '{accelerator.name}': cores: {len(accelerator.cores.cores)} cores "
                              f"share DRAM; only engine='event' simulates several cores")
    dmap = DATAFLOWS[accelerator.compute.dataflow]
    design = _design_key(accelerator, dmap)
    # the shared plans, read and not kept: no copies
    return [_row(_shared_plan(layer, accelerator, dmap, design), layer, accelerator) for layer in workload.layers]
