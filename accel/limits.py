"""What an accelerator description may ask for: designs that cannot be built are refused when the
description is read (the message names the key and the bound), before anything is simulated.

The bounds are far beyond any built design, so that every real or plausible one passes, and they
stop a typo (an extra three zeros) or a generated grid from producing confident numbers for a chip
that cannot exist:

* ``compute.rows`` and ``compute.cols``: at most ``MAX_ARRAY_DIM`` = 2^16 each, and ``MAX_PES`` =
  2^24 PEs in all (a 4,096 x 4,096 array). Google's TPU v1 has one 256 x 256 array (65,536 MACs;
  Jouppi et al., ISCA 2017); the largest dies built (about 800 mm^2) hold a few hundred thousand
  MAC units.
* ``memories[i].size_bytes``: at most ``MAX_MEMORY_BYTES`` = 2^36 (64 GiB) per on-chip buffer; a
  wafer-scale engine holds 44 GB of SRAM in all (Cerebras WSE-3, 2024).
* ``compute.clock_hz``: at most ``MAX_CLOCK_HZ`` = 1 THz. A whole-chip model may run a small array
  on a virtual clock (the ``gpu-a100-2of4`` preset: 432 tensor cores x 256 MACs per 1.41 GHz clock
  as 432 PEs at 360.96 GHz), so the clock alone is bounded loosely and the peak rate tightly:
* ``compute.rows x compute.cols x compute.clock_hz``: at most ``MAX_MAC_RATE`` = 1e17 MACs per
  second, above the largest chip built (Cerebras WSE-3, 2024: 125 PFLOPS sparse FP16, 6.25e16 MAC/s).

Bandwidths are not bounded: an unlimited DRAM or buffer port is a modelling choice (to see a
design's compute bound), not a chip.
"""
from __future__ import annotations

from .errors import AccelConfigError

MAX_ARRAY_DIM = 1 << 16
MAX_PES = 1 << 24
MAX_MEMORY_BYTES = 1 << 36
MAX_CLOCK_HZ = 1e12
MAX_MAC_RATE = 1e17


def check_buildable(compute, memories) -> None:
    """Raise :class:`AccelConfigError` naming the key when ``compute`` or a memory is beyond the bounds."""
    for key in ("rows", "cols"):
        v = getattr(compute, key)
        if v > MAX_ARRAY_DIM:
            raise AccelConfigError(f"compute.{key}: {v:,} is above {MAX_ARRAY_DIM:,} (2^16), the largest array "
                                   f"side sparsim accepts: no such array can be built (a TPU v1 is 256 x 256)")
    if compute.pes > MAX_PES:
        raise AccelConfigError(f"compute.rows x compute.cols: {compute.rows:,} x {compute.cols:,} = {compute.pes:,} "
                               f"PEs is above {MAX_PES:,} (2^24, a 4,096 x 4,096 array), the most sparsim accepts: "
                               f"no such array can be built")
    if compute.clock_hz > MAX_CLOCK_HZ:
        raise AccelConfigError(f"compute.clock_hz: {compute.clock_hz:g} Hz is above {MAX_CLOCK_HZ:g} Hz (1 THz), "
                               f"the fastest clock sparsim accepts, virtual clocks of whole-chip models included")
    rate = compute.pes * compute.clock_hz
    if rate > MAX_MAC_RATE:
        raise AccelConfigError(f"compute.clock_hz: {compute.pes:,} PEs x {compute.clock_hz:g} Hz = {rate:.3g} MACs/s is "
                               f"above {MAX_MAC_RATE:g} MACs/s, the fastest chip sparsim accepts (a Cerebras WSE-3 "
                               f"does 6.25e16)")
    for i, mem in enumerate(memories):
        if mem.size_bytes > MAX_MEMORY_BYTES:
            raise AccelConfigError(f"memories[{i}].size_bytes: {mem.size_bytes:,} B ('{mem.name}') is above "
                                   f"{MAX_MEMORY_BYTES:,} B (64 GiB), the largest on-chip buffer sparsim accepts")
