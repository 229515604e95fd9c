"""SCALE-Sim topology CSV export and import.

SCALE-Sim (v2 and v3) reads two topology formats, each row ending in a comma:

* conv: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
  Strides[, Sparsity],`` where the IFMAP size already includes padding, and a layer whose name
  contains ``DP`` is a depthwise conv that SCALE-Sim splits into one layer per channel;
* GEMM (``-i gemm``): ``Layer, M, N, K[, Sparsity],``.

v3's optional ``Sparsity`` column holds ``N:M`` (``1:1`` is dense).

Export rules (the GEMM each row stands for is always the layer's own):

* a conv with batch 1 and dilation 1 keeps its geometry (padding folded into the IFMAP size);
* any other layer is written as the conv SCALE-Sim itself builds for a GEMM row: IFMAP ``m x k``,
  filter ``1 x k``, 1 channel, ``n`` filters, stride 1;
* a layer with ``groups > 1`` becomes one row per group (``name.g0``, ``name.g1``, ...), since
  SCALE-Sim has no groups; names containing ``DP`` are rewritten so SCALE-Sim does not split them again.

Import keeps the GEMM shape of every row; a ``DP`` row becomes one grouped layer. A conv row's IFMAP
includes its padding, which the format does not state: import takes PyTorch's ``(F - 1) // 2`` per
side (what every conv of the traced zoo uses), so that the padding is made on chip and a traced model
and its exported topology give one answer (a stride-2 3x3 conv of a 56x56 map, written as 57x57, reads
56x56 either way). A file whose convs pad otherwise is read with that assumption. A row named as
the tracer names a GEMM of two activations (``....qk``, ``....av``, ``....bmm``, ``....matmul``,
optionally followed by ``#2`` and a group suffix ``.g0``) comes back weightless, so a sparsity
pattern leaves it dense, as it does in the traced workload.
"""
from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

from .errors import PatternError, TopologyError
from .layer import ConvGeometry, Layer, LayerKind, Phase
from .layout import WeightLayout
from .patterns import NM, parse_pattern

CONV_HEADER = ["Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width",
               "Channels", "Num Filter", "Strides"]
GEMM_HEADER = ["Layer", "M", "N", "K"]

# names the tracer gives GEMMs whose operands are both activations (attention's QK^T and AV, ...)
_WEIGHTLESS = re.compile(r"\.(qk|av|bmm|matmul)(#\d+)?(\.g\d+)?$")


def _sparsity_cell(layer: Layer) -> str:
    if isinstance(layer.pattern, NM):
        return f"{layer.pattern.n}:{layer.pattern.m}"
    return "1:1"


def _safe_name(name: str) -> str:
    return name.replace("DP", "Dp").replace(",", "_")


def to_csv(workload, fmt: str = "conv") -> str:
    if fmt not in ("conv", "gemm"):
        raise TopologyError(f"SCALE-Sim topology format must be 'conv' or 'gemm', got {fmt!r}")
    with_sparsity = any(isinstance(l.pattern, NM) for l in workload.layers)
    header = list(CONV_HEADER if fmt == "conv" else GEMM_HEADER) + (["Sparsity"] if with_sparsity else [])
    lines = [", ".join(header) + ","]
    for layer in workload.layers:
        names = [_safe_name(layer.name)] if layer.groups == 1 else [
            f"{_safe_name(layer.name)}.g{i}" for i in range(layer.groups)]
        for name in names:
            if fmt == "gemm":
                cells = [name, layer.m, layer.n, layer.k]
            else:
                c = layer.conv
                if (c is not None and layer.phase is Phase.FORWARD and len(c.kernel) == 2 and all(d == 1 for d in c.dilation)
                        and c.stride[0] == c.stride[1] and c.output_size[0] * c.output_size[1] == layer.m):
                    # SCALE-Sim computes ceil((I - F + S) / S) outputs from a pre-padded IFMAP; the
                    # padded size that gives PyTorch's floor((I + 2P - F) / S) + 1 exactly is:
                    ih = (c.output_size[0] - 1) * c.stride[0] + c.kernel[0]
                    iw = (c.output_size[1] - 1) * c.stride[1] + c.kernel[1]
                    cells = [name, ih, iw, c.kernel[0], c.kernel[1], c.in_channels // c.groups,
                             layer.n, c.stride[0]]
                else:
                    cells = [name, layer.m, layer.k, 1, layer.k, 1, layer.n, 1]
            if with_sparsity:
                cells.append(_sparsity_cell(layer))
            lines.append(", ".join(str(x) for x in cells) + ",")
    return "\n".join(lines) + "\n"


def _int(cell: str, path, line: int, column: str) -> int:
    try:
        v = int(cell.strip())
    except ValueError:
        raise TopologyError(f"{path}:{line}: column '{column}' must be a positive integer, got '{cell.strip()}'") from None
    if v < 1:
        raise TopologyError(f"{path}:{line}: column '{column}' must be a positive integer, got {v}")
    return v


