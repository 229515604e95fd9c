"""Issue 25, trust in every number: a stored sweep point is the point the spec names today, impossible
designs are refused or flagged, every output path is checked, bad inputs get one line."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from sparsim.cli import main

ROOT = Path(__file__).resolve().parent.parent

MODEL = """import torch
from helper import WIDTH


def build(batch=1):
    m = torch.nn.Sequential(torch.nn.Linear(64, WIDTH), torch.nn.ReLU(), torch.nn.Linear(WIDTH, 10))
    return m, (torch.randn(batch, 64),)
"""
ACC = """include: dram.yaml
name: myacc
compute: {rows: 16, cols: 16, dataflow: ws, clock_hz: 1.0e+9, sparse_modes: [dense, "2:4"]}
memories:
  - {name: ifmap_sram, size_bytes: 65536, read_bw_bytes_per_cycle: 64, holds: [activation]}
  - {name: filter_sram, size_bytes: 65536, read_bw_bytes_per_cycle: 64, holds: [weight]}
  - {name: ofmap_sram, size_bytes: 65536, read_bw_bytes_per_cycle: 64, holds: [output]}
"""


def _project(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "mymodel.py").write_text(MODEL)
    (d / "helper.py").write_text("WIDTH = 128\n")
    (d / "dram.yaml").write_text("dram: {bandwidth_bytes_per_s: 1.6e+10, technology: ddr4}\n")
    (d / "acc.yaml").write_text(ACC)
    spec = d / "s.yaml"
    spec.write_text('models: [mymodel.py:build]\naccelerators: [acc.yaml]\nsparsity: [dense, "2:4"]\n')
    return spec


def _rows(db) -> list[tuple]:
    from sweeps.store import load_results
    pts, _ = load_results(db)
    return sorted((r.sparsity, int(r.cycles), round(float(r.speedup), 9)) for r in pts.itertuples())


def _sweep(spec, db):
    from sweeps import load_spec
    from sweeps.runner import run_sweep
    return run_sweep(load_spec(spec), db, workers=0, progress=False)


# ------------------------------------------------------------------------------ 1, 2: stale sweep rows
@pytest.mark.parametrize("edit", ["model", "imported module", "accelerator", "included file"])
def test_an_edited_file_gives_the_table_of_a_fresh_store(tmp_path, edit, capsys):
    spec = _project(tmp_path / "p")
    d = spec.parent
    db = d / "s.db"
    _sweep(spec, db)
    first = _rows(db)
    if edit == "model":
        (d / "mymodel.py").write_text(MODEL.replace("torch.nn.Linear(64, WIDTH)", "torch.nn.Linear(64, 4 * WIDTH)")
                                      .replace("torch.nn.Linear(WIDTH, 10)", "torch.nn.Linear(4 * WIDTH, 10)"))
    elif edit == "imported module":
        (d / "helper.py").write_text("WIDTH = 1024\n")
    elif edit == "accelerator":
        (d / "acc.yaml").write_text(ACC.replace("include: dram.yaml\n", "include: dram.yaml\n"
                                                "dram: {bandwidth_bytes_per_s: 2.0e+9, technology: ddr4}\n"))
    else:
        (d / "dram.yaml").write_text("dram: {bandwidth_bytes_per_s: 2.0e+9, technology: ddr4}\n")
    # results on the old store say it is out of date
    assert main(["results", str(db)]) == 0
    err = capsys.readouterr().err
    assert "2 points were computed from files that have changed" in err, err
    again = _sweep(spec, db)
    assert again.ran == 2 and again.skipped == 0 and len(again.superseded) == 2
    assert all("changed since it ran" in r for _, r in again.superseded)
    fresh = tmp_path / "fresh" / "f.db"
    fresh.parent.mkdir()
    _sweep(spec, fresh)       # its own folder: no prepared workloads shared with the old run
    assert _rows(db) == _rows(fresh) != first
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*) FROM superseded").fetchone()[0] == 2
        assert c.execute("SELECT COUNT(*) FROM points").fetchone()[0] == 2
    assert main(["results", str(db)]) == 0
    assert "changed" not in capsys.readouterr().err


def test_cli_says_what_it_superseded(tmp_path, capsys):
    spec = _project(tmp_path)
    db = tmp_path / "s.db"
    assert main(["sweep", str(spec), "--out", str(db), "--quiet", "--workers", "0"]) == 0
    (tmp_path / "dram.yaml").write_text("dram: {bandwidth_bytes_per_s: 2.0e+9, technology: ddr4}\n")
    capsys.readouterr()
    assert main(["sweep", str(spec), "--out", str(db), "--quiet", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "superseded 2 stored points (changed since it ran: " in out and "dram.yaml" in out


def test_model_sources_follow_local_imports_only(tmp_path):
    from workloads.modelspec import model_source_files
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from .sub import X\n")
    (tmp_path / "pkg" / "sub.py").write_text("X = 1\n")
    (tmp_path / "m.py").write_text("import os\nimport torch\nfrom pkg import X\nimport h2\ndef build(): pass\n")
    (tmp_path / "h2.py").write_text("from . import h3\n")
    (tmp_path / "h3.py").write_text("")
    (tmp_path / "unrelated.py").write_text("")
    got = {Path(p).relative_to(tmp_path).as_posix() for p in model_source_files(f"{tmp_path}/m.py:build")}
    assert got == {"m.py", "h2.py", "h3.py", "pkg/__init__.py", "pkg/sub.py"}
    assert model_source_files("mlp_digits") == {}


def test_zoo_point_keys_do_not_name_files():
    """Zoo models and presets have no user files: their keys are what they were."""
    from sweeps import load_spec
    p = load_spec({"models": ["mlp_digits"], "accelerators": ["vegeta-flex"], "sparsity": ["dense"]}).points[0]
    assert p.files == () and "sources" not in p.config()["workload"]


# ------------------------------------------------------------------------------ 7: report per workload
def test_report_ranks_and_draws_fronts_within_one_workload(tmp_path):
    import re

    from sweeps import load_spec
    from sweeps.report import write_report
    from sweeps.runner import run_sweep
    db = tmp_path / "two.db"
    run_sweep(load_spec({"models": ["mlp_digits", "cnn_digits"], "accelerators": ["vegeta-flex"],
                         "sparsity": ["dense", "2:4"], "overrides": {"compute.rows": [8, 16]}}),
              db, workers=0, progress=False)
    write_report(db, tmp_path / "rep")
    page = (tmp_path / "rep" / "report.html").read_text()
    tables = re.findall(r"<table class='fastest'><caption>(.*?)</caption>(.*?)</table>", page)
    assert [c for c, _ in tables] == ["model=mlp_digits", "model=cnn_digits"] or \
        [c for c, _ in tables] == ["model=cnn_digits", "model=mlp_digits"]
    for cap, body in tables:                    # each table holds its own workload only, fastest first
        model = cap.split("=")[1]
        cells = re.findall(r"<tr><td>([^<]*)</td>", body)
        assert cells and set(cells) == {model}
        cycles = [int(c.replace(",", "")) for c in re.findall(r"<td>([\d,]+)</td><td>[\d.]+ ms", body)]
        assert cycles == sorted(cycles) and len(cycles) == 4
    assert "Pareto front: model=mlp_digits" in page and "Pareto front: model=cnn_digits" in page


# ------------------------------------------------------------------------------ 6, 8, 10: output paths
@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    from sweeps import load_spec
    from sweeps.runner import run_sweep
    db = tmp_path_factory.mktemp("store") / "r.db"
    run_sweep(load_spec({"models": ["mlp_digits"], "accelerators": ["vegeta-flex"], "sparsity": ["dense"]}),
              db, workers=0, progress=False)
    return db


def _refused(capsys, argv, fragment):
    """``argv`` exits 2 with one line holding ``fragment``, having printed nothing (it did not run)."""
    rc = main(argv)
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert rc == 2 and cap.out == "" and len(lines) == 1 and fragment in lines[0], (rc, cap.out, cap.err)
    return lines[0]


@pytest.mark.parametrize("argv, fragment", [
    # the accelerator / parameters / model given are bad too: the output is checked first, before anything runs
    (["sweep", "SPEC", "--out", "TMP/x.csv"], "--out TMP/x.csv: expected a .db, .sqlite or .sqlite3 file name"),
    (["calibrate", "--accel", "nosuch", "--out", "TMP/calib.json"], "expected a .yaml or .yml file name"),
    (["calibrate", "--accel", "nosuch", "--report", "TMP/calib.yaml"], "--report TMP/calib.yaml: expected a .json"),
    (["synth", "--unit", "nm_array", "--params", "N=5,M=4", "--out", "TMP/s.txt"], "--out TMP/s.txt: expected a .json"),
    (["synth", "--unit", "nm_array", "--params", "N=5,M=4", "--fpga-yaml", "TMP/f.txt"], "expected a .yaml or .yml"),
    (["prune", "--model", "nosuch", "--accel", "vegeta-flex", "--budget", "0.5", "--out", "TMP/p.txt"],
     "--out TMP/p.txt: expected a .pt or .pth file name"),
    (["prune", "--model", "nosuch", "--accel", "vegeta-flex", "--budget", "0.5", "--report", "TMP/p.txt"],
     "--report TMP/p.txt: expected a .json file name"),
])
def test_output_extensions_agree_with_what_is_written(argv, fragment, tmp_path, capsys, tiny_store):
    spec = tmp_path / "s.yaml"
    spec.write_text("models: [mlp_digits]\naccelerators: [vegeta-flex]\nsparsity: [dense]\n")
    argv = [a.replace("TMP", str(tmp_path)).replace("SPEC", str(spec)) for a in argv]
    _refused(capsys, argv, fragment.replace("TMP", str(tmp_path)))
    assert not list(tmp_path.glob("x.*")) and not list(tmp_path.glob("calib.*"))


def test_results_format_must_match_the_extension(tiny_store, tmp_path, capsys):
    out = tmp_path / "r.parquet"
    _refused(capsys, ["results", str(tiny_store), "--format", "csv", "--out", str(out)],
             f"--format csv does not match --out {out}")
    assert not out.exists()
    assert main(["results", str(tiny_store), "--out", str(out)]) == 0       # the extension decides
    assert pd.read_parquet(out)["model"].tolist() == ["mlp_digits"]
    assert main(["results", str(tiny_store), "--format", "json", "--out", str(tmp_path / "r.json")]) == 0


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc")
def test_unwritable_out_is_refused_before_the_run(capsys):
    _refused(capsys, ["simulate", "--model", "mlp_digits", "--accel", "vegeta-flex", "--out", "/proc/r.json"],
             "--out /proc/r.json: cannot write in directory /proc")


def test_a_write_that_fails_after_the_run_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    from simulator.result import SimResult

    def full(self, path):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(SimResult, "save", full)
    out = tmp_path / "r.json"
    assert main(["simulate", "--model", "mlp_digits", "--accel", "vegeta-flex", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"sparsim simulate: error: --out {out}: writing failed (No space left on device)"]


def test_sweep_into_a_missing_folder_says_so(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text("models: [mlp_digits]\naccelerators: [vegeta-flex]\nsparsity: [dense]\n")
    _refused(capsys, ["sweep", str(spec), "--out", str(tmp_path / "nodir" / "x.db")],
             f"directory {tmp_path / 'nodir'} does not exist")


# ------------------------------------------------------------------------------ 9, 10, 12: messages
def test_unquoted_nm_in_a_spec_says_to_quote_it(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text("models: [mlp_digits]\naccelerators: [vegeta-flex]\nsparsity: [dense, 2:4]\n")
    line = _refused(capsys, ["sweep", str(spec), "--out", str(tmp_path / "x.db")], "sparsity[1]: got the number 124")
    assert 'quote the pattern: "2:4"' in line


def test_synth_n_above_m_names_the_rule(capsys):
    _refused(capsys, ["synth", "--unit", "nm_array", "--params", "R=8,C=8,N=5,M=4"], "N must be <= M")


def test_calibrate_names_the_file_given(tmp_path, capsys):
    import accel
    text = accel.presets.path("vegeta-flex").read_text().replace("dataflow: ws", "dataflow: os")
    f = tmp_path / "os_design.yaml"
    f.write_text(text)
    line = _refused(capsys, ["calibrate", "--accel", str(f), "--quick"], f"--accel {f}: the RTL array is weight")
    assert "needs compute.dataflow: ws" in line


def test_search_on_a_model_without_gemm_layers_is_one_line(tmp_path, capsys):
    f = tmp_path / "nogemm.py"
    f.write_text("import torch\n\n\ndef build():\n    return torch.nn.ReLU(), (torch.randn(1, 8),)\n")
    _refused(capsys, ["search", "--model", f"{f}:build", "--accel", "vegeta-flex"], "has no GEMM layers")


def test_trace_without_the_event_engine_is_refused_before_any_work(capsys):
    # the model does not exist: the argument check must come before it is looked up
    _refused(capsys, ["simulate", "--model", "nosuch_model", "--accel", "vegeta-flex", "--trace", "t"],
             "--trace t: the per-tile timeline comes from the event engine; add --engine event")


def test_search_rows_prints_at_most_that_many_front_rows(capsys):
    from sparsim.commands.search import shown_rows
    for n in range(1, 40):
        for rows in range(1, 8):
            for chosen in range(n):
                got = shown_rows(n, rows, chosen)
                assert chosen in got and len(got) <= rows and got == sorted(set(got))
                assert n > rows or got == list(range(n))
    assert main(["search", "--model", "mlp_digits", "--accel", "vegeta-flex", "--evals", "100", "--rows", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    front = [l for l in lines if l.startswith("front ")]
    assert len(front) == 3 and any(l.startswith("front *") for l in front)


# ------------------------------------------------------------------------------ 3: tiny densities
@pytest.mark.parametrize("pattern", ["channel:0.0001", "unstructured:0.0001", "block:4x4:0.0001"])
def test_a_tiny_density_thins_every_layer_and_removes_none(pattern, tmp_path, capsys):
    import numpy as np

    from workloads.patterns import parse_pattern
    w = np.random.default_rng(0).standard_normal((64, 10))
    assert parse_pattern(pattern).mask(w).sum() >= 1
    out = tmp_path / "r.json"
    assert main(["simulate", "--model", "mlp_digits", "--accel", "vegeta-flex", "--sparsity", pattern,
                 "--out", str(out)]) == 0
    capsys.readouterr()
    layers = json.loads(out.read_text())["layers"]
    assert len(layers) == 3
    assert all(l["cycles"] > 0 and l["energy_pj"] > 0 and l["effective_macs"] > 0 for l in layers), layers


# ------------------------------------------------------------------------------ 5: weight_mask shape
def test_a_weight_mask_of_the_wrong_shape_is_refused(tmp_path, capsys):
    f = tmp_path / "masked.py"
    f.write_text("import torch\n\n\ndef build():\n    m = torch.nn.Sequential(torch.nn.Linear(8, 4))\n"
                 "    m[0].register_buffer('weight_mask', torch.zeros(3, 3))\n    return m, (torch.randn(2, 8),)\n")
    line = _refused(capsys, ["trace", "--model", f"{f}:build"], "layer '0': the model's mask for weight '0.weight'")
    assert "has shape (3, 3), the weight (4, 8)" in line


def test_a_weight_mask_that_broadcasts_is_used():
    import torch
    import torch.nn.utils.prune as prune

    from workloads.tracer import trace
    m = torch.nn.Sequential(torch.nn.Linear(8, 4))
    prune.identity(m[0], "weight")
    m[0].weight_mask = torch.tensor([[1.0], [0.0], [1.0], [0.0]])       # one flag per output
    layer = trace(m, (torch.randn(2, 8),)).layers[0]
    assert layer.mask.shape == (4, 8) and layer.mask.sum() == 16 and layer.density == 0.5


# ------------------------------------------------------------------------------ 4: impossible designs
@pytest.mark.parametrize("edit, fragment", [
    ({"rows: 32": "rows: 100000000", "cols: 32": "cols: 100000000"}, "compute.rows: 100,000,000 is above 65,536"),
    ({"rows: 32": "rows: 8192", "cols: 32": "cols: 8192"}, "compute.rows x compute.cols: 8,192 x 8,192"),
    ({"size_bytes: 524288": "size_bytes: 1099511627776"}, "memories[0].size_bytes: 1,099,511,627,776 B"),
    ({"clock_hz: 1.0e\\+9": "clock_hz: 2.0e+12"}, "compute.clock_hz: 2e+12 Hz is above"),
    ({"rows: 32": "rows: 4096", "cols: 32": "cols: 4096", "clock_hz: 1.0e\\+9": "clock_hz: 1.0e+10"},
     "compute.clock_hz: 16,777,216 PEs x 1e+10 Hz = 1.68e+17 MACs/s is above 1e+17"),
])
def test_designs_that_cannot_be_built_are_refused_naming_the_key(edit, fragment, tmp_path, capsys):
    import re

    import accel
    text = accel.presets.path("vegeta-flex").read_text()
    for pattern, repl in edit.items():
        text = re.sub(pattern, repl, text)
    f = tmp_path / "big.yaml"
    f.write_text(text)
    _refused(capsys, ["simulate", "--model", "mlp_digits", "--accel", str(f)], fragment)


def test_a_mapping_that_does_not_fit_is_warned_once_naming_the_layers(tmp_path, capsys):
    import re

    import accel
    text = re.sub(r"size_bytes: \d+", "size_bytes: 1", accel.presets.path("vegeta-flex").read_text())
    f = tmp_path / "tiny.yaml"
    f.write_text(text)
    assert main(["simulate", "--model", "mlp_digits", "--accel", str(f)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the mapping of 3 of 3 layers does not fit the buffers" in err[0]
    assert "fc1, fc2, fc3" in err[0]
    assert main(["simulate", "--model", "mlp_digits", "--accel", "vegeta-flex"]) == 0
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------------ 11: no orphan workers
def _children(pid: int) -> set[int]:
    try:
        return {int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads process children from /proc")
def test_workers_and_resource_tracker_exit_when_the_sweep_is_killed(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"models": ["mlp_digits"], "accelerators": ["vegeta-flex"],
                                    "sparsity": ["dense", "2:4", "1:4"],
                                    "overrides": {"compute.rows": list(range(4, 132, 4)),
                                                  "compute.cols": list(range(4, 68, 4))}}))
    db = tmp_path / "r.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "sparsim.cli", "sweep", str(spec), "--out", str(db),
                             "--workers", "2", "--quiet"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        kids: set[int] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            kids |= _children(proc.pid)
            if len(kids) >= 3 and db.exists() and sqlite3.connect(db).execute(
                    "SELECT COUNT(*) FROM sqlite_master WHERE name = 'points'").fetchone()[0] and \
                    sqlite3.connect(db).execute("SELECT COUNT(*) FROM points").fetchone()[0] > 0:
                break
            time.sleep(0.1)
        assert proc.poll() is None and len(kids) >= 3, "the sweep ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)          # the sweep process only, as `kill -9 PID` does
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [k for k in kids if _alive(k)], "worker processes outlived the sweep"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ------------------------------------------------------------------------------ README: example commands
@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_specs_suggest_commands_that_run(example):
    """The `sparsim report ... --color AXIS` an example suggests names one of its spec's columns."""
    import re

    from sweeps import load_spec
    lines = [l for l in example.read_text().splitlines() if l.startswith("#") and "sparsim " in l]
    if not lines:
        pytest.skip("no command suggested")
    axes = load_spec(example).axes
    for line in lines:
        color = re.search(r"--color (\S+)", line)
        if color:
            assert color.group(1) in axes, (line, axes)


