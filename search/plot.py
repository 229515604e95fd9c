"""The front against the baselines: proxy vs cycles and proxy vs energy, one PNG."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def plot_front(result, path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() != ".png":
        from .errors import SearchError
        raise SearchError(f"--plot {path}: expected a .png file name")
    info = result.info
    dense = info["dense"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6), sharey=True)
    for ax, metric, label, scale in ((axes[0], "cycles", "cycles (millions)", 1e-6),
                                     (axes[1], "energy_pj", "energy (mJ)", 1e-9)):
        if result.random is not None and len(result.random):
            r = result.random.sort_values(metric)
            ax.plot(r[metric] * scale, r["proxy"], ".", color="0.6", ms=4,
                    label=f"random search, non-dominated ({info.get('evals', '?')} evals)")
        f = result.front.sort_values(metric)
        # the 2-D front of this projection, as a step line; every 3-D point as a dot
        best, xs, ys = -np.inf, [], []
        for x, y in zip(f[metric], f["proxy"]):
            if y > best:
                xs.append(x * scale)
                ys.append(y)
                best = y
        name = {"pareto": "NSGA-II front", "latency": "exact choice", "energy": "exact choice"}[result.objective]
        if result.objective == "pareto":
            ax.plot(f[metric] * scale, f["proxy"], "o", color="tab:blue", ms=3, alpha=0.35)
            ax.step(xs, ys, where="post", color="tab:blue", lw=1.8, label=name)
        else:
            ax.plot(f[metric] * scale, f["proxy"], "*", color="tab:red", ms=16, label=name, zorder=5)
        markers = iter("sDv^<>phX8")
        for _, b in result.baselines.iterrows():
            ax.plot(b[metric] * scale, b["proxy"], next(markers, "x"), ms=8, label=b["name"], mfc="none", mew=1.6)
        if result.objective == "pareto" and result.budget is not None:
            c = result.front.loc[result._index(None)]
            ax.plot(c[metric] * scale, c["proxy"], "*", color="tab:red", ms=15, zorder=6,
                    label="best within the budget")
        if result.budget is not None:
            m = info.get("metric", "cycles")
            if m == metric:
                ax.axvline(result.budget * dense[metric] * scale, color="tab:red", ls="--", lw=1,
                           label=f"budget {result.budget:g} x dense")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{result.proxy} proxy (1 = dense, higher is better)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8.5, frameon=False)
    fig.suptitle(f"{info.get('model', '')} on {info.get('accelerator', '')}: per-layer sparsity search "
                 f"vs baselines ({result.proxy} proxy)")
    fig.tight_layout(rect=(0, 0.14, 1, 0.95))
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path
