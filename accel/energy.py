"""The default energy table and its scaling to other technology nodes.

Source: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm,
0.9 V. Per operation: 8-bit int multiply 0.2 pJ, add 0.03 pJ; 32-bit int multiply 3.1 pJ, add
0.1 pJ; 16-bit float multiply 1.1 pJ, add 0.4 pJ; 32-bit float multiply 3.7 pJ, add 0.9 pJ.
SRAM read of 64 bits: 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB). DRAM: 1.3-2.6 nJ per 64 bits.

A MAC is one multiply plus one accumulate at the accumulator width, so int8 = 0.2 + 0.1 (32-bit
accumulate) = 0.3 pJ; 16-bit (fp16 multiply, fp32 accumulate) = 1.1 + 0.9 = 2.0 pJ; fp32 = 3.7 + 0.9
= 4.6 pJ. Gated MACs, the index mux and pipeline registers are not in Horowitz's table; they are
this project's assumptions, stated here: a clock-gated MAC costs 10 % of an active one, a 4:1
8-bit mux select 0.02 pJ, a 32-bit register write 0.04 pJ.

Scaling: dynamic energy ~ C V^2 with C ~ feature size, using the nominal supply of each node below.
DRAM energy does not scale with the logic node.
"""
from __future__ import annotations

import math

from .spec import EnergyTable

HOROWITZ_SOURCE = "Horowitz, ISSCC 2014, 45 nm (see accel/energy.py)"

_MAC_PJ_45NM = ((8, 0.3), (16, 2.0), (32, 4.6))
_VDD = {180: 1.8, 130: 1.2, 90: 1.0, 65: 1.0, 45: 0.9, 40: 0.9, 32: 0.9, 28: 0.9, 22: 0.8, 16: 0.8,
        14: 0.8, 12: 0.8, 10: 0.75, 7: 0.7, 5: 0.65, 3: 0.6}

SRAM_PJ_PER_BYTE_45NM = ((8 * 1024, 10 / 8), (32 * 1024, 20 / 8), (1024 * 1024, 100 / 8))
DRAM_PJ_PER_BYTE = 1300 / 8  # the low end of Horowitz's 1.3-2.6 nJ per 64-bit access


def node_scale(node_nm: float) -> float:
    """Factor that takes a 45 nm dynamic energy to ``node_nm``: (node/45) x (Vdd(node)/0.9)^2."""
    known = sorted(_VDD)
    nearest = min(known, key=lambda n: abs(math.log(n / node_nm)))
    return (node_nm / 45.0) * (_VDD[nearest] / 0.9) ** 2


def sram_pj_per_byte(size_bytes: int, node_nm: float = 45.0) -> float:
    """SRAM access energy per byte for a buffer of ``size_bytes``: log-linear between Horowitz's
    8 KB, 32 KB and 1 MB points (clamped outside them), scaled to ``node_nm``."""
    pts = SRAM_PJ_PER_BYTE_45NM
    s = max(pts[0][0], min(pts[-1][0], size_bytes))
    for (s0, e0), (s1, e1) in zip(pts, pts[1:]):
        if s <= s1:
            t = (math.log(s) - math.log(s0)) / (math.log(s1) - math.log(s0))
            return (e0 + t * (e1 - e0)) * node_scale(node_nm)
    return pts[-1][1] * node_scale(node_nm)  # pragma: no cover


def default_table(node_nm: float = 45.0, static_power_w: float = 0.0) -> EnergyTable:
    k = node_scale(node_nm)
    return EnergyTable(node_nm=node_nm, mac_pj=tuple((b, e * k) for b, e in _MAC_PJ_45NM),
                       gated_mac_fraction=0.1, index_mux_pj=0.02 * k, register_pj=0.04 * k,
                       static_power_w=static_power_w, source=HOROWITZ_SOURCE)
