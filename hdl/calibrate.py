"""Calibration of the fast engine's timing against the RTL array (``sparsim calibrate``).

A suite of tiles (array shapes, the accelerator's N:M modes, random and real masks, runs of 1-5
folds of different stream lengths, with and without random backpressure) runs through
``hdl/rtl/nm_array.sv`` under cocotb. Each tile's cycles are measured from the first input
accepted to the last output, and the testbench checks every output value against the golden
model as it goes. The parameters of the engine's ``rtl`` timing model (weight-load cycles per
row, stream cycles per row, extra fill/drain latency; see
:func:`simulator.kernels.double_buffered_cycles`) are fitted by least squares on the training
tiles. They are fitted separately for the two conditions, since backpressure slows the stream. The
report gives, per tile, the RTL cycles, the engine's cycles before fitting (its default
SCALE-Sim fold rule) and after, and the error on the held-out tiles.
"""
from __future__ import annotations

import functools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .runner import BUILD, HdlError, check_array_params, run_unit, simulator_missing


@dataclass
class Case:
    """One calibration tile. ``mask`` is its pattern string: ``2:4`` (a zoo layer's weights, N:M by
    magnitude), ``random:2:4`` (random weights, at most N kept per group), ``unstructured:0.5`` (a zoo
    layer's weights, unstructured by magnitude at that density: multi-pass) or ``random:0.5``
    (random unstructured). Unstructured tiles are never fitted on: they check the engine's
    real-mask imbalance model (ceil(j/N) passes, columns sharing a schedule) against the RTL."""

    name: str
    n: int
    m: int
    rows: int
    cols: int
    backpressure: bool
    held_out: bool
    folds: list            # streamed rows of each fold, in order
    mask: str
    seed: int
    k: int = 0             # reduction length of an unstructured tile (0: one fold's R/N x M each)
    rtl_cycles: int = 0
    model_cycles_before: float = 0.0
    model_cycles: float = 0.0

    @property
    def unstructured(self) -> bool:
        return self.k > 0


def _array_rows(n: int) -> int:
    return 4 if 4 % n == 0 else 2 * n


def suite(acc, quick: bool = False) -> list[Case]:
    """The tiles for an accelerator: its N:M modes plus dense (N = M), structured tiles of 1-5 folds
    (fitted on, some held out) and unstructured tiles (all held out)."""
    modes = list(acc.compute.sparse.modes)
    top_m = max([m for _, m in modes] or [4])
    modes.append((top_m, top_m))
    shapes = [4] if quick else [3, 4]
    if quick:
        modes = modes[:1]
    plans = ([[4], [2, 6], [5, 3]], [[1, 3, 8], [6, 6]]) if quick else ([[3], [8, 2], [1, 5, 12], [6, 6, 6, 6]],
                                                       [[16, 4, 9], [2, 2, 2, 2, 2], [20], [7, 1, 13, 3]])
    cases, k = [], 0
    for n, m in modes:
        for cols in shapes:
            rows = _array_rows(n)
            for bp in (False, True):
                for held, group in ((False, plans[0]), (True, plans[1])):
                    for folds in group:
                        # random backpressure is predicted on average: its tiles stream long enough
                        # (hundreds of rows) for the average to be what a layer sees
                        t = [x * (40 if bp else 1) for x in folds]
                        mask = f"{n}:{m}" if k % 3 == 0 else f"random:{n}:{m}"
                        cases.append(Case(name=f"{n}:{m}_{rows}x{cols}_{'bp' if bp else 'nobp'}_{'-'.join(map(str, t))}",
                                          n=n, m=m, rows=rows, cols=cols, backpressure=bp, held_out=held,
                                          folds=t, mask=mask, seed=k))
                        k += 1
            if n == m:
                continue
            # unstructured tiles: 8 M-groups of reduction, multi-pass where a column keeps more than N
            dens = [0.5, 0.3] if quick else [0.5, 0.3, 0.7]
            for bp in ((False,) if quick else (False, True)):
                for d in dens:
                    for src in (("zoo",) if quick else ("zoo", "random")):
                        t = 6 * (40 if bp else 1)
                        mask = f"unstructured:{d:g}" if src == "zoo" else f"random:{d:g}"
                        cases.append(Case(name=f"{n}:{m}_{rows}x{cols}_{'bp' if bp else 'nobp'}_{mask}",
                                          n=n, m=m, rows=rows, cols=cols, backpressure=bp, held_out=True,
                                          folds=[t], mask=mask, seed=k, k=8 * m))
                        k += 1
    return cases


