"""LLMs from ``transformers`` configs: built-in ``hf:`` names, ``hf:/path`` to a local model or
``config.json``, or an in-memory model; seeded random weights, nothing downloaded.

``transformers`` and ``torch`` are imported only when a model is built (``sparsim --help`` stays fast).

A model is built with only ``blocks`` of its decoder blocks (the rest are identical in shape;
:class:`workloads.llm.LlmModel` scales them), run once on seeded random tokens with hooks on every
linear layer (and on the experts of MoE blocks), and turned into an :class:`LlmModel`: its weight
layers with their real weights (masks from exact zeros or ``torch.nn.utils.prune`` masks), the
router's real choices per token, and each layer's real inputs (for activation sparsity).
The whole model's parameter count comes from building the full config on PyTorch's ``meta``
device (no memory).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .layer import Layer, LayerKind
from .layout import WeightLayout
from .llm import LlmError, LlmModel, LlmShape

#: Built-in configs: the published shapes (config.json of each model card, only the keys that set
#: shapes), with the parameter count its card or paper publishes.
BUILTIN: dict[str, dict] = {
    "llama-3.2-1b": {
        "config": {"model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
                   "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256,
                   "tie_word_embeddings": True, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
                   "hidden_act": "silu"},
        "published": 1.24e9, "source": "huggingface.co/meta-llama/Llama-3.2-1B (config.json; 1.24B parameters)"},
    "llama-3.1-8b": {
        "config": {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                   "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 128256,
                   "tie_word_embeddings": False, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
                   "hidden_act": "silu"},
        "published": 8.03e9, "source": "huggingface.co/meta-llama/Llama-3.1-8B (config.json; 8.03B parameters)"},
    "qwen3-0.6b": {
        "config": {"model_type": "qwen3", "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
                   "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936,
                   "tie_word_embeddings": True, "max_position_embeddings": 40960, "rms_norm_eps": 1e-6,
                   "hidden_act": "silu"},
        "published": 0.6e9, "source": "huggingface.co/Qwen/Qwen3-0.6B (config.json; 0.6B parameters, 0.44B "
                                      "non-embedding)"},
    "mistral-7b": {
        "config": {"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                   "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 32000,
                   "tie_word_embeddings": False, "max_position_embeddings": 32768, "rms_norm_eps": 1e-5,
                   "hidden_act": "silu", "sliding_window": 4096},
        "published": 7.24e9, "source": "huggingface.co/mistralai/Mistral-7B-v0.1 (config.json; 7.24B parameters)"},
    "gpt2": {
        "config": {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257,
                   "n_positions": 1024, "activation_function": "gelu_new"},
        "published": 124e6, "source": "Radford et al. 2019 / huggingface.co/openai-community/gpt2 (124M parameters)"},
    "qwen1.5-moe-a2.7b": {
        "config": {"model_type": "qwen2_moe", "hidden_size": 2048, "intermediate_size": 5632,
                   "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632, "num_experts": 60,
                   "num_experts_per_tok": 4, "num_hidden_layers": 24, "num_attention_heads": 16,
                   "num_key_value_heads": 16, "vocab_size": 151936, "tie_word_embeddings": False,
                   "max_position_embeddings": 8192, "rms_norm_eps": 1e-6, "hidden_act": "silu",
                   "norm_topk_prob": False, "decoder_sparse_step": 1, "qkv_bias": True},
        "published": 14.3e9, "source": "huggingface.co/Qwen/Qwen1.5-MoE-A2.7B (config.json; 14.3B parameters, "
                                       "2.7B activated)"},
    "mixtral-8x7b": {
        "config": {"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                   "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 32000,
                   "num_local_experts": 8, "num_experts_per_tok": 2, "tie_word_embeddings": False,
                   "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "hidden_act": "silu"},
        "published": 46.7e9, "source": "Jiang et al., 'Mixtral of Experts', arXiv:2401.04088 (46.7B parameters, "
                                       "12.9B active per token)"},
}

#: config keys every model needs (by their ``transformers`` attribute names)
REQUIRED = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


def builtin_names() -> list[str]:
    return sorted(BUILTIN)


# ---------------------------------------------------------------------------------------------- configs
def config_from_spec(spec: str):
    """A ``transformers`` config for ``hf:NAME`` (built-in) or ``hf:/path`` (a folder holding
    ``config.json``, or the ``.json`` file itself)."""
    if not isinstance(spec, str) or not spec.startswith("hf:"):
        raise LlmError(f"--model {spec}: an LLM is named hf:NAME ({', '.join(builtin_names())}) or "
                       f"hf:/path/to/model_or_config.json")
    rest = spec[3:]
    if rest in BUILTIN:
        return config_from_dict(BUILTIN[rest]["config"], f"--model {spec}"), rest
    if "/" not in rest and "\\" not in rest and not rest.endswith(".json"):
        raise LlmError(f"--model {spec}: unknown built-in model '{rest}'; expected one of "
                       f"{', '.join(builtin_names())}, or hf:/path/to/checkpoint_or_config.json")
    p = Path(rest).expanduser()
    if not p.exists():
        raise LlmError(f"--model {spec}: {p} does not exist (expected a model folder with config.json, or a "
                       f"config.json file)")
    cfg_file = p / "config.json" if p.is_dir() else p
    if not cfg_file.is_file():
        raise LlmError(f"--model {spec}: folder {p} has no config.json")
    try:
        doc = json.loads(cfg_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LlmError(f"--model {spec}: {cfg_file} is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise LlmError(f"--model {spec}: {cfg_file}: expected a JSON object")
    name = p.name if p.is_dir() else (p.parent.name or p.stem)
    return config_from_dict(doc, f"--model {spec} ({cfg_file})"), name


def config_from_dict(doc: dict, where: str = "config"):
    """A ``transformers`` config from a ``config.json``-style dict (``model_type`` names its class)."""
    from transformers import AutoConfig
    mt = doc.get("model_type")
    if not isinstance(mt, str):
        raise LlmError(f"{where}: missing key 'model_type' (e.g. llama, qwen3, mistral, gpt2, mixtral, qwen2_moe)")
    try:
        cfg = AutoConfig.for_model(mt, **{k: v for k, v in doc.items() if k != "model_type"})
    except (ValueError, KeyError, TypeError) as e:
        raise LlmError(f"{where}: model_type {mt!r}: {str(e).splitlines()[0][:200]}") from None
    missing = [k for k in REQUIRED if k not in doc and _attr_key(cfg, k) not in doc]
    if missing:
        raise LlmError(f"{where}: missing key(s) {', '.join(missing)}; a decoder config needs "
                       f"{', '.join(REQUIRED)} (or its model type's names for them)")
    return cfg


def _attr_key(cfg, key: str) -> str:
    """The config's own name for attribute ``key`` (GPT-2 says n_embd for hidden_size)."""
    return getattr(cfg, "attribute_map", {}).get(key, key)


