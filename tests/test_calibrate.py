"""The engine's RTL timing model and `sparsim calibrate` (the RTL part is slow: marked)."""
import json

import numpy as np
import pytest
import yaml

import accel
import sparsim
from accel import AccelConfigError, TimingModel
from hdl.runner import simulator_missing
from simulator import simulate
from simulator.golden import ArrayFold, nm_array_timeline
from simulator.kernels import double_buffered_cycles
from sparsim.cli import main
from workloads import Layer, LayerKind


def _zero_fold(r, c, n, m, t):
    zero = tuple(tuple(0 for _ in range(c)) for _ in range(r))
    return ArrayFold(zero, zero, tuple(tuple(0 for _ in range(r // n * m)) for _ in range(t)))


def test_double_buffered_kernel_matches_the_array_golden_model():
    rng = np.random.default_rng(0)
    for _ in range(150):
        r = int(rng.choice([1, 2, 4, 8]))
        c = int(rng.integers(2, 7))
        t = [int(x) for x in rng.integers(1, 20, size=int(rng.integers(1, 7)))]
        folds = [_zero_fold(r, c, 1, 2, x) for x in t]
        ev, first, _ = nm_array_timeline(folds, [True] * 3000, [True] * 3000, [True] * 3000, r, c, 1, 2)
        assert double_buffered_cycles(t, r, c) == ev[-1].cycle - first + 1


def test_rtl_timing_model_in_the_engine():
    doc = yaml.safe_load(accel.presets.path("vegeta-flex").read_text())
    assert accel.build(doc).compute.timing.model is TimingModel.RTL   # presets use the RTL's schedule
    doc["compute"]["timing"] = {"model": "scalesim"}
    base = accel.build(doc)
    doc["compute"]["timing"] = {"model": "rtl"}
    rtl = accel.build(doc)
    assert rtl.compute.timing.model is TimingModel.RTL
    wl = sparsim.trace_zoo("mlp_digits").sparsify("2:4")
    one_fold = Layer(name="one", kind=LayerKind.MATMUL, m=20, n=12, k=10)   # fits one 32 x 32 fold
    wl = wl.replace(layers=wl.layers + (one_fold,))
    a, b = simulate(wl, base).layers, simulate(wl, rtl).layers
    # a single fold: the RTL's first-input-to-last-output count is the SCALE-Sim fold plus two
    one = a[a.folds == 1]
    assert len(one) >= 1
    assert ((b.loc[one.index, "compute_cycles"] - one.compute_cycles) == 3).all()  # SCALE-Sim subtracts one
    doc["compute"]["dataflow"] = "os"      # no RTL for os: SCALE-Sim's rule, as a --dataflow override gives
    assert accel.build(doc).compute.timing.model is TimingModel.SCALESIM
    doc["compute"]["dataflow"] = "ws"
    doc["compute"]["timing"] = {"model": "cycle-accurate"}
    with pytest.raises(AccelConfigError, match="compute.timing.model: expected one of scalesim, rtl"):
        accel.build(doc)


@pytest.mark.slow
def test_calibrate_quick_end_to_end(tmp_path, capsys):
    if simulator_missing("verilator"):
        pytest.skip(simulator_missing("verilator"))
    out, rep = tmp_path / "calib.yaml", tmp_path / "calib.json"
    assert main(["calibrate", "--accel", "vegeta-flex", "--quick", "--out", str(out), "--report", str(rep)]) == 0
    text = capsys.readouterr().out
    assert "held-out tiles: MAPE" in text and "Verilator" in text
    report = json.loads(rep.read_text())
    for key in ("mape_percent", "max_abs_error_percent", "simulator", "tiles"):
        assert key in report
    assert report["simulator"]["name"] == "verilator" and "5.006" in report["simulator"]["version"]
    for tile in report["tiles"]:
        assert set(tile) >= {"mask", "backpressure", "rtl_cycles", "model_cycles", "name", "n", "m", "rows",
                             "cols", "held_out", "model_cycles_before", "error_percent", "error_cycles"}
        assert isinstance(tile["rtl_cycles"], int) and isinstance(tile["backpressure"], bool)
        assert tile["error_cycles"] == pytest.approx(tile["model_cycles"] - tile["rtl_cycles"])
    held = report["held_out"]
    assert held["no_backpressure"]["cases"] >= 1 and held["backpressure"]["cases"] >= 1
    assert held["no_backpressure"]["max_abs_error_cycles"] == 0          # exact without backpressure
    assert held["backpressure"]["mape_percent"] <= 2.0
    # calm unstructured tiles run multi-pass on the RTL; the engine's imbalance model is exact there
    calm = [t for t in report["tiles"] if t["mask"].startswith("unstructured:") and not t["backpressure"]]
    assert {t["mask"] for t in calm} >= {"unstructured:0.5", "unstructured:0.3"}
    assert all(t["held_out"] and t["rtl_cycles"] == t["model_cycles"] for t in calm)
    assert any(t["rtl_cycles"] != t["model_cycles_before"] for t in calm)   # the check can fail
    assert any(t["mask"] == "1:4" for t in report["tiles"])               # a zoo layer's own weights
    # the YAML is an include for an accelerator description
    doc = yaml.safe_load(accel.presets.path("vegeta-flex").read_text())
    doc["include"] = [out.name]
    (tmp_path / "acc.yaml").write_text(yaml.safe_dump(doc))
    acc = accel.load(tmp_path / "acc.yaml")
    assert acc.compute.timing.model is TimingModel.RTL
    assert acc.compute.timing.stream_cycles_per_row == pytest.approx(1.0)


def test_run_length_rtl_schedule_equals_the_fold_by_fold_recurrence():
    """The engine's rtl rule extrapolates runs of identical folds (max-plus homogeneity); it must equal
    the fold-by-fold recurrence exactly, including period-2 steady states and short runs."""
    from simulator.kernels import double_buffered_runs
    rng = np.random.default_rng(5)
    for _ in range(400):
        r, c = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        n_runs = int(rng.integers(1, 4))
        values = rng.integers(1, 90, n_runs).astype(float)
        counts = rng.integers(1, 30, n_runs)
        reps = int(rng.integers(1, 12))
        lp, sp, fe = (float(rng.choice([1.0, 1.5, 2.0])), float(rng.choice([1.0, 1.25])),
                      float(rng.integers(0, 4)))
        seq = np.tile(np.repeat(values, counts), reps)
        assert double_buffered_runs(values, counts, reps, r, c, lp, sp, fe) == pytest.approx(
            double_buffered_cycles(seq, r, c, lp, sp, fe), rel=1e-12, abs=1e-6)
    # a huge stream is costed without enumerating its folds
    assert double_buffered_runs(np.array([32.0]), np.array([1 << 40]), 3, 32, 32) > 3 * (1 << 45)
    # one fold per repetition (an LLM decode GEMV: each weight tile streams one row) alternates the two
    # weight banks: a period of two repetitions, extrapolated exactly, odd and even counts alike
    for reps in (2001, 2002):
        for lp, fe in ((1.0, 0.0), (2.0, 3.0)):
            assert double_buffered_runs(np.array([1.0]), np.array([1]), reps, 16, 16, lp, 1.0, fe) == pytest.approx(
                double_buffered_cycles(np.ones(reps), 16, 16, lp, 1.0, fe), rel=1e-12, abs=1e-6)
    got = double_buffered_runs(np.array([1.0]), np.array([1]), 1 << 40, 16, 16)
    assert got == pytest.approx(double_buffered_runs(np.array([1.0]), np.array([1]), 1 << 20, 16, 16) * (1 << 20),
                                rel=1e-3)


def test_cocotb_runner_import_prints_no_warning():
    """cocotb 1.8 warns that its Python runner is experimental on import; calibrate ran into it every time."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    code = "from hdl.runner import _cocotb_runner; _cocotb_runner()"
    r = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, cwd=root,
                       env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert "experimental" not in r.stderr and "Warning" not in r.stderr
    # without the filter the same import does warn (the test can fail)
    r = subprocess.run([sys.executable, "-W", "always", "-c", "import cocotb.runner"], capture_output=True, text=True,
                       cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert "experimental" in r.stderr


def test_calibrate_refuses_a_non_ws_design_up_front(tmp_path, capsys):
    """The calibration file sets timing.model: rtl, valid for WS only: an OS design is refused before
    anything runs, instead of writing a file the same design then refuses."""
    doc = yaml.safe_load(accel.presets.path("vegeta-flex").read_text())
    doc["compute"]["dataflow"] = "os"
    import hdl.calibrate as cal
    with pytest.raises(cal.HdlError, match="needs compute.dataflow: ws, but .* is os"):
        cal.calibrate(accel.build(doc), sim="icarus")
    (tmp_path / "os.yaml").write_text(yaml.safe_dump(doc))
    out = tmp_path / "calib.yaml"
    assert main(["calibrate", "--accel", str(tmp_path / "os.yaml"), "--quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "needs compute.dataflow: ws" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_calibrate_sim_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["calibrate", "--help"])
    out = capsys.readouterr().out
    assert "--sim {verilator,icarus}" in out and "RTL simulator" in out


@pytest.mark.slow
def test_independent_timing_check_against_the_formula_alone():
    """RTL cycles measured without the golden model's timing, on a tall and a wide array (R, C of 2
    and 16), equal the engine's rtl formula with its default parameters; a formula one cycle off
    would show. (Two Verilator builds: the 2x2 and 16x16 corners were dropped to keep make test within
    its budget; `sparsim calibrate --timing-check` runs the whole 4x4 grid of sizes.)"""
    if simulator_missing("verilator"):
        pytest.skip(simulator_missing("verilator"))
    from hdl.timing_check import timing_grid
    tc = timing_grid(shapes=((2, 16), (16, 2)), sequences=((5,), (1, 6, 2, 12)), log=lambda *_: None)
    assert tc["points"] == 4 and {(r["R"], r["C"]) for r in tc["rows"]} == {(2, 16), (16, 2)}
    assert tc["max_abs_error_cycles"] == 0
    for row in tc["rows"]:
        assert double_buffered_cycles(row["folds"], row["R"], row["C"], 1.0, 1.0, 1.0) != row["rtl_cycles"]
