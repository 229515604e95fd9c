"""The default energy table and its scaling to other technology nodes.

Source: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm,
0.9 V. Per operation: 8-bit int multiply 0.2 pJ, add 0.03 pJ; 32-bit int multiply 3.1 pJ, add
0.1 pJ; 16-bit float multiply 1.1 pJ, add 0.4 pJ; 32-bit float multiply 3.7 pJ, add 0.9 pJ.
SRAM read of 64 bits: 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB). DRAM: 1.3-2.6 nJ per 64 bits.

MAC energy by data type: one multiply plus one accumulate at the accumulator width (32-bit integer
or fp32), at 45 nm:

* int8  = 0.2 + 0.1 (32-bit add) = 0.3 pJ;
* int16 = 0.775 + 0.1 = 0.875 pJ, the 16-bit multiply taken from the 32-bit one by the quadratic
  growth of an array multiplier with its width: 3.1 x (16/32)^2 (the 8-bit one gives 0.8: consistent);
* fp16  = 1.1 + 0.9 (fp32 accumulate) = 2.0 pJ;
* bf16  = 0.58 + 0.9 = 1.48 pJ: a float multiply is dominated by its mantissa multiplier, which
  grows with the square of the mantissa width (8 bits with the hidden one for bf16, 11 for fp16):
  1.1 x (8/11)^2 = 0.58 pJ; exponent adders are ignored;
* fp32  = 3.7 + 0.9 = 4.6 pJ.

A description names its type with ``compute.data_type``; without it, 8 bits mean int8, 16 fp16 and 32
fp32. Other integer widths scale quadratically from the next listed integer width up.

SRAM: log-linear between Horowitz's 8 KB, 32 KB and 1 MB points; outside them the energy per byte
scales with the square root of the size (the trend of the table itself: x4 in size gives x2 from 8 to
32 KB, x32 gives x5 from 32 KB to 1 MB; wire length grows with the side of the array), never clamped.

DRAM energy per technology (per bit, I/O and core, at full bandwidth), chosen by ``dram.technology``:

* ``ddr3``: 20.3 pJ/bit, the low end of Horowitz's 1.3-2.6 nJ per 64-bit access;
* ``ddr4``: 13.8 pJ/bit, Micron's DDR4 power method (TN-40-07) on a DDR4-2400 8 Gb x8 part (the IDD
  values Ramulator 2 ships): read burst 5.6 pJ/bit, activate/precharge and background at full
  bandwidth the rest;
* ``lpddr4``: 13 pJ/bit, a 4 x 8 Gb LPDDR4 package at 3.2 Gb/s per pin (H. Ha, Stanford PhD thesis,
  2018, DRAM design-space exploration);
* ``gddr5``: 14 pJ/bit and ``hbm2``: 3.9 pJ/bit, O'Connor et al., "Fine-Grained DRAM: Energy-Efficient
  DRAM for Extreme Bandwidth Systems", MICRO 2017, Fig. 1.

Gated MACs, the index mux and pipeline registers are not in Horowitz's table; they are this
project's assumptions, stated here: a clock-gated MAC costs 10 % of an active one, a 4:1 8-bit mux
select 0.02 pJ, a 32-bit register write 0.04 pJ.

Scaling: dynamic energy ~ C V^2 with C ~ feature size, using the nominal supply of each node below.
DRAM energy does not scale with the logic node.

FPGA designs (a description with an ``fpga:`` section on a device of a known family) take FPGA
figures instead (:func:`fpga_table`, figures and their derivations in ``accel/data/fpga_energy.json``):
per MAC the DSP slice's operation divided by ``fpga.macs_per_dsp``; per PE and active cycle its LUTs
and flip-flops (the resource model's per-PE counts) with their routing and clock; per byte of buffer
traffic a block-RAM access at its widest port; the device's static power x runtime. DRAM stays by
technology. The result keeps the same energy categories: DSP -> MAC, LUT/FF fabric -> MAC (the
per-PE register term) and metadata (the index-mux LUTs), BRAM -> SRAM, static -> static.
"""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path

from .errors import AccelConfigError
from .spec import EnergyTable

HOROWITZ_SOURCE = "Horowitz, ISSCC 2014, 45 nm (see accel/energy.py)"

DATA_TYPES = ("int8", "int16", "fp16", "bf16", "fp32")
_MAC_PJ_45NM = (("int8", 0.3), ("int16", 0.875), ("fp16", 2.0), ("bf16", 1.48), ("fp32", 4.6),
                (8, 0.3), (16, 0.875), (32, 3.2))   # integer keys: integers of that width
DEFAULT_TYPE = {8: "int8", 16: "fp16", 32: "fp32"}
DRAM_PJ_PER_BIT = {"ddr3": 1300 / 64, "ddr4": 13.8, "lpddr4": 13.0, "gddr5": 14.0, "hbm2": 3.9}
_VDD = {180: 1.8, 130: 1.2, 90: 1.0, 65: 1.0, 45: 0.9, 40: 0.9, 32: 0.9, 28: 0.9, 22: 0.8, 16: 0.8,
        14: 0.8, 12: 0.8, 10: 0.75, 7: 0.7, 5: 0.65, 3: 0.6}

