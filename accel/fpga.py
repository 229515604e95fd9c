"""FPGA resource and clock models: how many DSPs, BRAM36 blocks, LUTs and FFs a design needs, and
how fast it can run.

Two models, chosen by ``fpga.model`` in a description:

* ``per_pe`` (default): per-PE costs typed in or measured with ``sparsim synth --fpga-yaml``.
  DSP: one multiplier per PE, ``macs_per_dsp`` MACs per DSP slice (a DSP48E2 packs two int8
  multiplies sharing an operand: 2; int16: 1; fp32 needs about three slices: 1/3). LUT:
  ``lut_per_pe`` plus the index mux of N:M designs, ``lut_per_mux_bit`` x activation bits x
  log2(max M) per PE. FF: ``ff_per_pe`` per PE. The clock is the one given.
* ``array``: the array-level model fitted on the project's own RTL array (``hdl/rtl/nm_array.sv``)
  synthesized with current Yosys for ECP5 and placed with nextpnr-ecp5 over a grid of (R, C, N, M,
  data width) (``hdl/fpga_fit.py``; measurements in ``hdl/data/fpga_grid.csv``, coefficients and
  held-out error in ``accel/data/fpga_model.json``). Each resource is a non-negative combination of
  structural counts of the RTL (storage bits, pipeline bits, mux inputs, adders); the clock period
  is linear in log2 of the array size, of M and of R/N, with only the terms the placed points
  support (chosen by leave-one-out error). ``fpga.clock_hz: estimated`` takes its Fmax, and
  ``compute.clock_hz: fpga`` runs the engine at the FPGA's clock.

BRAM36 (both models): every memory bank rounded up to 36 Kbit (4,608 bytes) blocks (the array
itself holds its weights in registers).
"""
from __future__ import annotations

import csv
import functools
import itertools
import json
import math
from pathlib import Path

import numpy as np

from .errors import AccelConfigError
from .spec import Accelerator, ComputeArray, FpgaBudget, FpgaUsage

BRAM36_BYTES = 36 * 1024 // 8
MODEL_PATH = Path(__file__).resolve().parent / "data" / "fpga_model.json"

# Devices a description can name; the budget's keys default from here. ECP5: Lattice's ECP5 family
# data sheet (FPGA-DS-02012), LUT4 and FF counts, MULT18X18D blocks, 18 Kbit EBR blocks counted as
# half a BRAM36. XCVU9P: Xilinx DS890 (UltraScale+ product tables), on the VCU1525 board.
DEVICES = {
    "ecp5-25k": {"family": "ecp5", "lut": 24288, "ff": 24288, "dsp": 28, "bram36": 28},
    "ecp5-45k": {"family": "ecp5", "lut": 43848, "ff": 43848, "dsp": 72, "bram36": 54},
    "ecp5-85k": {"family": "ecp5", "lut": 83640, "ff": 83640, "dsp": 156, "bram36": 104},
    "xcvu9p": {"family": "xilinx-ultrascale+", "lut": 1182240, "ff": 2364480, "dsp": 6840, "bram36": 2160},
}
RESOURCES = ("lut", "ff", "carry", "dsp")
PERIOD_TERMS = ("constant", "log2(R*C)", "log2(M)", "log2(R/N)")
TEXT_COLUMNS = ("yosys", "pnr_router")          # the measurement table's non-numeric columns


def _log2(x: float) -> float:
    return math.log2(x) if x > 1 else 0.0


def features(r: int, c: int, n: int, m: int, dw: int, aw: int = 32) -> dict[str, list[float]]:
    """Structural counts of ``nm_array`` per resource (the columns the model weighs).

    FF: stored bits (two weight banks with indices and group selects, one partial sum per PE) and
    pipeline bits (activations moving right, input skew lines, output deskew lines, outputs).
    LUT: index-mux inputs (M per PE, DW bits), bank-select bits, group-select mux inputs (GR per
    row), one adder per PE, and a constant. Carry: adder bits of the R - 1 rows
    that add (row 0 starts the partial sums). DSP: multipliers."""
    iw = max(1, (m - 1).bit_length())
    gr = r // n
    gw = max(1, (gr - 1).bit_length())
    pes = r * c
    act = m * dw + 2
    stored = 2 * pes * (dw + iw) + 2 * r * gw + pes * aw
    pipeline = r * (c - 1) * act + r * (r - 1) / 2 * act + c * (c - 1) / 2 * aw + c * aw
    return {
        "ff": [stored, pipeline, 1.0],
        "lut": [pes * dw * (m - 1), pes * (dw + iw), r * m * dw * (gr - 1), pes * aw, 1.0],
        "carry": [(r - 1) * c * aw, 1.0],           # row 0 starts the partial sums: no adder
        "dsp": [pes * math.ceil(dw / 18) ** 2],
        "period": [1.0, _log2(pes), _log2(m), _log2(gr)],
    }


