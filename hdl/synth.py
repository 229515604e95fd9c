"""Resource counts of the RTL from Yosys: ``synth_xilinx`` (UltraScale+) or generic ``synth``.

FPGA counts: LUTs (LUT1-LUT6), flip-flops (FD*), DSP slices (DSP48E*), block RAMs (RAMB18/36 as
36 Kbit equivalents), plus carry chains, wide muxes and the total cell count; I/O buffers are left
out (the unit sits inside a design). Generic counts: every gate-level cell, and the flip-flops.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .runner import RTL, HdlError, check_nm_params

UNITS = {"nm_dot": check_nm_params}


@dataclass(frozen=True)
class SynthReport:
    unit: str
    params: dict
    target: str
    lut: int
    ff: int
    dsp: int
    bram36: float
    cells: int
    by_type: dict = field(repr=False)

    def to_dict(self) -> dict:
        return {"unit": self.unit, "params": self.params, "target": self.target, "lut": self.lut, "ff": self.ff,
                "dsp": self.dsp, "bram36": self.bram36, "cells": self.cells, "by_type": self.by_type}


def parse_params(text: str) -> dict:
    """``"N=2,M=4,G=4"`` -> ``{"N": 2, "M": 4, "G": 4}``."""
    out = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise HdlError(f"--params '{text}': expected NAME=VALUE pairs separated by commas, got '{part}'")
        try:
            out[key.strip()] = int(value)
        except ValueError:
            raise HdlError(f"--params '{text}': {key.strip()} must be an integer, got '{value}'") from None
    return out


def synth(unit: str, params: dict, target: str = "xilinx") -> SynthReport:
    if unit not in UNITS:
        raise HdlError(f"unit '{unit}': expected one of {', '.join(UNITS)}")
    if target not in ("xilinx", "generic"):
        raise HdlError(f"target must be 'xilinx' or 'generic', got {target!r}")
    defaults = {"N": 2, "M": 4, "G": 4, "DW": 8, "AW": 32}
    unknown = set(params) - set(defaults)
    if unknown:
        raise HdlError(f"unit '{unit}': unknown parameter(s) {sorted(unknown)}; expected {', '.join(defaults)}")
    p = UNITS[unit]({**defaults, **params})
    if shutil.which("yosys") is None:
        raise HdlError("yosys is not installed: apt-get install yosys")
    rtl_params = {k: v for k, v in p.items() if k != "IW"}
    chparam = " ".join(f"-set {k} {v}" for k, v in rtl_params.items())
    flow = (f"synth_xilinx -family xcup -noiopad -top {unit} -flatten" if target == "xilinx"
            else f"synth -top {unit} -flatten")
    with tempfile.TemporaryDirectory() as tmp:
        stat = Path(tmp) / "stat.json"
        script = (f"read_verilog -sv {RTL / (unit + '.sv')}; chparam {chparam} {unit}; {flow}; "
                  f"tee -q -o {stat} stat -json")
        r = subprocess.run(["yosys", "-q", "-p", script], capture_output=True, text=True)
        if r.returncode != 0 or not stat.exists():
            raise HdlError(f"yosys failed on {unit} {rtl_params}: {(r.stderr or r.stdout).strip()[-500:]}")
        doc = json.loads(stat.read_text())
    by_type = dict(next(iter(doc["modules"].values()))["num_cells_by_type"])
    lut = sum(v for k, v in by_type.items() if k.startswith("LUT"))
    ff = sum(v for k, v in by_type.items() if k.startswith("FD") or "DFF" in k.upper())
    dsp = sum(v for k, v in by_type.items() if k.startswith("DSP"))
    bram = sum(v for k, v in by_type.items() if k.startswith("RAMB36")) + \
        sum(v for k, v in by_type.items() if k.startswith("RAMB18")) / 2
    cells = sum(v for k, v in by_type.items() if k not in ("BUFG", "IBUF", "OBUF"))
    return SynthReport(unit=unit, params=rtl_params, target=target, lut=lut, ff=ff, dsp=dsp, bram36=bram,
                       cells=cells, by_type=by_type)


def fpga_costs(rep: SynthReport) -> dict:
    """Per-PE costs for an accelerator's ``fpga:`` section, from a synthesized unit: one PE is one
    multiplier lane (G x N lanes in nm_dot); its index mux and its share of the adder tree and
    registers are inside ``lut_per_pe`` and ``ff_per_pe``, so ``lut_per_mux_bit`` is 0."""
    lanes = rep.params["G"] * rep.params["N"]
    return {"fpga": {"macs_per_dsp": round(lanes / rep.dsp, 4) if rep.dsp else float(lanes),
                     "lut_per_pe": round(rep.lut / lanes, 2), "lut_per_mux_bit": 0.0,
                     "ff_per_pe": round(rep.ff / lanes, 2)}}
