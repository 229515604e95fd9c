"""Pareto front against the exact choice (issue 23): ResNet-50 and BERT-base on vegeta-flex.

Run: .venv/bin/python benchmarks/bench_front.py [models...]   (about 3 minutes per model on one core)

For each model, the search's default candidates (with the allocation baselines' per-layer densities,
as ``sparsim search`` builds them) and the magnitude proxy:

* the front of ``sparsim search --objective pareto --evals 5000 --seed 0`` (exact fronts + NSGA-II)
  and, for comparison, NSGA-II alone on the same tables (what the front was before issue 23);
* their hypervolume of (1 - proxy, cycles / dense, energy / dense) below (1.1, 1.1, 1.1);
* the proxy gap to the exact choice (the best proxy within the budget, SciPy MILP / HiGHS, an
  independent solver) at 24 budgets evenly spaced from the fastest assignment to dense, and at the
  23 budgets half-way between them: exact proxy - the front's best proxy within the budget (<= 0:
  the front is at least as good);
* ``--objective pareto --budget B`` against ``--objective latency --budget B`` for B = 0.6 and 0.8:
  equal masks on the same table, and the default Pareto run's point.
"""
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

import accel  # noqa: E402
import sparsim  # noqa: E402
from search.algorithms import Problem, budget_range, hypervolume, ladder, nondominated, nsga2  # noqa: E402
from search.knapsack import choose_exact  # noqa: E402
from search.proxies import Proxy  # noqa: E402
from search.run import _uniform_seeds, run_search  # noqa: E402
from search import baselines as bl  # noqa: E402


def _gaps(cost, ptable, front_cycles, front_proxy, budgets, time_limit=10.0):
    out, unproven = [], 0
    vp, vc, va = cost.var_table(ptable), cost.var_table(cost.cycles), cost.allowed[cost.leaders]
    for b in budgets:
        info = {}
        a = cost.expand(choose_exact(vp, vc, va, b, time_limit=time_limit, info=info))
        unproven += not info["optimal"]
        exact = float(ptable[np.arange(len(a)), a].sum())
        ok = front_cycles <= b
        out.append(exact - (front_proxy[ok].max() if ok.any() else -np.inf))
    return np.array(out), unproven


def main(models=("resnet50", "bert_base")):
    acc = accel.load("vegeta-flex")
    rows = []
    for name in models:
        wl = sparsim.trace_zoo(name)
        t0 = time.perf_counter()
        res = run_search(wl, acc, objective="pareto", evals=5000, seed=0)
        t_search = time.perf_counter() - t0
        cost, _ = res.cost_of(0)
        ptable = Proxy("magnitude", wl).table(cost)
        lo, hi = budget_range(cost, "cycles")
        on = ladder(lo, hi, 24)
        mid = (on[:-1] + on[1:]) / 2
        f = res.front
        g_on, u1 = _gaps(cost, ptable, f.cycles.to_numpy(), f.proxy.to_numpy(), on)
        g_mid, u2 = _gaps(cost, ptable, f.cycles.to_numpy(), f.proxy.to_numpy(), mid)
        # NSGA-II alone (the front before issue 23), same tables, evaluations and seed
        allocs = bl.allocation_patterns(wl, (), 0.5)
        problem = Problem(cost, ptable)
        pop = nsga2(problem, 5000, seed=0, initial=_uniform_seeds(problem, allocs))
        F = problem.objectives(pop)
        nd = nondominated(F)
        T = problem.totals(pop[nd])
        o_on, _ = _gaps(cost, ptable, T[:, 0], T[:, 3], on)
        rows.append((name, len(f), res.info["hypervolume"], hypervolume(F[nd]), len(nd), g_on, g_mid, o_on,
                     u1 + u2, t_search))
        _row(rows[-1])
        eq = []
        for b in (0.6, 0.8):
            p = run_search(wl, acc, objective="pareto", budget=b, evals=5000, seed=0, baselines=False,
                           random_baseline=False)
            q = run_search(wl, acc, objective="latency", budget=b, baselines=False)
            d = run_search(wl, acc, objective="pareto", budget=b, evals=5000, seed=0, random_baseline=False,
                           baselines=True)
            mp, mq = p.masks(), q.masks()
            same = all(np.array_equal(mp[k], mq[k]) for k in mq)
            i, j = p._index(None), d._index(None)
            eq.append(f"B={b}: latency proxy {q.front.proxy.iloc[0]:.4f} ({q.front.cycles.iloc[0] / q.info['dense']['cycles']:.4f} x); "
                      f"pareto on the same table {p.front.proxy.iloc[i]:.4f}, masks equal: {same}; "
                      f"pareto default (allocation candidates too) {d.front.proxy.iloc[j]:.4f} "
                      f"({d.front.cycles.iloc[j] / d.info['dense']['cycles']:.4f} x)")
        print(f"{name}: " + "; ".join(eq), flush=True)
    print()
    print("| model | front points | hypervolume (exact + NSGA-II) | hypervolume NSGA-II alone (points) | "
          "gap at 24 budgets: max / mean | gap half-way between: max / mean | NSGA-II alone, gap at 24: max / mean | "
          "MILP not proven in 10 s | search s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        _row(row)


def _row(row):
    name, n, hv, hv_old, n_old, g_on, g_mid, o_on, unp, ts = row
    print(f"| {name} | {n} | {hv:.4f} | {hv_old:.4f} ({n_old}) | {g_on.max():+.4f} / {g_on.mean():+.4f} | "
          f"{g_mid.max():+.4f} / {g_mid.mean():+.4f} | {o_on.max():+.4f} / {o_on.mean():+.4f} | {unp} | {ts:.0f} |",
          flush=True)


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or ("resnet50", "bert_base"))
