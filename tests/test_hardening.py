"""Issue 14: silent wrong results, ignored arguments, overflow and confusing messages, each found by
using sparsim as a new user would. One test (or more) per item; each failed before its fix."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.utils.prune
import yaml

import accel
import sparsim
from accel import AccelConfigError, TimingModel
from simulator import SimulationError, simulate
from sparsim.api import load_model_spec
from sparsim.cli import main
from workloads import Layer, LayerKind, MaskError, WeightLayout, Workload
from workloads.zoo import SelfAttention

ROOT = Path(__file__).resolve().parents[1]


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def _user_file(tmp_path, body: str, name="mymodel.py") -> Path:
    f = tmp_path / name
    f.write_text("import torch\nimport torch.nn as nn\n" + body)
    return f


# -- 2: --dataflow os|is on a calibrated (rtl timing) accelerator --------------------------------------
def test_dataflow_override_follows_the_description_files_rule(tmp_path, capsys):
    """The rtl fold rule is the WS RTL array's schedule: under os/is a description file and an override
    both fall back to SCALE-Sim's rule (before, the override kept the WS schedule: 6-15x the cycles)."""
    doc = yaml.safe_load(accel.presets.path("vegeta-flex").read_text())
    doc["compute"]["timing"] = {"model": "rtl"}
    path = tmp_path / "calibrated.yaml"
    path.write_text(yaml.safe_dump(doc))
    acc = accel.load(path)
    wl = sparsim.trace_zoo("mlp_digits")
    doc_os = dict(doc, compute=dict(doc["compute"], dataflow="os"))
    from_file = accel.build(doc_os)
    assert from_file.compute.timing.model is TimingModel.SCALESIM
    by_override = simulate(wl, acc, dataflow="os")
    assert by_override.accelerator["timing_model"] == "scalesim"
    assert by_override.totals["cycles"] == simulate(wl, from_file).totals["cycles"]
    doc_sc = dict(doc, compute=dict(doc["compute"], dataflow="os", timing={"model": "scalesim"}))
    assert by_override.totals["cycles"] == simulate(wl, accel.build(doc_sc)).totals["cycles"]
    assert simulate(wl, acc, dataflow="ws").totals["cycles"] == simulate(wl, acc).totals["cycles"]
    with pytest.raises(AccelConfigError, match="expected one of ws, os, is"):
        acc.with_dataflow("xs")
    assert main(["simulate", "--model", "mlp_digits", "--accel", str(path), "--dataflow", "is"]) == 0
    assert "32x32 is, scalesim fold rule" in capsys.readouterr().out


# -- 3: arguments that were ignored without a word -----------------------------------------------------
@pytest.mark.parametrize("flag", ["--batch", "--seed"])
def test_batch_and_seed_with_a_saved_workload_are_refused(flag, tmp_path, capsys):
    wl = tmp_path / "wl.json"
    sparsim.trace_zoo("mlp_digits").save(wl)
    assert main(["simulate", "--workload", str(wl), "--accel", "tpu-like", flag, "4"]) == 2
    assert f"{flag} applies to --model only" in _err(capsys)


def test_batch_is_refused_when_the_build_function_cannot_take_it(tmp_path, capsys):
    f = _user_file(tmp_path, "def build():\n    return nn.Linear(8, 4), (torch.randn(2, 8),)\n")
    assert main(["trace", "--model", f"{f}:build", "--batch", "5"]) == 2
    assert "takes no 'batch' parameter" in _err(capsys)
    assert main(["trace", "--model", f"{f}:build"]) == 0           # its own batch
    assert "batch 2" in capsys.readouterr().out


def test_seed_is_applied_to_user_models(tmp_path):
    # an unseeded model: weights from torch's generator, pruning from NumPy's
    f = _user_file(tmp_path, "import numpy as np\n"
                             "def build(batch=1):\n"
                             "    m = nn.Linear(16, 8)\n"
                             "    with torch.no_grad():\n"
                             "        m.weight[torch.from_numpy(np.random.rand(8, 16) < 0.5)] = 0\n"
                             "    return m, (torch.randn(batch, 16),)\n")
    a, b = (load_model_spec(f"{f}:build", seed=3) for _ in range(2))
    c = load_model_spec(f"{f}:build", seed=4)
    la, lb, lc = a.layers[0], b.layers[0], c.layers[0]
    assert np.array_equal(la.weight, lb.weight) and np.array_equal(la.mask, lb.mask)
    assert not np.array_equal(la.weight, lc.weight)


