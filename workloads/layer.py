"""One GEMM-shaped operation of a workload, with its weight and mask."""
from __future__ import annotations

import dataclasses
import enum
import zlib
from dataclasses import dataclass, field

import numpy as np

from .errors import MaskError
from .layout import WeightLayout, from_gemm, to_gemm
from .patterns import NM, Dense, SparsityPattern
from .quant import Quant
from .stats import MaskStats, mask_stats

#: Largest right operand (groups x k x n) a mask is chosen or held for: 2^31 weights, a 2 GiB mask.
MAX_WEIGHT_ELEMENTS = 1 << 31


class LayerKind(str, enum.Enum):
    CONV1D = "conv1d"
    CONV2D = "conv2d"
    CONV3D = "conv3d"
    LINEAR = "linear"
    MATMUL = "matmul"
    BMM = "bmm"
    ATTENTION = "attention"


class Phase(str, enum.Enum):
    FORWARD = "forward"
    BACKWARD_DATA = "backward_data"
    BACKWARD_WEIGHT = "backward_weight"
    PREFILL = "prefill"    # an LLM's prompt pass (workloads.llm)
    DECODE = "decode"      # one LLM decode step reading the KV cache (workloads.llm)


@dataclass(frozen=True)
class ConvGeometry:
    """Geometry of a convolution, as PyTorch states it (per spatial dimension)."""

    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    input_size: tuple[int, ...]   # spatial size of the input, before padding
    output_size: tuple[int, ...]  # spatial size of the output


