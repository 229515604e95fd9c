"""An independent check of the engine's ``rtl`` timing formula against cycles measured on the RTL.

The calibration's testbench compares the RTL with the golden model, which transcribes the RTL's
control logic; this check does not use it for time. Each point (array R x C up to 16 x 16, a
sequence of folds of given stream lengths) runs on the RTL with no backpressure, the testbench
checks only the output values and records the cycles from the first input accepted to the last
output; the engine's side is :func:`simulator.kernels.double_buffered_cycles` with its default
parameters (one cycle per weight row and per stream row, latency R + C), its formula alone. A
change of the RTL's timing then shows as a nonzero error in the table, not as a testbench failure.
"""
from __future__ import annotations

import numpy as np

from .runner import HdlError, check_array_params, run_unit

SIZES = (2, 4, 8, 16)
SEQUENCES = ((5,), (3, 9), (1, 6, 2, 12), (16, 16, 16))


def measure(r: int, c: int, folds, sim: str = "verilator", seed: int = 0) -> int:
    """RTL cycles (first input accepted to last output) of ``folds`` (stream rows per fold) on an
    R x C array at 1:2, random weights and activations, no backpressure."""
    params = check_array_params({"R": r, "C": c, "N": 1, "M": 2, "DW": 8, "AW": 32})
    rng = np.random.default_rng(seed)
    vec_folds = [{"w": rng.integers(-128, 128, size=(r, c)).tolist(), "idx": rng.integers(0, 2, size=(r, c)).tolist(),
                  "rows": rng.integers(-128, 128, size=(t, 2 * r)).tolist()} for t in folds]
    cap = 4 * (sum(folds) + (r + 1) * len(folds)) + 4 * (r + c) + 50
    vec = {"folds": vec_folds, "wl_valid": [True] * cap, "in_valid": [True] * cap, "out_ready": [True] * cap,
           "independent": True, "max_cycles": cap}
    try:
        res = run_unit("nm_array", sim, params, vec, "hdl.tb.test_nm_array", quiet=True)
    except HdlError:
        raise
    except (Exception, SystemExit) as exc:
        raise HdlError(f"timing check {r}x{c} {list(folds)}: the RTL run on {sim} failed: "
                       f"{str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__}") from None
    return int(res["cycles"])


def timing_grid(sim: str = "verilator", sizes=SIZES, sequences=SEQUENCES, log=print, shapes=None) -> dict:
    """Every (R, C) in ``sizes`` x ``sizes`` (or the (R, C) pairs ``shapes``) and fold sequence: RTL
    cycles, formula cycles, error."""
    from simulator.kernels import double_buffered_cycles
    rows = []
    for r, c in shapes or [(r, c) for r in sizes for c in sizes]:
        if c < 2:
            continue
        for seq in sequences:
            rtl = measure(r, c, seq, sim)
            formula = double_buffered_cycles(list(seq), r, c)
            rows.append({"R": r, "C": c, "folds": list(seq), "rtl_cycles": rtl, "formula_cycles": formula,
                         "error_cycles": formula - rtl})
        log(f"timing check {r}x{c}: max error {max(abs(x['error_cycles']) for x in rows[-len(sequences):]):g} "
            f"cycles over {len(sequences)} fold sequences")
    errs = [abs(x["error_cycles"]) for x in rows]
    return {"simulator": sim, "points": len(rows), "max_abs_error_cycles": max(errs),
            "mean_abs_error_cycles": float(np.mean(errs)), "rows": rows}
