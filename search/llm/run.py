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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SearchError
from .costs import DEFAULT_CANDIDATES, OBJECTIVES, decode_costs, simulate_pruned

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
    from workloads.hf import builtin_names
    if target in builtin_names():
        raise SearchError(f"--model {spec}: a built-in shape with seeded random weights and no tokenizer; pruning "
                          f"measures perplexity, so it needs a trained checkpoint folder with its tokenizer "
                          f"(hf:/path/to/folder) or code_lm")
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
    # windows no longer than the positions the model was made for
    seq_len = min(seq_len, int(getattr(config, "max_position_embeddings", seq_len) or seq_len))

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
    """``texts`` joined by the tokenizer's end-of-sequence token, as one stream (a fast tokenizer's
    Rust backend encodes the files in one batch)."""
    eos = tok.eos_token_id if tok.eos_token_id is not None else 0
    backend = getattr(tok, "_tokenizer", None)
    if backend is not None and hasattr(backend, "encode_batch"):
        ids = [e.ids for e in backend.encode_batch(list(texts), add_special_tokens=False)]
    else:
        ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    out = []
    for i in ids:
        out.append(np.asarray(i, dtype=np.int64))
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


def check_args(method, objective, budget, batch, prompt, calib_tokens, seq_len, generate=128):
    if method not in LLM_METHODS:
        raise SearchError(f"--method {method!r}: expected one of {', '.join(LLM_METHODS)}")
    if objective not in OBJECTIVES:
        raise SearchError(f"--objective {objective!r}: expected tpot or energy")
    if not isinstance(budget, (int, float)) or not (0 < budget <= 1) or math.isnan(budget):
        raise SearchError(f"--budget {budget}: expected a fraction of the dense model's "
                          f"{'TPOT' if objective == 'tpot' else 'energy per token'} in (0, 1]")
    for flag, v in (("--batch", batch), ("--prompt", prompt), ("--generate", generate)):
        if not isinstance(v, int) or v < 1:
            raise SearchError(f"{flag} {v}: expected a positive integer")
    from workloads.llm import check_run
    try:
        check_run(batch, prompt, generate)
    except ValueError as e:
        raise SearchError(str(e)) from None
    if not isinstance(calib_tokens, int) or calib_tokens < seq_len:
        raise SearchError(f"--calib-tokens {calib_tokens}: expected at least one window of {seq_len} tokens")


