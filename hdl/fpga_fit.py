"""The synthesis grid behind the FPGA resource and clock model (``accel/fpga.py``).

Every point of :data:`GRID` (array rows, columns, N:M, data width) is synthesized with current Yosys
for ECP5 and placed and routed with nextpnr-ecp5; each result is cached as JSON under
``hdl/build/synth-cache/`` (ignored), so an interrupted run resumes. ``fit`` turns the measurements
into the committed data files: the measurement table ``hdl/data/fpga_grid.csv`` and the model's
coefficients ``accel/data/fpga_model.json``, with the error on the held-out points.

    python -m hdl.fpga_fit run [KEY [router2]]   # synthesize and place what is not cached yet (slow: minutes a point)
    python -m hdl.fpga_fit fit     # fit and write the data files
    python -m hdl.fpga_fit table   # the committed table beside the model's estimates (Markdown)
"""
from __future__ import annotations

import csv
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .runner import BUILD, HDL
from .synth import synth

CACHE = BUILD / "synth-cache"
TABLE = HDL / "data" / "fpga_grid.csv"
MODEL = HDL.parent / "accel" / "data" / "fpga_model.json"
DEVICE = "85k"
# the 85k has 156 MULT18X18D: a larger array is placed with its multipliers in LUTs (``dsp=False``)
DSP_LIMIT = 156
DEVICE_LUT = 83640            # LUT4s of the 85k (Lattice FPGA-DS-02012)
# LUT4s of one 8-bit multiplier mapped to logic (``synth_ecp5 -nodsp``): measured on the placed 4x4
# 2:4 array, 7,054 LUT4 without DSPs against 1,113 with 16 MULT18X18D: (7054 - 1113) / 16
LUT_PER_SOFT_MULT8 = 371


@dataclass(frozen=True)
class Point:
    r: int
    c: int
    n: int
    m: int
    dw: int = 8
    held_out: bool = False

    @property
    def params(self) -> dict:
        return {"R": self.r, "C": self.c, "N": self.n, "M": self.m, "DW": self.dw, "AW": 32}

    @property
    def key(self) -> str:
        return f"R{self.r}_C{self.c}_N{self.n}_M{self.m}_DW{self.dw}"


# 16x16 is synthesized only: it cannot be placed on the 85k (see ``unplaceable``); 12x12 and 8x16
# are the largest arrays that place with their multipliers in MULT18X18D blocks
GRID = [Point(4, 4, 2, 4), Point(4, 4, 1, 4), Point(4, 4, 4, 4), Point(4, 4, 2, 8),
        Point(8, 8, 2, 4), Point(8, 8, 1, 4), Point(8, 8, 4, 4, held_out=True), Point(8, 8, 2, 8, held_out=True),
        Point(4, 4, 2, 4, 16),
        Point(8, 4, 2, 4, held_out=True), Point(4, 8, 1, 4, held_out=True), Point(8, 8, 2, 4, 16, held_out=True),
        Point(16, 16, 2, 4), Point(16, 16, 1, 4), Point(16, 16, 4, 4), Point(16, 16, 2, 8),
        Point(12, 12, 4, 4, held_out=True), Point(8, 16, 2, 8, held_out=True)]


def measure(point: Point, pnr: bool = True, log=print, router: str = "router1") -> dict:
    """One grid point: synthesis counts and, with ``pnr``, the placed Fmax (cached; ``router``:
    nextpnr's router for a point not placed yet, recorded with the result)."""
    path = CACHE / f"{point.key}{'_pnr' if pnr else ''}.json"
    if path.exists():
        return json.loads(path.read_text())
    t0 = time.perf_counter()
    dsp = point.r * point.c <= DSP_LIMIT or not pnr
    rep = synth("nm_array", point.params, target="ecp5", pnr=pnr, device=DEVICE, dsp=dsp, router=router)
    row = {**rep.to_dict(), "dsp_mapped": dsp, "wall_seconds": round(time.perf_counter() - t0, 1)}
    row.pop("by_type")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row, indent=1))
    log(f"{point.key}: LUT {rep.lut} FF {rep.ff} carry {rep.carry} DSP {rep.dsp} "
        f"Fmax {rep.pnr.fmax_mhz if rep.pnr else '-'} MHz ({row['wall_seconds']} s)")
    return row


def unplaceable(point: Point) -> str:
    """Why ``point`` cannot be placed on the 85k ('' when it can): more multipliers than MULT18X18D
    blocks, and with the multipliers in LUTs more LUT4s than the device has (estimated from its
    synthesis counts, cached or from the model)."""
    pes = point.r * point.c
    if pes <= DSP_LIMIT:
        return ""
    counts, _ = _cached(point)
    if counts is None:
        from accel.fpga import estimate_array
        counts = estimate_array(point.r, point.c, point.n, point.m, point.dw)
    soft = counts["lut"] + pes * LUT_PER_SOFT_MULT8 * (point.dw / 8) ** 2
    if soft <= DEVICE_LUT:
        return ""
    return (f"{pes} multipliers > {DSP_LIMIT} MULT18X18D, and in LUTs about {soft:,.0f} LUT4 "
            f"({counts['lut']:,} + {pes} x {LUT_PER_SOFT_MULT8 * (point.dw / 8) ** 2:.0f}) > {DEVICE_LUT:,}")


