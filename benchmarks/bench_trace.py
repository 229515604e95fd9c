"""Time tracing ResNet-50 and choosing 2:4 masks for all its layers.

Run: .venv/bin/python benchmarks/bench_trace.py   (or `make bench`)
"""
import time

import sparsim
from workloads import zoo
from workloads.tracer import trace


def main(repeats: int = 3):
    model, inputs = zoo.build("resnet50")
    trace(model, inputs)  # warm-up: first-call costs of torch's dispatcher
    t_trace, t_mask = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        wl = trace(model, inputs)
        t1 = time.perf_counter()
        sp = wl.sparsify("2:4")
        t2 = time.perf_counter()
        t_trace.append(t1 - t0)
        t_mask.append(t2 - t1)
    print(f"resnet50: {len(wl.layers)} layers, {wl.macs:,} MACs, {sp.nnz_macs / wl.macs:.3f} kept after 2:4")
    print(f"trace            best {min(t_trace):.3f} s  (of {repeats})")
    print(f"2:4 masks        best {min(t_mask):.3f} s")
    print(f"trace + 2:4      best {min(a + b for a, b in zip(t_trace, t_mask)):.3f} s")
    t0 = time.perf_counter()
    sparsim.trace_zoo("resnet50").sparsify("2:4")
    cold = time.perf_counter() - t0
    print(f"cold build+trace+2:4 (trace_zoo) {cold:.3f} s")
    from docs_out import DocsOut
    out = DocsOut("trace", "python benchmarks/bench_trace.py")
    out.text(f"ResNet-50: {len(wl.layers)} layers, {wl.macs:,} MACs, {sp.nnz_macs / wl.macs:.3f} kept after 2:4.")
    out.table(["step (ResNet-50, batch 1)", "seconds"],
              [[f"trace (best of {repeats})", f"{min(t_trace):.3f}"], ["2:4 masks for every layer", f"{min(t_mask):.3f}"],
               ["trace + 2:4", f"{min(a + b for a, b in zip(t_trace, t_mask)):.3f}"],
               ["build + trace + 2:4 (`trace_zoo`)", f"{cold:.3f}"]], echo=False)
    out.write()


if __name__ == "__main__":
    main()
