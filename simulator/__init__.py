"""simulator: Workload x Accelerator -> SimResult (per-layer cycles, stalls, traffic, energy).

Names load on first use (PEP 562), so ``simulator.golden`` (pure Python, imported by the RTL
testbenches) does not pull in Numba and pandas. Kernels compile on first call and cache on disk.
"""
from importlib import import_module

_EXPORTS = {
    "simulate": "engine", "simulate_layer": "engine", "plan_layer": "engine", "LayerPlan": "engine",
    "COLUMNS": "columns", "Mapping": "mapping",
    "SimResult": "result", "COLUMN_DOCS": "result",
    "SimulationError": "errors",
    "DATAFLOWS": "dataflow", "DataflowMap": "dataflow",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
