"""The mapper's cost in a whole-network simulate: ResNet-50 with real 2:4 masks, per preset, with the
plan cache cleared before each run (every distinct layer mapped again: the mapping search) and warm
(plans cached, what ``bench_simulate.py`` reports).

Run: .venv/bin/python benchmarks/bench_mapper.py [--repeats 5]
     PYTHONPATH=<another tree> .venv/bin/python benchmarks/bench_mapper.py   (the same on other code)

Times are this process's CPU seconds (``time.process_time``), the best of ``--repeats`` runs, so
that other processes on the machine inflate them less than wall-clock time; the machine's load is
printed with them. Nothing is asserted: compare runs made one after the other.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

PRESETS = ("edge-npu", "vegeta-flex", "sparse-tc-2of4", "tpu-like")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="runs per preset and state; the best is printed")
    args = ap.parse_args(argv)
    import accel
    import sparsim
    from simulator import engine, simulate
    wl = sparsim.trace_zoo("resnet50").sparsify("2:4")
    print(f"sparsim at {Path(sys.modules['simulator'].__file__).parent.parent}; resnet50 2:4, "
          f"{len(wl.layers)} layers; load average {os.getloadavg()[0]:.1f}\n")
    print("| preset | cold: plans cleared, CPU ms | warm: plans cached, CPU ms |")
    print("| --- | --- | --- |")
    for preset in PRESETS:
        acc = accel.load(preset)
        simulate(wl, acc)                      # compiles or loads the kernels once
        cold, warm = [], []
        for _ in range(args.repeats):
            engine._PLANS.clear()
            t0 = time.process_time()
            simulate(wl, acc)
            cold.append(time.process_time() - t0)
        for _ in range(args.repeats):
            t0 = time.process_time()
            simulate(wl, acc)
            warm.append(time.process_time() - t0)
        print(f"| `{preset}` | {min(cold) * 1e3:.1f} | {min(warm) * 1e3:.1f} |", flush=True)


if __name__ == "__main__":
    main()
