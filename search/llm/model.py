"""A causal LM's prunable layers, calibration statistics, and one-shot pruning of the whole model.

Prunable layers are the model's ``nn.Linear`` and ``transformers`` ``Conv1D`` modules except the
output head (``lm_head`` by default, as in the SparseGPT and Wanda papers). They are grouped into
blocks by the first numbered container in their name (``model.layers.3.mlp.up_proj`` -> block
``model.layers.3``); a model without numbered blocks is one block.

Pruning is sequential over blocks, as both papers do it: a block's calibration statistics are
taken on the inputs the already pruned blocks before it produce, then every layer of the block is
pruned (with statistics from the block's dense inputs), then the next block.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn as nn

from workloads import Dense, SparsityPattern

from ..errors import SearchError
from .pruners import METHODS, candidate_name, check_pattern, parse_candidate, prune_weight

DEFAULT_SKIP = ("lm_head",)


def _conv1d_type():
    try:
        from transformers.pytorch_utils import Conv1D
        return Conv1D
    except ImportError:     # pragma: no cover - transformers is installed with the LLM path
        return ()


@dataclass(frozen=True)
class PrunableLayer:
    name: str
    module: nn.Module
    transposed: bool           # a Conv1D: weight is (in, out)
    block: str

    @property
    def in_features(self) -> int:
        w = self.module.weight
        return w.shape[0] if self.transposed else w.shape[1]

    @property
    def out_features(self) -> int:
        w = self.module.weight
        return w.shape[1] if self.transposed else w.shape[0]

    def weight_oi(self) -> torch.Tensor:
        """The weight as ``(out, in)`` (a copy for Conv1D)."""
        w = self.module.weight.data
        return w.t().contiguous() if self.transposed else w

    def set_weight_oi(self, w: torch.Tensor) -> None:
        self.module.weight.data.copy_(w.t() if self.transposed else w)


def prunable_layers(model: nn.Module, skip=DEFAULT_SKIP) -> list[PrunableLayer]:
    """The model's Linear / Conv1D layers in module order, except those whose name matches ``skip``."""
    conv1d = _conv1d_type()
    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear) or (conv1d and isinstance(mod, conv1d)):
            if any(name == s or name.endswith("." + s) for s in skip):
                continue
            m = re.match(r"^(.*?\.\d+)(\.|$)", name)
            out.append(PrunableLayer(name, mod, not isinstance(mod, nn.Linear), m.group(1) if m else ""))
    return out


def require_layers(model: nn.Module, where: str, skip=DEFAULT_SKIP) -> list[PrunableLayer]:
    layers = prunable_layers(model, skip)
    if not layers:
        raise SearchError(f"{where}: the model has no nn.Linear or Conv1D layers to prune "
                          f"(besides {', '.join(skip)})")
    return layers


def blocks(layers: list[PrunableLayer]) -> list[list[PrunableLayer]]:
    order: dict[str, list[PrunableLayer]] = {}
    for l in layers:
        order.setdefault(l.block, []).append(l)
    return list(order.values())


# ----------------------------------------------------------------------------------- statistics
@dataclass
class InputStats:
    """Calibration statistics of one layer's input: ``sq_norm`` (sum of squares per input feature,
    Wanda's ``||X_j||²``), ``xtx`` (``X Xᵀ`` summed in float64, for SparseGPT) and ``n`` (tokens)."""
    sq_norm: torch.Tensor
    xtx: torch.Tensor | None
    n: int = 0

    def hessian(self) -> torch.Tensor:
        if self.xtx is None:
            raise SearchError("sparsegpt: the calibration statistics were taken without the Hessian")
        return 2.0 * self.xtx / max(self.n, 1)

    def outliers(self) -> torch.Tensor:
        return torch.sqrt(self.sq_norm)


def _stats_hook(stats: dict, memo: dict):
    """A forward hook factory adding a layer's inputs to ``stats[name]``. Layers fed the same tensor
    (a block's q/k/v projections, gate/up) share one computation through ``memo`` (cleared per batch)."""
    def hook(name):
        def fn(mod, inp, out):
            t = inp[0]
            s = stats[name]
            got = memo.get(id(t))
            if got is None or got[0] is not t or (s.xtx is not None and got[2] is None):
                x = t.detach().reshape(-1, t.shape[-1]).double()
                got = (t, (x * x).sum(0), x.t() @ x if s.xtx is not None else None, x.shape[0])
                memo[id(t)] = got
            s.sq_norm += got[1]
            if s.xtx is not None:
                s.xtx += got[2]
            s.n += got[3]
        return fn
    return hook