class Stages:
    """Wall and CPU seconds (``time.process_time``: every thread of this process) per named stage,
    summed over repeats: ``with stages("calibration"): ...``."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - t
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - c

    def as_dict(self) -> dict:
        return {k: {"wall_s": self.wall[k], "cpu_s": self.cpu[k]} for k in self.wall}


@contextmanager
def torch_threads(n: int | None):
    """Run with ``n`` torch threads (None: as they are), restored afterwards."""
    import torch
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Session:
    """One model on one accelerator at one (batch, prompt, generate): the checks and cost tables
    (:meth:`__init__`, before any training), then the model and its windows (:meth:`load`), the
    per-layer sensitivities (:meth:`sensitivities`, measured once), and allocations at any budget
    (:meth:`allocate`). :func:`prune_llm` is one pass through it; the benchmark makes several."""

    def __init__(self, model: str, method: str, accel, objective: str = "tpot", batch: int = 1, prompt: int = 512,
                 generate: int = 128, calib_tokens: int = 8192, calib_file: str | None = None,
                 candidates=DEFAULT_CANDIDATES, seed: int = 0, eval_tokens: int = 65536,
                 sens_tokens: int = SENS_TOKENS, progress: bool = False, budget: float = 1.0):
        from .allocate import check_candidates
        from .model import require_layers
        self.stages = Stages()
        self.spec, self.method, self.accel, self.objective = model, method, accel, objective
        self.batch, self.prompt, self.generate, self.seed = batch, prompt, generate, seed
        self.calib_tokens, self.calib_file, self.eval_tokens, self.sens_tokens = calib_tokens, calib_file, \
            eval_tokens, sens_tokens
        self.progress = progress
        self.src = lm_source(model, seed)
        check_args(method, objective, budget, batch, prompt, calib_tokens, self.src.seq_len, generate)
        _check_file(calib_file, "--calib")
        layers_shape = require_layers(self.src.shape_model, f"--model {model}")
        check_candidates(layers_shape, candidates)
        # the cost tables, on the model's shape (seeded weights): the budget is checked on them
        with self.stages("cost tables"):
            self.costs = decode_costs(self.src.shape_model, accel, [l.name for l in layers_shape], batch=batch,
                                      prompt=prompt, generate=generate, candidates=candidates, progress=progress)
        self.check_budget(budget)
        self.key = "tpot_s" if objective == "tpot" else "energy_per_token_pj"
        self.sens = None

    def check_budget(self, budget: float) -> None:
        dense_t = self.costs.total(self.costs.dense(), self.objective)
        least = self.costs.cheapest(self.objective) / dense_t
        if budget < least:
            raise SearchError(f"--budget {budget:g}: below the cheapest assignment ({least:.4f} x the dense "
                              f"{'TPOT' if self.objective == 'tpot' else 'energy per token'} on {self.accel.name} "
                              f"at batch {self.batch})")

    def sim(self, m, outcome=None) -> dict:
        """Simulate ``m``; ``outcome``: its :class:`search.llm.model.PruneOutcome` (weight bits and masks
        of quantized layers)."""
        return simulate_pruned(m, self.accel, batch=self.batch, prompt=self.prompt, generate=self.generate,
                               weight_bits=outcome.bits if outcome else None,
                               masks=outcome.masks if outcome else None)

    def load(self):
        import torch
        from workloads import code_lm
        from .model import require_layers
        with self.stages("model load"):
            self.model, self.tokenizer, tokens, self.extra = self.src.load(self.progress)
        self.layers = require_layers(self.model, f"--model {self.spec}")
        if self.calib_file:
            stream, self.calib_source = calib_tokens_from_file(self.calib_file, self.tokenizer), self.calib_file
        else:
            stream, self.calib_source = tokens["train"], "train split"
        seq = self.src.seq_len
        self.calib = code_lm.eval_windows(stream, seq, self.calib_tokens)
        self.val = code_lm.eval_windows(tokens["validation"], seq, self.eval_tokens)
        self.test = code_lm.eval_windows(tokens["test"], seq, self.eval_tokens)
        self.sens_windows = self.calib[:max(1, self.sens_tokens // seq)]
        torch.manual_seed(self.seed)
        with self.stages("simulate"):
            self.dense_sim = self.sim(self.model)
        self.dense_ppl = self.perplexity(self.model)
        # table units (the shape model's) per unit of the real model's simulation
        self.scale = self.costs.total(self.costs.dense(), self.objective) / self.dense_sim[self.key]
        return self

    def perplexity(self, m, split: str = "test") -> float:
        from workloads import code_lm
        with self.stages(f"{split} perplexity"):
            return code_lm.perplexity(m, self.test if split == "test" else self.val, progress=self.progress)

    def sensitivities(self):
        from .allocate import sensitivity_table
        if self.sens is None:
            self.sens = sensitivity_table(self.model, self.layers, self.costs, self.method, self.calib,
                                          self.sens_windows, progress=self.progress, stages=self.stages)
        return self.sens

    def allocate(self, budget_abs: float, ladder=None):
        """Best candidate within ``budget_abs`` (the objective's units, real simulation):
        ``(Candidate, pruned model, all Candidates)``."""
        from .allocate import allocate
        kw = {} if ladder is None else {"ladder": ladder}
        key, scale = self.key, self.scale

        def sim_in_table_units(m, outcome):
            with self.stages("simulate"):
                s = dict(self.sim(m, outcome))
            s["_real"] = dict(s)
            s[key] = s[key] * scale
            return s
        best, pruned, cands = allocate(self.model, self.layers, self.costs, self.sensitivities(), self.method,
                                       self.objective, budget_abs * scale, self.calib, self.val, sim_in_table_units,
                                       progress=self.progress, stages=self.stages, **kw)
        for c in cands:
            c.simulated = c.simulated["_real"]
        return best, pruned, cands

    def report(self, budget: float, best, pruned, cands) -> dict:
        from .model import sparsity_of
        d, b = self.dense_sim, best.simulated
        return {
            "model": self.spec, "method": self.method, "accelerator": self.accel.name, "objective": self.objective,
            "budget": budget, "batch": self.batch, "prompt": self.prompt, "generate": self.generate,
            "seed": self.seed, "calibration": {"source": self.calib_source, "tokens": int(self.calib[:, :-1].size)},
            "eval_tokens": int(self.test[:, 1:].size), "cost_source": d["source"],
            "dense": {"test_perplexity": self.dense_ppl, **{k: d[k] for k in _SIM_KEYS}},
            "pruned": {"test_perplexity": self.perplexity(pruned), "validation_perplexity": best.validation_ppl,
                       **{k: b[k] for k in _SIM_KEYS}},
            "ratio": {"tpot": b["tpot_s"] / d["tpot_s"],
                      "energy_per_token": b["energy_per_token_pj"] / d["energy_per_token_pj"]},
            "patterns": self.costs.patterns(best.assignment),
            "weight_bits": self.costs.weight_bits(best.assignment),
            "sparsity": sparsity_of(pruned),
            "candidates": [{"budget_fraction": c.budget_fraction, "proxy_nats": c.proxy,
                            "validation_perplexity": c.validation_ppl, "within_budget": c.within_budget,
                            **{k: c.simulated[k] for k in _SIM_KEYS}, "patterns": self.costs.patterns(c.assignment)}
                           for c in cands],
            "seconds": self.stages.as_dict(),
            **self.extra,
        }


_SIM_KEYS = ("tpot_s", "energy_per_token_pj", "dram_bytes_per_token", "bound")


def prune_llm(model: str, method: str, accel, objective: str = "tpot", budget: float = 0.7, batch: int = 1,
              prompt: int = 512, generate: int = 128, calib_tokens: int = 8192, calib_file: str | None = None,
              candidates=DEFAULT_CANDIDATES, seed: int = 0, eval_tokens: int = 65536,
              sens_tokens: int = SENS_TOKENS, progress: bool = False, threads: int | None = 1):
    """Hardware-aware one-shot pruning of a causal LM within ``budget`` x the dense model's decode
    TPOT (or energy per token); returns ``(report dict, pruned model, tokenizer, masks)``. See
    ``docs/llm-pruning.md``. ``threads``: torch threads while it runs (None: leave as they are)."""
    t0, c0 = time.perf_counter(), time.process_time()
    with torch_threads(threads):
        s = Session(model, method, accel, objective=objective, batch=batch, prompt=prompt, generate=generate,
                    calib_tokens=calib_tokens, calib_file=calib_file, candidates=candidates, seed=seed,
                    eval_tokens=eval_tokens, sens_tokens=sens_tokens, progress=progress, budget=budget)
        s.load()
        best, pruned, cands = s.allocate(budget * s.dense_sim[s.key])
        report = s.report(budget, best, pruned, cands)
    report["seconds"]["total"] = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
    report["threads"] = threads
    return report, pruned, s.tokenizer, _masks(pruned, s.layers, best.outcome)


def _masks(model, layers, outcome=None) -> dict:
    """Every prunable layer's mask: the pruning mask where the layer was pruned (a quantized layer's
    kept weight may round to zero), else its nonzeros."""
    got = outcome.masks if outcome is not None else {}
    return {l.name: got[l.name] if l.name in got else (l.weight_oi() != 0) for l in layers}


# ------------------------------------------------------------------------------------------ saving
def recipe_yaml(report: dict) -> str:
    """An llmcompressor recipe (the form ``llmcompressor.recipe.Recipe.create_instance`` parses; see
    ``benchmarks/bench_llmcompressor.py``).

    ``sparsity_stage``: one modifier group per sparsity pattern, each targeting its layers by an
    anchored regex; ``N:M`` -> ``mask_structure: "N:M"``, ``sparsity: 1 - N/M``; ``unstructured:D`` ->
    ``mask_structure: "0:0"``, ``sparsity: 1 - D``; dense layers are in no group.
    ``quantization_stage`` (only when some layer is stored below 16 bits): a ``QuantizationModifier``
    with one config group per bit width, weight-only symmetric integers with one scale per group of
    :data:`search.llm.pruners.QUANT_GROUP` inputs (W8A16 / W4A16 in llmcompressor's terms)."""
    from workloads import NM
    from .pruners import QUANT_GROUP, parse_candidate
    modifier = {"wanda": "WandaPruningModifier", "sparsegpt": "SparseGPTModifier"}[report["method"]]
    groups: dict[str, list[str]] = {}
    qgroups: dict[int, list[str]] = {}
    for layer, cand in report["patterns"].items():
        p, bits = parse_candidate(cand)
        if p.density < 1.0:
            groups.setdefault(str(p), []).append(layer)
        if bits < 16:
            qgroups.setdefault(bits, []).append(layer)

    def target(l):
        return f"        - \"re:^{l.replace('.', '[.]')}$\""
    lines = ["# per-layer sparsity (and weight bits) chosen by sparsim prune (hardware-aware allocation); "
             "see docs/llm-pruning.md"]
    if groups:
        lines.append("sparsity_stage:")
    for i, (pat, layers) in enumerate(sorted(groups.items())):
        p, _ = parse_candidate(pat)
        structure = f"{p.n}:{p.m}" if isinstance(p, NM) else "0:0"
        lines += [f"  group_{i}_modifiers:", f"    {modifier}:", f"      sparsity: {1.0 - p.density:.6g}",
                  f"      mask_structure: \"{structure}\"", "      targets:"]
        lines += [target(l) for l in layers]
    if qgroups:
        lines += ["quantization_stage:", "  quantization_modifiers:", "    QuantizationModifier:",
                  "      config_groups:"]
        for bits, layers in sorted(qgroups.items()):
            lines += [f"        w{bits}:", "          targets:"]
            lines += ["    " + target(l) for l in layers]
            lines += ["          weights:", f"            num_bits: {bits}", "            type: int",
                      "            symmetric: true", "            strategy: group",
                      f"            group_size: {QUANT_GROUP}"]
    if len(lines) == 1:
        lines.append("{}")
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
