"""Candidate patterns and pins: which sparsity patterns each layer may take.

A candidate is any :class:`workloads.SparsityPattern` (text forms as ``parse_pattern`` reads them:
``dense``, ``2:4``, ``unstructured:0.3``, ``block:4x4:0.5``, ``channel:0.75``). ``dense`` is always
candidate 0: pinned layers and layers without a weight (attention's QK^T and AV) can only be dense.
"""
from __future__ import annotations

import fnmatch
from typing import Iterable, Mapping, Sequence

import numpy as np

from workloads import Dense, PatternError, SparsityPattern, Workload, parse_pattern

from .errors import SearchError

#: The candidates ``sparsim search`` uses when none are given: N:M ratios and unstructured
#: densities. Any mask is costed by the simulator on any hardware: on a flexible N:M array
#: (``nm_overflow: passes``, e.g. vegeta-flex) an unstructured mask runs in an N:M mode with extra
#: passes for the groups that hold more than N, so it is faster than dense there; on a fixed N:M
#: unit it runs dense (and the search will not choose it for speed).
DEFAULT_CANDIDATES = ("dense", "2:4", "1:4", "2:8", "unstructured:0.7", "unstructured:0.5", "unstructured:0.3")


def parse_candidates(spec, where: str = "--candidates") -> list[SparsityPattern]:
    """Patterns from a comma-separated string or a sequence of strings / patterns, deduplicated in
    order, with ``dense`` first. An empty list or an unknown string raises :class:`SearchError`."""
    if isinstance(spec, str):
        items = [s for s in (t.strip() for t in spec.split(",")) if s]
        if not items:
            raise SearchError(f"{where} {spec!r}: the candidate list is empty; give patterns such as dense,2:4,1:4")
    elif isinstance(spec, (SparsityPattern,)):
        items = [spec]
    else:
        items = list(spec)
    if not items:
        raise SearchError(f"{where}: the candidate list is empty; give patterns such as dense,2:4,1:4")
    out: list[SparsityPattern] = [Dense()]
    for item in items:
        try:
            p = parse_pattern(item)
        except PatternError as e:
            raise SearchError(f"{where}: candidate {item!r}: {e}") from None
        if str(p) not in {str(q) for q in out}:
            out.append(p)
    return out


def _matches(layer, glob: str) -> bool:
    return fnmatch.fnmatchcase(layer.name, glob) or bool(
        layer.weight_name and (fnmatch.fnmatchcase(layer.weight_name, glob)
                               or fnmatch.fnmatchcase(layer.weight_name.rsplit(".", 1)[0], glob)))


def parse_pins(spec) -> list[str]:
    if spec is None:
        return []
    if isinstance(spec, str):
        return [s for s in (t.strip() for t in spec.split(",")) if s]
    return [str(s) for s in spec]


def allowed_matrix(workload: Workload, candidates: Sequence[SparsityPattern],
                   per_layer: Mapping[str, Iterable] | None = None, pins: Iterable[str] = ()) -> np.ndarray:
    """``allowed[l, c]``: may layer ``l`` take candidate ``c``.

    ``per_layer`` maps a layer-name glob to the candidates (strings or patterns, a subset of
    ``candidates``) of the layers it matches (first glob wins); ``pins`` are globs of layers held
    dense. Globs match the layer name, its weight's name or the weight's module path. A glob that
    matches no layer is an error.
    """
    names = [str(c) for c in candidates]
    L, C = len(workload.layers), len(candidates)
    allowed = np.ones((L, C), dtype=bool)
    rules = []
    for glob, cands in (per_layer or {}).items():
        idx = []
        for p in parse_candidates(cands, where=f"candidates for '{glob}'"):
            if str(p) not in names:
                raise SearchError(f"candidates for '{glob}': {p} is not among the search's candidates {names}")
            idx.append(names.index(str(p)))
        rules.append((glob, idx))
    used = {g: False for g, _ in rules}
    pins = list(pins)
    pin_used = {g: False for g in pins}
    for li, layer in enumerate(workload.layers):
        for glob, idx in rules:
            if _matches(layer, glob):
                allowed[li] = False
                allowed[li, idx] = True
                allowed[li, 0] = True
                used[glob] = True
                break
        for glob in pins:
            if _matches(layer, glob):
                allowed[li] = False
                allowed[li, 0] = True
                pin_used[glob] = True
        if not layer.has_weight and layer.weight_layout is None:
            allowed[li] = False
            allowed[li, 0] = True
    for glob, ok in list(used.items()) + list(pin_used.items()):
        if not ok:
            what = "--pin" if glob in pin_used else "per-layer candidates"
            raise SearchError(f"{what} '{glob}': matches no layer of '{workload.name}' "
                              f"(layer names look like '{workload.layers[0].name}')")
    return allowed
