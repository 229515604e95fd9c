"""simulator: Workload x Accelerator -> SimResult (per-layer cycles, stalls, traffic, energy).

Importing this package imports Numba; kernels compile on first use and are cached on disk.
"""
from .dataflow import DATAFLOWS, DataflowMap
from .engine import COLUMNS, simulate, simulate_layer
from .errors import SimulationError
from .result import COLUMN_DOCS, SimResult

__all__ = ["simulate", "simulate_layer", "SimResult", "SimulationError", "DATAFLOWS", "DataflowMap", "COLUMNS",
           "COLUMN_DOCS"]