# -- 4: masks chosen on the wrong data ----------------------------------------------------------------
def test_weightless_saved_workload_refuses_a_magnitude_pattern(tmp_path, capsys):
    path = tmp_path / "noweights.json"
    sparsim.trace_zoo("mlp_digits").save(path)                        # without --weights
    wl = Workload.load(path)
    with pytest.raises(MaskError, match="has no weight values.*--weights"):
        wl.sparsify("unstructured:0.5")
    assert wl.sparsify("2:4").layer("fc1").mask_stats(4).is_nm(2)    # N:M does not depend on the values
    assert main(["simulate", "--workload", str(path), "--accel", "tpu-like", "--sparsity", "channel:0.5"]) == 2
    assert "made-up values" in _err(capsys)


def test_nm_on_an_already_pruned_model_chooses_among_the_survivors():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32))
    torch.nn.utils.prune.l1_unstructured(model[0], "weight", amount=0.6)
    wl = sparsim.trace(model, (torch.randn(2, 64),))
    before = wl.layers[0]
    after = wl.sparsify("2:4").layers[0]
    assert after.mask_stats(4).max_per_group <= 2
    assert not np.any(after.mask & ~before.mask), "a weight the model pruned came back"
    assert after.density <= before.density
    # every weight the new mask keeps is a real (nonzero) weight, so effective MACs are not overstated
    kept = model[0].weight.detach().numpy().T[after.gemm_mask()[0]]
    assert np.all(kept != 0)


@pytest.mark.parametrize("fmt", ["conv", "gemm"])
def test_attention_gemms_stay_dense_after_a_csv_round_trip(fmt, tmp_path):
    torch.manual_seed(0)
    wl = sparsim.trace(SelfAttention(32, 2), (torch.randn(2, 8, 32),))
    path = tmp_path / f"attn_{fmt}.csv"
    wl.to_scalesim_csv(path, fmt=fmt)
    back = Workload.from_scalesim_csv(path).sparsify("2:4")
    qk_av = [l for l in back.layers if re.search(r"\.(qk|av)", l.name)]
    assert len(qk_av) == 2 * 4                      # 2 GEMMs x (batch 2 x 2 heads) rows
    assert all(l.mask is None and l.pattern_label == "-" for l in qk_av)
    assert back.layer("qkv").mask_stats(4).is_nm(2)
    assert back.macs == wl.macs and back.nnz_macs == wl.sparsify("2:4").nnz_macs


# -- 5: overflow and absurd sizes ---------------------------------------------------------------------
@pytest.mark.parametrize("m,n,k,extra,fragment", [
    (10 ** 20, 64, 64, [], "above the largest dimension"),
    (10 ** 9, 10 ** 6, 10 ** 6, [], "MACs"),
    (10 ** 9, 10 ** 6, 10 ** 6, ["--sparsity", "2:4"], "2^31"),
])
def test_absurd_layer_sizes_are_refused_up_front(m, n, k, extra, fragment, tmp_path, capsys):
    path = tmp_path / "big.csv"
    path.write_text(f"Layer, M, N, K,\nbig, {m}, {n}, {k},\n")
    assert main(["simulate", "--workload", str(path), "--accel", "vegeta-flex"] + extra) == 2
    err = _err(capsys)
    assert "big" in err and fragment in err


def test_totals_are_summed_without_wrapping():
    layer = Layer(name="x", kind=LayerKind.MATMUL, m=1 << 33, n=1 << 10, k=1 << 10)   # 2^53 MACs
    wl = Workload(name="many", layers=tuple(layer.replace(name=f"l{i}") for i in range(1100)))
    res = simulate(wl, accel.load("tpu-like"))
    assert res.totals["macs"] == 1100 * (1 << 53) > 2 ** 63
    assert res.totals["cycles"] == sum(int(c) for c in res.layers.cycles)
    assert res.totals["energy_sram_pj"] > 0 and (res.layers.energy_sram_pj > 0).all()