@functools.lru_cache(maxsize=1)
def _real_weights() -> np.ndarray:
    """The (k, n) weight of a zoo layer (mlp_digits fc2, seeded), traced once per process."""
    from workloads import trace, zoo
    model, inputs = zoo.build("mlp_digits", seed=0, batch=1)
    return trace(model, inputs, batch=1).layer("fc2").gemm_weight()[0]


def _quantize(tile: np.ndarray) -> np.ndarray:
    return np.round(tile / max(np.abs(tile).max(), 1e-9) * 127).astype(int)


def _tile_mask(case: Case, k: int, seed: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(int8 weights k x C, bool mask) of a tile, from the zoo layer or random."""
    from workloads import NM, Unstructured
    parts = case.mask.split(":")
    if parts[0] == "random":
        dense = rng.integers(-128, 128, size=(k, case.cols))
        if len(parts) == 2:                     # random unstructured at a density
            mask = rng.random((k, case.cols)) < float(parts[1])
        else:                                   # random, at most N per M-group
            mask = np.zeros((k, case.cols), dtype=bool)
            for c in range(case.cols):
                for g in range(k // case.m):
                    keep = rng.choice(case.m, size=int(rng.integers(0, case.n + 1)), replace=False)
                    mask[g * case.m + keep, c] = True
        return dense, mask
    w = _real_weights()
    r0 = (seed * 8) % (w.shape[0] - k)
    tile = w[r0:r0 + k, :case.cols]
    pattern = Unstructured(float(parts[1])) if parts[0] == "unstructured" else NM(case.n, case.m)
    return _quantize(tile), pattern.mask(tile)


def _vector(case: Case):
    from simulator.golden import compress_nm, fold_beat, schedule_multipass
    rng = np.random.default_rng(case.seed)
    gr = case.rows // case.n
    folds = []
    if case.unstructured:
        dense, mask = _tile_mask(case, case.k, case.seed, rng)
        sched = schedule_multipass(dense, mask, case.n, case.m, case.rows)
        case.folds = [case.folds[0]] * len(sched.folds)     # every fold streams the same rows
        acts = rng.integers(-128, 128, size=(case.folds[0], case.k))
        for w, ix, gsel, groups in sched.folds:
            folds.append({"w": w, "idx": ix, "gsel": gsel,
                          "rows": [fold_beat(a, groups, case.m, gr) for a in acts]})
        case_mask = mask
    else:
        k = gr * case.m
        for f, t in enumerate(case.folds):
            dense, mask = _tile_mask(case, k, case.seed + f, rng)
            w = np.zeros((case.rows, case.cols), dtype=int)
            ix = np.zeros((case.rows, case.cols), dtype=int)
            for c in range(case.cols):
                cw, ci = compress_nm(dense[:, c], mask[:, c], case.n, case.m)
                w[:, c], ix[:, c] = cw, ci
            acts = rng.integers(-128, 128, size=(t, k))
            folds.append({"w": w.tolist(), "idx": ix.tolist(), "rows": acts.tolist()})
        case_mask = None
    length = 40 * (sum(case.folds) + case.rows * len(case.folds)) + 400
    p_in, p_out = (P_BACKPRESSURE, P_BACKPRESSURE) if case.backpressure else (1.0, 1.0)
    vec = {"folds": folds, "wl_valid": (rng.random(length) < p_in).tolist(),
           "in_valid": (rng.random(length) < p_in).tolist(), "out_ready": (rng.random(length) < p_out).tolist()}
    return vec, case_mask


P_BACKPRESSURE = 0.85   # probability that wl_valid, in_valid and out_ready are high in a cycle


def scalesim_rule(case: Case) -> float:
    """The engine's default (SCALE-Sim) count for the same folds: sum of 2R + C + T - 2, minus one."""
    return float(sum(2 * case.rows + case.cols + t - 2 for t in case.folds) - 1)


def rtl_rule(case: Case, params) -> float:
    from simulator.kernels import double_buffered_cycles
    return double_buffered_cycles(case.folds, case.rows, case.cols, *params)


def engine_cycles(case: Case, mask: np.ndarray, params, model: str = "rtl") -> int:
    """The fast engine's compute cycles for the tile as a layer (m = streamed rows, k, n = C, its
    mask) on an R x C weight-stationary array with the tile's N:M mode and ``params`` as its
    ``rtl`` timing: the engine's own multi-pass and imbalance rules decide the folds."""
    import accel
    from simulator import simulate
    from workloads import Layer, LayerKind, WeightLayout, Workload
    timing = {"model": model}
    if model == "rtl":
        timing.update(zip(("weight_load_cycles_per_row", "stream_cycles_per_row", "fill_drain_extra_cycles"),
                          (float(x) for x in params)))
    doc = {"name": "rtl-array", "compute": {"rows": case.rows, "cols": case.cols, "dataflow": "ws", "clock_hz": 1e9,
                                            "sparse_modes": ["dense"] + ([f"{case.n}:{case.m}"] if case.n < case.m else []),
                                            "timing": timing},
           "memories": [{"name": "buf", "size_bytes": 1 << 30, "read_bw_bytes_per_cycle": 1e9,
                         "holds": ["activation", "weight", "output"]}],
           "dram": {"bandwidth_bytes_per_s": 1e18}}
    layer = Layer(name="tile", kind=LayerKind.MATMUL, m=case.folds[0], n=case.cols, k=case.k, weight_name="w",
                  weight_layout=WeightLayout.KN, mask=mask[None])
    res = simulate(Workload(name="tile", layers=(layer,)), accel.build(doc))
    return int(res.layers["compute_cycles"].iloc[0])


def fit(cases: list[Case]) -> tuple[float, float, float]:
    """Least-squares fit of (weight-load cycles per row, stream cycles per row, fill/drain extra)."""
    from scipy.optimize import minimize

    def loss(x):
        if x[0] <= 0 or x[1] <= 0:
            return 1e30
        return sum((rtl_rule(c, x) - c.rtl_cycles) ** 2 for c in cases)

    start = np.array([1.0, 1.0, 0.0])
    if loss(start) == 0.0:
        return (1.0, 1.0, 0.0)
    best = minimize(loss, start, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 4000})
    return tuple(float(round(v, 4)) for v in best.x)


