"""The fast engine's memory model: the mapper against an exhaustive loop-nest reference, and the
properties a hardware person checks, on thousands of random layers and designs (hypothesis)."""
import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import accel
from accel import Operand
from simulator import plan_layer
from simulator.dataflow import DATAFLOWS
from simulator import engine
from simulator.mapping import (ORDERS, MapProblem, _stationary, _streamed_fit, dram_traffic, footprints,
                               m_tile_candidates, pipeline_cycles, search, tile_candidates)
from workloads import NM, ConvGeometry, Layer, LayerKind, Unstructured, WeightLayout

from . import naive


def design(rows=4, cols=4, dataflow="ws", sizes=(4096, 4096, 4096), bw=8.0, double=True, timing="scalesim",
           modes=("dense",), overflow="passes", port_bw=1e9, shared=False, objective=None):
    mems = [{"name": "a", "size_bytes": int(sizes[0]), "read_bw_bytes_per_cycle": port_bw, "holds": ["activation"],
             "double_buffered": double},
            {"name": "w", "size_bytes": int(sizes[1]), "read_bw_bytes_per_cycle": port_bw, "holds": ["weight"],
             "double_buffered": double},
            {"name": "o", "size_bytes": int(sizes[2]), "read_bw_bytes_per_cycle": port_bw, "holds": ["output"],
             "double_buffered": double}]
    if shared:
        mems[0]["holds"] = ["activation", "weight"]
        mems[0]["size_bytes"] = int(sizes[0] + sizes[1])
        del mems[1]
    doc = {
        "name": "p", "compute": {"rows": rows, "cols": cols, "dataflow": dataflow, "clock_hz": 1e9,
                                 "sparse_modes": list(modes), "nm_overflow": overflow, "timing": {"model": timing},
                                 "activation_bits": 8, "weight_bits": 8, "accumulator_bits": 32},
        "memories": mems, "dram": {"bandwidth_bytes_per_s": bw * 1e9}}
    if objective is not None:
        doc["mapper"] = {"objective": objective}
    return accel.build(doc)


def layer_of(m, n, k, mask=None, seed=0):
    w = np.random.default_rng(seed).standard_normal((1, k, n)).astype(np.float32)
    return Layer(name="x", kind=LayerKind.MATMUL, m=m, n=n, k=k, weight_name="x.w", weight=w,
                 weight_layout=WeightLayout.KN, mask=mask)


# ------------------------------------------------------------------------ exhaustive reference
def _loop_nest_traffic(order, m, n, k, tm, tn, tk, a_b, w_b, acc_b, o_b, levels=(0, 0, 0)):
    """DRAM bytes of a DRAM-level loop nest, walked tile by tile: an operand's buffer tile covers the
    mapping's tile and, for each of its ``levels`` innermost loops, that whole dimension; it is
    fetched when the tile it needs is not the one resident; an output tile left before its last k
    tile is written as partial sums and read back when revisited."""
    ranges = {"m": range(0, m, tm), "n": range(0, n, tn), "k": range(0, k, tk)}
    full, tile = {"m": m, "n": n, "k": k}, {"m": tm, "n": tn, "k": tk}
    names = order.split(">")
    inner = {op: set(names[3 - lv:]) for op, lv in zip("awo", levels)}
    res = {"a": None, "w": None, "o": None}
    a_bytes = w_bytes = rd = wr = 0.0
    seen = set()

    def key(op, dims, idx):   # the buffer tile an operand needs: its dims' indices outside its level
        return tuple(None if d in inner[op] else idx[d] for d in dims)

    def size(op, dims, idx):
        return math.prod(full[d] if d in inner[op] else min(tile[d], full[d] - idx[d]) for d in dims)

    def leave(tile_):
        if tile_ is None:
            return 0.0
        nbytes, last = tile_[1:]
        return nbytes * (o_b if last else acc_b)

    for x in ranges[names[0]]:
        for y in ranges[names[1]]:
            for z in ranges[names[2]]:
                idx = dict(zip(names, (x, y, z)))
                if res["a"] != key("a", "mk", idx):
                    res["a"] = key("a", "mk", idx)
                    a_bytes += size("a", "mk", idx) * a_b
                if res["w"] != key("w", "kn", idx):
                    res["w"] = key("w", "kn", idx)
                    w_bytes += size("w", "kn", idx) * w_b
                last = "k" in inner["o"] or idx["k"] + tk >= k
                ko = key("o", "mn", idx)
                if res["o"] is None or res["o"][0] != ko:
                    wr += leave(res["o"])
                    if ko in seen:
                        rd += size("o", "mn", idx) * acc_b
                    seen.add(ko)
                res["o"] = (ko, size("o", "mn", idx), last)
    wr += leave(res["o"])
    return a_bytes, w_bytes, rd, wr


