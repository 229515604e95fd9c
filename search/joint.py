"""Hardware axes for the joint search: a grid of accelerator variants, each checked against the
FPGA budget when the description has one (a design that does not fit is reported, not dropped).

Axes (``name=v1,v2,...``): ``rows``, ``cols``, ``dataflow`` (ws, os, is), ``modes`` (the N:M modes the
array supports; ``+`` joins the modes of one design, ``dense`` for none: ``modes=2:4,1:4+2:4,dense``),
``dram_gbps`` (DRAM bandwidth in GB/s), and any memory by name with its size in bytes
(``filter_sram=131072,262144``) or ``buffer_scale`` (every memory's size times the factor).
"""
from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Mapping

from accel import Accelerator, Dataflow

from .errors import SearchError, positive

_AXES = ("rows", "cols", "dataflow", "modes", "dram_gbps", "buffer_scale")


def parse_joint(spec) -> dict[str, list]:
    """``["rows=16,32", "dataflow=ws,os"]`` (or one string, or a mapping) -> ``{axis: [values]}``."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        items = [(str(k), list(v) if isinstance(v, (list, tuple)) else [v]) for k, v in spec.items()]
    else:
        if isinstance(spec, str):
            spec = spec.split()
        items = []
        for tok in spec:
            name, sep, vals = str(tok).partition("=")
            if not sep or not name.strip() or not vals.strip():
                raise SearchError(f"--joint '{tok}': expected axis=value1,value2 (e.g. rows=16,32,64)")
            items.append((name.strip(), [v.strip() for v in vals.split(",") if v.strip()]))
    out = {}
    for name, vals in items:
        if not vals:
            raise SearchError(f"--joint {name}: no values")
        out[name] = vals
    return out


def _number(axis, v, kind=float):
    return positive(v, f"--joint {axis}={v}", kind)


def _modes(v) -> tuple[tuple[int, int], ...]:
    from workloads import NM, PatternError, parse_pattern
    out = []
    for t in str(v).split("+"):
        t = t.strip()
        if t.lower() == "dense":
            continue
        try:
            p = parse_pattern(t)
        except PatternError as e:
            raise SearchError(f"--joint modes={v}: {e}") from None
        if not isinstance(p, NM):
            raise SearchError(f"--joint modes={v}: '{t}' is not an N:M mode")
        if p.n < p.m:
            out.append((p.n, p.m))
    return tuple(out)


def variant(acc: Accelerator, point: Mapping[str, object]) -> Accelerator:
    """``acc`` with the axes of ``point`` set."""
    c = acc.compute
    mems = {m.name: m for m in acc.memories}
    for axis, v in point.items():
        if axis == "rows":
            c = replace(c, rows=_number(axis, v, int))
        elif axis == "cols":
            c = replace(c, cols=_number(axis, v, int))
        elif axis == "dataflow":
            try:
                c = replace(c, dataflow=Dataflow(str(v).lower()))
            except ValueError:
                raise SearchError(f"--joint dataflow={v}: expected ws, os or is") from None
        elif axis == "modes":
            c = replace(c, sparse=replace(c.sparse, modes=_modes(v), arbitrary_max_m=None))
        elif axis == "dram_gbps":
            acc = replace(acc, dram=replace(acc.dram, bandwidth_bytes_per_s=_number(axis, v) * 1e9))
        elif axis == "buffer_scale":
            f = _number(axis, v)
            mems = {n: replace(m, size_bytes=max(1, int(m.size_bytes * f))) for n, m in mems.items()}
        elif axis in mems:
            mems[axis] = replace(mems[axis], size_bytes=_number(axis, v, int))
        else:
            raise SearchError(f"--joint {axis}: unknown hardware axis; expected one of {', '.join(_AXES)} "
                              f"or a memory name ({', '.join(mems)})")
    acc = replace(acc, compute=c, memories=tuple(mems[m.name] for m in acc.memories))
    return acc.with_dataflow(c.dataflow)   # the rule a description file follows (rtl fold rule: ws only)


def grid(acc: Accelerator, axes: Mapping[str, list]) -> list[tuple[dict, Accelerator | None, str]]:
    """Every combination of ``axes``: ``(point, accelerator or None, why infeasible)``."""
    from accel import fpga_usage
    names = list(axes)
    out = []
    for combo in itertools.product(*(axes[n] for n in names)):
        point = dict(zip(names, combo))
        a = variant(acc, point)
        why = ""
        if a.fpga is not None:
            u = fpga_usage(a)
            if not u.fits:
                why = "does not fit " + a.fpga.device + ": " + ", ".join(
                    f"{k} {v * 100:.0f}%" for k, v in u.utilization().items() if v > 1.0)
        out.append((point, None if why else a, why))
    if not any(a is not None for _, a, _ in out):
        raise SearchError(f"--joint: no design of the grid fits the FPGA budget ({out[0][2]})")
    return out
