"""``write_report(store, out_dir)``: one self-contained HTML page (interactive plotly figures, the
plotly library inlined) and a matplotlib PNG of every figure.

Figures: speed-up and energy saving vs sparsity per dataflow; the per-layer cycle and energy
breakdown of one point; a roofline of that point's layers under its design's ceilings; cycles vs
energy coloured by a design parameter with the Pareto front; FPGA resource use against the budget
(when the designs have one). Every axis has its unit.

Points are ranked, and Pareto fronts drawn, only within one workload (the same model, batch,
training mode and LLM phase axes, :data:`WORKLOAD_AXES`): a BERT point is never "faster" than a
ResNet-50 point. The "fastest points" table has one part per workload, the cycles-vs-energy figure
one front per workload.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np

from .errors import SweepError
from .store import load_results

_ENERGY_PARTS = [("energy_mac_pj", "MACs"), ("energy_sram_pj", "SRAM"), ("energy_dram_pj", "DRAM"),
                 ("energy_meta_pj", "metadata"), ("energy_static_pj", "static")]
_FPGA_RES = [("dsp", "DSP"), ("bram36", "BRAM36"), ("lut", "LUT"), ("ff", "FF")]
#: axes that name the work (not the hardware): points are compared only when these agree
WORKLOAD_AXES = ("model", "batch", "training", "phase", "prompt", "generate")


# ---------------------------------------------------------------------------------------------- data
class _Data:
    def __init__(self, store, point: str | None, color: str | None):
        self.points, self.layers = load_results(store)
        if self.points.empty:
            raise SweepError(f"{store}: the store holds no points")
        cols = list(self.points.columns)
        self.axes = cols[:cols.index("status")]
        self.ok = self.points[self.points["status"] == "ok"].copy()
        self.df_axis = "compute.dataflow" if "compute.dataflow" in self.axes else "dataflow"
        self.sparsities = self._sparsity_order()
        self.chosen = self._choose(point)
        design_axes = [a for a in self.axes if a not in WORKLOAD_AXES and a != "sparsity"]
        self.workload_axes = [a for a in self.axes if a in WORKLOAD_AXES and self.points[a].nunique(dropna=False) > 1]
        if color is not None and color not in self.points.columns:
            raise SweepError(f"--color {color}: not a column; axes are {', '.join(self.axes)}")
        self.color = color or next((a for a in design_axes if a != "accelerator"), None) or \
            (design_axes[0] if design_axes else "sparsity")

    def _sparsity_order(self) -> list[str]:
        ok = self.ok
        if ok.empty:
            return list(dict.fromkeys(self.points["sparsity"]))
        dens = (ok["effective_macs"] / ok["macs"]).groupby(ok["sparsity"]).mean()
        return list(dens.sort_values(ascending=False).index) + \
            [s for s in dict.fromkeys(self.points["sparsity"]) if s not in dens.index]

    def _choose(self, point):
        if point is None:
            return None if self.ok.empty else self.ok.loc[self.ok["cycles"].astype(float).idxmin()]
        hits = self.points[self.points["key"].str.startswith(point)]
        if len(hits) != 1:
            raise SweepError(f"--point {point}: " + ("no point has this key" if hits.empty else
                                                      f"{len(hits)} points start with it; give more of the key"))
        row = hits.iloc[0]
        if row["status"] != "ok":
            raise SweepError(f"--point {point}: that point is {row['status']} ({row['error']}); it has no layers")
        return row

    def workload_groups(self, frame):
        """``[(label, rows)]``: ``frame`` split by workload (one group, labelled '', when one workload)."""
        if not self.workload_axes:
            return [("", frame)]
        keys = frame[self.workload_axes].astype(str).agg(", ".join, axis=1)
        return [(", ".join(f"{a}={v}" for a, v in zip(self.workload_axes, g.iloc[0][self.workload_axes])), g)
                for _, g in frame.groupby(keys, sort=False)]

    def label(self, row, axes=None) -> str:
        return ", ".join(f"{a}={row[a]}" for a in (axes or self.axes))

    def chosen_layers(self):
        return self.layers[self.layers["key"] == self.chosen["key"]] if self.chosen is not None else None

    def designs_with_budget(self):
        p = self.points[self.points["budget_dsp"].notna()] if "budget_dsp" in self.points else self.points.iloc[:0]
        if p.empty:
            return p
        design_axes = [a for a in self.axes if a not in WORKLOAD_AXES and a != "sparsity"]
        return p.drop_duplicates(subset=design_axes or ["key"])


def _geomean(x) -> float:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x) & (x > 0)]
    return float(np.exp(np.log(x).mean())) if len(x) else float("nan")


def _pareto(cyc, en) -> np.ndarray:
    """Indices of the points no other point beats on both cycles and energy, by cycles."""
    order = np.lexsort((en, cyc))
    front, best = [], math.inf
    for i in order:
        if en[i] < best:
            front.append(i)
            best = en[i]
    return np.array(front, dtype=int)


# ---------------------------------------------------------------------------------------------- figures
def _fig_speedup(d: _Data):
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    ok = d.ok[d.ok["speedup"].notna()]
    if ok.empty:
        return None
    flows = list(dict.fromkeys(ok[d.df_axis]))
    title = "Speed-up and energy saving over dense vs sparsity, per dataflow"
    sub = "lines: geometric mean over the other axes; dots: single points (hover for the configuration)"
    pf = make_subplots(rows=1, cols=2, subplot_titles=("Speed-up over dense (x)", "Energy saving over dense (%)"))
    fig, axs = plt.subplots(1, 2, figsize=(11, 4.2))
    x_of = {s: i for i, s in enumerate(d.sparsities)}
    for fi, flow in enumerate(flows):
        sel = ok[ok[d.df_axis] == flow]
        xs = [s for s in d.sparsities if s in set(sel["sparsity"])]
        for col, (metric, scale) in enumerate((("speedup", 1.0), ("energy_saving", 100.0))):
            vals = sel[metric].astype(float) * scale
            if metric == "speedup":
                line = [_geomean(vals[sel["sparsity"] == s]) for s in xs]
            else:   # saving may be negative: arithmetic mean
                line = [float(vals[sel["sparsity"] == s].mean()) for s in xs]
            colr = f"C{fi}"
            pf.add_trace(go.Scatter(x=xs, y=line, mode="lines+markers", name=f"{flow}", legendgroup=str(flow),
                                    showlegend=col == 0, line=dict(color=_PAL[fi % len(_PAL)])), row=1, col=col + 1)
            pf.add_trace(go.Scatter(x=sel["sparsity"], y=vals, mode="markers", name=f"{flow} points",
                                    legendgroup=str(flow), showlegend=False, opacity=0.45,
                                    marker=dict(size=6, color=_PAL[fi % len(_PAL)]),
                                    text=[d.label(r) for _, r in sel.iterrows()],
                                    hovertemplate="%{text}<br>%{y:.3g}<extra></extra>"), row=1, col=col + 1)
            ax = axs[col]
            jitter = (fi - (len(flows) - 1) / 2) * 0.06
            ax.scatter([x_of[s] + jitter for s in sel["sparsity"]], vals, s=10, alpha=0.35, color=colr)
            ax.plot([x_of[s] + jitter for s in xs], line, marker="o", color=colr, label=f"dataflow {flow}")
    for col, yl in enumerate(("Speed-up over dense (x)", "Energy saving over dense (%)")):
        ax = axs[col]
        ax.set_xticks(range(len(d.sparsities)), d.sparsities)
        ax.set_xlabel("Sparsity pattern")
        ax.set_ylabel(yl)
        ax.axhline(1.0 if col == 0 else 0.0, color="0.6", lw=0.8, ls="--")
        ax.grid(alpha=0.3)
    axs[0].legend()
    fig.suptitle(f"{title}\n({sub})", fontsize=10)
    fig.tight_layout()
    pf.update_xaxes(title_text="Sparsity pattern", categoryorder="array", categoryarray=d.sparsities)
    pf.update_yaxes(title_text="Speed-up over dense (x)", row=1, col=1)
    pf.update_yaxes(title_text="Energy saving over dense (%)", row=1, col=2)
    pf.update_layout(title=dict(text=f"{title}<br><sup>{sub}</sup>"), legend_title_text="dataflow")
    return "speedup_vs_sparsity", title, pf, fig


def _fig_layers(d: _Data):
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    lay = d.chosen_layers()
    if lay is None or lay.empty:
        return None
    title = f"Per-layer cycles and energy of one point: {d.label(d.chosen)}"
    names = list(lay["name"])
    pf = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                       subplot_titles=("Cycles per layer", "Energy per layer (uJ)"))
    fig, axs = plt.subplots(2, 1, figsize=(max(8, 0.22 * len(names) + 3), 7), sharex=True)
    x = np.arange(len(names))
    bottom = np.zeros(len(names))
    for i, (col, lab) in enumerate((("compute_cycles", "compute"), ("stall_cycles", "stall (memory)"))):
        v = lay[col].astype(float).to_numpy()
        pf.add_trace(go.Bar(x=names, y=v, name=lab, marker_color=_PAL[i]), row=1, col=1)
        axs[0].bar(x, v, bottom=bottom, label=lab, color=f"C{i}")
        bottom += v
    bottom = np.zeros(len(names))
    for i, (col, lab) in enumerate(_ENERGY_PARTS):
        v = lay[col].astype(float).to_numpy() / 1e6
        pf.add_trace(go.Bar(x=names, y=v, name=f"energy: {lab}", marker_color=_PAL[(i + 2) % len(_PAL)]), row=2, col=1)
        axs[1].bar(x, v, bottom=bottom, label=lab, color=f"C{i + 2}")
        bottom += v
    pf.update_layout(barmode="stack", title=title, height=700)
    pf.update_yaxes(title_text="Cycles", row=1, col=1)
    pf.update_yaxes(title_text="Energy (uJ)", row=2, col=1)
    pf.update_xaxes(title_text="Layer", row=2, col=1)
    axs[0].set_ylabel("Cycles")
    axs[1].set_ylabel("Energy (uJ)")
    axs[1].set_xlabel("Layer")
    axs[1].set_xticks(x, names, rotation=90, fontsize=6)
    for ax in axs:
        ax.legend(fontsize=8, ncol=3)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return "layers", title, pf, fig


def _fig_roofline(d: _Data):
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go
    lay = d.chosen_layers()
    if lay is None or lay.empty:
        return None
    c = d.chosen
    lay = lay[(lay["dram_bytes"] > 0) & (lay["cycles"] > 0)]
    oi = lay["effective_macs"].astype(float) / lay["dram_bytes"].astype(float)
    perf = lay["effective_macs"].astype(float) / lay["cycles"].astype(float)
    peak, bw = float(c["pes"]), float(c["dram_bytes_per_cycle"])
    lo, hi = max(min(oi.min(), peak / bw) / 4, 1e-3), max(oi.max(), peak / bw) * 4
    xs = np.geomspace(lo, hi, 200)
    roof = np.minimum(peak, bw * xs)
    t_oi = float(c["effective_macs"]) / float(c["dram_bytes"])
    t_perf = float(c["effective_macs"]) / float(c["cycles"])
    title = (f"Roofline of one point's layers ({c['rows']:.0f}x{c['cols']:.0f} {c['dataflow']}, "
             f"{peak:.0f} MACs/cycle peak, {bw:.1f} DRAM bytes/cycle)")
    pf = go.Figure()
    pf.add_trace(go.Scatter(x=xs, y=roof, mode="lines", name="ceiling: min(PEs, bandwidth x intensity)",
                            line=dict(color="black")))
    pf.add_trace(go.Scatter(x=oi, y=perf, mode="markers", name="layers", marker=dict(size=8, color=_PAL[0]),
                            text=list(lay["name"] + " (" + lay["mode"] + ")"),
                            hovertemplate="%{text}<br>%{x:.3g} MACs/byte, %{y:.3g} MACs/cycle<extra></extra>"))
    pf.add_trace(go.Scatter(x=[t_oi], y=[t_perf], mode="markers", name="whole model",
                            marker=dict(size=14, symbol="star", color=_PAL[1])))
    pf.update_xaxes(type="log", title_text="Operational intensity (useful MACs / DRAM byte)")
    pf.update_yaxes(type="log", title_text="Achieved throughput (useful MACs / cycle)")
    pf.update_layout(title=f"{title}<br><sup>{html.escape(d.label(c))}</sup>")
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ax.loglog(xs, roof, color="black", label="ceiling: min(PEs, bandwidth x intensity)")
    ax.scatter(oi, perf, s=14, color="C0", label="layers")
    ax.scatter([t_oi], [t_perf], s=120, marker="*", color="C1", label="whole model")
    _finish_loglog(fig, ax, "Operational intensity (useful MACs / DRAM byte)",
                   "Achieved throughput (useful MACs / cycle)", title, legend_size=8)
    return "roofline", title, pf, fig


def _finish_loglog(fig, ax, xlabel: str, ylabel: str, title: str, legend_size: int) -> None:
    """Log axes with their labels (units in them), the figure's title, a grid and a legend."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=legend_size)
    fig.tight_layout()


