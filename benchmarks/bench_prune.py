"""Hardware-aware pruning: permutation efficacy and time, cycles before/after permutation, and real
accuracy on scikit-learn digits at cycle budgets (front vs uniform patterns vs random search).

    python benchmarks/bench_prune.py [--full] [--part perm|acc|all] [--seeds N] [--epochs 10]
                                     [--models mlp_digits,cnn_digits] [--accels vegeta-flex,sat-vcu1525]
                                     [--proxy sensitivity|magnitude]

The default (what ``make bench`` runs) is quick: the permutation part and the accuracy part for one
model (cnn_digits) and one seed. ``--full`` is the closing table: 5 seeds, mlp_digits and cnn_digits.

Part ``perm``: ResNet-50 (seeded weights) layers, 2:4 and 2:8, magnitude objective: ASP's efficacy
and seconds per layer (ASP publishes 32-36 % in 22-25 s on CPU for a 64x128 layer). Then unstructured
50 % masks on vegeta-flex: simulated cycles with the identity order and with the order the cycles
objective finds, and why they hardly move: the share of (4-channel group, kernel position, block of
array columns) units whose worst column holds at most 2 nonzeros (only those can run at 2:4). Then a
strict 2:4 design (sparse-tc-2of4), where a 2:4 mask costs the same cycles whatever the order and a
permutation raises the magnitude 2:4 keeps: cycles, kept magnitude and digits accuracy with and
without permutation.

Part ``acc``: batch 1, fixed-mask fine-tuning, the same recipe for every seed and every point
(``--epochs`` epochs, Adam lr 1e-3). Per seed: the exact budgeted choice with the proxy at a budget
5 % below what uniform 2:4 costs (or below dense where 2:4 saves nothing, as on sat-vcu1525). On
vegeta-flex also the (accuracy drop, cycles) comparison, every point fine-tuned the same way: the
front is seeded with the 3 uniform assignments (2:4, 1:4, 2:8) and adds the exact choice at 3
budgets, 1/4, 1/2 and 3/4 of the way from the cheapest assignment to dense (6 evaluations); random
is 6 uniformly random assignments (equal evaluations); uniform is its 3 points (all there are).
Reported point by point (:func:`search.prune.covers`): how
many uniform / random points a front point weakly dominates, whether some front point is strictly
better, and the hypervolume with reference (2 points, 1.0 x dense cycles).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def _ms(xs):
    return f"{statistics.mean(xs):.2f} +- {statistics.pstdev(xs):.2f}"


def part_perm(seeds=1):
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
    bw = acc.compute.cols
    print(f"\ncycles of unstructured 50 % masks on vegeta-flex, batch 1, identity vs permuted (cycles objective);"
          f"\n'<=2 nz': share of (4-channel group, kernel position, {bw}-column block) units whose worst column"
          f" holds at most 2 nonzeros")
    print(f"{'layer':18s} {'before':>9s} {'after':>9s} {'change %':>8s} {'<=2 nz before':>13s} {'after':>6s} "
          f"{'seconds':>8s}")
    for name in ["layer1.0.conv1", "layer1.0.conv3", "layer2.0.conv1", "layer2.0.conv3", "layer3.0.conv1"]:
        lay = wl.layer(name)
        gm = unstructured(0.5).mask(lay.gemm_weight())
        cin = lay.conv.in_channels
        before = simulated_cycles(lay, gm, acc)
        best, best_gm, secs = before, gm, 0.0
        for n, m in acc.compute.sparse.modes:
            if n >= m:
                continue
            p = permute_cycles(gm, cin, n, m, bw, rounds=10)
            secs += p.seconds
            pg = apply_to_gemm(gm, cin, p.perm)
            c = simulated_cycles(lay, pg, acc)
            if c < best:
                best, best_gm = c, pg
        print(f"{name:18s} {before:9,d} {best:9,d} {100 * (best - before) / before:8.1f} "
              f"{100 * _share_at_most(gm, cin, 4, bw, 2):12.2f}% {100 * _share_at_most(best_gm, cin, 4, bw, 2):5.2f}% "
              f"{secs:8.2f}")
    part_strict(seeds)


def _share_at_most(gm, cin, m, bw, k):
    """Share of (m-channel group, kernel position, bw-column block) units whose worst column has <= k nonzeros."""
    from search.permute import channel_view
    b = channel_view(gm.astype(np.int32), cin)
    cols = gm.shape[2]
    pos = b.shape[1] // cols
    cnt = b.reshape(cin // m, m, pos, cols).sum(axis=1)
    nb = -(-cols // bw)
    pad = np.zeros(cnt.shape[:2] + (nb * bw,), dtype=cnt.dtype)
    pad[..., :cols] = cnt
    return float((pad.reshape(cnt.shape[:2] + (nb, bw)).max(axis=3) <= k).mean())


def part_strict(seeds=1):
    """A strict 2:4 design: a permutation cannot change cycles, only what 2:4 keeps."""
    import copy

    import sparsim
    from accel import load
    from search.cost import HardwareCost
    from search.finetune import accuracy, digits_data, pretrained_digits
    from search.permute import apply_to_gemm, permute_magnitude, permute_model, simulated_cycles
    from search.prune import finetuned_accuracy
    from workloads import NM
    from workloads.tracer import trace

    acc = load("sparse-tc-2of4")
    wl = sparsim.trace_zoo("resnet50", batch=1)
    print("\nstrict 2:4 (sparse-tc-2of4, batch 1): 2:4 magnitude masks, identity vs permuted (magnitude objective)")
    print(f"{'layer':18s} {'cycles before':>13s} {'after':>9s} {'kept |w| before %':>17s} {'after %':>8s}")
    for name in ["layer1.0.conv3", "layer2.0.conv1", "layer3.0.conv1"]:
        lay = wl.layer(name)
        w = lay.gemm_weight()
        cin = lay.conv.in_channels
        p = permute_magnitude(w, cin, 2, 4, rounds=20)
        pw = apply_to_gemm(w, cin, p.perm)
        kept = lambda x: float(np.abs(x[NM(2, 4).mask(x)]).sum() / np.abs(x).sum())  # noqa: E731
        m0, m1 = NM(2, 4).mask(w), NM(2, 4).mask(pw)
        print(f"{name:18s} {simulated_cycles(lay, m0, acc):13,d} {simulated_cycles(lay, m1, acc):9,d} "
              f"{100 * kept(w):17.2f} {100 * kept(pw):8.2f}")
    print(f"cnn_digits, uniform 2:4 on every layer, 10 fixed-mask fine-tuning epochs, seeds 0..{seeds - 1}")
    print(f"{'seed':>4s} {'order':10s} {'cycles':>7s} {'kept |w| %':>10s} {'one-shot acc %':>14s} {'fine-tuned %':>12s}"
          f" {'dense %':>8s}")
    gain = {"kept": [], "ft": []}
    for seed in range(seeds):
        dense_net, dense_acc = pretrained_digits("cnn_digits", seed=seed)
        _, _, xt, yt = digits_data(seed)
        row = {}
        for label in ("identity", "permuted"):
            net = copy.deepcopy(dense_net)
            if label == "permuted":
                permute_model(net, 2, 4, seed=seed)
            cost = HardwareCost(trace(net, (xt[:1],)).replace(name="cnn_digits"), acc, candidates=["dense", "2:4"])
            a = cost.uniform("2:4")
            masks = cost.masks(a)
            params = dict(net.named_parameters())
            kept = sum(float(params[k].detach().abs()[torch.as_tensor(v)].sum()) for k, v in masks.items()) / \
                sum(float(params[k].detach().abs().sum()) for k in masks)
            one = copy.deepcopy(net)
            with torch.no_grad():
                for k, v in masks.items():
                    dict(one.named_parameters())[k].mul_(torch.as_tensor(v))
            ft = finetuned_accuracy("cnn_digits", seed, masks, 10, net=net)
            row[label] = (kept, ft)
            print(f"{seed:4d} {label:10s} {cost.totals(a)['cycles']:7,d} {100 * kept:10.2f} "
                  f"{accuracy(one, xt, yt):14.2f} {ft:12.2f} {dense_acc:8.2f}")
        gain["kept"].append(100 * (row["permuted"][0] - row["identity"][0]))
        gain["ft"].append(row["permuted"][1] - row["identity"][1])
    print(f"permuted - identity: kept |w| {_ms(gain['kept'])} points, fine-tuned accuracy {_ms(gain['ft'])} points")


def _hv(points, ref=(2.0, 1.0)):
    from search.algorithms import hypervolume
    return hypervolume(np.asarray(points, dtype=np.float64).reshape(-1, 2), ref=ref)


def part_acc(seeds, epochs, models, accels, proxy_kind):
    from search.prune import covers, digits_cost, digits_proxy, finetuned_accuracy
    UNI = ("2:4", "1:4", "2:8")
    FRACTIONS = (0.25, 0.5, 0.75)
    K = len(UNI) + len(FRACTIONS)
    for model in models:
        for accel_name in accels:
            drops, ratios, u24 = [], [], []
            hv = {"front": [], "random": [], "uniform": []}
            cov = {"uniform": [], "random": []}
            t0 = time.perf_counter()
            print(f"{model} on {accel_name}, proxy {proxy_kind}, {epochs} fine-tuning epochs per point:")
            for seed in range(seeds):
                net, dense_acc, cost = digits_cost(model, accel_name, seed=seed, candidates=["dense", *UNI])
                dense = cost.dense_totals["cycles"]
                proxy = digits_proxy(proxy_kind, net, cost, seed)
                c24 = cost.totals(cost.uniform("2:4"))["cycles"]
                budget = 0.95 * min(c24, dense)
                a = cost.choose(proxy, budget)
                memo = {}

                def drop(x):
                    key = tuple(int(v) for v in x)
                    if key not in memo:
                        memo[key] = dense_acc - finetuned_accuracy(model, seed, cost.masks(x), epochs)
                    return memo[key]
                drops.append(drop(a))
                ratios.append(cost.totals(a)["cycles"] / dense)
                u24.append(c24 / dense)
                print(f"  seed {seed}: dense {dense_acc:.2f} %, uniform 2:4 {c24 / dense:.3f} x dense; budget "
                      f"{budget / dense:.3f}: {'/'.join(cost.patterns(a))} {ratios[-1]:.3f} x dense, drop "
                      f"{drops[-1]:+.2f} points")
                if accel_name != "vegeta-flex":
                    continue
                uni = [cost.uniform(p) for p in UNI]
                # the front starts from the uniform assignments (seeding) and adds the exact choice at
                # budgets 1/4, 1/2, 3/4 of the way from the cheapest assignment to dense; random gets as
                # many evaluations
                lo = cost.min_cost("cycles")
                fr = uni + [cost.choose(proxy, np.floor(lo + (dense - lo) * f) + 0.5) for f in FRACTIONS]
                rng = np.random.default_rng(seed)
                rnd = [np.array([rng.choice(o) for o in cost.options]) for _ in range(len(fr))]
                pts = {kind: [(drop(x), cost.totals(x)["cycles"] / dense) for x in pop]
                       for kind, pop in (("front", fr), ("random", rnd), ("uniform", uni))}
                for kind in hv:
                    hv[kind].append(_hv(pts[kind]))
                for kind in cov:
                    cov[kind].append(covers(pts["front"], pts[kind]))
                fmt = lambda ps: ", ".join(f"({d:+.2f}, {c:.3f})" for d, c in ps)  # noqa: E731
                print(f"    front   {' | '.join('/'.join(cost.patterns(x)) for x in fr[len(UNI):])} (+ the uniform "
                      f"points): {fmt(pts['front'][len(UNI):])}")
                print(f"    uniform {', '.join(UNI)}: {fmt(pts['uniform'])}; covered "
                      f"{sum(cov['uniform'][-1]['covered'])}/{len(UNI)}, front strictly better somewhere: "
                      f"{cov['uniform'][-1]['strict']}")
                print(f"    random  {fmt(pts['random'])}; covered {sum(cov['random'][-1]['covered'])}/{K}, "
                      f"strict: {cov['random'][-1]['strict']}")
            print(f"  {seeds} seeds ({time.perf_counter() - t0:.0f} s): uniform 2:4 {_ms(u24)} x dense cycles; "
                  f"chosen {_ms(ratios)} x dense; accuracy drop {_ms(drops)} points, max {max(drops):.2f}, "
                  f"seeds within 0.5: {sum(d <= 0.5 for d in drops)}/{seeds}")
            if hv["front"]:
                print(f"  hypervolume (drop <= 2 points, cycles <= dense; higher is better); front and random {K} "
                      f"evaluations each, uniform its {len(UNI)} points: "
                      + ", ".join(f"{k} {_ms(v)}" for k, v in hv.items()))
                for kind, cs in cov.items():
                    print(f"  front vs {kind}: {kind} points weakly dominated by a front point "
                          f"{sum(sum(c['covered']) for c in cs)}/{sum(len(c['covered']) for c in cs)}; seeds where a front point is strictly "
                          f"better: {sum(c['strict'] for c in cs)}/{len(cs)}; seeds where the front is better "
                          f"(all covered and strict): {sum(c['better'] for c in cs)}/{len(cs)}")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="the closing table: 5 seeds, both digits models")
    ap.add_argument("--part", default="all", choices=["perm", "acc", "all"])
    ap.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 1, --full 5)")
    ap.add_argument("--epochs", type=int, default=10, help="fixed-mask fine-tuning epochs per evaluated point")
    ap.add_argument("--models", default=None, help="default cnn_digits, --full mlp_digits,cnn_digits")
    ap.add_argument("--accels", default="vegeta-flex,sat-vcu1525")
    ap.add_argument("--proxy", default="sensitivity", choices=["sensitivity", "magnitude"])
    args = ap.parse_args(argv)
    seeds = args.seeds or (5 if args.full else 1)
    models = (args.models or ("mlp_digits,cnn_digits" if args.full else "cnn_digits")).split(",")
    torch.set_num_threads(1)
    if args.part in ("perm", "all"):
        part_perm(seeds)
    if args.part in ("acc", "all"):
        part_acc(seeds, args.epochs, models, args.accels.split(","), args.proxy)


if __name__ == "__main__":
    main()
