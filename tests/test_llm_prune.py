"""code_lm, the one-shot LLM pruners (magnitude, Wanda, SparseGPT), OWL, the allocation and ``sparsim prune``
for language models. The trained model here is ``code_lm``'s tiny version (cached after the first run)."""
import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from search.errors import SearchError
from search.llm import allocate as al
from search.llm import pruners as pr
from search.llm.model import collect, prunable_layers, prune_model, require_layers, resolve_patterns
from sparsim.cli import main
from workloads import code_lm, nm, unstructured


@pytest.fixture(scope="module")
def tiny():
    return code_lm.load(code_lm.TINY)


# ------------------------------------------------------------------------------------ code_lm
def test_split_is_by_file_deterministic_and_covers_all():
    files = code_lm.corpus_files()
    splits = [code_lm.split_of(rel) for rel, _ in files]
    assert splits == [code_lm.split_of(rel) for rel, _ in files]
    share = {s: splits.count(s) / len(splits) for s in code_lm.SPLITS}
    assert 0.05 < share["validation"] < 0.15 and 0.05 < share["test"] < 0.15
    assert all(not rel.startswith(("test/", "site-packages/", "idlelib/")) for rel, _ in files)


def test_cache_key_follows_config_and_corpus():
    k = code_lm.cache_key(code_lm.TINY, "abc")
    assert k == code_lm.cache_key(code_lm.TINY, "abc")
    assert k != code_lm.cache_key(code_lm.TINY.replace(seed=1), "abc")
    assert k != code_lm.cache_key(code_lm.TINY, "abd")
    assert k != code_lm.cache_key(code_lm.TINY.replace(steps=61), "abc")