def _unpad(padded: int, kernel: int, stride: int):
    """(padding per side, input size) of a padded IFMAP dimension, taking PyTorch's ``(kernel - 1) // 2``
    padding (none for a window as wide as the map, as a GEMM row is written): the largest input whose
    padded map gives the same outputs and whose last window ends in it or in its padding (a stride-2 3x3 conv's 57 -> 56 and padding 1, as the traced 56x56 map with
    padding 1 is written)."""
    pad = (kernel - 1) // 2 if kernel < padded else 0     # a window over the whole row (a GEMM row): none
    size = padded - 2 * pad + min(stride - 1, pad)
    return (pad, size) if size >= 1 else (0, padded)


def from_csv(path):
    from .workload import Workload
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise TopologyError(f"topology file {path}: no such file") from None
    rows = list(csv.reader(io.StringIO(text)))
    rows = [[c.strip() for c in r] for r in rows]
    numbered = [(i + 1, r) for i, r in enumerate(rows) if any(c for c in r)]
    if not numbered:
        raise TopologyError(f"topology file {path}: empty, expected a header line and one row per layer")
    _, header = numbered[0]
    header = [h for h in header if h]
    is_gemm = len(header) >= 2 and header[1].upper() == "M"
    expected = GEMM_HEADER if is_gemm else CONV_HEADER
    if len(header) < len(expected):
        raise TopologyError(f"{path}:1: header has {len(header)} columns ({', '.join(header)}); "
                            f"expected {', '.join(expected)}[, Sparsity]")
    layers = []
    for line, r in numbered[1:]:
        cells = r[:-1] if r and r[-1] == "" else r
        if len(cells) < len(expected):
            missing = expected[len(cells):]
            raise TopologyError(f"{path}:{line}: row has {len(cells)} columns, missing {', '.join(missing)} "
                                f"(expected {', '.join(expected)}[, Sparsity])")
        name = cells[0]
        pattern = None
        if len(cells) > len(expected) and cells[len(expected)]:
            try:
                p = parse_pattern(cells[len(expected)])
            except PatternError as e:
                raise TopologyError(f"{path}:{line}: Sparsity column: {e}") from None
            if not isinstance(p, NM):
                raise TopologyError(f"{path}:{line}: Sparsity column must be N:M, got '{cells[len(expected)]}'")
            pattern = p if p.n < p.m else None
        if is_gemm:
            m, n, k = (_int(cells[i], path, line, expected[i]) for i in (1, 2, 3))
            layer = Layer(name=name, kind=LayerKind.MATMUL, m=m, n=n, k=k, op="scalesim.gemm",
                          weight_name=f"{name}.weight", weight_layout=WeightLayout.KN)
        else:
            ih, iw, fh, fw, ch, nf, st = (_int(cells[i], path, line, expected[i]) for i in range(1, 8))
            if fh > ih or fw > iw:
                raise TopologyError(f"{path}:{line}: filter {fh}x{fw} is larger than IFMAP {ih}x{iw}")
            oh, ow = math.ceil((ih - fh + st) / st), math.ceil((iw - fw + st) / st)
            groups = ch if "DP" in name else 1
            cin_g = 1 if groups > 1 else ch
            (ph, h), (pw, w) = _unpad(ih, fh, st), _unpad(iw, fw, st)
            conv = ConvGeometry(in_channels=ch, out_channels=nf * groups, kernel=(fh, fw), stride=(st, st),
                                padding=(ph, pw), dilation=(1, 1), groups=groups, input_size=(h, w),
                                output_size=(oh, ow))
            layer = Layer(name=name, kind=LayerKind.CONV2D, m=oh * ow, n=nf, k=fh * fw * cin_g, groups=groups,
                          op="scalesim.conv", conv=conv, weight_name=f"{name}.weight",
                          weight_layout=WeightLayout.KN)
        tail = _WEIGHTLESS.search(name)
        if tail:
            if pattern is not None:
                raise TopologyError(f"{path}:{line}: layer '{name}' multiplies two activations (no weight), "
                                    f"so its Sparsity must be 1:1, got {pattern}")
            kind = LayerKind.ATTENTION if tail.group(1) in ("qk", "av") else LayerKind.MATMUL
            layer = layer.replace(kind=kind, conv=None, weight_name=None, weight_layout=None)
        if pattern is not None:
            layer = layer.sparsify(pattern)
        layers.append(layer)
    if not layers:
        raise TopologyError(f"topology file {path}: header only, expected one row per layer")
    names = [l.name for l in layers]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise TopologyError(f"topology file {path}: layer names repeat: {sorted(dup)}")
    return Workload(name=path.stem, layers=tuple(layers), batch=1)
