"""Speed and quality of the search (issue 9).

Run: .venv/bin/python benchmarks/bench_search.py [speed] [budget] [quality] [exact]   (all four by default;
`make bench`); `quality-unseeded` (the search not started from the allocation baselines) and `quality-nm`
(N:M candidates only, as before unstructured densities were default candidates) are the ablations.

* speed: evaluations per second from the tables (ResNet-50, 54 layers x 10 candidates, one core,
  batches of 100,000); ResNet-50's tables for 10 candidates on vegeta-flex (warm JIT) and where the
  time goes; a 5,000-evaluation Pareto search on ResNet-50 including tables.
* quality: on ResNet-50 and BERT-base (reconstruction proxy on synthetic calibration inputs, and
  magnitude), the search's default candidates: hypervolume of the NSGA-II front vs random search at
  the same number of evaluations over 5 seeds (mean and spread), and on how many seeds the front
  covers each baseline (some front point no worse in (proxy, cycles) and some in (proxy, energy); the
  baselines simulated on their own); exact vs greedy vs uniform patterns at 0.6 and 0.8 x dense cycles.
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
from search.candidates import DEFAULT_CANDIDATES  # noqa: E402
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


def _weakly(F, f, rel=1e-12):
    """Mask of the rows of F no worse than f in every column. Baselines are simulated and summed by
    pandas, the front is summed from the tables: equal costs may differ in the last bit, so 'no
    worse' allows a relative 1e-12."""
    return np.all(F <= f + rel * np.abs(f), axis=1)


def _strictly(F, f, rel=1e-12):
    return _weakly(F, f, rel) & np.any(F < f - rel * np.abs(f), axis=1)


def _status(F, f):
    """How the front F (1 - proxy, cycles, energy) covers a baseline f: a baseline is covered when
    some front point is no worse in (proxy, cycles) and some front point is no worse in (proxy,
    energy); 'one point' when a single front point is no worse in all three."""
    cyc, en = _weakly(F[:, [0, 1]], f[[0, 1]]), _weakly(F[:, [0, 2]], f[[0, 2]])
    if not (cyc.any() and en.any()):
        return "NOT covered" if not (cyc.any() or en.any()) else ("covered in cycles only" if cyc.any()
                                                                   else "covered in energy only")
    strict = _strictly(F[:, [0, 1]], f[[0, 1]]).any() and _strictly(F[:, [0, 2]], f[[0, 2]]).any()
    one = _weakly(F, f).any()
    return ("dominated" if strict else "on the front") + ("" if one else " (by two points)")


