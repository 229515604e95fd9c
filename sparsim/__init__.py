"""sparsim: one import for the whole tool.

    import sparsim
    wl = sparsim.trace_zoo("resnet18").sparsify("2:4")
    res = sparsim.simulate(wl, "vegeta-flex")       # res.layers (DataFrame), res.totals
    found = sparsim.search("resnet18", "vegeta-flex", objective="latency", budget=0.6)   # found.front

Heavy modules (torch, numba) load on first use, so ``import sparsim`` stays fast.
"""
from .api import accelerator, load_results, load_workload, search, simulate, trace, trace_zoo, zoo_names

__all__ = ["trace", "trace_zoo", "zoo_names", "accelerator", "simulate", "load_workload", "search", "load_results"]
__version__ = "0.1.0"
