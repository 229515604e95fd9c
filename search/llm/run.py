"""``sparsim prune`` for language models, composed: check -> cost tables -> model -> calibration ->
sensitivities -> allocation with perplexity in the loop -> test perplexity -> saved folder and report.

Every argument is checked, and the budget is checked against the cost tables (built on the
model's shape with seeded weights), before any training, calibration or pruning.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SearchError
from .costs import DEFAULT_CANDIDATES, OBJECTIVES, decode_costs, simulate_pruned
from .pruners import METHODS

LLM_METHODS = ("wanda", "sparsegpt")
#: Tokens the per-layer sensitivities are measured on (the first calibration windows).
SENS_TOKENS = 4096


@dataclass
class LMSource:
    """A language model to prune and the token windows it is calibrated and evaluated on."""
    name: str
    seq_len: int
    shape_model: object = None       # built from the config, seeded weights: for the cost tables
    load: object = None              # () -> (model, tokenizer or None, {split: token stream})
    info: dict = field(default_factory=dict)


def _code_lm_source(spec: str, seed: int) -> LMSource:
    from workloads import code_lm
    cfg = code_lm.TINY if spec == "code_lm_tiny" else code_lm.DEFAULT
    cfg = cfg.replace(seed=seed)

    def shape():
        import torch
        from transformers import LlamaForCausalLM
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return LlamaForCausalLM(code_lm.llama_config(cfg, cfg.vocab_size)).eval()

    def load(progress):
        lm = code_lm.load(cfg, progress=progress)
        return lm.model, lm.tokenizer, lm.tokens, {"code_lm": lm.meta}
    return LMSource(spec, cfg.seq_len, shape(), load)


def _hf_source(spec: str, seed: int, seq_len: int) -> LMSource:
    """``hf:<folder>``: a local ``save_pretrained`` checkpoint (with its tokenizer), evaluated on the
    standard-library corpus splits of :mod:`workloads.code_lm` tokenized by its own tokenizer."""
    target = spec[3:]
    p = Path(target)
    if not p.exists():
        raise SearchError(f"--model {spec}: no such folder (a local checkpoint folder with config.json and "
                          f"a tokenizer is expected)")
    if not (p / "config.json").is_file():
        raise SearchError(f"--model {spec}: {p} has no config.json")
    from transformers import AutoConfig, AutoModelForCausalLM
    try:
        config = AutoConfig.from_pretrained(p)
    except (OSError, ValueError) as e:
        raise SearchError(f"--model {spec}: config.json cannot be read ({str(e).splitlines()[0]})") from None
    import torch
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        shape = AutoModelForCausalLM.from_config(config).eval()

    def load(progress):
        from transformers import AutoTokenizer
        from workloads import code_lm
        model = AutoModelForCausalLM.from_pretrained(p, dtype=torch.float32).eval()
        try:
            tok = AutoTokenizer.from_pretrained(p)
        except (OSError, ValueError, TypeError) as e:
            raise SearchError(f"--model {spec}: no tokenizer in the folder ({str(e).splitlines()[0][:120]}); "
                              f"perplexity needs one") from None
        texts, _ = code_lm.corpus(code_lm.DEFAULT)
        tokens = {s: _encode(tok, texts[s]) for s in code_lm.SPLITS}
        return model, tok, tokens, {}
    return LMSource(spec, seq_len, shape, load)


def _encode(tok, texts) -> np.ndarray:
    eos = tok.eos_token_id if tok.eos_token_id is not None else 0
    out = []
    for t in texts:
        out.append(np.asarray(tok(t)["input_ids"], dtype=np.int64))
        out.append(np.array([eos], dtype=np.int64))
    return np.concatenate(out)


def lm_source(spec: str, seed: int = 0, seq_len: int = 128) -> LMSource:
    if spec in ("code_lm", "code_lm_tiny"):
        return _code_lm_source(spec, seed)
    if spec.startswith("hf:"):
        return _hf_source(spec, seed, seq_len)
    raise SearchError(f"--model {spec}: expected code_lm or hf:<local checkpoint folder> for --method "
                      f"wanda/sparsegpt")


def calib_tokens_from_file(path: str, tokenizer) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise SearchError(f"--calib {path}: no such file")
    text = p.read_bytes().decode("utf-8", errors="replace")
    if not text.strip():
        raise SearchError(f"--calib {path}: the file is empty")
    return _encode(tokenizer, [text])


def _check_file(path, flag):
    if path is None:
        return
    p = Path(path)
    if not p.is_file():
        raise SearchError(f"{flag} {path}: no such file")
    if p.stat().st_size == 0 or not p.read_bytes().strip():
        raise SearchError(f"{flag} {path}: the file is empty")


def check_args(method, objective, budget, batch, prompt, calib_tokens, seq_len):
    if method not in LLM_METHODS:
        raise SearchError(f"--method {method!r}: expected one of {', '.join(LLM_METHODS)}")
    if objective not in OBJECTIVES:
        raise SearchError(f"--objective {objective!r}: expected tpot or energy")
    if not isinstance(budget, (int, float)) or not (0 < budget <= 1) or math.isnan(budget):
        raise SearchError(f"--budget {budget}: expected a fraction of the dense model's "
                          f"{'TPOT' if objective == 'tpot' else 'energy per token'} in (0, 1]")
    for flag, v in (("--batch", batch), ("--prompt", prompt)):
        if not isinstance(v, int) or v < 1:
            raise SearchError(f"{flag} {v}: expected a positive integer")
    if not isinstance(calib_tokens, int) or calib_tokens < seq_len:
        raise SearchError(f"--calib-tokens {calib_tokens}: expected at least one window of {seq_len} tokens")


def prune_llm(model: str, method: str, accel, objective: str = "tpot", budget: float = 0.7, batch: int = 1,
              prompt: int = 512, calib_tokens: int = 8192, calib_file: str | None = None,
              candidates=DEFAULT_CANDIDATES, seed: int = 0, eval_tokens: int = 65536,
              sens_tokens: int = SENS_TOKENS, progress: bool = False, log=print):
    """Hardware-aware one-shot pruning of a causal LM; returns ``(report dict, pruned model, tokenizer,
    masks)``. See ``docs/llm-pruning.md``."""
    import torch
    from workloads import code_lm
    from .allocate import allocate, check_candidates, sensitivity_table
    from .model import require_layers
    t0 = time.perf_counter()
    src = lm_source(model, seed)
    check_args(method, objective, budget, batch, prompt, calib_tokens, src.seq_len)
    _check_file(calib_file, "--calib")
    layers_shape = require_layers(src.shape_model, f"--model {model}")
    check_candidates(layers_shape, candidates)
    names = [l.name for l in layers_shape]
    # the cost tables, on the model's shape: the budget is refused here, before any training
    costs = decode_costs(src.shape_model, accel, names, batch=batch, context=prompt, candidates=candidates,
                         progress=progress)
    dense_t = costs.total(costs.dense(), objective)
    least = costs.cheapest(objective) / dense_t
    if budget < least:
        raise SearchError(f"--budget {budget:g}: below the cheapest assignment ({least:.4f} x the dense "
                          f"{'TPOT' if objective == 'tpot' else 'energy per token'} on {accel.name} at batch {batch})")
    t_tables = time.perf_counter() - t0

    # the model and its token windows
    lm, tok, tokens, extra = src.load(progress)
    layers = require_layers(lm, f"--model {model}")
    if calib_file:
        calib_stream = calib_tokens_from_file(calib_file, tok)
        calib_src = calib_file
    else:
        calib_stream = tokens["train"]
        calib_src = "train split"
    calib = code_lm.eval_windows(calib_stream, src.seq_len, calib_tokens)
    val = code_lm.eval_windows(tokens["validation"], src.seq_len, eval_tokens)
    test = code_lm.eval_windows(tokens["test"], src.seq_len, eval_tokens)
    sens_w = calib[:max(1, sens_tokens // src.seq_len)]

    def sim(m):
        return simulate_pruned(m, accel, batch=batch, context=prompt)
    torch.manual_seed(seed)
    dense_sim = sim(lm)
    dense_ppl = code_lm.perplexity(lm, test, progress=progress)
    t1 = time.perf_counter()
    sens = sensitivity_table(lm, layers, costs, method, calib, sens_w, progress=progress)
    t2 = time.perf_counter()
    budget_abs = budget * dense_sim["tpot_s" if objective == "tpot" else "energy_per_token_pj"]
    # the table's own scale for the knapsack (the shape model's), the real simulation for the check
    scale = dense_t / dense_sim["tpot_s" if objective == "tpot" else "energy_per_token_pj"]
    best, pruned, cands = _alloc(allocate, lm, layers, costs, sens, method, objective, budget_abs, scale,
                                           calib, val, sim, progress)
    t3 = time.perf_counter()
    test_ppl = code_lm.perplexity(pruned, test, progress=progress)
    from .model import sparsity_of
    spars = sparsity_of(pruned)
    report = {
        "model": model, "method": method, "accelerator": accel.name, "objective": objective, "budget": budget,
        "batch": batch, "prompt": prompt, "seed": seed, "calibration": {"source": calib_src, "tokens": int(calib[:, :-1].size)},
        "eval_tokens": int(test[:, 1:].size), "cost_source": dense_sim["source"],
        "dense": {"test_perplexity": dense_ppl, "tpot_s": dense_sim["tpot_s"],
                  "energy_per_token_pj": dense_sim["energy_per_token_pj"]},
        "pruned": {"test_perplexity": test_ppl, "validation_perplexity": best.validation_ppl,
                   "tpot_s": best.simulated["tpot_s"], "energy_per_token_pj": best.simulated["energy_per_token_pj"]},
        "ratio": {"tpot": best.simulated["tpot_s"] / dense_sim["tpot_s"],
                  "energy_per_token": best.simulated["energy_per_token_pj"] / dense_sim["energy_per_token_pj"]},
        "patterns": costs.patterns(best.assignment),
        "sparsity": spars,
        "candidates": [{"budget_fraction": c.budget_fraction, "proxy_nats": c.proxy,
                        "validation_perplexity": c.validation_ppl, "within_budget": c.within_budget,
                        "tpot_s": c.simulated["tpot_s"], "energy_per_token_pj": c.simulated["energy_per_token_pj"],
                        "patterns": costs.patterns(c.assignment)} for c in cands],
        "seconds": {"tables": t_tables, "load_and_dense": t1 - t0 - t_tables, "sensitivity": t2 - t1,
                    "allocation": t3 - t2, "total": time.perf_counter() - t0},
        **extra,
    }
    return report, pruned, tok, {n: m for n, m in _masks(pruned, layers).items()}


def _alloc(allocate, lm, layers, costs, sens, method, objective, budget_abs, scale, calib, val, sim, progress):
    """:func:`allocate` in the tables' units (the shape model's): the real simulation of each
    candidate is scaled by ``scale`` = table dense / real dense for the budget check, and kept as is."""
    key = "tpot_s" if objective == "tpot" else "energy_per_token_pj"

    def sim_in_table_units(m):
        s = dict(sim(m))
        s["_real"] = dict(s)
        s[key] = s[key] * scale
        return s
    best, pruned, cands = allocate(lm, layers, costs, sens, method, objective, budget_abs * scale, calib, val,
                                   sim_in_table_units, progress=progress)
    for c in cands:
        c.simulated = c.simulated["_real"]
    return best, pruned, cands


def _masks(model, layers) -> dict:
    return {l.name: (l.weight_oi() != 0) for l in layers}


# ------------------------------------------------------------------------------------------ saving
def recipe_yaml(report: dict) -> str:
    """An llmcompressor-style recipe: one modifier group per pattern, each targeting its layers by an
    anchored regex. ``N:M`` -> ``mask_structure: "N:M"``, ``sparsity: 1 - N/M``; ``unstructured:D``
    -> ``mask_structure: "0:0"``, ``sparsity: 1 - D``; dense layers are in no group."""
    from workloads import NM, parse_pattern
    modifier = {"wanda": "WandaPruningModifier", "sparsegpt": "SparseGPTModifier"}[report["method"]]
    groups: dict[str, list[str]] = {}
    for layer, pat in report["patterns"].items():
        if pat != "dense":
            groups.setdefault(pat, []).append(layer)
    lines = ["# per-layer sparsity chosen by sparsim prune (hardware-aware allocation); see docs/llm-pruning.md",
             "sparsity_stage:"]
    for i, (pat, layers) in enumerate(sorted(groups.items())):
        p = parse_pattern(pat)
        structure = f"{p.n}:{p.m}" if isinstance(p, NM) else "0:0"
        sparsity = 1.0 - p.density
        lines += [f"  group_{i}_modifiers:", f"    {modifier}:", f"      sparsity: {sparsity:.6g}",
                  f"      mask_structure: \"{structure}\"", "      targets:"]
        lines += [f"        - \"re:^{l.replace('.', '[.]')}$\"" for l in layers]
    return "\n".join(lines) + "\n"


def save(folder: str, report: dict, model, tokenizer, masks: dict) -> None:
    """``save_pretrained`` model (zeros in place) and tokenizer, ``masks.safetensors`` (uint8 per
    layer weight), ``recipe.yaml``, ``sparsim_report.json``; written to a temporary folder, then moved."""
    import shutil

    from safetensors.torch import save_file
    out = Path(folder)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    save_file({f"{n}.weight": m.to(dtype=__import__("torch").uint8).contiguous() for n, m in masks.items()},
              str(tmp / "masks.safetensors"))
    (tmp / "recipe.yaml").write_text(recipe_yaml(report))
    (tmp / "sparsim_report.json").write_text(json.dumps(report, indent=1) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
