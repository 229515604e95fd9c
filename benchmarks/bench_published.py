"""Published sparse speed-ups, re-measured: sparsim's speed-up array-only (the same preset with
buffers that hold everything and unlimited DRAM bandwidth) and end to end (memory included) on the matching preset and workload, beside the published figure.

Run: .venv/bin/python benchmarks/bench_published.py   (or `make bench`)

Published figures (as the papers state them; the conditions we match are in each row):

* VEGETA (Jeong et al., HPCA 2023): 2.20x for 2:4 and 3.74x for 1:4 over dense on its engine, ResNet-50;
  unstructured 95 % sparsity runs on the same flexible engine through its N:M modes (no single
  published number is quoted here: '-');
* NVIDIA A100 (whitepaper, 2020; Mishra et al., arXiv:2104.08378): 2x peak math throughput for 2:4;
* SAT (Fang et al., IEEE TCAD 2023): 1.75x training speed-up with 2:8 bidirectional weight pruning
  (BDWP) on ResNet-18.

The README explains every gap above 15 %.
"""
import yaml

import accel
import sparsim
from simulator import simulate
from workloads import Layer, LayerKind, Workload

ROWS = [
    # design, preset, model, batch, pattern, training, published
    ("VEGETA 2:4", "vegeta-flex", "resnet50", 1, "2:4", None, 2.20),
    ("VEGETA 1:4", "vegeta-flex", "resnet50", 1, "1:4", None, 3.74),
    ("VEGETA unstructured 95 %", "vegeta-flex", "resnet50", 1, "unstructured:0.05", None, None),
    ("NVIDIA 2:4 peak (4096^3 GEMM)", "sparse-tc-2of4", "gemm4096", 1, "2:4", None, 2.0),
    ("NVIDIA 2:4 (BERT-base)", "sparse-tc-2of4", "bert_base", 8, "2:4", None, 2.0),
    ("SAT 2:8 BDWP training", "sat-vcu1525", "resnet18", 1, "2:8", "bdwp", 1.75),
    ("SAT 2:8 BDWP training", "sat-vcu1525", "resnet18", 8, "2:8", "bdwp", 1.75),
]


def workload(model, batch):
    if model == "gemm4096":
        import numpy as np
        w = np.random.default_rng(0).standard_normal((4096, 4096)).astype(np.float32)
        from workloads import WeightLayout
        layer = Layer(name="gemm", kind=LayerKind.LINEAR, m=4096, n=4096, k=4096, weight_name="gemm.weight",
                      weight=w, weight_layout=WeightLayout.NK)
        return Workload(name="gemm4096", layers=(layer,))
    return sparsim.trace_zoo(model, batch=batch)


def array_only(preset):
    """The preset with memory out of the way (buffers that hold everything, unlimited DRAM), so
    that cycles are the array's alone."""
    doc = yaml.safe_load(accel.presets.path(preset).read_text())
    for mem in doc["memories"]:
        mem["size_bytes"] = 1 << 35     # holds everything, under accel/limits.py's 64 GiB
        mem["read_bw_bytes_per_cycle"] = 1e12
    doc["dram"]["bandwidth_bytes_per_s"] = 1e21
    doc.pop("fpga", None)
    # without the fpga: section the FPGA energy figures have no device; cycles do not depend on energy
    for key in ("model", "fpga"):
        doc.get("energy", {}).pop(key, None)
    return accel.build(doc)


def measure(preset, model, batch, pattern, training):
    wl = workload(model, batch)
    sp = wl.sparsify(pattern)
    if training:
        wl, sp = wl.training("dense"), sp.training(training)
    d, s = sparsim.simulate(wl, preset).totals, sparsim.simulate(sp, preset).totals
    ideal = array_only(preset)
    da, sa = sparsim.simulate(wl, ideal).totals, sparsim.simulate(sp, ideal).totals
    return da["cycles"] / sa["cycles"], d["cycles"] / s["cycles"], d["stall_cycles"] / d["cycles"]


def main():
    from docs_out import DocsOut
    out = DocsOut("published", "python benchmarks/bench_published.py")
    rows = []
    for name, preset, model, batch, pattern, training, published in ROWS:
        arr, e2e, stalled = measure(preset, model, batch, pattern, training)
        wl = f"{model} b{batch} {pattern}" + (" train" if training else "")
        pub = f"{published:.2f}x" if published else "-"
        gap = f"{(e2e / published - 1) * 100:+.0f}%" if published else "-"
        rows.append([name, f"`{preset}`", wl, pub, f"{arr:.2f}x", f"{e2e:.2f}x", gap, f"{stalled * 100:.0f}%"])
        print(f"{name:31s} {preset:15s} {wl:22s} {pub:>9s} {arr:6.2f}x {e2e:9.2f}x {gap:>6s} {stalled * 100:12.0f}%",
              flush=True)
    out.table(["design", "preset", "workload", "published", "sparsim array", "sparsim end to end",
               "gap (end to end)", "dense stalled"], rows)
    out.write()


if __name__ == "__main__":
    main()
