"""LLM inference: models from transformers configs, phases, the KV cache, exact decode aggregation,
weight bits, MoE routing, activation sparsity (workloads/hf.py, workloads/llm.py, simulator/llm.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("transformers")

import accel  # noqa: E402
from simulator.llm import (decode_cost, decode_step_cost, fixed_costs, kv_model, layer_costs,  # noqa: E402
                           prefill_cost, run_llm, sum_max_affine, sum_max_lines)
from workloads import LayerKind, Phase, WorkloadError  # noqa: E402
from workloads.hf import build_model, config_from_dict, from_model, load_llm  # noqa: E402
from workloads.llm import LlmError  # noqa: E402

TINY_LLAMA = {"model_type": "llama", "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 4,
              "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 1000,
              "tie_word_embeddings": False}
TINY_MOE = {"model_type": "mixtral", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 500,
            "num_local_experts": 8, "num_experts_per_tok": 2}


@pytest.fixture(scope="module")
def tiny():
    cfg = config_from_dict(TINY_LLAMA)
    return from_model(build_model(cfg, 4, seed=0), name="tiny-llama")


@pytest.fixture(scope="module")
def mid():
    """A 1B-like block (hidden 1024, GQA 16/4) traced once, standing for 8 blocks: big enough that a
    layer's exposed first fold is small beside its weight stream, as in real models."""
    cfg = config_from_dict(dict(TINY_LLAMA, hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
                                num_key_value_heads=4, head_dim=64, num_hidden_layers=8))
    return from_model(build_model(cfg, 1, seed=0), name="mid-llama", full_layers=8, record_inputs=False)


@pytest.fixture(scope="module")
def tiny_moe():
    cfg = config_from_dict(TINY_MOE)
    return from_model(build_model(cfg, 2, seed=0), name="tiny-moe")


def test_tiny_llama_layers_and_gqa(tiny):
    s = tiny.shape
    assert (s.layers, s.heads, s.kv_heads, s.head_dim, s.q_per_kv) == (4, 8, 2, 32, 4)
    names = [l.name for l in tiny.blocks[0]]
    assert names == [f"model.layers.0.{n}" for n in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                     "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
                                                     "mlp.down_proj")]
    q, k = tiny.blocks[0][0], tiny.blocks[0][1]
    assert (q.k, q.n, k.k, k.n) == (256, 256, 256, 64)
    assert [l.name for l in tiny.head] == ["lm_head"]
    # parameters: the built model's own count (all 4 blocks traced)
    assert s.params == sum(int(np.prod(l.weight.shape)) for l in tiny.weight_layers()) + 1000 * 256 + 9 * 256


def test_phases_rows_and_kv_operand(tiny):
    pre = tiny.prefill(batch=2, prompt=16)
    assert {l.phase for l in pre.layers} == {Phase.PREFILL}
    q = pre.layer("model.layers.0.self_attn.q_proj")
    assert q.m == 2 * 16
    assert pre.layer("lm_head").m == 2           # the last position's logits only
    qk = pre.layer("model.layers.0.self_attn.qk")
    assert (qk.kind, qk.groups, qk.m, qk.k, qk.n) == (LayerKind.ATTENTION, 2 * 2, 4 * 16, 32, 16)
    dec = tiny.decode_step(batch=3, kv_len=100)
    qk, av = dec.layer("model.layers.1.self_attn.qk"), dec.layer("model.layers.1.self_attn.av")
    # GQA: one GEMM per (sequence, KV head), the group's 4 query heads as its rows: K read once per KV head
    assert (qk.groups, qk.m, qk.k, qk.n) == (3 * 2, 4, 32, 100)
    assert (av.groups, av.m, av.k, av.n) == (3 * 2, 4, 100, 32)
    assert dec.layer("model.layers.1.mlp.down_proj").m == 3


def test_kv_bytes_per_token_is_config_arithmetic(tiny):
    acc = accel.load("vegeta-cpu-l2")
    for bits in (16, 8, 4):
        m = tiny.with_kv_bits(bits)
        per_token = 2 * 4 * 2 * 32 * bits / 8            # K and V x layers x KV heads x head dim x bytes
        assert m.shape.kv_bytes_per_token(bits) == per_token
        km = kv_model(m, acc, batch=1)
        # one more key position costs exactly that many KV bytes per block, over the model's 4 blocks
        assert km.kv[1] * len(m.blocks) * m.scale == per_token
        # attention cost is linear in the KV length (memory-bound here: slope times L, plus Q/O bytes)
        c = [km.at(L).cycles for L in (100, 200, 300, 400)]
        assert np.diff(c) == pytest.approx([c[1] - c[0]] * 3, rel=1e-12)