def test_tiny_code_lm_learns_and_is_llama_shaped(tiny):
    cfg = tiny.model.config
    assert cfg.model_type == "llama" and cfg.num_key_value_heads < cfg.num_attention_heads   # GQA
    assert tiny.meta["test_perplexity"] < 0.8 * tiny.meta["unigram_test_perplexity"]
    # perplexity is exp(mean NLL) over the same windows every time
    w = tiny.windows("test", 2048)
    assert code_lm.perplexity(tiny.model, w) == pytest.approx(np.exp(code_lm.mean_nll(tiny.model, w)), rel=1e-12)
    assert w.shape == (2048 // 64, 65)


def test_unigram_baseline_by_hand():
    train = np.array([0, 0, 1, 2])
    w = np.array([[0, 1, 2]])
    p = (np.array([2, 1, 1]) + 1) / 7
    assert code_lm.unigram_perplexity(train, w, 3) == pytest.approx(np.exp(-np.mean(np.log(p[[1, 2]]))))


# ------------------------------------------------------------------------------------ pruners
def _data(rows=24, cols=32, n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(rows, cols, generator=g)
    mix = torch.randn(cols, cols, generator=g) * 0.5 + torch.eye(cols)     # correlated inputs
    X = torch.randn(n, cols, generator=g) @ mix * torch.linspace(0.2, 3.0, cols)
    return W, X


@pytest.mark.parametrize("pattern", [nm(2, 4), nm(1, 4), nm(2, 8), nm(4, 8)])
@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
def test_nm_masks_exact_along_input(pattern, method):
    W, X = _data()
    stats = type("S", (), {"sq_norm": (X.double() ** 2).sum(0), "hessian": lambda self: 2 * X.double().T @ X.double() / len(X)})()
    Wp, mask = pr.prune_weight(W, pattern, method, stats)
    groups = mask.reshape(W.shape[0], -1, pattern.m).sum(-1)
    assert (groups == pattern.n).all()
    assert torch.equal(Wp == 0, ~mask) or (Wp[~mask] == 0).all()


def test_unstructured_densities_and_wanda_per_row():
    W, X = _data()
    _, m = pr.magnitude(W, unstructured(0.5))
    assert int(m.sum()) == W.numel() // 2
    _, m = pr.wanda(W, unstructured(0.25), (X ** 2).sum(0))
    assert (m.sum(1) == 8).all()                       # each output row keeps 25 % of 32


def test_wanda_uses_input_norms():
    W = torch.ones(2, 4)
    _, m = pr.wanda(W, nm(2, 4), torch.tensor([1.0, 9.0, 4.0, 0.0]))
    assert m.tolist() == [[False, True, True, False]] * 2


def _recon(W, Wp, X):
    return float(((X @ (W - Wp).T) ** 2).sum())


@pytest.mark.parametrize("pattern", [nm(2, 4), unstructured(0.5)])
def test_sparsegpt_reconstructs_better_than_wanda_better_than_magnitude(pattern):
    W, X = _data()
    H = 2 * X.double().T @ X.double() / len(X)
    e_mag = _recon(W, pr.magnitude(W, pattern)[0], X)
    e_wanda = _recon(W, pr.wanda(W, pattern, (X ** 2).sum(0))[0], X)
    e_sgpt = _recon(W, pr.sparsegpt(W, pattern, H)[0], X)
    assert e_sgpt < e_wanda < e_mag


def test_sparsegpt_blocking_does_not_change_nm_result():
    W, X = _data()
    H = 2 * X.double().T @ X.double() / len(X)
    a, ma = pr.sparsegpt(W, nm(2, 4), H, blocksize=128)
    b, mb = pr.sparsegpt(W, nm(2, 4), H, blocksize=8)
    assert torch.equal(ma, mb)
    assert torch.allclose(a, b, atol=1e-5)


def test_sparsegpt_without_update_is_not_better():
    """The OBS update is what helps: the same masks without it reconstruct worse."""
    W, X = _data()
    H = 2 * X.double().T @ X.double() / len(X)
    Wp, m = pr.sparsegpt(W, nm(2, 4), H)
    assert _recon(W, Wp, X) < _recon(W, W * m, X)


def test_conv1d_is_pruned_along_its_input_dimension():
    from transformers.pytorch_utils import Conv1D

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(16, 8)
            self.h = nn.ModuleList([Conv1D(12, 8)])      # nx=8 inputs, nf=12 outputs: weight (8, 12)
            self.lm_head = nn.Linear(12, 16)

        def forward(self, input_ids):
            return type("O", (), {"logits": self.lm_head(self.h[0](self.emb(input_ids)))})()
    torch.manual_seed(0)
    m = Tiny()
    layers = prunable_layers(m)
    assert [l.name for l in layers] == ["h.0"] and layers[0].transposed and layers[0].in_features == 8
    calib = np.random.default_rng(0).integers(0, 16, (4, 9))
    prune_model(m, "2:4", "sparsegpt", calib)
    w = m.h[0].weight.data                                       # (in, out): groups run down the columns
    assert ((w != 0).reshape(2, 4, 12).sum(1) == 2).all()


def test_refusals_of_patterns_and_models():
    with pytest.raises(SearchError, match="no nn.Linear or Conv1D"):
        require_layers(nn.Sequential(nn.ReLU()), "--model x")
    m = nn.Sequential(nn.Linear(6, 4))
    with pytest.raises(SearchError, match=r"layer 0 \(4x6\): 2:4 needs the input dimension \(6\)"):
        resolve_patterns(prunable_layers(m), "2:4")
    with pytest.raises(SearchError, match="method"):
        prune_model(m, "unstructured:0.5", "obs", None)


# ------------------------------------------------------------------------------------ model level
def test_prune_model_hits_patterns_and_stats_see_pruned_inputs(tiny):
    import copy
    m = copy.deepcopy(tiny.model)
    calib = tiny.windows("train", 512)
    out = prune_model(m, "2:4", "wanda", calib)
    for l in prunable_layers(m):
        w = l.weight_oi()
        assert ((w != 0).reshape(w.shape[0], -1, 4).sum(-1) <= 2).all()
        assert torch.equal(out.masks[l.name], w != 0) or ((w != 0) <= out.masks[l.name]).all()
    assert (m.lm_head.weight != 0).all()                          # the head is not pruned
    # sequential: the second block's statistics come from the pruned first block
    dense_stats = collect(tiny.model, prunable_layers(tiny.model), calib, hessian=False)
    pruned_stats = collect(m, prunable_layers(m), calib, hessian=False)
    name = "model.layers.1.self_attn.q_proj"
    assert not torch.equal(dense_stats[name].sq_norm, pruned_stats[name].sq_norm)


def test_resume_equals_full_forward(tiny):
    w = tiny.windows("train", 512)
    r = al._Resume(tiny.model, w)
    assert r.ok
    full = code_lm.mean_nll(tiny.model, w, batch=len(w))
    assert r.loss(0) == pytest.approx(full, rel=1e-6) and r.loss(1) == pytest.approx(full, rel=1e-6)


def test_owl_densities():
    d = al.owl_densities([0.01, 0.03, 0.02, 0.05], 0.5, lam=0.08)
    assert d.mean() == pytest.approx(0.5)
    assert d.max() - d.min() == pytest.approx(0.16)
    assert list(np.argsort(d)) == [0, 2, 1, 3]                   # more outliers, denser


def test_global_magnitude_one_threshold():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8))
    layers = prunable_layers(m)
    with torch.no_grad():
        m[1].weight.mul_(10)
    masks = al.global_magnitude(m, layers, 0.5)
    assert sum(int(x.sum()) for x in masks.values()) == 64
    assert int(masks["1"].sum()) > int(masks["0"].sum())


