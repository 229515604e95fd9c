"""Yosys resource reports of the RTL (slow: each synthesis takes seconds)."""
import json
import shutil

import pytest

from hdl import HdlError
from hdl.synth import parse_params, synth
from sparsim.cli import main


def test_parse_params_and_bad_input():
    assert parse_params("N=2, M=4,G=4") == {"N": 2, "M": 4, "G": 4}
    assert parse_params("") == {}
    with pytest.raises(HdlError, match="NAME=VALUE"):
        parse_params("N2")
    with pytest.raises(HdlError, match="must be an integer"):
        parse_params("N=two")
    with pytest.raises(HdlError, match="expected one of nm_dot"):
        synth("nm_gemm", {})
    with pytest.raises(HdlError, match="unknown parameter"):
        synth("nm_dot", {"K": 3})
    with pytest.raises(HdlError, match="N must be <= M"):
        synth("nm_dot", {"N": 5, "M": 4})


needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys is not installed: apt-get install yosys")


@pytest.mark.slow
@needs_yosys
def test_synth_reports_resources_for_1of4_2of4_4of4(tmp_path, capsys):
    reps = {n: synth("nm_dot", {"N": n, "M": 4, "G": 4}) for n in (1, 2, 4)}
    for n, r in reps.items():
        assert r.dsp == 4 * n          # one multiplier per kept weight lane: G x N
        assert r.lut > 0 and r.ff >= 33  # the accumulator and output registers
    assert reps[1].lut < reps[2].lut < reps[4].lut
    generic = synth("nm_dot", {"N": 2, "M": 4, "G": 1}, target="generic")
    assert generic.cells > 0 and generic.ff >= 33 and generic.dsp == 0
    out = tmp_path / "r.json"
    assert main(["synth", "--unit", "nm_dot", "--params", "N=2,M=4,G=4", "--json", str(out)]) == 0
    assert "DSP 8" in capsys.readouterr().out
    assert json.loads(out.read_text())["dsp"] == 8
    assert main(["synth", "--unit", "nm_dot", "--params", "N=3,M=6"]) == 2
    assert "power of two" in capsys.readouterr().err


@pytest.mark.slow
@needs_yosys
def test_fpga_model_takes_per_pe_costs_from_synth(tmp_path):
    import yaml
    import accel
    costs = tmp_path / "pe.yaml"
    assert main(["synth", "--unit", "nm_dot", "--params", "N=2,M=8,G=4,DW=16", "--fpga-yaml", str(costs)]) == 0
    measured = yaml.safe_load(costs.read_text())["fpga"]
    doc = yaml.safe_load(accel.presets.path("sat-vcu1525").read_text())
    for key in ("macs_per_dsp", "lut_per_pe", "lut_per_mux_bit", "ff_per_pe"):
        del doc["fpga"][key]   # the description's own keys would win over the included ones
    doc["include"] = [costs.name]
    (tmp_path / "sat.yaml").write_text(yaml.safe_dump(doc))
    acc = accel.load(tmp_path / "sat.yaml")
    assert acc.fpga.lut_per_pe == measured["lut_per_pe"] and acc.fpga.dsp == 6840  # budget kept
    usage = accel.fpga_usage(acc)
    assert usage.lut == pytest.approx(acc.compute.pes * measured["lut_per_pe"], abs=1)
