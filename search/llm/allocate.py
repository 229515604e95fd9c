"""Per-layer pattern allocation against decode cost, and the allocations it is compared with.

* :func:`sensitivity_table`: each layer's perplexity sensitivity per candidate pattern: the rise of
  the mean next-token loss (nats) on the calibration windows when that layer alone is pruned to that
  pattern by the chosen method (statistics of the dense model), every other layer dense.
* :func:`allocate`: the exact multiple-choice knapsack of :mod:`search.knapsack` (the solver
  ``sparsim search`` uses) maximizing minus the summed sensitivities within the budget, at a ladder
  of budgets at and below the user's; each solution is pruned for real (sequentially, by the method)
  and its perplexity measured on the validation windows; the best that the simulator confirms
  within budget on its real masks wins.
* :func:`owl_densities`: OWL's outlier-weighted per-block densities (Yin et al., "Outlier Weighed
  Layerwise Sparsity (OWL)", ICML 2024): a block's outlier ratio is the share of its Wanda scores
  ``|W|·||x||`` above ``M`` times their mean (M = 5); densities are spread linearly in the ratio over
  ``[D - λ, D + λ]`` (λ = 0.08) with mean D.
* :func:`global_magnitude_masks`: one magnitude threshold over every prunable layer.
"""
from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from workloads import Dense

from ..errors import SearchError
from .costs import DecodeCosts
from .model import PrunableLayer, blocks, collect, prune_model
from .pruners import check_pattern, parse_candidate, prune_weight


def mean_loss(model, windows: np.ndarray, batch: int = 16) -> float:
    from workloads.code_lm import mean_nll
    return mean_nll(model, windows, batch=batch)


class _Resume:
    """The loss of a model on fixed windows, recomputed from one decoder block onward: the inputs of
    every block are captured once on the dense model, so pruning a layer of block ``b`` re-runs
    blocks ``b..`` only. Models laid out as ``model.layers`` + ``model.norm`` + ``lm_head`` (LLaMA,
    Mistral, Qwen) resume; any other model runs whole."""

    def __init__(self, model, windows: np.ndarray):
        self.model = model
        self.targets = torch.from_numpy(np.ascontiguousarray(windows[:, 1:]))
        inner = getattr(model, "model", None)
        self.layers = getattr(inner, "layers", None)
        self.ok = (isinstance(self.layers, torch.nn.ModuleList) and hasattr(inner, "norm")
                   and hasattr(model, "lm_head"))
        self.inputs: list = []
        x = torch.from_numpy(np.ascontiguousarray(windows[:, :-1]))
        if self.ok:
            hooks = [l.register_forward_pre_hook(self._grab, with_kwargs=True) for l in self.layers]
            try:
                with torch.no_grad():
                    model(input_ids=x, use_cache=False)
            finally:
                for h in hooks:
                    h.remove()
        self.x = x

    def _grab(self, mod, args, kwargs):
        self.inputs.append((args, dict(kwargs)))

    def block_of(self, block_name: str) -> int:
        if not self.ok:
            return 0
        for i, l in enumerate(self.layers):
            if any(m is l for _, m in self.model.named_modules() if _ == block_name):
                return i
        return 0

    def loss(self, start: int = 0) -> float:
        with torch.no_grad():
            if not self.ok:
                logits = self.model(input_ids=self.x, use_cache=False).logits
            else:
                args, kw = self.inputs[start]
                h = args[0] if args else kw.pop("hidden_states")
                for j in range(start, len(self.layers)):
                    a, k = self.inputs[j]
                    k = {n: v for n, v in k.items() if n != "hidden_states"}
                    out = self.layers[j](h, *a[1:], **k)
                    h = out[0] if isinstance(out, tuple) else out
                logits = self.model.lm_head(self.model.model.norm(h))
            return float(torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                                           self.targets.reshape(-1)))