def _fig_pareto(d: _Data):
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go
    ok = d.ok
    if ok.empty:
        return None
    cyc = ok["cycles"].astype(float).to_numpy()
    en = ok["energy_pj"].astype(float).to_numpy() / 1e6
    pos = {k: i for i, k in enumerate(ok.index)}
    fronts = []       # (label, indices into cyc/en): one front per workload
    for label, g in d.workload_groups(ok):
        idx = np.array([pos[k] for k in g.index], dtype=int)
        fronts.append((label, idx[_pareto(cyc[idx], en[idx])]))
    color = d.color
    title = (f"Cycles vs energy of every point, coloured by {color}, with the Pareto front"
             + (f" of each workload ({', '.join(d.workload_axes)})" if d.workload_axes else ""))
    pf = go.Figure()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    cvals = ok[color]
    numeric = cvals.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).all()
    labels = [d.label(r) for _, r in ok.iterrows()]
    if numeric and cvals.nunique() > 6:
        pf.add_trace(go.Scatter(x=cyc, y=en, mode="markers", name="points", text=labels,
                                marker=dict(color=cvals.astype(float), colorscale="Viridis", showscale=True,
                                            colorbar=dict(title=color)),
                                hovertemplate="%{text}<br>%{x:.4g} cycles, %{y:.4g} uJ<extra></extra>"))
        sc = ax.scatter(cyc, en, c=cvals.astype(float), s=14, cmap="viridis")
        fig.colorbar(sc, ax=ax, label=color)
    else:
        for i, v in enumerate(sorted(cvals.unique(), key=lambda x: (str(type(x)), x))):
            m = (cvals == v).to_numpy()
            pf.add_trace(go.Scatter(x=cyc[m], y=en[m], mode="markers", name=f"{color}={v}",
                                    text=[l for l, k in zip(labels, m) if k], marker=dict(color=_PAL[i % len(_PAL)]),
                                    hovertemplate="%{text}<br>%{x:.4g} cycles, %{y:.4g} uJ<extra></extra>"))
            ax.scatter(cyc[m], en[m], s=14, color=f"C{i % 10}", label=f"{color}={v}")
    dashes = ["dash", "dot", "dashdot", "longdash", "longdashdot"]
    for i, (label, front) in enumerate(fronts):
        name = "Pareto front" + (f": {label}" if label else "")
        pf.add_trace(go.Scatter(x=cyc[front], y=en[front], mode="lines", name=name,
                                line=dict(color="black", dash=dashes[i % len(dashes)], shape="hv")))
        ax.step(cyc[front], en[front], where="post", color="black", ls=["--", ":", "-.", (0, (5, 1))][i % 4],
                lw=1, label=name)
    pf.update_xaxes(type="log", title_text="Latency (cycles)")
    pf.update_yaxes(type="log", title_text="Energy (uJ)")
    pf.update_layout(title=title)
    _finish_loglog(fig, ax, "Latency (cycles)", "Energy (uJ)", title, legend_size=7)
    return "pareto", title, pf, fig


