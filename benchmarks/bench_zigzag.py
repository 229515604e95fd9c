"""sparsim against ZigZag (KU Leuven's design-space explorer), side by side, on one design and one layer set.

Run: .venv/bin/python benchmarks/bench_zigzag.py [--lpf 6] [--opt energy] [--layers NAME,...] [--json OUT]
     .venv/bin/python benchmarks/bench_zigzag.py --fresh --docs --before benchmarks/zigzag_before_0f8682b.json
         (what docs/benchmarks/generated/zigzag.md holds: ZigZag run again beside sparsim, and sparsim
         before issue 24's memory model, at 0f8682b)

It installs ``zigzag-dse==3.9.1`` into ``benchmarks/.zigzag-venv`` on first use (as
bench_scalesim.py does for SCALE-Sim), describes the ``edge-npu`` preset to ZigZag (a 16 x 16
weight-stationary array: C (the reduction) on one array dimension, K (output channels) on the other,
a one-byte weight register and a 32-bit partial-sum register per PE, the preset's three SRAMs with
their sizes and read bandwidths, its DRAM at 8 bytes a cycle) with ZigZag's energies set from
sparsim's own table (per byte, times each port's width), and runs both tools on a layer set: ResNet-18
and ResNet-50 convs, MobileNet-V2 depthwise convs, BERT-base GEMMs and an LLM decode GEMV (one token).

Per layer it prints cycles, DRAM bytes, compulsory bytes (every operand once: what sparsim reports,
a conv's input without its padding), energy without static power from both, and each tool's time
for that layer (sparsim: its mapping search and cost, plan cache cleared; ZigZag: its whole run for
the layer, LOMA with ``--lpf`` loop prime factors, ``opt=--opt``). ZigZag's results are cached in
``benchmarks/.zigzag-run/`` by the inputs that decide them, so a run of sparsim alone (another tree,
``PYTHONPATH=that tree``) compares against the same ZigZag numbers.

What cannot be matched is said per layer in the table's last column and in docs/memory-model.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".zigzag-venv"
RUN = HERE / ".zigzag-run"
ZIGZAG = "zigzag-dse==3.9.1"
EXTRA = ("six",)   # zigzag-dse 3.9.1 imports six without declaring it

# name, kind, shape: conv (H=W input, C in, K out, kernel, stride, pad, groups) or gemm (M, N, K)
LAYERS = [
    ("r18.conv1", "conv", (224, 3, 64, 7, 2, 3, 1)),
    ("r18.layer1.conv", "conv", (56, 64, 64, 3, 1, 1, 1)),
    ("r18.layer2.down", "conv", (56, 64, 128, 1, 2, 0, 1)),
    ("r18.layer2.conv1", "conv", (56, 64, 128, 3, 2, 1, 1)),
    ("r18.layer4.conv", "conv", (7, 512, 512, 3, 1, 1, 1)),
    ("r50.layer1.conv1", "conv", (56, 64, 64, 1, 1, 0, 1)),
    ("r50.layer3.conv3", "conv", (14, 256, 1024, 1, 1, 0, 1)),
    ("mnv2.dw112", "conv", (112, 96, 96, 3, 2, 1, 96)),
    ("mnv2.dw14", "conv", (14, 576, 576, 3, 1, 1, 576)),
    ("bert.query", "gemm", (128, 768, 768)),
    ("bert.ffn1", "gemm", (128, 3072, 768)),
    ("bert.ffn2", "gemm", (128, 768, 3072)),
    ("llm.decode.q", "gemm", (1, 4096, 4096)),
]

UNMATCHED = {
    "r18.conv1": "ZigZag unrolls C=3 of 16 rows; sparsim's im2col fills the rows with C x FY x FX",
    "mnv2.dw112": "depthwise: sparsim maps one channel's 3x3 on the rows (n=1); ZigZag unrolls G across the array",
    "mnv2.dw14": "depthwise: as above",
}


# ------------------------------------------------------------------------------------- sparsim side
def sparsim_layer(name, kind, shape):
    from workloads import ConvGeometry, Layer, LayerKind
    if kind == "gemm":
        m, n, k = shape
        return Layer(name=name, kind=LayerKind.LINEAR, m=m, n=n, k=k)
    h, c, kout, f, s, p, g = shape
    o = (h + 2 * p - f) // s + 1
    geo = ConvGeometry(in_channels=c, out_channels=kout, kernel=(f, f), stride=(s, s), padding=(p, p),
                       dilation=(1, 1), groups=g, input_size=(h, h), output_size=(o, o))
    return Layer(name=name, kind=LayerKind.CONV2D, m=o * o, n=kout // g, k=(c // g) * f * f, groups=g, conv=geo)


def run_sparsim(acc, layers, repeats=25):
    """Per layer: cycles, DRAM bytes, compulsory bytes, energy without static power, the mapping,
    and the best of ``repeats`` times of planning it with the plan cache cleared."""
    from simulator import engine, simulate_layer
    from simulator.dataflow import DATAFLOWS
    dmap = DATAFLOWS[acc.compute.dataflow.value]
    out = {}
    for name, kind, shape in layers:
        layer = sparsim_layer(name, kind, shape)
        row = simulate_layer(layer, acc)          # compiles / loads the kernels once
        plan = engine.plan_layer(layer, acc)
        k_folds = -(-layer.k // (acc.compute.rows if dmap.rows == "k" else acc.compute.cols))
        best = math.inf
        for _ in range(repeats):
            engine._PLANS.clear()
            t0 = time.perf_counter()
            engine.plan_layer(layer, acc)
            best = min(best, time.perf_counter() - t0)
        out[name] = {"cycles": row["cycles"], "dram_bytes": row["dram_bytes"],
                     "compulsory_bytes": row["compulsory_bytes"],
                     "energy_pj": row["energy_pj"] - row["energy_static_pj"], "time_s": best,
                     "port_cycles": float(plan.sram_port_cycles), "k_folds": int(k_folds),
                     "compute_cycles": float(plan.compute_cycles),
                     "mapping": f"{row['loop_order']} {row['tile_m']}x{row['tile_n']}x{row['tile_k']}"}
    return out


# -------------------------------------------------------------------------------------- ZigZag side
def ensure_zigzag() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if subprocess.run([str(py), "-c", "import zigzag.api"], capture_output=True).returncode != 0:
        print(f"installing {ZIGZAG} into {VENV}", flush=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", ZIGZAG, *EXTRA], check=True)
    return py


def _port(name, kind, bits, alloc):
    return {"name": name, "type": kind, "bandwidth_min": bits, "bandwidth_max": bits, "allocation": alloc}


def zigzag_hardware(acc) -> dict:
    """The accelerator as ZigZag describes it: energies per access are sparsim's per byte times the
    port's width in bytes (ZigZag counts accesses of a port's width), so both count the same bytes
    at the same price."""
    from accel import Operand
    comp, e = acc.compute, acc.energy
    act, wgt, out = (acc.memory_for(op) for op in (Operand.ACTIVATION, Operand.WEIGHT, Operand.OUTPUT))
    mac = e.mac(max(comp.activation_bits, comp.weight_bits), comp.data_type) + e.register_pj
    dram_bits = int(round(acc.dram_bytes_per_cycle * 8))

    def sram(m, operands, ports, served=("D1", "D2")):
        bits = int(m.read_bw_bytes_per_cycle * 8)
        return {"size": m.size_bytes * 8, "r_cost": m.read_energy_pj_per_byte * bits / 8,
                "w_cost": m.write_energy_pj_per_byte * bits / 8, "area": 0, "latency": 1, "operands": operands,
                "ports": ports(bits), "served_dimensions": list(served)}

    return {
        "name": acc.name,
        "memories": {
            "w_reg": {"size": comp.weight_bits, "r_cost": 0.0, "w_cost": 0.0, "area": 0, "latency": 1,
                      "operands": ["I2"], "served_dimensions": [],
                      "ports": [_port("r_port_1", "read", comp.weight_bits, ["I2, tl"]),
                                _port("w_port_1", "write", comp.weight_bits, ["I2, fh"])]},
            "o_reg": {"size": comp.accumulator_bits, "r_cost": 0.0, "w_cost": 0.0, "area": 0, "latency": 1,
                      "operands": ["O"], "served_dimensions": [],
                      "ports": [_port("r_port_1", "read", comp.accumulator_bits, ["O, tl", "O, th"]),
                                _port("w_port_1", "write", comp.accumulator_bits, ["O, fh", "O, fl"])]},
            act.name: sram(act, ["I1"], lambda b: [_port("r_port_1", "read", b, ["I1, tl"]),
                                                  _port("w_port_1", "write", b, ["I1, fh"])]),
            wgt.name: sram(wgt, ["I2"], lambda b: [_port("r_port_1", "read", b, ["I2, tl"]),
                                                  _port("w_port_1", "write", b, ["I2, fh"])]),
            out.name: sram(out, ["O"], lambda b: [_port("r_port_1", "read", b, ["O, tl", "O, th"]),
                                                 _port("w_port_1", "write", b, ["O, fh", "O, fl"])]),
            "dram": {"size": 1 << 40, "r_cost": acc.dram.energy_pj_per_byte * dram_bits / 8,
                     "w_cost": acc.dram.energy_pj_per_byte * dram_bits / 8, "area": 0, "latency": 1,
                     "operands": ["I1", "I2", "O"], "served_dimensions": ["D1", "D2"],
                     "ports": [_port("rw_port_1", "read_write", dram_bits,
                                     ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"])]},
        },
        "operational_array": {"unit_energy": mac, "unit_area": 1, "dimensions": ["D1", "D2"],
                              "sizes": [comp.cols, comp.rows]},
    }


def zigzag_mapping(acc) -> list:
    links = {"O": "O", "W": "I2", "I": "I1"}
    c = acc.compute
    return [{"name": "default", "spatial_mapping": {"D1": ["K, %d" % c.cols], "D2": ["C, %d" % c.rows]},
             "memory_operand_links": links},
            {"name": "depthwise", "spatial_mapping": {"D1": ["G, %d" % c.cols], "D2": ["FY, 3"]},
             "memory_operand_links": links}]


def zigzag_layer(i, name, kind, shape, acc) -> dict:
    c = acc.compute
    prec = {"W": c.weight_bits, "I": c.activation_bits, "O": c.accumulator_bits, "O_final": c.activation_bits}
    if kind == "gemm":
        m, n, k = shape
        return {"id": i, "name": "default", "operator_type": "Gemm", "equation": "O[b][k]+=W[k][c]*I[b][c]",
                "loop_dims": ["B", "K", "C"], "loop_sizes": [m, n, k], "operand_precision": prec,
                "operand_source": {"W": i, "I": i}}
    h, cin, kout, f, s, p, g = shape
    o = (h + 2 * p - f) // s + 1
    common = {"id": i, "operator_type": "Conv", "operand_precision": prec, "operand_source": {"W": i, "I": i},
              "dimension_relations": [f"ix={s}*ox+1*fx", f"iy={s}*oy+1*fy"], "pr_loop_dims": ["IX", "IY"],
              "pr_loop_sizes": [h, h], "padding": [[p, p], [p, p]]}
    if g == 1:
        return {**common, "name": "default", "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
                "loop_dims": ["B", "K", "C", "OY", "OX", "FY", "FX"], "loop_sizes": [1, kout, cin, o, o, f, f]}
    return {**common, "name": "depthwise", "equation": "O[b][g][oy][ox]+=W[g][fy][fx]*I[b][g][iy][ix]",
            "loop_dims": ["B", "G", "OY", "OX", "FY", "FX"], "loop_sizes": [1, g, o, o, f, f]}


WORKER = r'''
import json, sys, time, logging, io, contextlib
logging.disable(logging.CRITICAL)
import yaml
from zigzag.api import get_hardware_performance_zigzag
from zigzag.hardware.architecture.memory_port import DataDirection
from zigzag.mapping.data_movement import DataMoveAttr
spec = json.load(open(sys.argv[1]))
for item in spec["layers"]:
    wl = spec["dir"] + "/wl_" + item["key"] + ".yaml"
    yaml.safe_dump([item["layer"]], open(wl, "w"))
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        energy, latency, cmes = get_hardware_performance_zigzag(
            wl, spec["hw"], spec["map"], opt=spec["opt"], lpf_limit=spec["lpf"],
            dump_folder=spec["dir"] + "/out_" + item["key"], loma_show_progress_bar=False)
    dt = time.perf_counter() - t0
    cme = cmes[0][1][0][0] if isinstance(cmes[0][1], list) else cmes[0][0]
    dram = {}
    for op in cme.layer.layer_operands:
        top = cme.mapping.mem_level[op] - 1
        mv = cme.mapping.unit_mem_data_movement[op][top]
        amt = mv.get_attribute(DataMoveAttr.DATA_TRANS_AMOUNT_PER_PERIOD)
        prc = mv.get_attribute(DataMoveAttr.DATA_PRECISION)
        cnt = mv.get_attribute(DataMoveAttr.DATA_TRANS_PERIOD_COUNT)
        tot = {}
        for d in DataDirection:
            a, p_, c_ = amt.get(d), prc.get(d), cnt.get(d)
            tot[d.value] = float(a * p_ * c_) / 8 if a and p_ and c_ else 0.0
        dram[str(op)] = tot
    print(json.dumps({"key": item["key"], "cycles": float(cme.latency_total2), "energy_pj": float(cme.energy_total),
                      "mac_energy_pj": float(cme.mac_energy), "ideal_cycles": float(cme.ideal_cycle),
                      "compute_stall_cycles": float(cme.latency_total0),
                      "onload_cycles": float(cme.data_onloading_cycle),
                      "offload_cycles": float(cme.data_offloading_cycle),
                      "dram": dram, "time_s": dt, "temporal": str(cme.temporal_mapping)}), flush=True)
'''


def run_zigzag(acc, layers, lpf: int, opt: str, fresh: bool = False) -> dict:
    """ZigZag's results per layer, from the cache or a run in its own venv (``fresh``: run every
    layer again, so that both tools' times come from the same run on the same machine)."""
    RUN.mkdir(exist_ok=True)
    hw, mp = zigzag_hardware(acc), zigzag_mapping(acc)
    import yaml
    (RUN / "hw.yaml").write_text(yaml.safe_dump(hw, sort_keys=False))
    (RUN / "map.yaml").write_text(yaml.safe_dump(mp, sort_keys=False))
    cache_file = RUN / "cache.json"
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    todo, keys = [], {}
    for i, (name, kind, shape) in enumerate(layers):
        layer = zigzag_layer(0, name, kind, shape, acc)
        key = hashlib.sha256(json.dumps([ZIGZAG, hw, mp, layer, lpf, opt], sort_keys=True).encode()).hexdigest()[:16]
        keys[name] = key
        if fresh or key not in cache:
            todo.append({"key": key, "layer": layer})
    if todo:
        py = ensure_zigzag()
        spec = RUN / "spec.json"
        spec.write_text(json.dumps({"layers": todo, "hw": str(RUN / "hw.yaml"), "map": str(RUN / "map.yaml"),
                                    "opt": opt, "lpf": lpf, "dir": str(RUN)}))
        proc = subprocess.Popen([str(py), "-c", WORKER, str(spec)], stdout=subprocess.PIPE, text=True, cwd=RUN)
        for line in proc.stdout:
            got = json.loads(line)
            cache[got["key"]] = got
            cache_file.write_text(json.dumps(cache, indent=1))
            print(f"  zigzag: {next(n for n, k in keys.items() if k == got['key'])} in {got['time_s']:.1f} s",
                  file=sys.stderr, flush=True)
        if proc.wait() != 0:
            raise SystemExit(f"ZigZag failed (exit {proc.returncode})")
    out = {}
    for name, key in keys.items():
        z = cache[key]
        reads = sum(d["rd_out_to_low"] for d in z["dram"].values())
        writes = sum(d["wr_in_by_low"] for d in z["dram"].values())
        out[name] = {**z, "dram_bytes": reads + writes}
    return out


