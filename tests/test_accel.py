
import pytest
import yaml

import accel
from accel import AccelConfigError, Dataflow, FpgaFitError, Operand, ZeroHandling
from accel.energy import node_scale, sram_pj_per_byte


def base_doc():
    return yaml.safe_load(accel.presets.path("vegeta-flex").read_text())


def test_every_preset_loads_and_cites_a_source():
    assert set(accel.presets.names()) == {"tpu-like", "sparse-tc-2of4", "vegeta-flex", "sat-vcu1525", "edge-npu",
                                          "gpu-a100-2of4", "edge-npu-lpddr5", "vegeta-cpu-l2", "gpu-h100-2of4",
                                          "gpu-h100-2of4-fp8", "gpu-rtx4090-2of4"}
    for name in accel.presets.names():
        a = accel.load(name)
        assert a.name == name and a.source and a.description
        assert a.memory_for(Operand.METADATA) is not None
    assert accel.load("vegeta-flex").compute.sparse.modes == ((1, 4), (2, 4))
    assert accel.load("sparse-tc-2of4").compute.sparse.modes == ((2, 4),)
    assert accel.load("tpu-like").compute.sparse.is_dense_only
    e = accel.load("edge-npu")
    assert (e.compute.rows, e.compute.cols, e.compute.weight_bits) == (16, 16, 8)
    assert sum(m.size_bytes for m in e.memories) == 256 * 1024
    sat = accel.load("sat-vcu1525")
    assert sat.fpga.dsp == 6840 and accel.fpga_usage(sat).fits


@pytest.mark.parametrize("path,value,message", [
    (("compute", "sparse_modes"), ["dense", "5:4"], r"compute.sparse_modes\[1\]: N must be <= M, got 5:4"),
    (("compute", "sparse_modes"), ["2-4"], r"compute.sparse_modes\[0\]: expected 'dense' or 'N:M'"),
    (("compute", "rows"), 0, r"compute.rows: expected an integer >= 1, got 0"),
    (("compute", "cols"), "32", r"compute.cols: expected an integer >= 1, got '32'"),
    (("compute", "dataflow"), "rs", r"compute.dataflow: expected one of ws, os, is, got 'rs'"),
    (("compute", "clock_hz"), -1, r"compute.clock_hz: expected a positive number, got -1"),
    (("compute", "zero_handling"), "drop", r"compute.zero_handling: expected one of skip, gate"),
    (("compute", "rowz"), 3, r"compute.rowz: unknown key; expected one of rows, cols"),
    (("compute", "arbitrary_nm_max_m"), 6, r"compute.arbitrary_nm_max_m: expected a power of two"),
    (("compute", "timing", "fold_overhead_cycles"), -2, r"compute.timing.fold_overhead_cycles: expected an integer >= 0"),
    (("dram", "bandwidth_bytes_per_s"), "fast", r"dram.bandwidth_bytes_per_s: expected a positive number, got 'fast'"),
    (("energy", "node_nm"), 0, r"energy.node_nm: expected a positive number"),
])
def test_errors_name_the_key_path(path, value, message):
    doc = base_doc()
    d = doc
    for key in path[:-1]:
        d = d.setdefault(key, {})
    d[path[-1]] = value
    with pytest.raises(AccelConfigError, match=message):
        accel.build(doc)


def test_memory_errors():
    doc = base_doc()
    doc["memories"][1]["size_bytes"] = -4
    with pytest.raises(AccelConfigError, match=r"memories\[1\].size_bytes: expected an integer >= 1, got -4"):
        accel.build(doc)
    doc = base_doc()
    doc["memories"][0]["holds"] = ["activations"]
    with pytest.raises(AccelConfigError, match=r"memories\[0\].holds\[0\]: expected one of activation"):
        accel.build(doc)
    doc = base_doc()
    doc["memories"] = [m for m in doc["memories"] if "weight" not in m["holds"]]
    with pytest.raises(AccelConfigError, match="no memory holds 'weight'"):
        accel.build(doc)
    doc = base_doc()
    del doc["compute"]["rows"]
    with pytest.raises(AccelConfigError, match="compute.rows: required key is missing"):
        accel.build(doc)
    for bad in ("stream", 1, "yes"):
        doc = base_doc()
        doc["memories"][2]["double_buffered"] = bad
        with pytest.raises(AccelConfigError, match=r"memories\[2\].double_buffered: expected true, false or "
                                                   r"streamed, got " + repr(bad)):
            accel.build(doc)


