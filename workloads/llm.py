"""An LLM as sparsim sees it: phases, the KV cache, GQA, experts, activation sparsity, weight bits.

An LLM run is a sequence of workloads, not one (see DESIGN.md): a **prefill** of ``P`` prompt
tokens at batch ``B``, then **decode** steps, each one token per sequence, whose attention reads a
KV cache that grows by one token per step. :class:`LlmModel` holds what the phases are built from:

* the model's shape (:class:`LlmShape`, from its ``transformers`` config: layers, heads, KV heads,
  head dim, experts, ...);
* the weight layers of the **traced blocks** (one token's worth: ``m = 1``), with their real
  weights and masks, and the layers outside the blocks (the LM head);
* the real router's choices on the traced tokens (MoE), and the traced tokens' real inputs to every
  linear layer (activation sparsity).

The decoder's blocks are identical in shape, so a model may be traced with fewer blocks than it
has and its block costs scaled by ``layers / traced blocks`` (:attr:`LlmModel.scale`). That is exact
when every traced block costs the same as every other, which holds for dense blocks and for N:M
masks whose groups all keep N (each group then costs N slots whatever the values); for
unstructured masks or activation sparsity the traced blocks stand for the rest (trace every block,
``blocks=None``, for exact totals).

Phases (:meth:`LlmModel.prefill`, :meth:`LlmModel.decode_step`) are ordinary :class:`Workload` s
whose layers carry ``Phase.PREFILL`` / ``Phase.DECODE``:

* a weight layer runs ``m = B x P`` rows in prefill and ``m = B`` in decode; the LM head runs the
  last position only (``m = B``) in both, as serving engines compute logits;
* attention is two weightless GEMMs per block whose right operand is the KV cache, **one per KV
  head** (GQA: the ``heads / kv_heads`` query heads of a group share it, so K and V are read once
  per KV head, not once per query head): ``qk``: groups ``B x kv_heads``, ``m = g x Lq``,
  ``k = head_dim``, ``n = L``; ``av``: ``m = g x Lq``, ``k = L``, ``n = head_dim``, with ``g`` the
  query heads per KV head, ``Lq`` the new tokens (``P`` or 1) and ``L`` the keys attended (causal
  masking is not treated as sparsity: the full ``P x P`` scores of prefill are computed). Their
  ``quant`` is the KV cache's bits;
* an expert's GEMMs run ``m`` = the tokens routed to it; an expert that receives no token is left
  out (it costs nothing and loads nothing).
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import WorkloadError
from .layer import Layer, LayerKind, Phase
from .patterns import parse_pattern
from .quant import Quant, kv_quant, weight_quant
from .workload import Workload

#: the longest prompt + generated tokens a run may ask for (the largest context of the built-in models)
MAX_CONTEXT = 1 << 20
#: the most decode steps a run may ask for
MAX_GENERATE = 1 << 17


class LlmError(WorkloadError):
    """A bad LLM input: a model name, config, phase size, routing or sparsity setting."""


@dataclass(frozen=True)
class LlmShape:
    """The sizes of a decoder-only transformer, from its config.

    ``params``: parameters of the whole model (as ``transformers`` builds it, embeddings included)."""

    name: str
    arch: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    experts: int = 0
    top_k: int = 0
    expert_intermediate: int = 0
    shared_expert_intermediate: int = 0
    tied_embeddings: bool = False
    params: int = 0

    @property
    def q_per_kv(self) -> int:
        """Query heads per KV head (the GQA group size)."""
        return self.heads // self.kv_heads

    def kv_bytes_per_token(self, kv_bits: int = 16) -> float:
        """KV-cache bytes one token adds: K and V, every layer, every KV head, ``head_dim`` values."""
        return 2 * self.layers * self.kv_heads * self.head_dim * kv_bits / 8


@dataclass(frozen=True, eq=False)
class LlmModel:
    """A traced LLM, ready to be turned into phase workloads (see the module docstring).

    Fields
    ------
    shape:        the model's sizes.
    blocks:       per traced block, its weight layers for one token (``m = 1``), named by module path.
    block_ids:    which of the model's blocks were traced (0-based).
    head:         weight layers outside the blocks (the LM head), one token.
    experts:      layer name -> expert index, for the experts' GEMMs of MoE blocks.
    routing:      per traced block, the real router's top-k experts of each traced token
                  (``(tokens, top_k)`` int array), or None for a dense block.
    inputs:       layer name -> the traced tokens' real inputs to that layer (``(tokens, k)`` float16),
                  for activation sparsity; empty when not recorded.
    routing_spec: ``real`` (the router's choices on the traced tokens), ``uniform``, ``zipf:S`` or
                  counts from a file (see :meth:`with_routing`).
    act_density:  None (inputs as traced: exact zeros only), or the TEAL-style target density
                  (per-layer thresholds calibrated on half the traced tokens, see :meth:`with_act_sparsity`).
    kv:           the KV cache's storage.
    seed:         seeds synthetic routing.
    """

    shape: LlmShape
    blocks: tuple[tuple[Layer, ...], ...]
    block_ids: tuple[int, ...]
    head: tuple[Layer, ...] = ()
    experts: Mapping[str, int] = field(default_factory=dict)
    routing: tuple[np.ndarray | None, ...] = ()
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)
    routing_spec: str = "real"
    routing_counts: np.ndarray | None = field(default=None, repr=False)
    act_density: float | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict, repr=False)
    kv: Quant = Quant(16)
    seed: int = 0

    def __post_init__(self):
        if not self.blocks:
            raise LlmError(f"model '{self.shape.name}': no decoder block was traced")
        if len(self.block_ids) != len(self.blocks):
            raise LlmError(f"model '{self.shape.name}': {len(self.blocks)} blocks but {len(self.block_ids)} block ids")
        if self.shape.heads % self.shape.kv_heads:
            raise LlmError(f"model '{self.shape.name}': {self.shape.heads} attention heads are not a multiple of "
                           f"{self.shape.kv_heads} KV heads")

    # -- sizes ------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.shape.name

    @property
    def scale(self) -> float:
        """How many of the model's blocks each traced block stands for."""
        return self.shape.layers / len(self.blocks)

    @property
    def is_moe(self) -> bool:
        return bool(self.experts)

    def weight_layers(self) -> list[Layer]:
        """Every weight layer (traced blocks, then the head), one token each."""
        return [l for b in self.blocks for l in b] + list(self.head)

    # -- changes ----------------------------------------------------------------------------------
    def _map_layers(self, fn) -> "LlmModel":
        return replace(self, blocks=tuple(tuple(fn(l) for l in b) for b in self.blocks),
                       head=tuple(fn(l) for l in self.head))

    def sparsify(self, pattern) -> "LlmModel":
        """Mask weights by magnitude. ``pattern``: one pattern (text or object) for every weight layer
        of the blocks (the LM head stays dense, as SparseGPT and Wanda leave it), or a mapping
        ``{layer-name glob: pattern}`` (first glob wins; a glob may name the head; a glob that matches
        no layer is an error)."""
        if isinstance(pattern, Mapping):
            rules = [(str(g), parse_pattern(p)) for g, p in pattern.items()]
            hit = {g: False for g, _ in rules}

            def pick(l: Layer) -> Layer:
                for g, p in rules:
                    if fnmatch.fnmatchcase(l.name, g):
                        hit[g] = True
                        return l.sparsify(p)
                return l
            out = self._map_layers(pick)
            missing = [g for g, ok in hit.items() if not ok]
            if missing:
                raise LlmError(f"model '{self.name}': sparsity glob(s) {missing} match no weight layer")
            return out
        p = parse_pattern(pattern)
        return replace(self, blocks=tuple(tuple(l.sparsify(p) for l in b) for b in self.blocks))

    def with_weight_bits(self, bits, group_size: int = 128, scale_bits: int = 16) -> "LlmModel":
        """Store weights at ``bits`` (16, 8, 4; 8 and 4 with one ``scale_bits`` scale per
        ``group_size`` values). ``bits``: one value for every weight layer (the head included), or a
        mapping ``{layer-name glob: bits}`` (first glob wins, others keep their storage)."""
        if isinstance(bits, Mapping):
            rules = [(str(g), weight_quant(b, group_size, scale_bits, where=f"weight bits for '{g}'"))
                     for g, b in bits.items()]

            def pick(l: Layer) -> Layer:
                for g, q in rules:
                    if fnmatch.fnmatchcase(l.name, g):
                        return l.replace(quant=q)
                return l
            return self._map_layers(pick)
        q = weight_quant(bits, group_size, scale_bits)
        return self._map_layers(lambda l: l.replace(quant=q))

    def with_kv_bits(self, bits) -> "LlmModel":
        """Store the KV cache at ``bits`` (16, 8, 4)."""
        return replace(self, kv=kv_quant(bits))

    def with_routing(self, spec: str) -> "LlmModel":
        """How tokens are routed to experts: ``real`` (the traced router's top-k on the traced tokens),
        ``uniform`` (each token picks top-k distinct experts uniformly), ``zipf:S`` (expert ``i``, in
        a seeded random order, is picked with weight ``1 / (i + 1)^S``, top-k distinct per token), or a
        path to a text file of per-expert token counts (one line per traced block, or one line for all,
        ``num_experts`` numbers each): the fraction of tokens each expert receives."""
        spec = str(spec)
        counts = None
        if spec in ("real", "uniform"):
            pass
        elif spec.startswith("zipf:"):
            try:
                s = float(spec[5:])
            except ValueError:
                s = float("nan")
            if not (math.isfinite(s) and s > 0):
                raise LlmError(f"--moe-routing {spec}: expected zipf:S with S a positive number")
        else:
            counts = _read_counts(spec, self.shape.experts, len(self.blocks))
        if not self.is_moe:
            raise LlmError(f"--moe-routing {spec}: model '{self.name}' has no experts")
        return replace(self, routing_spec=spec, routing_counts=counts)

    def with_act_sparsity(self, density) -> "LlmModel":
        """TEAL-style activation sparsity: per layer, the magnitude threshold below which a fraction
        ``1 - density`` of the layer's inputs fall, calibrated on the first half of the traced tokens;
        :meth:`input_rows` applies it to the other half. ``None``: inputs as traced (exact zeros,
        the sparsity of ReLU-family models)."""
        if density is None:
            return replace(self, act_density=None, thresholds={})
        if isinstance(density, bool) or not isinstance(density, (int, float)) or not (0 < density <= 1):
            raise LlmError(f"--act-sparsity: expected a density in (0, 1], got {density!r}")
        if not self.inputs:
            raise LlmError(f"model '{self.name}': no traced inputs recorded; activation sparsity needs them "
                           f"(trace with record_inputs=True)")
        th = {}
        for name, x in self.inputs.items():
            cal = np.abs(x[: max(1, x.shape[0] // 2)].astype(np.float32))
            th[name] = float(np.quantile(cal, 1.0 - density)) if density < 1 else -1.0
        return replace(self, act_density=float(density), thresholds=th)

    # -- activation sparsity -------------------------------------------------------------------------
    def _eval_inputs(self, name: str) -> np.ndarray | None:
        x = self.inputs.get(name)
        if x is None:
            return None
        if self.act_density is None:
            return x
        held = x[x.shape[0] // 2:] if x.shape[0] > 1 else x        # calibrated on the other half
        return np.where(np.abs(held.astype(np.float32)) > self.thresholds[name], held, 0)

    def input_density(self, name: str) -> float:
        """Mean fraction of nonzero inputs per token of layer ``name`` (1.0 when not recorded)."""
        x = self._eval_inputs(name)
        return 1.0 if x is None else float(np.count_nonzero(x)) / x.size

    def input_rows(self, name: str, batch: int) -> np.ndarray | None:
        """Which of the layer's ``k`` input rows are nonzero for any of ``batch`` traced tokens
        (a decode step's batch: tokens 0..batch-1 of the evaluated ones, cycling), or None when not recorded."""
        x = self._eval_inputs(name)
        if x is None:
            return None
        idx = np.arange(batch) % x.shape[0]
        return np.any(x[idx] != 0, axis=0)

    # -- routing ---------------------------------------------------------------------------------------
    def expert_counts(self, block: int, tokens: int, step: int = 0) -> np.ndarray:
        """Tokens each expert of traced block ``block`` receives when ``tokens`` tokens are routed
        (decode step ``step``: its batch; prefill: every prompt token), as an int array."""
        e, k = self.shape.experts, self.shape.top_k
        spec = self.routing_spec
        if spec == "real":
            r = self.routing[block]
            idx = (np.arange(tokens) + step * tokens) % r.shape[0]
            return np.bincount(r[idx].ravel(), minlength=e).astype(np.int64)
        rng = np.random.default_rng([self.seed, block, step, tokens])
        if self.routing_counts is not None:
            w = self.routing_counts[block % self.routing_counts.shape[0]]
        elif spec == "uniform":
            w = np.ones(e)
        else:
            s = float(spec[5:])
            order = np.random.default_rng([self.seed, block]).permutation(e)
            w = np.empty(e)
            w[order] = 1.0 / np.arange(1, e + 1) ** s
        p = w / w.sum()
        # each token picks top-k distinct experts with these weights (Gumbel top-k: sampling without replacement)
        g = np.log(np.maximum(p, 1e-300))[None, :] - np.log(-np.log(rng.random((tokens, e))))
        picks = np.argpartition(-g, k - 1, axis=1)[:, :k]
        return np.bincount(picks.ravel(), minlength=e).astype(np.int64)

    # -- phases ----------------------------------------------------------------------------------------
    def prefill(self, batch: int, prompt: int) -> Workload:
        """The prompt pass: ``prompt`` tokens per sequence at ``batch`` (see the module docstring)."""
        _check_phase(batch, prompt, 0)
        return self._phase(Phase.PREFILL, batch, prompt, prompt, step=0)

    def decode_step(self, batch: int, kv_len: int, step: int = 0) -> Workload:
        """One decode step at ``batch``: each sequence's new token attends to ``kv_len`` keys (the
        cache, its own entry included); ``step`` picks the step's tokens for MoE routing."""
        _check_phase(batch, 1, kv_len)
        return self._phase(Phase.DECODE, batch, 1, kv_len, step=step)

    def _phase(self, phase: Phase, batch: int, lq: int, kv_len: int, step: int) -> Workload:
        s = self.shape
        g, d = s.q_per_kv, s.head_dim
        tokens = batch * lq
        layers: list[Layer] = []
        for bi, block in enumerate(self.blocks):
            counts = (self.expert_counts(bi, tokens, step) if self.experts and block and
                      any(l.name in self.experts for l in block) else None)
            attn_done = False
            for l in block:
                if l.name in self.experts:
                    c = int(counts[self.experts[l.name]])
                    if c:
                        layers.append(_rows(l, c, phase))
                    continue
                layers.append(_rows(l, tokens, phase))
                if not attn_done and _is_attn_output(l.name):
                    layers.extend(self._attention(l.name, phase, batch, lq, kv_len, g, d))
                    attn_done = True
            if not attn_done:
                prefix = _block_prefix(block[0].name) if block else f"block{self.block_ids[bi]}"
                layers.extend(self._attention(f"{prefix}.attn", phase, batch, lq, kv_len, g, d))
        layers.extend(_rows(l, batch, phase) for l in self.head)
        label = f"{self.name}[{phase.value}:B{batch}:" + (f"P{lq}]" if phase is Phase.PREFILL else f"L{kv_len}]")
        return Workload(name=label, layers=tuple(layers), batch=batch)

    def _attention(self, out_name: str, phase: Phase, batch: int, lq: int, kv_len: int, g: int, d: int):
        base = out_name.rsplit(".", 1)[0]
        groups = batch * self.shape.kv_heads
        kw = dict(kind=LayerKind.ATTENTION, groups=groups, module=base, op="attention", phase=phase, quant=self.kv)
        return [Layer(name=f"{base}.qk", m=g * lq, n=kv_len, k=d, **kw),
                Layer(name=f"{base}.av", m=g * lq, n=d, k=kv_len, **kw)]


# ---------------------------------------------------------------------------------------------------
def _rows(layer: Layer, m: int, phase: Phase) -> Layer:
    """``layer`` running ``m`` rows in ``phase`` (the same weight and mask arrays)."""
    return layer.replace(m=int(m), phase=phase)


_ATTN_OUT = ("self_attn.o_proj", "attn.c_proj", "self_attn.out_proj", "attention.dense", "attn.out_proj")


def _is_attn_output(name: str) -> bool:
    return name.endswith(_ATTN_OUT)


def _block_prefix(name: str) -> str:
    parts = name.split(".")
    for i, p in enumerate(parts):
        if p.isdigit():
            return ".".join(parts[: i + 1])
    return parts[0]


def _check_phase(batch, tokens, kv_len) -> None:
    for flag, v in (("--batch", batch), ("--prompt", tokens)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise LlmError(f"{flag}: expected a positive integer, got {v!r}")
    if kv_len and (isinstance(kv_len, bool) or not isinstance(kv_len, (int, np.integer)) or kv_len < 1):
        raise LlmError(f"KV length: expected a positive integer, got {kv_len!r}")
    if tokens > MAX_CONTEXT or kv_len > MAX_CONTEXT:
        raise LlmError(f"--prompt/--generate: a context of {max(tokens, kv_len):,} tokens is above the "
                       f"{MAX_CONTEXT:,} sparsim models")


def check_run(batch, prompt, generate) -> None:
    """The sizes of a prefill + decode run: positive integers, a context of at most
    :data:`MAX_CONTEXT` tokens and at most :data:`MAX_GENERATE` decode steps."""
    _check_phase(batch, prompt, 0)
    if isinstance(generate, bool) or not isinstance(generate, (int, np.integer)) or generate < 1:
        raise LlmError(f"--generate: expected a positive integer, got {generate!r}")
    if generate > MAX_GENERATE:
        raise LlmError(f"--generate {generate:,}: at most {MAX_GENERATE:,} generated tokens")
    if prompt + generate > MAX_CONTEXT:
        raise LlmError(f"--prompt {prompt:,} + --generate {generate:,} = {prompt + generate:,} tokens is above the "
                       f"{MAX_CONTEXT:,}-token context sparsim models")


def _read_counts(path: str, experts: int, blocks: int) -> np.ndarray:
    where = f"--moe-routing {path}"
    p = Path(path)
    if not p.is_file():
        raise LlmError(f"{where}: expected real, uniform, zipf:S or a file of per-expert token counts; "
                       f"no such file")
    rows = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            vals = [float(v) for v in line.replace(",", " ").split()]
        except ValueError:
            raise LlmError(f"{where}: line {i}: expected numbers") from None
        if len(vals) != experts:
            raise LlmError(f"{where}: line {i}: expected {experts} counts (one per expert), got {len(vals)}")
        if any(v < 0 or not math.isfinite(v) for v in vals) or sum(vals) <= 0:
            raise LlmError(f"{where}: line {i}: counts must be >= 0 with a positive sum")
        rows.append(vals)
    if not rows:
        raise LlmError(f"{where}: no counts in the file")
    if len(rows) not in (1, blocks):
        raise LlmError(f"{where}: {len(rows)} lines; expected 1 or one per traced block ({blocks})")
    return np.asarray(rows, dtype=np.float64)
