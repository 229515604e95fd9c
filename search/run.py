"""The search, composed: tables -> proxies -> algorithm -> front, baselines and masks."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from accel import Accelerator
from workloads import Workload

from . import baselines as bl
from .algorithms import (Problem, enumerate_all, exact_front, hypervolume, nondominated, nsga2, random_search,
                         space_size)
from .calibration import Calibration, capture
from .candidates import DEFAULT_CANDIDATES, parse_candidates, parse_pins
from .cost import COUPLED_POINTS, HardwareCost
from .errors import SearchError, positive
from .joint import grid, parse_joint
from .proxies import PROXIES, Proxy
from .result import FRONT_COLUMNS, SearchResult

OBJECTIVES = {"latency": "cycles", "energy": "energy_pj", "pareto": None}

#: Budgets at which the Pareto front holds the exact best assignment, per cost metric (cycles and
#: energy) and hardware point: 230 intervals from the cheapest assignment to dense, a multiple of 23,
#: so every budget of the 24-budget ladder (``exact_front(points=24)``) is one of them.
EXACT_POINTS = 231


def run_search(workload: Workload, accelerator: Accelerator, objective: str = "pareto", budget: float | None = None,
               candidates=DEFAULT_CANDIDATES, pins=(), per_layer=None, proxy: str = "magnitude",
               mask_score: str = "magnitude",
               evals: int = 5000, seed: int = 0, joint=None, model=None, inputs=None,
               calibration: Calibration | None = None, calib_rows: int = 256, baseline_density: float = 0.5,
               pop_size: int = 100, random_baseline: bool = True, baselines: bool = True,
               progress: bool = False) -> SearchResult:
    """See :func:`sparsim.search` for the parameters."""
    t0 = time.perf_counter()
    if objective not in OBJECTIVES:
        raise SearchError(f"--objective {objective!r}: expected latency, energy or pareto")
    if proxy not in PROXIES:
        raise SearchError(f"--proxy {proxy!r}: expected one of {', '.join(PROXIES)}")
    if mask_score not in ("magnitude", "wanda"):
        raise SearchError(f"mask_score {mask_score!r}: expected magnitude or wanda")
    if objective != "pareto" and budget is None:
        budget = 0.6
    if budget is not None:
        budget = positive(budget, f"--budget {budget}", what="a positive fraction of the dense model's cost, e.g. 0.6")
    if not isinstance(evals, (int, np.integer)) or evals < 1:
        raise SearchError(f"--evals {evals!r}: expected a positive integer")
    cands = parse_candidates(candidates)
    pins = parse_pins(pins)
    metric = OBJECTIVES[objective] or "cycles"

    # calibration activations, when a proxy or the mask choice needs them
    if calibration is None and (proxy != "magnitude" or mask_score == "wanda"):
        if model is None or inputs is None:
            raise SearchError(f"--proxy {proxy} / mask_score {mask_score}: needs the model and example inputs "
                              f"to capture calibration activations")
        calibration = capture(model, inputs, workload, rows=calib_rows, seed=seed)
    importance = calibration.wanda_importance() if mask_score == "wanda" else None

    # the allocation baselines (global magnitude, LAMP, ERK) are per-layer unstructured densities:
    # with the Pareto objective their densities become extra candidates of their layers, so the
    # tables hold the baselines' exact costs and NSGA-II starts from them (as it does from the
    # uniform assignments); random search gets the same starts
    allocs = None
    if objective == "pareto" and baselines:
        allocs = bl.allocation_patterns(workload, pins, baseline_density)
    extra = bl.allocation_extras(allocs, workload) if allocs else None

    # channel candidates shrink their consumers along the model's channel dependency graph (needs
    # the model itself; a model torch.fx cannot trace keeps the uncoupled costs, and info says why)
    graph = None
    if _has_channel(cands, per_layer):
        graph, info_coupling = _channel_graph(model, inputs, workload)
    else:
        info_coupling = None

    # hardware points (one, or a grid), one cost table each; masks are picked once and shared
    axes = parse_joint(joint)
    points = grid(accelerator, axes) if axes else [({}, accelerator, "")]
    feasible = [(p, a) for p, a, _ in points if a is not None]
    infeasible = pd.DataFrame([{**p, "reason": why} for p, a, why in points if a is None])
    costs: dict[tuple, HardwareCost] = {}
    first = None
    for p, a in feasible:
        key = tuple(sorted((k, str(v)) for k, v in p.items()))
        costs[key] = HardwareCost(workload, a, cands, pins=pins, per_layer=per_layer, importance=importance,
                                  progress=progress, masks_from=first, extra=extra, graph=graph)
        first = first or costs[key]
    t_tables = time.perf_counter() - t0
    keys = list(costs)
    ref_cost = first if not axes else None
    from simulator import simulate
    dense_ref = ref_cost.dense_totals if ref_cost else _totals(simulate(first.apply(np.zeros(len(first.layer_names),
                                                                                               np.int64)), accelerator))
    prox = Proxy(proxy, workload, calibration)
    ptable = prox.table(first)
    t_proxy = time.perf_counter() - t0 - t_tables
    problem = Problem([costs[k] for k in keys], ptable, reference=dense_ref)

    info = {"model": workload.name, "accelerator": accelerator.name, "dense": dense_ref, "metric": metric,
            "evals": evals, "seed": seed, "candidates": [str(c) for c in cands], "pins": pins}
    if info_coupling is not None:
        info["channel_coupling"] = info_coupling if first.coupling is None else \
            f"{len(first.coupling.groups)} channel groups coupled to their consumers"
    random_df = None
    if objective == "pareto":
        # The exact 2-objective fronts (proxy vs cycles, proxy vs energy) at EXACT_POINTS budgets each,
        # and the exact choice at --budget when one is given, are on the front: no point NSGA-II finds
        # can be worse than the exact choice at those budgets. NSGA-II then searches the 3-objective
        # space from them and the uniform assignments (the rest of its first population is random).
        seeds = _uniform_seeds(problem, allocs)
        # (coupled channel groups: the exact MILP per budget, at COUPLED_POINTS budgets, not EXACT_POINTS)
        npts = EXACT_POINTS if first.coupling is None else COUPLED_POINTS
        exact = np.concatenate([exact_front(problem, m, npts) for m in ("cycles", "energy_pj")])
        at_budget = None
        if budget is not None:
            at_budget = _budgeted(problem, metric, budget * dense_ref[metric], budget)[0]
            exact = np.concatenate([exact, at_budget])
        if space_size(problem) <= evals:       # small enough to enumerate: the front is exact
            pop = enumerate_all(problem)
            info["algorithm"] = f"all {len(pop)} assignments"
        else:
            spread = exact[np.unique(np.linspace(0, len(exact) - 1, max(0, pop_size - len(seeds))).astype(int))] \
                if pop_size > len(seeds) else exact[:0]
            pop = nsga2(problem, evals, seed=seed, pop_size=pop_size, initial=np.concatenate([seeds, spread]),
                        progress=progress)
            info["algorithm"] = "NSGA-II from the exact fronts"
        pop = np.concatenate([pop, exact])
        info["exact_points"] = len(exact)
        F = problem.objectives(pop)
        nd = nondominated(F)
        chosen = pop[nd]
        info["hypervolume"] = hypervolume(F[nd])
        if random_baseline:
            rpop = np.concatenate([seeds, random_search(problem, max(0, evals - len(seeds)), seed=seed)])
            RF = problem.objectives(rpop)
            rnd = nondominated(RF)
            info["random_hypervolume"] = hypervolume(RF[rnd])
            random_df = _frame(problem, rpop[rnd], keys, ptable, axes, with_layers=False)
    else:
        chosen, greedy = _budgeted(problem, metric, budget * dense_ref[metric], budget)
        info["greedy_proxy"] = greedy
        info["exact_optimal"], info["exact_gap"] = True, 0.0
    t_search = time.perf_counter() - t0 - t_tables - t_proxy
    front = _frame(problem, chosen, keys, ptable, axes)
    if objective == "pareto" and at_budget is not None:
        # the point --masks writes: the exact choice within --budget, as --objective latency/energy gives
        hit = np.flatnonzero((chosen == at_budget[0]).all(axis=1))
        if len(hit):
            info["budget_point"] = int(hit[0])
    assignments = [(keys[h], a) for a, h in zip(*problem.split(chosen))]

    rows = []
    if baselines:       # on the accelerator the user named (its own table when the search is joint)
        base_cost = ref_cost or HardwareCost(workload, accelerator, cands, pins=pins, per_layer=per_layer,
                                             importance=importance, masks_from=first, extra=extra,
                                             graph=graph)
        rows = _baselines(base_cost, ptable, prox, accelerator, dense_ref, baseline_density,
                          allocs if importance is None else None)
    t_base = time.perf_counter() - t0 - t_tables - t_proxy - t_search
    base_df = pd.DataFrame(rows, columns=["name"] + FRONT_COLUMNS)
    info["seconds"] = {"tables": t_tables, "proxy": t_proxy, "search": t_search, "baselines": t_base,
                       "total": time.perf_counter() - t0}
    return SearchResult(front=front, baselines=base_df, objective=objective, proxy=proxy, budget=budget,
                        costs=costs, assignments=assignments, random=random_df,
                        infeasible=infeasible if len(infeasible) else None, hardware_axes=list(axes), info=info)


def _baselines(cost: HardwareCost, ptable, prox: Proxy, accelerator, dense_ref, density, allocs=None) -> list[dict]:
    """Metrics of every baseline. A uniform pattern that is a candidate of every prunable layer is a
    table assignment (the same masks, so the same numbers), and so are the allocations when
    ``allocs`` (from ``bl.allocation_patterns``) are in the table with magnitude masks; the others
    are simulated here."""
    from simulator import simulate
    rows = []
    prunable = bl._prunable_layers(cost)

    def row(name, proxy, cycles, energy, dram):
        return {"name": name, "proxy": proxy, "cycles": int(cycles), "energy_pj": float(energy),
                "dram_bytes": float(dram), "speedup": dense_ref["cycles"] / int(cycles)}

    for name, pattern in [("dense", "dense")] + [(f"uniform {p}", p) for p in bl.UNIFORM]:
        if pattern in cost.candidate_names and cost.allowed[prunable, cost.candidate_names.index(pattern)].all():
            a = cost.uniform(pattern)
            t = cost.totals(a)
            rows.append(row(name, float(cost.evaluate_table(ptable, a[None])[0]), t["cycles"], t["energy_pj"],
                            t["dram_bytes"]))
            continue
        wl = bl.uniform(cost, pattern)
        r = simulate(wl, accelerator).totals
        rows.append(row(name, prox.of_workload(wl), r["cycles"], r["energy_pj"], r["dram_bytes"]))
    if allocs is not None:
        for name, pats in allocs.items():
            a = bl.allocation_assignment(cost, pats)
            t = cost.totals(a)
            rows.append(row(name, float(cost.evaluate_table(ptable, a[None])[0]), t["cycles"], t["energy_pj"],
                            t["dram_bytes"]))
        return rows
    for name, wl in bl.allocations(cost, density).items():
        r = simulate(wl, accelerator).totals
        rows.append(row(name, prox.of_workload(wl), r["cycles"], r["energy_pj"], r["dram_bytes"]))
    return rows


def _has_channel(cands, per_layer) -> bool:
    from workloads import Channel
    pats = list(cands) + [p for v in (per_layer or {}).values() for p in parse_candidates(v)]
    return any(isinstance(p, Channel) for p in pats)


def _channel_graph(model, inputs, workload):
    """``(graph or None, why not)``: the channel dependency graph when the model is at hand."""
    from .channels import channel_graph
    if model is None or inputs is None:
        return None, "not modelled: the search was given a workload without its model"
    try:
        return channel_graph(model, inputs, workload), "no channel group could be coupled"
    except SearchError as e:
        return None, f"not modelled: {e}"


def _uniform_seeds(problem: Problem, allocs=None) -> np.ndarray:
    """Starting assignments: dense and every shared candidate everywhere, then the allocation
    baselines (``allocs``) when the tables hold them; on every hardware point."""
    cost = problem.cost
    rows = [cost.uniform(name) for name in cost.candidate_names[:cost.n_shared]]
    rows += [bl.allocation_assignment(cost, pats) for pats in (allocs or {}).values()]
    if len(problem.costs) > 1:
        rows = [np.concatenate([r, [h]]) for h in range(len(problem.costs)) for r in rows]
    return np.array(rows, dtype=np.int64)


def _totals(res) -> dict:
    t = res.totals
    return {"cycles": int(t["cycles"]), "energy_pj": float(t["energy_pj"]), "dram_bytes": float(t["dram_bytes"])}


def _budgeted(problem: Problem, metric, limit: float, frac: float):
    """The exact best assignment within ``limit`` (absolute ``metric``) over every hardware point
    (``(1, L [+1])``), and greedy's proxy there. Exact: the costliest point within ``limit`` of the
    complete 2-objective front (:meth:`HardwareCost.pareto`), so of equal proxies the cheapest; of
    the hardware points, the highest proxy, then the least ``metric``, then the first."""
    best = None
    greedy_best = None
    least = np.inf
    for h, cost in enumerate(problem.costs):
        lo = cost.min_cost(metric)
        least = min(least, lo)
        if lo > limit * (1 + 1e-12):
            continue
        if cost.coupling is not None:         # coupled channel groups: the exact MILP at this budget
            a = cost.choose(problem.proxy, limit * (1 + 1e-12), metric=metric)
            v = float(cost.evaluate_table(problem.proxy, a[None])[0])
        else:
            fc, fv, A = cost.pareto(problem.proxy, metric)
            i = int(np.searchsorted(fc, limit * (1 + 1e-12), side="right")) - 1
            while i > 0 and cost.totals(A[i])[metric] > limit * (1 + 1e-9):   # float sums in another order
                i -= 1
            a, v = A[i], float(fv[i])
        score = (v, -cost.totals(a)[metric])
        if best is None or score > best[0]:
            best = (score, np.concatenate([a, [h]]) if len(problem.costs) > 1 else a)
        try:
            g = cost.choose(problem.proxy, limit * (1 + 1e-12), metric=metric, method="greedy")
            gv = float(cost.evaluate_table(problem.proxy, g[None])[0])
            greedy_best = gv if greedy_best is None else max(greedy_best, gv)
        except SearchError:
            pass
    if best is None:
        ref = problem.reference[metric]
        raise SearchError(f"--budget {frac:g}: below the {'fastest' if metric == 'cycles' else 'cheapest'} "
                          f"assignment ({least / ref:.3f} x dense {metric})")
    return best[1][None], (np.nan if greedy_best is None else greedy_best)


def _frame(problem: Problem, chosen: np.ndarray, keys, ptable, axes, with_layers: bool = True) -> pd.DataFrame:
    a, h = problem.split(chosen)
    t = problem.totals(chosen)
    prox = problem.cost.evaluate_table(ptable, a) if len(a) else np.zeros(0)
    dense_cycles = np.array([c.dense_totals["cycles"] for c in problem.costs])[h] if len(a) else np.zeros(0)
    data = {"proxy": prox, "cycles": np.rint(t[:, 0]).astype(np.int64), "energy_pj": t[:, 1],
            "dram_bytes": t[:, 2], "speedup": dense_cycles / np.maximum(t[:, 0], 1)}
    for axis in axes:
        data[axis] = [dict(keys[i])[axis] for i in h]
    df = pd.DataFrame(data)
    if with_layers:
        cost = problem.cost
        names = cost.candidate_names
        weightless = [not (l.has_weight or l.weight_layout is not None) for l in cost.workload.layers]
        cols = {f"layer:{n}": ["-" if weightless[li] else names[c] for c in a[:, li]]
                for li, n in enumerate(cost.layer_names)}
        df = pd.concat([df, pd.DataFrame(cols)], axis=1)
    return df