def read_grid(path) -> list[dict]:
    """The measurement table (``hdl/data/fpga_grid.csv``) as rows of numbers."""
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out.append({k: (float(v) if v not in ("", None) and k not in TEXT_COLUMNS else v) for k, v in row.items()})
    return out


def _nnls(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls
    scale = np.maximum(np.abs(x).max(axis=0), 1e-12)      # columns of very different magnitudes
    coef, _ = nnls(x / scale, y)
    return coef / scale


def _args(row: dict) -> tuple:
    return tuple(int(row[k]) for k in ("R", "C", "N", "M", "DW"))


def fit_array_model(rows: list[dict]) -> dict:
    """Fit the coefficients on the training rows; report the error on the held-out rows."""
    train = [r for r in rows if not int(r["held_out"])]
    held = [r for r in rows if int(r["held_out"])]
    if len(train) < 3:
        raise AccelConfigError(f"fpga model: {len(train)} training points measured; at least 3 are needed")
    coef = {}
    for res in RESOURCES:
        x = np.array([features(*_args(r))[res] for r in train], dtype=float)
        y = np.array([r[res] for r in train], dtype=float)
        coef[res] = [float(v) for v in _nnls(x, y)]
    placed = [r for r in train if r.get("fmax_mhz") not in ("", None) and int(r.get("pnr_dsp_mapped") or 0)]
    fitted, loo = [], {"points": 0}
    if len(placed) >= 2:
        x = np.array([features(*_args(r))["period"] for r in placed], dtype=float)
        y = np.array([1000.0 / r["fmax_mhz"] for r in placed])
        keep, loo = _period_terms(x, y)
        sol, *_ = np.linalg.lstsq(x[:, keep], y, rcond=None)
        full = np.zeros(x.shape[1])
        full[keep] = sol
        coef["period_ns"] = [float(v) for v in full]
        fitted = [PERIOD_TERMS[j] for j in keep]
    model = {"target": "ecp5", "unit": "nm_array", "coefficients": coef,
             "training_points": len(train), "placed_training_points": len(placed),
             "period_terms_fitted": fitted, "fmax_leave_one_out_error": loo}
    model["held_out_error"] = _errors(model, held)
    model["training_error"] = _errors(model, train)
    return model


def _loo(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Leave-one-out Fmax errors (percent) of a least-squares period fit on the columns of x."""
    out = []
    for i in range(len(y)):
        rest = np.arange(len(y)) != i
        sol, *_ = np.linalg.lstsq(x[rest], y[rest], rcond=None)
        out.append((y[i] / float(x[i] @ sol) - 1) * 100)    # Fmax = 1000 / period
    return np.array(out)


def _period_terms(x: np.ndarray, y: np.ndarray) -> tuple[list[int], dict]:
    """Which clock-period terms the placed points support: every subset of the terms they vary in
    (with the constant) that leaves at least two degrees of freedom, judged by the leave-one-out error
    of Fmax; the smallest subset wins a tie (within 0.1 %). Returns (column indices, that error)."""
    varying = [j for j in range(1, x.shape[1]) if np.ptp(x[:, j]) > 0]
    best = None
    for k in range(len(varying) + 1):
        for extra in itertools.combinations(varying, k):
            cols = [0, *extra]
            if len(y) - len(cols) < 2:
                continue
            err = _loo(x[:, cols], y)
            score = float(np.mean(np.abs(err)))
            if best is None or score < best[0] - 0.1:
                best = (score, cols, err)
    if best is None:                       # two placed points: a constant only
        return [0], {"points": 0}
    _, cols, err = best
    return cols, {"points": len(err), "mean_abs_percent": round(float(np.mean(np.abs(err))), 2),
                  "max_abs_percent": round(float(np.max(np.abs(err))), 2)}


def _errors(model: dict, rows: list[dict]) -> dict:
    out = {}
    for key in RESOURCES + ("fmax_mhz",):
        pairs = []
        for r in rows:
            if r.get(key) in ("", None) or (key == "fmax_mhz" and not int(r.get("pnr_dsp_mapped") or 0)):
                continue
            est = estimate_array(*_args(r), model=model)[key]
            if est is not None and r[key]:
                pairs.append((est - r[key]) / r[key] * 100)
        out[key] = ({"points": len(pairs), "mean_abs_percent": round(float(np.mean(np.abs(pairs))), 2),
                     "max_abs_percent": round(float(np.max(np.abs(pairs))), 2)} if pairs else {"points": 0})
    return out


@functools.lru_cache(maxsize=1)
def load_model() -> dict:
    if not MODEL_PATH.exists():
        raise AccelConfigError(f"fpga.model: array needs the fitted model {MODEL_PATH} (python -m hdl.fpga_fit fit)")
    return json.loads(MODEL_PATH.read_text())


def estimate_array(r: int, c: int, n: int, m: int, dw: int, aw: int = 32, model: dict | None = None) -> dict:
    """Estimated ECP5 resources and Fmax of an R x C ``nm_array`` at N:M and data width ``dw``:
    ``{"lut", "ff", "carry", "dsp", "bram", "fmax_mhz"}`` (Fmax None when the model has no clock fit)."""
    model = model or load_model()
    coef = model["coefficients"]
    f = features(r, c, n, m, dw, aw)
    out = {res: int(round(float(np.dot(coef[res], f[res])))) for res in RESOURCES}
    out["bram"] = 0.0
    period = coef.get("period_ns")
    out["fmax_mhz"] = round(1000.0 / float(np.dot(period, f["period"])), 2) if period else None
    return out


def array_shape(compute: ComputeArray) -> tuple[int, int]:
    """The N:M of the RTL array that runs ``acc``: the largest group size it supports and, at that
    M, the largest N below M (smaller N modes run on it in one pass); dense-only designs map to 4:4."""
    modes = list(compute.sparse.modes)
    if not modes:
        return 4, 4
    m = max(mm for _, mm in modes)
    return max(nn for nn, mm in modes if mm == m), m


def array_estimate(c: ComputeArray) -> dict:
    """The array model's estimate for a compute array (its widest N:M mode, data and accumulator widths)."""
    n, m = array_shape(c)
    rows = c.rows - c.rows % n or n
    return estimate_array(rows, c.cols, n, m, max(c.activation_bits, c.weight_bits), c.accumulator_bits)


def memory_bram36(acc: Accelerator) -> int:
    bram = 0
    for mem in acc.memories:
        per_bank = math.ceil(mem.size_bytes / mem.banks)
        bram += mem.banks * math.ceil(per_bank / BRAM36_BYTES)
    return bram


def fpga_usage(acc: Accelerator) -> FpgaUsage:
    b = acc.fpga
    c = acc.compute
    if b.model == "array":
        est = array_estimate(c)
        return FpgaUsage(dsp=est["dsp"], bram36=memory_bram36(acc), lut=est["lut"], ff=est["ff"], budget=b,
                         clock_hz=est["fmax_mhz"] * 1e6 if est["fmax_mhz"] else None)
    pes = c.pes
    dsp = math.ceil(pes / b.macs_per_dsp)
    lut_pe, ff_pe, mux_pe = fabric_per_pe(b, c)
    lut = math.ceil(pes * (lut_pe + mux_pe))
    ff = math.ceil(pes * ff_pe)
    return FpgaUsage(dsp=dsp, bram36=memory_bram36(acc), lut=lut, ff=ff, budget=b)


def fabric_per_pe(b: FpgaBudget, c: ComputeArray) -> tuple[float, float, float]:
    """(LUTs, flip-flops, index-mux LUTs) per PE: the per-PE figures of the budget, or the fitted array
    model's totals over the PEs (its mux LUTs are inside its LUT count: 0 apart)."""
    if b.model == "array":
        est = array_estimate(c)
        return est["lut"] / c.pes, est["ff"] / c.pes, 0.0
    ms = c.sparse.group_sizes()
    mux_levels = math.ceil(math.log2(max(ms))) if ms else 0
    return b.lut_per_pe, b.ff_per_pe, b.lut_per_mux_bit * c.activation_bits * mux_levels
