"""FPGA resource model: how many DSPs, BRAM36 blocks, LUTs and FFs a design needs.

* DSP: one multiplier per PE, ``macs_per_dsp`` MACs per DSP slice (a DSP48E2 packs two int8
  multiplies sharing an operand: 2; int16: 1; fp32 needs about three slices: 1/3).
* BRAM36: every memory bank rounded up to 36 Kbit (4,608 bytes) blocks, times two when double buffered
  is already in ``size_bytes`` (the size is the total).
* LUT: ``lut_per_pe`` for control and accumulation, plus the activation index mux of N:M designs:
  ``lut_per_mux_bit`` x activation bits x log2(max M) per PE.
* FF: ``ff_per_pe`` per PE.

The per-PE defaults are estimates; ``sparsim synth`` (Yosys) can supply measured ones.
"""
from __future__ import annotations

import math

from .spec import Accelerator, FpgaUsage

BRAM36_BYTES = 36 * 1024 // 8


def fpga_usage(acc: Accelerator) -> FpgaUsage:
    b = acc.fpga
    c = acc.compute
    pes = c.pes
    dsp = math.ceil(pes / b.macs_per_dsp)
    ms = c.sparse.group_sizes()
    mux_levels = math.ceil(math.log2(max(ms))) if ms else 0
    lut = math.ceil(pes * (b.lut_per_pe + b.lut_per_mux_bit * c.activation_bits * mux_levels))
    ff = math.ceil(pes * b.ff_per_pe)
    bram = 0
    for mem in acc.memories:
        per_bank = math.ceil(mem.size_bytes / mem.banks)
        bram += mem.banks * math.ceil(per_bank / BRAM36_BYTES)
    return FpgaUsage(dsp=dsp, bram36=bram, lut=lut, ff=ff, budget=b)
