"""FPGA energy (accel/data/fpga_energy.json, accel.energy.fpga_table): figures re-derived from the cited
inputs, a small layer's energy by hand, ASIC presets untouched, and key-path errors."""
import math

import numpy as np
import pytest
import yaml

import accel
from accel import AccelConfigError
from accel.energy import (bram_pj_per_byte, default_table, fpga_energy_data, fpga_figures,
                          sram_pj_per_byte)
from simulator import simulate
from workloads import Layer, LayerKind, WeightLayout, Workload

# Horowitz ISSCC 2014, 45 nm: 32-bit integer multiply and add, SRAM read of 64 bits at 8 KB
MUL32, ADD32, SRAM8K_64B = 3.1, 0.1, 10.0
REG32 = 0.04          # the project's 32-bit register write at 45 nm (accel/energy.py)
KUON_ROSE = 14        # FPGA / ASIC dynamic power of LUT/FF logic (Kuon and Rose, TCAD 2007)


def _scale(node, vcore):
    return node / 45 * (vcore / 0.9) ** 2


def _doc(name):
    return yaml.safe_load(accel.presets.path(name).read_text())


@pytest.mark.parametrize("family,mult,acc_bits,bram_bytes,bram_bits", [
    ("xilinx-ultrascale+", (27, 18), 48, 4608, 72),   # DSP48E2, BRAM36 (UG579, UG573)
    ("ecp5", (18, 18), 54, 2304, 36),                # MULT18X18D + ALU54B, EBR (FPGA-DS-02012)
])
def test_figures_follow_their_stated_derivation(family, mult, acc_bits, bram_bytes, bram_bits):
    fam = fpga_energy_data()["families"][family]
    k = _scale(fam["node_nm"], fam["vcore_v"])
    dsp = (MUL32 * mult[0] * mult[1] / 32 ** 2 + ADD32 * acc_bits / 32) * k
    assert fam["dsp_op_pj"] == pytest.approx(dsp, abs=1e-3)
    assert fam["lut_pj"] == pytest.approx(KUON_ROSE * ADD32 / 32 * k, abs=1e-4)
    assert fam["ff_pj"] == pytest.approx(KUON_ROSE * REG32 / 32 * k, abs=1e-4)
    bram = SRAM8K_64B * math.sqrt(bram_bytes / 8192) * bram_bits / 64 * k
    assert fam["bram_access_pj"] == pytest.approx(bram, abs=1e-3) and fam["bram_width_bits"] == bram_bits
    for key in ("dsp_op_derivation", "lut_derivation", "ff_derivation", "bram_derivation", "vcore_source"):
        assert fam[key]
    assert all(d["static_source"] for d in fam["devices"].values())


def test_fpga_energy_of_a_small_layer_by_hand():
    sat = accel.load("sat-vcu1525")
    fig = fpga_figures("xilinx-ultrascale+", "xcvu9p")
    e = sat.energy
    assert e.model == "fpga" and sat.compute.clock_hz == 2e8
    w = np.random.default_rng(1).standard_normal((1, 96, 80)).astype(np.float32)
    layer = Layer(name="g", kind=LayerKind.MATMUL, m=40, n=80, k=96, weight_name="g.w", weight=w,
                  weight_layout=WeightLayout.KN)
    r = simulate(Workload(name="t", layers=(layer,)), sat).layers.iloc[0]
    assert r["mode"] == "dense" and r["effective_macs"] == r["executed_macs"] == 40 * 80 * 96
    b = sat.fpga
    dsp_per_mac = fig["dsp_op_pj"] / b.macs_per_dsp                         # 0.514 pJ, one DSP48E2 per fp16 MAC
    fabric = b.lut_per_pe * fig["lut_pj"] + b.ff_per_pe * fig["ff_pj"]      # 60 LUT + 96 FF per PE-cycle
    assert r["energy_mac_pj"] == pytest.approx(r["executed_macs"] * (dsp_per_mac + fabric), rel=1e-12)
    per_byte = fig["bram_access_pj"] / (fig["bram_width_bits"] / 8)       # BRAM36 at 72 bits
    assert r["energy_sram_pj"] == pytest.approx(r["sram_bytes"] * per_byte, rel=1e-12)
    assert r["energy_static_pj"] == pytest.approx(fig["static_power_w"] * r["cycles"] / 2e8 * 1e12, rel=1e-12)
    assert r["energy_dram_pj"] == pytest.approx(r["dram_bytes"] * 13.8 * 8, rel=1e-12)   # DDR4 stays
    assert r["energy_meta_pj"] == 0.0
    total = sum(r[c] for c in ("energy_mac_pj", "energy_sram_pj", "energy_dram_pj", "energy_meta_pj",
                               "energy_static_pj"))
    assert r["energy_pj"] == pytest.approx(total, rel=1e-12)
    # the same design on the ASIC table: a different answer, the same categories
    doc = _doc("sat-vcu1525")
    doc["energy"] = {"model": "asic", "node_nm": 16, "static_power_w": 2.0}
    asic = simulate(Workload(name="t", layers=(layer,)), accel.build(doc)).layers.iloc[0]
    assert asic["energy_mac_pj"] != pytest.approx(r["energy_mac_pj"], rel=0.05)
    assert asic["energy_static_pj"] == r["energy_static_pj"] and asic["cycles"] == r["cycles"]


