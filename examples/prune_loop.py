"""Gradual hardware-aware pruning of cnn_digits with torch.ao.pruning (docs/howto/prune.md).

Every epoch: train, then let the sparsifier pick one pattern per layer whose simulated cycles on
vegeta-flex fit this epoch's budget; CubicSL lowers the budget from 1.0 to 0.7 x dense cycles.
Prints: epoch, budget, the chosen cycles, test accuracy, the patterns of conv1 conv2 conv3 fc.
"""
import torch
import torch.nn.functional as F
from torch.ao.pruning.scheduler.cubic_scheduler import CubicSL

from search.sparsifier import HardwareAwareSparsifier
from workloads import zoo

torch.manual_seed(0)
x, y, xt, yt = zoo.digits_split(seed=0)
model, _ = zoo.build("cnn_digits", seed=0)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
sparsifier = HardwareAwareSparsifier("vegeta-flex", (xt[:1],), budget=0.7)  # 0.7 x dense cycles
sparsifier.prepare(model, None)                                     # every Conv2d and Linear
scheduler = CubicSL(sparsifier, init_sl=0.0, init_t=2, delta_t=1, total_t=6)  # cubic: 1 -> 0.7
for epoch in range(12):
    for i in range(0, len(x), 64):
        opt.zero_grad()
        F.cross_entropy(model(x[i:i + 64]), y[i:i + 64]).backward()
        opt.step()
    sparsifier.step()                                               # masks for this epoch's budget
    acc = (model(xt).argmax(1) == yt).float().mean().item()
    print(epoch, f"budget {sparsifier.budget:.3f}", sparsifier.totals()["cycles"], f"acc {acc:.3f}",
          " ".join(sparsifier.patterns().values()))
    scheduler.step()
sparsifier.squash_mask()                                            # zeros in the weights
