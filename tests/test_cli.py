"""Every subcommand, run as a user would (through main(), and once through the console script)."""
import json
import shutil
import subprocess
import sys

import pytest

from sparsim.cli import main
from workloads import Workload


def test_trace_prints_table_and_saves(tmp_path, capsys):
    out = tmp_path / "wl.json"
    assert main(["trace", "--model", "resnet18", "--sparsity", "2:4", "--batch", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "layer1.0.conv1" in text and "2:4" in text and "batch 2" in text and "MACs" in text
    wl = Workload.load(out)
    assert wl.batch == 2 and wl.layer("fc").mask_stats(4).is_nm(2)


def test_trace_training(capsys):
    assert main(["trace", "--model", "mlp_digits", "--sparsity", "2:4", "--training", "bdwp"]) == 0
    text = capsys.readouterr().out
    assert "fc1.bwd_data" in text and "backward_weight" in text


def test_trace_user_file(tmp_path, capsys):
    f = tmp_path / "mymodel.py"
    f.write_text("import torch\n"
                 "def build(batch=1):\n"
                 "    return torch.nn.Sequential(torch.nn.Linear(8, 4)), (torch.randn(batch, 8),)\n"
                 "def broken():\n"
                 "    raise RuntimeError('boom')\n")
    assert main(["trace", "--model", f"{f}:build", "--batch", "3"]) == 0
    assert "batch 3" in capsys.readouterr().out
    assert main(["trace", "--model", f"{f}:missing"]) == 2
    assert "has no function 'missing'" in capsys.readouterr().err
    assert main(["trace", "--model", f"{f}:broken"]) == 2
    assert "boom" in capsys.readouterr().err
    assert main(["trace", "--model", f"{tmp_path}/nofile.py:build"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("argv,fragment", [
    (["trace", "--model", "resnet19"], "not in the zoo"),
    (["trace", "--model", "mlp_digits", "--sparsity", "5:4"], "'5:4'"),
    (["trace", "--model", "mlp_digits", "--sparsity", "2:0"], "'2:0'"),
])
def test_bad_input_is_one_clear_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_topology(tmp_path, capsys):
    assert main(["topology", "--model", "resnet18", "--format", "scalesim"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Layer name, IFMAP Height") and "conv1, 229, 229, 7, 7, 3, 64, 2," in text
    out = tmp_path / "t.csv"
    assert main(["topology", "--model", "mlp_digits", "--format", "scalesim-gemm", "--sparsity", "2:4",
                 "--out", str(out)]) == 0
    assert out.read_text().splitlines()[1] == "fc1, 1, 128, 64, 2:4,"


def test_models_and_demo(capsys):
    assert main(["models"]) == 0
    assert "gpt2_small" in capsys.readouterr().out
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "== vegeta-flex" in out and "== sparse-tc-2of4" in out and "layer4.1.conv2" in out
    assert out.count("speed-up") == 2 and "x faster" in out


def test_console_script_runs():
    exe = shutil.which("sparsim") or str((__import__("pathlib").Path(sys.executable).parent / "sparsim"))
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "trace" in r.stdout and "topology" in r.stdout
    r = subprocess.run([exe, "trace", "--model", "nope"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not in the zoo" in r.stderr


def test_simulate_model_and_outputs(tmp_path, capsys):
    for ext in ("json", "csv", "parquet"):
        out = tmp_path / f"r.{ext}"
        assert main(["simulate", "--model", "mlp_digits", "--accel", "vegeta-flex", "--sparsity", "2:4",
                     "--out", str(out)]) == 0
        assert out.exists()
    text = capsys.readouterr().out
    assert "fc1" in text and "cycles" in text and "vegeta-flex" in text
    doc = json.loads((tmp_path / "r.json").read_text())
    assert set(doc) == {"layers", "totals", "accelerator", "workload"}
    assert doc["layers"][0]["mode"] in ("2:4", "dense") and doc["totals"]["latency_s"] > 0


def test_simulate_workload_files_and_scalesim_cfg(tmp_path, capsys):
    wl = tmp_path / "wl.json"
    assert main(["trace", "--model", "mlp_digits", "--sparsity", "1:4", "--out", str(wl)]) == 0
    topo = tmp_path / "topo.csv"
    assert main(["topology", "--model", "resnet18", "--out", str(topo)]) == 0
    cfg = tmp_path / "scale.cfg"
    cfg.write_text("[general]\nrun_name = t\n[architecture_presets]\nArrayHeight: 32\nArrayWidth: 32\n"
                   "IfmapSramSzkB: 512\nFilterSramSzkB: 512\nOfmapSramSzkB: 256\nDataflow : ws\n"
                   "[run_presets]\nInterfaceBandwidth: CALC\n")
    capsys.readouterr()
    assert main(["simulate", "--workload", str(wl), "--accel", "vegeta-flex", "--dataflow", "os"]) == 0
    assert "1:4" in capsys.readouterr().out
    assert main(["simulate", "--workload", str(topo), "--accel", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "layer4.1.conv2" in out
    yml = tmp_path / "a.yaml"
    yml.write_text((__import__("accel").presets.path("edge-npu")).read_text())
    assert main(["simulate", "--model", "mlp_digits", "--accel", str(yml), "--training", "bdwp"]) == 0
    assert "fc1.bwd_data" in capsys.readouterr().out


@pytest.mark.parametrize("argv,fragment", [
    (["simulate", "--model", "mlp_digits", "--accel", "tpu-lik"], "not a preset"),
    (["simulate", "--model", "mlp_digits", "--accel", "nofile.yaml"], "no such file"),
    (["simulate", "--model", "mlp_digits", "--accel", "tpu-like", "--out", "r.txt"], "expected a .json, .csv"),
    (["simulate", "--workload", "missing.json", "--accel", "tpu-like"], "no such file"),
])
def test_simulate_bad_input(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_presets(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in ["tpu-like", "sparse-tc-2of4", "vegeta-flex", "sat-vcu1525", "edge-npu"])
    assert main(["presets", "sat-vcu1525"]) == 0
    out = capsys.readouterr().out
    assert "source:" in out and "FPGA: dsp" in out
    assert main(["presets", "nope"]) == 2
