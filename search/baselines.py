"""Uniform baselines: one pattern everywhere, and layer-wise density allocations at a matched
global density, each pruned by magnitude within its layers.

* ``global magnitude``: one threshold on ``|W|`` over all prunable layers.
* ``LAMP`` (Lee et al., "Layer-adaptive sparsity for the magnitude-based pruning", ICLR 2021):
  score ``w_u^2 / sum_{v >= u} w_v^2`` over each layer's weights sorted by magnitude, one global
  threshold on the scores.
* ``ERK`` (Evci et al., "Rigging the Lottery", ICML 2020): layer density proportional to
  ``(n_in + n_out + kh + kw) / (n_in n_out kh kw)`` (``(n_in + n_out) / (n_in n_out)`` for linear),
  scaled to the global density, layers that would exceed 1 kept dense.

Pinned layers stay dense in every baseline, as in the search.
"""
from __future__ import annotations

import math

import numpy as np

from workloads import Unstructured, Workload, parse_pattern

from .cost import HardwareCost
from .masks import _top_flat


def _prunable_layers(cost: HardwareCost) -> list[int]:
    """Layers with a weight that are not pinned (they allow more than dense, or only dense was asked)."""
    out = []
    for li, l in enumerate(cost.workload.layers):
        if l.weight is None:
            continue
        if any(_pinned(l, g) for g in cost.pins):
            continue
        out.append(li)
    return out


def _pinned(layer, glob) -> bool:
    from .candidates import _matches
    return _matches(layer, glob)


def _with_masks(cost: HardwareCost, masks: dict[int, np.ndarray], label: str) -> Workload:
    layers = list(cost.workload.layers)
    for li, layer in enumerate(layers):
        if li in masks:
            layers[li] = layer.with_gemm_mask(masks[li], parse_pattern(label) if ":" in label else None)
        elif layer.has_weight or layer.mask is not None:
            layers[li] = layer.replace(mask=None, pattern=None)
    return cost.workload.replace(layers=tuple(layers))


def uniform(cost: HardwareCost, pattern) -> Workload:
    """Every prunable layer masked by ``pattern`` (magnitude)."""
    p = parse_pattern(pattern)
    c = cost.candidate_names.index(str(p)) if str(p) in cost.candidate_names else None
    masks = {}
    for li in _prunable_layers(cost):
        # a candidate's mask is already in the table (the same mask pick_mask would give)
        gm = cost.gemm_mask(li, c) if c is not None and cost.allowed[li, c] else cost.pick_mask(li, p)
        if gm is not None:
            masks[li] = gm
    return _with_masks(cost, masks, str(p))


def _weights(cost, lis):
    return {li: np.abs(np.ascontiguousarray(cost.workload.layers[li].gemm_weight(), dtype=np.float64)) for li in lis}


def _global_top(cost: HardwareCost, scores: dict, density: float, label: str) -> Workload:
    """Keep the ``density`` share of all layers' weights with the highest ``scores`` (one threshold)."""
    lis = list(scores)
    keep = _top_flat(np.concatenate([scores[li].ravel() for li in lis]),
                     int(math.floor(density * sum(scores[li].size for li in lis) + 0.5)))
    masks, off = {}, 0
    for li in lis:
        masks[li] = keep[off:off + scores[li].size].reshape(scores[li].shape)
        off += scores[li].size
    return _with_masks(cost, masks, label)


def global_magnitude(cost: HardwareCost, density: float, w=None) -> Workload:
    return _global_top(cost, w or _weights(cost, _prunable_layers(cost)), density, "global")


def lamp(cost: HardwareCost, density: float, w=None) -> Workload:
    lis = _prunable_layers(cost)
    w = w or _weights(cost, lis)
    scores = {}
    for li in lis:
        sq = w[li].ravel() ** 2
        order = np.argsort(sq)        # ties get the tail sum of their place: deterministic either way
        tail = np.cumsum(sq[order][::-1])[::-1]          # sum over weights at least as large
        s = np.empty_like(sq)
        s[order] = sq[order] / np.where(tail > 0, tail, 1.0)
        scores[li] = s.reshape(w[li].shape)
    return _global_top(cost, scores, density, "lamp")


def erk_densities(cost: HardwareCost, density: float) -> dict[int, float]:
    lis = _prunable_layers(cost)
    sizes, raw = {}, {}
    for li in lis:
        layer = cost.workload.layers[li]
        shape = layer.weight.shape
        sizes[li] = int(np.prod(shape))
        raw[li] = sum(shape) / float(np.prod(shape))
    total = sum(sizes.values())
    dense: set[int] = set()
    while True:
        budget = density * total - sum(sizes[li] for li in dense)
        rest = [li for li in lis if li not in dense]
        scale = budget / max(1e-300, sum(raw[li] * sizes[li] for li in rest))
        over = [li for li in rest if raw[li] * scale > 1.0]
        if not over:
            break
        dense |= set(over)
    return {li: (1.0 if li in dense else max(1e-6, min(1.0, raw[li] * scale))) for li in lis}


def erk(cost: HardwareCost, density: float) -> Workload:
    masks = {}
    for li, d in erk_densities(cost, density).items():
        if d < 1.0:
            masks[li] = cost.pick_mask(li, Unstructured(d))
    return _with_masks(cost, masks, "erk")


#: The uniform patterns every search is compared with.
UNIFORM = ("2:4", "1:4", "2:8")


def all_baselines(cost: HardwareCost, patterns=UNIFORM, density: float = 0.5) -> dict[str, Workload]:
    """Name -> masked workload: dense, uniform patterns, global magnitude, LAMP and ERK at ``density``."""
    out = {"dense": uniform(cost, "dense")}
    for p in patterns:
        out[f"uniform {p}"] = uniform(cost, p)
    out.update(allocations(cost, density))
    return out


def allocations(cost: HardwareCost, density: float = 0.5) -> dict[str, Workload]:
    """Global magnitude, LAMP and ERK at ``density`` (over the prunable layers)."""
    out = {}
    w = _weights(cost, _prunable_layers(cost))
    out[f"global magnitude {density:g}"] = global_magnitude(cost, density, w)
    out[f"LAMP {density:g}"] = lamp(cost, density, w)
    out[f"ERK {density:g}"] = erk(cost, density)
    return out
