"""Exports of the event engine's timeline: per-tile CSV, Chrome trace-event JSON, DRAM bandwidth plot.

The Chrome format is the JSON object form of the Trace Event Format (``traceEvents`` with complete
``"ph": "X"`` events, timestamps in microseconds), which chrome://tracing and Perfetto's UI open.
One process per core, with three threads: DMA in, array, write-back; one event per simulated tile.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import SimulationError


def _need_trace(res):
    if getattr(res, "trace", None) is None:
        raise SimulationError("trace: this result has no timeline; simulate with engine='event' and trace=True "
                              "(CLI: --trace-csv / --chrome-trace / --dram-plot)")
    return res.trace


def trace_csv(res, path) -> Path:
    """One row per simulated tile: core, layer, folds, load/compute/store start and end (cycles),
    and what the array waited on before it (none, dram_load, dependency, writeback)."""
    df = _need_trace(res)
    return res._atomic(path, lambda p: df.to_csv(p, index=False))


def chrome_trace(res, path) -> Path:
    df = _need_trace(res)
    us = 1e6 / res.clock_hz
    events = []
    for core in sorted(df["core"].unique()):
        events.append({"name": "process_name", "ph": "M", "pid": int(core), "tid": 0,
                       "args": {"name": f"core {core}"}})
        for tid, name in ((1, "DMA in"), (2, "array"), (3, "write-back")):
            events.append({"name": "thread_name", "ph": "M", "pid": int(core), "tid": tid, "args": {"name": name}})
    cols = {c: df[c].to_numpy() for c in df.columns}
    for i in range(len(df)):
        args = {"layer": str(cols["layer"][i]), "tile": int(cols["tile"][i]), "folds": int(cols["folds"][i]),
                "waited_on": str(cols["waited_on"][i])}
        for tid, a, b, cat in ((1, "load_start", "load_end", "load"), (2, "compute_start", "compute_end", "compute"),
                               (3, "store_start", "store_end", "store")):
            t0, t1 = float(cols[a][i]), float(cols[b][i])
            events.append({"name": str(cols["layer"][i]), "cat": cat, "ph": "X", "pid": int(cols["core"][i]),
                           "tid": tid, "ts": t0 * us, "dur": max(0.0, t1 - t0) * us, "args": args})
    doc = {"traceEvents": events, "displayTimeUnit": "ns",
           "otherData": {"clock_hz": res.clock_hz, "source": "sparsim event engine"}}
    return res._atomic(path, lambda p: p.write_text(json.dumps(doc)))


def dram_bandwidth(res, bins: int = 400):
    """Time bin edges (cycles) and the DRAM bytes per cycle moved in each bin, per channel."""
    if not getattr(res, "dram_log", None):
        raise SimulationError("dram plot: this result has no DRAM log; simulate with engine='event' and trace=True")
    log = np.array(res.dram_log, dtype=np.float64)    # channel, start, end, bytes
    end = float(log[:, 2].max())
    edges = np.linspace(0.0, end, bins + 1)
    channels = int(log[:, 0].max()) + 1
    use = np.zeros((channels, bins))
    for ch in range(channels):
        seg = log[log[:, 0] == ch]
        rate = seg[:, 3] / np.maximum(seg[:, 2] - seg[:, 1], 1e-12)
        # bytes of each interval falling into each bin: integrate the piecewise-constant rate
        cum_edges = np.concatenate((seg[:, 1], seg[:, 2]))
        order = np.argsort(cum_edges, kind="stable")
        deltas = np.concatenate((rate, -rate))[order]
        pts = cum_edges[order]
        level = np.cumsum(deltas)
        # integral of the rate from 0 to x
        area = np.concatenate(([0.0], np.cumsum(level[:-1] * np.diff(pts))))
        at = np.interp(edges, pts, area, left=0.0, right=area[-1])
        use[ch] = np.diff(at) / np.diff(edges)
    return edges, use


def plot_dram_bandwidth(res, path, bins: int = 400) -> Path:
    """A PNG of DRAM bandwidth use over time, per channel, against the peak."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    edges, use = dram_bandwidth(res, bins)
    gbps = res.clock_hz / 1e9
    t_ms = edges / res.clock_hz * 1e3
    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=110)
    bottom = np.zeros(use.shape[1])
    for ch in range(use.shape[0]):
        top = bottom + use[ch] * gbps
        ax.fill_between(t_ms[:-1], bottom, top, step="post", alpha=0.8, label=f"channel {ch}")
        bottom = top
    ax.axhline(res.dram_bytes_per_cycle * gbps, color="k", ls="--", lw=1, label="peak")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("DRAM bandwidth (GB/s)")
    name = res.workload.get("name", "workload")
    ax.set_title(f"DRAM bandwidth over time: {name} on {res.accelerator.get('name', '')} (event engine)")
    ax.set_xlim(0, t_ms[-1])
    ax.set_ylim(0, res.dram_bytes_per_cycle * gbps * 1.15)
    ax.legend(loc="upper right", fontsize=8, ncol=min(4, use.shape[0] + 1))
    fig.tight_layout()

    def write(p):
        fig.savefig(p, format="png")
    out = res._atomic(path, write)
    plt.close(fig)
    return out


def event_report(res, prefix=None) -> str:
    """Text for the CLI: the stall breakdown by resource, the cores, and the trace files written."""
    from .event import STALL_KINDS
    t = res.totals
    parts = [f"{k} {t[f'stall_{k}_cycles']:,.0f}" for k in STALL_KINDS if t[f"stall_{k}_cycles"] >= 0.5]
    fast = t["fast_cycles"]
    what = "fast engine" if len(res.cores) == 1 else "fast engine, each core alone with all of DRAM"
    lines = ["", f"event engine: {t['cycles']:,} cycles; {what}: {fast:,} "
                 f"({(t['cycles'] - fast) / fast * 100 if fast else 0.0:+.2f} %)",
             "stalls by resource (cycles" + (", summed over cores" if len(res.cores) > 1 else "") + "): "
             + (", ".join(parts) if parts else "none"),
             f"DRAM contention (time transfers lost sharing a channel): {t['dram_contention_cycles']:,.0f} cycles"]
    if len(res.cores) > 1:
        lines.append("cores:")
        for r in res.cores.itertuples():
            lines.append(f"  core {r.core} ({r.array}): {r.tasks} tasks, busy {r.busy_cycles:,.0f} cycles, "
                         f"utilization {r.utilization:.3f}, DRAM stalls {r.stall_activation_cycles + r.stall_weight_cycles + r.stall_metadata_cycles:,.0f}"
                         f" + contention {r.stall_contention_cycles:,.0f}, write-back {r.stall_writeback_cycles:,.0f}, "
                         f"dependency {r.stall_dependency_cycles:,.0f}")
    if prefix:
        written = [trace_csv(res, f"{prefix}.trace.csv"), chrome_trace(res, f"{prefix}.trace.json"),
                   plot_dram_bandwidth(res, f"{prefix}.dram.png")]
        lines.append("wrote " + ", ".join(str(p) for p in written))
    return "\n".join(lines)
