"""Masks for PyTorch parameters, chosen in the simulator's reduction order.

A pattern is always applied to the GEMM layout of a weight (``workloads.layout``): a convolution
weight ``(out, in/groups, *kernel)`` becomes ``(groups, prod(kernel)*in/groups, out/groups)`` with
input channels innermost, so an N:M group is M consecutive input channels at one kernel position,
exactly the groups the simulator costs; a Linear weight ``(out, in)`` becomes ``(1, in, out)``. The
mask goes back to the parameter's own layout. One code path for the sparsifier, fine-tuning and
permutations, so the masks the training sees are the masks the simulator costs.

Covered weights (:func:`prunable_tensors`): ``nn.Conv1d``, ``nn.Conv2d``, ``nn.Conv3d`` and
``nn.Linear`` weights (so also ``nn.MultiheadAttention.out_proj``), ``nn.MultiheadAttention``'s packed
``in_proj_weight`` (``(3E, E)``, a Linear layout), and ``transformers``' ``Conv1D`` (GPT-2's
projections, weight ``(in, out)``: already the GEMM layout). Anything else the tracer finds a weight
for (transposed convolutions, MultiheadAttention's separate ``q/k/v_proj_weight`` when ``kdim`` or
``vdim`` differ from the embedding size) is named by :func:`skipped_tensors`, never dropped silently.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from workloads import SparsityPattern
from workloads.layout import WeightLayout, from_gemm, to_gemm

from .errors import SearchError

#: Module types whose ``weight`` this module masks (``nn.MultiheadAttention`` and ``transformers``'
#: ``Conv1D`` are covered too, see :func:`layout_of`).
SUPPORTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _is_hf_conv1d(module: nn.Module) -> bool:
    """``transformers.pytorch_utils.Conv1D`` (checked by name: transformers is an optional import)."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf") and hasattr(module, "nx")


def tensor_of(module: nn.Module) -> str | None:
    """The name of the one weight tensor of ``module`` this package masks, or None."""
    if isinstance(module, SUPPORTED) or _is_hf_conv1d(module):
        return "weight"
    if isinstance(module, nn.MultiheadAttention) and getattr(module, "in_proj_weight", None) is not None:
        return "in_proj_weight"
    return None


def layout_of(module: nn.Module, where: str = "") -> tuple[WeightLayout, int]:
    """The weight layout and conv groups of a supported module."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return WeightLayout.CONV, int(module.groups)
    if isinstance(module, nn.Linear):
        return WeightLayout.NK, 1
    if _is_hf_conv1d(module):
        return WeightLayout.KN, 1
    if isinstance(module, nn.MultiheadAttention) and getattr(module, "in_proj_weight", None) is not None:
        return WeightLayout.NK, 1
    raise SearchError(f"{where or 'module'}: expected an nn.Conv1d/2d/3d, nn.Linear, nn.MultiheadAttention "
                      f"(packed in_proj_weight) or transformers Conv1D, got {type(module).__name__}")


def prunable_tensors(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """``{tensor fqn: (module, tensor name)}`` of every weight this module can mask, each parameter
    once (a parameter two modules share is listed under its first name)."""
    out, seen = {}, set()
    for name, mod in model.named_modules():
        t = tensor_of(mod)
        if t is None or not name:
            continue
        p = getattr(mod, t)
        if id(p) in seen:
            continue
        seen.add(id(p))
        out[f"{name}.{t}"] = (mod, t)
    return out


def skipped_tensors(model: nn.Module, workload) -> dict[str, str]:
    """``{weight name: module type}`` of the traced layers' weights that :func:`prunable_tensors`
    does not cover (they stay dense)."""
    covered = {id(getattr(m, t)) for m, t in prunable_tensors(model).values()}
    params = dict(model.named_parameters(remove_duplicate=False))
    out = {}
    for layer in workload.layers:
        name = layer.weight_name
        if not name or name in out:
            continue
        p = params.get(name)
        if p is not None and id(p) in covered:
            continue
        mod_path = name.rpartition(".")[0]
        try:
            mod = model.get_submodule(mod_path)
            out[name] = type(mod).__name__
        except AttributeError:
            out[name] = "(not a module's parameter)"
    return out


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
