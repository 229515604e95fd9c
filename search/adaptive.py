"""Accuracy in the loop: which assignments to spend expensive evaluations (fine-tune + measure) on.

The hardware cost of every assignment and a one-shot proxy are cheap; an evaluation (fine-tuning
the pruned model and measuring its accuracy on a held-out split) is not. Two selection rules spend a
fixed number of evaluations one at a time; both evaluate ``initial`` candidates first (e.g. the
uniform patterns, so the front contains them), never evaluate a candidate twice and make exactly
``min(evals, candidates)`` calls. A random search given the same number of evaluations is the fair
comparison (``benchmarks/bench_prune.py``).

* :func:`select_noisy_ehvi` (the method ``benchmarks/bench_prune.py`` reports): an additive Bayesian
  model of the accuracy drop (an effect per layer and option, centred on the proxy) with the noise a
  held-out split of a few hundred rows brings, and each time the candidate with the largest *noisy
  expected hypervolume improvement* (Daulton et al., NeurIPS 2021) of the drop on data the
  selection has not seen. It plans for the held-out split being wrong about small differences, so
  it spends evaluations where the front is worth most (the cheap end) rather than trusting
  differences of one or two held-out rows.
* :func:`select_adaptive` (the previous rule, kept as the comparison): the candidate with the largest
  hypervolume gain over the measured front when its value is predicted optimistically, a
  least-squares line from proxy score to the values measured so far minus ``kappa`` residual
  standard deviations (a lower confidence bound, as in GP-UCB, Srinivas et al., ICML 2010);
  optionally ``spread`` first (at each fraction ``f``, the proxy's best candidate costing at most
  ``f`` of the way from the cheapest to the dearest candidate).

:func:`proxy_pool` lists the candidates the proxy thinks are worth evaluating (its first few
non-dominated fronts over (proxy, cost), from all assignments when there are few, else the exact
choice at many budgets), for :func:`select_adaptive` and for models with too many assignments to
hand all of them to :func:`select_noisy_ehvi`.

Settings were chosen on the digits models: ``select_adaptive``'s ``kappa=2`` on seeds 5..9;
``select_noisy_ehvi``'s ``tau``, ``eta``, ``rho`` on mlp_digits seeds 5..9 and 20..34, and its
candidates (the proxy pool rather than every assignment: every assignment did better on mlp_digits
but worse on cnn_digits seeds 5..9), then checked on mlp_digits seeds 35..49 before seeds 0..4 and
10..19 were run (``benchmarks/bench_prune.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .errors import SearchError

PHASES = ("initial", "spread", "gap", "ehvi")


@dataclass(frozen=True)
class Selection:
    """What a selection evaluated, in order: candidate indices, their measured values (minimized), and
    the phase that picked each (``initial`` / ``spread`` / ``gap`` / ``ehvi``)."""

    order: tuple[int, ...]
    values: tuple[float, ...]
    phases: tuple[str, ...]

    @property
    def evaluations(self) -> int:
        return len(self.order)


class _Evaluations:
    """The bookkeeping both selection rules share: argument checks, the evaluation budget, the
    ``initial`` phase, and the order, values and phases of every call of ``evaluate``."""

    def __init__(self, who: str, n: int, evaluate: Callable[[int], float], evals, initial: Sequence[int]):
        if not isinstance(evals, (int, np.integer)) or evals < 1:
            raise SearchError(f"{who}: evals must be a positive integer, got {evals!r}")
        for i in initial:
            if not 0 <= int(i) < n:
                raise SearchError(f"{who}: initial candidate {i} is not in 0..{n - 1}")
        self.n, self.evaluate, self.budget = n, evaluate, min(int(evals), n)
        self.order, self.values, self.phases = [], [], []
        for i in dict.fromkeys(int(i) for i in initial):
            if not self.done:
                self.run(i, "initial")

    @property
    def done(self) -> bool:
        return len(self.order) >= self.budget

    def run(self, i, phase: str):
        self.order.append(int(i))
        self.values.append(float(self.evaluate(int(i))))
        self.phases.append(phase)

    def free(self) -> list[int]:
        seen = set(self.order)
        return [i for i in range(self.n) if i not in seen]

    def selection(self) -> Selection:
        return Selection(tuple(self.order), tuple(self.values), tuple(self.phases))


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
    docstring says (the previous rule; :func:`select_noisy_ehvi` is the one reported); returns the
    :class:`Selection`. ``ref``: the (value, cost) hypervolume reference."""
    costs = np.asarray(costs, dtype=np.float64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    n = len(costs)
    if scores.shape != costs.shape or n == 0:
        raise SearchError(f"select_adaptive: expected as many scores as costs (at least one), got {len(scores)} "
                          f"scores and {n} costs")
    ev = _Evaluations("select_adaptive", n, evaluate, evals, initial)
    lo, hi = float(costs.min()), float(costs.max())
    for f in spread:
        if ev.done:
            break
        free = [i for i in ev.free() if costs[i] <= lo + (hi - lo) * f + 1e-12]
        if free:
            ev.run(min(free, key=lambda i: (scores[i], costs[i])), "spread")
    while not ev.done:
        free = ev.free()
        pred = predict_lcb(scores, ev.order, ev.values, kappa)
        measured = np.column_stack([ev.values, costs[ev.order]])
        base = hv2(measured, ref)
        gain = [hv2(np.vstack([measured, [pred[i], costs[i]]]), ref) - base for i in free]
        ev.run(free[min(range(len(free)), key=lambda j: (-gain[j], pred[free[j]], costs[free[j]]))], "gap")
    return ev.selection()


def hv2_batch(values, costs, ref=(2.0, 1.0)) -> np.ndarray:
    """Hypervolume below ``ref`` of many 2-D point sets that share their costs: ``values`` ``(S, n)``
    (row ``s`` is one set's values, minimized), ``costs`` ``(n,)``; returns ``(S,)``. With the points
    sorted by cost, the area is the sum over cost steps of the step's width times the reference
    value minus the best value at or below that cost (equal to :func:`hv2` row by row)."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    costs = np.asarray(costs, dtype=np.float64).reshape(-1)
    o = np.argsort(costs, kind="stable")
    c, v = costs[o], values[:, o]
    inside = c < ref[1]
    c, v = c[inside], v[:, inside]
    if len(c) == 0:
        return np.zeros(len(values))
    best = np.minimum.accumulate(v, axis=1)
    return (np.clip(ref[0] - best, 0.0, None) * np.diff(np.append(c, ref[1]))).sum(axis=1)


def layer_features(assignments, proxy) -> np.ndarray:
    """The additive model's features of each assignment ``(P, L)`` (column ``l`` = option index of
    layer ``l``; option 0 is dense) under a proxy table ``proxy`` ``(L, C)`` (higher is better, 0 for
    dense): a constant, the proxy's loss (minus the sum of the layers' entries), and one indicator per
    (layer, non-dense option)."""
    a = np.asarray(assignments, dtype=np.int64)
    proxy = np.asarray(proxy, dtype=np.float64)
    L, C = proxy.shape
    if a.ndim != 2 or a.shape[1] != L or a.min(initial=0) < 0 or a.max(initial=0) >= C:
        raise SearchError(f"layer_features: expected assignments of shape (P, {L}) with options in 0..{C - 1}, "
                          f"got shape {a.shape}")
    X = np.zeros((len(a), 2 + L * (C - 1)))
    X[:, 0] = 1.0
    X[:, 1] = -proxy[np.arange(L)[None, :], a].sum(axis=1)
    for layer in range(L):
        for option in range(1, C):
            X[:, 2 + layer * (C - 1) + option - 1] = a[:, layer] == option
    return X


def select_noisy_ehvi(assignments, costs, proxy, evaluate: Callable[[int], float], evals: int,
                      initial: Sequence[int] = (), ref=(2.0, 1.0), tau: float = 2.0, eta: float = 0.45,
                      rho: float = 0.25, slope_sd: float = 10.0, offset_sd: float = 2.0, samples: int = 512,
                      seed: int = 0) -> Selection:
    """Evaluate at most ``evals`` of the candidate ``assignments`` (``(P, L)``, options per layer,
    option 0 dense; ``costs[i]`` cheap; ``proxy`` the ``(L, C)`` one-shot table) through
    ``evaluate(i) -> value`` (minimized; the accuracy drop in points on a held-out split), choosing
    each next candidate by *noisy expected hypervolume improvement* (Daulton et al., NeurIPS 2021)
    under an additive Bayesian model of the drop, so that it plans for what the held-out measurement
    does not tell about the final one.

    The model: drop(a) = offset + slope * proxy loss(a) (prior sds ``offset_sd``, ``slope_sd``) + sum
    over layers of an effect per (layer, option) (prior sd ``tau``), plus two kinds of measurement
    noise that a held-out split of a few hundred rows brings: a per-(layer, option) shift shared by
    every assignment that uses it (sd ``eta``: which rows happen to be in the split) and a
    per-evaluation residual (sd ``rho``: the fine-tuning run, interactions). The measured values are one
    draw of that noise; the target (the accuracy the front is finally judged on, another split) is an
    independent draw. Each step draws ``samples`` joint posterior samples of every candidate's target
    value and evaluates the candidate whose addition gives the largest mean hypervolume of the evaluated
    set; so a cheap candidate with a similar predicted drop is worth evaluating even when its measured
    neighbours look slightly worse, because the final split may rank them the other way.

    The candidates are the caller's: ``benchmarks/bench_prune.py`` passes :func:`proxy_pool` and the
    uniform patterns. ``initial`` candidates are evaluated first, in order. Exactly ``min(evals, P)``
    distinct evaluations. ``tau``, ``eta``, ``rho`` are in the value's units (accuracy points); the defaults
    were chosen on mlp_digits with seeds 5..9 and 20..34 (accuracy drop in points; module docstring).
    ``samples``, ``seed``: the Monte Carlo draws per step and their generator (the picks are the same
    for the same seed)."""
    a = np.asarray(assignments, dtype=np.int64)
    costs = np.asarray(costs, dtype=np.float64).reshape(-1)
    n = len(costs)
    if n == 0 or len(a) != n:
        raise SearchError(f"select_noisy_ehvi: expected as many assignments as costs (at least one), got {len(a)} "
                          f"assignments and {n} costs")
    for name, v in (("tau", tau), ("eta", eta), ("rho", rho), ("slope_sd", slope_sd), ("offset_sd", offset_sd)):
        if not np.isfinite(v) or v < 0 or (name != "eta" and v == 0):
            raise SearchError(f"select_noisy_ehvi: {name} must be a positive number of the value's units, got {v!r}")
    X = layer_features(a, proxy)
    k = X.shape[1]
    shared = X.copy()
    shared[:, :2] = 0.0                       # the split's shift multiplies the (layer, option) indicators only
    prior_inv = np.diag(1.0 / np.array([offset_sd ** 2, slope_sd ** 2] + [tau ** 2] * (k - 2)))
    rng = np.random.default_rng(seed)
    ev = _Evaluations("select_noisy_ehvi", n, evaluate, evals, initial)
    while not ev.done:
        seen = np.array(ev.order, dtype=np.int64)
        Xs, y = X[seen], np.array(ev.values)
        if len(seen):
            noise_inv = np.linalg.inv(eta ** 2 * shared[seen] @ shared[seen].T + rho ** 2 * np.eye(len(seen)))
            cov = np.linalg.inv(prior_inv + Xs.T @ noise_inv @ Xs)
            mean = cov @ (Xs.T @ noise_inv @ y)
        else:                                 # nothing measured yet: the prior
            cov, mean = np.linalg.inv(prior_inv), np.zeros(k)
        cov = (cov + cov.T) / 2
        theta = rng.multivariate_normal(mean, cov, size=samples, method="eigh")
        shift = rng.normal(0.0, eta, size=(samples, k))
        shift[:, :2] = 0.0
        target = theta @ X.T + shift @ shared.T + rng.normal(0.0, rho, size=(samples, n))
        free = ev.free()
        base = target[:, seen]
        gain = [hv2_batch(np.column_stack([base, target[:, i]]), np.append(costs[seen], costs[i]), ref).mean()
                for i in free]
        ev.run(free[int(np.argmax(gain))], "ehvi")
    return ev.selection()


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