SRAM_PJ_PER_BYTE_45NM = ((8 * 1024, 10 / 8), (32 * 1024, 20 / 8), (1024 * 1024, 100 / 8))
DRAM_PJ_PER_BYTE = 1300 / 8  # the low end of Horowitz's 1.3-2.6 nJ per 64-bit access (ddr3)


def node_scale(node_nm: float) -> float:
    """Factor that takes a 45 nm dynamic energy to ``node_nm``: (node/45) x (Vdd(node)/0.9)^2."""
    known = sorted(_VDD)
    nearest = min(known, key=lambda n: abs(math.log(n / node_nm)))
    return (node_nm / 45.0) * (_VDD[nearest] / 0.9) ** 2


def sram_pj_per_byte(size_bytes: int, node_nm: float = 45.0) -> float:
    """SRAM access energy per byte for a buffer of ``size_bytes``: log-linear between Horowitz's
    8 KB, 32 KB and 1 MB points, square-root scaling outside them, scaled to ``node_nm``."""
    pts = SRAM_PJ_PER_BYTE_45NM
    if size_bytes <= pts[0][0]:
        return pts[0][1] * math.sqrt(size_bytes / pts[0][0]) * node_scale(node_nm)
    if size_bytes >= pts[-1][0]:
        return pts[-1][1] * math.sqrt(size_bytes / pts[-1][0]) * node_scale(node_nm)
    for (s0, e0), (s1, e1) in zip(pts, pts[1:]):
        if size_bytes <= s1:
            t = (math.log(size_bytes) - math.log(s0)) / (math.log(s1) - math.log(s0))
            return (e0 + t * (e1 - e0)) * node_scale(node_nm)
    raise AssertionError("unreachable")  # pragma: no cover


def dram_pj_per_byte(technology: str) -> float:
    return DRAM_PJ_PER_BIT[technology] * 8


def default_table(node_nm: float = 45.0, static_power_w: float = 0.0) -> EnergyTable:
    k = node_scale(node_nm)
    return EnergyTable(node_nm=node_nm, mac_pj=tuple((key, e * k) for key, e in _MAC_PJ_45NM),
                       gated_mac_fraction=0.1, index_mux_pj=0.02 * k, register_pj=0.04 * k,
                       static_power_w=static_power_w, source=HOROWITZ_SOURCE)


# ------------------------------------------------------------------------------------------- FPGA
FPGA_ENERGY_PATH = Path(__file__).resolve().parent / "data" / "fpga_energy.json"
FPGA_FIGURES = ("dsp_op_pj", "lut_pj", "ff_pj", "bram_access_pj", "bram_width_bits")


@functools.lru_cache(maxsize=1)
def fpga_energy_data() -> dict:
    return json.loads(FPGA_ENERGY_PATH.read_text())


def fpga_family(device: str) -> tuple[str | None, str | None]:
    """(family, device key) of an ``fpga.device`` name such as 'xcvu9p (VCU1525)'; (None, None) if unknown."""
    from .fpga import DEVICES
    key = device.strip().lower().replace("(", " ").split()[0] if device.strip() else ""
    known = DEVICES.get(key)
    return (known["family"], key) if known else (None, None)


def fpga_figures(family: str, device_key: str | None) -> dict:
    """The family's figures plus the device's static power (None when the device has no figure)."""
    fam = fpga_energy_data()["families"][family]
    out = {k: fam[k] for k in FPGA_FIGURES + ("node_nm",)}
    dev = fam.get("devices", {}).get(device_key or "", {})
    out["static_power_w"] = dev.get("static_power_w")
    return out


def fpga_table(fig: dict, macs_per_dsp: float, lut_per_pe: float, ff_per_pe: float, mux_lut_per_pe: float,
               static_power_w: float, data_type: str, bits: int, family: str) -> EnergyTable:
    """The energy table of an FPGA design: ``mac_pj`` = DSP energy per MAC, ``register_pj`` = LUT/FF
    fabric energy per PE per active cycle, ``index_mux_pj`` = the index-mux LUTs per active cycle."""
    if macs_per_dsp <= 0:
        raise AccelConfigError(f"fpga.macs_per_dsp: expected a number > 0, got {macs_per_dsp}")
    dsp_mac = fig["dsp_op_pj"] / macs_per_dsp
    return EnergyTable(node_nm=fig["node_nm"], mac_pj=((data_type, dsp_mac), (bits, dsp_mac)),
                       gated_mac_fraction=0.1,
                       register_pj=lut_per_pe * fig["lut_pj"] + ff_per_pe * fig["ff_pj"],
                       index_mux_pj=mux_lut_per_pe * fig["lut_pj"], static_power_w=static_power_w,
                       source=f"FPGA {family} figures (accel/data/fpga_energy.json)", model="fpga")


def bram_pj_per_byte(fig: dict) -> float:
    """Block-RAM energy per byte moved: one access at the widest port over the bytes it moves."""
    return fig["bram_access_pj"] / (fig["bram_width_bits"] / 8)