def test_sum_max_affine_matches_brute_force(rng):
    for _ in range(200):
        p = (float(rng.normal() * 50), float(rng.normal()))
        q = (float(rng.normal() * 50), float(rng.normal()))
        lo = int(rng.integers(-20, 40))
        hi = lo + int(rng.integers(-2, 60))
        brute = sum(max(p[0] + p[1] * L, q[0] + q[1] * L) for L in range(lo, hi + 1))
        assert sum_max_affine(p, q, lo, hi) == pytest.approx(brute, rel=1e-9, abs=1e-9)
        lines = [(float(rng.normal() * 50), float(rng.normal())) for _ in range(int(rng.integers(1, 5)))]
        brute = sum(max(a + b * L for a, b in lines) for L in range(lo, hi + 1))
        assert sum_max_lines(lines, lo, hi) == pytest.approx(brute, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("preset", ["vegeta-cpu-l2", "edge-npu-lpddr5", "gpu-a100-2of4"])
def test_decode_aggregate_equals_step_by_step(tiny, preset):
    acc = accel.load(preset)
    m = tiny.sparsify("2:4").with_weight_bits(8).with_kv_bits(8)
    P, G, B = 30, 12, 2
    agg = decode_cost(m, acc, B, P, G)
    steps = [decode_step_cost(m, acc, B, P + i, i - 1) for i in range(1, G + 1)]
    for key in ("cycles", "compute_cycles", "dram_bytes", "weight_bytes", "kv_bytes", "energy_pj", "macs"):
        assert getattr(agg, key) == pytest.approx(sum(getattr(s, key) for s in steps), rel=1e-12), key


def test_decode_aggregate_across_the_compute_memory_crossing(tiny):
    """A KV model whose attention is memory-bound at short contexts and compute-bound at long ones
    (tiny bandwidth intercept, slow array): the aggregate still equals the step sum."""
    acc = accel.load("vegeta-cpu-l2")
    km = kv_model(tiny, acc, batch=1)
    (c0, c1), (t0, t1) = km.time()
    from dataclasses import replace
    crossing = replace(km, compute=(0.0, t1 * 1.5))          # steeper compute; DRAM has the Q/O intercept
    x = t0 / (t1 * 1.5 - t1)
    lo, hi = int(x) - 10, int(x) + 10
    total = crossing.total(lo, hi)
    assert total.cycles == pytest.approx(sum(crossing.at(L).cycles for L in range(lo, hi + 1)), rel=1e-12)
    assert crossing.at(lo).cycles > crossing.at(lo).compute_cycles       # memory-bound below the crossing
    assert crossing.at(hi).cycles == crossing.at(hi).compute_cycles      # compute-bound above


@pytest.mark.parametrize("preset", ["vegeta-cpu-l2", "edge-npu-lpddr5", "gpu-a100-2of4", "gpu-h100-2of4",
                                    "gpu-h100-2of4-fp8", "gpu-rtx4090-2of4"])
def test_batch1_decode_is_memory_bound_on_llm_presets(mid, preset):
    acc = accel.load(preset)
    for pattern in ("dense", "2:4"):
        m = mid if pattern == "dense" else mid.sparsify(pattern)
        run = run_llm(m, acc, 1, 64, 8)
        dram_time = run.decode.dram_bytes / acc.dram.bandwidth_bytes_per_s
        assert run.tpot_mean_s * 8 == pytest.approx(dram_time, rel=0.05)
        assert run.bound == "weights"


def test_24_decode_speedup_is_the_byte_ratio_not_2x(mid):
    acc = accel.load("gpu-a100-2of4")
    dense, sparse = run_llm(mid, acc, 1, 64, 8), run_llm(mid.sparsify("2:4"), acc, 1, 64, 8)
    speedup = dense.tpot_mean_s / sparse.tpot_mean_s
    byte_ratio = dense.dram_bytes_per_token / sparse.dram_bytes_per_token
    assert speedup == pytest.approx(byte_ratio, rel=0.02)
    assert speedup < 1.9


@pytest.mark.parametrize("preset", ["vegeta-cpu-l2", "edge-npu-lpddr5"])
def test_kv_write_is_at_kv_bits(tiny, preset):
    """Each new token's K and V leave the k_proj / v_proj for the cache at the KV bits, not at the
    array's activation width (16 bits on vegeta, 8 on the NPU, whose 16-bit cache is the wider)."""
    acc = accel.load(preset)
    s = tiny.shape
    B, P, G = 4, 32, 8
    kv = s.kv_heads * s.head_dim
    a_b = acc.compute.activation_bits / 8

    def rows(m, fn):
        d = []
        fn(m, d)
        return {r["name"]: r for r in d}
    for bits in (16, 8, 4):
        m = tiny.with_kv_bits(bits)
        base = tiny.with_kv_bits(16)
        for phase, fn, tokens in (
                ("decode", lambda mm, d: decode_step_cost(mm, acc, B, P + 1, detail=d), B),
                ("prefill", lambda mm, d: prefill_cost(mm, acc, B, P, detail=d), B * P)):
            got, ref = rows(m, fn), rows(base, fn)
            for name in ("model.layers.0.self_attn.k_proj", "model.layers.0.self_attn.v_proj"):
                diff = ref[name]["dram_bytes"] - got[name]["dram_bytes"]
                assert diff == pytest.approx(tokens * kv * (2 - bits / 8), rel=1e-12), (phase, name, bits)
            q = "model.layers.0.self_attn.q_proj"
            assert got[q]["dram_bytes"] == ref[q]["dram_bytes"]
    # the whole decode: reads (the KV model) and writes at the cache's bits
    r16, r8 = run_llm(tiny, acc, B, P, G), run_llm(tiny.with_kv_bits(8), acc, B, P, G)
    reads = (kv_model(tiny, acc, B).total(P + 1, P + G).dram_bytes
             - kv_model(tiny.with_kv_bits(8), acc, B).total(P + 1, P + G).dram_bytes) * s.layers
    writes = G * B * s.layers * 2 * kv * 1.0
    assert r16.decode.dram_bytes - r8.decode.dram_bytes == pytest.approx(reads + writes, rel=1e-9)
    assert r8.decode.kv_bytes == pytest.approx(kv_model(tiny.with_kv_bits(8), acc, B).total(P + 1, P + G).kv_bytes
                                               * s.layers + writes, rel=1e-9)
    assert a_b in (1.0, 2.0)


def test_weight_bits_and_group_scales_in_bytes(tiny):
    acc = accel.load("vegeta-cpu-l2")
    layer = "model.layers.0.mlp.up_proj"
    rows = {}
    for bits in (16, 8, 4):
        m = tiny.with_weight_bits(bits, group_size=128)
        rows[bits] = {r["name"]: r for r in layer_costs(m, acc, 1, 32, 4)}[layer]
    w = 256 * 512
    assert rows[16]["decode_dram_bytes_per_token"] == pytest.approx(w * 2, rel=0.02)
    assert rows[8]["decode_dram_bytes_per_token"] == pytest.approx(w * (1 + 2 / 128), rel=0.02)
    assert rows[4]["decode_dram_bytes_per_token"] == pytest.approx(w * (0.5 + 2 / 128), rel=0.03)
    with pytest.raises(WorkloadError, match="weight bits must be one of 16, 8, 4"):
        tiny.with_weight_bits(3)


def test_layer_costs_sum_to_the_run(tiny):
    acc = accel.load("edge-npu-lpddr5")
    m = tiny.sparsify({"*.mlp.*": "2:4"}).with_weight_bits({"*q_proj": 4, "*": 8})
    B, P, G = 2, 24, 6
    run = run_llm(m, acc, B, P, G)
    rows = layer_costs(m, acc, B, P, G)
    fixed = fixed_costs(m, acc, B, P, G)
    assert sum(r["decode_s_per_token"] for r in rows) + fixed["decode_s_per_token"] == pytest.approx(
        run.tpot_mean_s, rel=1e-12)
    assert sum(r["decode_energy_j_per_token"] for r in rows) + fixed["decode_energy_j_per_token"] == pytest.approx(
        run.energy_per_token_j, rel=1e-12)
    assert sum(r["prefill_s"] for r in rows) + fixed["prefill_s"] == pytest.approx(run.ttft_s, rel=1e-12)


def test_blocks_scaled_exactly_for_nm(tiny):
    """Tracing 1 of 4 identical blocks and scaling gives the 4-block totals for dense and 2:4."""
    acc = accel.load("vegeta-cpu-l2")
    one = from_model(build_model(config_from_dict(TINY_LLAMA), 4, seed=0), blocks=1, name="tiny-llama")
    assert one.scale == 4
    for pat in ("dense", "2:4"):
        a = run_llm(tiny.sparsify(pat), acc, 2, 32, 4)
        b = run_llm(one.sparsify(pat), acc, 2, 32, 4)
        assert (b.ttft_s, b.tpot_mean_s, b.energy_per_token_j) == pytest.approx(
            (a.ttft_s, a.tpot_mean_s, a.energy_per_token_j), rel=1e-9)


def test_prefill_nm_speedup_is_the_arrays(mid):
    acc = accel.load("gpu-a100-2of4")
    d, s = [], []
    prefill_cost(mid, acc, 1, 1024, detail=d)
    prefill_cost(mid.sparsify("2:4"), acc, 1, 1024, detail=s)
    dense = {r["name"]: r["cycles"] for r in d if r["kind"] == "linear" and r["name"] != "lm_head"}
    sparse = {r["name"]: r["cycles"] for r in s if r["name"] in dense}
    assert sum(dense.values()) / sum(sparse.values()) == pytest.approx(2.0, rel=0.05)


def _npu_with_weight_sram(size_bytes):
    import dataclasses
    acc = accel.load("edge-npu-lpddr5")
    mems = tuple(dataclasses.replace(m, size_bytes=size_bytes) if m.name == "weight_sram" else m for m in acc.memories)
    return dataclasses.replace(acc, memories=mems)


def test_on_chip_residency_weights_first_then_kv(tiny):
    """Residency across decode steps: half the double-buffered weight SRAM keeps weights first, then
    the first KV entries of every block; only the rest streams. Exact aggregation across the step
    where the cache outgrows the buffer; layer tables still sum to the run."""
    from simulator.llm import Residency, _Rows
    s = tiny.shape
    B, G = 4, 32
    kv_tok = s.kv_bytes_per_token(16) * B                 # cache bytes per key position, all blocks
    off = _npu_with_weight_sram(8 << 20)
    rows = _Rows(off, tiny, on_chip=True)
    res = rows.residency(B)
    assert isinstance(res, Residency) and res.capacity_bytes == 4 << 20
    w_step = decode_cost(tiny, off, B, 16, 1).weight_bytes             # every weight byte of a step, from DRAM
    assert res.weight_bytes == pytest.approx(w_step, rel=1e-12) and all(f == 1.0 for f in res.pinned.values())
    assert res.kv_bytes == pytest.approx((4 << 20) - w_step, rel=1e-12)
    cross = int(res.kv_bytes // kv_tok)                               # the last L whose cache fits
    P = cross - G // 2
    on = decode_cost(tiny, off, B, P, G, on_chip=True)
    steps = [decode_step_cost(tiny, off, B, P + i, i - 1, on_chip=True) for i in range(1, G + 1)]
    for k in ("cycles", "dram_bytes", "kv_bytes", "energy_pj", "weight_bytes"):
        assert getattr(on, k) == pytest.approx(sum(getattr(c, k) for c in steps), rel=1e-9), k
    assert on.weight_bytes == 0.0
    writes = B * s.layers * 2 * s.kv_heads * s.head_dim * 2.0       # the new entries, written through
    reads = [c.kv_bytes - writes for c in steps]
    assert all(abs(r) < 1e-6 for r in reads[: G // 2]) and all(r > 0 for r in reads[G // 2 + 1:])
    assert reads[-1] == pytest.approx((P + G) * kv_tok - res.kv_bytes, rel=1e-9)
    plain = decode_cost(tiny, off, B, P, G)
    assert plain.dram_bytes - on.dram_bytes == pytest.approx(G * w_step + sum(
        min((P + i) * kv_tok, res.kv_bytes) for i in range(1, G + 1)), rel=1e-9)
    assert on.cycles < plain.cycles and on.energy_pj < plain.energy_pj
    run = run_llm(tiny, off, B, P, G, on_chip=True)
    rows_ = layer_costs(tiny, off, B, P, G, on_chip=True)
    fixed = fixed_costs(tiny, off, B, P, G, on_chip=True)
    for key, attr in (("decode_s_per_token", "tpot_mean_s"), ("decode_dram_bytes_per_token", "dram_bytes_per_token")):
        assert sum(r[key] for r in rows_) + fixed[key] == pytest.approx(getattr(run, attr), rel=1e-9)
    # a buffer smaller than the weights: the first layers pinned (the last one in part), no KV kept
    small = _npu_with_weight_sram(2 << 20)
    r2 = _Rows(small, tiny, on_chip=True).residency(B)
    assert r2.kv_bytes == 0 and r2.weight_bytes == 1 << 20 and 0 < min(r2.pinned.values()) < 1
    d2 = decode_cost(tiny, small, B, 64, 8, on_chip=True)
    assert d2.weight_bytes == pytest.approx(8 * (decode_cost(tiny, small, B, 64, 8).weight_bytes / 8 - (1 << 20)),
                                            rel=1e-9)


# --------------------------------------------------------------------------------------------- MoE
def test_moe_real_routing_loads_only_routed_experts(tiny_moe):
    m = tiny_moe
    assert m.is_moe and m.shape.experts == 8 and m.shape.top_k == 2
    assert len([l for l in m.blocks[0] if l.name in m.experts]) == 16     # gate_up + down per expert
    dec = m.decode_step(batch=1, kv_len=10)
    routed = {int(e) for e in m.routing[0][0]}
    loaded = {m.experts[l.name] for l in dec.layers if l.name in m.experts and l.name.startswith("model.layers.0.")}
    assert loaded == routed and len(loaded) == 2
    counts = m.expert_counts(0, tokens=5, step=0)
    assert counts.sum() == 5 * 2 and (counts <= 5).all()


def test_moe_totals_are_the_sum_over_experts(tiny_moe):
    acc = accel.load("vegeta-cpu-l2")
    m = tiny_moe
    B = 4
    wl = m.decode_step(B, 20)
    from simulator.engine import simulate_layer
    experts = [l for l in wl.layers if l.name in m.experts]
    assert sum(l.m for l in experts if l.name.endswith("down_proj")) == B * 2 * len(m.blocks)
    total = decode_step_cost(m, acc, B, 20)
    by_layer = sum(simulate_layer(l, acc)["cycles"] for l in wl.layers if l.kind is not LayerKind.ATTENTION)
    assert total.cycles == pytest.approx(by_layer + len(m.blocks) * kv_model(m, acc, B).at(20).cycles, rel=1e-12)


def test_moe_routing_specs(tiny_moe, tmp_path):
    acc = accel.load("vegeta-cpu-l2")
    uni = tiny_moe.with_routing("uniform")
    zipf = tiny_moe.with_routing("zipf:1.2")
    c = uni.expert_counts(0, 16, 0)
    assert c.sum() == 32
    f = tmp_path / "counts.txt"
    f.write_text("1 0 0 0 0 0 0 1\n")
    fixed = tiny_moe.with_routing(str(f))
    c = fixed.expert_counts(0, 6, 0)
    assert c.sum() == 12 and set(np.nonzero(c)[0]) == {0, 7}
    du = run_llm(uni, acc, 16, 16, 8).decode.dram_bytes
    dz = run_llm(zipf, acc, 16, 16, 8).decode.dram_bytes
    assert du != dz
    with pytest.raises(LlmError, match="expected zipf:S"):
        tiny_moe.with_routing("zipf:x")
    with pytest.raises(LlmError, match="no such file"):
        tiny_moe.with_routing("nope.txt")


def test_moe_expert_bytes_are_distinct_experts_times_expert_bytes(tiny_moe):
    """The distinct-expert law: a decode step reads each expert that receives a token once, so the
    experts' DRAM weight bytes are (distinct experts) x (one expert's bytes), monotone in the distinct
    experts whatever the routing; a skewed routing touches fewer experts (fewer bytes) but loads its
    busiest expert more (its time bounds a step when experts run in parallel)."""
    from simulator.llm import _Rows, expert_load
    acc = accel.load("vegeta-cpu-l2")
    rows = _Rows(acc, tiny_moe)
    one = {e: 0.0 for e in range(tiny_moe.shape.experts)}
    for l in tiny_moe.blocks[0]:
        if l.name in tiny_moe.experts:
            assert rows.cost(l, 1, Phase.DECODE)[0].weight_bytes == rows.cost(l, 7, Phase.DECODE)[0].weight_bytes
            one[tiny_moe.experts[l.name]] += rows.cost(l, 1, Phase.DECODE)[0].weight_bytes
    assert len(set(one.values())) == 1
    per_expert = one[0]
    blocks = len(tiny_moe.blocks)
    points = []
    for spec in ("real", "uniform", "zipf:1.2", "zipf:2"):
        m = tiny_moe.with_routing(spec)
        for b in (1, 4, 16):
            ld = expert_load(m, acc, b, 16, 8)
            distinct = sum(np.count_nonzero(m.expert_counts(bi, b, s)) for bi in range(blocks) for s in range(8)) / 8
            assert ld.distinct * blocks == pytest.approx(distinct, rel=1e-12)
            assert ld.weight_bytes == pytest.approx(distinct * per_expert * m.scale, rel=1e-12)
            # the run's decode DRAM bytes contain exactly these expert bytes (the rest does not depend on routing)
            dense_part = run_llm(m, acc, b, 16, 8).decode.weight_bytes / 8 - ld.weight_bytes
            points.append((ld.distinct, ld.weight_bytes, dense_part, spec, b, ld))
    assert len({round(p[2], 3) for p in points}) == 1
    points.sort(key=lambda p: p[0])
    assert all(a[1] < b[1] for a, b in zip(points, points[1:]) if a[0] < b[0])
    by = {(p[3], p[4]): p[5] for p in points}
    assert by["uniform", 1].weight_bytes == by["zipf:2", 1].weight_bytes          # batch 1: top-k experts each
    for b in (4, 16):
        u, z = by["uniform", b], by["zipf:2", b]
        assert z.distinct < u.distinct and z.weight_bytes < u.weight_bytes
        assert z.max_tokens > u.max_tokens
        assert z.prefill_parallel_s > u.prefill_parallel_s


# ---------------------------------------------------------------------------------------- activations
def test_activation_sparsity_skip_saves_bytes_gate_does_not(tiny):
    skip = accel.load("edge-npu-lpddr5")
    gate = accel.load("vegeta-cpu-l2")
    m = tiny.with_act_sparsity(0.5)
    d = m.input_density("model.layers.0.mlp.down_proj")
    assert 0.3 < d < 0.7                 # measured on the held-out half of the traced tokens
    for acc, changes in ((skip, True), (gate, False)):
        base = run_llm(tiny, acc, 1, 16, 4)
        sp = run_llm(m, acc, 1, 16, 4)
        if changes:
            assert sp.dram_bytes_per_token < 0.8 * base.dram_bytes_per_token
        else:
            assert sp.dram_bytes_per_token == base.dram_bytes_per_token
            assert sp.energy_per_token_j < base.energy_per_token_j
    with pytest.raises(LlmError, match=r"\(0, 1\]"):
        tiny.with_act_sparsity(1.5)


# ---------------------------------------------------------------------------------------------- errors
def test_bad_inputs(tmp_path):
    with pytest.raises(LlmError, match="unknown built-in model 'nope'"):
        load_llm("hf:nope")
    with pytest.raises(LlmError, match="does not exist"):
        load_llm("hf:/no/such/folder")
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "llama", "hidden_size": 64}')
    with pytest.raises(LlmError, match="missing key"):
        load_llm(f"hf:{tmp_path}")
    moe = dict(TINY_MOE, num_experts_per_tok=9)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(__import__("json").dumps(moe))
    with pytest.raises(LlmError, match="top-k"):
        load_llm(f"hf:{tmp_path / 'm'}")


def test_run_checks(tiny):
    acc = accel.load("vegeta-cpu-l2")
    with pytest.raises(LlmError, match="--prompt"):
        run_llm(tiny, acc, 1, 0, 4)
    with pytest.raises(LlmError, match="--generate"):
        run_llm(tiny, acc, 1, 8, 10 ** 9)
    assert math.isfinite(run_llm(tiny, acc, 1, 8, 1).tpot_mean_s)


# ------------------------------------------------------------------------------------------------- CLI
def _cfg_dir(tmp_path, doc, name="tiny"):
    import json
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(doc))
    return d


def test_cli_llm_rows_and_csv(tmp_path, capsys):
    import csv

    from sparsim.cli import main
    d = _cfg_dir(tmp_path, TINY_LLAMA)
    out = tmp_path / "r.csv"
    assert main(["llm", "--model", f"hf:{d}", "--accel", "vegeta-cpu-l2", "--prompt", "32", "--generate", "8",
                 "--batch", "1,4", "--sparsity", "2:4", "--weight-bits", "4", "--kv-bits", "8", "--out", str(out),
                 "--layers"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split() == ["batch", "TTFT_ms", "TPOT_ms", "TPOT_last_ms", "tokens/s",
                                            "energy/token_mJ", "DRAM/token_MB", "bound"]
    assert "model.layers.0.self_attn.kv" in text and "int4/g128" in text
    rows = list(csv.DictReader(out.open()))
    assert [r["batch"] for r in rows] == ["1", "4"]
    assert set(rows[0]) >= {"ttft_s", "tpot_mean_s", "tpot_last_s", "tokens_per_s", "energy_per_token_j",
                            "dram_bytes_per_token", "bound"}
    # --on-chip: the tiny model's weights stay in a large weight SRAM, so decode stops streaming them
    argv = ["llm", "--model", f"hf:{d}", "--accel", "examples/llm/sram-npu.yaml", "--prompt", "32", "--generate", "8",
            "--out", str(out)]
    got = []
    for extra in ([], ["--on-chip"]):
        assert main(argv + extra) == 0
        got.append(float(list(csv.DictReader(out.open()))[0]["dram_bytes_per_token"]))
    capsys.readouterr()
    assert got[1] < got[0] / 10


@pytest.mark.parametrize("argv,message", [
    (["--model", "hf:nope"], "unknown built-in model 'nope'"),
    (["--model", "hf:/no/such/dir"], "does not exist"),
    (["--model", "hf:{missing}"], "missing key(s) num_hidden_layers"),
    (["--model", "hf:{moe}"], "top-k"),
    (["--prompt", "0"], "--prompt: expected a positive integer"),
    (["--generate", "100000000"], "--generate 100,000,000: at most"),
    (["--weight-bits", "3"], "weight bits must be one of 16, 8, 4"),
    (["--kv-bits", "5"], "KV-cache bits must be one of 16, 8, 4"),
    (["--act-sparsity", "0"], "--act-sparsity: expected a density in (0, 1]"),
    (["--act-sparsity", "1.5"], "--act-sparsity: expected a density in (0, 1]"),
    (["--batch", "1,x"], "--batch 1,x"),
    (["--model", "hf:{tiny}", "--moe-routing", "uniform"], "has no experts"),
])
def test_cli_llm_bad_input(tmp_path, capsys, argv, message):
    from sparsim.cli import main
    dirs = {"missing": _cfg_dir(tmp_path, {"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4,
                                           "vocab_size": 100}, "missing"),
            "moe": _cfg_dir(tmp_path, dict(TINY_MOE, num_experts_per_tok=9), "moe"),
            "tiny": _cfg_dir(tmp_path, TINY_LLAMA, "tiny")}
    argv = [a.format(**dirs) for a in argv]
    if "--model" not in argv:
        argv = ["--model", f"hf:{dirs['tiny']}"] + argv
    assert main(["llm", "--accel", "vegeta-cpu-l2", "--generate", "4", "--prompt", "8"] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


# ------------------------------------------------------------------------------------- architectures
ARCHS = {
    "qwen3": ({"model_type": "qwen3", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 300},
              ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
               "mlp.up_proj", "mlp.down_proj"], (256, 128)),
    "mistral": ({"model_type": "mistral", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
                 "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 300},
                ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                 "mlp.up_proj", "mlp.down_proj"], (128, 32)),
    "gpt2": ({"model_type": "gpt2", "n_embd": 96, "n_layer": 2, "n_head": 4, "vocab_size": 300, "n_positions": 64},
             ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"], (288, None)),
    "qwen2_moe": ({"model_type": "qwen2_moe", "hidden_size": 64, "intermediate_size": 128, "moe_intermediate_size": 32,
                   "shared_expert_intermediate_size": 128, "num_experts": 6, "num_experts_per_tok": 2,
                   "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 300},
                  None, None),
}


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_architectures_trace(arch):
    doc, names, shapes = ARCHS[arch]
    m = from_model(build_model(config_from_dict(doc), 2, seed=1), name=arch)
    s = m.shape
    assert len(m.blocks) == 2 and s.layers == 2
    prefix = "transformer.h.0." if arch == "gpt2" else "model.layers.0."
    got = [l.name[len(prefix):] for l in m.blocks[0]]
    if names is not None:
        assert got == names
        first = m.blocks[0][0]
        assert first.n == shapes[0] and (shapes[1] is None or m.blocks[0][1].n == shapes[1])
    else:     # MoE: router, experts (gate_up + down each), shared expert and its gate
        assert m.is_moe and s.experts == 6 and s.top_k == 2
        assert sum(1 for n in got if n.startswith("mlp.experts.")) == 12
        assert "mlp.gate" in got and "mlp.shared_expert.down_proj" in got
    dec = m.decode_step(2, 20)
    qk = dec.layer(prefix + ("attn.qk" if arch == "gpt2" else "self_attn.qk"))
    assert qk.groups == 2 * s.kv_heads and qk.m == s.q_per_kv and qk.k == s.head_dim
    assert s.params == sum(p.numel() for p in build_model(config_from_dict(doc), 2, seed=1).parameters())


def test_builtin_parameter_counts_match_published():
    from workloads.hf import BUILTIN, count_params
    for name, entry in BUILTIN.items():
        cfg, _ = __import__("workloads.hf", fromlist=["config_from_spec"]).config_from_spec(f"hf:{name}")
        n = count_params(cfg)
        assert abs(n / entry["published"] - 1) < 0.01, (name, n)


def test_scaled_params_equal_the_whole_model():
    from workloads.hf import count_params
    cfg = config_from_dict(TINY_MOE)
    one = from_model(build_model(cfg, 1), name="t", full_layers=2, record_inputs=False)
    assert one.shape.params == count_params(cfg)


def test_checkpoint_folder_loads_its_weights(tmp_path):
    model = build_model(config_from_dict(TINY_LLAMA), 4, seed=3)
    import torch
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight[:, :128] = 0       # a pruned checkpoint: exact zeros
    model.save_pretrained(tmp_path / "ckpt")
    m = load_llm(f"hf:{tmp_path / 'ckpt'}", blocks=None)
    up = {l.name: l for l in m.blocks[0]}["model.layers.0.mlp.up_proj"]
    assert up.mask is not None and up.density == pytest.approx(0.5)
    assert len(m.blocks) == 4


def test_relu_model_activation_density_is_measured():
    cfg = config_from_dict(dict(TINY_LLAMA, hidden_act="relu"))
    m = from_model(build_model(cfg, 1), name="relu", full_layers=4)
    d = m.input_density("model.layers.0.mlp.down_proj")      # relu(gate) * up: exact zeros where gate < 0
    assert 0.35 < d < 0.65
    assert m.input_density("model.layers.0.mlp.up_proj") == 1.0
    skip = accel.load("edge-npu-lpddr5")
    dense = from_model(build_model(config_from_dict(TINY_LLAMA), 1), name="silu", full_layers=4)
    a, b = run_llm(dense, skip, 1, 16, 2), run_llm(m, skip, 1, 16, 2)
    assert b.dram_bytes_per_token < a.dram_bytes_per_token


# ---------------------------------------------------------------------------------------------- sweeps
def test_sweep_llm_axes(tmp_path):
    from sweeps import SweepSpecError, load_spec
    from sweeps.evaluate import evaluate
    d = _cfg_dir(tmp_path, TINY_LLAMA)
    doc = {"models": [f"hf:{d}"], "accelerators": ["vegeta-cpu-l2"], "sparsity": ["dense", "2:4"],
           "batch": [1, 2], "prompt": [16], "generate": [4], "weight_bits": [16, 4], "phase": ["decode", "prefill"]}
    spec = load_spec(doc)
    assert len(spec.points) == 2 * 2 * 2 * 2
    assert set(spec.axes) >= {"prompt", "generate", "weight_bits", "phase"}
    p = next(p for p in spec.points if dict(p.llm)["weight_bits"] == 4 and p.sparsity == "2:4" and p.batch == 2
             and dict(p.llm)["phase"] == "decode")
    out = evaluate(p)
    assert out["status"] == "ok", out["error"]
    m = from_model(build_model(config_from_dict(TINY_LLAMA), 1), name="tiny", full_layers=4)
    run = run_llm(m.sparsify("2:4").with_weight_bits(4), accel.load("vegeta-cpu-l2"), 2, 16, 4)
    assert out["tpot_mean_s"] == pytest.approx(run.tpot_mean_s, rel=1e-12)
    assert out["latency_s"] == pytest.approx(run.tpot_mean_s * 4, rel=1e-12)
    assert dict(p.llm)["kv_bits"] == 16 and p.config()["llm"]["prompt"] == 16
    # a zoo-model point keeps its key: no llm section in its configuration
    plain = load_spec({"models": ["mlp_digits"], "accelerators": ["vegeta-flex"], "sparsity": ["dense"]})
    assert "llm" not in plain.points[0].config() and plain.points[0].llm == ()
    for bad, msg in (({"weight_bits": [3]}, "weight_bits[0]: expected 16, 8 or 4 bits"),
                     ({"act_sparsity": [0]}, "act_sparsity[0]: expected a density in (0, 1]"),
                     ({"phase": ["train"]}, "phase[0]: expected prefill or decode"),
                     ({"models": ["mlp_digits"]}, "apply to hf: models only"),
                     ({"models": ["hf:nope"]}, "unknown built-in model 'nope'")):
        with pytest.raises(SweepSpecError, match=__import__("re").escape(msg)):
            load_spec({**doc, **bad})


# ---------------------------------------------------------------------------------------------- search
@pytest.mark.parametrize("objective,attr", [("tpot", "tpot_mean_s"), ("token-energy", "energy_per_token_j")])
def test_search_llm_budget_and_exact_sum(tiny, objective, attr):
    from search.errors import SearchError
    from search.llm.decode_search import search_llm
    acc = accel.load("vegeta-cpu-l2")
    res = search_llm(tiny, acc, 1, 32, 4, objective=objective, budget=0.8, candidates=("dense", "2:4", "1:4"))
    got = getattr(res["run"], attr)
    assert got == pytest.approx(res["predicted"], rel=1e-9)          # the table sum is the run's figure
    assert got <= 0.8 * res["dense"] * (1 + 1e-9)
    assert got > 0.5 * res["dense"]
    assert set(res["assignment"].values()) <= {"dense", "2:4", "1:4"}
    assert any(v != "dense" for v in res["assignment"].values())
    with pytest.raises(SearchError, match="nothing fits"):
        search_llm(tiny, acc, 1, 32, 4, objective=objective, budget=0.05, candidates=("dense", "2:4"))


def test_cli_search_llm(tmp_path, capsys):
    from sparsim.cli import main
    d = _cfg_dir(tmp_path, TINY_LLAMA)
    out = tmp_path / "a.csv"
    assert main(["search", "--model", f"hf:{d}", "--accel", "vegeta-cpu-l2", "--objective", "tpot", "--budget", "0.8",
                 "--candidates", "dense,2:4,1:4", "--prompt", "32", "--generate", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "tpot dense" in text and "chosen" in text
    assert out.read_text().splitlines()[0] == "layer,pattern"
    assert main(["search", "--model", f"hf:{d}", "--accel", "vegeta-cpu-l2", "--objective", "latency"]) == 2
    assert "--objective tpot or token-energy" in capsys.readouterr().err
    assert main(["search", "--model", "mlp_digits", "--accel", "vegeta-cpu-l2", "--objective", "tpot"]) == 2


def test_moe_layer_costs_sum_and_aggregate(tiny_moe):
    acc = accel.load("edge-npu-lpddr5")
    m = tiny_moe.sparsify("2:4")
    B, P, G = 3, 12, 5
    run = run_llm(m, acc, B, P, G)
    rows = layer_costs(m, acc, B, P, G)
    fixed = fixed_costs(m, acc, B, P, G)
    for key, attr in (("decode_s_per_token", "tpot_mean_s"), ("decode_energy_j_per_token", "energy_per_token_j"),
                      ("prefill_s", "ttft_s")):
        assert sum(r[key] for r in rows) + fixed[key] == pytest.approx(getattr(run, attr), rel=1e-12), key
    steps = [decode_step_cost(m, acc, B, P + i, i - 1) for i in range(1, G + 1)]
    assert decode_cost(m, acc, B, P, G).cycles == pytest.approx(sum(s.cycles for s in steps), rel=1e-12)


def test_published_table_rows_are_computed(mid):
    """benchmarks/bench_llm.py part 9 (published 2:4 figures): sparsim's speed-up is the ratio of two
    sparsim runs, the roofline bound comes from the config (its parameter count equals the traced
    layers'), the gap and its explanation follow the numbers, and the serving batch fills 90 % of the
    memory. Run on a small model, so nothing in a row can be a typed number."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    try:
        import bench_llm as b
    finally:
        sys.path.pop(0)
    s = mid.shape
    # the config's linear weights = the traced block's layers x the blocks they stand for; head = vocab x hidden
    lin, head = b._linear_params(s)
    traced = sum(l.k * l.n for blk in mid.blocks for l in blk) * mid.scale
    assert lin == pytest.approx(traced) and head == sum(l.k * l.n for l in mid.head)
    assert b._bits_per_weight(16, "2:4") == 9 and b._bits_per_weight(8, "2:4") == 5 and b._bits_per_weight(8, "dense") == 8
    h100, fp8 = accel.load("gpu-h100-2of4"), accel.load("gpu-h100-2of4-fp8")
    # both H100 presets run at the datasheet's peaks: 989.4 BF16 and 1,978.9 FP8 dense TFLOPS, 3.35 TB/s
    for acc, tflops in ((h100, 989.4), (fp8, 1978.9)):
        c = acc.compute
        assert 2 * c.rows * c.cols * c.clock_hz / 1e12 == pytest.approx(tflops, rel=1e-4)
        assert acc.dram.bandwidth_bytes_per_s == 3.35e12

    dec = b.Figure("t", "src", "gpu", 1.5, "claim", "decode", b.Variant("gpu-h100-2of4"),
                   b.Variant("gpu-h100-2of4", "2:4"), 64, 8, why="WHY")
    row = b.published_row(dec, mid)
    r0, r1 = run_llm(mid, h100, 1, 64, 8), run_llm(mid.sparsify("2:4"), h100, 1, 64, 8)
    assert row["sparsim"] == pytest.approx(r0.tpot_mean_s / r1.tpot_mean_s, rel=1e-12)
    kv = s.kv_bytes_per_token(16) * np.arange(64, 72).mean()
    want = (16 * (lin + head) / 8 + kv) / ((9 * lin + 16 * head) / 8 + kv)     # batch-1 decode: bytes ratio
    assert row["bound"] == pytest.approx(want, rel=1e-9)
    assert row["sparsim"] == pytest.approx(row["bound"], rel=0.03)          # memory-bound: sparsim on the roofline
    assert row["gap"] == pytest.approx(row["sparsim"] / 1.5 - 1)
    assert row["why"] == ("WHY" if abs(row["gap"]) > 0.15 else "within 15 %")
    same = b.published_row(b.Figure(**{**dec.__dict__, "published": row["sparsim"]}), mid)
    assert same["gap"] == pytest.approx(0, abs=1e-12) and same["why"] == "within 15 %"

    lin_fig = b.Figure("t", "src", "gpu", 1.22, "claim", "linear", b.Variant("gpu-h100-2of4-fp8"),
                       b.Variant("gpu-h100-2of4-fp8", "2:4"), 1024, 1, why="WHY")
    row = b.published_row(lin_fig, mid)
    assert row["bound"] == pytest.approx(2.0)                               # compute-bound: the array's 2x
    assert row["sparsim"] == pytest.approx(b.linear_seconds(mid, fp8, 1024)
                                           / b.linear_seconds(mid.sparsify("2:4"), fp8, 1024), rel=1e-12)
    assert 1.5 < row["sparsim"] <= row["bound"] + 1e-9 and row["why"] == "WHY"       # never above the roofline

    v = b.Variant("gpu-h100-2of4")
    n = b.serving_batch(s, h100, v, 512, 512, 2e9)
    w = (16 * (lin + head) / 8) + 2 * head
    per_seq = s.kv_bytes_per_token(16) * 1024
    assert n * per_seq <= 0.9 * 2e9 - w < (n + 1) * per_seq