# ------------------------------------------------------------------------------------ CLI
BASE = ["prune", "--model", "code_lm_tiny", "--accel", "vegeta-flex", "--method", "wanda"]


@pytest.mark.parametrize("extra,msg", [
    (["--budget", "0.7", "--method", "obs"], "--method 'obs': expected one of wanda, sparsegpt"),
    (["--budget", "1.5"], "--budget 1.5: expected a fraction"),
    (["--budget", "0.05"], "--budget 0.05: below the cheapest assignment"),
    (["--budget", "0.7", "--candidates", "dense,2:3"], "--candidates 2:3: layer model.layers.0.self_attn.q_proj"),
    (["--budget", "0.7", "--calib", "MISSING"], "--calib MISSING: no such file"),
    (["--budget", "0.7", "--calib", "EMPTY"], "the file is empty"),
    (["--budget", "0.7", "--epochs", "3"], "--epochs applies to the digits models and model files only"),
    (["--budget", "0.7", "--model", "hf:NOWHERE"], "--model hf:NOWHERE: no such folder"),
    (["--budget", "0.7", "--model", "hf:llama-3.2-1b"], "a built-in shape with seeded random weights"),
    (["--budget", "0.7", "--prompt", "0"], "--prompt 0: expected a positive integer"),
    (["--budget", "0.7", "--threads", "0"], "--threads 0: expected a positive integer"),
    (["--budget", "0.7", "--candidates", "dense,2:4+int3"], "--candidates 2:4+int3: weight bits must be int8 or int4"),
])
def test_cli_refuses_before_any_training(extra, msg, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPARSIM_CACHE", str(tmp_path / "cache"))
    (tmp_path / "EMPTY").write_text("  \n")
    monkeypatch.chdir(tmp_path)
    assert main(BASE + extra) == 2
    err = [l for l in capsys.readouterr().err.splitlines() if "error" in l or "Traceback" in l]
    assert len(err) == 1 and err[0].startswith("sparsim prune: error: ") and msg in err[0], err
    assert not (tmp_path / "cache").exists()                       # nothing was trained or cached


def test_cli_digits_refuse_llm_flags(capsys):
    assert main(["prune", "--model", "mlp_digits", "--accel", "vegeta-flex", "--budget", "0.7",
                 "--method", "wanda"]) == 2
    assert "--method applies to language models" in capsys.readouterr().err


def test_collect_stops_early_with_the_same_statistics(tiny):
    """collect() ends each forward once its layers have their inputs; the statistics equal a full forward's."""
    calib = tiny.windows("train", 256)
    layers = [l for l in prunable_layers(tiny.model) if l.block == "model.layers.0"]
    got = collect(tiny.model, layers, calib, hessian=True)
    seen = {}
    hooks = [l.module.register_forward_hook(lambda m, i, o, n=l.name: seen.setdefault(n, []).append(i[0].detach()))
             for l in layers]
    with torch.no_grad():
        for i in range(0, len(calib), 8):
            tiny.model(input_ids=torch.from_numpy(calib[i:i + 8, :-1]))
    for h in hooks:
        h.remove()
    for l in layers:
        x = torch.cat([t.reshape(-1, t.shape[-1]) for t in seen[l.name]]).double()
        assert got[l.name].n == len(x)
        assert torch.allclose(got[l.name].sq_norm, (x * x).sum(0))
        assert torch.allclose(got[l.name].hessian(), 2 * x.T @ x / len(x))


# ------------------------------------------------------------------------------------ weight bits, speed-ups, hf:
def test_block_runner_gives_the_same_pruning_as_full_forwards(tiny):
    """prune_model's block-by-block run on captured inputs equals collecting by full forwards, bit for bit."""
    import copy
    calib = tiny.windows("train", 512)
    pats = {"model.layers.0.self_attn.o_proj": "unstructured:0.5", "model.layers.1.mlp.down_proj": "2:4+int4",
            "model.layers.1.self_attn.q_proj": "2:4"}
    for method in ("wanda", "sparsegpt"):
        a, b = copy.deepcopy(tiny.model), copy.deepcopy(tiny.model)
        oa = prune_model(a, pats, method, calib)
        ob = prune_model(b, pats, method, calib, blockwise=False)
        assert oa.patterns == ob.patterns and oa.bits["model.layers.1.mlp.down_proj"] == 4
        for x, y in zip(prunable_layers(a), prunable_layers(b)):
            assert torch.equal(x.weight_oi(), y.weight_oi()), (method, x.name)


def test_candidate_text():
    assert pr.parse_candidate("2:4+int4") == (nm(2, 4), 4)
    p, b = pr.parse_candidate("int8")
    assert str(p) == "dense" and b == 8 and pr.candidate_name(p, b) == "int8"
    assert pr.candidate_name(*pr.parse_candidate("unstructured:0.5+int8")) == "unstructured:0.5+int8"
    for bad in ("2:4+int3", "2:4+fp8", "int16"):
        with pytest.raises(SearchError, match="weight bits must be int8 or int4"):
            pr.parse_candidate(bad)


@pytest.mark.parametrize("bits", [8, 4])
def test_fake_quant_grid_zeros_and_error(bits):
    W, _ = _data(rows=6, cols=200)
    W[0, :7] = 0
    Q = pr.fake_quant(W, bits)
    s = pr.quant_scales(W, bits)
    q = Q / s
    assert torch.allclose(q, q.round(), atol=1e-4) and q.abs().max() <= 2 ** (bits - 1)     # integers on the grid
    assert (Q[0, :7] == 0).all()
    assert ((W - Q).abs() <= s / 2 + 1e-6).all()                       # round to nearest
    for g in (slice(0, 64), slice(64, 128), slice(192, 200)):     # one scale per row and group of 64
        assert (s[:, g] == s[:, g][:, :1]).all()


@pytest.mark.parametrize("pattern,factor", [(nm(2, 4), 0.99), (pr.parse_candidate("dense")[0], 0.8)])
def test_sparsegpt_quantizes_inside_its_update(pattern, factor):
    """Joint SparseGPT + int4 (error spread onto later columns) reconstructs better than SparseGPT then rounding."""
    W, X = _data(rows=16, cols=256, n=1024)
    H = 2 * X.double().T @ X.double() / len(X)
    joint, m1 = pr.sparsegpt(W, pattern, H, bits=4)
    after, m2 = pr.sparsegpt(W, pattern, H)
    after = pr.fake_quant(after, 4)

    def err(A):
        return float(((X @ (W - A).T) ** 2).mean())
    assert err(joint) < factor * err(after)
    assert len(torch.unique(joint[3, :64])) <= 16


def test_weight_bits_in_cost_tables_and_simulation(tiny):
    """int8 / int4 candidates cost less decode time on a memory-bound preset; a pruned + quantized
    model's simulation (its masks and bits) equals the table sum."""
    import copy

    import accel
    from search.llm.costs import decode_costs, simulate_pruned
    acc = accel.load("vegeta-cpu-l2")
    layers = prunable_layers(tiny.model)
    names = [l.name for l in layers]
    costs = decode_costs(tiny.model, acc, names, candidates=["dense", "int8", "int4", "2:4", "2:4+int4"])
    assert costs.candidates == ["dense", "int8", "int4", "2:4", "2:4+int4"]
    t = costs.tpot_s
    assert (t[:, 1] < t[:, 0]).all() and (t[:, 2] < t[:, 1]).all() and (t[:, 4] < t[:, 3]).all()
    a = np.array([4 if i % 2 else 1 for i in range(len(names))])
    m = copy.deepcopy(tiny.model)
    out = prune_model(m, costs.patterns(a), "wanda", tiny.windows("train", 256))
    assert costs.weight_bits(a) == out.bits
    sim = simulate_pruned(m, acc, weight_bits=out.bits, masks=out.masks)
    assert sim["tpot_s"] == pytest.approx(costs.total(a, "tpot"), rel=1e-9)
    assert simulate_pruned(m, acc)["tpot_s"] > sim["tpot_s"] * 1.2          # without the bits: 16-bit storage
    with pytest.raises(SearchError, match="needs its pruning mask"):
        simulate_pruned(m, acc, weight_bits=out.bits)


def test_recipe_has_sparsity_groups_and_a_quantization_stage():
    import yaml
    from search.llm.run import recipe_yaml
    r = {"method": "sparsegpt", "patterns": {"model.layers.0.mlp.up_proj": "2:4", "model.layers.0.mlp.down_proj":
                                             "2:4+int4", "model.layers.1.mlp.up_proj": "int8",
                                             "model.layers.1.mlp.down_proj": "unstructured:0.7",
                                             "model.layers.1.mlp.gate_proj": "dense"}}
    doc = yaml.safe_load(recipe_yaml(r))
    groups = {g["SparseGPTModifier"]["mask_structure"]: g["SparseGPTModifier"] for g in doc["sparsity_stage"].values()}
    assert groups["2:4"]["sparsity"] == 0.5 and len(groups["2:4"]["targets"]) == 2
    assert groups["0:0"]["sparsity"] == pytest.approx(0.3)
    q = doc["quantization_stage"]["quantization_modifiers"]["QuantizationModifier"]["config_groups"]
    assert q["w4"]["targets"] == ["re:^model[.]layers[.]0[.]mlp[.]down_proj$"] and q["w4"]["weights"]["num_bits"] == 4
    assert q["w8"]["weights"] == {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "group",
                                  "group_size": pr.QUANT_GROUP}
    assert not any("gate_proj" in t for g in doc["sparsity_stage"].values() for t in g["SparseGPTModifier"]["targets"])


@pytest.mark.slow
def test_cli_hf_folder_end_to_end(tiny, tmp_path):
    """sparsim prune --model hf:<folder> on a real local checkpoint (code_lm_tiny saved with save_pretrained),
    with weight-bit candidates: the saved folder loads with AutoModelForCausalLM; its perplexity, sparsity
    and re-simulated TPOT and energy (its masks.safetensors and the report's bits) equal the report. (The
    same run on --model code_lm_tiny is the slow block of docs/llm-pruning.md.)"""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    import accel
    from search.llm.costs import simulate_pruned
    ckpt = tmp_path / "ckpt"
    tiny.model.save_pretrained(ckpt)
    tiny.tokenizer.save_pretrained(ckpt)
    out, rep = tmp_path / "pruned", tmp_path / "r.json"
    assert main(["prune", "--model", f"hf:{ckpt}", "--method", "sparsegpt", "--accel", "vegeta-cpu-l2",
                 "--budget", "0.75", "--candidates", "dense,2:4,int8,2:4+int4", "--calib-tokens", "256",
                 "--eval-tokens", "512", "--out", str(out), "--report", str(rep)]) == 0
    r = json.loads(rep.read_text())
    assert r["model"] == f"hf:{ckpt}" and r["pruned"]["tpot_s"] <= 0.75 * r["dense"]["tpot_s"]
    assert any(b < 16 for b in r["weight_bits"].values())                  # 0.75 needs bits here (uniform 2:4: 0.83, int8: 0.81)
    m = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    from search.llm.run import lm_source
    src = lm_source(f"hf:{ckpt}")
    _, _, tokens, _ = src.load(False)
    test = code_lm.eval_windows(tokens["test"], src.seq_len, 512)
    assert code_lm.perplexity(m, test) == pytest.approx(r["pruned"]["test_perplexity"], rel=1e-6)
    for l in prunable_layers(m):
        assert float((l.module.weight == 0).float().mean()) == pytest.approx(r["sparsity"][l.name])
    masks = {k[:-len(".weight")]: v.bool() for k, v in load_file(str(out / "masks.safetensors")).items()}
    assert set(masks) == {l.name for l in prunable_layers(m)}
    sim = simulate_pruned(m, accel.load("vegeta-cpu-l2"), weight_bits=r["weight_bits"], masks=masks)
    assert sim["tpot_s"] == r["pruned"]["tpot_s"]
    assert sim["energy_per_token_pj"] == r["pruned"]["energy_per_token_pj"]
    recipe = (out / "recipe.yaml").read_text()
    assert "SparseGPTModifier" in recipe and "QuantizationModifier" in recipe