def quality(models=("resnet50", "bert_base"), seeds=range(5), evals=5000, cands=DEFAULT_CANDIDATES,
            seed_baselines=True):
    """NSGA-II vs random search and the baselines; ``seed_baselines``: the allocation baselines'
    per-layer densities are extra candidates of their layers and start both searches (as in
    ``sparsim search``); False leaves them out (the ablation)."""
    acc = accel.load("vegeta-flex")
    cands = list(cands)
    for name in models:
        model, inputs = zoo.build(name, seed=0, batch=1)
        wl = sparsim.trace(model, inputs).replace(name=name)
        t0 = time.perf_counter()
        cal = capture(model, inputs, wl, rows=256, seed=0)
        allocs = bl.allocation_patterns(wl, (), 0.5) if seed_baselines else None
        cost = HardwareCost(wl, acc, cands, extra=bl.allocation_extras(allocs, wl) if allocs else None)
        print(f"== {name}: {len(wl.layers)} layers, candidates {cands}"
              f"{' + the allocation baselines per layer' if allocs else ''} ({cost.shape[1]} columns), "
              f"tables + calibration {time.perf_counter() - t0:.1f} s")
        base_wl = bl.all_baselines(cost)
        sims = {b: simulate(w, acc).totals for b, w in base_wl.items()}
        if allocs:     # the tables hold the allocations' exact costs (the baselines simulated on their own)
            for b, pats in allocs.items():
                t, r = cost.totals(bl.allocation_assignment(cost, pats)), sims[b]
                same = t["cycles"] == r["cycles"] and abs(t["energy_pj"] - r["energy_pj"]) <= 1e-9 * r["energy_pj"]
                print(f"  {b}: table == simulate: {same}")
        for kind in ("reconstruction", "magnitude"):
            prox = Proxy(kind, wl, cal)
            table = prox.table(cost)
            problem = Problem(cost, table)
            seeds_init = _uniform_seeds(problem, allocs)
            base = []
            d = cost.dense_totals
            for bname, bwl in base_wl.items():
                r = sims[bname]
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
                    st = _status(F, f)
                    status.setdefault(bname, []).append(st)
                    ok.append(st.startswith(("dominated", "on the front")))
                    if not ok[-1]:
                        near = F[np.argsort(np.abs(F[:, 0] - f[0]))[:3]]
                        print(f"    seed {seed}: {bname} {np.round(f, 4)} {st}; the front points nearest in proxy: "
                              + ", ".join(str(np.round(x, 4)) for x in near))
                dom.append(all(ok))
            print(f"  {kind}: hypervolume NSGA-II {np.mean(hv_n):.4f} +- {np.std(hv_n):.4f}, random search "
                  f"{np.mean(hv_r):.4f} +- {np.std(hv_r):.4f} ({evals} evaluations, seeds {list(seeds)}); "
                  f"NSGA-II > random on {sum(a > b for a, b in zip(hv_n, hv_r))}/{len(hv_n)} seeds; "
                  f"every baseline covered in (proxy, cycles) and (proxy, energy) on {sum(dom)}/{len(dom)} seeds")
            print("    per baseline over the seeds: " + "; ".join(
                f"{b}: " + ", ".join(f"{v} {st.count(v)}/{len(st)}" for v in dict.fromkeys(st))
                for b, st in status.items()))
            print("    baselines (1 - proxy, cycles x dense, energy x dense): " + "; ".join(
                f"{b} ({f[0]:.3f}, {f[1]:.3f}, {f[2]:.3f})" for b, f in base))
            budgets(cost, table, cands)


def budgets(cost, table, cands, fractions=(0.6, 0.8)):
    """Exact vs greedy vs every uniform pattern under budgets of dense cycles, over the shared
    candidates (the baselines' per-layer extras left out, as in ``--objective latency``)."""
    from search.knapsack import choose_exact, choose_greedy
    dense = cost.dense_totals["cycles"]
    S = cost.n_shared
    allowed, value, cyc = cost.allowed[:, :S], table[:, :S], cost.cycles[:, :S].astype(np.float64)
    idx = np.arange(len(allowed))
    fastest = float(np.where(allowed, cyc, np.inf).min(axis=1).sum())
    for frac in fractions:
        budget = frac * dense
        if fastest > budget:
            print(f"    {frac} x dense cycles: infeasible, the fastest assignment is {fastest / dense:.3f} x")
            continue
        t0 = time.perf_counter()
        proof: dict = {}
        ex = choose_exact(value, cyc, allowed, budget, info=proof)
        t_ex = time.perf_counter() - t0
        gr = choose_greedy(value, cyc, allowed, budget)
        how = ("proven optimal" if proof["optimal"] else f"not proven optimal, gap <= {proof['gap']:.2e}")
        line = [f"exact {value[idx, ex].sum():.4f} ({cost.totals(ex)['cycles'] / dense:.3f} x, {how}, {t_ex:.1f} s)",
                f"greedy {value[idx, gr].sum():.4f} ({cost.totals(gr)['cycles'] / dense:.3f} x)"]
        for p in cands[1:]:
            a = cost.uniform(p)
            t = cost.totals(a)["cycles"]
            line.append(f"uniform {p} {value[idx, a].sum():.4f} ({t / dense:.3f} x, "
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


def main():
    parts = sys.argv[1:] or ["speed", "budget", "quality", "exact"]
    for part in parts:
        print(f"-- {part}", flush=True)
        {"speed": speed, "budget": budget_resnet18, "quality": quality, "exact": exact,
         "quality-unseeded": lambda: quality(seed_baselines=False),
         "quality-nm": lambda: quality(cands=["dense", "2:4", "1:4", "2:8"], seed_baselines=False)}[part]()


if __name__ == "__main__":
    from docs_out import run_recorded
    run_recorded("search", "bench_search.py", main)