def shape_of(cfg, name: str, params: int = 0) -> LlmShape:
    """The sizes of a config (see :class:`workloads.llm.LlmShape`)."""
    def get(*keys, default=None):
        for k in keys:
            v = getattr(cfg, k, None)
            if v is not None:
                return v
        return default
    hidden = int(get("hidden_size"))
    heads = int(get("num_attention_heads"))
    kv = int(get("num_key_value_heads", default=heads))
    head_dim = int(get("head_dim", default=hidden // heads))
    inter = get("intermediate_size", "n_inner")
    inter = int(inter) if inter is not None else 4 * hidden
    experts = int(get("num_local_experts", "num_experts", default=0) or 0)
    return LlmShape(name=name, arch=str(cfg.model_type), layers=int(get("num_hidden_layers")), hidden=hidden,
                    heads=heads, kv_heads=kv, head_dim=head_dim, intermediate=inter, vocab=int(get("vocab_size")),
                    experts=experts, top_k=int(get("num_experts_per_tok", default=0) or 0) if experts else 0,
                    expert_intermediate=int(get("moe_intermediate_size", default=inter)) if experts else 0,
                    shared_expert_intermediate=int(get("shared_expert_intermediate_size", default=0) or 0),
                    tied_embeddings=bool(get("tie_word_embeddings", default=False)), params=int(params))


def count_params(cfg) -> int:
    """Parameters of the whole model ``cfg`` describes, built on the ``meta`` device (no memory)."""
    import torch
    from transformers import AutoModelForCausalLM
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------- building
def load_llm(spec: str, blocks: int | None = 1, seed: int = 0, tokens: int = 64, record_inputs: bool = True) -> LlmModel:
    """Build ``hf:NAME`` / ``hf:/path`` with ``blocks`` decoder blocks (None: all), seeded random
    weights, and trace it on ``tokens`` seeded random tokens (see :func:`from_model`). A local folder
    with weights (``*.safetensors``) loads them instead (all blocks it has)."""
    cfg, name = config_from_spec(spec)
    shape = shape_of(cfg, name)
    _check_shape(shape, f"--model {spec}")
    path = Path(spec[3:]).expanduser()
    if path.is_dir() and any(path.glob("*.safetensors")):
        model = _load_checkpoint(path, spec, cfg)
        return from_model(model, blocks=blocks, seed=seed, tokens=tokens, record_inputs=record_inputs, name=name)
    n = shape.layers if blocks is None else _check_blocks(blocks, shape.layers)
    model = build_model(cfg, n, seed)
    return from_model(model, blocks=None, seed=seed, tokens=tokens, record_inputs=record_inputs, name=name,
                      full_layers=shape.layers)


def _scaled_params(model, full_layers: int) -> int:
    """Parameters of the model with ``full_layers`` blocks: its own, plus its first block's for every
    block it lacks (the blocks are identical; :func:`count_params` builds the whole config to check)."""
    own = sum(p.numel() for p in model.parameters())
    ids: dict[int, int] = {}
    for pname, p in model.named_parameters():
        mt = _BLOCK.match(pname)
        if mt is not None:
            ids[int(mt.group(3))] = ids.get(int(mt.group(3)), 0) + p.numel()
    if not ids:
        return own
    return own + (int(full_layers) - len(ids)) * ids[min(ids)]


def _check_blocks(blocks, layers: int) -> int:
    if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
        raise LlmError(f"--blocks: expected a positive integer, got {blocks!r}")
    return min(blocks, layers)


def _check_shape(shape: LlmShape, where: str) -> None:
    if shape.heads % shape.kv_heads:
        raise LlmError(f"{where}: num_attention_heads {shape.heads} is not a multiple of num_key_value_heads "
                       f"{shape.kv_heads}")
    if shape.experts and not (1 <= shape.top_k <= shape.experts):
        raise LlmError(f"{where}: num_experts_per_tok (top-k) {shape.top_k} must be between 1 and the number of "
                       f"experts {shape.experts}")


def build_model(cfg, blocks: int, seed: int = 0):
    """The model of ``cfg`` with ``blocks`` decoder blocks and seeded random weights (float32, eval):
    matrices normal with the config's ``initializer_range`` (as ``transformers`` initializes them),
    norm weights one, biases zero; each parameter filled once, in name order, from one generator."""
    import copy

    import torch
    from transformers import AutoModelForCausalLM
    from transformers.initialization import no_init_weights
    cfg = copy.deepcopy(cfg)
    cfg.num_hidden_layers = int(blocks)
    if getattr(cfg, "layer_types", None) is not None:
        cfg.layer_types = list(cfg.layer_types)[: int(blocks)]
    with no_init_weights():     # the default initializers would fill every matrix twice
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    if getattr(cfg, "tie_word_embeddings", False):
        model.tie_weights()
    std = float(getattr(cfg, "initializer_range", 0.02) or 0.02)
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for pname, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if p.dim() >= 2:
                p.normal_(0.0, std, generator=gen)
                # the generator yields an exact 0.0 now and then; a fresh model is dense
                p.masked_fill_(p == 0, std * 1e-3)
            elif pname.endswith("bias"):
                p.zero_()
            else:               # RMSNorm / LayerNorm scales
                p.fill_(1.0)
    return model.eval()


def _load_checkpoint(path: Path, spec: str, cfg):
    import torch
    from transformers import AutoModelForCausalLM
    try:
        return AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=torch.float32).eval()
    except Exception as e:   # a broken checkpoint: say which and why, in one line
        raise LlmError(f"--model {spec}: loading the checkpoint failed: {type(e).__name__}: "
                       f"{str(e).splitlines()[0][:200] if str(e) else ''}") from None


def from_model(model, blocks: int | None = None, seed: int = 0, tokens: int = 64, record_inputs: bool = True,
               name: str | None = None, full_layers: int | None = None, params: int | None = None) -> LlmModel:
    """An in-memory ``transformers`` causal LM (e.g. a ``LlamaForCausalLM`` a pruning run changed) as
    an :class:`LlmModel`: run once on ``tokens`` seeded random token ids, its weight layers read from
    the modules that ran (masks: ``torch.nn.utils.prune`` masks or exact zeros). ``blocks``: keep only
    the first ``blocks`` traced blocks and scale them (None: all). ``full_layers``: the block count of
    the model this one stands for (default: its own)."""
    import torch
    cfg = model.config
    own_layers = int(cfg.num_hidden_layers)
    name = name or getattr(cfg, "name_or_path", "") or type(model).__name__
    full = own_layers if full_layers is None else int(full_layers)
    shape = shape_of(cfg, name, params if params is not None else _scaled_params(model, full))
    shape = LlmShape(**{**vars(shape), "layers": full})
    _check_shape(shape, f"model '{name}'")
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 2:
        raise LlmError(f"tokens: expected an integer >= 2, got {tokens!r}")
    rec = _Recorder(model, record_inputs)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, int(shape.vocab), (1, tokens), generator=g)
    was = model.training
    model.eval()
    kwargs = {"input_ids": ids, "use_cache": False}
    import inspect
    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        kwargs["logits_to_keep"] = 1     # the LM head on the last position only, as decode runs it
    try:
        with torch.no_grad():
            model(**kwargs)
    except Exception as e:
        raise LlmError(f"model '{name}': forward on {tokens} tokens failed: {type(e).__name__}: "
                       f"{str(e).splitlines()[0][:200] if str(e) else ''}") from e
    finally:
        rec.remove()
        model.train(was)
    return rec.build(shape, own_layers, blocks, seed)