def fit_backpressure(cases: list[Case], calm: tuple[float, float, float]) -> tuple[float, float, float]:
    """The backpressure timing: one free parameter, the stream cycles per row.

    Three free parameters on a handful of tiles are not identifiable (a slower stream trades
    against a longer load), which made the old fit jump between suites. Here a weight row takes
    1 / p cycles on average (the driver offers one with probability p per cycle and the bank is
    free), the fill/drain extra is the calm one, and only the stream rate is fitted (bounded scalar
    least squares), which the long streams of the backpressure tiles determine."""
    from scipy.optimize import minimize_scalar
    load = round(1.0 / P_BACKPRESSURE, 4)

    def loss(x):
        return sum((rtl_rule(c, (load, x, calm[2])) - c.rtl_cycles) ** 2 for c in cases)

    best = minimize_scalar(loss, bounds=(0.5, 10.0), method="bounded", options={"xatol": 1e-6})
    return (load, float(round(best.x, 4)), calm[2])


def simulator_version(sim: str) -> str:
    cmd = ["verilator", "--version"] if sim == "verilator" else ["iverilog", "-V"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def _errors(cases):
    errs = [(c.model_cycles - c.rtl_cycles) / c.rtl_cycles * 100 for c in cases if c.rtl_cycles]
    if not errs:
        return {"cases": 0, "mape_percent": 0.0, "max_abs_error_percent": 0.0, "max_abs_error_cycles": 0}
    return {"cases": len(errs), "mape_percent": float(np.mean(np.abs(errs))),
            "max_abs_error_percent": float(np.max(np.abs(errs))),
            "max_abs_error_cycles": float(max(abs(c.model_cycles - c.rtl_cycles) for c in cases))}


def check_accelerator(acc, where: str | None = None) -> None:
    """Refuse a description the RTL array cannot calibrate; ``where`` names it in the message (the
    command line gives ``--accel <what the user typed>``; the default is the description's name)."""
    from accel import Dataflow
    where = where or f"calibrate --accel {acc.name}"
    if acc.compute.dataflow is not Dataflow.WS:
        raise HdlError(f"{where}: the RTL array is weight stationary and the calibration it writes "
                       f"(compute.timing.model: rtl) needs compute.dataflow: ws, but this description "
                       f"('{acc.name}') is {acc.compute.dataflow.value}; calibrate a WS description")


def _run_tile(case: Case, sim: str, vec: dict) -> dict:
    """Run one tile; an RTL build or testbench failure becomes one HdlError line naming the tile."""
    params = check_array_params({"R": case.rows, "C": case.cols, "N": case.n, "M": case.m, "DW": 8, "AW": 32})
    try:
        return run_unit("nm_array", sim, params, vec, "hdl.tb.test_nm_array", quiet=True,
                        defines={"SPARSIM_ACTIVITY": 1})
    except HdlError:
        raise
    except (Exception, SystemExit) as exc:   # cocotb's runner exits on a failed build
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HdlError(f"tile {case.name}: the RTL run on {sim} failed: {first[:300]} "
                       f"(log: {BUILD}/nm_array_{sim}_*/run.log)") from None


def calibrate(acc, sim: str = "verilator", quick: bool = False, log=print, only=None) -> tuple[dict, dict]:
    """Run the suite on ``sim``; returns (calibration YAML document, report). ``only``: a predicate
    on :class:`Case` that keeps part of the suite (it must keep training tiles of both conditions)."""
    check_accelerator(acc)
    missing = simulator_missing(sim)
    if missing:
        raise HdlError(missing)
    cases = [c for c in suite(acc, quick) if only is None or only(c)]
    masks = {}
    for i, case in enumerate(cases):
        vec, masks[case.name] = _vector(case)
        case.rtl_cycles = int(_run_tile(case, sim, vec)["cycles"])
        case.model_cycles_before = (float(engine_cycles(case, masks[case.name], None, model="scalesim"))
                                    if case.unstructured else scalesim_rule(case))
        log(f"[{i + 1}/{len(cases)}] {case.name}: {case.rtl_cycles} RTL cycles")
    structured = [c for c in cases if not c.unstructured and not c.held_out]
    fits = {False: fit([c for c in structured if not c.backpressure])}
    fits[True] = fit_backpressure([c for c in structured if c.backpressure], fits[False])
    for c in cases:
        params = fits[c.backpressure]
        c.model_cycles = (float(engine_cycles(c, masks[c.name], params)) if c.unstructured
                          else rtl_rule(c, params))
    held = [c for c in cases if c.held_out]
    overall = _errors(held)
    no_bp, bp = fits[False], fits[True]
    names = ("weight_load_cycles_per_row", "stream_cycles_per_row", "fill_drain_extra_cycles")
    calib = {"compute": {"timing": {"model": "rtl", **dict(zip(names, no_bp))}}}
    report = {
        "accelerator": acc.name,
        "simulator": {"name": sim, "version": simulator_version(sim)},
        "mape_percent": overall["mape_percent"],
        "max_abs_error_percent": overall["max_abs_error_percent"],
        "held_out": {"no_backpressure": _errors([c for c in held if not c.backpressure]),
                     "backpressure": _errors([c for c in held if c.backpressure]),
                     "unstructured_no_backpressure": _errors([c for c in held if c.unstructured
                                                              and not c.backpressure]),
                     "unstructured_backpressure": _errors([c for c in held if c.unstructured and c.backpressure])},
        "before_fit_mape_percent": float(np.mean([abs(c.model_cycles_before - c.rtl_cycles) / c.rtl_cycles * 100
                                                  for c in held])),
        "fit": {"no_backpressure": dict(zip(names, no_bp)), "backpressure": dict(zip(names, bp)),
                "backpressure_valid_ready_probability": P_BACKPRESSURE},
        "tiles": [{"mask": c.mask, "backpressure": c.backpressure, "rtl_cycles": c.rtl_cycles,
                   "model_cycles": c.model_cycles, "name": c.name, "n": c.n, "m": c.m, "rows": c.rows,
                   "cols": c.cols, "k": c.k or (c.rows // c.n) * c.m, "folds": c.folds, "held_out": c.held_out,
                   "model": "engine (multi-pass, real mask)" if c.unstructured else "rtl timing formula",
                   "model_cycles_before": c.model_cycles_before,
                   "error_cycles": c.model_cycles - c.rtl_cycles,
                   "error_percent": (c.model_cycles - c.rtl_cycles) / c.rtl_cycles * 100 if c.rtl_cycles else 0.0}
                  for c in cases],
    }
    return calib, report


def write_outputs(calib: dict, report: dict, out: str | None, report_path: str | None) -> None:
    import yaml
    if out:
        text = ("# Timing fitted by `sparsim calibrate` to hdl/rtl/nm_array.sv; include it from an "
                "accelerator description:\n#   include: [" + Path(out).name + "]\n" + yaml.safe_dump(calib, sort_keys=False))
        Path(out).write_text(text)
    if report_path:
        Path(report_path).write_text(json.dumps(report, indent=1))
