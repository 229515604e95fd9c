"""Budgeted per-layer choice: a multiple-choice knapsack.

Maximize ``sum_l value[l, a_l]`` subject to ``sum_l cost[l, a_l] <= budget`` with one allowed
candidate ``a_l`` per layer.

* :func:`choose_exact` solves it exactly as a 0-1 integer program with SciPy's ``milp`` (HiGHS).
* :func:`choose_greedy` is the cheap alternative in the spirit of HALP (Shen et al., NeurIPS 2022,
  latency-saliency knapsack solved greedily): from the best-value assignment, repeatedly make the
  switch that loses the least value per unit of cost saved, until the budget is met.
"""
from __future__ import annotations

import numpy as np

from .errors import SearchError


#: Seconds HiGHS may spend proving optimality before the best assignment found so far is returned.
TIME_LIMIT = 30.0


def choose_exact(value: np.ndarray, cost: np.ndarray, allowed: np.ndarray, budget: float,
                 time_limit: float = TIME_LIMIT, info: dict | None = None) -> np.ndarray:
    """The best-value assignment within ``budget``, proven optimal by HiGHS (branch and bound,
    ``mip_rel_gap=0``) unless ``time_limit`` seconds pass first: nearly symmetric problems (BERT's
    twelve blocks of equal shapes) can take long to prove. Then the better of HiGHS's best
    assignment and greedy's is returned and ``info`` (if given) says so: ``info["optimal"]``
    (bool) and ``info["gap"]`` (relative gap to HiGHS's upper bound, 0 when proven)."""
    from scipy.optimize import LinearConstraint, milp
    from scipy.sparse import csr_array
    L, C = value.shape
    li, ci = np.nonzero(allowed)
    nv = li.size
    scale = float(budget) if budget > 0 else 1.0   # costs in units of the budget (seconds or cycles alike)
    one_each = csr_array((np.ones(nv), (li, np.arange(nv))), shape=(L, nv))
    cost_row = (cost[li, ci] / scale)[None, :]
    rows = np.arange(L)
    # the solver's feasibility tolerance is ~1e-7 of the budget: if its answer overshoots in exact
    # arithmetic, shrink the bound until the exact sum fits
    for slack in (0.0, 1e-9, 1e-7, 1e-5, 1e-3):   # 0 first: an assignment that costs exactly the budget fits
        res = milp(c=-value[li, ci], integrality=np.ones(nv), bounds=(0, 1),
                   constraints=[LinearConstraint(one_each, 1, 1), LinearConstraint(cost_row, -np.inf, 1.0 - slack)],
                   options={"disp": False, "mip_rel_gap": 0.0, "time_limit": float(time_limit)})
        if res.x is None:
            break
        x = res.x > 0.5
        a = np.zeros(L, dtype=np.int64)
        a[li[x]] = ci[x]
        if np.count_nonzero(x) == L and cost[rows, a].sum() <= budget:
            optimal = res.status == 0
            gap = 0.0
            if not optimal:
                try:
                    g = choose_greedy(value, cost, allowed, budget)
                    if value[rows, g].sum() > value[rows, a].sum():
                        a = g
                except SearchError:
                    pass
                bound = -getattr(res, "mip_dual_bound", np.nan)
                got = value[rows, a].sum()
                gap = float((bound - got) / abs(bound)) if np.isfinite(bound) and bound else float("nan")
            if info is not None:
                info.update(optimal=bool(optimal), gap=max(0.0, gap) if gap == gap else gap)
            return a
    raise SearchError(f"budget {budget:,.0f}: the exact solver found no assignment within it "
                      f"({getattr(res, 'message', '')})")


def choose_greedy(value: np.ndarray, cost: np.ndarray, allowed: np.ndarray, budget: float) -> np.ndarray:
    L = value.shape[0]
    rows = np.arange(L)
    v = np.where(allowed, value, -np.inf)
    a = np.argmax(v, axis=1)                      # best value first (ties: lower index, i.e. dense)
    total = cost[rows, a].sum()
    while total > budget:
        cur_v, cur_c = v[rows, a][:, None], cost[rows, a][:, None]
        saved = cur_c - cost
        lost = cur_v - v
        ok = allowed & (saved > 0)
        if not ok.any():
            break
        ratio = np.where(ok, np.maximum(lost, 0.0) / np.where(ok, saved, 1.0), np.inf)
        l, c = np.unravel_index(np.argmin(ratio), ratio.shape)
        total -= saved[l, c]
        a[l] = c
    if cost[rows, a].sum() > budget:
        raise SearchError(f"budget {budget:,.0f}: the greedy allocation cannot meet it")
    return a.astype(np.int64)


def pareto_front(value: np.ndarray, cost: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every non-dominated (cost, value) total of the multiple-choice problem, exactly: the complete
    2-objective front of ``min sum cost[l, a_l]``, ``max sum value[l, a_l]``, one assignment per point.

    Nemhauser and Ullmann's merge (Management Science 15(9), 1969) over the rows: the front after row
    ``l`` is the non-dominated part of (front after ``l - 1``) + (row ``l``'s allowed options), and a
    back-pointer per point recovers its assignment. No budget ladder and no solver time limit: the
    best assignment within *any* budget is the front's costliest point within it (ties in value: the
    cheaper one; equal cost and value: one of them). Returns ``(costs (P,), values (P,), assignments
    (P, L))`` sorted by cost ascending (values then strictly ascending)."""
    value = np.asarray(value, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    L = value.shape[0]
    fc, fv = np.zeros(1), np.zeros(1)
    parents, choices = [], []
    for li in range(L):
        opts = np.flatnonzero(allowed[li])
        if opts.size == 0:
            raise SearchError(f"pareto_front: row {li} allows no candidate")
        c = (fc[:, None] + cost[li, opts][None, :]).ravel()
        v = (fv[:, None] + value[li, opts][None, :]).ravel()
        # cost ascending, value descending: a point survives when its value beats every cheaper one
        order = np.lexsort((-v, c))
        c, v = c[order], v[order]
        best_before = np.concatenate([[-np.inf], np.maximum.accumulate(v)[:-1]])
        keep = v > best_before
        src = order[keep]
        fc, fv = c[keep], v[keep]
        parents.append(src // opts.size)
        choices.append(opts[src % opts.size])
    idx = np.arange(fc.size)
    out = np.zeros((fc.size, L), dtype=np.int64)
    for li in range(L - 1, -1, -1):
        out[:, li] = choices[li][idx]
        idx = parents[li][idx]
    return fc, fv, out
