"""Sizes the fast engine can simulate exactly, checked before any layer runs.

The engine counts with NumPy int64 and float64. A layer is accepted when each GEMM dimension is at
most ``MAX_DIM`` (2^40), its MACs at most ``MAX_LAYER_MACS`` (2^53, the largest count float64 holds
exactly; about 9e15, several times a GPT-3 feed-forward GEMM at batch 1024 x 2048 tokens), and its
right operand (``groups x k x n`` weights, whose mask the engine holds as one byte per weight) at
most ``MAX_WEIGHT_ELEMENTS`` (2^31). Anything larger is refused with the layer and the bound named,
instead of wrapping around (negative energies) or exhausting memory. Totals are summed as Python
integers (see :mod:`simulator.result`), which cannot wrap.
"""
from __future__ import annotations

from workloads import Workload
from workloads.layer import MAX_WEIGHT_ELEMENTS

from .errors import SimulationError

MAX_DIM = 1 << 40
MAX_LAYER_MACS = 1 << 53


def check_workload(workload: Workload) -> None:
    """Raise :class:`SimulationError` for an empty workload or a layer too large to simulate exactly."""
    if not workload.layers:
        raise SimulationError(f"workload '{workload.name}' has no GEMM layers (convolution, linear, matmul, "
                              f"attention): nothing to simulate")
    for layer in workload.layers:
        dims = {"m": layer.m, "n": layer.n, "k": layer.k, "groups": layer.groups}
        big = [f"{d} = {int(v):.3g}" for d, v in dims.items() if int(v) > MAX_DIM]
        if big:
            raise SimulationError(f"layer '{layer.name}': {', '.join(big)} is above the largest dimension "
                                  f"the engine simulates (2^40 = {MAX_DIM:.3g})")
        if layer.macs > MAX_LAYER_MACS:
            raise SimulationError(f"layer '{layer.name}': {layer.macs:.3g} MACs (groups x m x n x k) is above "
                                  f"the 2^53 = {MAX_LAYER_MACS:.3g} the engine counts exactly")
        weights = int(layer.groups) * int(layer.k) * int(layer.n)
        if weights > MAX_WEIGHT_ELEMENTS:
            raise SimulationError(f"layer '{layer.name}': its right operand has {weights:.3g} elements "
                                  f"(groups x k x n), above the 2^31 = {MAX_WEIGHT_ELEMENTS:.3g} the engine "
                                  f"holds a mask for")
