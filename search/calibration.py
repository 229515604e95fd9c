"""Calibration activations: each weight layer's GEMM input, captured by running the model once.

For every layer whose weight belongs to an ``nn.Linear`` or ``nn.Conv1d/2d`` module, a forward
pre-hook turns the module's input into GEMM rows ``A`` of shape ``(groups, rows, k)`` with ``k`` in
the layer's own order (kernel positions outer, input channels inner for a conv; see
:mod:`workloads.layout`). Kept per layer: the squared norm of every input feature over all rows
(Wanda's ``||x_j||``), and a seeded sample of at most ``rows`` rows (for reconstruction errors).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workloads import Workload

from .errors import SearchError


@dataclass
class LayerActivations:
    sq_norm: np.ndarray    # (groups, k): sum over all GEMM rows of x_j^2
    sample: np.ndarray     # (groups, r, k) float32: r <= rows sampled GEMM rows
    rows_seen: int


class Calibration(dict):
    """``{layer name: LayerActivations}``."""

    def wanda_importance(self) -> dict[str, np.ndarray]:
        """Per-layer ``||x_j||`` as ``(groups, k, 1)``, for :class:`HardwareCost`'s ``importance``."""
        return {name: np.sqrt(a.sq_norm)[:, :, None] for name, a in self.items()}


def _gemm_rows(mod, x):
    import torch
    import torch.nn.functional as F
    if isinstance(mod, torch.nn.Linear):
        return x.reshape(1, -1, x.shape[-1])
    if isinstance(mod, (torch.nn.Conv1d, torch.nn.Conv2d)):
        if isinstance(mod.padding, str):
            raise SearchError(f"calibration: module with padding='{mod.padding}' is not supported")
        if isinstance(mod, torch.nn.Conv1d):
            x = x.unsqueeze(2)
            kernel, dil, pad, stride = (1, *mod.kernel_size), (1, *mod.dilation), (0, *mod.padding), (1, *mod.stride)
        else:
            kernel, dil, pad, stride = mod.kernel_size, mod.dilation, mod.padding, mod.stride
        if x.dim() == 3:
            x = x.unsqueeze(0)
        cols = F.unfold(x, kernel, dilation=dil, padding=pad, stride=stride)   # (B, C*kh*kw, L), c outer
        b, _, n_pos = cols.shape
        g = mod.groups
        cin_g = mod.in_channels // g
        kk = kernel[0] * kernel[1]
        cols = cols.reshape(b, g, cin_g, kk, n_pos).permute(1, 0, 4, 3, 2)     # (g, B, L, kk, c)
        return cols.reshape(g, b * n_pos, kk * cin_g)
    return None


def capture(model, inputs, workload: Workload, rows: int = 256, seed: int = 0) -> Calibration:
    """Run ``model`` once on ``inputs`` and record every weight layer's activations.

    A weight layer whose module is not a Linear or a 1-D/2-D conv raises :class:`SearchError`
    naming it (its input cannot be laid out as GEMM rows here)."""
    import torch
    if not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    by_param: dict[int, list] = {}
    for mname, mod in model.named_modules():
        w = getattr(mod, "weight", None)
        if isinstance(w, torch.Tensor):
            by_param.setdefault(id(w), []).append((mname, mod))
    wanted: dict[str, list[str]] = {}
    for layer in workload.layers:
        if not layer.weight_name:
            continue
        try:
            p = model.get_parameter(layer.weight_name)
        except AttributeError:
            raise SearchError(f"calibration: layer '{layer.name}': the model has no parameter "
                              f"'{layer.weight_name}'") from None
        mods = [(n, m) for n, m in by_param.get(id(p), [])
                if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d))]
        if not mods:
            raise SearchError(f"calibration: layer '{layer.name}': its weight '{layer.weight_name}' is not used by an "
                              f"nn.Linear or nn.Conv1d/2d module, so its inputs cannot be captured; "
                              f"use --proxy magnitude")
        wanted.setdefault(mods[0][0], []).append(layer.name)
    state: dict[str, list] = {}
    rng = np.random.default_rng(seed)
    handles = []

    def hook_for(mname):
        def pre(mod, args):
            a = _gemm_rows(mod, args[0].detach().float())
            if a is None:
                return
            a = a.cpu()
            sq = (a.double() ** 2).sum(dim=1).numpy()
            r = a.shape[1]
            idx = np.sort(rng.choice(r, size=min(rows, r), replace=False))
            sample = a[:, torch.from_numpy(idx)].numpy().astype(np.float32)
            if mname in state:
                old = state[mname]
                keep = np.concatenate([old[1], sample], axis=1)
                if keep.shape[1] > rows:
                    keep = keep[:, np.sort(rng.choice(keep.shape[1], rows, replace=False))]
                state[mname] = [old[0] + sq, keep, old[2] + r]
            else:
                state[mname] = [sq, sample, r]
        return pre

    for mname, mod in model.named_modules():
        if mname in wanted:
            handles.append(mod.register_forward_pre_hook(hook_for(mname)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    out = Calibration()
    for mname, names in wanted.items():
        if mname not in state:
            raise SearchError(f"calibration: module '{mname}' did not run on the calibration inputs")
        sq, sample, r = state[mname]
        for name in names:
            layer = workload.layer(name)
            g, k, _ = layer.gemm_shape
            if sq.shape != (g, k):
                raise SearchError(f"calibration: layer '{name}': captured inputs have {sq.shape[1]} features in "
                                  f"{sq.shape[0]} group(s), the layer's GEMM expects k={k}, groups={g}")
            out[name] = LayerActivations(sq_norm=sq, sample=sample, rows_seen=r)
    return out
