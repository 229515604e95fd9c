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
from .errors import SearchError
from .masks import _top_flat, pick


def _prunable_layers(cost: HardwareCost) -> list[int]:
    """Layers with a weight that are not pinned (they allow more than dense, or only dense was asked)."""
    return prunable_layers(cost.workload, cost.pins)


def prunable_layers(workload: Workload, pins=()) -> list[int]:
    """Indices of the layers of ``workload`` with a weight that no pin glob matches."""
    from .candidates import _matches
    return [li for li, l in enumerate(workload.layers)
            if l.weight is not None and not any(_matches(l, g) for g in pins)]


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


def _magnitudes(workload: Workload, lis) -> dict[int, np.ndarray]:
    """``|W|`` in GEMM layout, float32 as the cost tables score it (float64 |W| orders the same)."""
    return {li: np.abs(np.ascontiguousarray(workload.layers[li].gemm_weight())) for li in lis}


def _global_counts(scores: dict, density: float) -> dict[int, int]:
    """How many weights each layer keeps when one threshold keeps the ``density`` share of all
    layers' ``scores`` (ties at the threshold: earlier layers and positions first)."""
    lis = list(scores)
    keep = _top_flat(np.concatenate([scores[li].ravel() for li in lis]),
                     int(math.floor(density * sum(scores[li].size for li in lis) + 0.5)))
    out, off = {}, 0
    for li in lis:
        out[li] = int(np.count_nonzero(keep[off:off + scores[li].size]))
        off += scores[li].size
    return out


def _lamp_scores(w: dict) -> dict[int, np.ndarray]:
    """LAMP's scores ``w_u^2 / sum_{v >= u} w_v^2`` of each layer, in ascending order of |W| (the
    scores rise along it, so a global threshold keeps each layer's largest weights; only the
    per-layer counts are used, so the order of the weights themselves is not needed)."""
    scores = {}
    for li, wl in w.items():
        sq = np.sort(wl.ravel()).astype(np.float64) ** 2
        tail = np.cumsum(sq[::-1])[::-1]          # sum over weights at least as large
        scores[li] = sq / np.where(tail > 0, tail, 1.0)
    return scores


def erk_densities(cost_or_workload, density: float, pins=()) -> dict[int, float]:
    """ERK's layer densities (layer index -> density in (0, 1]) at global ``density``."""
    wl, pins = ((cost_or_workload.workload, cost_or_workload.pins) if isinstance(cost_or_workload, HardwareCost)
                else (cost_or_workload, pins))
    lis = prunable_layers(wl, pins)
    sizes, raw = {}, {}
    for li in lis:
        shape = wl.layers[li].weight.shape
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


def allocation_patterns(workload: Workload, pins=(), density: float = 0.5) -> dict[str, dict[int, Unstructured]]:
    """Global magnitude, LAMP and ERK at ``density``, each as per-layer unstructured patterns
    ``{baseline name: {layer index: Unstructured(k / size)}}`` (a layer kept whole is left out).

    All three prune by magnitude inside each layer; they differ only in how many weights ``k`` each
    layer keeps. One global threshold on |W| (or on LAMP's scores, which order a layer's weights as
    |W| does) keeps each layer's ``k`` largest, exactly what ``Unstructured(k / size)`` picks, so the
    baselines are assignments of per-layer candidates: the search can start from them and its cost
    tables hold their exact cost. A layer keeps at least one weight.
    A parameter that several layers use (tied weights) counts once and its layers share its pattern.
    """
    followers = _uses(workload)
    pinned = {li for li, l in enumerate(workload.layers) if l.weight is not None} - set(prunable_layers(workload, pins))
    lis = [li for li in prunable_layers(workload, pins) if li in followers
           and not pinned.intersection(followers[li])]
    w = _magnitudes(workload, lis)
    sizes = {li: w[li].size for li in lis}
    erk = erk_densities(workload, density, pins)
    counts = {f"global magnitude {density:g}": _global_counts(w, density),
              f"LAMP {density:g}": _global_counts(_lamp_scores(w), density),
              f"ERK {density:g}": {li: int(math.floor(erk[li] * sizes[li] + 0.5)) for li in lis}}
    return {name: {lj: Unstructured(max(1, k) / sizes[li]) for li, k in c.items() if k < sizes[li]
                   for lj in followers[li]}
            for name, c in counts.items()}


def _uses(workload: Workload) -> dict[int, list[int]]:
    """``{first layer using a parameter: every layer using it}`` over the layers with a weight."""
    first: dict[tuple, int] = {}
    out: dict[int, list[int]] = {}
    for li, l in enumerate(workload.layers):
        if l.weight is None:
            continue
        key = (l.weight_name, tuple(l.gemm_shape), str(l.weight_layout)) if l.weight_name else (li,)
        lead = first.setdefault(key, li)
        out.setdefault(lead, []).append(li)
    return out


def _allocation(cost: HardwareCost, pats: dict[int, Unstructured], label: str) -> Workload:
    w = _magnitudes(cost.workload, list(pats))
    return _with_masks(cost, {li: pick(p, w[li]) for li, p in pats.items()}, label)


def global_magnitude(cost: HardwareCost, density: float) -> Workload:
    return _allocation(cost, allocation_patterns(cost.workload, cost.pins, density)[f"global magnitude {density:g}"],
                       "global")


def lamp(cost: HardwareCost, density: float) -> Workload:
    return _allocation(cost, allocation_patterns(cost.workload, cost.pins, density)[f"LAMP {density:g}"], "lamp")


def erk(cost: HardwareCost, density: float) -> Workload:
    return _allocation(cost, allocation_patterns(cost.workload, cost.pins, density)[f"ERK {density:g}"], "erk")


def allocation_extras(allocs: dict[str, dict[int, Unstructured]], workload: Workload) -> dict[str, list]:
    """``HardwareCost(extra=...)`` input: each layer's patterns from ``allocation_patterns``."""
    out: dict[str, list] = {}
    for pats in allocs.values():
        for li, p in pats.items():
            out.setdefault(workload.layers[li].name, []).append(p)
    return out


def allocation_assignment(cost: HardwareCost, pats: dict[int, Unstructured]) -> np.ndarray:
    """The table assignment of one allocation (its layers' extra candidates, the rest dense)."""
    a = np.zeros(len(cost.layer_names), dtype=np.int64)
    for li, p in pats.items():
        hits = [c for c in cost.options[li] if cost.candidates[c] == p]
        if not hits:
            raise SearchError(f"baselines: layer '{cost.layer_names[li]}' has no candidate {p!r}; "
                              f"build the table with extra=allocation_extras(...)")
        a[li] = hits[0]
    return a


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
    """Global magnitude, LAMP and ERK at ``density`` (over the prunable layers), masked by magnitude."""
    return {name: _allocation(cost, pats, name.split()[0].lower())
            for name, pats in allocation_patterns(cost.workload, cost.pins, density).items()}
