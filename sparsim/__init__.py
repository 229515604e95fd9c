"""sparsim: one import for the whole tool.

    import sparsim
    wl = sparsim.trace_zoo("resnet18").sparsify("2:4")

Heavy modules (torch, numba) load on first use, so ``import sparsim`` stays fast.
"""
from .api import trace, trace_zoo, zoo_names

__all__ = ["trace", "trace_zoo", "zoo_names"]
__version__ = "0.1.0"
