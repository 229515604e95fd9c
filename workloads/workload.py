"""A workload: the ordered GEMM-shaped layers of a model, with their weights and masks."""
from __future__ import annotations

import base64
import fnmatch
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import PatternError, WorkloadError
from .layer import ConvGeometry, Layer, LayerKind, Phase
from .layout import WeightLayout
from .patterns import NM, parse_pattern
from .quant import Quant

FORMAT = "sparsim-workload"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class OtherOp:
    """Non-GEMM work the tracer saw: elementwise, norm, pooling, activation, softmax, reduction.

    ``elements`` is the number of output elements summed over ``calls`` calls (for reductions and
    lookups, the elements read).
    """

    module: str
    op: str
    category: str
    elements: int
    calls: int = 1


@dataclass(frozen=True, eq=False)
class Workload:
    """Ordered layers of a model at a batch size. Immutable: methods return new workloads."""

    name: str
    layers: tuple[Layer, ...]
    batch: int = 1
    other_ops: tuple[OtherOp, ...] = field(default=(), repr=False)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "other_ops", tuple(self.other_ops))
        seen = set()
        for layer in self.layers:
            if layer.name in seen:
                raise WorkloadError(f"workload '{self.name}': layer name '{layer.name}' appears twice")
            seen.add(layer.name)

    # -- sizes and lookup ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise WorkloadError(f"workload '{self.name}': no layer named '{name}'")

    @property
    def macs(self) -> int:
        """Dense MACs of all GEMM layers."""
        return sum(layer.macs for layer in self.layers)

    @property
    def nnz_macs(self) -> int:
        """MACs whose weight survives the masks."""
        return sum(layer.nnz_macs for layer in self.layers)

    def table(self):
        """A pandas DataFrame, one row per layer: name, kind, phase, m, n, k, groups, macs, density, pattern."""
        import pandas as pd
        rows = [{
            "name": l.name, "kind": l.kind.value, "phase": l.phase.value, "m": l.m, "n": l.n, "k": l.k,
            "groups": l.groups, "macs": l.macs, "density": round(l.density, 6),
            "pattern": l.pattern_label,
            "weight": l.weight_name or "",
        } for l in self.layers]
        return pd.DataFrame(rows, columns=["name", "kind", "phase", "m", "n", "k", "groups", "macs",
                                           "density", "pattern", "weight"])

    def mask_table(self, m: int = 4):
        """Per-layer mask statistics for M-groups along k: density, max nonzeros per group,
        fraction of groups that are 1:M, 2:M, ... compliant, and the per-group nonzero histogram."""
        import pandas as pd
        rows = []
        for l in self.layers:
            st = l.mask_stats(m)
            row = {"name": l.name, "density": st.density, "max_per_group": st.max_per_group}
            for n in range(1, m + 1):
                row[f"fits_{n}:{m}"] = st.compliance(n)
            row["histogram"] = list(st.histogram)
            rows.append(row)
        return pd.DataFrame(rows)

    def replace(self, **changes) -> "Workload":
        from dataclasses import replace
        return replace(self, **changes)

    # -- sparsity ------------------------------------------------------------------------------------
    def sparsify(self, pattern) -> "Workload":
        """A new workload whose weight layers are masked by magnitude.

        ``pattern`` is a pattern (or its text, ``"2:4"``) applied to every layer with a weight, or a
        mapping ``{layer-name glob: pattern}``; the first glob that matches a layer's name (or its
        weight's name) decides, and layers no glob matches keep their masks.
        """
        if isinstance(pattern, Mapping):
            rules = [(str(g), parse_pattern(p)) for g, p in pattern.items()]
            matched = {g: False for g, _ in rules}
            new = []
            for layer in self.layers:
                chosen = None
                for g, p in rules:
                    if fnmatch.fnmatchcase(layer.name, g) or (layer.weight_name and fnmatch.fnmatchcase(layer.weight_name, g)):
                        chosen = p
                        matched[g] = True
                        break
                new.append(layer.sparsify(chosen) if chosen is not None else layer)
            unmatched = [g for g, ok in matched.items() if not ok]
            if unmatched:
                raise PatternError(f"workload '{self.name}': sparsify glob(s) {unmatched} match no layer")
            return self.replace(layers=tuple(new))
        p = parse_pattern(pattern)
        return self.replace(layers=tuple(layer.sparsify(p) for layer in self.layers))

    # -- training ------------------------------------------------------------------------------------
    def training(self, mode: str = "bdwp") -> "Workload":
        """Expand every forward layer into its forward, backward-data and backward-weight GEMMs.

        For ``O[m x n] = A[m x k] · W[k x n]`` (per group):

        * forward:         m x n x k, weight ``W``;
        * backward-data:   ``dA = dO · W^T``: m x k x n (reduction over the outputs), weight ``W^T``;
        * backward-weight: ``dW = A^T · dO``: k x n x m (reduction over rows), no parameter operand.

        Modes:

        * ``"bdwp"`` (bidirectional weight pruning, SAT, Fang et al. 2023): a layer masked N:M
          along k forward is masked N:M again for backward-data, chosen on the same dense weights along
          its new reduction axis (the forward's output axis), so both passes are N:M. Layers with
          other patterns carry their forward mask transposed. Backward-weight is dense.
        * ``"forward-only-sparse"`` (SR-STE-style): the forward mask only; backward-data multiplies by
          the same masked weights transposed, whose zeros are no longer N:M along the reduction axis;
          backward-weight is dense.
        * ``"dense"``: every GEMM dense.
        """
        modes = ("bdwp", "forward-only-sparse", "dense")
        if mode not in modes:
            raise WorkloadError(f"workload '{self.name}': training mode must be one of {modes}, got {mode!r}")
        out: list[Layer] = []
        for layer in self.layers:
            if layer.phase is not Phase.FORWARD:
                raise WorkloadError(f"workload '{self.name}': layer '{layer.name}' is already a "
                                    f"{layer.phase.value} GEMM; training() takes an inference workload")
            out.extend(_training_gemms(layer, mode))
        return self.replace(name=f"{self.name}[train:{mode}]", layers=tuple(out))

    # -- persistence ---------------------------------------------------------------------------------
    def save(self, path, weights: bool = False) -> Path:
        """Write the workload to a JSON file, masks included (bit-packed); weights when ``weights``.

        The file is written to a temporary name and renamed, so a crash never leaves half a file.
        """
        path = Path(path)
        doc = {"format": FORMAT, "version": FORMAT_VERSION, "name": self.name, "batch": self.batch,
               "layers": [_layer_to_dict(l, weights) for l in self.layers],
               "other_ops": [{"module": o.module, "op": o.op, "category": o.category,
                              "elements": o.elements, "calls": o.calls} for o in self.other_ops]}
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path) -> "Workload":
        """Read a workload written by :meth:`save`."""
        path = Path(path)
        try:
            with open(path) as f:
                doc = json.load(f)
        except FileNotFoundError:
            raise WorkloadError(f"workload file {path}: no such file") from None
        except json.JSONDecodeError as e:
            raise WorkloadError(f"workload file {path}: not valid JSON ({e})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise WorkloadError(f"workload file {path}: expected a JSON object with format '{FORMAT}'")
        if doc.get("version") != FORMAT_VERSION:
            raise WorkloadError(f"workload file {path}: version {doc.get('version')!r} is not supported "
                                f"(expected {FORMAT_VERSION})")
        try:
            layers = tuple(_layer_from_dict(d) for d in doc["layers"])
            others = tuple(OtherOp(**o) for o in doc.get("other_ops", []))
            return cls(name=str(doc["name"]), layers=layers, batch=int(doc["batch"]), other_ops=others)
        except KeyError as e:
            raise WorkloadError(f"workload file {path}: missing key {e}") from None
        except (TypeError, ValueError) as e:
            if isinstance(e, WorkloadError):
                raise WorkloadError(f"workload file {path}: {e}") from None
            raise WorkloadError(f"workload file {path}: malformed entry ({e})") from None

    # -- SCALE-Sim interchange -----------------------------------------------------------------------
    def to_scalesim_csv(self, path=None, fmt: str = "conv") -> str:
        """SCALE-Sim topology CSV text (written to ``path`` when given); see :mod:`workloads.scalesim`."""
        from .scalesim import to_csv
        text = to_csv(self, fmt)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_scalesim_csv(cls, path) -> "Workload":
        from .scalesim import from_csv
        return from_csv(path)


# ---------------------------------------------------------------------------------------------------
def _training_gemms(layer: Layer, mode: str) -> list[Layer]:
    fwd = layer.replace(name=f"{layer.name}.fwd")
    if mode == "dense":
        fwd = fwd.replace(mask=None, pattern=None)
    # Backward GEMMs keep the forward's conv geometry: backward-weight reads the input feature map
    # (expanded to im2col rows on chip, as the forward does) and backward-data writes it (col2im on
    # chip), so their DRAM traffic is the feature map, not the im2col matrix.
    bd = layer.replace(name=f"{layer.name}.bwd_data", m=layer.m, n=layer.k, k=layer.n,
                       phase=Phase.BACKWARD_DATA, weight=None, mask=None, pattern=None,
                       weight_layout=None)
    if layer.weight_layout is not None:
        # The right operand is W^T: (groups, n, k) in GEMM layout.
        wt = layer.gemm_weight()
        # a view, not a copy: the forward layer holds the same values (a copy of GPT-2's weights is 0.5 GB)
        bd = bd.replace(weight_layout=WeightLayout.KN, weight=None if wt is None else wt.transpose(0, 2, 1))
        gm = layer.gemm_mask()
        if mode == "bdwp" and isinstance(layer.pattern, NM):
            bd = bd.sparsify(layer.pattern)
        elif mode != "dense" and gm is not None:
            bd = bd.with_gemm_mask(np.ascontiguousarray(gm.transpose(0, 2, 1)))
    bw = layer.replace(name=f"{layer.name}.bwd_weight", m=layer.k, n=layer.n, k=layer.m,
                       phase=Phase.BACKWARD_WEIGHT, weight_name=None, weight=None,
                       weight_layout=None, mask=None, pattern=None)
    return [fwd, bd, bw]


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def _layer_to_dict(l: Layer, weights: bool) -> dict:
    d = {"name": l.name, "kind": l.kind.value, "m": l.m, "n": l.n, "k": l.k, "groups": l.groups,
         "module": l.module, "op": l.op, "phase": l.phase.value,
         "conv": None if l.conv is None else {k: (list(v) if isinstance(v, tuple) else v)
                                              for k, v in vars(l.conv).items()},
         "a_bits": l.a_bits, "w_bits": l.w_bits, "o_bits": l.o_bits, "weight_name": l.weight_name,
         "weight_layout": None if l.weight_layout is None else l.weight_layout.value,
         "pattern": None if l.pattern is None else str(l.pattern), "mask": None, "weight": None}
    if l.quant is not None:
        d["quant"] = {"bits": l.quant.bits, "group_size": l.quant.group_size, "scale_bits": l.quant.scale_bits}
    if l.mask is not None:
        d["mask"] = {"shape": list(l.mask.shape), "packbits_b64": _b64(np.packbits(l.mask.ravel()))}
    if weights and l.weight is not None:
        d["weight"] = {"shape": list(l.weight.shape), "dtype": "float32",
                       "b64": _b64(l.weight.astype(np.float32))}
    return d


def _layer_from_dict(d: dict) -> Layer:
    where = f"layer '{d.get('name', '?')}'"
    mask = weight = None
    if d.get("mask") is not None:
        shape = tuple(int(x) for x in d["mask"]["shape"])
        bits = np.frombuffer(base64.b64decode(d["mask"]["packbits_b64"]), dtype=np.uint8)
        size = math.prod(shape)
        if bits.size * 8 < size:
            raise WorkloadError(f"{where}: mask data holds {bits.size * 8} bits, shape {shape} needs {size}")
        mask = np.unpackbits(bits)[:size].astype(bool).reshape(shape)
    if d.get("weight") is not None:
        shape = tuple(int(x) for x in d["weight"]["shape"])
        weight = np.frombuffer(base64.b64decode(d["weight"]["b64"]), dtype=np.float32).reshape(shape).copy()
    conv = None
    if d.get("conv") is not None:
        c = d["conv"]
        conv = ConvGeometry(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in c.items()})
    return Layer(name=d["name"], kind=LayerKind(d["kind"]), m=int(d["m"]), n=int(d["n"]), k=int(d["k"]),
                 groups=int(d["groups"]), module=d.get("module", ""), op=d.get("op", ""),
                 phase=Phase(d.get("phase", "forward")), conv=conv, a_bits=int(d.get("a_bits", 32)),
                 w_bits=int(d.get("w_bits", 32)), o_bits=int(d.get("o_bits", 32)),
                 weight_name=d.get("weight_name"), weight=weight,
                 weight_layout=None if d.get("weight_layout") is None else WeightLayout(d["weight_layout"]),
                 mask=mask, pattern=None if d.get("pattern") is None else parse_pattern(d["pattern"]),
                 quant=None if d.get("quant") is None else Quant(**d["quant"]))
