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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .runner import HdlError, check_array_params, run_unit, simulator_missing


@dataclass
class Case:
    name: str
    n: int
    m: int
    rows: int
    cols: int
    backpressure: bool
    held_out: bool
    folds: list            # streamed rows of each fold, in order
    masks: str             # "random" or "real"
    seed: int
    rtl_cycles: int = 0
    model_cycles_before: float = 0.0
    model_cycles: float = 0.0


def _array_rows(n: int) -> int:
    return 4 if 4 % n == 0 else 2 * n


def suite(acc, quick: bool = False) -> list[Case]:
    """The tiles for an accelerator: its N:M modes plus dense (N = M)."""
    modes = list(acc.compute.sparse.modes)
    top_m = max([m for _, m in modes] or [4])
    modes.append((top_m, top_m))
    shapes = [(None, 4)] if quick else [(None, 3), (None, 4)]
    if quick:
        modes = modes[:1]
    plans = ([[4], [2, 6], [5, 3]], [[1, 3, 8], [6, 6]]) if quick else ([[3], [8, 2], [1, 5, 12], [6, 6, 6, 6]],
                                                       [[16, 4, 9], [2, 2, 2, 2, 2], [20], [7, 1, 13, 3]])
    cases, k = [], 0
    for n, m in modes:
        for _, cols in shapes:
            rows = _array_rows(n)
            for bp in (False, True):
                for held, group in ((False, plans[0]), (True, plans[1])):
                    for folds in group:
                        # random backpressure is predicted on average: its tiles stream long enough
                        # (hundreds of rows) for the average to be what a layer sees
                        t = [x * (40 if bp else 1) for x in folds]
                        masks = "real" if k % 3 == 0 else "random"
                        cases.append(Case(name=f"{n}:{m}_{rows}x{cols}_{'bp' if bp else 'nobp'}_{'-'.join(map(str, t))}",
                                          n=n, m=m, rows=rows, cols=cols, backpressure=bp, held_out=held,
                                          folds=t, masks=masks, seed=k))
                        k += 1
    return cases


@functools.lru_cache(maxsize=1)
def _real_weights() -> np.ndarray:
    """The (k, n) weight of a traced zoo layer (mlp_digits fc2), traced once per process."""
    import sparsim
    return sparsim.trace_zoo("mlp_digits").layer("fc2").gemm_weight()[0]


def _real_tile(n: int, m: int, k: int, cols: int, seed: int):
    """A k x cols weight tile cut from a traced zoo layer, masked N:M by magnitude."""
    from workloads import NM
    w = _real_weights()
    r0 = (seed * 8) % (w.shape[0] - k)
    tile = w[r0:r0 + k, :cols]
    mask = NM(n, m).mask(tile)
    q = np.round(tile / max(np.abs(tile).max(), 1e-9) * 127).astype(int)
    return q, mask


def _vector(case: Case):
    from simulator.golden import compress_nm
    rng = np.random.default_rng(case.seed)
    gr = case.rows // case.n
    k = gr * case.m
    folds = []
    for f, t in enumerate(case.folds):
        if case.masks == "real":
            dense, mask = _real_tile(case.n, case.m, k, case.cols, case.seed + f)
        else:
            dense = rng.integers(-128, 128, size=(k, case.cols))
            mask = np.zeros((k, case.cols), dtype=bool)
            for c in range(case.cols):
                for g in range(gr):
                    keep = rng.choice(case.m, size=int(rng.integers(0, case.n + 1)), replace=False)
                    mask[g * case.m + keep, c] = True
        w = np.zeros((case.rows, case.cols), dtype=int)
        ix = np.zeros((case.rows, case.cols), dtype=int)
        for c in range(case.cols):
            cw, ci = compress_nm(dense[:, c], mask[:, c], case.n, case.m)
            w[:, c], ix[:, c] = cw, ci
        acts = rng.integers(-128, 128, size=(t, k))
        folds.append({"w": w.tolist(), "idx": ix.tolist(), "rows": acts.tolist()})
    length = 40 * (sum(case.folds) + case.rows * len(case.folds)) + 400
    p_in, p_out = (0.85, 0.85) if case.backpressure else (1.0, 1.0)
    return {"folds": folds, "wl_valid": (rng.random(length) < p_in).tolist(),
            "in_valid": (rng.random(length) < p_in).tolist(), "out_ready": (rng.random(length) < p_out).tolist()}


def scalesim_rule(case: Case) -> float:
    """The engine's default (SCALE-Sim) count for the same folds: sum of 2R + C + T - 2, minus one."""
    return float(sum(2 * case.rows + case.cols + t - 2 for t in case.folds) - 1)


def rtl_rule(case: Case, params) -> float:
    from simulator.kernels import double_buffered_cycles
    return double_buffered_cycles(case.folds, case.rows, case.cols, *params)


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


def calibrate(acc, sim: str = "verilator", quick: bool = False, log=print) -> tuple[dict, dict]:
    """Run the suite on ``sim``; returns (calibration YAML document, report)."""
    missing = simulator_missing(sim)
    if missing:
        raise HdlError(missing)
    cases = suite(acc, quick)
    for i, case in enumerate(cases):
        params = check_array_params({"R": case.rows, "C": case.cols, "N": case.n, "M": case.m, "DW": 8, "AW": 32})
        res = run_unit("nm_array", sim, params, _vector(case), "hdl.tb.test_nm_array", quiet=True,
                       defines={"SPARSIM_ACTIVITY": 1})
        case.rtl_cycles = int(res["cycles"])
        case.model_cycles_before = scalesim_rule(case)
        log(f"[{i + 1}/{len(cases)}] {case.name}: {case.rtl_cycles} RTL cycles")
    fits = {}
    for bp in (False, True):
        train = [c for c in cases if c.backpressure == bp and not c.held_out]
        fits[bp] = fit(train)
        for c in cases:
            if c.backpressure == bp:
                c.model_cycles = rtl_rule(c, fits[bp])
    held = [c for c in cases if c.held_out]
    overall = _errors(held)
    no_bp, bp = fits[False], fits[True]
    calib = {"compute": {"timing": {"model": "rtl", "weight_load_cycles_per_row": no_bp[0],
                                     "stream_cycles_per_row": no_bp[1], "fill_drain_extra_cycles": no_bp[2]}}}
    report = {
        "accelerator": acc.name,
        "simulator": {"name": sim, "version": simulator_version(sim)},
        "mape_percent": overall["mape_percent"],
        "max_abs_error_percent": overall["max_abs_error_percent"],
        "held_out": {"no_backpressure": _errors([c for c in held if not c.backpressure]),
                     "backpressure": _errors([c for c in held if c.backpressure])},
        "before_fit_mape_percent": float(np.mean([abs(c.model_cycles_before - c.rtl_cycles) / c.rtl_cycles * 100
                                                  for c in held])),
        "fit": {"no_backpressure": dict(zip(("weight_load_cycles_per_row", "stream_cycles_per_row",
                                             "fill_drain_extra_cycles"), no_bp)),
                "backpressure": dict(zip(("weight_load_cycles_per_row", "stream_cycles_per_row",
                                          "fill_drain_extra_cycles"), bp)),
                "backpressure_valid_ready_probability": 0.85},
        "cases": [{**{k: v for k, v in asdict(c).items() if k != "seed"},
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