def run(pnr: bool = True, log=print, only: str = "", router: str = "router1") -> None:
    """Synthesis counts of every point first (minutes), then place and route (longer), so that an
    interrupted run still has the whole resource table. ``only``: points whose key contains it."""
    points = [p for p in GRID if only in p.key]
    for point in points:
        measure(point, pnr=False, log=log)
    if pnr:
        for point in points:
            why = unplaceable(point)
            if why:
                log(f"{point.key}: not placed on the {DEVICE}: {why}")
                continue
            measure(point, pnr=True, log=log, router=router)


def _cached(point: Point) -> tuple[dict | None, dict]:
    """(synthesis counts with DSPs mapped, place-and-route result or {}) of a point."""
    syn, placed = CACHE / f"{point.key}.json", CACHE / f"{point.key}_pnr.json"
    pnr = json.loads(placed.read_text()) if placed.exists() else None
    counts = json.loads(syn.read_text()) if syn.exists() else (pnr if pnr and pnr["dsp_mapped"] else None)
    return counts, (pnr or {}).get("pnr") or {}


def table_rows() -> list[dict]:
    """The cached measurements as flat rows (points not measured yet are left out)."""
    rows = []
    for point in GRID:
        d, pnr = _cached(point)
        if d is None:
            continue
        rows.append({"R": point.r, "C": point.c, "N": point.n, "M": point.m, "DW": point.dw,
                     "held_out": int(point.held_out), "lut": d["lut"], "ff": d["ff"], "carry": d["carry"],
                     "dsp": d["dsp"], "bram": d["bram"], "mux": d["mux"],
                     "pnr_dsp_mapped": int(point.r * point.c <= DSP_LIMIT) if pnr else "",
                     "fmax_mhz": pnr.get("fmax_mhz") or "", "synth_seconds": d["seconds"],
                     "pnr_seconds": pnr.get("seconds", ""),
                     "pnr_router": pnr.get("router", "router1") if pnr else "", "yosys": d["yosys"].split(" (")[0]})
    return rows


def write_table(rows: list[dict]) -> None:
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    with open(TABLE, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def fit() -> dict:
    from accel.fpga import fit_array_model, read_grid
    write_table(table_rows())
    model = fit_array_model(read_grid(TABLE))
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    MODEL.write_text(json.dumps(model, indent=1) + "\n")
    return model


def markdown() -> str:
    """The committed table beside the committed model's estimates, as a Markdown table."""
    from accel.fpga import estimate_array, load_model, read_grid
    model = load_model()
    head = ("| array | N:M | DW | held out | LUT4 | FF | CCU2C | MULT18 | EBR | Fmax MHz (placed) | est. LUT "
            "| est. FF | est. Fmax | synth s | pnr s |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in read_grid(TABLE):
        rr, cc, n, m, dw = (int(r[k]) for k in ("R", "C", "N", "M", "DW"))
        est = estimate_array(rr, cc, n, m, dw, model=model)
        fmax = r["fmax_mhz"] if r["fmax_mhz"] not in ("", None) else "-"
        if fmax != "-" and not int(r["pnr_dsp_mapped"] or 0):
            fmax = f"{fmax} (no DSP)"
        elif fmax == "-" and rr * cc > DSP_LIMIT:
            fmax = "does not fit"
        pnr = f"{r['pnr_seconds']:.0f}" if r["pnr_seconds"] not in ("", None) else ""
        lines.append(f"| {rr}x{cc} | {n}:{m} | {dw} | {'yes' if int(r['held_out']) else 'no'} | {r['lut']:.0f} | "
                     f"{r['ff']:.0f} | {r['carry']:.0f} | {r['dsp']:.0f} | {r['bram']:.0f} | {fmax} | {est['lut']} | "
                     f"{est['ff']} | {est['fmax_mhz']} | {r['synth_seconds']:.0f} | {pnr} |")
    return "\n".join(lines)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "run"
    only = sys.argv[2] if len(sys.argv) > 2 else ""
    if what == "run":
        run(only=only, router=sys.argv[3] if len(sys.argv) > 3 else "router1")
    elif what == "synth":
        run(pnr=False, only=only)
    elif what == "fit":
        model = fit()
        print(json.dumps({k: model[k] for k in ("held_out_error", "period_terms_fitted",
                                                 "fmax_leave_one_out_error")}, indent=1))
    elif what == "table":
        print(markdown())
    else:
        sys.exit(f"usage: python -m hdl.fpga_fit run|synth|fit|table (got {what!r})")
