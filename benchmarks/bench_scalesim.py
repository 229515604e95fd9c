"""sparsim against SCALE-Sim v3, side by side, on the same .cfg and topology (ResNet-18, dense).

Run: .venv/bin/python benchmarks/bench_scalesim.py [--layers N] [--array 32]

It installs ``scalesim==3.0.0`` with ``numpy<2`` (SCALE-Sim fails in ``int(max(...))`` on NumPy 2)
into ``benchmarks/.scalesim-venv`` on first use, writes a SCALE-Sim config (an RxR array, large
buffers and ``InterfaceBandwidth: CALC``, so SCALE-Sim reports no stalls) and the ResNet-18
topology that ``sparsim topology`` writes, and runs both tools under ws, os and is. It prints each
layer's cycles from both, the per-layer and whole-network differences, and both run times. The
goldens in tests/test_simulator.py (SCALESIM_GOLDEN) were measured the same way on an 8x8 array.
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".scalesim-venv"
RUN = HERE / ".scalesim-run"


def ensure_scalesim() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    ok = subprocess.run([str(py), "-c", "import scalesim"], capture_output=True).returncode == 0
    if not ok:
        print("installing scalesim==3.0.0 (numpy<2) into", VENV, flush=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "numpy<2", "scalesim==3.0.0"], check=True)
    return py


CFG = """[general]
run_name = bench_{df}

[architecture_presets]
ArrayHeight:    {r}
ArrayWidth:     {r}
IfmapSramSzkB:    65536
FilterSramSzkB:   65536
OfmapSramSzkB:    65536
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10
Dataflow : {df}
MemoryBanks: 1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=0, help="only the first N layers (0: all)")
    ap.add_argument("--array", type=int, default=32)
    ap.add_argument("--dataflows", default="ws,os,is")
    args = ap.parse_args()
    py = ensure_scalesim()
    RUN.mkdir(exist_ok=True)

    import sparsim
    from simulator import simulate
    from workloads import Workload

    wl = sparsim.trace_zoo("resnet18")
    topo = RUN / "resnet18.csv"
    text = wl.to_scalesim_csv(fmt="conv")
    if args.layers:
        text = "\n".join(text.splitlines()[: args.layers + 1]) + "\n"
    topo.write_text(text)
    (RUN / "layout.csv").write_text("Layer name, a,\n")
    summary = []
    for df in args.dataflows.split(","):
        cfg = RUN / f"{df}.cfg"
        cfg.write_text(CFG.format(df=df, r=args.array))
        out = RUN / f"out_{df}"
        t0 = time.perf_counter()
        subprocess.run([str(py), "-m", "scalesim.scale", "-c", str(cfg), "-t", str(topo), "-l", str(RUN / "layout.csv"),
                        "-p", str(out), "-i", "conv"], check=True, capture_output=True)
        t_ss = time.perf_counter() - t0
        report = next(out.rglob("COMPUTE_REPORT.csv"))
        with open(report) as f:
            rows = [r for r in csv.reader(f)][1:]
        ss_cycles = [int(float(r[2])) for r in rows if r and r[0].strip()]

        workload = Workload.from_scalesim_csv(topo)
        acc = sparsim.accelerator(cfg)
        simulate(workload, acc)  # warm
        reps = 20
        t0 = time.perf_counter()
        for _ in range(reps):
            res = simulate(workload, acc)
        t_sp = (time.perf_counter() - t0) / reps
        ours = res.layers.compute_cycles.tolist()
        print(f"\n== dataflow {df}, {args.array}x{args.array}: per-layer compute cycles")
        print(f"{'layer':24s} {'SCALE-Sim':>12s} {'sparsim':>12s} {'diff %':>8s}")
        worst = 0.0
        for name, a, b in zip(res.layers.name, ss_cycles, ours):
            d = (b - a) / a * 100
            worst = max(worst, abs(d))
            print(f"{name:24s} {a:12,d} {b:12,d} {d:8.3f}")
        tot_ss, tot_sp = sum(ss_cycles), sum(ours)
        net = (tot_sp - tot_ss) / tot_ss * 100
        print(f"{'total':24s} {tot_ss:12,d} {tot_sp:12,d} {net:8.3f}")
        print(f"run time: SCALE-Sim {t_ss:.1f} s, sparsim {t_sp * 1e3:.2f} ms (warm, mean of {reps}): "
              f"{t_ss / t_sp:,.0f}x faster")
        summary.append((df, net, worst, t_ss, t_sp, tot_ss, tot_sp))
    print("\nsummary: dataflow, network diff %, worst layer diff %, SCALE-Sim s, sparsim ms, speed-up")
    for df, net, worst, a, b, *_ in summary:
        print(f"  {df}: {net:+.4f} %  {worst:.4f} %  {a:.1f} s  {b * 1e3:.2f} ms  {a / b:,.0f}x")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from docs_out import DocsOut
    out = DocsOut("scalesim", "python benchmarks/bench_scalesim.py" + (f" --layers {args.layers}" if args.layers else ""))
    out.text(f"ResNet-18{f' (first {args.layers} layers)' if args.layers else ''}, dense, {args.array}x{args.array} "
             f"array, the same .cfg and topology for both tools; SCALE-Sim 3.0.0 in its own venv.")
    out.table(["dataflow", "total compute cycles, SCALE-Sim", "sparsim", "network difference", "worst layer",
               "SCALE-Sim run", "sparsim run (warm)", "ratio"],
              [[df, f"{ts:,}", f"{tp:,}", f"{net:+.3f} %", f"{worst:.3f} %", f"{a:.0f} s", f"{b * 1e3:.1f} ms",
                f"{a / b:,.0f}x"] for df, net, worst, a, b, ts, tp in summary], echo=False)
    out.write()


if __name__ == "__main__":
    main()