def test_an_absurd_batch_is_refused_before_allocating(capsys):
    assert main(["simulate", "--model", "mlp_digits", "--accel", "tpu-like", "--batch", "1000000000"]) == 2
    assert "--batch 1000000000" in _err(capsys)


# -- 6: a model without GEMMs -------------------------------------------------------------------------
def test_a_model_without_gemms_is_an_error(tmp_path, capsys):
    f = _user_file(tmp_path, "def build(batch=1):\n    return nn.ReLU(), (torch.randn(batch, 8),)\n")
    assert main(["simulate", "--model", f"{f}:build", "--accel", "tpu-like"]) == 2
    assert "has no GEMM layers" in _err(capsys)
    with pytest.raises(SimulationError, match="no GEMM layers"):
        simulate(Workload(name="empty", layers=()), accel.load("tpu-like"))


# -- 7: output paths checked before the run -----------------------------------------------------------
@pytest.mark.parametrize("argv,suffix", [
    (["simulate", "--model", "mlp_digits", "--accel", "tpu-like"], ".json"),
    (["trace", "--model", "mlp_digits"], ".json"),
    (["topology", "--model", "mlp_digits"], ".csv"),
])
def test_out_is_checked_before_running(argv, suffix, tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    for out, fragment in ((tmp_path / "missing" / f"r{suffix}", "does not exist"),
                          (tmp_path / "afile" / f"r{suffix}", "is not a directory"),
                          (tmp_path / "adir", "")):
        if not fragment:
            out = tmp_path / f"adir{suffix}"
            out.mkdir()
            fragment = "is a directory"
        assert main(argv + ["--out", str(out)]) == 2
        cap = capsys.readouterr()
        assert cap.out == "", "the run started before --out was checked"
        assert fragment in cap.err and "Traceback" not in cap.err


@pytest.mark.parametrize("argv", [["synth", "--unit", "nm_dot", "--out"],
                                  ["synth", "--unit", "nm_dot", "--fpga-yaml"],
                                  ["calibrate", "--accel", "vegeta-flex", "--quick", "--report"]])
def test_rtl_commands_check_their_outputs_before_running(argv, tmp_path, capsys):
    name = "f.yaml" if argv[-1] == "--fpga-yaml" else "f.json"
    assert main(argv + [str(tmp_path / "missing" / name)]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and "does not exist" in cap.err


def test_check_writable_helper(tmp_path):
    from sparsim._io import OutputPathError, check_writable
    assert check_writable(None) is None
    assert check_writable(tmp_path / "ok.json", suffixes=(".json",)) == tmp_path / "ok.json"
    with pytest.raises(OutputPathError, match="--report .*expected a .json file name"):
        check_writable(tmp_path / "r.txt", "--report", (".json",))


# -- 8: SCALE-Sim cfg bandwidth ------------------------------------------------------------------------
@pytest.mark.parametrize("run_presets,fragment", [
    ("InterfaceBandwidth: USER\n", "Bandwidth: expected a positive number"),
    ("InterfaceBandwidth: SOMETIMES\n", "InterfaceBandwidth: expected USER or CALC"),
])
def test_scalesim_cfg_bad_bandwidth(run_presets, fragment, tmp_path, capsys):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("[general]\nrun_name = t\n[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\n"
                   "IfmapSramSzkB: 64\nFilterSramSzkB: 64\nOfmapSramSzkB: 64\nDataflow: ws\nBandwidth: abc\n"
                   f"[run_presets]\n{run_presets}")
    assert main(["simulate", "--model", "mlp_digits", "--accel", str(cfg)]) == 2
    assert fragment in _err(capsys)


# -- 9: confusing messages ----------------------------------------------------------------------------
def test_model_file_without_function_says_a_function_is_needed(tmp_path, capsys):
    f = _user_file(tmp_path, "def build(batch=1):\n    return nn.Linear(8, 4), (torch.randn(batch, 8),)\n")
    assert main(["trace", "--model", str(f)]) == 2
    assert f"{f}:build_fn" in _err(capsys)


def test_batch_zero_on_a_user_model_names_the_batch(tmp_path, capsys):
    f = _user_file(tmp_path, "def build(batch=1):\n    return nn.Linear(8, 4), (torch.randn(batch, 8),)\n")
    assert main(["trace", "--model", f"{f}:build", "--batch", "0"]) == 2
    err = _err(capsys)
    assert "--batch must be a positive integer, got 0" in err and "m must be" not in err


def test_unquoted_nm_mode_in_yaml_says_to_quote_it(tmp_path, capsys):
    doc = accel.presets.path("vegeta-flex").read_text()
    text = re.sub(r"sparse_modes:.*", "sparse_modes: [dense, 2:4]", doc)
    path = tmp_path / "unquoted.yaml"
    path.write_text(text)
    assert main(["simulate", "--model", "mlp_digits", "--accel", str(path)]) == 2
    assert "got 124, which is how YAML reads an unquoted 2:4" in _err(capsys)


def test_empty_sparsity_is_an_error(capsys):
    assert main(["simulate", "--model", "mlp_digits", "--accel", "tpu-like", "--sparsity", ""]) == 2
    assert "sparsity pattern ''" in _err(capsys)


def test_trace_out_csv_is_refused_before_tracing(tmp_path, capsys):
    assert main(["trace", "--model", "mlp_digits", "--out", str(tmp_path / "x.csv")]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and "sparsim topology" in cap.err
    assert not (tmp_path / "x.csv").exists()


# -- 10: a user model importing a module beside it ----------------------------------------------------
def test_user_model_imports_a_module_beside_it(tmp_path, capsys):
    (tmp_path / "helper_blocks_i14.py").write_text("import torch.nn as nn\n"
                                                   "def block():\n    return nn.Linear(8, 8)\n")
    f = _user_file(tmp_path, "from helper_blocks_i14 import block\n"
                             "def build(batch=1):\n    return block(), (torch.randn(batch, 8),)\n")
    import sys
    before = list(sys.path)
    assert main(["trace", "--model", f"{f}:build"]) == 0
    assert "1 GEMM layers" in capsys.readouterr().out
    assert sys.path == before                       # the directory is on the path only while loading


# -- README items -------------------------------------------------------------------------------------
def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert re.fullmatch(r"sparsim \S+\n", capsys.readouterr().out)


def test_presets_mac_energy_names_the_precision(capsys):
    assert main(["presets", "vegeta-flex"]) == 0
    out = capsys.readouterr().out
    assert "int MAC" not in out and re.search(r"16-bit MAC \d\.\d+ pJ", out)


def test_accel_docs_pointer_exists_and_lists_every_key():
    from accel import config
    pointer = re.search(r"``(accel/presets/README\.md)``", config.__doc__).group(1)
    text = (ROOT / pointer).read_text()
    for key in (k for keys in config.KEYS.values() for k in keys):
        assert f"`{key}`" in text, key


def test_the_docs_list_every_result_column():
    # The README is short now; the result columns are listed on the generated reference page, in the
    # order a SimResult has them.
    import importlib.util

    from simulator import COLUMNS
    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "scripts" / "docs_reference.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    page = gen.columns_reference()
    where = [page.find(f"`{c}`") for c in COLUMNS]
    assert -1 not in where, [c for c, w in zip(COLUMNS, where) if w < 0]
    assert where == sorted(where)


# -- the first simulate of a model: no torch._dynamo import on the way ---------------------------------
def test_tracer_dispatch_is_not_wrapped_in_dynamo_disable():
    # TorchDispatchMode wraps a subclass's __torch_dispatch__ in torch._disable_dynamo unless the class
    # opts out; the wrapper's first call imports torch._dynamo, seconds of a first trace.
    from workloads.tracer import _Tracer
    assert not hasattr(_Tracer.__dict__["__torch_dispatch__"], "__wrapped__")
