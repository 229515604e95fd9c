"""Time the first `sparsim simulate` of GPT-2 small in a fresh process, whole and by phase.

Each run is a new Python process (imports, model build, trace, simulate, printing: everything a
user waits for). Then one more fresh process reports where its time goes.

Run: .venv/bin/python benchmarks/bench_first_simulate.py [RUNS]   (or `make bench`, with 3 runs)
"""
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "simulate gpt2_small": ["simulate", "--model", "gpt2_small", "--accel", "vegeta-flex"],
    "simulate gpt2_small --training bdwp": ["simulate", "--model", "gpt2_small", "--accel", "vegeta-flex",
                                            "--training", "bdwp"],
}

PHASES = r"""
import time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
import numpy, pandas, numba, accel, simulator.engine, simulator.result, sparsim.api
t2 = time.perf_counter()
from workloads import zoo
model, inputs = zoo.build("gpt2_small")
t3 = time.perf_counter()
wl = sparsim.api.trace(model, inputs, copy_weights=False)
t4 = time.perf_counter()
res = sparsim.api.simulate(wl, "vegeta-flex")
t5 = time.perf_counter()
for name, a, b in (("import torch", t0, t1), ("import the rest", t1, t2), ("build the model", t2, t3),
                   ("trace", t3, t4), ("simulate (kernels load from the cache)", t4, t5)):
    print(f"  {name:40s} {b - a:6.2f} s")
"""


def main(runs: int = 3):
    from docs_out import DocsOut
    out = DocsOut("first_simulate", "python benchmarks/bench_first_simulate.py")
    rows = []
    for label, argv in COMMANDS.items():
        walls = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "sparsim.cli", *argv], check=True, stdout=subprocess.DEVNULL)
            walls.append(time.perf_counter() - t0)
        print(f"{label:40s} median {statistics.median(walls):6.2f} s  (min {min(walls):.2f}, "
              f"max {max(walls):.2f}, {runs} fresh processes)")
        rows.append([f"`sparsim {' '.join(argv)}`", f"{statistics.median(walls):.2f}", f"{min(walls):.2f}",
                     f"{max(walls):.2f}"])
    out.table([f"command (a fresh process each, {runs} runs)", "median s", "min s", "max s"], rows, echo=False)
    print("phases of one fresh process (simulate gpt2_small):")
    phases = subprocess.run([sys.executable, "-c", PHASES], check=True, capture_output=True, text=True).stdout
    print(phases, end="")
    out.table(["phase of one fresh process (simulate gpt2_small)", "s"],
              [[ln.rsplit(None, 2)[0].strip(), ln.rsplit(None, 2)[1]] for ln in phases.splitlines() if ln.strip()],
              echo=False)
    out.write()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
