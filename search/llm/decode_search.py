"""Per-layer sparsity of an LLM against its decode time per output token or energy per token.

The table (:func:`llm_cost_table`) holds, for every weight layer of the traced blocks and every
candidate pattern, what the layer adds to the run's mean TPOT and decode energy per token
(:func:`simulator.llm.layer_costs` on the model masked by that candidate) and its retained weight
magnitude (the magnitude proxy: ``sum |W| over kept weights``, in units of the blocks' total).
The LM head stays dense. Layers are independent in the fast engine, so an assignment's TPOT is the
table sum plus the attention's fixed part, exactly; :func:`search_llm` picks the assignment of the
most retained magnitude within ``budget x`` the dense model's TPOT (or energy) with the exact
multiple-choice knapsack (:func:`search.knapsack.choose_exact`), and re-runs the model masked that
way to report it (the tests check the two agree).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import SearchError

#: objective name -> the layer_costs / fixed_costs key it budgets
OBJECTIVES = {"tpot": "decode_s_per_token", "token-energy": "decode_energy_j_per_token"}


@dataclass
class LlmCostTable:
    """``cost[metric]``: ``(L, C)`` per layer and candidate; ``value``: retained magnitude ``(L, C)``."""

    layer_names: list
    candidates: list
    cost: dict
    value: np.ndarray
    fixed: dict
    head: dict = field(default_factory=dict)      # the LM head's (dense) costs, per metric


def llm_cost_table(model, acc, batch: int, prompt: int, generate: int,
                   candidates=("dense", "2:4", "1:4", "2:8")) -> LlmCostTable:
    """See the module docstring."""
    from simulator.llm import fixed_costs, layer_costs
    from workloads.patterns import parse_pattern
    pats = [parse_pattern(c) for c in candidates]
    if not any(str(p) == "dense" for p in pats):
        pats.insert(0, parse_pattern("dense"))
    head = {l.name for l in model.head}
    names = [l.name for b in model.blocks for l in b]
    total_mag = sum(float(np.abs(l.gemm_weight()).sum()) * model.scale for b in model.blocks for l in b) or 1.0
    cost = {k: np.zeros((len(names), len(pats))) for k in OBJECTIVES.values()}
    value = np.zeros((len(names), len(pats)))
    head_cost = dict.fromkeys(OBJECTIVES.values(), 0.0)
    for ci, p in enumerate(pats):
        m = model.sparsify(p)
        rows = {r["name"]: r for r in layer_costs(m, acc, batch, prompt, generate)}
        for li, layer in enumerate(l for b in m.blocks for l in b):
            for k in cost:
                cost[k][li, ci] = rows[layer.name][k]
            w = np.abs(layer.gemm_weight())
            mask = layer.gemm_mask()
            value[li, ci] = float((w if mask is None else w * mask).sum()) * model.scale / total_mag
        if ci == 0:
            for k in head_cost:
                head_cost[k] = sum(rows[n][k] for n in head)
    return LlmCostTable(names, [str(p) for p in pats], cost, value, fixed_costs(model, acc, batch, prompt, generate),
                        head_cost)


def search_llm(model, acc, batch: int, prompt: int, generate: int, objective: str = "tpot", budget: float = 0.8,
               candidates=("dense", "2:4", "1:4", "2:8")) -> dict:
    """The assignment ``{layer name: pattern}`` with the most retained magnitude whose decode
    ``objective`` (``tpot`` or ``token-energy``) is at most ``budget`` x the dense model's, with
    the table's prediction and the re-simulated run: ``{"assignment", "predicted", "dense", "run",
    "proxy", "table"}``."""
    from simulator.llm import run_llm
    if objective not in OBJECTIVES:
        raise SearchError(f"--objective {objective}: expected one of {', '.join(OBJECTIVES)} for an LLM")
    if not isinstance(budget, (int, float)) or not 0 < budget <= 1:
        raise SearchError(f"--budget {budget}: expected a fraction of the dense model's {objective} in (0, 1]")
    key = OBJECTIVES[objective]
    table = llm_cost_table(model, acc, batch, prompt, generate, candidates)
    c = table.cost[key]
    outside = table.fixed[key] + table.head[key]
    dense = outside + c[:, 0].sum()
    floor = outside + c.min(axis=1).sum()
    limit = budget * dense - outside
    if floor > budget * dense:
        raise SearchError(f"--budget {budget:g}: the cheapest assignment of {', '.join(table.candidates)} costs "
                          f"{floor / dense:.3f} x the dense {objective}; nothing fits")
    from ..knapsack import choose_exact
    allowed = np.ones_like(c, dtype=bool)
    # in millionths of the dense figure: choose_exact scales its constraint by max(budget, 1), so a
    # budget below 1 would be read as 1
    unit = dense / 1e6
    a = choose_exact(table.value, c / unit, allowed, limit / unit)
    rows = np.arange(len(a))
    assignment = {n: table.candidates[int(i)] for n, i in zip(table.layer_names, a)}
    run = run_llm(model.sparsify(assignment), acc, batch, prompt, generate)
    return {"assignment": assignment, "predicted": outside + c[rows, a].sum(), "dense": dense, "run": run,
            "proxy": float(table.value[rows, a].sum()), "table": table}
