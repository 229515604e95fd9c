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
from .pruners import QUANT_GROUP

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

    def weight_bits(self, assignment) -> dict:
        """``{layer: weight bits}`` of an assignment (16: not quantized)."""
        from .pruners import parse_candidate
        return {n: parse_candidate(p)[1] for n, p in self.patterns(assignment).items()}


def as_llm(model, seed: int = 0):
    """``model`` (an in-memory ``transformers`` causal LM) as an :class:`workloads.llm.LlmModel`,
    every block traced (its exact zeros are its masks)."""
    from workloads.hf import from_model
    return from_model(model, blocks=None, seed=seed, record_inputs=False)


def with_masks(lm, masks: dict):
    """``lm`` with the named layers' masks replaced by ``masks`` (``(out, in)`` bool, torch or NumPy);
    an all-kept mask is dense."""
    import dataclasses

    def one(l):
        m = masks.get(l.name)
        if m is None:
            return l
        a = np.asarray(m.cpu().numpy() if hasattr(m, "cpu") else m, dtype=bool)
        if a.shape != tuple(l.weight.shape):
            a = a.T
        return l.replace(mask=None if a.all() else a)
    return dataclasses.replace(lm, blocks=tuple(tuple(one(l) for l in b) for b in lm.blocks))


SOURCE = "simulator.llm (issue 21): decode TPOT mean over the generated tokens, KV cache read per step"


def decode_costs(model, accelerator, layer_names, batch: int = 1, prompt: int = 512, generate: int = 128,
                 candidates=DEFAULT_CANDIDATES, progress: bool = False) -> DecodeCosts:
    """Cost tables of ``layer_names`` (the prunable layers) on ``accelerator``: for each candidate,
    every block layer sparsified to it (by magnitude, :meth:`LlmModel.sparsify`) and each layer's row
    of :func:`simulator.llm.layer_costs` (a layer's row depends only on its own mask). N:M costs do
    not depend on which weights are kept, so they are exact for any pruner's masks; an unstructured
    mask's cost can differ slightly with the mask, so a pruned model's final numbers come from
    :func:`simulate_pruned` on its real masks. ``other_*``: the LM head and :func:`fixed_costs`
    (attention over the KV cache), which no pattern changes."""
    from tqdm.auto import tqdm
    from simulator.llm import fixed_costs, layer_costs
    from workloads import Dense
    from .pruners import candidate_name, parse_candidate
    base = as_llm(model)
    names = list(layer_names)
    parsed = {}
    for c in candidates:
        p, bits = parse_candidate(c)
        parsed.setdefault(candidate_name(p, bits), (p, bits))
    parsed.pop("dense", None)
    cands = ["dense"] + list(parsed)
    parsed["dense"] = (Dense(), 16)
    L, C = len(names), len(cands)
    tpot, energy = np.zeros((L, C)), np.zeros((L, C))
    head_t = head_e = 0.0
    for c, pat in enumerate(tqdm(cands, desc="cost tables", unit="pattern", disable=not progress, leave=False)):
        p, bits = parsed[pat]
        lm = base if isinstance(p, Dense) else base.sparsify(p)
        if bits < 16:
            lm = lm.with_weight_bits({n: bits for n in names}, group_size=QUANT_GROUP)
        rows = {r["name"]: r for r in layer_costs(lm, accelerator, batch, prompt, generate)}
        missing = [n for n in names if n not in rows]
        if missing:
            raise SearchError(f"decode costs: layer {missing[0]} is not a weight layer of the traced model")
        for li, n in enumerate(names):
            tpot[li, c] = rows[n]["decode_s_per_token"]
            energy[li, c] = rows[n]["decode_energy_j_per_token"] * 1e12
        if c == 0:
            rest = [r for n, r in rows.items() if n not in set(names)]
            head_t = sum(r["decode_s_per_token"] for r in rest)
            head_e = sum(r["decode_energy_j_per_token"] for r in rest) * 1e12
    fixed = fixed_costs(base, accelerator, batch, prompt, generate)
    return DecodeCosts(layer_names=names, candidates=cands, tpot_s=tpot, energy_pj=energy,
                       allowed=np.ones((L, C), dtype=bool),
                       other_tpot_s=head_t + fixed["decode_s_per_token"],
                       other_energy_pj=head_e + fixed["decode_energy_j_per_token"] * 1e12,
                       source=SOURCE, batch=batch, context=prompt)


def simulate_pruned(model, accelerator, batch: int = 1, prompt: int = 512, generate: int = 128,
                    weight_bits: dict | None = None, masks: dict | None = None) -> dict:
    """Decode TPOT (mean), energy and DRAM bytes per output token of ``model`` as it is (its exact
    zeros are its masks): :func:`simulator.llm.run_llm`. ``weight_bits``: ``{layer: bits}`` of the
    layers stored below 16 bits (a pruned model's report has it; the weights themselves hold the
    dequantized values, so the bits cannot be read from them). A quantized layer's mask is its
    pruning mask from ``masks`` (``{layer: (out, in) bool}``, e.g. ``masks.safetensors``), not its
    exact zeros: a kept weight that rounds to zero is still a stored value."""
    from simulator.llm import run_llm
    lm = as_llm(model)
    low = {n: int(b) for n, b in (weight_bits or {}).items() if int(b) < 16}
    if low:
        if masks is None or any(n not in masks for n in low):
            raise SearchError("simulate: a layer stored below 16 bits needs its pruning mask")
        lm = with_masks(lm, {n: masks[n] for n in low}).with_weight_bits(low, group_size=QUANT_GROUP)
    r = run_llm(lm, accelerator, batch, prompt, generate)
    return {"tpot_s": float(r.tpot_mean_s), "energy_per_token_pj": float(r.energy_per_token_j) * 1e12,
            "dram_bytes_per_token": float(r.dram_bytes_per_token), "ttft_s": float(r.ttft_s), "bound": r.bound,
            "source": SOURCE}