def _fig_fpga(d: _Data):
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go
    des = d.designs_with_budget()
    if des.empty:
        return None
    des = des.sort_values(["fpga_dsp", "fpga_bram36"], kind="stable")
    design_axes = [a for a in d.axes if a not in WORKLOAD_AXES and a != "sparsity"]
    varying = [a for a in design_axes if des[a].nunique() > 1] or design_axes
    labels = [" ".join(_short(a, r[a]) for a in varying) + (" (does not fit)" if r["status"] == "infeasible" else "")
              for _, r in des.iterrows()]
    device = des["fpga_device"].dropna().iloc[0] if des["fpga_device"].notna().any() else "FPGA"
    title = f"FPGA resources used, as % of the {device} budget (dashed: 100 %)"
    pf = go.Figure()
    fig, ax = plt.subplots(figsize=(max(7.5, 0.5 * len(labels) + 4), 5))
    x = np.arange(len(labels))
    w = 0.8 / len(_FPGA_RES)
    for i, (res, lab) in enumerate(_FPGA_RES):
        pct = des[f"fpga_{res}"].astype(float) / des[f"budget_{res}"].astype(float) * 100
        hover = [f"{lab}: {u:.0f} of {b:.0f}" for u, b in zip(des[f"fpga_{res}"], des[f"budget_{res}"])]
        pf.add_trace(go.Bar(x=labels, y=pct, name=lab, marker_color=_PAL[i], text=hover,
                            hovertemplate="%{x}<br>%{text} (%{y:.1f} %)<extra></extra>"))
        ax.bar(x + (i - 1.5) * w, pct, w, label=lab, color=f"C{i}")
    pf.add_hline(y=100, line_dash="dash", line_color="red")
    ax.axhline(100, color="red", ls="--", lw=1)
    pf.update_layout(barmode="group", title=title)
    pf.update_yaxes(title_text="Share of the budget (%)")
    pf.update_xaxes(title_text="Design")
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("Share of the budget (%)")
    ax.set_xlabel("Design")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return "fpga", title, pf, fig