def _new_stats(layers: list[PrunableLayer], hessian: bool) -> dict[str, InputStats]:
    return {l.name: InputStats(torch.zeros(l.in_features, dtype=torch.float64),
                               torch.zeros(l.in_features, l.in_features, dtype=torch.float64) if hessian else None)
            for l in layers}


def collect(model: nn.Module, layers: list[PrunableLayer], windows: np.ndarray, hessian: bool,
            batch: int = 8) -> dict[str, InputStats]:
    """Run ``windows`` (``(W, T+1)`` token windows; the first T tokens are fed) through ``model``
    and accumulate each layer's :class:`InputStats`. Each forward stops once every layer has its inputs."""
    stats = _new_stats(layers, hessian)
    memo: dict = {}
    seen: set = set()
    make = _stats_hook(stats, memo)

    def hook(name):
        add = make(name)

        def fn(mod, inp, out):
            add(mod, inp, out)
            seen.add(name)
            if len(seen) == len(stats):      # every layer has its inputs: the rest of the forward is not needed
                raise _Stop
        return fn
    hooks = [l.module.register_forward_hook(hook(l.name)) for l in layers]
    kw = {"use_cache": False} if hasattr(model, "config") else {}     # a transformers model: no KV cache
    try:
        with torch.no_grad():
            for i in range(0, len(windows), batch):
                seen.clear()
                memo.clear()
                try:
                    model(input_ids=torch.from_numpy(np.ascontiguousarray(windows[i:i + batch, :-1])), **kw)
                except _Stop:
                    pass
    finally:
        for h in hooks:
            h.remove()
    memo.clear()
    return stats


class BlockRunner:
    """A decoder stack run one block at a time on captured inputs, as the SparseGPT and Wanda
    reference codes do: the inputs of the first block are captured once (embedding, rotary position
    embeddings, masks), then block ``i`` runs on block ``i - 1``'s outputs. Pruning a block and
    running it again gives the next block its pruned inputs without re-running the blocks before.
    Only models whose blocks are ``model.layers`` (LLaMA, Mistral, Qwen, ...) run this way
    (:attr:`ok`); others are collected by full forwards (:func:`collect`)."""

    def __init__(self, model: nn.Module, windows: np.ndarray, batch: int = 8):
        inner = getattr(model, "model", None)
        self.blocks = getattr(inner, "layers", None)
        self.ok = isinstance(self.blocks, nn.ModuleList) and len(self.blocks) > 0 and hasattr(model, "config")
        self.index = {}
        self.h: list = []          # per batch: hidden states entering the next block to run
        self.extra: list = []      # per batch: (other positional args, kwargs) every block receives
        if not self.ok:
            return
        names = {id(m): n for n, m in model.named_modules()}
        self.index = {names[id(b)]: i for i, b in enumerate(self.blocks)}

        def grab(mod, args, kwargs):
            kw = dict(kwargs)
            h = args[0] if args else kw.pop("hidden_states")
            self.h.append(h)
            self.extra.append((tuple(args[1:]), kw))
            raise _Stop
        hook = self.blocks[0].register_forward_pre_hook(grab, with_kwargs=True)
        try:
            with torch.no_grad():
                for i in range(0, len(windows), batch):
                    try:
                        model(input_ids=torch.from_numpy(np.ascontiguousarray(windows[i:i + batch, :-1])),
                              use_cache=False)
                    except _Stop:
                        pass
        finally:
            hook.remove()

    def stats(self, i: int, layers: list[PrunableLayer], hessian: bool) -> dict[str, InputStats]:
        """Block ``i``'s layers' input statistics on the current inputs (block ``i`` as it is now)."""
        stats = _new_stats(layers, hessian)
        memo: dict = {}
        make = _stats_hook(stats, memo)
        hooks = [l.module.register_forward_hook(make(l.name)) for l in layers]
        try:
            self._run(i, keep=False, memo=memo)
        finally:
            for h in hooks:
                h.remove()
        return stats

    def advance(self, i: int) -> None:
        """Run block ``i`` (as it is now) on the current inputs; its outputs become the next inputs."""
        self._run(i, keep=True)

    def _run(self, i: int, keep: bool, memo: dict | None = None) -> None:
        with torch.no_grad():
            for b, (h, (args, kw)) in enumerate(zip(self.h, self.extra)):
                if memo is not None:
                    memo.clear()
                out = self.blocks[i](h, *args, **kw)
                if keep:
                    self.h[b] = out[0] if isinstance(out, tuple) else out
        if memo is not None:
            memo.clear()


class _Stop(Exception):
    """Raised by the last statistics hook of a batch to end its forward pass early."""


