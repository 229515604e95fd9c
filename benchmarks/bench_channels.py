"""Channel coupling (issue 23, item 3): what ``channel:D`` costs when its consumers shrink.

For each model (default: resnet18 and mobilenet_v2 on vegeta-flex, candidates dense, 2:4, 1:4,
channel:0.5, channel:0.75, magnitude proxy):

1. ``channel:0.5`` on the first conv whose group has one producer: its consumers' cycles before and
   after, and the physically smaller model (masked, channels removed with ``search.shrink_model``,
   traced again) re-simulated against the reported total.
2. The exact choice at a budget of 0.6 x dense cycles with coupled costs, against the choice the
   uncoupled tables make: what the uncoupled tables report for their choice, what that choice
   really costs when the channels are removed, and whether it can be built at all (a residual group
   whose members took different channel candidates cannot).

Run: ``python benchmarks/bench_channels.py [model ...]`` (about a minute per model on a quiet
machine). Prints Markdown tables.
"""
from __future__ import annotations

import copy
import sys
import time

import numpy as np
import torch

import accel
from search import HardwareCost, Proxy, SearchError, channel_graph, shrink_model
from simulator import simulate
from workloads import trace, zoo

CANDS = ["dense", "2:4", "1:4", "channel:0.5", "channel:0.75"]


def _shrunk_totals(model, x, graph, cost, a, acc):
    small = copy.deepcopy(model)
    params = dict(small.named_parameters())
    with torch.no_grad():
        for name, m in cost.masks(a).items():
            params[name].mul_(torch.from_numpy(m))
    kept = cost.kept_channels(a)
    shrink_model(small, graph, kept)
    return simulate(trace(small, x), acc).totals


def run(name: str, acc) -> tuple[list, list]:
    model, x = zoo.build(name)
    model.eval()
    wl = trace(model, x)
    t0 = time.process_time()
    graph = channel_graph(model, x, wl)
    coupled = HardwareCost(wl, acc, CANDS, graph=graph)
    t_c = time.process_time() - t0
    t0 = time.process_time()
    plain = HardwareCost(wl, acc, CANDS)
    t_p = time.process_time() - t0
    names = coupled.layer_names
    ch = CANDS.index("channel:0.5")
    cp = coupled.coupling
    g = next(g for g in cp.groups if len(graph.groups[g].producers) == 1 and graph.groups[g].consumers)
    prod = graph.groups[g].producers[0]
    a = np.zeros(len(names), dtype=np.int64)
    a[prod] = ch
    before = simulate(coupled.apply(np.zeros_like(a)), acc).layers.set_index("name")
    after = simulate(coupled.apply(a), acc).layers.set_index("name")
    rep = coupled.totals(a)
    shr = _shrunk_totals(model, x, graph, coupled, a, acc)
    cons = ", ".join(f"{names[c]} {int(before.loc[names[c], 'cycles']):,} -> {int(after.loc[names[c], 'cycles']):,}"
                     for c in graph.groups[g].consumers)
    demo = [name, names[prod], cons, f"{plain.totals(a)['cycles']:,}", f"{rep['cycles']:,}",
            f"{shr['cycles']:,}", "yes" if shr["cycles"] == rep["cycles"] and
            abs(shr["energy_pj"] - rep["energy_pj"]) <= 1e-9 * rep["energy_pj"] else "NO"]
    # the exact choice at 0.6 x dense cycles, coupled and uncoupled
    budget = 0.6 * coupled.dense_totals["cycles"]
    pc, pp = Proxy("magnitude", wl).table(coupled), Proxy("magnitude", wl).table(plain)
    t0 = time.process_time()
    ac = coupled.choose(pc, budget)
    t_mc = time.process_time() - t0
    ap = plain.choose(pp, budget)
    try:
        true = coupled.totals(ap)
        real = f"{true['cycles'] / coupled.dense_totals['cycles']:.3f}"
        proxy_true = f"{coupled.evaluate_table(pc, ap[None])[0]:.4f}"
    except SearchError:
        real, proxy_true = "cannot be built (residual group split)", "-"
    choice = [name, f"{len(cp.groups)} / {len(graph.groups)}", f"{t_c:.1f} / {t_p:.1f}", f"{t_mc:.2f}",
              f"{coupled.evaluate_table(pc, ac[None])[0]:.4f}",
              f"{coupled.totals(ac)['cycles'] / coupled.dense_totals['cycles']:.3f}",
              f"{plain.evaluate_table(pp, ap[None])[0]:.4f}",
              f"{plain.totals(ap)['cycles'] / plain.dense_totals['cycles']:.3f}", real, proxy_true,
              str(sum(CANDS[c].startswith("channel") for c in ac)), str(sum(CANDS[c].startswith("channel") for c in ap))]
    return demo, choice


def main(models) -> None:
    acc = accel.load("vegeta-flex")
    demos, choices = [], []
    for m in models:
        d, c = run(m, acc)
        demos.append(d)
        choices.append(c)
    print("### channel:0.5 on one conv (vegeta-flex)\n")
    print("| model | conv | its consumers' cycles (dense -> coupled) | total, uncoupled tables | total, coupled "
          "| shrunk model re-simulated | equal |")
    print("|---|---|---|---|---|---|---|")
    for d in demos:
        print("| " + " | ".join(d) + " |")
    print("\n### Exact choice at 0.6 x dense cycles, magnitude proxy\n")
    print("| model | groups coupled / all | tables CPU s coupled / plain | MILP CPU s | coupled: proxy | coupled: "
          "cycles x dense | uncoupled: reported proxy | reported cycles x dense | its real cycles x dense "
          "| its real proxy | channel layers (coupled) | channel layers (uncoupled) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for c in choices:
        print("| " + " | ".join(c) + " |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["resnet18", "mobilenet_v2"])