def test_double_buffered_streamed():
    doc = base_doc()
    doc["memories"][0]["double_buffered"] = "Streamed"
    doc["memories"][1]["double_buffered"] = False
    doc["memories"][2].pop("double_buffered", None)     # the default: halves
    a = accel.build(doc)
    assert [(m.double_buffered, m.streamed) for m in a.memories] == [(True, True), (False, False), (True, False)]
    # the examples a user runs: vegeta-flex's 1 MiB as one streamed pool, and its three buffers streamed
    from pathlib import Path
    root = Path(__file__).parent.parent / "examples" / "accel"
    pool = accel.load_yaml(root / "vegeta-flex-pool-streamed.yaml")
    assert [(m.size_bytes, m.streamed) for m in pool.memories] == [(1 << 20, True)]
    assert pool.compute == accel.load("vegeta-flex").compute
    three = accel.load_yaml(root / "vegeta-flex-streamed.yaml")
    assert [m.size_bytes for m in three.memories] == [m.size_bytes for m in accel.load("vegeta-flex").memories]
    assert all(m.streamed for m in three.memories)


def test_mapper_objective_key():
    assert accel.build(base_doc()).mapper_objective is accel.MapperObjective.CYCLES     # the default
    doc = base_doc()
    doc["mapper"] = {"objective": "DRAM"}
    a = accel.build(doc)
    assert a.mapper_objective is accel.MapperObjective.DRAM and a.to_dict()["mapper_objective"] == "dram"
    assert "mapper" in accel.config.KEYS[""] and accel.config.KEYS["mapper"] == ("objective",)
    for bad, msg in (({"objective": "bytes"}, r"mapper.objective: expected one of cycles, dram, got 'bytes'"),
                     ({"objectiv": "dram"}, r"mapper.objectiv: unknown key; expected one of objective"),
                     ("dram", r"mapper: expected a mapping, got 'dram'")):
        doc["mapper"] = bad
        with pytest.raises(AccelConfigError, match=msg):
            accel.build(doc)
    # the pooled streamed example ranks DRAM bytes first; the three-buffer one keeps the default
    from pathlib import Path
    root = Path(__file__).parent.parent / "examples" / "accel"
    assert accel.load_yaml(root / "vegeta-flex-pool-streamed.yaml").mapper_objective is accel.MapperObjective.DRAM
    assert accel.load_yaml(root / "vegeta-flex-streamed.yaml").mapper_objective is accel.MapperObjective.CYCLES


def test_fpga_budget_refuses_designs_that_do_not_fit():
    doc = yaml.safe_load(accel.presets.path("sat-vcu1525").read_text())
    doc["compute"]["rows"], doc["compute"]["cols"] = 128, 128  # 16384 PEs > 6840 DSPs
    with pytest.raises(FpgaFitError, match=r"does not fit xcvu9p.*dsp 240%"):
        accel.build(doc)
    doc = yaml.safe_load(accel.presets.path("sat-vcu1525").read_text())
    doc["compute"]["clock_hz"] = 4e8
    with pytest.raises(AccelConfigError, match="above the FPGA budget"):
        accel.build(doc)


def test_yaml_file_include_and_errors(tmp_path):
    (tmp_path / "calib.yaml").write_text("compute:\n  timing:\n    fold_overhead_cycles: 3\n")
    doc = base_doc()
    doc["include"] = "calib.yaml"
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(doc))
    a = accel.load(tmp_path / "a.yaml")
    assert a.compute.timing.fold_overhead_cycles == 3 and a.compute.rows == 32
    (tmp_path / "bad.yaml").write_text("compute: [1, 2\n")
    with pytest.raises(AccelConfigError, match="not valid YAML"):
        accel.load(tmp_path / "bad.yaml")
    with pytest.raises(AccelConfigError, match="no such file"):
        accel.load(tmp_path / "none.yaml")
    doc["compute"]["rows"] = 0
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(AccelConfigError, match=r"c.yaml: compute.rows"):
        accel.load(tmp_path / "c.yaml")
    with pytest.raises(AccelConfigError, match="not a preset"):
        accel.load("tpu-lik")


