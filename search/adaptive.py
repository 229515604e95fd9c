"""Accuracy in the loop: which assignments to spend expensive evaluations (fine-tune + measure) on.

The hardware cost of every assignment and a one-shot proxy are cheap; an evaluation (fine-tuning
the pruned model and measuring its accuracy) is not. :func:`proxy_pool` lists the candidates the
proxy thinks are worth evaluating (its first few non-dominated fronts over (proxy, cost), from all
assignments when there are few, else the exact choice at many budgets). :func:`select_adaptive`
spends a fixed number of evaluations on them one at a time:

1. ``initial`` candidates, if any (e.g. the uniform patterns);
2. ``spread``, if any: at each fraction ``f``, the proxy's best candidate costing at most ``f`` of
   the way from the cheapest to the dearest candidate;
3. then, each time, the candidate with the largest *hypervolume gain* over the measured front when
   its value is predicted optimistically: a least-squares line from proxy score to the values
   measured so far, minus ``kappa`` residual standard deviations (a lower confidence bound, as in
   GP-UCB, Srinivas et al., ICML 2010). So the evaluations go where the measured front has its
   largest gap that the proxy says a candidate can fill. Before two different scores are measured
   the line is flat, which favours the cheapest candidates first.

``kappa=2`` and no spread phase were chosen on the digits models with seeds 5..9
(``benchmarks/bench_prune.py`` reports seeds 0..4): spreading cost evaluations that the gap rule
spends better, and ``kappa`` 2-3 beat 0-1. The benchmark seeds the selection with the uniform
patterns (``initial``) so that its front weakly dominates them by construction.

Every call of ``evaluate`` is one evaluation; no candidate is evaluated twice; exactly
``min(evals, len(pool))`` calls are made. A random search given the same number of evaluations is
the fair comparison (``benchmarks/bench_prune.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .errors import SearchError

PHASES = ("initial", "spread", "gap")


@dataclass(frozen=True)
class Selection:
    """What :func:`select_adaptive` evaluated, in order: candidate indices, their measured values
    (minimized), and the phase that picked each (``initial`` / ``spread`` / ``gap``)."""

    order: tuple[int, ...]
    values: tuple[float, ...]
    phases: tuple[str, ...]

    @property
    def evaluations(self) -> int:
        return len(self.order)


def hv2(points, ref=(2.0, 1.0)) -> float:
    """Hypervolume of ``points`` ``(value, cost)`` (both minimized) below ``ref``
    (:func:`search.algorithms.hypervolume`, pymoo's, in two dimensions)."""
    from .algorithms import hypervolume
    return hypervolume(np.asarray(points, dtype=np.float64).reshape(-1, 2), ref=ref)


def predict_lcb(scores: np.ndarray, seen: Sequence[int], values: Sequence[float], kappa: float) -> np.ndarray:
    """Optimistic prediction of every candidate's value from its proxy score (lower is better): the
    least-squares line through the measured ``(scores[seen], values)``, slope at least 0, minus
    ``kappa`` times the residual standard deviation. With one measurement, the line is flat."""
    s = np.asarray(scores, dtype=np.float64)
    xs, ys = s[list(seen)], np.asarray(values, dtype=np.float64)
    if len(ys) == 0:
        return s.copy()
    slope = 0.0
    if len(ys) >= 2 and np.ptp(xs) > 0:
        slope = max(0.0, float(np.polyfit(xs, ys, 1)[0]))
    icpt = float(np.mean(ys - slope * xs))
    sd = float(np.sqrt(np.mean((ys - (icpt + slope * xs)) ** 2)))
    return icpt + slope * s - kappa * sd


def select_adaptive(costs, scores, evaluate: Callable[[int], float], evals: int, initial: Sequence[int] = (),
                    spread: Sequence[float] = (), ref=(2.0, 1.0), kappa: float = 2.0) -> Selection:
    """Evaluate at most ``evals`` of the candidates (``costs[i]``, cheap; ``scores[i]``, a proxy of the
    value, lower is better) through ``evaluate(i) -> value`` (minimized, expensive), as the module
    docstring says; returns the :class:`Selection`. ``ref``: the (value, cost) hypervolume reference."""
    costs = np.asarray(costs, dtype=np.float64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    n = len(costs)
    if scores.shape != costs.shape or n == 0:
        raise SearchError(f"select_adaptive: expected as many scores as costs (at least one), got {len(scores)} "
                          f"scores and {n} costs")
    if not isinstance(evals, (int, np.integer)) or evals < 1:
        raise SearchError(f"select_adaptive: evals must be a positive integer, got {evals!r}")
    for i in initial:
        if not 0 <= int(i) < n:
            raise SearchError(f"select_adaptive: initial candidate {i} is not in 0..{n - 1}")
    order, values, phases = [], [], []

    def run(i, phase):
        order.append(int(i))
        values.append(float(evaluate(int(i))))
        phases.append(phase)

    budget = min(int(evals), n)
    for i in dict.fromkeys(int(i) for i in initial):
        if len(order) < budget:
            run(i, "initial")
    lo, hi = float(costs.min()), float(costs.max())
    for f in spread:
        if len(order) >= budget:
            break
        free = [i for i in range(n) if i not in order and costs[i] <= lo + (hi - lo) * f + 1e-12]
        if free:
            run(min(free, key=lambda i: (scores[i], costs[i])), "spread")
    while len(order) < budget:
        free = [i for i in range(n) if i not in order]
        pred = predict_lcb(scores, order, values, kappa)
        measured = np.column_stack([values, costs[order]])
        base = hv2(measured, ref)
        gain = [hv2(np.vstack([measured, [pred[i], costs[i]]]), ref) - base for i in free]
        run(free[min(range(len(free)), key=lambda j: (-gain[j], pred[free[j]], costs[free[j]]))], "gap")
    return Selection(tuple(order), tuple(values), tuple(phases))


def proxy_pool(cost, proxy: np.ndarray, metric: str = "cycles", fronts: int = 2, enumerate_up_to: int = 4096,
               budgets: int = 64) -> np.ndarray:
    """Candidate assignments ``(P, L)`` sorted by ``metric``: the first ``fronts`` non-dominated fronts
    of (minus the proxy sum, ``metric``) over every assignment of ``cost`` (a :class:`HardwareCost`)
    when there are at most ``enumerate_up_to``; otherwise the exact choice at ``budgets`` budgets from
    the cheapest assignment to dense (the first front only)."""
    import itertools

    from .algorithms import nondominated
    proxy = np.asarray(proxy, dtype=np.float64)
    if fronts < 1:
        raise SearchError(f"proxy_pool: fronts must be at least 1, got {fronts!r}")
    size = float(np.prod([len(o) for o in cost.options], dtype=np.float64))
    if size <= enumerate_up_to:
        pop = np.array(list(itertools.product(*[list(o) for o in cost.options])), dtype=np.int64)
        F = np.column_stack([-cost.evaluate_table(proxy, pop), cost.evaluate(pop)[metric]])
        keep, rest = [], np.arange(len(pop))
        for _ in range(fronts):
            if len(rest) == 0:
                break
            nd = rest[nondominated(F[rest])]
            keep.extend(nd.tolist())
            rest = np.setdiff1d(rest, nd)
        pop = pop[keep]
    else:
        lo, dense = cost.min_cost(metric), float(cost.dense_totals[metric])
        pop = np.unique(np.array([cost.choose(proxy, b, metric=metric) for b in np.linspace(lo + 0.5, dense, budgets)]),
                        axis=0)
    c = cost.evaluate(pop)[metric]
    return pop[np.lexsort((-cost.evaluate_table(proxy, pop), c))]