@dataclass(frozen=True, eq=False)
class Layer:
    """``groups`` independent GEMMs ``O[m x n] = A[m x k] · W[k x n]``.

    Fields
    ------
    name:          unique name within the workload (module path, with a suffix when needed).
    kind:          the op it came from (:class:`LayerKind`).
    m:             GEMM rows = output pixels x batch (convs), tokens x batch (linears).
    n:             GEMM columns = output channels per group.
    k:             reduction length = input channels per group x kernel positions.
    groups:        independent GEMMs of this shape (conv groups, or the batch of a bmm).
    module:        path of the module that ran the op ('' for the root module).
    op:            the aten op that was traced (e.g. ``aten.convolution``).
    phase:         forward, backward-data or backward-weight GEMM (training workloads).
    conv:          convolution geometry, for conv layers (backward GEMMs keep their forward's).
    a_bits, w_bits, o_bits: operand precisions in bits (activation, weight or right operand, output).
    weight_name:   the parameter the right operand comes from (``layer1.0.conv1.weight``), or None
                   when both operands are activations (attention).
    weight:        that parameter's value as a float32 NumPy array in ``weight_layout``, or None.
    weight_layout: how ``weight`` maps to the GEMM (see :mod:`workloads.layout`).
    mask:          bool array of ``weight``'s shape, True where kept; None when dense or weightless.
    pattern:       the pattern that chose ``mask`` (or None when it came from the model / is dense).
    quant:         how the right operand is stored (bits per value, group scales; see
                   :mod:`workloads.quant`), or None: at the accelerator's ``weight_bits``.
    """

    name: str
    kind: LayerKind
    m: int
    n: int
    k: int
    groups: int = 1
    module: str = ""
    op: str = ""
    phase: Phase = Phase.FORWARD
    conv: ConvGeometry | None = None
    a_bits: int = 32
    w_bits: int = 32
    o_bits: int = 32
    weight_name: str | None = None
    weight: np.ndarray | None = field(default=None, repr=False)
    weight_layout: WeightLayout | None = None
    mask: np.ndarray | None = field(default=None, repr=False)
    pattern: SparsityPattern | None = None
    quant: Quant | None = None

    def __post_init__(self):
        for f in ("m", "n", "k", "groups"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise MaskError(f"layer '{self.name}': {f} must be a positive integer, got {v!r}")
        if self.mask is not None:
            if self.weight is not None and tuple(self.mask.shape) != tuple(self.weight.shape):
                raise MaskError(f"layer '{self.name}': mask shape {tuple(self.mask.shape)} does not match "
                                f"weight {self.weight_name or ''} shape {tuple(self.weight.shape)}")
            if self.mask.dtype != np.bool_:
                object.__setattr__(self, "mask", self.mask.astype(bool))
        if self.weight is not None and self.weight_layout is None:
            raise MaskError(f"layer '{self.name}': a weight needs a weight_layout")
        if self.mask is not None and self.weight is None:
            if self.weight_layout is None:
                raise MaskError(f"layer '{self.name}': a mask without a weight needs a weight_layout")
        if self.mask is not None or self.weight is not None:
            shape = self.gemm_shape
            got = self._gemm(self.mask if self.mask is not None else self.weight).shape
            if tuple(got) != shape:
                raise MaskError(f"layer '{self.name}': weight/mask in GEMM layout is {tuple(got)}, "
                                f"expected (groups, k, n) = {shape}")

    # -- sizes -------------------------------------------------------------------------------
    @property
    def macs(self) -> int:
        """Dense multiply-accumulates: groups x m x n x k."""
        return int(self.groups) * int(self.m) * int(self.n) * int(self.k)

    @property
    def gemm_shape(self) -> tuple[int, int, int]:
        return (int(self.groups), int(self.k), int(self.n))

    @property
    def has_weight(self) -> bool:
        return self.weight_name is not None or self.weight is not None

    # -- GEMM views ------------------------------------------------------------------------------
    def _gemm(self, arr: np.ndarray) -> np.ndarray:
        return to_gemm(arr, self.weight_layout, self.groups)

    def gemm_weight(self) -> np.ndarray | None:
        """The weight as a ``(groups, k, n)`` array, or None."""
        return None if self.weight is None else self._gemm(self.weight)

    def gemm_mask(self) -> np.ndarray | None:
        """The mask as a ``(groups, k, n)`` bool array, or None when dense."""
        return None if self.mask is None else self._gemm(self.mask)

    @property
    def density(self) -> float:
        """Fraction of weights kept (1.0 when dense or weightless)."""
        return 1.0 if self.mask is None else float(np.count_nonzero(self.mask)) / self.mask.size

    @property
    def nnz_macs(self) -> int:
        """MACs whose weight is nonzero under the mask."""
        if self.mask is None:
            return self.macs
        return int(np.count_nonzero(self.mask)) * int(self.m)

    @property
    def pattern_label(self) -> str:
        """The pattern's text; 'mask' when the mask came from the model; 'dense'; '-' when weightless."""
        if self.pattern is not None:
            return str(self.pattern)
        if self.mask is not None:
            return "mask"
        return "dense" if self.has_weight else "-"

    def mask_stats(self, m: int = 4) -> MaskStats:
        return mask_stats(self.gemm_mask(), self.gemm_shape, m)

    # -- new layers ----------------------------------------------------------------------------
    def replace(self, **changes) -> "Layer":
        return dataclasses.replace(self, **changes)

    def with_gemm_mask(self, gemm_mask: np.ndarray | None, pattern: SparsityPattern | None = None) -> "Layer":
        """A copy whose mask is ``gemm_mask`` (``(groups, k, n)``), stored in the weight's layout."""
        if gemm_mask is None:
            return self.replace(mask=None, pattern=pattern)
        gemm_mask = np.asarray(gemm_mask, dtype=bool)
        if tuple(gemm_mask.shape) != self.gemm_shape:
            raise MaskError(f"layer '{self.name}': mask of GEMM shape {tuple(gemm_mask.shape)} does not match "
                            f"(groups, k, n) = {self.gemm_shape}")
        held = self.weight if self.weight is not None else self.mask
        if self.weight_layout is None or held is None:
            # no parameter layout to go back to: keep the mask in GEMM layout
            return self.replace(mask=gemm_mask.copy(), weight_layout=WeightLayout.KN, pattern=pattern)
        return self.replace(mask=from_gemm(gemm_mask, self.weight_layout, tuple(held.shape)), pattern=pattern)

    def with_mask(self, mask: np.ndarray | None) -> "Layer":
        """A copy with ``mask`` given in the weight's own layout (checked against its shape)."""
        if mask is None:
            return self.replace(mask=None, pattern=None)
        mask = np.asarray(mask)
        if self.weight is None:
            raise MaskError(f"layer '{self.name}': has no weight to mask")
        if tuple(mask.shape) != tuple(self.weight.shape):
            raise MaskError(f"layer '{self.name}': mask shape {tuple(mask.shape)} does not match weight "
                            f"{self.weight_name} shape {tuple(self.weight.shape)}")
        return self.replace(mask=mask.astype(bool), pattern=None)

    def sparsify(self, pattern: SparsityPattern) -> "Layer":
        """A copy masked by ``pattern`` chosen on this layer's weight magnitudes.

        Weightless layers (activation x activation) are returned unchanged. A layer the model itself
        pruned (a prune mask, a parametrization mask or exact zeros: ``pattern is None``) keeps its
        zeros: the pattern picks among the surviving weights only, so the new mask is a subset of the
        model's (``2:4`` on a layer pruned to 50 % keeps at most two survivors per group of four). A
        mask an earlier pattern chose is replaced, chosen again on the weights.

        A layer loaded from a topology file, or from a workload saved without ``--weights``, has no
        weight values. An N:M pattern is then chosen on a deterministic stand-in (normal random
        magnitudes seeded by the layer's name): every full group of M keeps exactly N whatever the
        values, so cycles and energy do not depend on the stand-in. Any other pattern would: it is
        refused with a :class:`MaskError`.
        """
        if not self.has_weight and self.weight_layout is None:
            return self
        if isinstance(pattern, Dense):
            return self.replace(mask=None, pattern=None)
        size = self.groups * self.k * self.n
        if size > MAX_WEIGHT_ELEMENTS:
            raise MaskError(f"layer '{self.name}': a mask over its {size:.3g} weights (groups x k x n) is above "
                            f"the 2^31 = {MAX_WEIGHT_ELEMENTS:.3g} sparsim holds masks for")
        w = self.gemm_weight()
        if w is None:
            if not isinstance(pattern, NM):
                raise MaskError(f"layer '{self.name}': has no weight values (a topology file, or a workload "
                                f"saved without --weights), and a '{pattern}' mask chosen by magnitude would "
                                f"depend on made-up values; save the workload with --weights, or use an N:M "
                                f"pattern (every group then keeps exactly N, whatever the values)")
            rng = np.random.default_rng(zlib.crc32(self.name.encode()))
            w = rng.standard_normal(self.gemm_shape, dtype=np.float32)
        old = self.gemm_mask() if self.pattern is None else None     # the model's own pruning
        if old is not None and w is not None:
            w = np.where(old, w, 0.0).astype(np.float32, copy=False)   # pruned weights are not candidates
        gm = pattern.mask(w)
        if old is not None:
            gm = gm & old
        layer = self.replace(pattern=pattern) if self.weight_layout else self.replace(
            weight_layout=WeightLayout.KN, pattern=pattern)
        return layer.with_gemm_mask(gm, pattern)
