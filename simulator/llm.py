"""LLM inference on an accelerator: prefill, decode with the KV cache, per-token latency and energy.

A run is a prefill of ``P`` prompt tokens at batch ``B`` (its time is the **time to first token**,
TTFT), then ``G`` decode steps; step ``i`` (``1..G``) feeds one token per sequence whose attention
reads ``L_i = P + i`` keys (the cache holds the prompt and the ``i - 1`` tokens before it; the
token's own K and V, written by its ``k_proj`` / ``v_proj``, are read with them). The **time per
output token** (TPOT) is a decode step's time: its mean over the ``G`` steps and at the last one
(``L = P + G``).

Costs, per phase (workloads from :class:`workloads.llm.LlmModel`):

* **Weight layers** (projections, MLP, experts, LM head) are costed by the fast engine
  (:func:`simulator.engine.simulate_layer`): their mask (N:M compressed values + metadata), their
  storage (``Layer.quant``: weight bits with group scales) and the accelerator decide cycles, bytes
  and energy. In decode they do not depend on ``L``: a step's weight layers cost the same at every
  step (MoE expert layers depend on the step's routing; they are costed per (layer, token count)
  and summed over the steps).
* **Prefill attention** is two GEMMs per block on the engine, their right operand K / V at the KV
  cache's bits.
* **Decode attention** streams the KV cache: per block and step, K and V of ``B x kv_heads``
  heads, ``L x head_dim`` values each, are read once (GQA: once per KV head, shared by its query
  heads), and the ``g`` query rows of each KV head stream past them. With ``E(L) = 2 B kv_heads L
  head_dim`` KV values, the array holds ``R x C`` of them per fold and spends the accelerator's fold
  time on each (``max(R x weight_load_cycles_per_row, g x stream_cycles_per_row)`` under the rtl
  rule, whose double-buffered loads overlap the stream; ``2R + C + g - 2`` (WS, IS) or ``R + C + g - 2``
  (OS) under SCALE-Sim's), so compute cycles ``c(L) = E(L) / (R C) x fold``; DRAM bytes ``b(L) = E(L)
  x kv_bytes + 2 B heads head_dim x act_bytes`` (the query in, the output out); the step takes
  ``max(c(L), b(L) / bandwidth)`` cycles, as the engine's double-buffered pipeline does. Both
  terms are **affine in L**, so their maximum is affine on each side of the one crossing point, and
  the sum over ``L = P+1 .. P+G`` is two arithmetic series (:func:`sum_max_affine`), exact; energy
  (MACs, SRAM and DRAM bytes, all affine; static power x the exact time) sums the same way.
  ``tests/test_llm.py`` checks the aggregate against costing every step.

Per output token: energy and DRAM bytes of the decode phase divided by ``B x G``; tokens/s is
``B / mean TPOT`` (decode throughput). The decode **bound** is ``compute`` when the array's cycles
exceed the DRAM time over the whole decode, else ``weights`` or ``KV``, whichever moves more bytes.

The K/V projections' outputs, the new cache entries, are written to DRAM at the KV cache's bits
(:func:`kv_output_columns`), not at the array's activation width.

**On-chip residency** (``on_chip=True``, ``sparsim llm --on-chip``; off by default): what fits of
the weights, then of the KV cache, stays in the weight buffer from one decode step to the next and
is not read from DRAM again (policy: :class:`Residency`). Off, every step reads all of them from
DRAM (the shipped presets' buffers hold under 1 % of a 1B model). It is off by default because it
couples the layers: a layer's decode cost then depends on which other layers are pinned, and the
per-layer tables of the searches need rows that do not.

Not modelled (named, not silently zero): non-GEMM work (norms, softmax, rotary embeddings, the
embedding lookup).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from accel import Accelerator, Operand, TimingModel
from workloads import Layer, LayerKind, Phase, Workload
from workloads.llm import LlmModel, check_run

from .dataflow import DATAFLOWS
from .engine import _check, simulate_layer
from .errors import SimulationError

#: per-step quantities of a cost (sums over layers); energies in pJ, bytes, array cycles
_KEYS = ("cycles", "compute_cycles", "dram_bytes", "weight_bytes", "kv_bytes", "energy_pj", "macs")


@dataclass
class Cost:
    """Summed cycles, bytes and energy of some layers over some steps (see :data:`_KEYS`)."""

    cycles: float = 0.0
    compute_cycles: float = 0.0
    dram_bytes: float = 0.0
    weight_bytes: float = 0.0
    kv_bytes: float = 0.0
    energy_pj: float = 0.0
    macs: float = 0.0

    def add(self, other: "Cost", times: float = 1.0) -> "Cost":
        for k in _KEYS:
            setattr(self, k, getattr(self, k) + times * getattr(other, k))
        return self

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in _KEYS}


@dataclass
class LlmRun:
    """One (batch, prompt, generate) point: the issue's columns and the phases' totals.

    ``layers``: per-layer rows (phase, name, per-step cycles / energy / DRAM bytes, how many blocks
    a row stands for), for ``sparsim llm --layers``."""

    model: str
    accelerator: str
    batch: int
    prompt: int
    generate: int
    ttft_s: float
    tpot_mean_s: float
    tpot_last_s: float
    tokens_per_s: float
    energy_per_token_j: float
    dram_bytes_per_token: float
    bound: str
    prefill: Cost
    decode: Cost
    last_step: Cost
    layers: list = field(default_factory=list, repr=False)
    #: layers whose mapping does not fit the buffers at some step (see ``SimResult.unfit``)
    unfit: tuple = ()

    def row(self) -> dict:
        """The issue's columns, in order."""
        return {"model": self.model, "accelerator": self.accelerator, "batch": self.batch, "prompt": self.prompt,
                "generate": self.generate, "ttft_s": self.ttft_s, "tpot_mean_s": self.tpot_mean_s,
                "tpot_last_s": self.tpot_last_s, "tokens_per_s": self.tokens_per_s,
                "energy_per_token_j": self.energy_per_token_j, "dram_bytes_per_token": self.dram_bytes_per_token,
                "bound": self.bound}


