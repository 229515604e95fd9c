"""BERT-base batch 8 on vegeta-flex: how few DRAM bytes can any schedule move with that preset's
on-chip capacity (1 MiB: ifmap 512 KiB, filter 256 KiB, ofmap 256 KiB)?

Run: .venv/bin/python benchmarks/bench_dram_bound.py   (minutes: part 3 walks every tile size of every layer; also in `make bench`)

Three parts, all against the compulsory bytes (every input and weight read once, every output
written once, layer by layer: 660.6 MB; the issue's goal is 1.5x that):

1. The engine's mapping space, walked completely. Per layer shape (dense mode), every tile count of
   every dimension (for a given count the smallest tile has the same traffic and the smallest
   buffer footprint, so walking one tile per count is exact), all three distinct loop orders, with
   the engine's own traffic and footprint functions and each buffer's usable bytes (half when double
   buffered). The minimum is a lower bound for any mapping the engine can express with these
   buffers; the engine's chosen mapping is printed beside it.
2. Schedule-independent lower bounds (any order of the multiply-adds, any reuse, each multiply-add
   done once; elements of at least 2 bytes):
   * Smith, Lowery, Langou, van de Geijn, "A Tight I/O Lower Bound for Matrix Multiplication"
     (arXiv:1702.02017; published abstract: "The new lower bound is 2mnk/sqrt(S) - 2S where S is
     the size of fast memory", for C := AB + C with a two-level memory of S words). For C := AB
     (our layers: the output starts on chip at zero) an algorithm plus one read per output element
     is an algorithm for C := AB + C, so its I/O is at least ``2MNK/sqrt(S) - 2S - MN`` words; if
     the paper's count is reads only (the arXiv abstract: "reason about only the cost associated
     with reading the matrices") adding the MN output writes gives the full ``2MNK/sqrt(S) - 2S``.
     We print the weaker (safe) form, in bytes at 2 bytes per word with S = capacity / 2 (an
     element of more bytes only uses more of the memory and moves more bytes, so this relaxes
     nothing). It holds for any organisation of that capacity, so for the three separate buffers
     as well as for one pool.
   * For the three separate buffers (each holding only its operand) a per-buffer form of the
     Hong-Kung phase argument: cut the run into phases of T DRAM bytes; in a phase the multiply-adds
     touch sets A_p, W_p, C_p with ``|A_p||W_p||C_p| >= F^2`` (Loomis-Whitney); an A (W) element
     touched was in its buffer at the phase start or was read in the phase, so
     ``2|A_p| <= S_A + r_A``; a C element touched is in the output buffer at the phase end or was
     written in the phase, so ``2|C_p| <= S_O + w_C``; hence ``F <= sqrt(xyz) / 2^1.5`` with
     ``x + y + z = S_A + S_W + S_O + T`` (each at least its buffer), and the traffic is at least
     ``T (ceil(MNK / F) - 1)``, maximised over T.
3. Schedules outside the engine's space (or outside the preset's description), DRAM bytes exact:
   the engine with a different description where it can express one (no double buffering; one
   1 MiB pool holding all three operands; 16-bit partial sums), and the walk of part 1 with a
   different fit rule where it cannot: **resident-single**, the stationary tile (the operand the
   innermost loop with more than one trip does not index) held once and only the streamed tiles
   double buffered, with the whole memory, not half of it. Two workload rewrites are counted on
   top: q, k, v as one GEMM reading their shared input once (N = 2304), and fused attention (the
   128 x 128 scores stay on chip: per head Q, K, V, scores at 4 B and the context take about
   128 KiB, so qk + av move Q, K, V and the context only). Last, an idealization of uneven tiles:
   an operand re-read per tile costs D / T passes instead of ceil(D / T) (a bound for tilings whose
   last tile is smaller, e.g. 341 + 341 + 342 token rows where 342 do not fit).
4. The engine itself with ``double_buffered: streamed`` (the resident-single rule of part 3 as an
   engine option): the 1 MiB as one streamed pool and the preset's three buffers streamed, DRAM
   bytes and cycles beside the preset and the walk's bound for that rule, with each mapper
   objective (``mapper.objective``: fewest cycles first, the default, or fewest DRAM bytes first).
"""
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import yaml