def cycle_note(a, b) -> str:
    """Why the cycles differ by more than 5 % on a layer both describe alike, from the two tools' own
    figures: ZigZag's compute-and-port time (its ``latency_total0``), its loading before the first MAC
    and writing after the last, against sparsim's busiest buffer port."""
    if abs(a["cycles"] / b["cycles"] - 1) <= 0.05 or "compute_stall_cycles" not in b:
        return ""
    kf = a["k_folds"]
    # sparsim's cycles with ZigZag's two rules: one more partial-sum access per output and fold count
    # (2 kf where sparsim has 2 kf - 1), and the loading phases added rather than overlapped
    busy = max(a["compute_cycles"], a["port_cycles"])
    ruled = (max(a["compute_cycles"], a["port_cycles"] * 2 * kf / (2 * kf - 1)) + (a["cycles"] - busy)
             + b["onload_cycles"] + b["offload_cycles"])
    return (f"with ZigZag's two rules below sparsim gives {ruled:,.0f} cycles, {ruled / b['cycles']:.3f} of "
            f"ZigZag's. Output-port-bound in both: ZigZag {b['compute_stall_cycles']:,.0f} cycles of compute and port time "
            f"against sparsim's {a['port_cycles']:,.0f} ({b['compute_stall_cycles'] / a['port_cycles']:.3f}; "
            f"ZigZag also reads the partial sums before the first of the {kf} reduction folds: {2 * kf} accesses "
            f"per output, sparsim {2 * kf - 1}, ratio {2 * kf / (2 * kf - 1):.3f}), plus "
            f"{b['onload_cycles']:,.0f} cycles loading its whole input tile before the first MAC and "
            f"{b['offload_cycles']:,.0f} writing after the last, where sparsim overlaps all but the first weight "
            f"tile and the last outputs")


