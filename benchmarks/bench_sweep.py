"""Sweep throughput: a 1,008-point ResNet-50 sweep (4 patterns x 3 dataflows x 84 array shapes) on the
vegeta-flex preset, with 1 and 2 local workers; then the cost of re-running the finished sweep.

Run: .venv/bin/python benchmarks/bench_sweep.py   (or `make bench`)
     .venv/bin/python benchmarks/bench_sweep.py --repeat 5   (the 1 -> 2 worker ratios as medians of
     5 paired rounds, beside two independent processes doing the same work; about 8 minutes)
Prints points per second over the whole run (worker start-up, tracing and masking included: each
run starts with no prepared workloads) and after the first point (steady state), the 1 -> 2
worker ratio, then 2 and 1 workers again on the workloads the first 2-worker run prepared on disk
(the same ratio without tracing and masking), and the resume
time (spec loaded + store read + nothing to run), in process and as a whole `sparsim sweep`
command (which imports neither torch nor Numba when nothing is left to run). CPU times are printed too: a shared machine's wall clock says
more about the other jobs than about the code.
"""
import argparse
import os
import resource
import statistics
import threading
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


def _timed_run(spec, db, workers):
    """(summary, CPU seconds of this process and of the workers that ended) of one sweep run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    c0 = time.process_time()
    s = run_sweep(spec, db, workers=workers, progress=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s, time.process_time() - c0, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def _paired(tmp: Path, spec_path: Path, rounds: int) -> None:
    """The 1 -> 2 worker ratio, cold and prepared, as the median of ``rounds`` rounds run back to back
    (a shared VM's speed drifts, so one pair says little); and in each round what two independent
    processes do with the same prepared points: split in two halves (every other array height), run
    by two 1-worker sweeps at the same time (to compare with the 2-worker sweep) and one after the
    other (their ratio is the machine's own 2-process speed-up: 2.00 where two processes do not slow
    each other)."""
    spec = load_spec(spec_path)
    halves = []
    for i in range(2):
        doc = yaml.safe_load(spec_path.read_text())
        doc["overrides"]["compute.rows"] = doc["overrides"]["compute.rows"][i::2]
        half = tmp / f"half{i}.yaml"
        half.write_text(yaml.safe_dump(doc))
        halves.append(load_spec(half))
    got = {"cold": [], "prepared": [], "machine": [], "pool2": [], "halves": []}
    for r in range(rounds):
        base = tmp / f"round{r}"
        base.mkdir()
        t = {}
        for workers in (1, 2):                 # cold: each in a new folder, nothing prepared
            (base / f"c{workers}").mkdir()
            t["cold", workers] = _timed_run(spec, base / f"c{workers}" / "r.db", workers)[0].seconds
        for workers in (1, 2):                 # prepared: the folder the cold 2-worker run prepared
            t["prepared", workers] = _timed_run(spec, base / "c2" / f"p{workers}.db", workers)[0].seconds
        w0 = time.perf_counter()
        for i, h in enumerate(halves):
            run_sweep(h, base / "c2" / f"seq{i}.db", workers=1, progress=False)
        seq = time.perf_counter() - w0
        threads = [threading.Thread(target=run_sweep, args=(h, base / "c2" / f"par{i}.db"),
                                    kwargs={"workers": 1, "progress": False}) for i, h in enumerate(halves)]
        w0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        par = time.perf_counter() - w0
        got["cold"].append(t["cold", 1] / t["cold", 2])
        got["prepared"].append(t["prepared", 1] / t["prepared", 2])
        got["machine"].append(seq / par)
        got["pool2"].append(t["prepared", 2])
        got["halves"].append(par)
        print(f"round {r + 1}: cold 1 worker {t['cold', 1]:.1f} s, 2 workers {t['cold', 2]:.1f} s "
              f"({got['cold'][-1]:.2f}x); prepared {t['prepared', 1]:.1f} s, {t['prepared', 2]:.1f} s "
              f"({got['prepared'][-1]:.2f}x); the same prepared points as two 1-worker sweeps of half each: "
              f"one after the other {seq:.1f} s, at the same time {par:.1f} s ({got['machine'][-1]:.2f}x) "
              f"(load average {os.getloadavg()[0]:.1f})", flush=True)

    def m(k, f="{:.2f}"):
        v = got[k]
        return f"{f.format(statistics.median(v))} ({f.format(min(v))}-{f.format(max(v))})"
    print(f"1 -> 2 workers, median (range) of {rounds} rounds: cold {m('cold')}x, prepared {m('prepared')}x")
    print(f"the prepared points, 2 workers: {m('pool2', '{:.1f}')} s; as two independent 1-worker sweeps of "
          f"half each at the same time: {m('halves', '{:.1f}')} s; those two halves one after the other "
          f"against at the same time (this machine's own 2-process speed-up, 2.00x where two processes "
          f"do not slow each other): {m('machine')}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=0, metavar="N",
                    help="only the paired 1 -> 2 worker rounds, N of them, and their medians")
    args = ap.parse_args()
    if args.repeat < 0:
        ap.error(f"--repeat: expected an integer >= 0, got {args.repeat}")
    root = Path(__file__).resolve().parent.parent
    if args.repeat:
        with tempfile.TemporaryDirectory() as tmp:
            spec_path = Path(tmp) / "spec.yaml"
            spec_path.write_text(yaml.safe_dump(SPEC))
            _paired(Path(tmp), spec_path, args.repeat)
        return
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
            s, parent_cpu, child_cpu = _timed_run(spec, db, workers)
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
    from docs_out import run_recorded
    run_recorded("sweep", "bench_sweep.py", main)
