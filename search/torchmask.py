"""Masks for PyTorch parameters, chosen in the simulator's reduction order.

A pattern is always applied to the GEMM layout of a weight (``workloads.layout``): a Conv2d weight
``(out, in/groups, kh, kw)`` becomes ``(groups, kh*kw*in/groups, out/groups)`` with input channels
innermost, so an N:M group is M consecutive input channels at one kernel position, exactly the
groups the simulator costs; a Linear weight ``(out, in)`` becomes ``(1, in, out)``. The mask goes
back to the parameter's own layout. One code path for the sparsifier, fine-tuning and permutations,
so the masks the training sees are the masks the simulator costs.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from workloads import SparsityPattern
from workloads.layout import WeightLayout, from_gemm, to_gemm

from .errors import SearchError

SUPPORTED = (nn.Conv2d, nn.Linear)


def layout_of(module: nn.Module, where: str = "") -> tuple[WeightLayout, int]:
    """The weight layout and conv groups of a supported module."""
    if isinstance(module, nn.Conv2d):
        return WeightLayout.CONV, int(module.groups)
    if isinstance(module, nn.Linear):
        return WeightLayout.NK, 1
    raise SearchError(f"{where or 'module'}: expected an nn.Conv2d or nn.Linear, got {type(module).__name__}")


def to_gemm_np(weight: torch.Tensor, module: nn.Module) -> np.ndarray:
    """``weight`` (parameter layout) as a float32 ``(groups, k, n)`` NumPy array."""
    layout, groups = layout_of(module)
    return to_gemm(weight.detach().cpu().float().numpy(), layout, groups)


def mask_for(weight: torch.Tensor, module: nn.Module, pattern: SparsityPattern) -> torch.Tensor:
    """Bool mask of ``weight``'s shape that ``pattern`` picks by magnitude along the reduction axis."""
    layout, _ = layout_of(module)
    gm = pattern.mask(to_gemm_np(weight, module))
    return torch.from_numpy(from_gemm(gm, layout, tuple(weight.shape))).to(weight.device)


def gemm_mask(mask: torch.Tensor, module: nn.Module) -> np.ndarray:
    """A parameter-layout mask as a bool ``(groups, k, n)`` NumPy array."""
    layout, groups = layout_of(module)
    return to_gemm(mask.detach().cpu().numpy().astype(bool), layout, groups)
