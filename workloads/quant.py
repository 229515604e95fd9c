"""How a layer's right operand is stored: bits per value and group-wise scales.

Quantized LLM weights (GPTQ, AWQ, GQSA) store each kept value in ``bits`` bits and one scale (and
often a zero point) of ``scale_bits`` per ``group_size`` consecutive values along the reduction
axis; GQSA groups the scales over the values an N:M mask keeps. So a stored value costs
``bits + scale_bits / group_size`` bits, to which N:M metadata adds its index bits. The same
description holds a KV cache's bits (``group_size = 0``: no scales).
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import WorkloadError

#: weight bits the LLM path models (16: fp16/bf16, 8 and 4: integer with group scales)
WEIGHT_BITS = (16, 8, 4)
#: KV-cache bits it models
KV_BITS = (16, 8, 4)


@dataclass(frozen=True)
class Quant:
    """``bits`` per stored value, plus ``scale_bits`` per ``group_size`` values (0: no scales)."""

    bits: int
    group_size: int = 0
    scale_bits: int = 16

    def __post_init__(self):
        for f in ("bits", "group_size", "scale_bits"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < (1 if f == "bits" else 0):
                raise WorkloadError(f"quantization: {f} must be an integer >= {1 if f == 'bits' else 0}, got {v!r}")

    @property
    def bits_per_value(self) -> float:
        """Storage bits of one value, its share of the group scale included."""
        return self.bits + (self.scale_bits / self.group_size if self.group_size else 0.0)

    @property
    def bytes_per_value(self) -> float:
        return self.bits_per_value / 8

    def __str__(self) -> str:
        return f"int{self.bits}" + (f"/g{self.group_size}" if self.group_size else "") if self.bits < 16 else \
            f"{self.bits}bit"


def weight_quant(bits, group_size: int = 128, scale_bits: int = 16, where: str = "--weight-bits") -> Quant:
    """The storage of weights at ``bits`` (16: no scales; 8 and 4: one ``scale_bits`` scale per
    ``group_size`` values, AWQ's and GQSA's default group of 128)."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in WEIGHT_BITS:
        raise WorkloadError(f"{where}: weight bits must be one of {', '.join(map(str, WEIGHT_BITS))}, got {bits!r}")
    if bits == 16:
        return Quant(16)
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise WorkloadError(f"{where}: group size must be a positive integer, got {group_size!r}")
    return Quant(bits, group_size, scale_bits)


def kv_quant(bits, where: str = "--kv-bits") -> Quant:
    """The storage of the KV cache at ``bits`` (per-tensor scales: no per-value overhead)."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in KV_BITS:
        raise WorkloadError(f"{where}: KV-cache bits must be one of {', '.join(map(str, KV_BITS))}, got {bits!r}")
    return Quant(bits)
