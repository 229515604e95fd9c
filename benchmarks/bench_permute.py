"""Channel permutations for N:M (issue 23): efficacy and time, 2:4 and 1:4, 20 rounds, seed 0.

Run: .venv/bin/python benchmarks/bench_permute.py   (about a minute of CPU; ``--regroup`` adds the
opt-in pair regrouping on every layer, several minutes more)

* ASP's test case: a 64x128 layer (the first 64 output channels of ResNet-50's layer2.0.conv3,
  128 input channels, seeded weights); ASP (Pool et al., NeurIPS 2021) reports 32-36 % efficacy in
  22-25 s on a CPU for its 64x128 case.
* ResNet-18 (seeded weights): the 8 layers whose input channels can be permuted (each block's conv2,
  fed by conv1 through batch norm and ReLU), as ``permute_model`` finds them.

Efficacy is ASP's: the share of the gap between the identity order and the unstructured bound that
the found order closes; it is never below 0 (an order that keeps no more than the identity is not
returned). Wall seconds depend on the machine's load; CPU seconds are this process's.
"""
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

import sparsim  # noqa: E402
from search.permute import permute_magnitude, producer_pairs  # noqa: E402
from search.torchmask import to_gemm_np  # noqa: E402
from workloads import zoo  # noqa: E402


def main(rounds=20, regroup_all=False):
    permute_magnitude(to_gemm_np(torch.randn(16, 16), torch.nn.Linear(16, 16)), 16, 2, 4, rounds=1)  # JIT
    print(f"| layer | k x n | N:M | efficacy % | wall s | CPU s |")
    print("|---|---|---|---|---|---|")
    wl = sparsim.trace_zoo("resnet50", batch=1)
    w = wl.layer("layer2.0.conv3").gemm_weight()[:, :, :64]
    rows = [("ASP 64x128 (ResNet-50 layer2.0.conv3)", w, 128)]
    model, _ = zoo.build("resnet18", seed=0)
    for consumer in producer_pairs(model):
        mod = model.get_submodule(consumer)
        rows.append((f"ResNet-18 {consumer}", to_gemm_np(mod.weight, mod), mod.weight.shape[1]))
    total = {(2, 4): [0.0, 0.0], (1, 4): [0.0, 0.0]}
    for label, w, cin in rows:
        for n, m in ((2, 4), (1, 4)):
            p = permute_magnitude(w, cin, n, m, rounds=rounds, seed=0)
            assert p.found <= p.base
            if label.startswith("ResNet-18"):
                total[(n, m)][0] += p.seconds
                total[(n, m)][1] += p.cpu_seconds
            print(f"| {label} | {w.shape[1]}x{w.shape[2]} | {n}:{m} | {p.efficacy * 100:.1f} | {p.seconds:.2f} | "
                  f"{p.cpu_seconds:.2f} |", flush=True)
    for (n, m), (s, c) in total.items():
        print(f"ResNet-18, all {len(rows) - 1} layers, {n}:{m}: {s:.1f} s wall, {c:.1f} s CPU")
    # the opt-in polish: bounded exhaustive search over pairs of groups (regroup=True); on ResNet-18's
    # 256- and 512-channel layers it costs 10-15x the CPU, so by default only ASP's case here
    # (``--regroup``: every row, several minutes of CPU)
    for label, w, cin in (rows if regroup_all else rows[:1]):
        for n, m in ((2, 4), (1, 4)):
            p = permute_magnitude(w, cin, n, m, rounds=rounds, seed=0, regroup=True)
            assert p.found <= p.base
            print(f"| {label}, pair regrouping | {w.shape[1]}x{w.shape[2]} | {n}:{m} | {p.efficacy * 100:.1f} | "
                  f"{p.seconds:.2f} | {p.cpu_seconds:.2f} |", flush=True)


if __name__ == "__main__":
    t0 = time.perf_counter()
    main(regroup_all="--regroup" in sys.argv[1:])
    print(f"total {time.perf_counter() - t0:.0f} s")