_BLOCK = re.compile(r"^(.*?)(?:^|\.)(layers|h|blocks|block)\.(\d+)\.")


@dataclass
class _Call:
    name: str
    weight: np.ndarray
    layout: WeightLayout
    k: int
    n: int
    expert: int | None = None


class _Recorder:
    """Forward hooks on the linear layers (``nn.Linear``, GPT-2's ``Conv1D``, routers) and experts."""

    def __init__(self, model, record_inputs: bool):
        import torch
        from transformers.pytorch_utils import Conv1D
        self.calls: list[_Call] = []
        self.inputs: dict[str, np.ndarray] = {}
        self.routing: dict[str, np.ndarray] = {}
        self.record = record_inputs
        self.handles = []
        self.seen: set = set()
        for mname, mod in model.named_modules():
            cls = type(mod).__name__
            if isinstance(mod, (torch.nn.Linear, Conv1D)) or (cls.endswith("Router") and _param2d(mod, "weight")):
                self.handles.append(mod.register_forward_pre_hook(self._linear(mname, mod, isinstance(mod, Conv1D))))
            elif cls.endswith("Experts") and _param3d(mod, "down_proj"):
                self.handles.append(mod.register_forward_pre_hook(self._experts(mname, mod)))
            elif any(isinstance(p, torch.Tensor) and p.dim() == 3 for p in mod.parameters(recurse=False)):
                raise LlmError(f"module '{mname}' ({cls}) holds 3-D parameters sparsim does not know how to map "
                               f"to GEMMs (expected an *Experts module with gate_up_proj and down_proj)")

    def remove(self):
        for h in self.handles:
            h.remove()

    def _linear(self, mname, mod, conv1d: bool):
        def hook(_m, args, kwargs=None):
            if mname in self.seen:
                return
            self.seen.add(mname)
            w = mod.weight.detach()
            arr = w.to(dtype=__import__("torch").float32).cpu().numpy()
            if conv1d:      # GPT-2's Conv1D: y = x W + b, W is (k, n)
                k, n = arr.shape
                self.calls.append(_Call(mname, arr, WeightLayout.KN, k, n))
            else:
                n, k = arr.shape
                self.calls.append(_Call(mname, arr, WeightLayout.NK, k, n))
            if self.record and args:
                x = args[0]
                self.inputs[mname] = x.detach().reshape(-1, x.shape[-1]).to(dtype=__import__("torch").float16).numpy()
        return hook

    def _experts(self, mname, mod):
        def hook(_m, args):
            if mname in self.seen:
                return
            self.seen.add(mname)
            import torch
            idx = args[1] if len(args) > 1 else None
            if idx is None:
                raise LlmError(f"module '{mname}': its forward did not receive the router's top-k indices")
            self.routing[mname] = idx.detach().reshape(idx.shape[0] if idx.dim() > 1 else -1, -1).cpu().numpy()
            gu = getattr(mod, "gate_up_proj", None)
            dn = mod.down_proj
            ups = [("gate_up_proj", gu)] if gu is not None else [("up_proj", getattr(mod, "up_proj"))]
            for e in range(dn.shape[0]):
                for pname, p in ups + [("down_proj", dn)]:
                    arr = p[e].detach().to(torch.float32).cpu().numpy()
                    n, k = arr.shape
                    self.calls.append(_Call(f"{mname}.{e}.{pname}", arr, WeightLayout.NK, k, n, expert=e))
        return hook

    def build(self, shape: LlmShape, own_layers: int, blocks: int | None, seed: int) -> LlmModel:
        per_block: dict[int, list[Layer]] = {}
        head: list[Layer] = []
        experts: dict[str, int] = {}
        routing: dict[int, np.ndarray] = {}
        for c in self.calls:
            mask = None
            nz = np.count_nonzero(c.weight)
            if nz != c.weight.size:
                mask = c.weight != 0
            layer = Layer(name=c.name, kind=LayerKind.LINEAR, m=1, n=c.n, k=c.k, module=c.name.rsplit(".", 1)[0]
                          if c.expert is not None else c.name, op="linear", weight_name=f"{c.name}.weight",
                          weight=c.weight, weight_layout=c.layout, mask=mask)
            mt = _BLOCK.match(c.name + ".")
            if mt is None:
                head.append(layer)
                continue
            b = int(mt.group(3))
            per_block.setdefault(b, []).append(layer)
            if c.expert is not None:
                experts[c.name] = c.expert
                routing[b] = self.routing[c.name.rsplit(".", 2)[0]]
        # the embedding lookup has no GEMM; a tied LM head is an nn.Linear sharing the embedding's weight
        ids = sorted(per_block)
        if not ids:
            raise LlmError(f"model '{shape.name}': no decoder block ran (expected modules named "
                           f"...layers.N... or ...h.N...)")
        if blocks is not None:
            ids = ids[: _check_blocks(blocks, len(ids))]
        inputs = {k: v for k, v in self.inputs.items()
                  if (_BLOCK.match(k + ".") is None) or int(_BLOCK.match(k + ".").group(3)) in ids}
        return LlmModel(shape=shape, blocks=tuple(tuple(per_block[b]) for b in ids), block_ids=tuple(ids),
                        head=tuple(l for l in head if not l.name.endswith("shared_expert_gate")),
                        experts={k: v for k, v in experts.items()},
                        routing=tuple(routing.get(b) for b in ids), inputs=inputs, seed=seed)


def _param2d(mod, name) -> bool:
    p = getattr(mod, name, None)
    return p is not None and hasattr(p, "dim") and p.dim() == 2


def _param3d(mod, name) -> bool:
    p = getattr(mod, name, None)
    return p is not None and hasattr(p, "dim") and p.dim() == 3


def hf_source_files(spec: str) -> dict[str, str]:
    """``{absolute path: sha256}`` of the files an ``hf:/path`` model is read from (its
    ``config.json`` and ``*.safetensors``), so a results store keys points by their content; a
    built-in name gives ``{}`` (its config is sparsim's: the version names it)."""
    import hashlib
    rest = spec[3:] if spec.startswith("hf:") else spec
    if rest in BUILTIN:
        return {}
    p = Path(rest).expanduser()
    files = [p] if p.is_file() else ([p / "config.json"] + sorted(p.glob("*.safetensors")) if p.is_dir() else [])
    out = {}
    for f in files:
        if f.is_file():
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 24), b""):
                    h.update(chunk)
            out[str(f.resolve())] = h.hexdigest()
    return out