def test_scalesim_cfg_import(tmp_path):
    cfg = tmp_path / "scale.cfg"
    cfg.write_text("[general]\nrun_name = demo\n\n[architecture_presets]\nArrayHeight: 16\nArrayWidth: 8\n"
                   "IfmapSramSzkB: 64\nFilterSramSzkB: 32\nOfmapSramSzkB: 16\nIfmapOffset: 0\n"
                   "FilterOffset: 10000000\nOfmapOffset: 20000000\nBandwidth : 10\nDataflow : os\n\n"
                   "[sparsity]\nSparsitySupport : true\nBlockSize : 4\n\n[run_presets]\nInterfaceBandwidth: USER\n")
    a = accel.load(cfg)
    assert (a.compute.rows, a.compute.cols, a.compute.dataflow) == (16, 8, Dataflow.OS)
    assert [m.size_bytes for m in a.memories] == [64 * 1024, 32 * 1024, 16 * 1024]
    assert a.dram_bytes_per_cycle == pytest.approx(10)
    assert a.compute.sparse.arbitrary_max_m == 4 and a.compute.sparse.ns_for(4) == (1, 2, 3, 4)
    cfg.write_text("[general]\nrun_name = x\n[architecture_presets]\nArrayHeight: 0\n")
    with pytest.raises(AccelConfigError, match=r"ArrayHeight: expected a positive integer"):
        accel.load(cfg)


def test_energy_table_and_scaling():
    t = accel.default_table(45)
    # integer widths mean integers (32-bit: 3.1 + 0.1 pJ); fp32 is a data type of its own
    assert t.mac(8) == pytest.approx(0.3) and t.mac(32) == pytest.approx(3.2) and t.mac(32, "fp32") == pytest.approx(4.6)
    assert t.gated_mac(8) == pytest.approx(0.03)
    assert node_scale(45) == 1.0 and node_scale(7) < node_scale(28) < 1.0
    assert sram_pj_per_byte(8 * 1024) == pytest.approx(1.25) and sram_pj_per_byte(1 << 20) == pytest.approx(12.5)
    assert sram_pj_per_byte(8 * 1024) < sram_pj_per_byte(64 * 1024) < sram_pj_per_byte(1 << 20)
    doc = base_doc()
    doc["energy"] = {"node_nm": 45, "mac_pj": {16: 1.5}, "gated_mac_fraction": 0.2}
    a = accel.build(doc)
    assert a.energy.mac(16) == 1.5 and a.energy.gated_mac(16) == pytest.approx(0.3)
    assert a.energy.mac(16, "bf16") == 1.5    # the width given stands for every 16-bit type


def test_accelerator_is_frozen():
    a = accel.load("tpu-like")
    with pytest.raises(Exception):
        a.compute.rows = 4
    assert a.with_dataflow("os").compute.dataflow is Dataflow.OS and a.compute.dataflow is Dataflow.WS
    assert a.compute.sparse.zero_handling is ZeroHandling.SKIP


def test_energy_by_data_type_dram_technology_and_sram_extrapolation():
    from accel.energy import DRAM_PJ_PER_BIT
    vf = accel.load("vegeta-flex")
    assert vf.compute.data_type == "bf16" and vf.dram.technology == "ddr4"
    e = vf.energy
    # bf16 < fp16 (narrower mantissa), int16 < fp16, int8 < int16; 12-bit integers from int16, not int8
    assert e.mac(16, "int16") < e.mac(16, "bf16") < e.mac(16, "fp16") < e.mac(32, "fp32")
    assert e.mac(8, "int8") < e.mac(16, "int16")
    assert e.mac(12) == pytest.approx(e.mac(16) * (12 / 16) ** 2)
    assert accel.load("sparse-tc-2of4").dram.energy_pj_per_byte == pytest.approx(DRAM_PJ_PER_BIT["hbm2"] * 8)
    assert accel.load("edge-npu").dram.technology == "lpddr4"
    # SRAM energy keeps growing past the table (square root), and falls below it
    assert sram_pj_per_byte(4 << 20) == pytest.approx(2 * sram_pj_per_byte(1 << 20))
    assert sram_pj_per_byte(2048) == pytest.approx(0.5 * sram_pj_per_byte(8192))
    doc = base_doc()
    doc["dram"]["technology"] = "ddr9"
    with pytest.raises(AccelConfigError, match=r"dram.technology: expected one of ddr3, ddr4"):
        accel.build(doc)
    doc = base_doc()
    doc["compute"]["data_type"] = "fp32"
    with pytest.raises(AccelConfigError, match=r"compute.data_type: fp32 does not match"):
        accel.build(doc)
    doc = base_doc()
    doc["compute"]["nm_overflow"] = "spill"
    with pytest.raises(AccelConfigError, match=r"compute.nm_overflow: expected one of dense, passes"):
        accel.build(doc)
