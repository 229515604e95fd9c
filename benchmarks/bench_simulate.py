"""Speed of the fast engine: ResNet-50 with real 2:4 masks, every layer, one design point.

Run: .venv/bin/python benchmarks/bench_simulate.py   (or `make bench`)
Prints the warm time of one simulation (best of several), per layer, and a small sweep's rate.
"""
import time

import accel
import sparsim
from simulator import simulate


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    from docs_out import DocsOut
    out = DocsOut("simulate", "python benchmarks/bench_simulate.py")
    rows = []
    wl = sparsim.trace_zoo("resnet50").sparsify("2:4")
    for preset in ("vegeta-flex", "sparse-tc-2of4", "tpu-like"):
        acc = accel.load(preset)
        t_first = best_of(lambda: simulate(wl, acc), 1)  # includes loading the Numba cache (or compiling)
        t = best_of(lambda: simulate(wl, acc), 5)
        print(f"resnet50 2:4 on {preset:15s}: first {t_first * 1e3:7.1f} ms, warm {t * 1e3:7.1f} ms "
              f"({t / len(wl.layers) * 1e3:.2f} ms/layer, {len(wl.layers)} layers)")
        rows.append([f"`{preset}`", f"{t_first * 1e3:.1f}", f"{t * 1e3:.1f}", f"{t / len(wl.layers) * 1e3:.2f}"])
    out.table(["ResNet-50 2:4 on", "first call ms", "warm ms (best of 5)", "ms per layer"], rows, echo=False)
    acc = accel.load("vegeta-flex")
    designs = [acc.with_dataflow(df) for df in ("ws", "os", "is")]
    t0 = time.perf_counter()
    n = 0
    for a in designs:
        for pat in ("dense", "2:4", "1:4"):
            simulate(wl if pat == "2:4" else wl.sparsify(pat), a)
            n += 1
    dt = time.perf_counter() - t0
    print(f"sweep: {n} design points (3 dataflows x 3 patterns, masks included) in {dt:.2f} s")
    out.text(f"A small sweep in one process: {n} design points (3 dataflows x 3 patterns of ResNet-50 on "
             f"vegeta-flex, masks included) in {dt:.2f} s.")
    out.write()


if __name__ == "__main__":
    main()
