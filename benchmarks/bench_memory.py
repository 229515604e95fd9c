"""DRAM bytes over compulsory, stalls and end-to-end sparse speed-up: ResNet-50 and BERT-base at
batch 1 and 8 on every preset.

Run: .venv/bin/python benchmarks/bench_memory.py   (or `make bench`)

Compulsory traffic is computed here, independently of the engine: every layer reads its input
feature map (a conv's input pixels that some output reads, without the padding, which is made on
chip; not its im2col matrix) and its weights once and writes its
outputs once, at the accelerator's operand widths. The ratio printed is the engine's DRAM bytes
over that, for the dense model.
"""
import math
import sys

import accel
import sparsim
from simulator import simulate


def compulsory_bytes(workload, acc) -> float:
    c = acc.compute
    a_b, w_b = c.activation_bits / 8, c.weight_bits / 8
    total = 0.0
    for layer in workload.layers:
        cv = layer.conv
        if cv is None:
            a = layer.m * layer.k * layer.groups
        else:
            # the input pixels some output reads, less the padding (made on chip)
            spatial = math.prod(max(0, min((int(o) - 1) * int(s) + (int(k) - 1) * int(d) + 1, int(p) + int(i)) - int(p))
                                for i, p, k, s, d, o in zip(cv.input_size, cv.padding, cv.kernel, cv.stride,
                                                            cv.dilation, cv.output_size))
            batch = max(1, layer.m // max(1, math.prod(cv.output_size)))
            a = min(batch * cv.in_channels * spatial, layer.m * layer.k * layer.groups)
        total += a * a_b + layer.groups * layer.k * layer.n * w_b + layer.groups * layer.m * layer.n * a_b
    return total


def main(models=("resnet50", "bert_base"), batches=(1, 8)):
    from docs_out import DocsOut
    out = DocsOut("memory", "python benchmarks/bench_memory.py")
    print(f"{'model':10s} {'batch':>5s} {'preset':15s} {'DRAM MB':>9s} {'compulsory MB':>13s} {'ratio':>6s} "
          f"{'stalled':>8s} {'2:4 speed-up':>12s}")
    rows = []
    for model in models:
        for batch in batches:
            wl = sparsim.trace_zoo(model, batch=batch)
            sp = wl.sparsify("2:4")
            for preset in accel.presets.names():
                acc = accel.load(preset)
                r = simulate(wl, acc).totals
                s = simulate(sp, acc).totals
                comp = compulsory_bytes(wl, acc)
                print(f"{model:10s} {batch:5d} {preset:15s} {r['dram_bytes'] / 1e6:9.1f} {comp / 1e6:13.1f} "
                      f"{r['dram_bytes'] / comp:6.2f} {r['stall_cycles'] / r['cycles'] * 100:7.1f}% "
                      f"{r['cycles'] / s['cycles']:11.2f}x")
                rows.append([model, batch, f"`{preset}`", f"{r['dram_bytes'] / 1e6:.1f}", f"{comp / 1e6:.1f}",
                             f"{r['dram_bytes'] / comp:.2f}x", f"{r['stall_cycles'] / r['cycles'] * 100:.1f}%",
                             f"{r['cycles'] / s['cycles']:.2f}x"])
            sys.stdout.flush()
    out.table(["model", "batch", "preset", "DRAM MB (dense)", "compulsory MB", "DRAM / compulsory", "stalled (dense)",
               "2:4 speed-up (end to end)"], rows, echo=False)
    out.write()


if __name__ == "__main__":
    main()