def sensitivity_table(model, layers: list[PrunableLayer], costs: DecodeCosts, method: str, calib: np.ndarray,
                      sens_windows: np.ndarray, progress: bool = False, stages=None) -> np.ndarray:
    """``(L, C)`` loss rise (nats) of pruning one layer to one candidate; dense and disallowed: 0 / nan.
    ``stages``: a :class:`search.llm.run.Stages` the calibration and the pairs are timed into."""
    stages = stages or _no_stages
    with stages("calibration statistics"):
        stats = collect(model, layers, calib, hessian=method == "sparsegpt") if method != "magnitude" else {}
    with stages("sensitivity pairs"):
        return _pairs(model, layers, costs, method, stats, sens_windows, progress)


@contextmanager
def _no_stages(name):
    yield


def _pairs(model, layers, costs, method, stats, sens_windows, progress) -> np.ndarray:
    from tqdm.auto import tqdm
    run = _Resume(model, sens_windows)
    base = run.loss(0)
    start = {l.name: run.block_of(l.block) for l in layers}
    L, C = costs.allowed.shape
    out = np.full((L, C), np.nan)
    out[:, 0] = 0.0
    todo = [(li, c) for li in range(L) for c in range(1, C) if costs.allowed[li, c]]
    bar = tqdm(todo, desc="layer sensitivity", unit="pair", disable=not progress, leave=False)
    for li, c in bar:
        layer = layers[li]
        pat, bits = parse_candidate(costs.candidates[c])
        w0 = layer.weight_oi().float().clone()
        w, _ = prune_weight(w0, pat, method, stats.get(layer.name), bits=bits)
        layer.set_weight_oi(w)
        try:
            out[li, c] = run.loss(start[layer.name]) - base
        finally:
            layer.set_weight_oi(w0)
    return out


@dataclass
class Candidate:
    assignment: np.ndarray
    budget_fraction: float           # of the user's budget the knapsack was solved at
    proxy: float                     # summed sensitivity (nats)
    table_cost: float                # objective per token from the tables
    validation_ppl: float = math.nan
    simulated: dict = field(default_factory=dict)
    within_budget: bool = False
    outcome: object = None           # the PruneOutcome (masks, weight bits) once pruned


def knapsack(costs: DecodeCosts, sens: np.ndarray, objective: str, budget_abs: float) -> np.ndarray:
    """The assignment with the least summed sensitivity whose table cost is at most ``budget_abs``."""
    from ..knapsack import choose_exact
    value = -np.where(np.isfinite(sens), sens, 0.0)
    # the solver scales costs by the budget and expects it >= 1: TPOT goes in nanoseconds (energy is in pJ)
    unit = 1e9 if objective == "tpot" else 1.0
    return choose_exact(value, costs.table(objective).astype(np.float64) * unit, costs.allowed,
                        (budget_abs - costs.other(objective)) * unit)


def allocate(model, layers, costs: DecodeCosts, sens: np.ndarray, method: str, objective: str, budget_abs: float,
             calib: np.ndarray, val: np.ndarray, simulate, ladder=(1.0, 0.99, 0.98, 0.96, 0.93),
             progress: bool = False, stages=None):
    """Solve, prune and measure the candidates (see the module docstring). ``simulate(model, outcome)``
    returns the pruned model's ``{"tpot_s", "energy_per_token_pj"}`` on its real masks (``outcome``:
    the :class:`search.llm.model.PruneOutcome`, with the weight bits and masks).

    Returns ``(best Candidate, its pruned model, every Candidate)``."""
    from workloads.code_lm import perplexity
    key = "tpot_s" if objective == "tpot" else "energy_per_token_pj"
    other = costs.other(objective)
    lo = costs.cheapest(objective)
    seen, cands = set(), []
    for f in ladder:
        b = other + f * (budget_abs - other)
        if b < lo:
            continue
        a = knapsack(costs, sens, objective, b)
        if tuple(a) in seen:
            continue
        seen.add(tuple(a))
        cands.append(Candidate(a, f, float(np.nansum(sens[np.arange(len(a)), a])), costs.total(a, objective)))
    stages = stages or _no_stages
    best, best_model = None, None
    for cand in cands:
        m = copy.deepcopy(model)
        with stages("candidate pruning"):
            cand.outcome = prune_model(m, costs.patterns(cand.assignment), method, calib, progress=progress)
        cand.simulated = simulate(m, cand.outcome)
        cand.within_budget = cand.simulated[key] <= budget_abs * (1 + 1e-12)
        with stages("validation perplexity"):
            cand.validation_ppl = perplexity(m, val)
        if cand.within_budget and (best is None or cand.validation_ppl < best.validation_ppl):
            best, best_model = cand, m
    if best is None:
        raise SearchError(f"allocation: no candidate met the budget on its real masks "
                          f"({[round(c.simulated[key] / budget_abs, 4) for c in cands]} x budget)")
    return best, best_model, cands


