"""Solvers over cost tables and proxy tables. None of them sees hardware: a :class:`Problem` holds
the tables (``HardwareCost`` + a proxy table) and every solver returns assignments.

* :func:`nsga2`: pymoo's NSGA-II (Deb et al., 2002) over the integer choice per layer, objectives
  ``(1 - proxy, cycles / dense, energy / dense)``, a fixed number of evaluations, seeded.
* :func:`random_search`: the same number of uniformly random assignments, the honest baseline.
* :func:`exact_front`: the exact (proxy, cost) front of one cost metric (every non-dominated
  assignment, by Nemhauser-Ullmann merging over the layers), whole or at a ladder of budgets.
* :func:`nondominated`: the non-dominated rows of an objective matrix.
"""
from __future__ import annotations

import numpy as np

from .cost import HardwareCost
from .errors import SearchError
from .kernels import gather_sum


class Problem:
    """Tables an algorithm optimizes over: one ``HardwareCost`` per hardware point (same layers and
    candidates) and a proxy table ``(L, C)``. With several hardware points the hardware index is one
    more variable of the search. Objectives are normalized by ``reference`` (the dense model's
    totals on the accelerator the user named)."""

    def __init__(self, costs, proxy: np.ndarray, reference: dict | None = None):
        costs = list(costs) if isinstance(costs, (list, tuple)) else [costs]
        self.costs = costs
        self.cost = costs[0]
        for c in costs[1:]:
            if not np.array_equal(c.allowed, self.cost.allowed):
                raise SearchError("Problem: hardware points must share layers and candidates")
        cost = self.cost
        # proxy (L, C), or (L, C * J) conditioned on input channel densities (coupled channel groups)
        self.proxy = np.where(np.tile(cost.allowed, (1, cost.J)), cost._widen(proxy, "Problem: proxy"), 0.0)
        self.reference = reference or self.cost.dense_totals
        self.n_layers = len(self.cost.options)
        # one decision variable per parameter: layers that share a weight are one variable
        leaders = self.cost.leaders
        self.n_vars = len(leaders)
        var_opts = [self.cost.options[li] for li in leaders]
        n_opt = [len(o) for o in var_opts] + ([len(costs)] if len(costs) > 1 else [])
        self.n_options = np.array(n_opt)
        width = int(max(len(o) for o in var_opts))
        self.lut = np.zeros((self.n_vars, width), dtype=np.int64)
        for v, o in enumerate(var_opts):
            self.lut[v, :len(o)] = o
            self.lut[v, len(o):] = o[-1]
        L, W = self.cost.shape[0], self.cost.width
        # (H, L*W, 4): cycles, energy_pj, dram_bytes, proxy (the proxy is the same on every point);
        # W = C columns, times the input-density combinations when channel groups are coupled
        self.stacked = np.ascontiguousarray(np.stack(
            [np.concatenate([c.stacked.reshape(L * W, -1), self.proxy.reshape(L * W, 1)], axis=1) for c in costs]))

    def decode(self, x: np.ndarray) -> np.ndarray:
        """Option positions ``(P, V [+1])`` (one per variable) -> ``(P, L [+1])``: candidate indices of
        every layer (tied layers take their variable's), then the hardware index."""
        x = np.clip(np.asarray(x, dtype=np.int64), 0, self.n_options - 1)
        a = self.cost.repair(self.cost.expand(self.lut[np.arange(self.n_vars), x[:, :self.n_vars]]))
        return np.concatenate([a, x[:, self.n_vars:]], axis=1) if len(self.costs) > 1 else a

    def encode(self, pop: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`decode`: assignments ``(P, L [+1])`` -> option positions ``(P, V [+1])``."""
        pop = np.asarray(pop, dtype=np.int64)
        a = pop[:, self.cost.leaders]
        pos = np.argmax(self.lut[None, :, :] == a[:, :, None], axis=2)
        return np.concatenate([pos, pop[:, self.n_layers:]], axis=1)

    def split(self, pop: np.ndarray):
        pop = np.asarray(pop)
        if len(self.costs) > 1:
            return pop[:, :self.n_layers], pop[:, self.n_layers]
        return pop, np.zeros(len(pop), dtype=np.int64)

    def totals(self, pop: np.ndarray) -> np.ndarray:
        """``(P, 4)`` cycles, energy_pj, dram_bytes, proxy."""
        a, h = self.split(pop)
        return gather_sum(self.stacked, self.cost.effective(a), h, self.cost.width)

    def objectives(self, pop: np.ndarray) -> np.ndarray:
        """``(P, 3)``: 1 - proxy, cycles / dense cycles, energy / dense energy (all minimized)."""
        t = self.totals(pop)
        r = self.reference
        return np.stack([1.0 - t[:, 3], t[:, 0] / r["cycles"], t[:, 1] / r["energy_pj"]], axis=1)


def nondominated(F: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of ``F`` (minimization), duplicates kept once, sorted by F[:, 1]."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
    F = np.asarray(F, dtype=np.float64)
    if len(F) == 0:
        return np.zeros(0, dtype=np.int64)
    _, first = np.unique(F, axis=0, return_index=True)
    first = np.sort(first)
    front = first[NonDominatedSorting().do(F[first], only_non_dominated_front=True)]
    return front[np.lexsort((F[front, 0], F[front, 1]))]


def space_size(problem: Problem) -> float:
    """How many assignments there are (as a float: it overflows integers quickly)."""
    return float(np.prod(problem.n_options.astype(np.float64)))


def enumerate_all(problem: Problem) -> np.ndarray:
    """Every assignment (for spaces no larger than the evaluation budget)."""
    grids = np.meshgrid(*[np.arange(n) for n in problem.n_options], indexing="ij")
    return problem.decode(np.stack([g.ravel() for g in grids], axis=1))


def random_search(problem: Problem, evals: int, seed: int = 0) -> np.ndarray:
    """``evals`` uniformly random assignments ``(evals, L)`` (candidate indices)."""
    rng = np.random.default_rng(seed)
    x = (rng.random((evals, len(problem.n_options))) * problem.n_options).astype(np.int64)
    return problem.decode(x)


def nsga2(problem: Problem, evals: int, seed: int = 0, pop_size: int = 100, initial: np.ndarray | None = None,
          progress: bool = False) -> np.ndarray:
    """Every assignment NSGA-II evaluated in ``evals`` evaluations (candidate indices, ``(n, L)``).

    ``initial``: optional assignments ``(n, L)`` placed in the first population (the rest random)."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem as PymooProblem
    from pymoo.core.callback import Callback
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.optimize import minimize
    from pymoo.termination.collection import TerminationCollection
    from pymoo.termination.max_eval import MaximumFunctionCallTermination
    from pymoo.termination.max_gen import MaximumGenerationTermination
    from tqdm.auto import tqdm

    if evals < pop_size:
        pop_size = max(4, evals)
    seen: list[np.ndarray] = []

    class _P(PymooProblem):
        def __init__(self):
            super().__init__(n_var=len(problem.n_options), n_obj=3, xl=np.zeros(len(problem.n_options)),
                             xu=(problem.n_options - 1).astype(float), vtype=int)

        def _evaluate(self, X, out, *args, **kwargs):
            pop = problem.decode(np.rint(X))
            seen.append(pop)
            out["F"] = problem.objectives(pop)

    rng = np.random.default_rng(seed)
    x0 = (rng.random((pop_size, len(problem.n_options))) * problem.n_options).astype(np.int64)
    if initial is not None and len(initial):
        pos = problem.encode(np.asarray(initial)[:pop_size])
        x0[:len(pos)] = pos
    bar = tqdm(total=evals, desc="NSGA-II", unit="eval", disable=not progress, leave=False)

    class _Bar(Callback):
        def notify(self, algorithm):
            bar.n = min(evals, algorithm.evaluator.n_eval)
            bar.refresh()

    algo = NSGA2(pop_size=pop_size, sampling=x0.astype(float),
                 crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
                 mutation=PM(prob=1.0, eta=20, vtype=float, repair=RoundingRepair()),
                 eliminate_duplicates=True)
    algo.mating.n_max_iterations = 10   # a nearly exhausted space must not stall the mating loop
    term = TerminationCollection(MaximumFunctionCallTermination(evals), MaximumGenerationTermination(evals))
    minimize(_P(), algo, term, seed=seed, verbose=False, callback=_Bar())
    bar.close()
    pop = np.concatenate(seen, axis=0)[:evals] if seen else np.zeros((0, len(problem.n_options)), np.int64)
    return pop


def exact_front(problem: Problem, metric: str = "cycles", points: int | None = 24) -> np.ndarray:
    """Exact best-proxy assignments of one cost ``metric`` (``(n, L [+1])``), on every hardware point.

    The complete 2-objective front (:meth:`HardwareCost.pareto`, no solver, no time limit) is computed
    per hardware point; ``points=None`` returns all of it, else the best assignment at each of
    ``points`` budgets evenly spaced over :func:`budget_range` (the front's costliest point within
    each; duplicates once)."""
    out = []
    for h, cost in enumerate(problem.costs):
        if cost.coupling is not None:     # coupled channel groups: the exact choice at each budget
            budgets = ladder(*budget_range(cost, metric), points) if points is not None else None
            A = cost.pareto(problem.proxy, metric, budgets)[2]
        else:
            fc, _, A = cost.pareto(problem.proxy, metric)
        if points is not None and cost.coupling is None:
            idx = np.searchsorted(fc, ladder(*budget_range(cost, metric), points), side="right") - 1
            A = A[np.unique(idx[idx >= 0])]
        if len(problem.costs) > 1:
            A = np.concatenate([A, np.full((len(A), 1), h, dtype=np.int64)], axis=1)
        out.append(A)
    return np.concatenate(out, axis=0)


def budget_range(cost: HardwareCost, metric: str = "cycles") -> tuple[float, float]:
    """From the cheapest assignment's total ``metric`` to the larger of dense's and the costliest's."""
    return cost.cost_range(metric)


def ladder(lo: float, hi: float, points: int) -> np.ndarray:
    """``points`` budgets evenly spaced over ``[lo, hi]``, each widened by 1e-12 relative so that a
    total equal to a budget in exact arithmetic is within it after float rounding."""
    return np.linspace(lo, hi, int(points)) * (1 + 1e-12)


def hypervolume(F: np.ndarray, ref=(1.1, 1.1, 1.1)) -> float:
    """Hypervolume of ``F`` (minimized objectives, as :meth:`Problem.objectives`) below ``ref``."""
    from pymoo.indicators.hv import HV
    F = np.asarray(F, dtype=np.float64)
    F = F[np.all(F < np.asarray(ref), axis=1)]
    if len(F) == 0:
        return 0.0
    return float(HV(ref_point=np.asarray(ref, dtype=np.float64))(F))
