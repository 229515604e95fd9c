"""Speed and quality of the search (issue 9).

Run: .venv/bin/python benchmarks/bench_search.py [speed] [quality] [exact]   (all three by default; `make bench`)

* speed: evaluations per second from the tables (ResNet-50, 54 layers x 10 candidates, one core,
  batches of 100,000); ResNet-50's tables for 10 candidates on vegeta-flex (warm JIT) and where the
  time goes; a 5,000-evaluation Pareto search on ResNet-50 including tables.
* quality: on ResNet-50 (reconstruction proxy, synthetic calibration inputs) and BERT-base (magnitude
  and reconstruction): hypervolume of the NSGA-II front vs random search at the same number of
  evaluations over 5 seeds (mean and spread), whether the front dominates every uniform baseline in
  (proxy, cycles) and (proxy, energy); exact vs greedy vs uniform patterns at 0.6 x dense cycles.
* exact: table totals == simulate totals for random assignments, three zoo models x three presets.
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
from search import HardwareCost  # noqa: E402
from search import baselines as bl  # noqa: E402
from search.algorithms import Problem, hypervolume, nondominated, nsga2, random_search  # noqa: E402
from search.calibration import capture  # noqa: E402
from search.proxies import Proxy  # noqa: E402
from search.run import _uniform_seeds  # noqa: E402
from simulator import simulate  # noqa: E402
from workloads import zoo  # noqa: E402

TEN = ["dense", "2:4", "1:4", "2:8", "1:8", "4:8", "unstructured:0.5", "unstructured:0.3", "block:4x4:0.5",
       "channel:0.75"]


def speed():
    acc = accel.load("vegeta-flex")
    wl = sparsim.trace_zoo("resnet50")
    HardwareCost(sparsim.trace_zoo("mlp_digits"), acc, TEN)          # warm the JIT (disk cache)
    import cProfile
    import pstats
    t0 = time.perf_counter()
    cost = HardwareCost(wl, acc, TEN)
    t_tables = time.perf_counter() - t0
    print(f"ResNet-50 tables, {len(wl.layers)} layers x {len(TEN)} candidates on vegeta-flex (warm JIT): "
          f"{t_tables:.2f} s; where the time goes (a second build, under cProfile):")
    prof = cProfile.Profile()
    prof.enable()
    HardwareCost(wl, acc, TEN)
    prof.disable()
    st = pstats.Stats(prof)
    print(f"  total under the profiler: {st.total_tt:.2f} s")
    groups = {"mask selection (search/masks.py, search/kernels.py)": ("search/masks.py", "search/kernels.py"),
              "simulator (simulator/)": ("simulator/",), "layout copies (workloads/layout.py)": ("workloads/layout.py",)}
    for label, keys in groups.items():
        tot = sum(v[2] for k, v in st.stats.items() if any(s in k[0] for s in keys))
        print(f"  {label}: {tot:.2f} s (own time)")
    rng = np.random.default_rng(0)
    L, C = cost.shape
    pop = (rng.random((100_000, L)) * C).astype(np.int64)
    cost.evaluate(pop[:10])
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        cost.evaluate(pop)
        best = min(best, time.perf_counter() - t0)
    print(f"evaluations from the tables (cycles, energy, DRAM bytes), batches of 100,000: "
          f"{len(pop) / best / 1e6:.2f} M evaluations/s")
    t0 = time.perf_counter()
    res = sparsim.search(wl, acc, objective="pareto", evals=5000, candidates=TEN, seed=0)
    dt = time.perf_counter() - t0
    s = res.info["seconds"]
    print(f"5,000-evaluation Pareto search on ResNet-50 incl. tables, magnitude proxy: {dt:.1f} s: "
          f"tables {s['tables']:.1f} s, proxy {s['proxy']:.1f} s, NSGA-II + random search {s['search']:.1f} s, "
          f"baselines {s['baselines']:.1f} s; front {len(res.front)} points")


def _dominated(F, f, rel=1e-12):
    """Some row of F is no worse than f everywhere and better somewhere. Baselines are simulated and
    summed by pandas, the front is summed from the tables: equal costs may differ in the last bit,
    so 'no worse' and 'better' allow a relative 1e-12."""
    tol = rel * np.abs(f)
    return bool(np.any(np.all(F <= f + tol, axis=1) & np.any(F < f - tol, axis=1)))


def _covered(F, f):
    """f is dominated by F, or is itself a point of F (a front can hold a baseline, not beat it)."""
    return _dominated(F, f) or bool(np.any(np.all(np.isclose(F, f, rtol=1e-12, atol=0), axis=1)))


def quality(models=("resnet50", "bert_base"), seeds=range(5), evals=5000):
    acc = accel.load("vegeta-flex")
    cands = ["dense", "2:4", "1:4", "2:8"]
    for name in models:
        model, inputs = zoo.build(name, seed=0, batch=1)
        wl = sparsim.trace(model, inputs).replace(name=name)
        t0 = time.perf_counter()
        cal = capture(model, inputs, wl, rows=256, seed=0)
        cost = HardwareCost(wl, acc, cands)
        print(f"== {name}: {len(wl.layers)} layers, candidates {cands}, tables + calibration "
              f"{time.perf_counter() - t0:.1f} s")
        for kind in ("reconstruction", "magnitude"):
            prox = Proxy(kind, wl, cal)
            table = prox.table(cost)
            problem = Problem(cost, table)
            seeds_init = _uniform_seeds(problem)
            base = []
            for bname, bwl in bl.all_baselines(cost).items():
                r = simulate(bwl, acc).totals
                d = cost.dense_totals
                base.append((bname, np.array([1 - prox.of_workload(bwl), r["cycles"] / d["cycles"],
                                              r["energy_pj"] / d["energy_pj"]])))
            hv_n, hv_r, dom, status = [], [], [], {}
            for seed in seeds:
                pop = nsga2(problem, evals, seed=seed, initial=seeds_init)
                F = problem.objectives(pop)
                F = F[nondominated(F)]
                rp = np.concatenate([seeds_init, random_search(problem, evals - len(seeds_init), seed=seed)])
                R = problem.objectives(rp)
                R = R[nondominated(R)]
                hv_n.append(hypervolume(F))
                hv_r.append(hypervolume(R))
                ok = []
                for bname, f in base:
                    strict = _dominated(F[:, [0, 1]], f[[0, 1]]) and _dominated(F[:, [0, 2]], f[[0, 2]])
                    cover = _covered(F[:, [0, 1]], f[[0, 1]]) and _covered(F[:, [0, 2]], f[[0, 2]])
                    st = "dominated" if strict else ("on the front" if cover else "NOT covered")
                    status.setdefault(bname, []).append(st)
                    ok.append(cover)
                dom.append(all(ok))
            print(f"  {kind}: hypervolume NSGA-II {np.mean(hv_n):.4f} +- {np.std(hv_n):.4f}, random search "
                  f"{np.mean(hv_r):.4f} +- {np.std(hv_r):.4f} ({evals} evaluations, seeds {list(seeds)}); "
                  f"NSGA-II > random on {sum(a > b for a, b in zip(hv_n, hv_r))}/{len(hv_n)} seeds; "
                  f"every baseline dominated or on the front in (proxy, cycles) and (proxy, energy) on "
                  f"{sum(dom)}/{len(dom)} seeds")
            print("    per baseline over the seeds: " + "; ".join(
                f"{b}: " + ", ".join(f"{v} {st.count(v)}/{len(st)}" for v in dict.fromkeys(st))
                for b, st in status.items()))
            print("    baselines (1 - proxy, cycles x dense, energy x dense): " + "; ".join(
                f"{b} ({f[0]:.3f}, {f[1]:.3f}, {f[2]:.3f})" for b, f in base))
            budgets(cost, table, cands)


def budgets(cost, table, cands, fractions=(0.6, 0.8)):
    """Exact vs greedy vs every uniform pattern under budgets of dense cycles."""
    dense = cost.dense_totals["cycles"]
    for frac in fractions:
        budget = frac * dense
        if cost.min_cost() > budget:
            print(f"    {frac} x dense cycles: infeasible, the fastest assignment is {cost.min_cost() / dense:.3f} x")
            continue
        ex = cost.choose(table, budget)
        gr = cost.choose(table, budget, method="greedy")
        idx = np.arange(len(ex))
        line = [f"exact {table[idx, ex].sum():.4f} ({cost.totals(ex)['cycles'] / dense:.3f} x)",
                f"greedy {table[idx, gr].sum():.4f} ({cost.totals(gr)['cycles'] / dense:.3f} x)"]
        for p in cands[1:]:
            a = cost.uniform(p)
            t = cost.totals(a)["cycles"]
            line.append(f"uniform {p} {table[idx, a].sum():.4f} ({t / dense:.3f} x, "
                        f"{'meets' if t <= budget else 'misses'} the budget)")
        print(f"    {frac} x dense cycles: " + ", ".join(line))


def budget_resnet18():
    """0.6 x dense cycles on vegeta-flex, ResNet-18 (reconstruction proxy, synthetic calibration inputs)."""
    acc = accel.load("vegeta-flex")
    cands = ["dense", "2:4", "1:4", "2:8"]
    model, inputs = zoo.build("resnet18", seed=0, batch=1)
    wl = sparsim.trace(model, inputs).replace(name="resnet18")
    cost = HardwareCost(wl, acc, cands)
    cal = capture(model, inputs, wl)
    for kind in ("reconstruction", "magnitude"):
        print(f"== resnet18, {kind} proxy")
        budgets(cost, Proxy(kind, wl, cal).table(cost), cands)


def exact(models=("resnet50", "bert_base", "mobilenet_v2"), presets=("vegeta-flex", "sparse-tc-2of4", "sat-vcu1525")):
    rng = np.random.default_rng(0)
    for name in models:
        wl = sparsim.trace_zoo(name)
        for preset in presets:
            acc = accel.load(preset)
            cost = HardwareCost(wl, acc, ["2:4", "1:4", "2:8", "unstructured:0.4"])
            n_ok = 0
            for _ in range(3):
                a = np.array([rng.choice(o) for o in cost.options])
                r = simulate(cost.apply(a), acc).totals
                t = cost.totals(a)
                n_ok += int(t["cycles"] == r["cycles"] and abs(t["energy_pj"] - r["energy_pj"]) <= 1e-9 * r["energy_pj"])
            print(f"{name:13s} on {preset:15s}: table == simulate for {n_ok}/3 random assignments")


if __name__ == "__main__":
    parts = sys.argv[1:] or ["speed", "budget", "quality", "exact"]
    for part in parts:
        print(f"-- {part}", flush=True)
        {"speed": speed, "budget": budget_resnet18, "quality": quality, "exact": exact}[part]()
