"""Accuracy proxies: how much of a layer a mask keeps, as an additive table (higher is better).

A proxy is a per-(layer, candidate) table ``P`` whose row sums add up: the proxy of an assignment is
``sum_l P[l, a_l]``, and the dense model scores 1.

* ``magnitude``: retained ``|W|``, as a fraction of the whole model's ``sum |W|`` (what global
  magnitude pruning maximizes); a parameter used by several layers counts once.
* ``wanda``: retained ``|W_ij| * ||x_j||`` (Sun et al., "A Simple and Effective Pruning Approach for
  Large Language Models", ICLR 2024), ``||x_j||`` the norm of input feature ``j`` over the
  calibration rows, as a fraction of the model's total.
* ``reconstruction``: ``1 - mean over weight layers of ||A (W - W*M)||^2 / ||A W||^2``, the relative
  error of each layer's output on calibration rows ``A`` (layer-wise reconstruction, as in OBC /
  SparseGPT's objective).
"""
from __future__ import annotations

import numpy as np

from .calibration import Calibration
from .cost import HardwareCost
from .errors import SearchError
from .kernels import masked_sum

PROXIES = ("magnitude", "wanda", "reconstruction")


class Proxy:
    """A proxy bound to one workload: ``of_mask(l, gemm_mask)`` and ``table(cost)``."""

    def __init__(self, kind: str, workload, calibration: Calibration | None = None):
        if kind not in PROXIES:
            raise SearchError(f"--proxy {kind!r}: expected one of {', '.join(PROXIES)}")
        if kind != "magnitude" and calibration is None:
            raise SearchError(f"--proxy {kind}: needs calibration activations (a model and example inputs)")
        self.kind = kind
        self.workload = workload
        self.calibration = calibration
        self._weights = {}
        weight_layers = [i for i, l in enumerate(workload.layers) if l.weight is not None]
        self.n_weight_layers = max(1, len(weight_layers))
        # magnitude is a property of the parameter: a parameter several layers use (tied weights)
        # counts once, on its first use; wanda and reconstruction depend on each use's activations
        from .baselines import _uses
        self._repeat = {lj for lead, uses in _uses(workload).items() for lj in uses if lj != lead} \
            if kind == "magnitude" else set()
        total = 0.0
        for li in weight_layers:
            if li in self._repeat:
                continue
            layer = workload.layers[li]
            s = self._score(layer)
            total += float(s.sum())
        self._total = total if total > 0 else 1.0

    def _score(self, layer) -> np.ndarray:
        w = np.abs(np.ascontiguousarray(layer.gemm_weight(), dtype=np.float64))
        if self.kind == "wanda":
            act = self._acts(layer)
            w = w * np.sqrt(act.sq_norm)[:, :, None]
        return w

    def _acts(self, layer):
        act = self.calibration.get(layer.name) if self.calibration is not None else None
        if act is None:
            raise SearchError(f"--proxy {self.kind}: no calibration activations for layer '{layer.name}'")
        return act

    def of_mask(self, li: int, gemm_mask: np.ndarray | None) -> float:
        """Layer ``li``'s contribution under ``gemm_mask`` (``(groups, k, n)`` bool; None = dense)."""
        layer = self.workload.layers[li]
        if layer.weight is None or li in self._repeat:
            return 0.0
        if self.kind in ("magnitude", "wanda"):
            s = self._score(layer)
            kept = s.sum() if gemm_mask is None else masked_sum(s, gemm_mask)
            return float(kept) / self._total
        if gemm_mask is None:
            return 1.0 / self.n_weight_layers
        return (1.0 - self._recon_error(layer, [gemm_mask])[0]) / self.n_weight_layers

    def _recon_error(self, layer, masks) -> list[float]:
        import torch
        a = torch.from_numpy(self._acts(layer).sample)                       # (g, r, k)
        w = torch.from_numpy(np.ascontiguousarray(layer.gemm_weight(), dtype=np.float32))  # (g, k, n)
        ref = float((torch.bmm(a, w).double() ** 2).sum())
        out = []
        for m in masks:
            if m is None:
                out.append(0.0)
                continue
            removed = w * torch.from_numpy(~m)
            err = float((torch.bmm(a, removed).double() ** 2).sum())
            out.append(err / ref if ref > 0 else 0.0)
        return out

    def table(self, cost: HardwareCost) -> np.ndarray:
        """``(L, C)`` proxy table over ``cost``'s candidates and masks (disallowed pairs: -inf); with
        coupled channel groups ``(L, C * J)``: column ``c + C * j`` scores the layer's full-size mask
        with the input channels combination ``j`` removes set False (a consumer loses what its
        producers' channel pruning removes, as the pruned model does)."""
        L, C = cost.shape
        t = self._table(cost)
        if cost.coupling is None:
            return t
        out = np.tile(t, (1, cost.J))
        for li in range(L):
            if self.workload.layers[li].weight is None or li in self._repeat:
                continue
            for col, gm in cost.cells(li):
                out[li, col] = self.of_mask(li, gm)
        return out

    def _table(self, cost: HardwareCost) -> np.ndarray:
        L, C = cost.shape
        t = np.full((L, C), -np.inf)
        for li, layer in enumerate(self.workload.layers):
            opts = cost.options[li]
            if layer.weight is None or li in self._repeat:
                t[li, opts] = 0.0
                continue
            masks = [cost.gemm_mask(li, int(c)) for c in opts]
            if self.kind == "reconstruction":
                errs = self._recon_error(layer, masks)
                t[li, opts] = [(1.0 - e) / self.n_weight_layers for e in errs]
            else:
                s = self._score(layer)
                ssum = s.sum()
                t[li, opts] = [(ssum if m is None else masked_sum(s, m)) / self._total for m in masks]
        return t

    def of_workload(self, workload) -> float:
        """The proxy of a masked copy of this workload (same layers, any masks)."""
        return float(sum(self.of_mask(li, l.gemm_mask()) for li, l in enumerate(workload.layers)))
