"""Hardware-aware pruning: permutation efficacy and time, cycles before/after permutation, and real
accuracy on scikit-learn digits at cycle budgets (front vs uniform patterns vs random search).

    python benchmarks/bench_prune.py [--part perm|acc|all] [--seeds 5] [--epochs 10] [--front-epochs 5]
                                     [--models mlp_digits,cnn_digits] [--accels vegeta-flex,sat-vcu1525]

Part ``perm``: ResNet-50 (seeded weights) layers, 2:4 and 2:8, magnitude objective: ASP's efficacy
and seconds per layer (ASP publishes 32-36 % in 22-25 s on CPU for a 64x128 layer); then unstructured
50 % masks on vegeta-flex, simulated cycles with the identity order and with the order the cycles
objective finds (best over the accelerator's N:M modes).

Part ``acc``: mlp_digits and cnn_digits, batch 1, fixed-mask fine-tuning. For each seed: the exact
budgeted choice at a budget 5 % below what uniform 2:4 costs (vegeta-flex and sat-vcu1525), and on
vegeta-flex an (accuracy, cycles) front from the exact choice at K budgets against K random
assignments and the uniform patterns, each point fine-tuned the same way (equal evaluations).
Hypervolume is over (accuracy drop from dense, cycles / dense), reference (2 points, 1.0).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def _ms(xs):
    return f"{statistics.mean(xs):.2f} +- {statistics.pstdev(xs):.2f}"


def part_perm():
    import sparsim
    from accel import load
    from search.permute import apply_to_gemm, permute_cycles, permute_magnitude, simulated_cycles
    from workloads import unstructured

    wl = sparsim.trace_zoo("resnet50", batch=1)
    layers = ["layer2.0.conv3", "layer1.0.conv2", "layer2.0.conv1", "layer3.0.conv1", "layer1.0.conv3"]
    print("permutation, magnitude objective (ResNet-50 seeded weights; 64x128 = first 64 output channels of "
          "layer2.0.conv3, 128 input channels)")
    print(f"{'layer':22s} {'k x n':>11s} {'N:M':>4s} {'efficacy %':>10s} {'wall s':>7s} {'CPU s':>6s}")
    for name in layers:
        lay = wl.layer(name)
        w = lay.gemm_weight()
        label = name
        if name == "layer2.0.conv3":
            w, label = w[:, :, :64], "64x128 (layer2.0.conv3)"
        cin = lay.conv.in_channels
        for n, m in ((2, 4), (2, 8)):
            p = permute_magnitude(w, cin, n, m, rounds=20)
            print(f"{label:22s} {w.shape[1]:>5d}x{w.shape[2]:<5d} {n}:{m} {p.efficacy * 100:10.1f} {p.seconds:7.2f} "
                  f"{p.cpu_seconds:6.2f}")
    print("ASP (Pool et al. 2021, CPU): 32-36 % in 22-25 s on a 64x128 layer")

    acc = load("vegeta-flex")
    print("\ncycles of unstructured 50 % masks on vegeta-flex, batch 1, identity vs permuted (cycles objective)")
    print(f"{'layer':18s} {'before':>9s} {'after':>9s} {'change %':>8s} {'seconds':>8s}")
    for name in ["layer1.0.conv1", "layer1.0.conv3", "layer2.0.conv1", "layer2.0.conv3", "layer3.0.conv1"]:
        lay = wl.layer(name)
        gm = unstructured(0.5).mask(lay.gemm_weight())
        cin = lay.conv.in_channels
        before = simulated_cycles(lay, gm, acc)
        best, secs = before, 0.0
        for n, m in acc.compute.sparse.modes:
            if n >= m:
                continue
            p = permute_cycles(gm, cin, n, m, acc.compute.cols, rounds=10)
            secs += p.seconds
            best = min(best, simulated_cycles(lay, apply_to_gemm(gm, cin, p.perm), acc))
        print(f"{name:18s} {before:9,d} {best:9,d} {100 * (best - before) / before:8.1f} {secs:8.2f}")


def _hv(points, ref=(2.0, 1.0)):
    """2-D hypervolume (minimize both) of (accuracy drop, cycles ratio) points."""
    pts = sorted((min(d, ref[0]), min(c, ref[1])) for d, c in points)
    hv, best_d = 0.0, ref[0]
    for d, c in sorted(pts, key=lambda p: p[1]):
        if d < best_d:
            hv += (best_d - d) * (ref[1] - c)
            best_d = d
    return hv


def part_acc(seeds, epochs, front_epochs, models, accels):
    from search.prune import digits_cost, finetuned_accuracy
    K = 3
    for model in models:
        for accel_name in accels:
            drops, ratios, u24 = [], [], []
            hv = {"front": [], "random": [], "uniform": []}
            t0 = time.perf_counter()
            for seed in range(seeds):
                net, dense_acc, cost = digits_cost(model, accel_name, seed=seed, candidates=["dense", "2:4", "1:4", "2:8"])
                dense = cost.dense_totals["cycles"]
                from search.sparsifier import retained_magnitude
                proxy = retained_magnitude(cost)
                c24 = cost.totals(cost.uniform("2:4"))["cycles"]
                budget = 0.95 * c24
                a = cost.choose(proxy, budget)
                acc_b = finetuned_accuracy(model, seed, cost.masks(a), epochs)
                drops.append(dense_acc - acc_b)
                ratios.append(cost.totals(a)["cycles"] / dense)
                u24.append(c24 / dense)
                if accel_name != "vegeta-flex":
                    continue
                lo = cost.min_cost("cycles")
                # K budgets from the cheapest assignment up to what uniform 2:4 costs
                fr = [cost.choose(proxy, b + 0.5) for b in np.linspace(lo, c24, K)]
                rng = np.random.default_rng(seed)
                rnd = [np.array([rng.choice(o) for o in cost.options]) for _ in range(K)]
                uni = [cost.uniform(p) for p in ("2:4", "1:4", "2:8")][:K]
                for kind, pop in (("front", fr), ("random", rnd), ("uniform", uni)):
                    pts = [(dense_acc - finetuned_accuracy(model, seed, cost.masks(x), front_epochs),
                            cost.totals(x)["cycles"] / dense) for x in pop]
                    hv[kind].append(_hv(pts))
            print(f"{model} on {accel_name}, {seeds} seeds, {epochs} fine-tuning epochs at the budget, {front_epochs} "
                  f"for the front comparison ({time.perf_counter() - t0:.0f} s):")
            print(f"  uniform 2:4 costs {_ms(u24)} x dense cycles; budget 0.95 x that: chosen "
                  f"{_ms(ratios)} x dense, accuracy drop {_ms(drops)} points (max {max(drops):.2f})")
            if hv["front"]:
                print(f"  hypervolume (drop <= 2 pts, cycles <= dense; higher is better), {K} evaluations each: "
                      + ", ".join(f"{k} {_ms(v)}" for k, v in hv.items()))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", default="all", choices=["perm", "acc", "all"])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs at the budget")
    ap.add_argument("--front-epochs", type=int, default=5, help="fine-tuning epochs per front / random / uniform point")
    ap.add_argument("--models", default="mlp_digits,cnn_digits")
    ap.add_argument("--accels", default="vegeta-flex,sat-vcu1525")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.part in ("perm", "all"):
        part_perm()
    if args.part in ("acc", "all"):
        part_acc(args.seeds, args.epochs, args.front_epochs, args.models.split(","), args.accels.split(","))


if __name__ == "__main__":
    main()
