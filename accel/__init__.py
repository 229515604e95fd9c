"""accel: accelerator descriptions (YAML, preset name or SCALE-Sim .cfg) -> frozen Accelerator.

Parse -> validate -> build, in :mod:`accel.config`; errors name the key path and what was expected.
"""
from __future__ import annotations

from pathlib import Path

from . import presets
from .config import build, load_yaml
from .energy import default_table
from .errors import AccelConfigError, AccelError, FpgaFitError
from .fpga import fpga_usage
from .scalesim_cfg import load_cfg
from .spec import (Accelerator, ActivationSparsity, ComputeArray, Dataflow, Dram, EnergyTable, FpgaBudget, FpgaUsage, Memory,
                   MapperObjective, MetadataFormat, NmOverflow, Operand, Ports, SparseSupport, Timing, TimingModel,
                   ZeroHandling)

__all__ = ["load", "build", "presets", "Accelerator", "ActivationSparsity", "ComputeArray", "Dataflow", "Dram", "EnergyTable",
           "FpgaBudget", "FpgaUsage", "MapperObjective", "Memory", "MetadataFormat", "NmOverflow", "Operand", "Ports",
           "SparseSupport", "Timing", "TimingModel",
           "ZeroHandling", "AccelError", "AccelConfigError", "FpgaFitError", "fpga_usage", "default_table"]


def load(name_or_path) -> Accelerator:
    """A preset name, a ``.yaml`` description or a SCALE-Sim ``.cfg`` file."""
    if isinstance(name_or_path, Accelerator):
        return name_or_path
    s = str(name_or_path)
    p = Path(s)
    if p.suffix.lower() in (".yaml", ".yml"):
        return load_yaml(p)
    if p.suffix.lower() == ".cfg":
        return load_cfg(p)
    return presets.load(s)
