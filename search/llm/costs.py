"""Decode cost per output token of each (prunable layer, pattern): the table the allocation solves over.

:class:`DecodeCosts` is the interface the allocation sees: per-layer, per-candidate decode time per
output token (TPOT, seconds) and energy per output token (pJ), plus the cost of everything the
patterns do not change (attention over the KV cache, norms, the output head). An assignment's cost
is a table sum. :func:`decode_costs` builds it from a decode-step workload and the simulator; the
final numbers of a pruned model come from :func:`simulate_pruned`, which simulates its real masks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SearchError

#: The candidates the allocation chooses among by default (the issue's list; dense is always first).
DEFAULT_CANDIDATES = ("dense", "2:4", "1:4", "2:8", "4:8", "unstructured:0.7", "unstructured:0.5",
                      "unstructured:0.3")
OBJECTIVES = {"tpot": "tpot_s", "energy": "energy_pj"}


@dataclass
class DecodeCosts:
    """``L`` prunable layers x ``C`` candidates.

    ``tpot_s``/``energy_pj``: ``(L, C)`` per output token; ``allowed``: ``(L, C)`` bool;
    ``other_tpot_s``/``other_energy_pj``: the rest of one decode step, per output token;
    ``source``: how the numbers were made (printed in reports)."""
    layer_names: list
    candidates: list
    tpot_s: np.ndarray
    energy_pj: np.ndarray
    allowed: np.ndarray
    other_tpot_s: float
    other_energy_pj: float
    source: str
    batch: int
    context: int
    hardware: object = None      # the search.HardwareCost the numbers came from (masks, workload)

    def table(self, objective: str) -> np.ndarray:
        return getattr(self, OBJECTIVES[objective])

    def other(self, objective: str) -> float:
        return self.other_tpot_s if objective == "tpot" else self.other_energy_pj

    def total(self, assignment, objective: str) -> float:
        a = np.asarray(assignment, dtype=np.int64)
        return float(self.table(objective)[np.arange(len(a)), a].sum()) + self.other(objective)

    def totals(self, assignment) -> dict:
        return {"tpot_s": self.total(assignment, "tpot"), "energy_per_token_pj": self.total(assignment, "energy")}

    def dense(self) -> np.ndarray:
        return np.zeros(len(self.layer_names), dtype=np.int64)

    def uniform(self, pattern: str) -> np.ndarray:
        if pattern not in self.candidates:
            raise SearchError(f"uniform: {pattern} is not a candidate ({self.candidates})")
        c = self.candidates.index(pattern)
        return np.where(self.allowed[:, c], c, 0).astype(np.int64)

    def cheapest(self, objective: str) -> float:
        t = np.where(self.allowed, self.table(objective), np.inf)
        return float(t.min(axis=1).sum()) + self.other(objective)

    def patterns(self, assignment) -> dict:
        return {n: self.candidates[int(c)] for n, c in zip(self.layer_names, assignment)}


def decode_workload(model, batch: int, context: int):
    """The workload of one decode step at ``batch`` with ``context`` tokens in the KV cache.

    Until the LLM inference API (issue 21) is merged this traces the model on ``batch`` single-token
    inputs: the Linear layers are exact (M = batch rows, their real weights), attention covers one
    token, so ``context`` does not enter (the KV cache is not an operand here)."""
    import torch
    from workloads.tracer import trace
    wl = trace(model, (torch.zeros(batch, 1, dtype=torch.long),), batch=batch)
    return wl.replace(name=f"{type(model).__name__} decode b{batch}"), \
        "simulator, decode step traced at 1 token (Linear layers exact; no KV-cache operand)"


def decode_costs(model, accelerator, layer_names, batch: int = 1, context: int = 512,
                 candidates=DEFAULT_CANDIDATES, progress: bool = False) -> DecodeCosts:
    """Cost tables of ``layer_names`` (the prunable layers) on ``accelerator`` at ``batch``.

    Each entry is the simulator's own cost of that layer under the mask the candidate picks from
    the layer's weight by magnitude (:class:`search.HardwareCost`): exact for N:M, whose cost does
    not depend on which weights are kept; an unstructured mask's cost can differ slightly with the
    mask, so final numbers come from :func:`simulate_pruned` on the real masks."""
    from ..cost import HardwareCost
    wl, source = decode_workload(model, batch, context)
    names = [l.name for l in wl.layers]
    missing = [n for n in layer_names if n not in names]
    if missing:
        raise SearchError(f"decode costs: layer {missing[0]} was not found in the traced decode step")
    pins = [n for n in names if n not in set(layer_names)]
    hc = HardwareCost(wl, accelerator, candidates, pins=pins, progress=progress)
    clock = accelerator.compute.clock_hz
    idx = [names.index(n) for n in layer_names]
    rest = [i for i in range(len(names)) if i not in set(idx)]
    cyc = hc.cycles[idx].astype(np.float64)
    return DecodeCosts(layer_names=list(layer_names), candidates=list(hc.candidate_names),
                       tpot_s=cyc / clock, energy_pj=hc.energy_pj[idx] / batch,
                       allowed=hc.allowed[idx].copy(),
                       other_tpot_s=float(hc.cycles[rest, 0].sum()) / clock,
                       other_energy_pj=float(hc.energy_pj[rest, 0].sum()) / batch,
                       source=source, batch=batch, context=context, hardware=hc)


def simulate_pruned(model, accelerator, batch: int = 1, context: int = 512) -> dict:
    """Decode TPOT and energy per token of ``model`` as it is (its zeros are its masks), simulated."""
    from simulator import simulate
    wl, source = decode_workload(model, batch, context)   # the tracer masks each weight by its exact zeros
    t = simulate(wl, accelerator).totals
    return {"tpot_s": float(t["cycles"]) / accelerator.compute.clock_hz,
            "energy_per_token_pj": float(t["energy_pj"]) / batch, "dram_bytes_per_token": float(t["dram_bytes"]) / batch,
            "source": source}