# ----------------------------------------------------------------------------------- OWL
def outlier_ratios(layers: list[PrunableLayer], stats, m: float = 5.0) -> list[float]:
    """Per block: the share of Wanda scores ``|W|·||x||`` above ``m`` x the block's mean score (OWL's
    layer-wise outlier distribution, LOD)."""
    out = []
    for blk in blocks(layers):
        scores = [(l.weight_oi().float().abs() * stats[l.name].outliers().float().reshape(1, -1)).reshape(-1)
                  for l in blk]
        s = torch.cat(scores)
        out.append(float((s > m * s.mean()).float().mean()))
    return out


def owl_densities(ratios, density: float, lam: float = 0.08) -> np.ndarray:
    """OWL's per-block densities: linear in the outlier ratio over ``[density - lam, density + lam]``,
    mean ``density`` (more outliers, denser)."""
    r = np.asarray(ratios, dtype=np.float64)
    span = r.max() - r.min()
    d = np.zeros_like(r) if span == 0 else (r - r.min()) / span * 2 * lam
    d = d - d.mean() + density
    return np.clip(d, 1e-3, 1.0)


def owl_patterns(layers, ratios, density: float, lam: float = 0.08) -> dict:
    dens = owl_densities(ratios, density, lam)
    out = {}
    for d, blk in zip(dens, blocks(layers)):
        for l in blk:
            out[l.name] = "dense" if d >= 1.0 else f"unstructured:{d:.6f}"
    return out


def global_magnitude(model, layers: list[PrunableLayer], density: float) -> dict:
    """Prune ``model`` in place to one magnitude threshold over every prunable layer (keeps
    ``round(density x total)`` weights); returns the masks."""
    allw = torch.cat([l.weight_oi().abs().reshape(-1).float() for l in layers])
    k = int(density * allw.numel() + 0.5)
    if k >= allw.numel():
        return {l.name: torch.ones_like(l.weight_oi(), dtype=torch.bool) for l in layers}
    thr = torch.kthvalue(allw, allw.numel() - k).values   # keep the entries strictly above it
    masks = {}
    for l in layers:
        w = l.weight_oi().float()
        m = w.abs() > thr
        l.set_weight_oi(w * m)
        masks[l.name] = m
    return masks


def equal_budget(make, simulate, key: str, budget_abs: float, lo: float = 0.02, hi: float = 1.0, steps: int = 10):
    """The densest ``make(density)`` model whose simulated ``key`` is within ``budget_abs``, by
    bisection on the density; returns ``(density, model, simulated)`` (None when even ``lo`` is over)."""
    m = make(lo)
    s = simulate(m)
    if s[key] > budget_abs:
        return None
    best = (lo, m, s)
    a, b = lo, hi
    for _ in range(steps):
        mid = 0.5 * (a + b)
        m = make(mid)
        s = simulate(m)
        if s[key] <= budget_abs:
            best, a = (mid, m, s), mid
        else:
            b = mid
    return best


def check_candidates(layers, candidates) -> list:
    """Parse and check the candidates (``PATTERN[+intB]``) against every layer (N:M's M must divide
    each input dimension); ``[(pattern, bits)]``, dense first."""
    pats = []
    for c in candidates:
        p, bits = parse_candidate(c)
        for l in layers:
            check_pattern(p, l.in_features, f"--candidates {c}: layer {l.name} ({l.out_features}x{l.in_features})")
        pats.append((p, bits))
    if not any(isinstance(p, Dense) and b == 16 for p, b in pats):
        pats.insert(0, (Dense(), 16))
    return pats