def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def table(layers, s, z, before=None):
    """The side-by-side table (Markdown rows) and the geometric means; ``before``: a ``--json`` of
    another sparsim run against the same ZigZag (its DRAM bytes over its own compulsory bytes)."""
    head = ["layer", "sparsim cycles", "ZigZag cycles", "cycles s/z", "compulsory KB", "ZigZag x comp"]
    head += ["sparsim x comp before", "after", "sparsim / ZigZag DRAM before", "after"] if before else \
        ["sparsim x comp", "sparsim / ZigZag DRAM"]
    head += ["energy s/z", "sparsim ms", "ZigZag s", "speed-up", "not matched"]
    ratios = {k: [] for k in ("cyc", "sc", "zc", "sz", "bc", "bz", "en", "speed")}
    rows = []
    for name, _, _ in layers:
        a, b = s[name], z[name]
        comp = a["compulsory_bytes"]
        r = {"cyc": a["cycles"] / b["cycles"], "sc": a["dram_bytes"] / comp, "zc": b["dram_bytes"] / comp,
             "sz": a["dram_bytes"] / b["dram_bytes"], "en": a["energy_pj"] / b["energy_pj"],
             "speed": b["time_s"] / a["time_s"]}
        if before:
            p = before[name]
            r["bc"], r["bz"] = p["dram_bytes"] / p["compulsory_bytes"], p["dram_bytes"] / b["dram_bytes"]
        for k, v in r.items():
            ratios[k].append(v)
        row = [name, f"{a['cycles']:,}", f"{b['cycles']:,.0f}", f"{r['cyc']:.3f}", f"{comp / 1e3:,.1f}",
               f"{r['zc']:.2f}"]
        row += ([f"{r['bc']:.2f}", f"{r['sc']:.2f}", f"{r['bz']:.3f}", f"{r['sz']:.3f}"] if before
                else [f"{r['sc']:.2f}", f"{r['sz']:.3f}"])
        row += [f"{r['en']:.3f}", f"{a['time_s'] * 1e3:.2f}", f"{b['time_s']:.1f}", f"{r['speed']:,.0f}x",
                UNMATCHED.get(name, "") or cycle_note(a, b)]
        rows.append(row)
    g = {k: geomean(v) for k, v in ratios.items() if v}
    last = ["**geometric mean**", "", "", f"{g['cyc']:.3f}", "", f"{g['zc']:.2f}"]
    last += ([f"{g['bc']:.2f}", f"{g['sc']:.2f}", f"{g['bz']:.3f}", f"{g['sz']:.3f}"] if before
             else [f"{g['sc']:.2f}", f"{g['sz']:.3f}"])
    last += [f"{g['en']:.3f}", "", "", f"{g['speed']:,.0f}x", ""]
    return head, rows + [last], g


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="edge-npu")
    ap.add_argument("--lpf", type=int, default=6, help="ZigZag LOMA's loop prime factor limit (default 6)")
    ap.add_argument("--opt", default="energy", choices=["energy", "latency", "EDP"])
    ap.add_argument("--layers", default="", help="comma-separated layer names (default: all)")
    ap.add_argument("--json", default="", help="also write the per-layer results here")
    ap.add_argument("--before", default="",
                    help="a --json of another sparsim run (PYTHONPATH=<older tree>): before and after columns")
    ap.add_argument("--docs", action="store_true",
                    help="also write docs/benchmarks/generated/zigzag.md (the table and every preset's geomean)")
    ap.add_argument("--fresh", action="store_true",
                    help="run ZigZag again on every layer instead of taking its cached results (times side by side)")
    ap.add_argument("--every-preset", action="store_true",
                    help="sparsim alone: DRAM bytes over compulsory on the layer set, per preset (no ZigZag)")
    args = ap.parse_args(argv)
    import accel
    from docs_out import DocsOut
    if args.json:
        from sparsim._io import check_writable
        check_writable(args.json, "--json", (".json",))
    before = None
    if args.before:
        try:
            before = json.loads(Path(args.before).read_text())["sparsim"]
            for name, _, _ in LAYERS:
                if name in before:
                    float(before[name]["dram_bytes"]) / float(before[name]["compulsory_bytes"])
        except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError) as e:
            ap.error(f"--before {args.before}: not a --json of this script ({type(e).__name__}: {e})")
    out = DocsOut("zigzag", "python benchmarks/bench_zigzag.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    layers = [x for x in LAYERS if not args.layers or x[0] in args.layers.split(",")]
    if not args.every_preset:
        acc = accel.load(args.preset)
        z = run_zigzag(acc, layers, args.lpf, args.opt, args.fresh)
        s = run_sparsim(acc, layers)
        print(f"sparsim ({Path(sys.modules['simulator'].__file__).parent.parent}) vs {ZIGZAG} (LOMA lpf {args.lpf}, "
              f"opt={args.opt}) on {args.preset}\n")
        head, rows, g = table(layers, s, z, before)
        out.text(f"`{args.preset}` described to both; {ZIGZAG}, LOMA with {args.lpf} loop prime factors, "
                 f"`opt={args.opt}`; energy without static power; times are wall clock of one process on the "
                 f"machine above (noisy under load)." + (
                     " \"before\": sparsim's own run of this script (`--json`) at the tree given to `--before`, "
                     "its ratio over that tree's compulsory bytes." if before else ""))
        out.table(head, rows)
        if args.json:
            Path(args.json).write_text(json.dumps({"sparsim": s, "zigzag": z, "geomean": g}, indent=1))
    if args.every_preset or args.docs:
        rows = []
        for preset in accel.presets.names():
            s = run_sparsim(accel.load(preset), layers, repeats=1)
            r = {n: v["dram_bytes"] / v["compulsory_bytes"] for n, v in s.items()}
            worst = max(r, key=r.get)
            rows.append([f"`{preset}`", f"{geomean(list(r.values())):.3f}", f"{worst} {r[worst]:.2f}"])
        out.text("DRAM bytes over compulsory on the same layers, every preset (sparsim alone):")
        out.table(["preset", "DRAM / compulsory, geometric mean", "worst layer"], rows)
    if args.docs:
        out.write()


if __name__ == "__main__":
    main()
