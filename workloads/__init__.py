"""workloads: PyTorch models -> GEMM-shaped layers with their weights and masks."""
from .errors import (MaskError, ModelNotFoundError, PatternError, TopologyError, TraceError,
                     UnsupportedOpError, WorkloadError)
from .layer import ConvGeometry, Layer, LayerKind, Phase
from .layout import WeightLayout
from .patterns import (NM, Block, Channel, Dense, SparsityPattern, Unstructured, block, channel, dense, nm,
                       parse_pattern, unstructured)
from .stats import MaskStats, group_counts, mask_stats
from .workload import OtherOp, Workload

__all__ = [
    "Workload", "Layer", "LayerKind", "Phase", "ConvGeometry", "OtherOp", "WeightLayout",
    "SparsityPattern", "Dense", "NM", "Unstructured", "Block", "Channel", "parse_pattern",
    "dense", "nm", "unstructured", "block", "channel", "MaskStats", "mask_stats", "group_counts",
    "WorkloadError", "PatternError", "MaskError", "TraceError", "UnsupportedOpError", "TopologyError",
    "ModelNotFoundError", "trace",
]


def trace(*args, **kwargs):
    """See :func:`workloads.tracer.trace` (imported lazily: importing torch is slow)."""
    from .tracer import trace as _trace
    return _trace(*args, **kwargs)