# ------------------------------------------------------------------------------------ affine sums
def sum_affine(a: float, b: float, lo: int, hi: int) -> float:
    """``sum(a + b L for L in lo..hi)`` (0 when ``hi < lo``)."""
    n = hi - lo + 1
    if n <= 0:
        return 0.0
    return n * a + b * (lo + hi) * n / 2.0


def sum_max_affine(p: tuple[float, float], q: tuple[float, float], lo: int, hi: int) -> float:
    """``sum(max(p0 + p1 L, q0 + q1 L) for L in lo..hi)``, exactly: the two lines cross at most
    once, so the range splits into at most two runs where one line is the larger."""
    if hi < lo:
        return 0.0
    (a0, a1), (b0, b1) = p, q
    if a1 == b1:
        return sum_affine(max(a0, b0), a1, lo, hi)
    x = (b0 - a0) / (a1 - b1)     # crossing point; above it the steeper line wins
    steep, flat = ((a0, a1), (b0, b1)) if a1 > b1 else ((b0, b1), (a0, a1))
    cut = min(hi, max(lo - 1, math.floor(x)))   # L <= cut: the flatter line is the larger (or equal)
    return sum_affine(flat[0], flat[1], lo, cut) + sum_affine(steep[0], steep[1], cut + 1, hi)


def sum_max_lines(lines, lo: int, hi: int) -> float:
    """``sum(max(a + b L for (a, b) in lines) for L in lo..hi)``, exactly: the maximum of lines is
    convex and piecewise affine; between consecutive crossing points one line is the largest, so
    the range splits into runs, each an arithmetic series."""
    if hi < lo:
        return 0.0
    cuts = {lo - 1, hi}
    for i, (a0, a1) in enumerate(lines):
        for b0, b1 in lines[i + 1:]:
            if a1 != b1:
                x = math.floor((b0 - a0) / (a1 - b1))
                if lo <= x < hi:
                    cuts.add(x)
    total = 0.0
    edges = sorted(cuts)
    for a, b in zip(edges, edges[1:]):     # the run L = a+1 .. b
        mid = (a + 1 + b) / 2.0
        top = max(lines, key=lambda ln: ln[0] + ln[1] * mid)
        total += sum_affine(top[0], top[1], a + 1, b)
    return total