def _reference_best(acc, m, n, k, orders=None):
    """Fewest cycles, then fewest DRAM bytes, over the mapper's space (tiles, orders, and every
    operand's level: how many of the innermost loops its buffer tile takes in), by brute force
    (dense GEMM, SCALE-Sim fold rule)."""
    comp = acc.compute
    dmap = DATAFLOWS[comp.dataflow]
    r, c = comp.rows, comp.cols
    gran = {dmap.rows: r, dmap.cols: c, dmap.stream: 1}
    size = {"m": m, "n": n, "k": k}
    cands = {d: tile_candidates(size[d], gran[d]) for d in "mnk"}
    bw = acc.dram_bytes_per_cycle
    mem = {op: acc.memory_for(op) for op in (Operand.ACTIVATION, Operand.WEIGHT, Operand.OUTPUT)}
    best = None
    full = {d: size[d] for d in "mnk"}
    if orders is None:
        orders = [">".join(o) for o in itertools.permutations("mnk")]   # all six: three must suffice
    for order in orders:
        names = order.split(">")
        for tm in cands["m"]:
            for tn in cands["n"]:
                for tk in cands["k"]:
                    tiles = {"m": int(tm), "n": int(tn), "k": int(tk)}

                    def fp(op, dims, lv):
                        return math.prod(full[d] if d in names[3 - lv:] else tiles[d] for d in dims)

                    acc_on_chip = (dmap.stream != "k" and k > r) or tk < k
                    base = None
                    count = {d: -(-full[d] // tiles[d]) for d in "mnk"}

                    def useful(dims, lv):   # taking in a loop the operand has not, or one run once, changes nothing
                        return lv == 0 or (names[3 - lv] in dims and count[names[3 - lv]] > 1)

                    for levels in itertools.product(range(4), repeat=3):
                        if not all(useful(dims, lv) for dims, lv in zip(("mk", "kn", "mn"), levels)):
                            continue
                        use = {}
                        for op, f in ((Operand.ACTIVATION, fp("a", "mk", levels[0])),
                                      (Operand.WEIGHT, fp("w", "kn", levels[1])),
                                      (Operand.OUTPUT, fp("o", "mn", levels[2]) * 4 if acc_on_chip else 0)):
                            use[mem[op].name] = use.get(mem[op].name, 0) + f
                        ok = all(use[nm] <= next(x for x in acc.memories if x.name == nm).usable_bytes for nm in use)
                        if levels == (0, 0, 0):
                            base = ok
                        if not (ok and base):
                            continue
                        a, w, rd, wr = _loop_nest_traffic(order, m, n, k, *tiles.values(), 1, 1, 4, 1, levels)
                        t = tiles[dmap.stream]
                        comp_cycles = naive.chunked_compute_cycles(m, n, k, r, c, comp.dataflow.value, t)
                        one = naive.chunked_compute_cycles(m, n, k, r, c, comp.dataflow.value, full[dmap.stream])
                        folds = naive.fold_count(m, n, k, r, c, comp.dataflow.value, full[dmap.stream])
                        stat = {"m": 1, "n": 1, "k": 0}[dmap.stream]
                        cyc = float(pipeline_cycles(comp_cycles, 0.0, (a + w + rd) / bw, wr / bw, 1, True,
                                                    r * c * stat / bw, r * c * 4 / bw, one / folds))
                        key = (round(cyc, 6), a + w + rd + wr)
                        if best is None or key < best:
                            best = key
    return best


_SLOW = pytest.mark.slow


@pytest.mark.parametrize("df,shape,sizes", [
    (df, shape, sizes) if (df, shape) in {("ws", (24, 9, 40)), ("os", (9, 30, 50)), ("is", (100, 12, 12)),
                                          ("ws", (37, 21, 19))}
    else pytest.param(df, shape, sizes, marks=_SLOW)
    for df in ("ws", "os", "is")
    for shape, sizes in [((37, 21, 19), (256, 256, 512)), ((9, 30, 50), (1024, 128, 2048)),
                         ((100, 12, 12), (96, 96, 128)), ((24, 9, 40), (128, 512, 96))]])
def test_mapper_matches_exhaustive_loop_nest(df, shape, sizes):
    acc = design(rows=4, cols=4, dataflow=df, sizes=sizes, bw=2.0)
    m, n, k = shape
    plan = plan_layer(Layer(name="x", kind=LayerKind.MATMUL, m=m, n=n, k=k), acc)
    ref = _reference_best(acc, m, n, k)
    if ref is None:
        assert not plan.mapping.fits
        return
    assert plan.mapping.fits
    assert plan.cycles == max(math.floor(ref[0] + 0.5), plan.compute_cycles)
    assert plan.dram_bytes == pytest.approx(ref[1])


# ------------------------------------------------------------------------------------ properties
layers = st.tuples(st.integers(1, 400), st.integers(1, 160), st.integers(1, 300),
                   st.sampled_from(["dense", "2:4", "1:4", "u0.3", "u0.7"]), st.integers(0, 3))
designs = st.fixed_dictionaries({
    "rows": st.sampled_from([2, 4, 8, 16]), "cols": st.sampled_from([2, 4, 8, 16]),
    "dataflow": st.sampled_from(["ws", "os", "is"]), "rtl": st.booleans(),
    "sizes": st.tuples(*[st.integers(11, 18).map(lambda e: 1 << e)] * 3),
    "bw": st.sampled_from([0.5, 2.0, 8.0, 64.0]), "modes": st.sampled_from([("dense",), ("dense", "2:4"),
                                                                           ("dense", "1:4", "2:4")]),
    "overflow": st.sampled_from(["passes", "dense"]), "shared": st.booleans(),
    "port_bw": st.sampled_from([4.0, 64.0, 1e9])})


def _make(d, **over):
    d = {**d, **over}
    timing = "rtl" if d["rtl"] and d["dataflow"] == "ws" else "scalesim"
    return design(rows=d["rows"], cols=d["cols"], dataflow=d["dataflow"], sizes=d["sizes"], bw=d["bw"],
                  double=d.get("double", True), timing=timing, modes=d["modes"], overflow=d["overflow"],
                  port_bw=d["port_bw"], shared=d["shared"], objective=d.get("objective"))


# 2-D convs (their output pixels tiled as rectangles, halos read once per tile, padding made on chip):
# ("conv", input size, kernel, stride, in channels, out channels, depthwise, pattern)
convs = st.tuples(st.just("conv"), st.integers(3, 40), st.sampled_from([1, 3, 5, 7]), st.sampled_from([1, 2]),
                  st.integers(1, 64), st.integers(1, 96), st.booleans(), st.sampled_from(["dense", "2:4", "1:4"]))
any_layers = st.one_of(layers, convs)


def conv_of(h, f, s, c, kout, depthwise):
    """A 2-D conv on an ``h x h`` input, ``f x f`` kernel, stride ``s``, PyTorch's same padding."""
    p, g = (f - 1) // 2, (c if depthwise else 1)
    kout = c if depthwise else kout
    o = (h + 2 * p - f) // s + 1
    geo = ConvGeometry(in_channels=c, out_channels=kout, kernel=(f, f), stride=(s, s), padding=(p, p), dilation=(1, 1),
                       groups=g, input_size=(h, h), output_size=(o, o))
    return Layer(name="c", kind=LayerKind.CONV2D, m=o * o, n=kout // g, k=(c // g) * f * f, groups=g, conv=geo)


def _masked(shape):
    if shape[0] == "conv":
        layer = conv_of(*shape[1:7])
        pat = shape[7]
        return (layer if pat == "dense" else layer.sparsify(NM(int(pat[0]), int(pat[2])))), layer
    m, n, k, pat, seed = shape
    layer = layer_of(m, n, k, seed=seed)
    if pat == "dense":
        return layer, layer
    p = NM(int(pat[0]), int(pat[2])) if ":" in pat else Unstructured(float(pat[1:]))
    return layer.sparsify(p), layer


PROPERTY_SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _check_properties(shape, d):
    layer, dense_layer = _masked(shape)
    acc = _make(d)
    base = plan_layer(layer, acc)
    # the guarantees are about mappings that fit; when even the smallest tiles overflow a buffer the
    # engine still answers (smallest tiles, mapping.fits False) but promises nothing more
    assume(base.mapping.fits)
    # MACs conserved; compulsory <= DRAM bytes
    nnz = int(np.count_nonzero(layer.mask)) if layer.mask is not None else layer.n * layer.k * layer.groups
    assert base.effective_macs == layer.m * nnz
    assert base.executed_macs >= base.effective_macs
    assert base.dram_bytes >= base.compulsory_bytes * (1 - 1e-9)
    assert base.cycles >= base.compute_cycles
    # sparse never slower than dense
    assert base.cycles <= plan_layer(dense_layer, acc).cycles
    # double buffering (same working capacity) never slower than single buffering
    single = plan_layer(layer, _make(d, double=False, sizes=tuple(s // 2 for s in d["sizes"])))
    assert single.mapping.fits and base.cycles <= single.cycles
    # cycles never rise when a buffer or the bandwidth grows; nor do DRAM bytes, unless the mapper
    # traded them for fewer compute cycles or less buffer-port time (fewer stream chunks)
    for i in range(3):
        sizes = tuple(s * 4 if j == i else s for j, s in enumerate(d["sizes"]))
        _no_worse(base, plan_layer(layer, _make(d, sizes=sizes)), f"memory {i} grown")
    _no_worse(base, plan_layer(layer, _make(d, bw=d["bw"] * 4)), "bandwidth grown")


def _no_worse(base, grown, what):
    assert grown.cycles <= base.cycles, what
    # (streamed memories: or for fewer bytes of resident-tile reloads exposed to the array, or for
    # overlap: a layer run single buffered in the whole memory, double buffered in the grown design;
    # or for another mode: with more bandwidth a 2:4 layer can run faster dense, as its metadata no
    # longer pays for the MACs it skips, and dense moves more weight bytes)
    if (grown.compute_cycles >= base.compute_cycles and grown.sram_port_cycles >= base.sram_port_cycles
            and grown.extra.get("reload_bytes", 0.0) >= base.extra.get("reload_bytes", 0.0)
            and not (grown.double_buffered and not base.double_buffered) and grown.mode == base.mode):
        assert grown.dram_bytes <= base.dram_bytes * (1 + 1e-9), what
    else:
        TRADES.append((base.dram_bytes, grown.dram_bytes))


TRADES: list = []


@settings(max_examples=500, **PROPERTY_SETTINGS)
@given(any_layers, designs)
def test_memory_model_properties(shape, d):
    _check_properties(shape, d)


def _check_streamed(shape, d):
    """``double_buffered: streamed`` on every memory: bounded by compulsory bytes and the array; never
    slower than the same memories single buffered (false), never slower nor more DRAM bytes than
    halves (true: the same trade relaxation as growing a buffer), and monotone in buffers and bandwidth."""
    layer, _ = _masked(shape)
    halves = plan_layer(layer, _make(d))
    assume(halves.mapping.fits)
    plan = plan_layer(layer, _make(d, double="streamed"))
    assert plan.mapping.fits                       # it holds whatever halves hold
    assert plan.dram_bytes >= plan.compulsory_bytes * (1 - 1e-9)
    assert plan.cycles >= plan.compute_cycles
    assert plan.cycles <= plan_layer(layer, _make(d, double=False)).cycles
    _no_worse(halves, plan, "streamed vs halves")
    for i in range(3):
        sizes = tuple(s * 4 if j == i else s for j, s in enumerate(d["sizes"]))
        _no_worse(plan, plan_layer(layer, _make(d, double="streamed", sizes=sizes)), f"streamed, memory {i} grown")
    _no_worse(plan, plan_layer(layer, _make(d, double="streamed", bw=d["bw"] * 4)), "streamed, bandwidth grown")


@settings(max_examples=200, **PROPERTY_SETTINGS)
@given(any_layers, designs)
def test_streamed_buffering_properties(shape, d):
    _check_streamed(shape, d)


@pytest.mark.slow
@settings(max_examples=10_000, **PROPERTY_SETTINGS)
@given(any_layers, designs)
def test_streamed_buffering_properties_many(shape, d):
    """Streamed never slower than halves or single, on 10,000 random layers (GEMMs and 2-D convs)."""
    _check_streamed(shape, d)


def _every_mode_costed(layer, acc):
    """The engine's plan of ``layer`` with every mode's search run in full (no ``best`` to beat), then
    the engine's rule: the fewest (cycles, DRAM bytes), or (DRAM bytes, cycles); ties: dense, then
    the larger N, then the first."""
    dmap = DATAFLOWS[acc.compute.dataflow]
    cands, ncols, _, nnz, _, sums = engine._candidates(layer, acc, dmap)
    ls = engine._LayerSetup(layer, acc, dmap, sums)
    chosen = None
    for cand in cands:
        cycles, dram, make = engine._mode_plan(layer, dmap, cand, ncols, nnz, ls, {})
        rank = (dram, cycles) if ls.dram_first else (cycles, dram)
        if chosen is None or rank < chosen[0] or (rank == chosen[0] and 0 < chosen[1] < cand.n):
            chosen = (rank, cand.n, make)
    return chosen[2]()


@settings(max_examples=400, **PROPERTY_SETTINGS)
@given(any_layers, designs, st.sampled_from(["cycles", "dram"]), st.sampled_from([True, "streamed"]))
def test_modes_that_lose_stop_early_and_the_choice_is_every_modes(shape, d, objective, double):
    """The engine costs the sparse modes first and stops the search of a mode as soon as it cannot
    rank as well as a mode already costed (mapping._search's ``cut``); the plan is the one every
    mode's full search gives."""
    layer, _ = _masked(shape)
    acc = _make(d, objective=objective, double=double)
    engine._PLANS.clear()
    assert plan_layer(layer, acc) == _every_mode_costed(layer, acc)


def test_a_mode_that_fits_nowhere_is_searched_again_in_full(monkeypatch):
    """When no tile that was costed fits and some were skipped for the other mode's rank, whether a
    skipped one fits is not known: the mode's search runs again without the cut (order -2)."""
    orders = []

    def spy(*args, _cost=engine._mode_cost):
        got = _cost(*args)
        orders.append((args[-1] < math.inf, int(got[0])))
        return got

    monkeypatch.setattr(engine, "_mode_cost", spy)
    acc = design(rows=4, cols=4, dataflow="os", sizes=(64, 64, 64), modes=("dense", "2:4"))
    layer = layer_of(64, 32, 128).sparsify(NM(2, 4))
    engine._PLANS.clear()
    plan = plan_layer(layer, acc)
    assert (True, -2) in orders and not plan.mapping.fits
    assert plan == _every_mode_costed(layer, acc)


def pool(db, objective="cycles"):
    """vegeta-flex's array with a 1 MiB pool holding every operand."""
    return accel.build({
        "name": "pool", "compute": {"rows": 32, "cols": 32, "dataflow": "ws", "clock_hz": 1e9,
                                    "activation_bits": 16, "weight_bits": 16, "accumulator_bits": 32},
        "memories": [{"name": "pool", "size_bytes": 1 << 20, "read_bw_bytes_per_cycle": 640,
                      "holds": ["activation", "weight", "output"], "double_buffered": db}],
        "dram": {"bandwidth_bytes_per_s": 16e9}, "mapper": {"objective": objective}})


def test_streamed_pool_holds_the_stationary_tile_once():
    """A 1024 x 768 x 768 GEMM in a 1 MiB pool: halves re-read the weights 4 times (256 token rows
    held); streamed holds 512 rows once and streams 32-column weight tiles twice, so it can read the
    weights twice, at the price of one exposed reload of the 512 x 768 activation tile."""
    layer = Layer(name="q", kind=LayerKind.LINEAR, m=1024, n=768, k=768)
    acc = pool("streamed")
    dmap = DATAFLOWS[acc.compute.dataflow]
    cands, *_, sums = engine._candidates(layer, acc, dmap)
    ls = engine._LayerSetup(layer, acc, dmap, sums)
    p = engine._map_problem(layer, dmap, cands[0], ls)
    fp = footprints(p, 512, 32, 768, 1)
    # A (index 0) is stationary: n is the innermost loop with more than one trip
    assert _stationary(0, 2, 24, 1) == 0
    fits, double, resident = _streamed_fit(0, 2, 24, 1, 1, *fp, 0, 0, 0, ls.op_mem, ls.used, ls.usable, ls.size,
                                             ls.streamed)
    assert fits and double and resident == 1       # 768 KiB + 2 x (48 + 64) KiB <= 1 MiB; not in halves
    assert sum(fp) > (1 << 20) // 2
    a, w, _, out_wr, _ = dram_traffic(p, "m>n>k", 2, 24, 1)
    assert (a, w, out_wr) == (1024 * 768 * 2, 2 * 768 * 768 * 2, 1024 * 768 * 2)
    # the engine: never slower than halves or no double buffering; halves move more bytes
    plan, halves, single = plan_layer(layer, acc), plan_layer(layer, pool(True)), plan_layer(layer, pool(False))
    assert plan.cycles <= min(halves.cycles, single.cycles)
    assert plan.dram_bytes <= halves.dram_bytes


def _check_dram_objective(shape, d):
    """``mapper.objective: dram`` against the default (same layer, same design, halves, streamed or
    single buffered memories): never more DRAM bytes, never fewer cycles (the default takes the
    fewest), the bounds every plan keeps (compulsory bytes, compute cycles, MACs), and DRAM bytes
    non-increasing in each buffer and in the bandwidth."""
    layer, _ = _masked(shape)
    cyc_plan = plan_layer(layer, _make(d))
    assume(cyc_plan.mapping.fits)
    plan = plan_layer(layer, _make(d, objective="dram"))
    assert plan.mapping.fits
    assert plan.dram_bytes <= cyc_plan.dram_bytes * (1 + 1e-12)
    assert plan.cycles >= cyc_plan.cycles
    assert plan.dram_bytes >= plan.compulsory_bytes * (1 - 1e-9)
    assert plan.cycles >= plan.compute_cycles
    assert plan.effective_macs == cyc_plan.effective_macs and plan.executed_macs >= plan.effective_macs
    # the same objective named explicitly is the default, bit for bit
    assert plan_layer(layer, _make(d, objective="cycles")) == cyc_plan
    # the fewest bytes over a superset of fitting mappings (a buffer grown) or the same set (more
    # bandwidth): DRAM bytes never rise (cycles may: a byte-saving mapping that now fits can be slower)
    for i in range(3):
        sizes = tuple(s * 4 if j == i else s for j, s in enumerate(d["sizes"]))
        grown = plan_layer(layer, _make(d, objective="dram", sizes=sizes))
        assert grown.dram_bytes <= plan.dram_bytes * (1 + 1e-12), f"memory {i} grown"
    assert plan_layer(layer, _make(d, objective="dram", bw=d["bw"] * 4)).dram_bytes <= plan.dram_bytes * (1 + 1e-12)


@settings(max_examples=150, **PROPERTY_SETTINGS)
@given(any_layers, designs, st.sampled_from([True, False, "streamed"]))
def test_dram_objective_properties(shape, d, double):
    _check_dram_objective(shape, {**d, "double": double})


def test_dram_objective_plans_are_not_shared_with_the_default():
    """The BERT query GEMM of the streamed-pool test: the default keeps 256 token rows in halves
    (compute-bound); ``dram`` holds 512 rows once and reads the weights twice. Plans for the two
    objectives are kept apart in the plan cache."""
    layer = Layer(name="q", kind=LayerKind.LINEAR, m=1024, n=768, k=768)
    engine._PLANS.clear()
    fast, lean = plan_layer(layer, pool("streamed")), plan_layer(layer, pool("streamed", "dram"))
    assert lean.dram_bytes < fast.dram_bytes and lean.cycles > fast.cycles
    assert plan_layer(layer, pool("streamed")) == fast        # from the cache, the default's own plan
    assert len(engine._PLANS._d) == 2


@pytest.mark.slow
@settings(max_examples=10_000, **{**PROPERTY_SETTINGS, "derandomize": True})
@given(any_layers, designs)
def test_memory_model_properties_many(shape, d):
    """More buffer: no more cycles, nor DRAM bytes but for a trade; more bandwidth: no more cycles; on
    10,000 random layers (GEMMs and 2-D convs) and designs."""
    _check_properties(shape, d)


# ----------------------------------------------------------------------------------- pipeline
def test_pipeline_double_buffering_exact_cases():
    # one DRAM-bound step: load + write-back + the compute that cannot overlap, not twice the DRAM time
    assert pipeline_cycles(10.0, 0.0, 100.0, 50.0, 1, True, 5.0, 5.0, 10.0) == 160.0
    assert pipeline_cycles(10.0, 0.0, 100.0, 50.0, 1, False) == 160.0
    # compute-bound: the first fold's stationary tile and the last fold's outputs are exposed
    assert pipeline_cycles(1000.0, 0.0, 100.0, 50.0, 8, True, 5.0, 7.0, 10.0) == 1012.0
    assert pipeline_cycles(1000.0, 0.0, 100.0, 50.0, 8, False) == 1150.0
    # the SRAM ports overlap the compute: the longer of the two counts
    assert pipeline_cycles(100.0, 400.0, 10.0, 10.0, 4, True, 1.0, 1.0, 10.0) == 402.0
    # streamed: the resident tile's reloads on the array's side, never beyond single buffering
    assert pipeline_cycles(1000.0, 0.0, 100.0, 50.0, 8, True, 5.0, 7.0, 10.0, reload=30.0) == 1042.0
    assert pipeline_cycles(1000.0, 0.0, 100.0, 50.0, 8, True, 5.0, 7.0, 10.0, reload=500.0) == 1150.0
    assert pipeline_cycles(10.0, 0.0, 100.0, 50.0, 8, True, 5.0, 7.0, 10.0, reload=30.0) == 160.0


def test_stationary_operand_of_every_order():
    for o, order in enumerate(ORDERS):
        for counts in itertools.product((1, 2), repeat=3):
            want = naive.stationary(order, *counts)
            assert _stationary(o, *counts) == (-1 if want is None else want), (order, counts)


# ------------------------------------------------------------------ the compiled search vs plain Python
_SEARCH_CASES = (st.integers(1, 300), st.integers(1, 90), st.integers(1, 200), st.sampled_from(["m", "n", "k"]),
                 st.integers(0, 2**31 - 1), st.booleans(), st.integers(1, 3), st.booleans(),
                 st.sampled_from(["cycles", "dram"]))


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(*_SEARCH_CASES)
def test_compiled_search_equals_plain_python(m, n, k, stream, seed, double, n_mem, with_streamed, objective):
    _check_search(m, n, k, stream, seed, double, n_mem, with_streamed, objective)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(*_SEARCH_CASES)
def test_compiled_search_equals_plain_python_many(m, n, k, stream, seed, double, n_mem, with_streamed, objective):
    _check_search(m, n, k, stream, seed, double, n_mem, with_streamed, objective)


def _check_search(m, n, k, stream, seed, double, n_mem, with_streamed, objective):
    rng = np.random.default_rng(seed)
    dims = [d for d in "mnk" if d != stream]
    conv = ()
    if stream == "m" and rng.integers(0, 2):      # a 2-D conv: m tiles are rectangles of its output
        conv = _random_conv(rng)
        m = conv[0] * conv[1] * conv[2]
    p = MapProblem(m=m, n=n, k=k, groups=int(rng.integers(1, 4)), stream=stream, row_dim=dims[0], col_dim=dims[1],
                   rows=4, cols=8, a_pass_bytes=float(rng.integers(0, 5000)), a_halo_bytes=float(rng.integers(0, 50)),
                   a_cut_free=int(rng.integers(0, 3)), a_gemm_bytes=float(rng.integers(0, 9000)),
                   a_tile_factor=float(rng.choice([0.5, 1.0, 2.0])), w_bytes=float(rng.integers(0, 9000)),
                   meta_bytes=float(rng.choice([0.0, 300.0])), w_tile_factor=1.0,
                   meta_tile_factor=float(rng.choice([0.0, 0.25])), o_final_bytes=float(rng.integers(1, 4000)),
                   psum_bytes=float(rng.integers(1, 8000)), acc_bytes=4.0, psum_on_chip=bool(rng.integers(0, 2)),
                   conv=conv)
    if conv:     # a pass over the whole map reads it once; a tiled pass never less
        b, oy, ox, iy, ix, sy, sx, ey, ex, py, px, px_bytes = conv[:12]
        whole = naive.conv_tile_reads((oy, ox), (iy, ix), (sy, sx), (ey, ex), (py, px), (oy, ox))[0]
        p = dataclasses.replace(p, a_pass_bytes=b * whole * px_bytes,
                                a_gemm_bytes=max(p.a_gemm_bytes, b * whole * px_bytes))
    gran = {dims[0]: 4, dims[1]: 8, stream: 1}
    tiles = {d: tile_candidates(max(1, {"m": m, "n": n, "k": k}[d]), gran[d]) for d in "mnk"}
    tiles["m"] = m_tile_candidates(p, gran["m"])
    ns = len(tiles[stream])
    compute = np.sort(rng.integers(1, 5000, ns))[::-1].astype(np.int64)   # ties and plateaus on purpose
    compute[rng.integers(0, ns, ns // 2)] = compute[0]
    port = rng.choice([0.0, 100.0, 3000.0], ns)
    op_mem = rng.integers(0, n_mem, 4).astype(np.int64)
    used = np.zeros(n_mem, dtype=bool)
    used[op_mem] = True
    usable = rng.choice([64.0, 512.0, 4096.0, 1e9], n_mem)
    bw = float(rng.choice([0.5, 4.0, 64.0]))
    args = (op_mem, used, usable, double, bw, float(rng.integers(0, 50)), float(rng.integers(0, 50)),
            float(rng.integers(0, 500)))
    if with_streamed:   # double_buffered: streamed memories (whole bytes twice the usable half)
        args += (usable * 2, rng.integers(0, 2, n_mem).astype(bool))
    if not with_streamed:
        args += (None, None)
    mapping, cyc, traffic, j = search(p, tiles, compute, port, *args, objective=objective)
    ok, r_cyc, _, order, pick = naive.mapper_search(p, tiles, compute, port, *args, objective=objective)
    idx = pick[0]
    assert (mapping.order, mapping.fits, mapping.tile_m, mapping.tile_n, mapping.tile_k) == \
        (order, ok, *(int(tiles[d][i]) for d, i in zip("mnk", idx)))
    assert cyc == r_cyc and traffic == pick[6] and j == idx["mnk".index(stream)]
    # another mode's first key to beat (the engine's mode choice): below, at and above this one's
    a, w, meta, out_wr, psum_rd = traffic
    key = a + w + meta + psum_rd + out_wr if objective == "dram" else cyc
    for cut in (0.0, key * 0.5, key - 0.5, key, key + 0.5, key * 2 + 1):
        got = search(p, tiles, compute, port, *args, objective=objective, cut=cut)
        if not ok or (key <= cut if objective == "dram" else key < cut):
            assert got == (mapping, cyc, traffic, j)      # nothing fits, or it ranks before the cut: the same
        elif got is not None:                            # else it loses: None, or a mapping that fits, no better
            g_a, g_w, g_meta, g_out, g_ps = got[2]
            g_key = g_a + g_w + g_meta + g_ps + g_out if objective == "dram" else got[1]
            assert got[0].fits and (g_key > cut if objective == "dram" else g_key >= cut)


def test_plans_are_shared_by_equal_layers_and_returned_as_copies():
    from simulator import engine
    engine._PLANS.clear()
    acc = design(rows=4, cols=8, dataflow="ws", modes=("dense", "2:4"))
    rng = np.random.default_rng(3)
    mask = np.zeros((1, 64, 24), dtype=bool)
    mask.reshape(1, 16, 4, 24)[:, :, :2, :] = True          # exactly 2 of every 4: equal statistics
    w1, w2 = rng.standard_normal((2, 1, 64, 24)).astype(np.float32)
    one = Layer(name="a", kind=LayerKind.MATMUL, m=50, n=24, k=64, weight_name="a.w", weight=w1,
                weight_layout=WeightLayout.KN, mask=mask)
    two = Layer(name="b", kind=LayerKind.MATMUL, m=50, n=24, k=64, weight_name="b.w", weight=w2,
                weight_layout=WeightLayout.KN, mask=np.roll(mask, 1, axis=1))
    first = plan_layer(one, acc)
    first.sram_read_bytes.clear()                             # a caller changing its copy changes nothing
    engine_hits = len(engine._PLANS._d)
    second = plan_layer(two, acc)
    assert len(engine._PLANS._d) == engine_hits and second.name == "b"
    engine._PLANS.clear()
    fresh = plan_layer(two, acc)
    assert fresh == second and fresh.sram_read_bytes


# ------------------------------------------------------------------------- conv inputs from DRAM
def _random_conv(rng):
    """A random 2-D conv geometry as :class:`MapProblem` ``conv`` takes it (small: brute force reads it)."""
    b, oy, ox = (int(x) for x in rng.integers(1, [3, 13, 13]))
    sy, sx, ey, ex, py, px = (int(x) for x in rng.integers([1, 1, 1, 1, 0, 0], [3, 3, 5, 5, 3, 3]))
    py, px = min(py, ey - 1), min(px, ex - 1)
    # as PyTorch sizes it (out = floor((in + 2 pad - span) / stride) + 1): rows past the last window unread
    iy = max(1, (oy - 1) * sy + ey - 2 * py + int(rng.integers(0, sy)))
    ix = max(1, (ox - 1) * sx + ex - 2 * px + int(rng.integers(0, sx)))
    return (b, oy, ox, iy, ix, sy, sx, ey, ex, py, px, float(rng.choice([1.0, 3.0, 64.0])), ey * ex)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31 - 1))
def test_conv_tiles_are_rectangles_read_once(seed):
    """A 2-D conv's m tiles are rectangles of output rows x columns, each reading its input window
    once (halos counted once per tile, padding not read): the mapper's closed form and its choice of
    rectangle against a brute force over output pixels and kernel taps (tests/naive.py)."""
    from simulator.mapping import _best_rectangle, a_cut
    rng = np.random.default_rng(seed)
    conv = _random_conv(rng)
    b, oy, ox, iy, ix, sy, sx, ey, ex, py, px, px_bytes, kpos = conv
    m = b * oy * ox
    p = MapProblem(m=m, n=8, k=kpos * 4, groups=1, stream="m", row_dim="k", col_dim="n", rows=4, cols=4,
                   a_pass_bytes=0.0, a_halo_bytes=0.0, a_cut_free=0, a_gemm_bytes=1e12, a_tile_factor=1.0, w_bytes=1.0,
                   meta_bytes=0.0, w_tile_factor=1.0, meta_tile_factor=0.0, o_final_bytes=1.0, psum_bytes=1.0,
                   acc_bytes=4.0, psum_on_chip=False, conv=conv)
    whole = naive.conv_tile_reads((oy, ox), (iy, ix), (sy, sx), (ey, ex), (py, px), (oy, ox))[0]
    p = dataclasses.replace(p, a_pass_bytes=b * whole * px_bytes)
    for count in range(2, oy * ox + 1):
        for most in (oy * ox, -(-oy * ox // count)):
            want = naive.best_conv_rectangle((oy, ox), (iy, ix), (sy, sx), (ey, ex), (py, px), b, count, most)
            got = _best_rectangle(conv, count, most)
            assert (None if got is None else got[1:]) == want, (conv, count, most)
    for tm in m_tile_candidates(p, 1):
        tm = int(tm)
        a, factor = a_cut(p, tm)
        if tm % (oy * ox) == 0:
            assert a == p.a_pass_bytes      # whole images: the map once
            continue
        rect = _best_rectangle(conv, -(-m // tm) // b, tm)
        assert rect is not None and rect[0][0] * rect[0][1] == tm   # every candidate is a rectangle
        reads, window = naive.conv_tile_reads((oy, ox), (iy, ix), (sy, sx), (ey, ex), (py, px), rect[0])
        assert a == b * reads * px_bytes
        assert factor == pytest.approx(min(1.0, window / tm / kpos) / min(1.0, whole / (oy * ox) / kpos))


def test_conv_output_tiles_count_halos_once():
    """ResNet-18's 56x56x64 3x3 conv on edge-npu, tiles of 196 output pixels: 14x14 rectangles read a
    62x62 window sum (15 + 16 + 16 + 15 rows and columns), not 56 rows plus 2 halo rows at each of 15
    cuts of a flat run (308,224 bytes), nor a flat run's partial rows."""
    acc = accel.load("edge-npu")
    plan = plan_layer(_conv(56, 64, 3, 1, 1), acc)
    assert plan.mapping.tile_m == 196 and plan.mapping.levels[0] == 0
    assert plan.dram_read_bytes[Operand.ACTIVATION] == 62 * 62 * 64


# ------------------------------------------------------------------------- conv inputs from DRAM
def _conv(h, c, k, stride, pad, n=64, batch=1):
    from workloads import ConvGeometry
    o = (h + 2 * pad - k) // stride + 1
    geo = ConvGeometry(in_channels=c, out_channels=n, kernel=(k, k), stride=(stride, stride), padding=(pad, pad),
                       dilation=(1, 1), groups=1, input_size=(h, h), output_size=(o, o))
    return Layer(name="c", kind=LayerKind.CONV2D, m=batch * o * o, n=n, k=c * k * k, conv=geo)


@pytest.mark.parametrize("h,c,k,stride,pad,read", [
    (7, 128, 3, 1, 1, 7 * 7 * 128),        # the 7x7x128 map: 6,272 bytes, not 9x9x128 = 10,368
    (56, 64, 3, 2, 1, 56 * 56 * 64),       # stride 2: the outputs read 56x56 (not 58x58, nor 57x57)
    (57, 64, 3, 2, 0, 57 * 57 * 64),       # the same layer as a SCALE-Sim topology has it: padding folded in
    (224, 3, 7, 2, 3, 224 * 224 * 3),      # the stem
    (8, 16, 3, 2, 0, 7 * 7 * 16),          # the last row and column no output reads
])
def test_padding_is_made_on_chip(h, c, k, stride, pad, read):
    """A conv's compulsory input is the pixels some output reads, without the zero padding (made on
    chip by the address generator)."""
    acc = accel.load("edge-npu")
    plan = plan_layer(_conv(h, c, k, stride, pad), acc)
    layer = _conv(h, c, k, stride, pad)
    assert plan.compulsory_bytes == read + layer.k * layer.n + layer.m * layer.n
    assert plan.dram_read_bytes[Operand.ACTIVATION] >= read


def test_traced_and_saved_workloads_give_one_answer(tmp_path):
    """A saved workload keeps the conv geometry (padding included): the same cycles and bytes as the
    traced one, layer by layer."""
    from simulator import simulate
    from workloads import Workload
    from workloads.modelspec import trace_zoo
    wl = trace_zoo("resnet18")
    back = Workload.load(wl.save(tmp_path / "r18.json"))
    acc = accel.load("edge-npu")
    one, two = simulate(wl, acc).layers, simulate(back, acc).layers
    assert list(one["cycles"]) == list(two["cycles"]) and list(one["dram_bytes"]) == list(two["dram_bytes"])


def test_topology_csv_gives_the_traced_answer(tmp_path):
    """`sparsim topology` then `simulate --workload`: a SCALE-Sim conv row's IFMAP includes its padding
    (a stride-2 3x3 conv of a 56x56 map is written 57x57); import takes the padding back, so every layer
    (stride-2 ones included) costs the same cycles and DRAM bytes as traced."""
    from simulator import simulate
    from workloads import Workload
    from workloads.modelspec import trace_zoo
    wl = trace_zoo("resnet18")
    path = tmp_path / "r18.csv"
    wl.to_scalesim_csv(path, fmt="conv")
    back = Workload.from_scalesim_csv(path)
    down = next(l for l in back.layers if l.name == "layer2.0.conv1")
    assert (down.conv.input_size, down.conv.padding, down.conv.stride) == ((56, 56), (1, 1), (2, 2))
    acc = accel.load("edge-npu")
    one, two = simulate(wl, acc).layers, simulate(back, acc).layers
    assert list(one["cycles"]) == list(two["cycles"]) and list(one["dram_bytes"]) == list(two["dram_bytes"])


@pytest.mark.parametrize("ports", ["bandwidth", "single", "dual"])
def test_port_model_conflict_stall(ports):
    """`memories[i].ports`: an output buffer wide enough for a partial-sum row read and write in one
    cycle (128 B a cycle, rows of 16 x 4 B). Bytes over bandwidth (the default, sparsim's model before
    ports) and a read port beside a write port (dual) serve a partial-sum step in one cycle; one
    read-write port (single) cannot read and write in the same cycle: two, a port-conflict stall."""
    doc = {"name": "ports", "compute": {"rows": 16, "cols": 16, "dataflow": "ws", "clock_hz": 1e9,
                                       "timing": {"model": "scalesim"}},
           "memories": [{"name": "in", "size_bytes": 1 << 22, "read_bw_bytes_per_cycle": 64,
                         "holds": ["activation", "weight"]},
                        {"name": "out", "size_bytes": 1 << 22, "read_bw_bytes_per_cycle": 128,
                         "holds": ["output"], "ports": ports}],
           "dram": {"bandwidth_bytes_per_s": 1e12}}
    acc = accel.build(doc)
    assert acc.memories[1].ports is accel.Ports(ports)
    layer = Layer(name="l", kind=LayerKind.LINEAR, m=4096, n=16, k=16 * 32)
    plan = plan_layer(layer, acc)
    steps = 32 * 4096                                   # k folds x streamed rows: one psum row written each
    want = {"bandwidth": steps * 64 / 128 + 31 * 4096 * 64 / 128, "single": steps + 31 * 4096,
            "dual": steps}[ports]
    assert plan.sram_port_cycles == want
    if ports == "single":
        assert plan.cycles >= steps + 31 * 4096 > plan.compute_cycles     # the port is the bottleneck


def test_port_model_key_is_checked():
    doc = {"name": "ports", "compute": {"rows": 4, "cols": 4, "dataflow": "ws", "clock_hz": 1e9},
           "memories": [{"name": "m", "size_bytes": 4096, "read_bw_bytes_per_cycle": 8,
                         "holds": ["activation", "weight", "output"], "ports": "triple"}],
           "dram": {"bandwidth_bytes_per_s": 1e9}}
    with pytest.raises(accel.AccelConfigError, match=r"memories\[0\]\.ports: expected one of bandwidth, single, dual"):
        accel.build(doc)


def test_the_mapper_runs_as_plain_python_under_numba_disable_jit():
    """NUMBA_DISABLE_JIT=1 (stepping through the kernels in a debugger) plans a layer as the compiled
    kernels do; the static loop table used to need the compiled kernels' ``py_func`` at import."""
    import json
    import os
    import subprocess
    import sys
    code = ("import json, accel; from simulator import plan_layer; from tests.test_mapping import layer_of; "
            "p = plan_layer(layer_of(96, 80, 144, seed=3), accel.load('sparse-tc-2of4')); "
            "print(json.dumps([str(p.mapping), p.cycles, p.dram_bytes]))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "NUMBA_DISABLE_JIT": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    p = plan_layer(layer_of(96, 80, 144, seed=3), accel.load("sparse-tc-2of4"))
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [str(p.mapping), p.cycles, p.dram_bytes]
