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
    doc["compute"]["dataflow"] = "os"
    with pytest.raises(AccelConfigError, match="needs compute.dataflow: ws"):
        accel.build(doc)
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
    for key in ("mape_percent", "max_abs_error_percent", "simulator", "cases"):
        assert key in report
    assert report["simulator"]["name"] == "verilator" and "5.006" in report["simulator"]["version"]
    for case in report["cases"]:
        assert set(case) >= {"name", "n", "m", "rows", "cols", "backpressure", "held_out", "rtl_cycles",
                             "model_cycles_before", "model_cycles", "error_percent", "error_cycles"}
        assert case["error_cycles"] == pytest.approx(case["model_cycles"] - case["rtl_cycles"])
    held = report["held_out"]
    assert held["no_backpressure"]["cases"] >= 1 and held["backpressure"]["cases"] >= 1
    assert held["no_backpressure"]["max_abs_error_cycles"] == 0          # exact without backpressure
    assert held["backpressure"]["mape_percent"] <= 2.0
    assert any(c["masks"] == "real" for c in report["cases"])
    # the YAML is an include for an accelerator description
    doc = yaml.safe_load(accel.presets.path("vegeta-flex").read_text())
    doc["include"] = [out.name]
    (tmp_path / "acc.yaml").write_text(yaml.safe_dump(doc))
    acc = accel.load(tmp_path / "acc.yaml")
    assert acc.compute.timing.model is TimingModel.RTL
    assert acc.compute.timing.stream_cycles_per_row == pytest.approx(1.0)
