"""The fast engine: closed-form timing, traffic and energy per layer, driven by the real masks.

One engine serves every dataflow (see :mod:`simulator.dataflow`). Per layer:

1. **Columns.** Output channels (GEMM columns) whose weights are all zero are removed from the GEMM
   before mapping: channel pruning shrinks the layer on any hardware.
2. **Schedule blocks.** Columns that share one schedule: the columns of a fold when n is on the
   array (WS, OS), all columns when n streams (IS).
3. **Compressed reduction.** In an N:M mode a PE row takes one M-wide group of activations and
   its weight slot picks one of them by index. A group in which a column keeps ``j`` weights needs
   ``max(1, ceil(j / N))`` passes of N slots (a structured unit stores every group, even an empty
   one); the columns of a block share the schedule, so a block's group costs the most any of its
   columns needs. The reduction length of a block is ``K' = sum over groups of N x passes``. Dense
   mode is ``K' = K``. WS and IS map k to rows, so K' sets the row folds; OS streams k, so K'
   shortens the stream.
4. **Mode.** Every mode the hardware has (dense, and each supported N:M when zeros are skipped) is
   costed, memory included; the one with the fewest cycles wins (on ties dense, then the larger N),
   so a sparse mode whose metadata traffic would make a memory-bound layer slower is not chosen. Hardware with no mode that fits a mask runs it dense.
   With ``zero_handling: gate`` zeros take their slot (dense timing) but cost gated-MAC energy.
5. **Folds.** ``folds = ceil(rows_dim / R) x ceil(cols_dim / C)`` per block, each of
   ``fold_cycles(T) + fold_overhead``; compute cycles are their sum minus one (SCALE-Sim's count)
   plus the calibrated pipeline latency. When k is folded (WS, IS) the partial sums of a fold,
   ``T x C`` at accumulator width, must fit the output buffer's share: a longer stream is cut into
   chunks, each its own fold, and the stationary tile is reloaded per chunk. A layer that does not
   fit is tiled, never refused; with buffers that hold it, this is exactly SCALE-Sim's fold count.
   With ``timing.model: rtl`` the folds instead follow the schedule of the double-buffered RTL
   array (``hdl/rtl/nm_array.sv``), whose parameters ``sparsim calibrate`` fits.
6. **Traffic.** An operand is read from SRAM once per fold of each tiled dimension it does not
   contain (A = m x k is re-read per n fold, W = k x n per m fold); outputs are accumulated across
   k folds as partial sums at accumulator width. An operand whose layer footprint fits its share of
   its memory (half of it when double buffered) comes from DRAM once, otherwise every re-read goes
   to DRAM. A conv's activation footprint is its padded input feature map, not the im2col matrix
   (the buffer's address generator expands it). Partial sums stay on chip (see 5); final outputs
   go to DRAM once. N:M weights move compressed (kept slots) with their metadata.
7. **Overlap.** With double buffering a fold takes ``max(compute, DRAM transfer, SRAM transfer)``
   with the layer's traffic spread evenly over its folds, and the first fold's load is exposed;
   without it, transfer and compute add up. ``stall_cycles = cycles - compute_cycles``.
8. **Energy.** Action counts x the accelerator's table: MACs on nonzero weights at full energy,
   executed zero slots at full or gated energy, a register write per executed MAC, an index-mux
   select per executed MAC in N:M modes, SRAM and DRAM bytes, metadata bytes, static power x time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from accel import Accelerator, Dataflow, Operand, TimingModel, ZeroHandling
from workloads import Layer, Workload

from .dataflow import DATAFLOWS, DataflowMap
from .errors import SimulationError
from .kernels import as_u8, block_max_counts, column_blocks, double_buffered_cycles, nonzero_columns

COLUMNS = ["name", "kind", "phase", "m", "n", "k", "groups", "pattern", "density", "mode", "folds", "cycles",
           "compute_cycles", "stall_cycles", "macs", "effective_macs", "executed_macs", "weight_loads", "utilization",
           "sram_bytes", "dram_bytes", "meta_bytes", "energy_pj", "energy_mac_pj", "energy_sram_pj",
           "energy_dram_pj", "energy_meta_pj", "energy_static_pj"]


@dataclass
class _Candidate:
    label: str
    n: int                 # N of the N:M mode (0 for dense)
    m: int                 # M of the mode (0 for dense)
    kprime: np.ndarray     # (groups, blocks) compressed reduction length
    stored_slots: int      # weight values stored (kept slots, over all live columns)


def _share(mem) -> float:
    """Bytes of ``mem`` one operand's working set may use: the usable part split among the operands
    (activation, weight, output) it holds."""
    held = sum(1 for o in (Operand.ACTIVATION, Operand.WEIGHT, Operand.OUTPUT) if o in mem.holds)
    return mem.usable_bytes / max(1, held)


def _unique_activation_elems(layer: Layer) -> int:
    """Distinct activation elements a layer reads: the padded input feature map of a conv (whose
    im2col matrix repeats each element up to kernel-size times), the m x k matrix otherwise."""
    c = layer.conv
    if c is None:
        return layer.m * layer.k * layer.groups
    spatial = math.prod(int(i) + 2 * int(p) for i, p in zip(c.input_size, c.padding))
    batch = max(1, layer.m // max(1, math.prod(c.output_size)))
    return min(batch * c.in_channels * spatial, layer.m * layer.k * layer.groups)


def _timing(dmap: DataflowMap, acc: Accelerator, m_rows: int, kprime: np.ndarray, ncols: np.ndarray,
            t_max: int):
    """Folds and compute cycles per (group, block). The stream is cut into chunks of at most
    ``t_max`` rows (so that a fold's partial sums fit the output buffer); each chunk is a fold."""
    r, c = acc.compute.rows, acc.compute.cols
    dims = {"m": np.full_like(kprime, m_rows), "k": kprime, "n": ncols}
    live = ncols > 0
    base = np.where(live, -(-dims[dmap.rows] // r) * -(-dims[dmap.cols] // c), 0)
    t = dims[dmap.stream]
    chunks = np.maximum(1, -(-t // t_max))
    t_last = t - (chunks - 1) * t_max
    ovh = acc.compute.timing.fold_overhead_cycles
    per_base = ((chunks - 1) * dmap.fold_cycles(r, c, t_max) + dmap.fold_cycles(r, c, t_last) + chunks * ovh)
    return base * chunks, base * per_base, chunks


def simulate_layer(layer: Layer, acc: Accelerator, dmap: DataflowMap) -> dict:
    comp = acc.compute
    sparse = comp.sparse
    g, k, n = layer.gemm_shape
    gm = layer.gemm_mask()
    u8 = None
    if gm is not None:
        u8 = as_u8(gm)
        live = nonzero_columns(u8)
    else:
        live = np.ones((g, n), dtype=bool)
    if dmap.cols == "n":
        bw = comp.cols
    elif dmap.rows == "n":
        bw = comp.rows
    else:
        bw = max(1, n)
    col_block, n_blocks, live_n = column_blocks(live, bw)
    starts = np.arange(n_blocks, dtype=np.int64)[None, :] * bw
    ncols = np.clip(live_n[:, None] - starts, 0, bw)
    nnz = int(np.count_nonzero(u8)) if u8 is not None else g * k * n
    dense_k = np.where(ncols > 0, k, 0).astype(np.int64)
    cands = [_Candidate("dense", 0, 0, dense_k, int(k * live_n.sum()))]
    if u8 is not None and sparse.zero_handling is ZeroHandling.SKIP:
        for mm in sparse.group_sizes():
            bm, hist = block_max_counts(u8, mm, col_block, n_blocks)
            js = np.arange(mm + 1)
            for nn in sparse.ns_for(mm):
                if nn >= mm:
                    continue
                passes = np.maximum(1, -(-bm // nn))
                kp = np.where(ncols > 0, nn * passes.sum(axis=1), 0).astype(np.int64)
                stored = int((hist * nn * np.maximum(1, -(-js // nn))).sum())
                cands.append(_Candidate(f"{nn}:{mm}", nn, mm, kp, stored))
    best = None
    for cand in cands:
        row = _cost(layer, acc, dmap, cand, ncols, live_n, nnz)
        # ties: dense first (no metadata), then the mode with fewer passes (larger N)
        if best is None or row["cycles"] < best[1]["cycles"] or (
                row["cycles"] == best[1]["cycles"] and 0 < best[0].n < cand.n):
            best = (cand, row)
    return best[1]


def _cost(layer: Layer, acc: Accelerator, dmap: DataflowMap, cand: _Candidate, ncols: np.ndarray,
          live_n: np.ndarray, nnz: int) -> dict:
    """Cycles, traffic and energy of ``layer`` run in mode ``cand``."""
    comp = acc.compute
    sparse = comp.sparse
    g, k, n = layer.gemm_shape
    m_rows = int(layer.m)
    acc_b = comp.accumulator_bits / 8
    mem_o = acc.memory_for(Operand.OUTPUT)
    if "k" in dmap.tiled:
        # partial sums of one fold (stream x array columns) must fit the output buffer's share
        t_max = max(1, int(_share(mem_o) // (comp.cols * acc_b)))
    else:
        t_max = 1 << 62
    folds, cyc, chunks = _timing(dmap, acc, m_rows, cand.kprime, ncols, t_max)
    fold_sum = int(cyc.sum())
    timing = comp.timing
    if timing.model is TimingModel.RTL and fold_sum > 0:
        # the double-buffered RTL schedule over the folds in order (WS: the stream is m, one length)
        t = int(m_rows)
        ch = -(-t // t_max)
        pattern = np.array([t_max] * (ch - 1) + [t - (ch - 1) * t_max], dtype=np.float64)
        t_seq = np.tile(pattern, int((folds // np.maximum(chunks, 1)).sum()))
        rtl = double_buffered_cycles(t_seq, comp.rows, comp.cols, timing.weight_load_cycles_per_row,
                                     timing.stream_cycles_per_row, timing.fill_drain_extra_cycles)
        cyc = cyc * (rtl / fold_sum)      # spread over the folds for the memory overlap below
        fold_sum = int(math.ceil(rtl - 1e-9))
    n_folds = int(folds.sum())
    restream = float(chunks.max())  # the stationary operand is reloaded for every chunk of the stream
    if timing.model is TimingModel.RTL:
        compute_cycles = fold_sum      # first input accepted to last output, as the RTL is measured
    else:
        compute_cycles = (fold_sum - 1 + timing.pipeline_latency_cycles) if fold_sum > 0 else 0

    # ---------------------------------------------------------------- traffic (bytes)
    a_b, w_b = comp.activation_bits / 8, comp.weight_bits / 8
    live_cols = int(live_n.sum())
    is_sparse_mode = cand.n > 0
    w_vals = cand.stored_slots * w_b
    meta = cand.stored_slots * sparse.metadata_bits(cand.n, cand.m) / 8 if is_sparse_mode else 0.0
    a_total = m_rows * k * g * a_b            # the GEMM's activation matrix (im2col for convs)
    a_unique = _unique_activation_elems(layer) * a_b  # what DRAM holds: the input feature map
    out_final = m_rows * live_cols * a_b
    tiled = dmap.tiled
    blocks_per_group = (ncols > 0).sum(axis=1)
    n_folds_per_group = blocks_per_group if "n" in tiled else np.minimum(blocks_per_group, 1)
    a_reads = float((n_folds_per_group * m_rows * k * a_b).sum()) if "n" in tiled else a_total * restream
    m_tile = comp.rows if dmap.rows == "m" else comp.cols
    m_folds = -(-m_rows // m_tile) if "m" in tiled else restream
    w_reads, meta_reads = w_vals * m_folds, meta * m_folds
    if "k" in tiled:
        k_folds = np.where(ncols > 0, -(-cand.kprime // comp.rows), 0)
        psum_w = float((k_folds * m_rows * ncols).sum() * acc_b)
        psum_r = float((np.maximum(k_folds - 1, 0) * m_rows * ncols).sum() * acc_b)
    else:
        psum_w, psum_r = m_rows * live_cols * acc_b, 0.0

    mem_a, mem_w = acc.memory_for(Operand.ACTIVATION), acc.memory_for(Operand.WEIGHT)
    mem_meta = acc.memory_for(Operand.METADATA)
    a_dram = a_unique if a_unique <= _share(mem_a) else max(a_unique, a_reads * a_unique / a_total)
    w_fits = (w_vals + meta) <= _share(mem_w)
    w_dram, meta_dram = (w_vals, meta) if w_fits else (w_reads, meta_reads)
    o_dram = out_final
    dram_bytes = a_dram + w_dram + meta_dram + o_dram

    # per-memory bytes moved (reads by the array, writes of fills and partial sums)
    sram_rd = {mem_a.name: 0.0, mem_w.name: 0.0, mem_o.name: 0.0, mem_meta.name: 0.0}
    sram_wr = dict.fromkeys(sram_rd, 0.0)
    sram_rd[mem_a.name] += a_reads
    sram_wr[mem_a.name] += a_dram
    sram_rd[mem_w.name] += w_reads
    sram_wr[mem_w.name] += w_dram
    sram_rd[mem_meta.name] += meta_reads
    sram_wr[mem_meta.name] += meta_dram
    sram_rd[mem_o.name] += psum_r + out_final
    sram_wr[mem_o.name] += psum_w
    sram_bytes = sum(sram_rd.values()) + sum(sram_wr.values())

    # ---------------------------------------------------------------- time with memory
    mems = {mem.name: mem for mem in acc.memories}
    sram_cycles = max((sram_rd[nm] / mems[nm].read_bw_bytes_per_cycle + sram_wr[nm] / mems[nm].write_bw_bytes_per_cycle)
                      for nm in sram_rd)
    dram_cycles = dram_bytes / acc.dram_bytes_per_cycle
    if n_folds == 0:
        cycles = compute_cycles
    elif all(mem.double_buffered for mem in acc.memories):
        d, s = dram_cycles / n_folds, sram_cycles / n_folds
        per_fold = np.where(folds > 0, cyc / np.maximum(folds, 1), 0.0)
        overlapped = float((folds * np.maximum(per_fold, max(d, s))).sum())
        cycles = overlapped + d + (compute_cycles - fold_sum)
    else:
        cycles = compute_cycles + dram_cycles + sram_cycles
    cycles = max(int(math.floor(cycles + 0.5)), compute_cycles)  # whole cycles, rounded

    # ---------------------------------------------------------------- energy (pJ)
    e = acc.energy
    bits = max(comp.activation_bits, comp.weight_bits)
    executed = m_rows * (int((cand.kprime * ncols).sum()))
    nnz_macs = m_rows * nnz
    nnz_executed = min(nnz_macs, executed)
    zero_exec = executed - nnz_executed
    zero_pj = e.gated_mac(bits) if sparse.zero_handling is ZeroHandling.GATE else e.mac(bits)
    energy_mac = nnz_executed * e.mac(bits) + zero_exec * zero_pj + executed * e.register_pj
    energy_meta = (meta_reads * mem_meta.read_energy_pj_per_byte + meta_dram * mem_meta.write_energy_pj_per_byte
                   + meta_dram * acc.dram.energy_pj_per_byte + (executed * e.index_mux_pj if is_sparse_mode else 0.0))
    energy_sram = 0.0
    for nm in sram_rd:
        rd, wr = sram_rd[nm], sram_wr[nm]
        if nm == mem_meta.name:
            rd -= meta_reads
            wr -= meta_dram
        energy_sram += rd * mems[nm].read_energy_pj_per_byte + wr * mems[nm].write_energy_pj_per_byte
    energy_dram = (dram_bytes - meta_dram) * acc.dram.energy_pj_per_byte
    energy_static = e.static_power_w * cycles / comp.clock_hz * 1e12
    energy = energy_mac + energy_sram + energy_dram + energy_meta + energy_static
    return {
        "name": layer.name, "kind": layer.kind.value, "phase": layer.phase.value, "m": m_rows, "n": n, "k": k,
        "groups": g, "pattern": layer.pattern_label, "density": layer.density, "mode": cand.label,
        "folds": n_folds, "cycles": cycles, "compute_cycles": compute_cycles, "stall_cycles": cycles - compute_cycles,
        "macs": layer.macs, "effective_macs": nnz_macs, "executed_macs": executed,
        "weight_loads": int(round(cand.stored_slots * m_folds)),
        "utilization": nnz_macs / (cycles * comp.pes) if cycles else 0.0,
        "sram_bytes": sram_bytes, "dram_bytes": dram_bytes, "meta_bytes": meta_dram,
        "energy_pj": energy, "energy_mac_pj": energy_mac, "energy_sram_pj": energy_sram,
        "energy_dram_pj": energy_dram, "energy_meta_pj": energy_meta, "energy_static_pj": energy_static,
        # what the event engine replays (simulator.event.layer_plan); not a result column
        "_plan": {"folds": folds, "fold_cycles": cyc, "fold_sum": fold_sum, "sram_cycles": sram_cycles,
                  "load_bytes": {Operand.ACTIVATION: a_dram, Operand.WEIGHT: w_dram, Operand.METADATA: meta_dram},
                  "store_bytes": o_dram},
    }


def simulate(workload: Workload, accelerator: Accelerator, engine: str = "fast", dataflow=None, trace: bool = False):
    """Simulate every layer of ``workload`` on ``accelerator``; returns a :class:`SimResult`.
    ``engine="event"``: the SimPy model (:mod:`simulator.event`); ``trace`` keeps its timeline."""
    from .result import SimResult
    if engine not in ("fast", "event"):
        raise SimulationError(f"engine: expected 'fast' or 'event', got {engine!r}")
    if not isinstance(workload, Workload):
        raise SimulationError(f"simulate: expected a workloads.Workload, got {type(workload).__name__}")
    if not isinstance(accelerator, Accelerator):
        raise SimulationError(f"simulate: expected an accel.Accelerator, got {type(accelerator).__name__}")
    if dataflow is not None:
        try:
            accelerator = accelerator.with_dataflow(Dataflow(str(dataflow).lower()))
        except ValueError:
            raise SimulationError(f"dataflow must be one of ws, os, is; got {dataflow!r}") from None
    if engine == "event":
        from .event import simulate_event
        return simulate_event(workload, accelerator, dataflow=dataflow, trace=trace)
    if trace:
        raise SimulationError("trace: only engine='event' records a timeline")
    if accelerator.cores is not None and len(accelerator.cores.cores) > 1:
        raise SimulationError(f"accelerator '{accelerator.name}': cores: {len(accelerator.cores.cores)} cores "
                              f"share DRAM; only engine='event' simulates several cores")
    dmap = DATAFLOWS[accelerator.compute.dataflow]
    rows = [simulate_layer(layer, accelerator, dmap) for layer in workload.layers]
    return SimResult.from_rows(rows, accelerator, workload)
