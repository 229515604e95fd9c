"""Sweeps: spec validation, expansion, the store, resume, equality with `sparsim simulate`, runners."""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sparsim.cli import main
from sweeps import SweepSpecError, load_spec
from sweeps.runner import run_sweep
from sweeps.store import load_results

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}

BASE = {"models": ["mlp_digits"], "accelerators": ["vegeta-flex"], "sparsity": ["dense", "2:4", "1:4"],
        "overrides": {"compute.dataflow": ["ws", "os", "is"], "compute.rows": [8, 16]}}


def _spec(tmp_path, doc, name="spec.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


def _table(path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables, in a canonical order, without the per-run timing."""
    pts, lay = load_results(path)
    pts = pts.drop(columns=["elapsed_s"]).sort_values("key").reset_index(drop=True)
    lay = lay.sort_values(["key", "idx"]).reset_index(drop=True)
    return pts, lay


def _assert_same(a, b):
    pd.testing.assert_frame_equal(a[0], b[0], check_exact=True)
    pd.testing.assert_frame_equal(a[1], b[1], check_exact=True)


# ---------------------------------------------------------------------------------------------- spec
def test_issue_example_spec_expands_to_the_product():
    spec = load_spec({"models": ["resnet18"], "accelerators": ["vegeta-flex"], "sparsity": ["dense", "2:4", "1:4"],
                      "overrides": {"compute.dataflow": ["ws", "os", "is"], "compute.rows": [16, 32]}})
    assert spec.axes == ("model", "accelerator", "sparsity", "compute.dataflow", "compute.rows")
    assert len(spec.points) == 3 * 3 * 2
    assert len({p.key for p in spec.points}) == len(spec.points)
    assert len({p for p in spec.points}) == len(spec.points)        # frozen and hashable
    p = spec.points[0]
    assert json.loads(p.accelerator_doc)["compute"]["rows"] == p.axes_dict()["compute.rows"]


def test_zip_groups_vary_together_and_where_drops():
    doc = {**BASE, "zip": [{"compute.rows": [8, 16, 32], "compute.cols": [8, 16, 32]}],
           "overrides": {"compute.dataflow": ["ws", "os"]},
           "where": "not (compute.dataflow == 'os' and sparsity == '1:4')"}
    spec = load_spec(doc)
    assert spec.axes[-2:] == ("compute.rows", "compute.cols")
    assert all(dict(p.axes)["compute.rows"] == dict(p.axes)["compute.cols"] for p in spec.points)
    assert len(spec.points) == 3 * 2 * 3 - 3 and spec.dropped == 3
    # the same spec gives the same keys; a changed value gives a different one
    assert [p.key for p in load_spec(doc).points] == [p.key for p in spec.points]
    other = load_spec({**doc, "seed": 1})
    assert not {p.key for p in other.points} & {p.key for p in spec.points}


def test_mapper_objective_override():
    """``mapper.objective`` is an accelerator key like any other: a sweep axis, part of the point key."""
    spec = load_spec({**BASE, "sparsity": ["dense"], "overrides": {"mapper.objective": ["cycles", "dram"]}})
    docs = [json.loads(p.accelerator_doc)["mapper"] for p in spec.points]
    assert docs == [{"objective": "cycles"}, {"objective": "dram"}]
    assert len({p.key for p in spec.points}) == 2
    with pytest.raises(SweepSpecError, match=r"overrides.mapper.objective\[0\] = 'bytes' .*mapper.objective: "
                                             r"expected one of cycles, dram"):
        load_spec({**BASE, "overrides": {"mapper.objective": ["bytes"]}})


def test_memory_override_by_name_and_index():
    spec = load_spec({**BASE, "overrides": {"memories.ifmap_sram.size_bytes": [65536],
                                            "memories[1].size_bytes": [32768]}})
    doc = json.loads(spec.points[0].accelerator_doc)
    assert doc["memories"][0]["size_bytes"] == 65536 and doc["memories"][1]["size_bytes"] == 32768


@pytest.mark.parametrize("doc, where", [
    ({**BASE, "dataflows": ["ws"]}, "dataflows: unknown key"),
    ({**BASE, "overrides": {"compute.rowz": [8]}}, "overrides.compute.rowz: unknown key 'rowz' under compute"),
    ({**BASE, "overrides": {"computer.rows": [8]}}, "overrides.computer.rows: unknown accelerator key 'computer'"),
    ({**BASE, "overrides": {"compute.rows": ["big"]}}, "overrides.compute.rows[0] = 'big'"),
    ({**BASE, "zip": [{"dataflow": ["ws"]}]}, "zip[0].dataflow: unknown axis 'dataflow'; expected an axis (models,"),
    ({**BASE, "overrides": {"compute.dataflow": ["ws", "diagonal"]}}, "overrides.compute.dataflow[1]"),
    ({**BASE, "overrides": {"compute.rows": []}}, "overrides.compute.rows: empty axis"),
    ({**BASE, "sparsity": []}, "sparsity: empty axis"),
    ({**BASE, "sparsity": ["dense", "5:4"]}, "sparsity[1]"),
    ({**BASE, "accelerators": ["vegeta-flexx"]}, "accelerators[0]: accelerator 'vegeta-flexx': not a preset"),
    ({**BASE, "models": ["resnet19"]}, "models[0]: unknown model 'resnet19'"),
    ({**BASE, "batch": [1, 0]}, "batch[1]: expected an integer >= 1"),
    ({**BASE, "training": ["bdwq"]}, "training[0]"),
    ({**BASE, "overrides": {"memories.nosuch.size_bytes": [1024]}}, "no entry named 'nosuch'"),
    ({**BASE, "where": "compute.rowz > 1"}, "where: unknown name 'compute.rowz'"),
    ({**BASE, "where": "__import__('os')"}, "is not allowed"),
    ({**BASE, "where": "compute.rows > 999"}, "drops every combination"),
    ({**BASE, "zip": [{"compute.cols": [8, 16], "batch": [1]}]}, "zip[0]: the axes of a zip group must have equal"),
    ({**BASE, "zip": [{"compute.rows": [8]}]}, "zip[0].compute.rows: axis 'compute.rows' is also under overrides"),
    ({k: v for k, v in BASE.items() if k != "models"}, "models: required key is missing"),
])
def test_malformed_specs_name_the_place(doc, where):
    with pytest.raises(SweepSpecError) as e:
        load_spec(doc)
    assert where in str(e.value), str(e.value)


def test_cli_bad_spec_is_one_line_exit_2(tmp_path, capsys):
    spec = _spec(tmp_path, {**BASE, "overrides": {"compute.rows": [8, "x"]}})
    out = tmp_path / "r.db"
    assert main(["sweep", str(spec), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "overrides.compute.rows[1] = 'x'" in err[0] and "Traceback" not in err[0]
    assert main(["results", str(tmp_path / "missing.db")]) == 2
    assert "no such results file" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- running
@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A tiny sweep with an infeasible design and a failing model, run in this process."""
    d = tmp_path_factory.mktemp("sweep")
    (d / "bad_model.py").write_text("def build():\n    raise RuntimeError('this model does not build')\n")
    doc = {"models": ["mlp_digits", "bad_model.py:build"], "accelerators": ["vegeta-flex", "sat-vcu1525"],
           "sparsity": ["dense", "2:4"], "overrides": {"compute.rows": [16, 128]},
           "where": "not (model != 'mlp_digits' and compute.rows == 128)"}
    spec_path = _spec(d, doc)
    out = d / "r.db"
    summary = run_sweep(load_spec(spec_path), out, workers=0, progress=False)
    return d, spec_path, out, summary


def test_statuses_infeasible_and_failing_points_are_recorded(small_run):
    d, spec_path, out, summary = small_run
    pts, lay = load_results(out)
    assert summary.total == len(pts) == 12 and summary.ran == 12
    bad = pts[pts["model"] == "bad_model.py:build"]
    assert set(bad["status"]) == {"error"} and bad["error"].str.contains("this model does not build").all()
    # 128 x 64 PEs on the VCU1525 budget (6,840 DSPs): infeasible with its reason and its resource use
    inf = pts[(pts["accelerator"] == "sat-vcu1525") & (pts["compute.rows"] == 128) & (pts["model"] == "mlp_digits")]
    assert set(inf["status"]) == {"infeasible"} and inf["error"].str.contains("does not fit").all()
    assert (inf["fpga_dsp"] > inf["budget_dsp"]).all() and inf["cycles"].isna().all()
    ok = pts[pts["status"] == "ok"]
    assert len(ok) == 6 and set(lay["key"]) == set(ok["key"])
    assert list(pts.columns[:4]) == ["model", "accelerator", "sparsity", "compute.rows"]
    dense = ok[ok["sparsity"] == "dense"]
    assert (dense["speedup"] == 1.0).all()


def test_rerun_resumes_and_a_changed_spec_adds_only_new_points(small_run, tmp_path):
    d, spec_path, out, _ = small_run
    import shutil
    db = tmp_path / "r.db"
    shutil.copy(out, db)
    before = _table(db)
    again = run_sweep(load_spec(spec_path), db, workers=0, progress=False)
    assert again.ran == 4 and again.errors == 4 and again.skipped == 8   # only the failed points run again
    after = _table(db)
    ok = before[0]["status"] != "error"
    pd.testing.assert_frame_equal(before[0][ok].reset_index(drop=True), after[0][ok].reset_index(drop=True))
    doc = yaml.safe_load(spec_path.read_text())
    doc["sparsity"].append("1:4")
    grown = run_sweep(load_spec(_spec(d, doc, "grown.yaml")), db, workers=0, progress=False)
    # new: 4 mlp_digits 1:4 points (one infeasible) and 2 failing ones; plus the 4 old failures again
    assert grown.ran == 4 + 2 + 4 and grown.skipped == 8 and grown.infeasible == 1


def test_every_point_equals_sparsim_simulate(small_run, tmp_path, capsys):
    _, _, out, _ = small_run
    pts, lay = load_results(out)
    with sqlite3.connect(out) as db:
        configs = dict(db.execute("SELECT key, config FROM points WHERE status = 'ok'").fetchall())
    for _, row in pts[pts["status"] == "ok"].iterrows():
        cfg = json.loads(configs[row["key"]])
        acc = tmp_path / f"{row['key']}.yaml"
        acc.write_text(yaml.safe_dump(cfg["accelerator"]))
        res = tmp_path / f"{row['key']}.json"
        argv = ["simulate", "--model", cfg["workload"]["model"], "--accel", str(acc), "--batch",
                str(cfg["workload"]["batch"]), "--seed", str(cfg["workload"]["seed"]), "--out", str(res)]
        if cfg["sparsity"] != "dense":
            argv += ["--sparsity", cfg["sparsity"]]
        assert main(argv) == 0
        sim = json.loads(res.read_text())
        for col in ("cycles", "energy_pj", "latency_s", "dram_bytes", "utilization", "compute_cycles"):
            assert row[col] == sim["totals"][col], (col, row[col], sim["totals"][col])
        mine = lay[lay["key"] == row["key"]].sort_values("idx")
        assert list(mine["cycles"]) == [l["cycles"] for l in sim["layers"]]
        assert list(mine["energy_pj"]) == [l["energy_pj"] for l in sim["layers"]], (cfg["accelerator"]["name"], cfg["sparsity"], cfg["accelerator"]["compute"]["rows"])
    capsys.readouterr()


def test_results_export_formats_and_where(small_run, tmp_path, capsys):
    _, _, out, _ = small_run
    assert main(["results", str(out), "--where", "status == 'ok' and sparsity == '2:4'"]) == 0
    text = capsys.readouterr().out
    head = text.splitlines()[0].split(",")
    assert head[:4] == ["model", "accelerator", "sparsity", "compute.rows"]
    assert head[4:11] == ["status", "cycles", "energy_pj", "latency_s", "dram_bytes", "utilization", "speedup"]
    assert len(text.strip().splitlines()) == 1 + 3
    pq = tmp_path / "r.parquet"
    assert main(["results", str(out), "--out", str(pq)]) == 0
    assert len(pd.read_parquet(pq)) == 12
    js = tmp_path / "r.json"
    assert main(["results", str(out), "--format", "json", "--out", str(js)]) == 0
    assert len(json.loads(js.read_text())) == 12
    assert main(["results", str(out), "--where", "cycles >"]) == 2
    assert "--where: not a valid expression" in capsys.readouterr().err


def test_report_writes_html_and_pngs(small_run, tmp_path):
    from sweeps.report import write_report
    _, _, out, _ = small_run
    paths = write_report(out, tmp_path / "rep")
    names = {p.name for p in paths}
    assert {"report.html", "speedup_vs_sparsity.png", "pareto.png", "layers.png", "roofline.png",
            "fpga.png"} <= names
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "src=\"http" not in page and page.count('class="figure"') == 5
    assert "Operational intensity (useful MACs" in page and "does not fit" in page


def test_dask_local_cluster_gives_the_same_table(small_run, tmp_path):
    from dask.distributed import LocalCluster
    _, spec_path, out, _ = small_run
    db = tmp_path / "dask.db"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        s = run_sweep(load_spec(spec_path), db, scheduler=cluster.scheduler_address, progress=False)
    assert s.ran == 12
    _assert_same(_table(out), _table(db))


# ---------------------------------------------------------------------------------------------- slow
# 324 small points: a few seconds of writing, so that kills land in the middle of the sweep
MANY = {"models": ["mlp_digits"], "accelerators": ["vegeta-flex"], "sparsity": ["dense", "2:4", "1:4"],
        "overrides": {"compute.dataflow": ["ws", "os", "is"], "compute.rows": [4, 8, 16, 32, 64, 128],
                      "compute.cols": [4, 8, 16, 32, 64, 128]}}


@pytest.mark.slow
def test_local_pool_equals_in_process(small_run, tmp_path):
    _, spec_path, out, _ = small_run
    db = tmp_path / "pool.db"
    s = run_sweep(load_spec(spec_path), db, workers=2, progress=False)
    assert s.ran == 12
    _assert_same(_table(out), _table(db))


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_equals_uninterrupted(tmp_path):
    spec = _spec(tmp_path, MANY)
    ref = tmp_path / "ref.db"
    run_sweep(load_spec(spec), ref, workers=0, progress=False)
    db = tmp_path / "killed.db"
    rng = random.Random(11)
    n = len(load_spec(spec).points)
    kills = 0
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "sparsim.cli", "sweep", str(spec), "--out", str(db),
                                 "--workers", str(attempt % 2), "--quiet"], env=ENV, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            start = _count(db)
            target = start + rng.randint(1, max(1, (n - start) // 3))
            deadline = time.monotonic() + 240
            while _count(db) < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(rng.uniform(0.0, 0.02))
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                kills += 1
            proc.wait(timeout=30)
    assert kills == 3
    assert _count(db) < n
    assert main(["sweep", str(spec), "--out", str(db), "--workers", "0", "--quiet"]) == 0
    _assert_same(_table(ref), _table(db))
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM points").fetchone() == (n, n)
        assert c.execute("SELECT COUNT(*) FROM (SELECT point_key, idx FROM layers GROUP BY 1, 2 "
                         "HAVING COUNT(*) > 1)").fetchone() == (0,)


def _count(db) -> int:
    if not Path(db).exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return c.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_dask_scheduler_and_worker_processes_give_the_same_table(small_run, tmp_path):
    _, spec_path, out, _ = small_run
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    bin_dir = Path(sys.executable).parent
    procs = []
    try:
        procs.append(subprocess.Popen([str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                       "--no-dashboard"], env=ENV, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen([str(bin_dir / "dask"), "worker", addr, "--nworkers", "2", "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1"], env=ENV, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from dask.distributed import Client
        deadline = time.monotonic() + 120
        while True:
            try:
                with Client(addr, timeout="5s") as c:
                    if len(c.scheduler_info()["workers"]) >= 2:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "dask workers did not come up in 120 s"
            time.sleep(1)
        db = tmp_path / "dask.db"
        assert main(["sweep", str(spec_path), "--out", str(db), "--scheduler", addr, "--quiet"]) == 0
        _assert_same(_table(out), _table(db))
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(small_run, tmp_path):
    from sweeps.report import write_report
    chromium = "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    _, _, out, _ = small_run
    write_report(out, tmp_path / "rep")
    page = (tmp_path / "rep" / "report.html").as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--window-size=1300,2600"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [l for l in dom.stderr.splitlines() if "CONSOLE" in l or "Uncaught" in l]
    assert not console, console
    # plotly drew every figure: one .main-svg per plot, with its axis titles
    assert dom.stdout.count('class="main-svg"') >= 5
    assert "Speed-up over dense (x)" in dom.stdout and "Energy (uJ)" in dom.stdout
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", page], capture_output=True, timeout=180)
    assert shot.exists() and shot.stat().st_size > 20_000
    keep = os.environ.get("SPARSIM_KEEP_SCREENSHOT")
    if keep:
        Path(keep).write_bytes(shot.read_bytes())


def test_mask_cache_gives_the_numbers_of_a_cold_run():
    """simulator.maskcache: a warm layer (statistics from an earlier design) simulates like a cold one."""
    import accel
    import sparsim
    from simulator import maskcache, simulate
    wl = sparsim.trace_zoo("mlp_digits", batch=4).sparsify("unstructured:0.4")
    designs = [accel.load("vegeta-flex").with_dataflow(accel.Dataflow(f)) for f in ("ws", "os", "is")]
    warm = [simulate(wl, a).layers for a in designs + designs]
    for a, got in zip(designs + designs, warm):
        maskcache.clear()
        pd.testing.assert_frame_equal(got, simulate(wl, a).layers, check_exact=True)



def test_prepared_workloads_on_disk_simulate_like_ones_made_in_memory(tmp_path):
    """sweeps.prepared: each traced model and masked workload is made once into the cache folder
    (weights dropped, masks packed); points simulated from it equal points made in memory, and a
    process that finds the files prepared imports no torch."""
    import pickle
    from sweeps import evaluate as ev
    spec = load_spec({"models": ["cnn_digits"], "accelerators": ["vegeta-flex", "sat-vcu1525"],
                      "sparsity": ["unstructured:0.5", "2:4", {"conv*": "1:4"}], "training": [None, "bdwp"],
                      "overrides": {"compute.dataflow": ["ws", "os"]}})
    pts = list(spec.points)

    def run(cache):
        ev._MASKED.clear()
        ev._TRACED.clear()
        out = [ev.evaluate(p, cache) for p in pts]
        for r in out:
            r.pop("elapsed_s")
        return out
    in_memory = run(None)
    assert {r["status"] for r in in_memory} == {"ok"}
    assert run(tmp_path) == in_memory           # made here
    assert run(tmp_path) == in_memory           # loaded
    files = sorted(f.name.split("-")[0] for f in tmp_path.glob("*.pkl"))
    assert files == ["masked"] * len({p.workload_key for p in pts}) + ["traced"]
    (tmp_path / "pts.pkl").write_bytes(pickle.dumps(pts))
    code = ("import pickle, sys; from sweeps.evaluate import evaluate; pts = pickle.load(open(sys.argv[1], 'rb')); "
            "rs = [evaluate(p, sys.argv[2]) for p in pts]; print([r['status'] for r in rs].count('error'), "
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "pts.pkl"), str(tmp_path)], capture_output=True,
                         text=True, env=ENV, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.split() == ["0", "False"], out.stdout + out.stderr


def test_prepared_file_is_made_once_and_again_when_unreadable(tmp_path):
    import numpy as np
    from simulator.kernels import as_u8
    from sweeps import prepared
    from workloads import Layer, LayerKind, WeightLayout, Workload
    rng = np.random.default_rng(0)
    mask = rng.random((24, 4, 3, 3)) < 0.4        # 24 outputs in 2 groups, 4 inputs per group, 3x3
    layer = Layer(name="c", kind=LayerKind.CONV2D, m=10, n=12, k=36, groups=2, weight_name="c.w",
                  weight=rng.standard_normal(mask.shape).astype(np.float32), weight_layout=WeightLayout.CONV,
                  mask=mask, pattern=None)
    wl = Workload(name="w", layers=(layer,))
    calls = []

    def make():
        calls.append(1)
        return wl
    got = [prepared.masked(tmp_path, "m", 1, 0, None, "mask", make) for _ in range(2)]
    assert len(calls) == 1 and got[0] is wl
    back = got[1].layers[0]
    assert back.weight is None and back.weight_name == "c.w" and back.pattern_label == layer.pattern_label
    assert back.mask.dtype == np.bool_ and np.array_equal(back.gemm_mask(), layer.gemm_mask())
    # the mask statistics come with it (made once by the process that masked it), equal to fresh ones
    from simulator import maskcache
    seeded = maskcache.mask_entry(back)
    assert seeded._u8 is None                        # read from the file, not computed here
    fresh = maskcache.MaskEntry(None, *maskcache.statistics(layer))
    maskcache.clear()
    again = maskcache.mask_entry(back)              # computed from the mask read back
    for e in (seeded, again):
        assert np.array_equal(e.live, fresh.live) and e.live.dtype == fresh.live.dtype
        assert np.array_equal(e.live_k, fresh.live_k) and e.live_k.dtype == fresh.live_k.dtype
        assert e.nnz == fresh.nnz and type(e.nnz) is type(fresh.nnz)
        assert np.array_equal(e.u8, as_u8(layer.gemm_mask())) and e.u8.flags.c_contiguous
    (path,) = tmp_path.glob("masked-*.pkl")
    path.write_bytes(b"not a pickle")
    prepared.masked(tmp_path, "m", 1, 0, None, "mask", make)
    assert len(calls) == 2

def test_a_process_waiting_for_a_prepared_file_does_its_own_work_first(tmp_path):
    import threading
    from sweeps import prepared
    hooks, ready = [], threading.Event()

    def waiting():
        hooks.append("waited")
        ready.set()
    got = []
    with prepared._locked(tmp_path / "x.lock"):     # another process is making it
        t = threading.Thread(target=lambda: got.append(
            prepared._shared(tmp_path, "x", lambda: "made", lambda o: o, lambda o: o, waiting)))
        t.start()
        assert ready.wait(30)
        assert not got                              # still waiting for the lock
    t.join(30)
    assert got == ["made"] and hooks == ["waited"]
    # free lock, or the file already made: no waiting, no hook
    assert prepared._shared(tmp_path, "x", lambda: "again", lambda o: o, lambda o: o, waiting) == "made"
    assert prepared._shared(tmp_path, "y", lambda: "y", lambda o: o, lambda o: o, waiting) == "y"
    assert hooks == ["waited"]


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_tasks_prepare_the_next_workloads_ahead(workers):
    from sweeps.runner import _tasks
    points = load_spec({**BASE, "sparsity": ["dense", "2:4", "1:4", "unstructured:0.5"], "batch": [1, 2]}).points
    tasks = _tasks(points, workers)
    flat = [p.key for t in tasks for p in t]
    assert sorted(flat) == sorted(p.key for p in points)            # every point once
    assert all(len({p.workload_key for p in t}) == 1 for t in tasks)  # one workload per task
    wk = [t[0].workload_key for t in tasks]
    order = list(dict.fromkeys(wk))                                 # workloads by their first task
    assert len(order) > workers
    assert len(set(wk[:workers])) == workers                        # workers start on different ones
    for i, w in enumerate(order[:-workers]):
        # workload i + workers is started before workload i's other tasks
        rest = [j for j, x in enumerate(wk) if x == w][1:]
        assert not rest or wk.index(order[i + workers]) < rest[0]


def test_point_key_hashes_its_full_config():
    import hashlib
    from sweeps.spec import _canonical
    for p in load_spec(BASE).points[:5]:
        assert p.key == hashlib.sha256(_canonical(p.config()).encode()).hexdigest()[:24]


def test_zoo_names_without_torch_match_the_zoo():
    from workloads import zoo
    from workloads.zoonames import NAMES
    assert tuple(zoo.names()) == NAMES


def test_resume_with_nothing_to_run_imports_neither_torch_nor_numba(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("models: [mlp_digits]\naccelerators: [vegeta-flex]\nsparsity: [dense]\n")
    db = tmp_path / "r.db"
    from sweeps import load_spec, run_sweep
    run_sweep(load_spec(spec), db, workers=0, progress=False)
    code = ("import sys; from sparsim.cli import main; rc = main(['sweep', sys.argv[1], '--out', sys.argv[2], "
            "'--quiet']); print(sorted(m for m in ('torch', 'numba', 'pandas', 'workloads.tracer') "
            "if m in sys.modules)); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(spec), str(db)], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr
    assert "1 already done, ran 0" in out.stdout and out.stdout.strip().endswith("[]"), out.stdout
