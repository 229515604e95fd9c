"""The mapper's cost in a whole-network simulate: ResNet-50 with real 2:4 masks, per preset, with the
plan cache cleared before each run (every distinct layer mapped again: the mapping search) and warm
(plans cached, what ``bench_simulate.py`` reports).

Run: .venv/bin/python benchmarks/bench_mapper.py [--repeats 20]
     .venv/bin/python benchmarks/bench_mapper.py --vs <another tree> [--rounds 4]

Times are a process's CPU seconds (``time.process_time``), so that other processes on the machine
inflate them less than wall-clock time; per preset the median and the least of ``--repeats`` runs are
printed with the machine's load. ``--vs TREE`` measures TREE's code (``PYTHONPATH=TREE``) and this
tree's in turn, ``--rounds`` times each (A B A B ...: a drift of the machine's speed hits both), and
prints each one's medians over the rounds and the ratio this/TREE of the cold medians, round by round
and their median. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PRESETS = ("edge-npu", "vegeta-flex", "sparse-tc-2of4", "tpu-like")
HERE = Path(__file__).resolve()


def measure(repeats: int) -> dict:
    """Per preset: cold and warm CPU seconds of ``repeats`` whole-network simulates each."""
    import accel
    import sparsim
    from simulator import engine, simulate
    wl = sparsim.trace_zoo("resnet50").sparsify("2:4")
    out = {}
    for preset in PRESETS:
        acc = accel.load(preset)
        simulate(wl, acc)                      # compiles or loads the kernels once
        cold, warm = [], []
        for _ in range(repeats):
            engine._PLANS.clear()
            t0 = time.process_time()
            simulate(wl, acc)
            cold.append(time.process_time() - t0)
        for _ in range(repeats):
            t0 = time.process_time()
            simulate(wl, acc)
            warm.append(time.process_time() - t0)
        out[preset] = {"cold": cold, "warm": warm}
    return out


def _row(preset, got):
    c, w = got["cold"], got["warm"]
    return (f"| `{preset}` | {statistics.median(c) * 1e3:.1f} | {min(c) * 1e3:.1f} | "
            f"{statistics.median(w) * 1e3:.1f} | {min(w) * 1e3:.1f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=20, help="runs per preset and state (default 20)")
    ap.add_argument("--vs", default="", help="another tree: its code and this tree's measured in turn")
    ap.add_argument("--rounds", type=int, default=4, help="with --vs: measurements of each tree (default 4)")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)   # one measurement, for --vs
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.rounds < 1:
        ap.error("--repeats and --rounds take a positive count")
    if args.json:
        print(json.dumps(measure(args.repeats)))
        return
    here = str(HERE.parent.parent)
    if not args.vs:
        got = measure(args.repeats)
        print(f"sparsim at {Path(sys.modules['simulator'].__file__).parent.parent}; resnet50 2:4; "
              f"{args.repeats} runs each; load average {os.getloadavg()[0]:.1f}\n")
        print("| preset | cold: plans cleared, CPU ms, median | least | warm: plans cached, median | least |")
        print("| --- | --- | --- | --- | --- |")
        for preset in PRESETS:
            print(_row(preset, got[preset]), flush=True)
        return
    other = str(Path(args.vs).resolve())
    if not (Path(other) / "simulator").is_dir():
        ap.error(f"--vs {args.vs}: not a sparsim tree (no simulator/ in it)")
    runs = {other: [], here: []}
    for r in range(args.rounds):
        for tree in (other, here):
            env = {**os.environ, "PYTHONPATH": tree}
            done = subprocess.run([sys.executable, str(HERE), "--json", "--repeats", str(args.repeats)], env=env,
                                  capture_output=True, text=True, check=True, cwd=tree)
            runs[tree].append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"round {r + 1} of {args.rounds} done (load average {os.getloadavg()[0]:.1f})", file=sys.stderr,
              flush=True)
    print(f"resnet50 2:4, cold (plans cleared) and warm CPU ms, medians of {args.repeats} runs, then the median over "
          f"{args.rounds} alternating rounds; A = {other}, B = {here}; load average {os.getloadavg()[0]:.1f}\n")
    print("| preset | A cold | B cold | B/A cold, per round | B/A cold, median | A warm | B warm |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for preset in PRESETS:
        med = {t: [statistics.median(x[preset]["cold"]) for x in runs[t]] for t in runs}
        medw = {t: [statistics.median(x[preset]["warm"]) for x in runs[t]] for t in runs}
        ratios = [b / a for a, b in zip(med[other], med[here])]
        print(f"| `{preset}` | {statistics.median(med[other]) * 1e3:.1f} | {statistics.median(med[here]) * 1e3:.1f} | "
              f"{', '.join(f'{x:.2f}' for x in ratios)} | {statistics.median(ratios):.2f} | "
              f"{statistics.median(medw[other]) * 1e3:.1f} | {statistics.median(medw[here]) * 1e3:.1f} |", flush=True)


if __name__ == "__main__":
    main()
