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

from workloads import Dense, SparsityPattern, parse_pattern

from ..errors import SearchError
from .pruners import METHODS, check_pattern, prune_weight

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


def collect(model: nn.Module, layers: list[PrunableLayer], windows: np.ndarray, hessian: bool,
            batch: int = 8) -> dict[str, InputStats]:
    """Run ``windows`` (``(W, T+1)`` token windows; the first T tokens are fed) through ``model``
    and accumulate each layer's :class:`InputStats`."""
    stats = {l.name: InputStats(torch.zeros(l.in_features, dtype=torch.float64),
                                torch.zeros(l.in_features, l.in_features, dtype=torch.float64) if hessian else None)
             for l in layers}
    hooks = []
    seen: set = set()

    def hook(name):
        def fn(mod, inp, out):
            x = inp[0].detach().reshape(-1, inp[0].shape[-1]).double()
            s = stats[name]
            s.sq_norm += (x * x).sum(0)
            if s.xtx is not None:
                s.xtx += x.t() @ x
            s.n += x.shape[0]
            seen.add(name)
            if len(seen) == len(stats):      # every layer has its inputs: the rest of the forward is not needed
                raise _Stop
        return fn
    for l in layers:
        hooks.append(l.module.register_forward_hook(hook(l.name)))
    kw = {"use_cache": False} if hasattr(model, "config") else {}     # a transformers model: no KV cache
    try:
        with torch.no_grad():
            for i in range(0, len(windows), batch):
                seen.clear()
                try:
                    model(input_ids=torch.from_numpy(np.ascontiguousarray(windows[i:i + batch, :-1])), **kw)
                except _Stop:
                    pass
    finally:
        for h in hooks:
            h.remove()
    return stats


class _Stop(Exception):
    """Raised by the last statistics hook of a batch to end its forward pass early."""


# ----------------------------------------------------------------------------------- whole model
def as_pattern(p, where: str) -> SparsityPattern:
    if isinstance(p, SparsityPattern):
        return p
    try:
        return parse_pattern(p)
    except ValueError as e:
        raise SearchError(f"{where}: {e}") from None


def resolve_patterns(layers: list[PrunableLayer], patterns) -> dict[str, SparsityPattern]:
    """``patterns``: one pattern for every layer, or ``{layer name: pattern}`` (missing layers dense)."""
    names = {l.name for l in layers}
    if isinstance(patterns, Mapping):
        unknown = sorted(set(patterns) - names)
        if unknown:
            raise SearchError(f"patterns: no prunable layer named {unknown[0]!r}")
        out = {l.name: as_pattern(patterns.get(l.name, "dense"), f"layer {l.name}") for l in layers}
    else:
        p = as_pattern(patterns, "pattern")
        out = {l.name: p for l in layers}
    for l in layers:
        check_pattern(out[l.name], l.in_features, f"layer {l.name} ({l.out_features}x{l.in_features})")
    return out


@dataclass
class PruneOutcome:
    masks: dict[str, torch.Tensor] = field(default_factory=dict)     # (out, in) bool, per pruned layer
    patterns: dict[str, str] = field(default_factory=dict)


def prune_model(model: nn.Module, patterns, method: str, calib: np.ndarray | None, skip=DEFAULT_SKIP,
                progress: bool = False, batch: int = 8,
                on_block: Callable[[int, int], None] | None = None) -> PruneOutcome:
    """Prune ``model`` in place, one-shot: each layer to its pattern by ``method`` (magnitude, wanda,
    sparsegpt), sequentially over blocks with calibration windows ``calib`` (see :func:`collect`)."""
    from tqdm.auto import tqdm
    if method not in METHODS:
        raise SearchError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    layers = require_layers(model, "prune")
    pats = resolve_patterns(layers, patterns)
    if method != "magnitude" and (calib is None or len(calib) == 0):
        raise SearchError(f"--method {method}: needs calibration windows")
    out = PruneOutcome()
    todo = [b for b in blocks(layers) if any(not isinstance(pats[l.name], Dense) for l in b)]
    bar = tqdm(total=sum(len(b) for b in todo), desc=f"pruning ({method})", unit="layer", disable=not progress,
               leave=False)
    for bi, blk in enumerate(todo):
        blk = [l for l in blk if not isinstance(pats[l.name], Dense)]
        stats = collect(model, blk, calib, hessian=method == "sparsegpt", batch=batch) if method != "magnitude" \
            else {}
        for l in blk:
            w, m = prune_weight(l.weight_oi().float(), pats[l.name], method, stats.get(l.name))
            l.set_weight_oi(w.to(l.module.weight.dtype))
            out.masks[l.name] = m
            out.patterns[l.name] = str(pats[l.name])
            bar.update(1)
        if on_block:
            on_block(bi, len(todo))
    bar.close()
    return out


def sparsity_of(model: nn.Module, skip=DEFAULT_SKIP) -> dict[str, float]:
    """Fraction of exact zeros in each prunable layer's weight."""
    return {l.name: float((l.module.weight == 0).float().mean()) for l in prunable_layers(model, skip)}