def test_a_sweep_flags_points_whose_mapping_does_not_fit(tmp_path, capsys):
    import re

    import accel
    (tmp_path / "tiny.yaml").write_text(re.sub(r"size_bytes: \d+", "size_bytes: 1",
                                               accel.presets.path("vegeta-flex").read_text()))
    spec = tmp_path / "s.yaml"
    spec.write_text("models: [mlp_digits]\naccelerators: [tiny.yaml, vegeta-flex]\nsparsity: [dense]\n")
    db = tmp_path / "s.db"
    assert main(["sweep", str(spec), "--out", str(db), "--quiet", "--workers", "0"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: 1 ok point has layers whose mapping does not fit")
    from sweeps.store import load_results
    pts, _ = load_results(db)
    flagged = pts[pts["error"].notna()]
    assert list(flagged["accelerator"]) == ["tiny.yaml"] and (pts["status"] == "ok").all()
    assert "(3 layers: fc1, fc2, fc3)" in flagged["error"].iloc[0]


def test_llm_warns_once_when_a_mapping_does_not_fit(tmp_path, capsys):
    import re

    import accel
    cfg = sorted((ROOT / "examples" / "llm").glob("*/config.json"))
    if not cfg:
        pytest.skip("no example LLM config")
    (tmp_path / "tiny.yaml").write_text(re.sub(r"size_bytes: \d+", "size_bytes: 1",
                                               accel.presets.path("vegeta-flex").read_text()))
    assert main(["llm", "--model", f"hf:{cfg[0].parent}", "--accel", str(tmp_path / "tiny.yaml"),
                 "--prompt", "8", "--generate", "2", "--batch", "1,2"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not fit the buffers (even the smallest tiles overflow one)" in err[0], err
    assert main(["llm", "--model", f"hf:{cfg[0].parent}", "--accel", "vegeta-flex", "--prompt", "8",
                 "--generate", "2"]) == 0
    assert "does not fit" not in capsys.readouterr().err


def test_a_local_hf_model_point_is_keyed_by_its_config_content(tmp_path):
    """An hf:/path model's config (and weights) decide its points: editing config.json gives new keys."""
    import shutil

    from sweeps import load_spec
    model = tmp_path / "m"
    shutil.copytree(ROOT / "examples" / "llm" / "tiny-llama", model)
    spec = tmp_path / "s.yaml"
    spec.write_text('models: ["hf:./m"]\naccelerators: [vegeta-flex]\nsparsity: [dense]\n')
    before = [p.key for p in load_spec(spec).points]
    cfg = json.loads((model / "config.json").read_text())
    cfg["intermediate_size"] = cfg["intermediate_size"] * 2
    (model / "config.json").write_text(json.dumps(cfg))
    after = [p.key for p in load_spec(spec).points]
    assert before and not set(before) & set(after)
    assert any(f.endswith("config.json") for f, _ in load_spec(spec).points[0].files)
