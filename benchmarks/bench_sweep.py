"""Sweep throughput: a 1,008-point ResNet-50 sweep (4 patterns x 3 dataflows x 84 array shapes) on the
vegeta-flex preset, with 1 and 2 local workers; then the cost of re-running the finished sweep.

Run: .venv/bin/python benchmarks/bench_sweep.py   (or `make bench`)
Prints points per second over the whole run (worker start-up, tracing and masking included: each
run starts with no prepared workloads) and after the first point (steady state), the 1 -> 2
worker ratio, then 2 and 1 workers again on the workloads the first 2-worker run prepared on disk
(the same ratio without tracing and masking), and the resume
time (spec loaded + store read + nothing to run), in process and as a whole `sparsim sweep`
command (which imports neither torch nor Numba when nothing is left to run). CPU times are printed too: a shared machine's wall clock says
more about the other jobs than about the code.
"""
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from sweeps import load_spec
from sweeps.runner import run_sweep

SPEC = {
    "name": "bench-resnet50",
    "models": ["resnet50"],
    "accelerators": ["vegeta-flex"],
    "sparsity": ["dense", "2:4", "1:4", "unstructured:0.5"],
    "overrides": {"compute.dataflow": ["ws", "os", "is"],
                  "compute.rows": [8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384],
                  "compute.cols": [8, 16, 32, 64, 128, 256, 512]},
}


def main():
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(SPEC))
        spec = load_spec(spec_path)
        n = len(spec.points)
        # CPU time per point in this process, warm (a shared machine's wall clock is a poor judge)
        from sweeps.evaluate import evaluate
        sample = spec.points[::8]
        evaluate(sample[0])
        c0, w0 = time.process_time(), time.perf_counter()
        for p in sample:
            evaluate(p)
        cpu, wall = (time.process_time() - c0) / len(sample), (time.perf_counter() - w0) / len(sample)
        print(f"one warm point in process: {cpu * 1e3:.1f} ms CPU ({wall * 1e3:.1f} ms wall) over {len(sample)} "
              f"points (masking each pattern once included): {1 / cpu:.1f} points per CPU-second")
        other = spec.points[4::8]     # other designs, the same workloads: masks built, no plan reused
        c0 = time.process_time()
        for p in other:
            evaluate(p)
        cpu2 = (time.process_time() - c0) / len(other)
        print(f"one warm point in process, masks already built: {cpu2 * 1e3:.1f} ms CPU over {len(other)} points")
        rates, cpus = {}, {}
        # each worker count in its own folder: models traced and masked in the run (the workers share
        # them through <folder>/.sparsim-cache); then 2 and 1 workers again on the prepared workloads
        runs = [(1, "w1", "w1.db", "cold"), (2, "w2", "w2.db", "cold"), (2, "w2", "again.db", "prepared"),
                (1, "w2", "again1.db", "prepared")]
        for workers, folder, name, state in runs:
            (Path(tmp) / folder).mkdir(exist_ok=True)
            db = Path(tmp) / folder / name
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            c0 = time.process_time()
            s = run_sweep(spec, db, workers=workers, progress=False)
            parent_cpu = time.process_time() - c0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            child_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            steady = (s.ran - 1) / (s.seconds - s.first_s) if s.seconds > s.first_s else float("nan")
            rates[state, workers] = (s.ran / s.seconds, steady)
            cpus[state, workers] = (child_cpu + parent_cpu) / max(1, s.ran) * 1e3
            what = ("start-up, tracing, masking included" if state == "cold" else
                    "workloads already prepared on disk by the cold 2-worker run")
            print(f"{n} ResNet-50 points, {workers} worker(s): {s.seconds:6.1f} s, {s.ran / s.seconds:6.1f} points/s "
                  f"overall; first point after {s.first_s:5.1f} s, then {steady:6.1f} points/s "
                  f"({s.ok} ok, {s.errors} failed); workers' CPU {child_cpu:.1f} s = "
                  f"{child_cpu / max(1, s.ran) * 1e3:.1f} ms per point ({what}); this process "
                  f"{parent_cpu:.1f} s CPU = {parent_cpu / max(1, s.ran) * 1e3:.1f} ms per point (store, progress)")
        for state in ("cold", "prepared"):
            (o1, s1), (o2, s2) = rates[state, 1], rates[state, 2]
            print(f"1 -> 2 workers{', workloads prepared' if state == 'prepared' else ''}: {o2 / o1:.2f}x overall, "
                  f"{s2 / s1:.2f}x steady; CPU per point (workers + this process) {cpus[state, 1]:.1f} ms with 1, "
                  f"{cpus[state, 2]:.1f} ms with 2 (load average {os.getloadavg()[0]:.1f})")
        db = Path(tmp) / "w2" / "w2.db"
        t0 = time.perf_counter()
        again = run_sweep(load_spec(spec_path), db, workers=2, progress=False)
        t_in = time.perf_counter() - t0
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        cli = []
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "sparsim.cli", "sweep", str(spec_path), "--out", str(db), "--quiet"],
                           check=True, env=env, stdout=subprocess.DEVNULL)
            cli.append(time.perf_counter() - t0)
        cli.sort()
        print(f"resume a finished {n}-point sweep: {t_in:.2f} s in process (load spec + read store; ran "
              f"{again.ran}); as a whole `sparsim sweep` command (Python start-up included), 5 runs: "
              f"median {cli[2]:.2f} s, best {cli[0]:.2f} s")


if __name__ == "__main__":
    main()
