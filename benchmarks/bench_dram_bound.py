"""How low can BERT-base batch 8 on vegeta-flex go in DRAM bytes with that preset's buffers?

Run: .venv/bin/python benchmarks/bench_dram_bound.py   (about 5 minutes; also in `make bench`)

For every layer shape (dense mode) this walks the engine's whole mapping space, not the mapper's
restricted candidates: every tile size of every dimension (every multiple of the array's rows or
columns for the dimensions on the array, every size for the streamed one), all three distinct loop
orders (``simulator.mapping``: the other three orders reduce to them), with the engine's own
traffic and buffer-footprint functions and each buffer's usable capacity (half when double
buffered). The smallest DRAM total over that space is a lower bound for any mapping the engine can
express with these buffers; the engine's chosen mapping is printed beside it. Then the same bound
and the engine's result with every buffer, or the output buffer alone, scaled up.
"""
import sys
from pathlib import Path

import numpy as np
import yaml

import accel
import sparsim
from accel.spec import Operand
from simulator import engine, simulate
from simulator.mapping import DIMS, ORDERS, dram_traffic, footprints

sys.path.insert(0, str(Path(__file__).parent))
from bench_memory import compulsory_bytes  # noqa: E402


def min_dram(layer, acc):
    """(smallest DRAM bytes over the complete tiling space, its mapping, compulsory bytes), dense mode."""
    dmap = engine.DATAFLOWS[acc.compute.dataflow]
    cands, ncols, live_n, _ = engine._candidates(layer, acc, dmap)
    cand = next(c for c in cands if c.n == 0)
    p = engine._problem(layer, acc, dmap, cand, ncols, live_n)
    comp = acc.compute
    gran = {dmap.rows: comp.rows, dmap.cols: comp.cols, dmap.stream: 1}
    size = {"m": p.m, "n": p.n, "k": p.k}
    tiles = {d: np.unique(np.minimum(size[d], gran[d] * np.arange(1, -(-size[d] // gran[d]) + 1))) for d in DIMS}
    mems = engine._mem_of(acc)
    best, where = np.inf, None
    tn, tk = (x.ravel() for x in np.meshgrid(tiles["n"], tiles["k"], indexing="ij"))
    for tmv in tiles["m"]:
        tm = np.full_like(tn, tmv)
        cm, cn, ck = -(-p.m // tm), -(-p.n // tn), -(-p.k // tk)
        for order in ORDERS:
            a, w, meta, out_wr, psum_rd = dram_traffic(p, order, cm, cn, ck)
            use = {}
            for op, f in zip((Operand.ACTIVATION, Operand.WEIGHT, Operand.METADATA, Operand.OUTPUT),
                             footprints(p, order, tm, tn, tk, ck)):
                use[mems[op].name] = use.get(mems[op].name, 0.0) + f
            fits = np.logical_and.reduce([use[m.name] <= m.usable_bytes for m in acc.memories if m.name in use])
            total = np.where(fits, a + w + meta + out_wr + psum_rd, np.inf)
            i = int(np.argmin(total))
            if total[i] < best:
                best, where = float(total[i]), (order, int(tm[i]), int(tn[i]), int(tk[i]))
    return best, where, p.a_pass_bytes + p.w_bytes + p.meta_bytes + p.o_final_bytes


def scaled(scale: float, which: str):
    doc = yaml.safe_load(accel.presets.path("vegeta-flex").read_text())
    for m in doc["memories"]:
        if which == "all" or m["name"] == which:
            m["size_bytes"] = int(m["size_bytes"] * scale)
    return accel.build(doc)


def bound(wl, acc, verbose=False):
    rows = simulate(wl, acc).layers.set_index("name")
    seen, total = {}, 0.0
    for layer in wl.layers:
        key = (layer.name.split(".")[-1], int(layer.m), layer.n, layer.k, layer.groups)
        if key not in seen:
            seen[key] = min_dram(layer, acc) + (rows.loc[layer.name],)
        total += seen[key][0]
    if verbose:
        print(f"{'layer':13s} {'M':>5s} {'N':>5s} {'K':>5s} {'G':>3s} {'compulsory MB':>13s} {'bound MB':>9s} "
              f"{'bound x':>7s} {'engine MB':>9s}  bound's mapping (order, Tm, Tn, Tk); engine's")
        for key, (b, mp, comp, r) in seen.items():
            print(f"{key[0]:13s} {key[1]:5d} {key[2]:5d} {key[3]:5d} {key[4]:3d} {comp / 1e6:13.2f} {b / 1e6:9.2f} "
                  f"{b / comp:7.2f} {r['dram_bytes'] / 1e6:9.2f}  {mp}; "
                  f"{(r['loop_order'], int(r['tile_m']), int(r['tile_n']), int(r['tile_k']))}")
    return total, float(rows["dram_bytes"].sum())


def main():
    wl = sparsim.trace_zoo("bert_base", batch=8)
    base = accel.load("vegeta-flex")
    comp = compulsory_bytes(wl, base)
    print("BERT-base batch 8 on vegeta-flex (buffers 512 / 256 / 256 KiB, double buffered), dense:")
    b, e = bound(wl, base, verbose=True)
    print(f"whole model: compulsory {comp / 1e6:.1f} MB, bound {b / 1e6:.1f} MB = {b / comp:.2f}x, "
          f"engine {e / 1e6:.1f} MB = {e / comp:.2f}x\n")
    print(f"{'buffers':28s} {'bound x':>8s} {'engine x':>9s}")
    for scale, which in ((2, "all"), (3, "all"), (4, "all"), (8, "ofmap_sram"), (16, "ofmap_sram")):
        b, e = bound(wl, scaled(scale, which))
        label = f"all x{scale}" if which == "all" else f"{which} x{scale}"
        print(f"{label:28s} {b / comp:8.2f} {e / comp:9.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
