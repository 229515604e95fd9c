"""Multi-core descriptions: several arrays, each with its own buffers, sharing the DRAM channels.

The ``cores:`` section of a description (validated here; only the event engine simulates it)::

    cores:
      count: 2                      # identical cores, each with this document's compute and memories
      distribution: split-n         # split-n | pipeline (see Distribution)
      channel_placement: interleaved  # interleaved | per-core (see ChannelPlacement)
      arrays:                       # optional, one entry per core: keys merged over the top-level
        - {}                        #   compute and memories (for cores that are not identical)
        - {compute: {rows: 16, cols: 16}}

and in ``dram:``, ``channels`` (default 1; ``bandwidth_bytes_per_s`` is the total over them) and
``latency_cycles`` (default 0: the access latency of one transfer, in array clock cycles).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable

from .errors import AccelConfigError

CORES_KEYS = ("count", "distribution", "channel_placement", "arrays")
DRAM_SYSTEM_KEYS = ("channels", "latency_cycles")


class Distribution(str, enum.Enum):
    """How a workload's layers are distributed among the cores.

    * ``split-n``: every layer is split along its output channels (GEMM columns), each core
      computing a contiguous share proportional to its PE count; every core reads the whole input
      activation. A layer starts on all cores once the previous layer has finished on all of them.
    * ``pipeline``: consecutive layers form contiguous stages, one per core in order, chosen to
      minimize the slowest stage (the fast engine's cycles of each layer on each core, so a smaller
      core gets fewer layers). The workload's batch is cut into micro-batches of one sample that
      flow through the stages; a stage starts a tile of its first layer once the previous stage has
      written back the same fraction of that micro-batch's previous layer (tile-level pipelining).
    """

    SPLIT_N = "split-n"
    PIPELINE = "pipeline"


class ChannelPlacement(str, enum.Enum):
    """Where a core's data sits in the DRAM channels.

    * ``interleaved``: addresses are interleaved over every channel, so every transfer is striped
      over all of them (channels then only add up their bandwidth);
    * ``per-core``: core ``i``'s data sits in channel ``i mod channels``: cores that share a channel
      contend for it, cores on different channels do not.
    """

    INTERLEAVED = "interleaved"
    PER_CORE = "per-core"


@dataclass(frozen=True)
class MultiCore:
    cores: tuple            # one accel.Accelerator per core (its own compute and memories)
    distribution: Distribution = Distribution.SPLIT_N
    placement: ChannelPlacement = ChannelPlacement.INTERLEAVED


def dram_system(ctx) -> dict:
    """The ``dram`` keys of the memory system: channels and access latency."""
    return {"channels": ctx.int("channels", 1), "latency_cycles": ctx.num("latency_cycles", 0.0, positive=False)}


def parse_cores(top, doc: dict, build: Callable, ctx_cls) -> MultiCore | None:
    """Validate ``cores:`` and build one accelerator per core (``build`` is accel.config.build)."""
    if top.get("cores", None) is None:
        return None
    c = ctx_cls(top.get("cores"), "cores", CORES_KEYS)
    arrays = c.list("arrays", [])
    count = c.int("count", len(arrays) or 1)
    if arrays and len(arrays) != count:
        raise AccelConfigError(f"cores.arrays: expected {count} entries (cores.count), got {len(arrays)}")
    base = {k: v for k, v in doc.items() if k != "cores"}
    built = []
    for i in range(count):
        over = arrays[i] if arrays else {}
        if not isinstance(over, dict):
            raise AccelConfigError(f"cores.arrays[{i}]: expected a mapping with compute and/or memories, "
                                   f"got {over!r}")
        unknown = [k for k in over if k not in ("compute", "memories")]
        if unknown:
            raise AccelConfigError(f"cores.arrays[{i}].{unknown[0]}: unknown key; expected compute or memories")
        core_doc = dict(base)
        if "compute" in over:
            if not isinstance(over["compute"], dict):
                raise AccelConfigError(f"cores.arrays[{i}].compute: expected a mapping, got {over['compute']!r}")
            core_doc["compute"] = {**base.get("compute", {}), **over["compute"]}
        if "memories" in over:
            core_doc["memories"] = over["memories"]
        core_doc["name"] = f"{base.get('name', 'accelerator')}/core{i}"
        try:
            built.append(build(core_doc))
        except AccelConfigError as e:
            raise AccelConfigError(f"cores.arrays[{i}]: {e}" if arrays else str(e)) from None
    return MultiCore(cores=tuple(built), distribution=c.enum("distribution", Distribution, "split-n"),
                     placement=c.enum("channel_placement", ChannelPlacement, "interleaved"))