def _short(axis: str, value) -> str:
    """``memories.act_bram.size_bytes=1048576`` -> ``act_bram=1 MiB``; ``compute.rows=16`` -> ``rows=16``."""
    parts = axis.split(".")
    if parts[-1].endswith("_bytes") and isinstance(value, (int, float)) and len(parts) > 1:
        v = float(value)
        unit = next(((u, f) for u, f in (("MiB", 2**20), ("KiB", 2**10)) if v >= f), ("B", 1))
        return f"{parts[-2]}={v / unit[1]:g} {unit[0]}"
    return f"{parts[-1]}={value}"


_PAL = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
        "#17becf"]
_FIGURES = (_fig_speedup, _fig_pareto, _fig_layers, _fig_roofline, _fig_fpga)


# ---------------------------------------------------------------------------------------------- page
def write_report(store, out_dir, point: str | None = None, color: str | None = None) -> list[Path]:
    """Write ``out_dir/report.html`` and one PNG per figure; returns the paths written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from plotly.offline import get_plotlyjs
    d = _Data(store, point, color)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, sections = [], []
    for make in _FIGURES:
        got = make(d)
        if got is None:
            continue
        name, title, pf, fig = got
        png = out / f"{name}.png"
        fig.savefig(png, dpi=110)
        plt.close(fig)
        written.append(png)
        pf.update_layout(template="plotly_white", margin=dict(t=90))
        div = pf.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{name}",
                         config={"displaylogo": False, "responsive": True})
        sections.append(f'<section class="figure" id="{name}"><h2>{html.escape(title)}</h2>{div}'
                        f'<p class="png">Static image: <a href="{png.name}">{png.name}</a></p></section>')
    page = _page(d, store, sections, get_plotlyjs())
    path = out / "report.html"
    tmp = out / "report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return [path] + written


def _page(d: _Data, store, sections, plotlyjs: str) -> str:
    pts = d.points
    counts = pts["status"].value_counts().to_dict()
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("ok", "infeasible", "error"))
    head = d.axes + ["cycles", "latency_s", "energy_pj", "speedup", "utilization"]

    def fmt(c, v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        if c == "latency_s":
            return f"{v * 1e3:.3f} ms"
        if c == "energy_pj":
            return f"{v / 1e6:.1f} uJ"
        if c == "speedup":
            return f"{v:.2f}x"
        if c == "utilization":
            return f"{v:.3f}"
        if c == "cycles":
            return f"{int(v):,}"
        return html.escape(str(v))
    hdr = {"latency_s": "latency", "energy_pj": "energy", "speedup": "speed-up over dense"}
    groups = d.workload_groups(d.ok)
    per = 10 if len(groups) == 1 else 5
    table = ""
    for label, g in groups:          # ranked within one workload only
        top = g.sort_values("cycles").head(per)
        rows = "".join("<tr>" + "".join(f"<td>{fmt(c, r[c])}</td>" for c in head) + "</tr>"
                       for _, r in top.iterrows())
        cap = f"<caption>{html.escape(label)}</caption>" if label else ""
        table += (f"<table class='fastest'>{cap}<thead><tr>"
                  f"{''.join(f'<th>{html.escape(hdr.get(c, c))}</th>' for c in head)}</tr></thead>"
                  f"<tbody>{rows}</tbody></table>")
    bad = pts[pts["status"] != "ok"]
    bad_html = ""
    if not bad.empty:
        items = "".join(f"<li><b>{html.escape(r['status'])}</b> {html.escape(d.label(r))}: "
                        f"{html.escape(str(r['error']))}</li>" for _, r in bad.head(30).iterrows())
        more = f"<li>... and {len(bad) - 30} more</li>" if len(bad) > 30 else ""
        bad_html = f"<h2>Points that did not run</h2><ul class='bad'>{items}{more}</ul>"
    nav = " · ".join(f'<a href="#{s.split(chr(34))[3]}">{s.split(chr(34))[3]}</a>' for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>sparsim sweep report: {html.escape(Path(str(store)).name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 1.5em 2em; color: #222; }}
h1 {{ font-size: 1.6em; margin-bottom: .2em; }} h2 {{ font-size: 1.15em; margin-top: 1.6em; }}
.meta {{ color: #555; }} nav {{ margin: .8em 0; }}
table {{ border-collapse: collapse; font-size: .85em; }} td, th {{ border-bottom: 1px solid #ddd; padding: 3px 8px;
       text-align: right; }} th {{ background: #f4f4f4; }}
section.figure {{ border-top: 1px solid #eee; }} .png {{ font-size: .8em; color: #777; }}
ul.bad {{ font-size: .85em; }} table.fastest {{ margin-bottom: 1em; }}
caption {{ text-align: left; font-weight: 600; padding: 4px 0; }}
</style>
<script type="text/javascript">{plotlyjs}</script>
</head><body>
<h1>sparsim sweep report</h1>
<p class="meta">{html.escape(str(store))}: {len(pts)} points over {html.escape(', '.join(d.axes))}: {summary}.
Cycles and energy from sparsim's fast engine; speed-up and energy saving are relative to the same configuration
run dense. Hover a point for its configuration; drag to zoom, double-click to reset.</p>
<nav>{nav}</nav>
<h2>Fastest points{" of each workload" if len(groups) > 1 else ""}</h2>{table}
{''.join(sections)}
{bad_html}
<script type="application/json" id="sweep-summary">{json.dumps({"points": len(pts), "figures": len(sections)})}</script>
</body></html>
"""