def test_asic_presets_keep_the_asic_table_exactly():
    for name in accel.presets.names():
        a = accel.load(name)
        if a.fpga is not None:
            continue
        doc = accel.config.read_yaml(accel.presets.path(name))     # with its include: resolved
        en = doc.get("energy", {})
        node = en.get("node_nm", 45.0)
        assert a.energy == default_table(node, en.get("static_power_w", 0.0)) and a.energy.model == "asic"
        for mem, md in zip(a.memories, doc["memories"]):
            assert mem.read_energy_pj_per_byte == md.get("read_energy_pj_per_byte", sram_pj_per_byte(md["size_bytes"], node))
        doc.setdefault("energy", {})["model"] = "asic"
        assert accel.build(doc) == a


def test_array_model_and_int8_packing():
    doc = _doc("sat-vcu1525")
    doc["compute"].update(activation_bits=8, weight_bits=8, data_type="int8")
    doc["fpga"]["macs_per_dsp"] = 2                                   # two int8 MACs per DSP48E2 (WP486)
    a = accel.build(doc)
    assert a.energy.mac(8, "int8") == pytest.approx(fpga_figures("xilinx-ultrascale+", "xcvu9p")["dsp_op_pj"] / 2)
    small = {"name": "e", "compute": {"rows": 4, "cols": 4, "dataflow": "ws", "clock_hz": "fpga",
                                      "sparse_modes": ["dense", "2:4"]},
             "memories": [{"name": "m", "size_bytes": 8192, "read_bw_bytes_per_cycle": 16,
                           "holds": ["activation", "weight", "output"]}],
             "dram": {"bandwidth_bytes_per_s": 1e8}, "fpga": {"device": "ecp5-85k", "model": "array", "clock_hz": 5e7}}
    e = accel.build(small)
    fig = fpga_figures("ecp5", "ecp5-85k")
    assert e.energy.source.startswith("FPGA ecp5") and e.energy.static_power_w == fig["static_power_w"]
    assert e.memories[0].read_energy_pj_per_byte == pytest.approx(bram_pj_per_byte(fig))
    est = accel.fpga.array_estimate(e.compute)
    assert e.energy.register_pj == pytest.approx((est["lut"] * fig["lut_pj"] + est["ff"] * fig["ff_pj"]) / 16)


@pytest.mark.parametrize("energy,message", [
    ({"fpga": {"dsp_pj": 1.0}}, r"energy\.fpga\.dsp_pj: unknown key; expected one of family, dsp_op_pj"),
    ({"modle": "fpga"}, r"energy\.modle: unknown key"),
    ({"model": "lut"}, r"energy\.model: expected asic or fpga, got 'lut'"),
    ({"fpga": {"family": "stratix"}}, r"energy\.fpga\.family: expected one of ecp5, xilinx-ultrascale\+"),
    ({"fpga": {"lut_pj": "x"}}, r"energy\.fpga\.lut_pj: expected a"),
    ({"model": "asic", "fpga": {"lut_pj": 0.1}}, r"energy\.fpga: FPGA figures apply only with energy\.model: fpga"),
])
def test_bad_energy_keys_name_their_path(energy, message):
    doc = _doc("sat-vcu1525")
    doc["energy"] = energy
    with pytest.raises(AccelConfigError, match=message):
        accel.build(doc)


def test_fpga_model_needs_an_fpga_section_and_a_known_family():
    doc = _doc("vegeta-flex")
    doc["energy"] = {"model": "fpga"}
    with pytest.raises(AccelConfigError, match=r"energy\.model: fpga needs an fpga: section"):
        accel.build(doc)
    doc = _doc("sat-vcu1525")
    doc["fpga"]["device"] = "my-board"
    with pytest.raises(AccelConfigError, match=r"no figures for fpga\.device 'my-board'; name its family"):
        accel.build(doc)
    doc["energy"] = {"fpga": {"family": "xilinx-ultrascale+"}}
    with pytest.raises(AccelConfigError, match=r"energy\.static_power_w: .* no static power"):
        accel.build(doc)
    doc["energy"]["static_power_w"] = 3.5
    assert accel.build(doc).energy.static_power_w == 3.5
    del doc["energy"]                                   # unknown device, nothing said: the ASIC table
    assert accel.build(doc).energy.model == "asic"


def test_ecp5_static_power_from_the_quoted_core_currents():
    """ECP5 static power = the quoted VCC core current x 1.1 V (77 mA for the 12F/25F die, 212 mA for
    the 85F); the 45F is interpolated in LUTs between them (accel/data/fpga_energy.json)."""
    from accel.fpga import DEVICES
    fam = fpga_energy_data()["families"]["ecp5"]
    dev = fam["devices"]
    assert dev["ecp5-25k"]["static_power_w"] == pytest.approx(0.077 * fam["vcore_v"], abs=1e-4)
    assert dev["ecp5-85k"]["static_power_w"] == pytest.approx(0.212 * fam["vcore_v"], abs=1e-4)
    lut = {name: DEVICES[name]["lut"] for name in dev}
    frac = (lut["ecp5-45k"] - lut["ecp5-25k"]) / (lut["ecp5-85k"] - lut["ecp5-25k"])
    assert dev["ecp5-45k"]["static_power_w"] == pytest.approx((0.077 + frac * 0.135) * fam["vcore_v"], abs=1e-4)
    assert "INTERPOLATED" in dev["ecp5-45k"]["static_source"]
    assert "ASSUMPTION" in fpga_energy_data()["families"]["xilinx-ultrascale+"]["devices"]["xcvu9p"]["static_source"]
