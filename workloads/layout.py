"""Conversions between a weight's parameter layout and its GEMM layout.

A layer computes ``groups`` independent GEMMs ``O[m x n] = A[m x k] · W[k x n]``. The GEMM layout of
its weight is therefore an array of shape ``(groups, k, n)``. The parameter layout is the shape the
PyTorch parameter has. Only these three layouts exist:

* ``CONV``: ``(out_channels, in_channels / groups, *kernel)``. The reduction axis runs over kernel
  positions first and input channels innermost, ``k = (kh, kw, c_in)``, the order of an implicit GEMM
  on NHWC data and the order NVIDIA's ASP uses for 2:4 conv weights: an N:M group is M consecutive
  input channels at one kernel position.
* ``NK``: ``(n, k)``, an ``nn.Linear`` weight (``y = x W^T``).
* ``KN``: ``(k, n)`` or ``(groups, k, n)``: already the GEMM layout.
"""
from __future__ import annotations

import enum

import numpy as np


class WeightLayout(str, enum.Enum):
    CONV = "conv"
    NK = "nk"
    KN = "kn"


def to_gemm(array: np.ndarray, layout: WeightLayout, groups: int = 1) -> np.ndarray:
    """Return ``array`` (parameter layout) as a ``(groups, k, n)`` array (a view where possible)."""
    layout = WeightLayout(layout)
    if layout is WeightLayout.CONV:
        cout, cin_g = array.shape[0], array.shape[1]
        kernel = array.shape[2:]
        a = array.reshape((groups, cout // groups, cin_g) + tuple(kernel))
        # (g, n, c, *kernel) -> (g, *kernel, c, n): kernel positions outer, channels inner.
        nd = len(kernel)
        a = a.transpose((0,) + tuple(range(3, 3 + nd)) + (2, 1))
        return a.reshape(groups, int(np.prod(kernel, dtype=np.int64)) * cin_g, cout // groups)
    if layout is WeightLayout.NK:
        return array.T[None]
    if array.ndim == 2:
        return array[None]
    return array


def from_gemm(gemm: np.ndarray, layout: WeightLayout, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`to_gemm`: a ``(groups, k, n)`` array back to the parameter ``shape``."""
    layout = WeightLayout(layout)
    groups = gemm.shape[0]
    if layout is WeightLayout.CONV:
        cout, cin_g = shape[0], shape[1]
        kernel = tuple(shape[2:])
        nd = len(kernel)
        a = gemm.reshape((groups,) + kernel + (cin_g, cout // groups))
        # (g, *kernel, c, n) -> (g, n, c, *kernel)
        a = a.transpose((0, nd + 2, nd + 1) + tuple(range(1, nd + 1)))
        return np.ascontiguousarray(a.reshape(shape))
    if layout is WeightLayout.NK:
        return np.ascontiguousarray(gemm[0].T)
    return np.ascontiguousarray(gemm.reshape(shape))