# ------------------------------------------------------------------------------------ decode attention
@dataclass(frozen=True)
class KvModel:
    """Decode attention of one block at KV length ``L`` as affine functions ``(intercept, slope)``:
    compute cycles, DRAM bytes (all), KV bytes, MACs, and energy without static power (pJ)."""

    compute: tuple[float, float]
    dram: tuple[float, float]
    kv: tuple[float, float]
    macs: tuple[float, float]
    energy: tuple[float, float]
    bw: float             # DRAM bytes per cycle
    static_pj_per_cycle: float
    #: KV bytes of this block held on chip across steps (see :class:`Residency`): the first ones
    #: of the cache, read from the buffer; only the rest, ``max(0, kv(L) - resident)``, streams
    resident: float = 0.0
    dram_pj_per_byte: float = 0.0

    def time(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The compute line and the DRAM-time line with nothing of the cache on chip."""
        return self.compute, (self.dram[0] / self.bw, self.dram[1] / self.bw)

    def _streamed(self) -> tuple[float, float]:
        """``max(0, kv(L) - resident)`` is ``max`` of the line ``(-resident, kv slope)`` and 0."""
        return (self.kv[0] - self.resident, self.kv[1])

    def at(self, kv_len: int) -> Cost:
        """The cost at one KV length."""
        f = lambda ab: ab[0] + ab[1] * kv_len  # noqa: E731
        kv = max(0.0, f(self._streamed()))
        dram = self.dram[0] + kv
        cyc = max(f(self.compute), dram / self.bw)
        kept = f(self.kv) - kv           # read from the buffer, not from DRAM
        return Cost(cycles=cyc, compute_cycles=f(self.compute), dram_bytes=dram, kv_bytes=kv,
                    energy_pj=f(self.energy) - kept * self.dram_pj_per_byte + self.static_pj_per_cycle * cyc,
                    macs=f(self.macs))

    def total(self, lo: int, hi: int) -> Cost:
        """The cost summed over ``L = lo..hi``, exactly (see :func:`sum_max_lines`): the time is the
        maximum of the compute line, the DRAM time with nothing of the cache streamed (the query
        and output) and with the streamed part."""
        s = lambda ab: sum_affine(ab[0], ab[1], lo, hi)  # noqa: E731
        st = self._streamed()
        kv = sum_max_affine((0.0, 0.0), st, lo, hi)
        q0 = self.dram[0] / self.bw
        cyc = sum_max_lines([self.compute, (q0, 0.0), (q0 + st[0] / self.bw, st[1] / self.bw)], lo, hi)
        kept = s(self.kv) - kv
        return Cost(cycles=cyc, compute_cycles=s(self.compute), dram_bytes=self.dram[0] * (hi - lo + 1) + kv,
                    kv_bytes=kv, energy_pj=s(self.energy) - kept * self.dram_pj_per_byte
                    + self.static_pj_per_cycle * cyc, macs=s(self.macs))


def kv_model(model: LlmModel, acc: Accelerator, batch: int, resident: float = 0.0) -> KvModel:
    """The decode-attention model of one block of ``model`` at ``batch`` on ``acc`` (module
    docstring); ``resident``: the block's KV bytes held on chip (:class:`Residency`)."""
    s = model.shape
    comp = acc.compute
    r, c = comp.rows, comp.cols
    g, d = s.q_per_kv, s.head_dim
    per_l = 2.0 * batch * s.kv_heads * d              # KV values read per key position
    kv_b = model.kv.bytes_per_value
    a_b = comp.activation_bits / 8
    t = comp.timing
    if t.model is TimingModel.RTL:
        fold = max(r * t.weight_load_cycles_per_row, g * t.stream_cycles_per_row)
    else:
        fold = float(DATAFLOWS[comp.dataflow].fold_cycles(r, c, g)) + t.fold_overhead_cycles
    compute = (0.0, per_l / (r * c) * fold)
    qo = 2.0 * batch * s.heads * d * a_b
    kv = (0.0, per_l * kv_b)
    dram = (qo, per_l * kv_b)
    macs = (0.0, 2.0 * batch * s.heads * d)
    e = acc.energy
    bits = max(comp.activation_bits, comp.weight_bits)
    mac_pj = e.mac(bits, comp.data_type) + e.register_pj
    wmem = acc.memory_for(Operand.WEIGHT)
    amem, omem = acc.memory_for(Operand.ACTIVATION), acc.memory_for(Operand.OUTPUT)
    kv_sram_pj = wmem.write_energy_pj_per_byte + wmem.read_energy_pj_per_byte   # into the buffer, out to the array
    q_pj = batch * s.heads * d * a_b * (amem.write_energy_pj_per_byte + amem.read_energy_pj_per_byte
                                        + omem.write_energy_pj_per_byte + omem.read_energy_pj_per_byte)
    dram_pj = acc.dram.energy_pj_per_byte
    energy = (q_pj + qo * dram_pj, macs[1] * mac_pj + kv[1] * (kv_sram_pj + dram_pj))
    static = e.static_power_w / comp.clock_hz * 1e12
    return KvModel(compute=compute, dram=dram, kv=kv, macs=macs, energy=energy, bw=acc.dram_bytes_per_cycle,
                   static_pj_per_cycle=static, resident=float(resident), dram_pj_per_byte=dram_pj)


# ------------------------------------------------------------------------------------ weight layers
@dataclass(frozen=True)
class Residency:
    """What stays in the on-chip buffer from one decode step to the next.

    Policy: the buffer that holds the weights (and the KV cache, the right operand of decode
    attention) keeps ``capacity_bytes`` of data across steps: its ``usable_bytes``, i.e. half of a
    double-buffered memory, the other half being left to the tiles of what still streams (the whole
    of a single-buffered one). The prefill reads every weight and writes the prompt's cache, so
    the buffer is filled then. **Weights first**: the blocks' non-expert weight layers, in the
    model's order, then the LM head, are pinned whole until the next one no longer fits, which
    is pinned in part (a traced layer stands for all its blocks: a fraction of their bytes);
    experts are not pinned (each step uses another subset). **Then the KV cache**, with what is
    left, shared equally by the blocks: each block keeps the first ``kv_bytes / layers`` bytes of
    its cache. A pinned byte is read from the buffer at every step instead of DRAM; new K/V
    entries are still written through to DRAM. Weights come first because they are read at every
    step and never move; the cache grows, so once it no longer fits its excess streams while the
    weights stay.

    ``pinned``: weight layer name -> the fraction of its bytes (over all its blocks) kept on chip."""

    capacity_bytes: float
    weight_bytes: float
    kv_bytes: float
    pinned: Mapping[str, float]


class _Rows:
    """Engine rows of layers, cached by (layer object, m, phase) for one accelerator; with
    ``on_chip``, decode rows with the pinned part of their weights read from the buffer."""

    def __init__(self, acc: Accelerator, model: LlmModel, on_chip: bool = False):
        self.acc, self.model, self.on_chip = acc, model, on_chip
        self.res: dict = {}
        self.pinned_costs: dict = {}
        self.cache: dict = {}
        self.unfit: dict = {}        # names of the layers whose mapping did not fit, in order
        # the model's own layer objects: their mask statistics are computed once and shared
        self.templates = {l.name: l for l in model.weight_layers()}
        hw = acc.compute.sparse
        self.act = getattr(hw, "activation", None)
        self.act = getattr(self.act, "value", self.act) or "none"
        self.kv_cols = {l.name: kv_output_columns(l, model.shape) for l in model.weight_layers()}

    def cost(self, layer: Layer, m: int, phase: Phase) -> tuple[Cost, dict]:
        key = (layer.name, int(m), phase)     # names are unique within a model
        got = self.cache.get(key)
        if got is None:
            src = self.templates.get(layer.name, layer)
            # the engine's plan depends on the phase only for convolutions and weight gradients: a
            # prefill GEMM and a decode GEMM of the same rows are one problem, so they share one
            # mapping search (the LM head runs B rows in both phases)
            ph = src.replace(m=int(m), phase=Phase.DECODE)
            _share_stats(src, ph)
            density = 1.0
            if phase is Phase.DECODE and layer.kind is LayerKind.LINEAR and self.act != "none":
                if self.act == "skip":
                    ph = _skip_rows(ph, self.model.input_rows(layer.name, int(m)))
                else:
                    density = self.model.input_density(layer.name)
            row = simulate_layer(ph, self.acc)
            if row.get("fits") is False:
                self.unfit[layer.name] = None
            if density < 1.0:     # gating hardware: a zero input's MACs run gated
                e = self.acc.energy
                bits = max(self.acc.compute.activation_bits, self.acc.compute.weight_bits)
                saved = min(row["effective_macs"], row["executed_macs"]) * (1.0 - density) * (
                    e.mac(bits, self.acc.compute.data_type) - e.gated_mac(bits, self.acc.compute.data_type))
                row = {**row, "energy_mac_pj": row["energy_mac_pj"] - saved, "energy_pj": row["energy_pj"] - saved}
            is_kv = layer.kind is LayerKind.ATTENTION
            w = row["dram_weight_bytes"]
            cost = Cost(cycles=float(row["cycles"]), compute_cycles=float(row["compute_cycles"]),
                        dram_bytes=float(row["dram_bytes"]), weight_bytes=0.0 if is_kv else float(w),
                        kv_bytes=float(w) if is_kv else 0.0, energy_pj=float(row["energy_pj"]),
                        macs=float(row["macs"]))
            n_kv = self.kv_cols.get(layer.name, 0)
            if n_kv:
                _write_kv_at_kv_bits(cost, int(m) * n_kv, self.acc, self.model.kv.bytes_per_value)
            got = (cost, row)
            self.cache[key] = got
        return got


    def residency(self, batch: int) -> Residency:
        """The on-chip residency of a decode step at ``batch`` (:class:`Residency`)."""
        got = self.res.get(batch)
        if got is None:
            model = self.model
            cap = float(self.acc.memory_for(Operand.WEIGHT).usable_bytes) if self.on_chip else 0.0
            left, pinned = cap, {}
            head = {l.name for l in model.head}
            for l in model.weight_layers():
                if l.name in model.experts or left <= 0:
                    continue
                w = self.cost(l, batch, Phase.DECODE)[0].weight_bytes * (1.0 if l.name in head else model.scale)
                if w > 0:
                    f = min(1.0, left / w)
                    pinned[l.name] = f
                    left = max(0.0, left - f * w)
            got = self.res[batch] = Residency(capacity_bytes=cap, weight_bytes=cap - left, kv_bytes=left,
                                              pinned=pinned)
        return got

    def decode(self, layer: Layer, batch: int) -> Cost:
        """A non-expert weight layer's decode step at ``batch`` with its pinned weights on chip: its
        DRAM weight bytes (and their DRAM energy) shrink by the pinned fraction; a layer bound by its
        DRAM traffic loses their time, never below its compute."""
        key = (layer.name, batch)
        got = self.pinned_costs.get(key)
        if got is None:
            raw = self.cost(layer, batch, Phase.DECODE)[0]
            f = self.residency(batch).pinned.get(layer.name, 0.0)
            got = raw
            if f > 0:
                kept = f * raw.weight_bytes
                got = Cost().add(raw)
                got.dram_bytes -= kept
                got.weight_bytes -= kept
                got.energy_pj -= kept * self.acc.dram.energy_pj_per_byte
                if got.cycles > got.compute_cycles:
                    got.cycles = max(got.compute_cycles, got.cycles - kept / self.acc.dram_bytes_per_cycle)
            self.pinned_costs[key] = got
        return got

    def kv_resident(self, batch: int) -> float:
        """KV bytes each block keeps on chip at ``batch``."""
        return self.residency(batch).kv_bytes / self.model.shape.layers


def kv_output_columns(layer: Layer, shape) -> int:
    """How many of ``layer``'s output columns are new K and V entries of the cache: all of a
    ``k_proj`` / ``v_proj``, the K and V part of a fused QKV projection (GPT-2's ``c_attn``,
    ``qkv_proj``), none of any other layer."""
    name = layer.name.rsplit(".", 1)[-1]
    kv = shape.kv_heads * shape.head_dim
    if name in ("k_proj", "v_proj") and layer.n == kv:
        return kv
    if name in ("c_attn", "qkv_proj", "query_key_value") and layer.n == (shape.heads + 2 * shape.kv_heads) * shape.head_dim:
        return 2 * kv
    return 0


def _write_kv_at_kv_bits(cost: Cost, values: int, acc: Accelerator, kv_bytes: float) -> None:
    """The K/V projection's ``values`` new cache entries leave for DRAM at the KV cache's bits, not
    at the array's activation width (the engine writes every output at the latter): change the
    DRAM bytes and their energy by the difference, count the write as KV traffic, and the time:
    a layer bound by its DRAM traffic (``cycles > compute_cycles``) gains or loses those bytes'
    time, never below its compute; a compute-bound one only if the new traffic no longer hides
    under its compute."""
    a_b = acc.compute.activation_bits / 8
    delta = values * (kv_bytes - a_b)            # > 0 when the cache is wider than the activations
    bw = acc.dram_bytes_per_cycle
    cost.dram_bytes += delta
    cost.kv_bytes += values * kv_bytes
    cost.energy_pj += delta * acc.dram.energy_pj_per_byte
    if cost.cycles > cost.compute_cycles:
        cost.cycles = max(cost.compute_cycles, cost.cycles + delta / bw)
    else:
        cost.cycles = max(cost.cycles, cost.dram_bytes / bw)


def _share_stats(template: Layer, new: Layer) -> None:
    from .maskcache import share
    share(template, new)


def _skip_rows(layer: Layer, rows) -> Layer:
    """``layer`` without the weight rows (reduction index k) whose input is zero for the whole batch:
    hardware that skips zero activations never loads or multiplies them."""
    if rows is None or rows.all():
        return layer
    gm = layer.gemm_mask()
    g, k, n = layer.gemm_shape
    keep = np.broadcast_to(rows[None, :, None], (g, k, n))
    gm = keep.copy() if gm is None else (gm & keep)
    return layer.with_gemm_mask(gm, layer.pattern)


# ------------------------------------------------------------------------------------ phases
def prefill_cost(model: LlmModel, acc: Accelerator, batch: int, prompt: int, rows: _Rows | None = None,
                 detail: list | None = None) -> Cost:
    """The prefill's cost (the traced blocks scaled to the model's, then the head)."""
    rows = rows or _Rows(acc, model)
    wl = model.prefill(batch, prompt)
    return _phase_cost(wl, model, rows, Phase.PREFILL, detail)


def _phase_cost(wl: Workload, model: LlmModel, rows: _Rows, phase: Phase, detail) -> Cost:
    head = {l.name for l in model.head}
    total = Cost()
    for l in wl.layers:
        cost, row = rows.cost(l, l.m, phase)
        times = 1.0 if l.name in head else model.scale
        total.add(cost, times)
        if detail is not None:
            detail.append(_detail(phase, l, cost, times, row.get("mode", "-")))
    return total


def _detail(phase: Phase, layer: Layer, cost: Cost, times: float, mode: str) -> dict:
    return {"phase": phase.value, "name": layer.name, "kind": layer.kind.value, "m": int(layer.m), "n": int(layer.n),
            "k": int(layer.k), "groups": int(layer.groups), "pattern": layer.pattern_label,
            "bits": "-" if layer.quant is None else str(layer.quant), "mode": mode, "times": times,
            "cycles": cost.cycles, "dram_bytes": cost.dram_bytes, "energy_pj": cost.energy_pj}


def decode_step_cost(model: LlmModel, acc: Accelerator, batch: int, kv_len: int, step: int = 0,
                     rows: _Rows | None = None, detail: list | None = None, on_chip: bool = False) -> Cost:
    """One decode step at KV length ``kv_len`` (``step``: 0-based, picks the MoE routing): the
    reference the aggregate of :func:`decode_cost` is tested against. ``on_chip``: keep what fits
    of the weights and the cache in the buffer across steps (:class:`Residency`)."""
    rows = rows or _Rows(acc, model, on_chip)
    wl = model.decode_step(batch, kv_len, step)
    km = kv_model(model, acc, batch, rows.kv_resident(batch))
    head = {l.name for l in model.head}
    total = Cost()
    for l in wl.layers:
        times = 1.0 if l.name in head else model.scale
        if l.kind is LayerKind.ATTENTION:
            if l.name.endswith(".qk"):      # the two GEMMs of a block, costed together by the KV model
                cost = km.at(kv_len)
                total.add(cost, times)
                if detail is not None:
                    detail.append(_detail(Phase.DECODE, l.replace(name=l.name[:-3] + ".kv"), cost, times, "kv"))
            continue
        cost, row = rows.cost(l, l.m, Phase.DECODE)
        if l.name not in model.experts:
            cost = rows.decode(l, batch)
        total.add(cost, times)
        if detail is not None:
            detail.append(_detail(Phase.DECODE, l, cost, times, row.get("mode", "-")))
    return total


def decode_cost(model: LlmModel, acc: Accelerator, batch: int, prompt: int, generate: int,
                rows: _Rows | None = None, on_chip: bool = False) -> Cost:
    """All ``generate`` decode steps after a ``prompt``-token prefill, aggregated exactly: the
    weight layers of one step times the steps (experts: per step's routing), plus the attention
    summed over ``L = prompt+1 .. prompt+generate`` in closed form (with the cache's resident
    part, :class:`Residency`, a maximum of three lines)."""
    rows = rows or _Rows(acc, model, on_chip)
    total = Cost()
    head = {l.name for l in model.head}
    for l in model.weight_layers():
        if l.name in model.experts:
            continue
        total.add(rows.decode(l, batch), generate * (1.0 if l.name in head else model.scale))
    if model.experts:
        total.add(_expert_steps(model, rows, batch, generate))
    attn = kv_model(model, acc, batch, rows.kv_resident(batch)).total(prompt + 1, prompt + generate)
    return total.add(attn, len(model.blocks) * model.scale)


def _expert_steps(model: LlmModel, rows: _Rows, batch: int, generate: int) -> Cost:
    """The experts' GEMMs over ``generate`` steps, each step's tokens routed as the model says."""
    total = Cost()
    for bi, block in enumerate(model.blocks):
        ex = [l for l in block if l.name in model.experts]
        if not ex:
            continue
        uses = np.zeros((model.shape.experts, batch + 1), dtype=np.int64)   # steps with c tokens, per expert
        for s in range(generate):
            c = model.expert_counts(bi, batch, s)
            uses[np.arange(len(c)), c] += 1
        for l in ex:
            e = model.experts[l.name]
            for cnt in np.nonzero(uses[e])[0]:
                if cnt == 0:
                    continue
                cost, _ = rows.cost(l, int(cnt), Phase.DECODE)
                total.add(cost, float(uses[e, cnt]) * model.scale)
    return total


@dataclass(frozen=True)
class ExpertLoad:
    """How a routing spreads tokens over the experts of a MoE model, and what that costs (see
    :func:`expert_load`). Per decode step (means over the ``generate`` steps, summed over the
    model's MoE blocks, traced blocks scaled), and for the prefill:

    * ``distinct``: experts that receive at least one token, per MoE block (mean over blocks);
    * ``max_tokens``: tokens of the most-loaded expert, per MoE block (mean over blocks);
    * ``weight_bytes``: the experts' weight bytes read from DRAM (each distinct expert's once);
    * ``serial_s``: the experts' time on one accelerator, one expert after the other (what the
      run's TPOT / TTFT contain);
    * ``parallel_s``: the time when every expert has its own accelerator of this kind (expert
      parallelism): per block, the slowest expert's time.
    """

    distinct: float
    max_tokens: float
    weight_bytes: float
    serial_s: float
    parallel_s: float
    prefill_distinct: float
    prefill_max_tokens: float
    prefill_serial_s: float
    prefill_parallel_s: float


def expert_load(model: LlmModel, acc: Accelerator, batch: int, prompt: int, generate: int) -> ExpertLoad:
    """The experts' share of a run under ``model``'s routing (:class:`ExpertLoad`).

    A decode step reads each expert's weights once if it receives any token, whatever the count
    (the fast engine loads a layer's weights once for all its rows), so the experts' weight bytes
    per step are exactly ``sum over distinct experts of its weight bytes``; a routing that spreads
    tokens over more experts moves more bytes. ``uniform`` spreads them the most: the expected
    number of distinct experts, ``sum_e 1 - P(e unpicked)``, is largest when every expert is as
    likely as every other, so no skewed routing (``zipf:S``, a real router) moves more expert
    weight bytes on one accelerator. What a skewed routing does cost more is the most-loaded
    expert: its time bounds a step when experts run in parallel (``parallel_s``)."""
    if not model.is_moe:
        raise SimulationError(f"expert_load: model '{model.name}' has no experts")
    check_run(batch, prompt, generate)
    rows = _Rows(acc, model)
    clock = acc.compute.clock_hz
    acc_dec = {"distinct": 0.0, "max": 0.0, "bytes": 0.0, "serial": 0.0, "parallel": 0.0}
    acc_pre = {"distinct": 0.0, "max": 0.0, "serial": 0.0, "parallel": 0.0}
    moe_blocks = 0
    for bi, block in enumerate(model.blocks):
        by_expert: dict[int, list[Layer]] = {}
        for l in block:
            if l.name in model.experts:
                by_expert.setdefault(model.experts[l.name], []).append(l)
        if not by_expert:
            continue
        moe_blocks += 1

        def one(counts, phase, out, with_bytes):
            times = [0.0]
            for e, layers in by_expert.items():
                c = int(counts[e])
                if not c:
                    continue
                costs = [rows.cost(l, c, phase)[0] for l in layers]
                times.append(sum(x.cycles for x in costs))
                if with_bytes:
                    out["bytes"] += sum(x.weight_bytes for x in costs) * model.scale
            out["distinct"] += float(np.count_nonzero(counts))
            out["max"] += float(counts.max())
            out["serial"] += sum(times) * model.scale
            out["parallel"] += max(times) * model.scale

        for s in range(generate):
            one(model.expert_counts(bi, batch, s), Phase.DECODE, acc_dec, True)
        one(model.expert_counts(bi, batch * prompt, 0), Phase.PREFILL, acc_pre, False)
    g = float(generate)
    return ExpertLoad(distinct=acc_dec["distinct"] / g / moe_blocks, max_tokens=acc_dec["max"] / g / moe_blocks,
                      weight_bytes=acc_dec["bytes"] / g, serial_s=acc_dec["serial"] / g / clock,
                      parallel_s=acc_dec["parallel"] / g / clock, prefill_distinct=acc_pre["distinct"] / moe_blocks,
                      prefill_max_tokens=acc_pre["max"] / moe_blocks, prefill_serial_s=acc_pre["serial"] / clock,
                      prefill_parallel_s=acc_pre["parallel"] / clock)


def run_llm(model: LlmModel, acc: Accelerator, batch: int, prompt: int, generate: int,
            detail: bool = False, on_chip: bool = False) -> LlmRun:
    """Prefill + decode at one batch: TTFT, TPOT (mean, last), tokens/s, energy and DRAM bytes per
    output token, the bound; ``detail``: per-layer rows of the prefill and of the last decode step;
    ``on_chip``: what fits of the weights and the KV cache stays in the buffer across decode steps
    (:class:`Residency`; False: every step reads all of them from DRAM)."""
    if not isinstance(acc, Accelerator):
        raise SimulationError(f"run_llm: expected an accel.Accelerator, got {type(acc).__name__}")
    check_run(batch, prompt, generate)
    _check(Workload(name=model.name, layers=model.blocks[0]), acc, "fast")
    rows = _Rows(acc, model, on_chip)
    det: list | None = [] if detail else None
    pre = prefill_cost(model, acc, batch, prompt, rows, det)
    dec = decode_cost(model, acc, batch, prompt, generate, rows)
    last = decode_step_cost(model, acc, batch, prompt + generate, generate - 1, rows, det)
    clock = acc.compute.clock_hz
    tpot = dec.cycles / generate / clock
    tokens = batch * generate
    mem_cycles = dec.dram_bytes / acc.dram_bytes_per_cycle
    if dec.compute_cycles >= mem_cycles:
        bound = "compute"
    else:
        bound = "weights" if dec.weight_bytes >= dec.kv_bytes else "KV"
    return LlmRun(model=model.name, accelerator=acc.name, batch=batch, prompt=prompt, generate=generate,
                  ttft_s=pre.cycles / clock, tpot_mean_s=tpot, tpot_last_s=last.cycles / clock,
                  tokens_per_s=batch / tpot if tpot else float("inf"),
                  energy_per_token_j=dec.energy_pj / tokens * 1e-12, dram_bytes_per_token=dec.dram_bytes / tokens,
                  bound=bound, prefill=pre, decode=dec, last_step=last, layers=det or [], unfit=tuple(rows.unfit))


def layer_costs(model: LlmModel, acc: Accelerator, batch: int, prompt: int, generate: int,
                on_chip: bool = False) -> list[dict]:
    """Per weight layer of the model as it is (its masks and bits): what it adds to the run, as rows
    ``{name, block_scale, decode_s_per_token, decode_energy_j_per_token, decode_dram_bytes_per_token,
    prefill_s, prefill_energy_j}``. Layers are independent in the fast engine, so over every weight
    layer plus :func:`fixed_costs` these sum **exactly** to :func:`run_llm`'s TPOT (mean),
    energy per token, DRAM bytes per token and TTFT (``tests/test_llm.py`` checks it). For a
    (layer x pattern) table, sparsify the model per pattern and take each layer's row.
    MoE expert layers: their decode cost summed over the steps' routing. ``on_chip``
    (:class:`Residency`): the sums stay exact, but a layer's row then depends on which other layers
    are pinned, so rows of differently masked models no longer combine (the searches leave it off)."""
    check_run(batch, prompt, generate)
    rows = _Rows(acc, model, on_chip)
    clock = acc.compute.clock_hz
    tokens = batch * generate
    head = {l.name for l in model.head}
    out = []
    for bi, block in enumerate(model.blocks):
        counts = None
        if model.experts:
            counts = [model.expert_counts(bi, batch, s) for s in range(generate)]
            pre_counts = model.expert_counts(bi, batch * prompt, 0)
        for l in list(block) + (list(model.head) if bi == len(model.blocks) - 1 else []):
            times = 1.0 if l.name in head else model.scale
            dec = Cost()
            if l.name in model.experts:
                e = model.experts[l.name]
                for c in counts:
                    if c[e]:
                        dec.add(rows.cost(l, int(c[e]), Phase.DECODE)[0])
                pre = rows.cost(l, int(pre_counts[e]), Phase.PREFILL)[0] if pre_counts[e] else Cost()
            else:
                dec.add(rows.decode(l, batch), generate)
                pre = rows.cost(l, batch if l.name in head else batch * prompt, Phase.PREFILL)[0]
            out.append({"name": l.name, "block_scale": times,
                        "decode_s_per_token": dec.cycles * times / generate / clock,
                        "decode_energy_j_per_token": dec.energy_pj * times / tokens * 1e-12,
                        "decode_dram_bytes_per_token": dec.dram_bytes * times / tokens,
                        "prefill_s": pre.cycles * times / clock, "prefill_energy_j": pre.energy_pj * times * 1e-12})
    return out


def fixed_costs(model: LlmModel, acc: Accelerator, batch: int, prompt: int, generate: int,
                on_chip: bool = False) -> dict:
    """What no weight layer's sparsity or bits change: attention (decode: the KV stream over all
    steps; prefill: its two GEMMs per block), in the units of :func:`layer_costs`."""
    check_run(batch, prompt, generate)
    rows = _Rows(acc, model, on_chip)
    clock = acc.compute.clock_hz
    tokens = batch * generate
    dec = kv_model(model, acc, batch, rows.kv_resident(batch)).total(prompt + 1, prompt + generate)
    dec_times = len(model.blocks) * model.scale
    pre = Cost()
    for l in model.prefill(batch, prompt).layers:
        if l.kind is LayerKind.ATTENTION:
            pre.add(rows.cost(l, l.m, Phase.PREFILL)[0], model.scale)
    return {"decode_s_per_token": dec.cycles * dec_times / generate / clock,
            "decode_energy_j_per_token": dec.energy_pj * dec_times / tokens * 1e-12,
            "decode_dram_bytes_per_token": dec.dram_bytes * dec_times / tokens,
            "prefill_s": pre.cycles / clock, "prefill_energy_j": pre.energy_pj * 1e-12}