import accel
import sparsim
from accel.spec import Operand
from simulator import engine, simulate
from simulator.mapping import DIMS, ORDERS, a_cut, dram_traffic, footprints
from workloads import Workload

sys.path.insert(0, str(Path(__file__).parent))
from bench_memory import compulsory_bytes  # noqa: E402

ELEM = 2            # bytes of the smallest element (bf16 activations and weights)
_OPS = (Operand.ACTIVATION, Operand.WEIGHT, Operand.METADATA, Operand.OUTPUT)


def tile_sizes(size: int, gran: int) -> np.ndarray:
    """The smallest tile (a multiple of ``gran``, or the whole dimension) for every tile count."""
    units = -(-size // gran)
    counts = np.arange(1, units + 1)
    return np.unique(np.minimum(size, gran * -(-units // counts)))


def _problem(layer, acc):
    """The engine's view of ``layer`` in dense mode (its MapProblem) and the operand -> memory map.
    (Engine internals, read only; if they are renamed, only this function changes.)"""
    dmap = engine.DATAFLOWS[acc.compute.dataflow]
    cands, *_, sums = engine._candidates(layer, acc, dmap)
    cand = next(c for c in cands if c.n == 0)
    p = engine._map_problem(layer, dmap, cand, engine._LayerSetup(layer, acc, dmap, sums))
    gran = {dmap.rows: acc.compute.rows, dmap.cols: acc.compute.cols, dmap.stream: 1}
    return p, gran, {op: acc.memory_for(op) for op in _OPS}


def _stationary(order: str, cm, cn, ck):
    """Index into _OPS of the operand held across the innermost loop that runs more than once
    (A when it is n, W when m, the output when k; -1 when every loop runs once)."""
    count = {"m": cm, "n": cn, "k": ck}
    held = {"n": 0, "m": 1, "k": 3}
    out = np.full(np.broadcast(cm, cn, ck).shape, -1)
    for d in order.split(">"):                    # outer to inner: the last loop with > 1 trip wins
        out = np.where(count[d] > 1, held[d], out)
    return out


def traffic(p, order: str, cm, cn, ck):
    """The engine's DRAM traffic rule (``simulator.mapping.dram_traffic``), vectorized over tile
    counts: (activation, weight, metadata, output writes, partial-sum reads) in bytes. An operand is
    fetched again on every iteration of the loop that does not index it when a loop inside that one
    which it does depend on runs more than once."""
    count = {"m": cm, "n": cn, "k": ck}
    loops = order.split(">")

    def again(irrelevant):
        inner = loops[loops.index(irrelevant) + 1:]
        return np.logical_or.reduce([np.asarray(count[d]) > 1 for d in inner] + [np.zeros(np.shape(cm), bool)])

    # a pass over A cut along m (a_cut: a 2-D conv's rectangles, else a halo per cut), at the smallest
    # tile that makes cm tiles, as dram_traffic takes it
    cut = np.vectorize(lambda c: a_cut(p, -(-max(1, p.m) // int(c)))[0], otypes=[float])(cm)
    a = np.where(cm > 1, cut, p.a_pass_bytes) * np.where(again("n"), cn, 1)
    w_mult = np.where(again("m"), cm, 1)
    spill = np.where(again("k"), np.maximum(ck - 1, 0), 0)
    return (a, p.w_bytes * w_mult, p.meta_bytes * w_mult, p.o_final_bytes + spill * p.psum_bytes,
            spill * p.psum_bytes)


def tile_bytes(p, tm, tn, tk, ck):
    """The engine's buffer footprint of one tile per operand (``simulator.mapping.footprints``),
    vectorized: activation, weight, metadata, output (only while partial sums stay on chip)."""
    o = np.where(p.psum_on_chip | (ck > 1), tm * tn * p.acc_bytes, 0.0)
    factor = np.vectorize(lambda t: a_cut(p, int(t))[1],
                          otypes=[float])(tm)
    return tm * tk * factor, tk * tn * p.w_tile_factor, tk * tn * p.meta_tile_factor, o


def _check_against_engine(p):
    """The vectorized rules above equal the engine's scalar ones (a few tilings of this layer)."""
    for order in ORDERS:
        for cm, cn, ck, tm, tn, tk in ((1, 1, 1, p.m, p.n, p.k), (3, 2, 5, 7, 32, 64), (2, 4, 1, 9, 64, p.k)):
            mine = traffic(p, order, np.array([cm]), np.array([cn]), np.array([ck]))
            assert np.allclose([float(x[0]) for x in mine], [float(x) for x in dram_traffic(p, order, cm, cn, ck)])
            mine = tile_bytes(p, np.array([tm]), np.array([tn]), np.array([tk]), np.array([ck]))
            assert np.allclose([float(x[0]) for x in mine], [float(x) for x in footprints(p, tm, tn, tk, ck)])


def min_dram(layer, acc, rule: str = "engine", whole: bool = True):
    """Smallest DRAM bytes over the complete tiling space, its mapping, and the compulsory bytes.
    ``rule``: "engine" (tiles within each memory's usable bytes) or "resident" (resident-single:
    the stationary tile once, streamed tiles twice, within the whole memory). ``whole=False``
    idealizes uneven tiles: an operand re-read per tile of a dimension D costs D / T passes, not
    ceil(D / T) (as if the remainder tile rode along for free), over every tile size."""
    p, gran, mems = _problem(layer, acc)
    _check_against_engine(p)
    size = {"m": p.m, "n": p.n, "k": p.k}
    if whole:
        tiles = {d: tile_sizes(size[d], gran[d]) for d in DIMS}
    else:
        tiles = {d: np.unique(np.minimum(size[d], gran[d] * np.arange(1, -(-size[d] // gran[d]) + 1))) for d in DIMS}
    passes = (lambda d, t: -(-d // t)) if whole else (lambda d, t: d / t)
    best, where = np.inf, None
    tn, tk = (x.ravel() for x in np.meshgrid(tiles["n"], tiles["k"], indexing="ij"))
    cn, ck = passes(p.n, tn), passes(p.k, tk)
    for tmv in tiles["m"][::-1]:                  # largest first: ties show the largest tile
        tm = np.full_like(tn, tmv)
        cm = passes(p.m, tm)
        for order in ORDERS:
            a, w, meta, out_wr, psum_rd = traffic(p, order, cm, cn, ck)
            held = _stationary(order, cm, cn, ck) if rule == "resident" else None
            use = {}
            for i, (op, f) in enumerate(zip(_OPS, tile_bytes(p, tm, tn, tk, ck))):
                if held is not None:   # metadata (2) goes with the weights (1); one tile of all: no stream
                    f = f * np.where((held == (1 if i == 2 else i)) | (held < 0), 1, 2)
                use[mems[op].name] = use.get(mems[op].name, 0.0) + f
            cap = {m.name: (m.size_bytes if rule == "resident" else m.usable_bytes) for m in acc.memories}
            fits = np.logical_and.reduce([use[name] <= cap[name] for name in use])
            total = np.where(fits, a + w + meta + out_wr + psum_rd, np.inf)
            i = int(np.argmin(total))
            if total[i] < best:
                best, where = float(total[i]), (order, int(tm[i]), int(tn[i]), int(tk[i]))
    return best, where, p.a_pass_bytes + p.w_bytes + p.meta_bytes + p.o_final_bytes


def smith_bound(m: int, n: int, k: int, capacity: float, groups: int = 1) -> float:
    """Smith et al.'s bound, safe form, in bytes (see the module docstring); never below 0."""
    s = capacity / ELEM
    return groups * ELEM * max(0.0, 2 * m * n * k / math.sqrt(s) - 2 * s - m * n)


def phase_bound(m: int, n: int, k: int, caps, groups: int = 1) -> float:
    """The per-buffer phase bound for separate A, W and output buffers of ``caps`` bytes (module
    docstring), in bytes; maximised over the phase size T on a log grid (each T gives a bound)."""
    floors = np.array(caps, dtype=float)
    macs = float(m) * n * k
    best = 0.0
    high = np.sort(floors)[::-1]
    for t in np.geomspace(1e3, 1e10, 600):
        total = floors.sum() + t
        for c in range(3):   # the product of x_i >= floor_i summing to total is largest at max(floor_i, level)
            level = (total - high[:c].sum()) / (3 - c)
            if level >= high[c]:
                break
        f = math.sqrt(float(np.prod(np.maximum(floors, level)))) / ELEM ** 1.5
        best = max(best, t * (math.ceil(macs / f) - 1))
    return groups * best


def scaled(scale: float, which: str):
    doc = yaml.safe_load(accel.presets.path("vegeta-flex").read_text())
    for mm in doc["memories"]:
        if which == "all" or mm["name"] == which:
            mm["size_bytes"] = int(mm["size_bytes"] * scale)
    return accel.build(doc)


def variant(pool: bool = False, double_buffered: bool = True, acc_bits: int | None = None):
    """vegeta-flex with its buffers as they are or as one pool of the same 1 MiB holding all three
    operands; double buffered or not; a different accumulator width."""
    doc = yaml.safe_load(accel.presets.path("vegeta-flex").read_text())
    if pool:
        total = sum(mm["size_bytes"] for mm in doc["memories"])
        bw = sum(mm["read_bw_bytes_per_cycle"] for mm in doc["memories"])
        doc["memories"] = [{"name": "pool", "size_bytes": total, "read_bw_bytes_per_cycle": bw,
                            "holds": ["activation", "weight", "output"]}]
    for mm in doc["memories"]:
        mm["double_buffered"] = double_buffered
    if acc_bits:
        doc["compute"]["accumulator_bits"] = acc_bits
    return accel.build(doc)


def fused_qkv(wl):
    """q, k, v of every encoder as one GEMM with N = 3 x 768 (their input read once)."""
    layers = []
    for layer in wl.layers:
        kind = layer.name.split(".")[-1]
        if kind == "query":
            layers.append(dataclasses.replace(layer, name=layer.name[:-5] + "qkv", module=layer.module[:-5] + "qkv",
                                              n=3 * layer.n, weight_name=None, weight=None, weight_layout=None,
                                              mask=None, pattern=None))
        elif kind not in ("key", "value"):
            layers.append(layer)
    return Workload(name=wl.name + "-qkv", layers=layers, batch=wl.batch)


def attention_saving(wl, acc) -> float:
    """DRAM bytes fused attention saves: the scores written by qk and read by av."""
    o_b = acc.compute.activation_bits / 8
    return sum(2 * layer.groups * layer.m * layer.n * o_b for layer in wl.layers if layer.name.endswith(".qk"))


def shapes(wl):
    seen = {}
    for layer in wl.layers:
        key = (layer.name.split(".")[-1], int(layer.m), layer.n, layer.k, layer.groups)
        seen.setdefault(key, [layer, 0])[1] += 1
    return seen


def walk(wl, acc, rule="engine", verbose=False, whole=True):
    """(minimum over the tiling space under ``rule``, the engine's own result) for the workload."""
    rows = simulate(wl, acc).layers.set_index("name") if verbose or rule == "engine" else None
    total, info = 0.0, {}
    for key, (layer, count) in shapes(wl).items():
        b, mp, comp = min_dram(layer, acc, rule, whole)
        total += b * count
        info[key] = (b, mp, comp, None if rows is None else rows.loc[layer.name])
    if verbose:
        print(f"{'layer':13s} {'M':>5s} {'N':>5s} {'K':>5s} {'G':>3s} {'compulsory MB':>13s} {'bound MB':>9s} "
              f"{'bound x':>7s} {'engine MB':>9s}  bound's mapping (order, Tm, Tn, Tk); engine's")
        for key, (b, mp, comp, r) in info.items():
            print(f"{key[0]:13s} {key[1]:5d} {key[2]:5d} {key[3]:5d} {key[4]:3d} {comp / 1e6:13.2f} {b / 1e6:9.2f} "
                  f"{b / comp:7.2f} {r['dram_bytes'] / 1e6:9.2f}  {mp}; "
                  f"{(r['loop_order'], int(r['tile_m']), int(r['tile_n']), int(r['tile_k']))}")
    engine_total = None if rows is None else float(rows["dram_bytes"].sum())
    return total, engine_total


def print_bounds(wl, acc, comp):
    """Part 2: per layer shape, compulsory bytes and the schedule-independent bounds."""
    mem = {mm.name: mm for mm in acc.memories}
    caps_full = [mem[n].size_bytes for n in ("ifmap_sram", "filter_sram", "ofmap_sram")]
    caps_half = [mem[n].usable_bytes for n in ("ifmap_sram", "filter_sram", "ofmap_sram")]
    pool, half = sum(caps_full), sum(caps_half)
    print(f"{'layer':13s} {'compulsory':>10s} {'Smith 1 MiB':>11s} {'Smith 512 KiB':>13s} "
          f"{'phase 512/256/256':>17s} {'phase halves':>12s}   (MB; bound = the largest with compulsory)")
    tot = np.zeros(5)
    for key, (layer, count) in shapes(wl).items():
        m, n, k, g = int(layer.m), layer.n, layer.k, layer.groups
        c = ELEM * g * (m * k + k * n + m * n)
        row = np.array([c, smith_bound(m, n, k, pool, g), smith_bound(m, n, k, half, g),
                        phase_bound(m, n, k, caps_full, g), phase_bound(m, n, k, caps_half, g)])
        tot += count * np.concatenate([[c], np.maximum(row[1:], c)])
        print(f"{key[0]:13s} " + " ".join(f"{v / 1e6:{w}.2f}" for v, w in zip(row, (10, 11, 13, 17, 12))))
    print(f"{'whole model':13s} " + " ".join(f"{v / 1e6:{w}.1f}" for v, w in zip(tot, (10, 11, 13, 17, 12)))
          + "   (max with compulsory, per layer)")
    print(f"{'x compulsory':13s} " + " ".join(f"{v / comp:{w}.2f}" for v, w in zip(tot, (10, 11, 13, 17, 12))))


def main():
    wl = sparsim.trace_zoo("bert_base", batch=8)
    base = accel.load("vegeta-flex")
    comp = compulsory_bytes(wl, base)
    goal = 1.5 * comp
    print("1. BERT-base batch 8 on vegeta-flex (buffers 512 / 256 / 256 KiB, double buffered), dense:")
    b, e = walk(wl, base, verbose=True)
    print(f"whole model: compulsory {comp / 1e6:.1f} MB (goal 1.5x = {goal / 1e6:.1f} MB), engine-space bound "
          f"{b / 1e6:.1f} MB = {b / comp:.2f}x, engine {e / 1e6:.1f} MB = {e / comp:.2f}x\n")
    print(f"{'buffers':28s} {'bound x':>8s} {'engine x':>9s}")
    for scale, which in ((2, "all"), (3, "all"), (4, "all"), (8, "ofmap_sram"), (16, "ofmap_sram")):
        b, e = walk(wl, scaled(scale, which))
        label = f"all x{scale}" if which == "all" else f"{which} x{scale}"
        print(f"{label:28s} {b / comp:8.2f} {e / comp:9.2f}")
        sys.stdout.flush()

    print("\n2. Schedule-independent lower bounds (any schedule; module docstring):")
    print_bounds(wl, base, comp)

    print("\n3. Schedules outside the engine's space or the preset's description (DRAM bytes, dense):")
    qkv = fused_qkv(wl)
    att = attention_saving(wl, base)
    print(f"{'schedule':78s} {'MB':>8s} {'x':>6s}  how counted")
    sep_single = variant(double_buffered=False)
    pool_db, pool_single = variant(pool=True), variant(pool=True, double_buffered=False)
    pool_single16 = variant(pool=True, double_buffered=False, acc_bits=16)
    sep16 = variant(acc_bits=16)
    rows = [
        ("preset's three buffers, double buffered (the engine as is)", float(simulate(wl, base).totals["dram_bytes"]), "engine"),
        ("three buffers, not double buffered (whole buffers for the tiles)",
         float(simulate(wl, sep_single).totals["dram_bytes"]), "engine"),
        ("three buffers, resident-single", walk(wl, base, "resident")[0], "walk"),
        ("three buffers, resident-single + one qkv GEMM + fused attention", walk(qkv, base, "resident")[0] - att,
         "walk"),
        ("three buffers, resident-single + qkv + fused attention + 16-bit partial sums",
         walk(qkv, sep16, "resident")[0] - att, "walk"),
        ("three buffers, resident-single, uneven tiles (idealized) + qkv + fused attention",
         walk(qkv, base, "resident", whole=False)[0] - att, "walk"),
        ("... the same + 16-bit partial sums", walk(qkv, sep16, "resident", whole=False)[0] - att, "walk"),
        ("one 1 MiB pool, double buffered (halves)", float(simulate(wl, pool_db).totals["dram_bytes"]), "engine"),
        ("one 1 MiB pool, resident-single", walk(wl, pool_db, "resident")[0], "walk"),
        ("one 1 MiB pool, not double buffered", float(simulate(wl, pool_single).totals["dram_bytes"]), "engine"),
        ("one 1 MiB pool, resident-single + one qkv GEMM", walk(qkv, pool_db, "resident")[0], "walk"),
        ("one 1 MiB pool, resident-single + qkv + fused attention", walk(qkv, pool_db, "resident")[0] - att, "walk"),
        ("one 1 MiB pool, resident-single, uneven tiles (idealized)", walk(wl, pool_db, "resident", whole=False)[0],
         "walk"),
        ("one 1 MiB pool, not double buffered, 16-bit partial sums",
         float(simulate(wl, pool_single16).totals["dram_bytes"]), "engine"),
    ]
    for label, v, how in rows:
        print(f"{label:78s} {v / 1e6:8.1f} {v / comp:6.2f}  {how}")
        sys.stdout.flush()
    pre, one = simulate(wl, base).totals, simulate(wl, pool_single).totals
    dram_time = walk(wl, pool_db, "resident")[0] / base.dram_bytes_per_cycle
    print(f"cycles (engine): preset {pre['cycles'] / 1e6:.2f} M (array alone {pre['compute_cycles'] / 1e6:.2f} M); "
          f"1 MiB pool not double buffered {one['cycles'] / 1e6:.2f} M (every transfer exposed); the pool's "
          f"resident-single bytes alone take {dram_time / 1e6:.2f} M cycles at "
          f"{base.dram.bandwidth_bytes_per_s / 1e9:.0f} GB/s")

    print("\n4. The engine with `double_buffered: streamed` (examples/accel/), beside the preset and the walk's bound,")
    print("   with each mapper objective (`mapper.objective`: cycles, the default, or dram: DRAM bytes first):")
    print(f"{'design':58s} {'objective':9s} {'engine MB':>9s} {'x':>6s} {'M cycles':>9s} {'bound x':>8s}")
    examples = Path(__file__).resolve().parent.parent / "examples" / "accel"
    bounds = {"pool": walk(wl, pool_db, "resident")[0], "three": walk(wl, base, "resident")[0]}
    for label, acc, bound in (
            ("vegeta-flex preset (3 buffers, halves)", base, walk(wl, base)[0]),
            ("1 MiB pool, streamed (vegeta-flex-pool-streamed.yaml)",
             accel.load_yaml(examples / "vegeta-flex-pool-streamed.yaml"), bounds["pool"]),
            ("3 buffers, streamed (vegeta-flex-streamed.yaml)", accel.load_yaml(examples / "vegeta-flex-streamed.yaml"),
             bounds["three"])):
        for objective in accel.MapperObjective:
            t = simulate(wl, dataclasses.replace(acc, mapper_objective=objective)).totals
            mark = "*" if objective is acc.mapper_objective else " "
            print(f"{label:58s} {objective.value + mark:9s} {t['dram_bytes'] / 1e6:9.1f} {t['dram_bytes'] / comp:6.2f} "
                  f"{t['cycles'] / 1e6:9.2f} {bound / comp:8.2f}")
    print("(* the design file's own objective; bound: the fewest DRAM bytes of any mapping in the engine's tiling\n"
          " space under the design's fit rule; an exposed reload of a resident tile costs cycles, so the cycles\n"
          " objective may move more bytes than the bound)")

if __name__ == "__main__":
    from docs_out import run_recorded
    run_recorded("dram_bound", "bench_dram_bound.py", main)