# ----------------------------------------------------------------------------------- whole model
def as_candidate(p, where: str) -> tuple[SparsityPattern, int]:
    """A pattern, or a candidate text (``2:4``, ``int8``, ``2:4+int4``), as ``(pattern, weight bits)``."""
    if isinstance(p, SparsityPattern):
        return p, 16
    return parse_candidate(p, where)


def resolve_candidates(layers: list[PrunableLayer], patterns) -> dict[str, tuple[SparsityPattern, int]]:
    """``patterns``: one candidate for every layer, or ``{layer name: candidate}`` (missing layers
    dense); each as ``(pattern, weight bits)``."""
    names = {l.name for l in layers}
    if isinstance(patterns, Mapping):
        unknown = sorted(set(patterns) - names)
        if unknown:
            raise SearchError(f"patterns: no prunable layer named {unknown[0]!r}")
        out = {l.name: as_candidate(patterns.get(l.name, "dense"), f"layer {l.name}") for l in layers}
    else:
        p = as_candidate(patterns, "pattern")
        out = {l.name: p for l in layers}
    for l in layers:
        check_pattern(out[l.name][0], l.in_features, f"layer {l.name} ({l.out_features}x{l.in_features})")
    return out


def resolve_patterns(layers: list[PrunableLayer], patterns) -> dict[str, SparsityPattern]:
    """The patterns of :func:`resolve_candidates` (without the weight bits)."""
    return {n: p for n, (p, _) in resolve_candidates(layers, patterns).items()}


@dataclass
class PruneOutcome:
    masks: dict[str, torch.Tensor] = field(default_factory=dict)     # (out, in) bool, per pruned layer
    patterns: dict[str, str] = field(default_factory=dict)           # candidate text, e.g. 2:4+int4
    bits: dict[str, int] = field(default_factory=dict)               # weight bits (16: not quantized)


def prune_model(model: nn.Module, patterns, method: str, calib: np.ndarray | None, skip=DEFAULT_SKIP,
                progress: bool = False, batch: int = 8,
                on_block: Callable[[int, int], None] | None = None, blockwise: bool = True) -> PruneOutcome:
    """Prune ``model`` in place, one-shot: each layer to its candidate (a pattern, ``intB`` or
    ``PATTERN+intB``) by ``method`` (magnitude, wanda, sparsegpt), sequentially over blocks with
    calibration windows ``calib``: by a :class:`BlockRunner` where the model allows it (and
    ``blockwise``), else by full forwards that stop at the block (:func:`collect`); both give the same
    statistics."""
    from tqdm.auto import tqdm
    if method not in METHODS:
        raise SearchError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    layers = require_layers(model, "prune")
    cands = resolve_candidates(layers, patterns)
    if method != "magnitude" and (calib is None or len(calib) == 0):
        raise SearchError(f"--method {method}: needs calibration windows")
    out = PruneOutcome()

    def untouched(l):
        p, bits = cands[l.name]
        return isinstance(p, Dense) and bits >= 16
    todo = [b for b in blocks(layers) if any(not untouched(l) for l in b)]
    bar = tqdm(total=sum(len(b) for b in todo), desc=f"pruning ({method})", unit="layer", disable=not progress,
               leave=False)
    runner = BlockRunner(model, calib, batch) if method != "magnitude" and blockwise else None
    if runner is not None and runner.ok and not all(b[0].block in runner.index for b in todo):
        runner = None
    done = 0          # blocks of runner.blocks already run

    def prune_block(blk, stats):
        for l in blk:
            p, bits = cands[l.name]
            w, m = prune_weight(l.weight_oi().float(), p, method, stats.get(l.name), bits=bits)
            l.set_weight_oi(w.to(l.module.weight.dtype))
            out.masks[l.name] = m
            out.patterns[l.name] = candidate_name(p, bits)
            out.bits[l.name] = bits
            bar.update(1)
    for bi, blk in enumerate(todo):
        blk = [l for l in blk if not untouched(l)]
        if method == "magnitude":
            stats = {}
        elif runner is not None and runner.ok:
            i = runner.index[blk[0].block]
            while done < i:                  # blocks before it, as they are now (pruned or dense)
                runner.advance(done)
                done += 1
            stats = runner.stats(i, blk, hessian=method == "sparsegpt")
        else:
            stats = collect(model, blk, calib, hessian=method == "sparsegpt", batch=batch)
        prune_block(blk, stats)
        if on_block:
            on_block(bi, len(todo))
    bar.close()
    return out


def sparsity_of(model: nn.Module, skip=DEFAULT_SKIP) -> dict[str, float]:
    """Fraction of exact zeros in each prunable layer's weight."""
    return {l.name: float((l.module.weight == 0).float().mean()) for l in prunable_layers(model, skip)}
