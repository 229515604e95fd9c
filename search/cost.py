"""Cost tables: the simulator's cycles, energy and DRAM bytes of every (layer, candidate) pair.

The fast engine costs layers independently, so the cost of an assignment (one candidate per layer)
is a sum over the table, equal to ``simulator.simulate`` on the workload masked that way: every
per-layer entry is the simulator's own number for that layer and mask, and a population of
assignments is one NumPy gather (``HardwareCost.evaluate``).
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from accel import Accelerator
from workloads import Dense, Layer, MaskError, SparsityPattern, WeightLayout, Workload

from .candidates import allowed_matrix, parse_candidates, parse_pins
from .errors import SearchError
from .kernels import gather_sum
from .masks import pick

#: The cost metrics a table holds, in this order in ``HardwareCost.stacked``.
METRICS = ("cycles", "energy_pj", "dram_bytes")


def _simulate(workload: Workload, acc: Accelerator):
    from simulator import simulate
    return simulate(workload, acc)


class HardwareCost:
    """Per-(layer, candidate) simulator costs of a workload on one accelerator.

    Parameters
    ----------
    workload:     the traced model (its weights pick the masks).
    accelerator:  an :class:`accel.Accelerator`.
    candidates:   patterns (strings or :class:`SparsityPattern`) every layer may take; ``dense`` is
                  always added as candidate 0.
    pins:         layer globs held dense (e.g. ``["conv1", "fc"]``).
    per_layer:    optional ``{layer glob: candidates}`` restricting the layers a glob matches.
    importance:   optional ``{layer name: score}`` with ``score`` broadcastable to the layer's GEMM
                  weight ``(groups, k, n)``; masks are then chosen on ``|W| * score`` (Wanda uses
                  ``score = ||x||`` per input feature, shape ``(groups, k, 1)``) instead of ``|W|``.
    progress:     show a tqdm bar while the tables are built.
    masks_from:   another ``HardwareCost`` of the same workload, candidates and pins (another hardware
                  point): its masks are reused instead of picked again.
    extra:        optional ``{layer name: patterns}``: candidates only that layer may take besides the
                  shared ones (pinned and weightless layers stay dense). The search puts the baselines'
                  per-layer allocations here (``baselines.allocation_extras``); they become columns
                  after the shared candidates, allowed in their own layers only.

    Attributes (``L`` layers, ``C`` candidates)
    -------------------------------------------
    candidates: list of patterns; ``candidate_names`` their text.
    layer_names: the workload's layer names, in order.
    allowed:    bool ``(L, C)``; ``options[l]`` the allowed candidate indices of layer ``l``.
    cycles:     int64 ``(L, C)``; ``energy_pj``, ``dram_bytes``: float64 ``(L, C)``. Disallowed
                entries hold the dense layer's cost (never chosen by the algorithms here).
    dense_totals: cycles, energy_pj, dram_bytes of the dense model on this accelerator.
    """

    def __init__(self, workload: Workload, accelerator: Accelerator, candidates: Sequence = ("dense", "2:4", "1:4"),
                 pins: Iterable[str] = (), per_layer: Mapping[str, Iterable] | None = None,
                 importance: Mapping[str, np.ndarray] | None = None, progress: bool = False,
                 masks_from: "HardwareCost | None" = None, extra: Mapping[str, Iterable] | None = None):
        if not isinstance(workload, Workload):
            raise SearchError(f"HardwareCost: expected a workloads.Workload, got {type(workload).__name__}")
        if not isinstance(accelerator, Accelerator):
            raise SearchError(f"HardwareCost: expected an accel.Accelerator, got {type(accelerator).__name__}")
        if not workload.layers:
            raise SearchError(f"HardwareCost: workload '{workload.name}' has no layers")
        self.workload = workload
        self.accelerator = accelerator
        self.candidates: list[SparsityPattern] = parse_candidates(candidates)
        self.pins = parse_pins(pins)
        self.layer_names = [l.name for l in workload.layers]
        self.n_shared = shared = len(self.candidates)   # the rest are ``extra`` (layer-specific) candidates
        self.allowed = allowed_matrix(workload, self.candidates, per_layer, self.pins)
        if extra:
            self.allowed = self._add_extra(extra, shared)
        self.candidate_names = [str(c) for c in self.candidates]
        self._tie(workload)
        self.options = [np.flatnonzero(row) for row in self.allowed]
        self.importance = dict(importance or {})
        unknown = set(self.importance) - set(self.layer_names)
        if unknown:
            raise SearchError(f"HardwareCost: importance given for unknown layer(s) {sorted(unknown)[:3]}")
        L, C = self.allowed.shape
        self._packed: dict[tuple[int, int], np.ndarray] = {}   # (l, c) -> packbits of the GEMM mask
        self.cycles = np.zeros((L, C), dtype=np.int64)
        self.energy_pj = np.zeros((L, C))
        self.dram_bytes = np.zeros((L, C))
        if masks_from is not None:
            if (masks_from.workload is not workload or masks_from.candidate_names != self.candidate_names
                    or not np.array_equal(masks_from.allowed, self.allowed)
                    or set(masks_from.importance) != set(self.importance)):
                raise SearchError("HardwareCost: masks_from must have the same workload, candidates, pins "
                                  "and importance")
            self._packed = masks_from._packed
        self._build(progress)
        self.stacked = np.stack([self.cycles.astype(np.float64), self.energy_pj, self.dram_bytes], axis=-1)
        self._tables4 = np.concatenate([self.stacked.reshape(1, L * C, len(METRICS)), np.zeros((1, L * C, 1))],
                                       axis=2)
        dense = np.zeros(L, dtype=np.int64)
        self.dense_totals = self.totals(dense)

    def _tie(self, workload: Workload) -> None:
        """Layers that use one weight parameter (a tied head, a block called twice) are one decision:
        ``var_of[l]`` is layer ``l``'s variable, ``leaders[v]`` the first layer of variable ``v``,
        ``ties`` the groups of two or more layers. A tied group allows what every use allows (a pin
        or a per-layer rule on one use holds them all), its mask is picked once, on the first use's
        scores, and each use is costed under it: the group's cost is the sum over its uses."""
        key_of: dict[tuple, int] = {}
        var_of = np.empty(len(workload.layers), dtype=np.int64)
        leaders: list[int] = []
        for li, layer in enumerate(workload.layers):
            key = None
            if layer.weight_name and (layer.has_weight or layer.weight_layout is not None):
                key = (layer.weight_name, tuple(layer.gemm_shape), str(layer.weight_layout))
            if key is not None and key in key_of:
                var_of[li] = key_of[key]
                continue
            var_of[li] = len(leaders)
            leaders.append(li)
            if key is not None:
                key_of[key] = var_of[li]
        self.var_of = var_of
        self.leaders = np.array(leaders, dtype=np.int64)
        self.ties = [np.flatnonzero(var_of == v) for v in range(len(leaders)) if np.count_nonzero(var_of == v) > 1]
        for group in self.ties:
            self.allowed[group] = self.allowed[group].all(axis=0)

    @property
    def n_vars(self) -> int:
        """Decision variables: one per layer, except that the uses of one parameter share one."""
        return len(self.leaders)

    def restrict(self, layer: str | int, allowed_cols) -> None:
        """Allow only candidate columns ``allowed_cols`` in ``layer`` and every layer tied to it."""
        li = self.layer_index(layer)
        row = np.zeros(self.allowed.shape[1], dtype=bool)
        row[list(allowed_cols)] = True
        for lj in np.flatnonzero(self.var_of == self.var_of[li]):
            self.allowed[lj] = row
            self.options[lj] = np.flatnonzero(row)

    def var_table(self, table: np.ndarray) -> np.ndarray:
        """A per-(layer, candidate) ``table`` summed over each variable's layers: ``(V, C)``."""
        t = np.asarray(table, dtype=np.float64)
        out = np.zeros((self.n_vars, t.shape[1]))
        np.add.at(out, self.var_of, t)
        return out

    def expand(self, var_assignment) -> np.ndarray:
        """Variable assignments ``(..., V)`` -> layer assignments ``(..., L)``."""
        return np.asarray(var_assignment, dtype=np.int64)[..., self.var_of]

    def _add_extra(self, extra: Mapping[str, Iterable], shared: int) -> np.ndarray:
        """Append the layer-specific candidates (equal patterns share a column) and allow each in
        its own layer only, unless the layer is pinned or has no weight."""
        from .candidates import _matches
        cols: list[tuple[int, int]] = []
        for name, pats in extra.items():
            if name not in self.layer_names:
                raise SearchError(f"HardwareCost extra: no layer named '{name}' in workload '{self.workload.name}'")
            li = self.layer_names.index(name)
            layer = self.workload.layers[li]
            if any(_matches(layer, g) for g in self.pins) or not (layer.has_weight or layer.weight_layout is not None):
                continue
            for item in pats:
                p = parse_candidates([item], where=f"extra candidates of '{name}'")[-1]
                if isinstance(p, Dense):
                    continue
                hit = [c for c, q in enumerate(self.candidates) if q == p]
                if hit:
                    c = hit[0]
                else:
                    self.candidates.append(p)
                    c = len(self.candidates) - 1
                cols.append((li, c))
        allowed = np.zeros((len(self.layer_names), len(self.candidates)), dtype=bool)
        allowed[:, :shared] = self.allowed
        for li, c in cols:
            allowed[li, c] = True
        return allowed

    # ------------------------------------------------------------------------------------ building
    @property
    def shape(self) -> tuple[int, int]:
        return self.allowed.shape

    def _score(self, li: int, layer: Layer) -> np.ndarray | None:
        w = layer.gemm_weight()
        if w is None:
            return None
        imp = self.importance.get(layer.name)
        s = np.abs(np.ascontiguousarray(w))  # float32 |W| orders exactly as float64 |W| does
        if imp is not None:
            try:
                s = s * np.asarray(imp, dtype=np.float64)
            except ValueError:
                raise SearchError(f"importance for layer '{layer.name}': shape {np.shape(imp)} does not "
                                  f"broadcast to its GEMM weight {layer.gemm_shape}") from None
        return s

    def pick_mask(self, li: int, pattern: SparsityPattern) -> np.ndarray | None:
        """The GEMM-layout mask ``(groups, k, n)`` that ``pattern`` picks for layer ``li`` (None: dense)."""
        layer = self.workload.layers[li]
        return self._pick(layer, parse_candidates([pattern])[-1], self._score(li, layer))

    @staticmethod
    def _pick(layer: Layer, pattern: SparsityPattern, scores: np.ndarray | None) -> np.ndarray | None:
        if isinstance(pattern, Dense) or (not layer.has_weight and layer.weight_layout is None):
            return None
        if scores is None:  # a layer read from a topology file: the workload's deterministic stand-in
            return layer.sparsify(pattern).gemm_mask()
        return pick(pattern, scores)

    def _build(self, progress: bool):
        # One simulate call per layer on its C variants (renamed apart): scores are computed once per
        # layer, and only the packed masks are kept, so memory stays one layer's worth.
        from tqdm.auto import tqdm
        L, C = self.allowed.shape
        for li, layer in enumerate(tqdm(self.workload.layers, desc="cost tables", unit="layer",
                                        disable=not progress, leave=False)):
            base = layer.replace(mask=None, pattern=None) if layer.has_weight or layer.mask is not None else layer
            cs = self.options[li]
            variants = []
            scores = None
            for c in cs:
                if c == 0:
                    variants.append(base.replace(name=f"{layer.name}#0"))
                    continue
                lead = int(self.leaders[self.var_of[li]])
                if lead != li and (li, int(c)) not in self._packed:
                    self._packed[(li, int(c))] = self._packed[(lead, int(c))]   # one parameter, one mask
                if (li, int(c)) in self._packed:
                    gm = self.gemm_mask(li, int(c))
                else:
                    if scores is None:
                        scores = self._score(li, layer)
                    gm = self._pick(layer, self.candidates[c], scores)
                    self._packed[(li, int(c))] = np.packbits(gm.ravel())
                # the mask in GEMM layout as-is (layout KN): the engine reads only the GEMM view, and
                # this skips two layout copies per pair; the exactness test guards the equivalence
                variants.append(layer.replace(name=f"{layer.name}#{c}", weight=None, weight_layout=WeightLayout.KN,
                                              mask=gm, pattern=self.candidates[c]))
            res = _simulate(self.workload.replace(layers=tuple(variants)), self.accelerator).layers
            self.cycles[li] = self.energy_pj[li] = self.dram_bytes[li] = 0
            self.cycles[li, cs] = res["cycles"].to_numpy(np.int64)
            self.energy_pj[li, cs] = res["energy_pj"].to_numpy(np.float64)
            self.dram_bytes[li, cs] = res["dram_bytes"].to_numpy(np.float64)
            off = ~self.allowed[li]      # disallowed pairs cost what dense does
            self.cycles[li, off] = self.cycles[li, 0]
            self.energy_pj[li, off] = self.energy_pj[li, 0]
            self.dram_bytes[li, off] = self.dram_bytes[li, 0]

    # ------------------------------------------------------------------------------------ masks
    def gemm_mask(self, li: int, c: int) -> np.ndarray | None:
        """Candidate ``c``'s mask of layer ``li`` in GEMM layout ``(groups, k, n)``; None when dense."""
        if c == 0 or not self.allowed[li, c]:
            return None
        layer = self.workload.layers[li]
        return np.unpackbits(self._packed[(li, c)], count=int(np.prod(layer.gemm_shape))).astype(bool).reshape(
            layer.gemm_shape)

    def mask(self, li: int, c: int) -> np.ndarray | None:
        """Candidate ``c``'s mask of layer ``li`` in the parameter's own layout; None when dense."""
        gm = self.gemm_mask(li, c)
        if gm is None:
            return None
        return self.workload.layers[li].with_gemm_mask(gm).mask

    # ------------------------------------------------------------------------------------ evaluation
    def check_assignment(self, assignment) -> np.ndarray:
        """``assignment`` as an int array of candidate indices (one per layer), checked."""
        a = np.asarray(assignment)
        L = len(self.layer_names)
        if a.shape != (L,) or not np.issubdtype(a.dtype, np.integer):
            raise SearchError(f"assignment: expected {L} integer candidate indices, got shape {a.shape}, "
                              f"dtype {a.dtype}")
        bad = np.flatnonzero((a < 0) | (a >= self.allowed.shape[1]))
        if bad.size == 0:
            bad = np.flatnonzero(~self.allowed[np.arange(L), a])
        if bad.size:
            li = int(bad[0])
            raise SearchError(f"assignment: layer '{self.layer_names[li]}' cannot take candidate index {int(a[li])} "
                              f"(allowed: {[self.candidate_names[c] for c in self.options[li]]})")
        for group in self.ties:
            if np.any(a[group] != a[group[0]]):
                names = [self.layer_names[i] for i in group]
                raise SearchError(f"assignment: layers {names} use one parameter "
                                  f"'{self.workload.layers[group[0]].weight_name}' and must take one pattern, got "
                                  f"{[self.candidate_names[c] for c in a[group]]}")
        return a.astype(np.int64)

    def evaluate(self, population) -> dict[str, np.ndarray]:
        """Totals of a population, ``population``: int ``(P, L)`` candidate indices.

        Returns ``{"cycles": int64 (P,), "energy_pj": (P,), "dram_bytes": (P,)}``; one gather, no
        per-layer Python. Indices are not checked here (this is the hot path): use
        :meth:`check_assignment` on user input.
        """
        pop = np.asarray(population)
        L, C = self.allowed.shape
        out = gather_sum(self._tables4, pop.reshape(-1, L), None, C)
        return {"cycles": np.rint(out[:, 0]).astype(np.int64), "energy_pj": out[:, 1], "dram_bytes": out[:, 2]}

    def evaluate_table(self, table: np.ndarray, population) -> np.ndarray:
        """Sum of any per-(layer, candidate) ``table`` (e.g. a proxy) over a ``(P, L)`` population."""
        pop = np.asarray(population)
        L, C = self.allowed.shape
        return gather_sum(np.asarray(table, dtype=np.float64).reshape(1, L * C, 1), pop.reshape(-1, L), None, C)[:, 0]

    def totals(self, assignment) -> dict:
        """Cycles, energy_pj, dram_bytes of one assignment (exact: integer cycles summed as integers)."""
        a = self.check_assignment(assignment)
        idx = np.arange(len(a))
        return {"cycles": int(self.cycles[idx, a].sum()), "energy_pj": float(self.energy_pj[idx, a].sum()),
                "dram_bytes": float(self.dram_bytes[idx, a].sum())}

    def cost_of_mask(self, layer: str | int, mask: np.ndarray | None) -> dict:
        """Cycles, energy_pj and dram_bytes of one layer under an explicit ``mask`` (the parameter's
        own layout, as ``torch.nn.utils.prune`` holds it; None = dense), simulated now."""
        li = self.layer_index(layer)
        lay = self.workload.layers[li]
        try:
            new = lay.replace(mask=None, pattern=None) if mask is None else lay.with_mask(np.asarray(mask, dtype=bool))
        except MaskError as e:
            raise SearchError(f"cost_of_mask: {e}") from None
        row = _simulate(self.workload.replace(layers=(new,)), self.accelerator).layers.iloc[0]
        return {"cycles": int(row["cycles"]), "energy_pj": float(row["energy_pj"]),
                "dram_bytes": float(row["dram_bytes"])}

    def layer_index(self, layer: str | int) -> int:
        if isinstance(layer, (int, np.integer)):
            if not 0 <= layer < len(self.layer_names):
                raise SearchError(f"layer index {layer} out of range 0..{len(self.layer_names) - 1}")
            return int(layer)
        try:
            return self.layer_names.index(layer)
        except ValueError:
            raise SearchError(f"no layer named '{layer}' in workload '{self.workload.name}'") from None

    # ------------------------------------------------------------------------------------ assignments
    def uniform(self, pattern) -> np.ndarray:
        """The assignment giving every layer that allows it ``pattern`` (the others dense)."""
        name = str(parse_candidates([pattern])[-1])
        if name not in self.candidate_names:
            raise SearchError(f"uniform: {name} is not a candidate ({self.candidate_names})")
        c = self.candidate_names.index(name)
        return np.where(self.allowed[:, c], c, 0).astype(np.int64)

    def min_cost(self, metric: str = "cycles") -> float:
        """The least total of ``metric`` any assignment reaches."""
        t = np.where(self.allowed[self.leaders], self.var_table(self.table(metric)), np.inf)
        return float(t.min(axis=1).sum())

    def table(self, metric: str) -> np.ndarray:
        if metric not in METRICS:
            raise SearchError(f"metric: expected one of {METRICS}, got {metric!r}")
        return getattr(self, metric)

    def patterns(self, assignment) -> list[str]:
        """Per-layer pattern text of an assignment ('-' for a layer without a weight)."""
        a = self.check_assignment(assignment)
        return [self.candidate_names[c] if (l.has_weight or l.weight_layout is not None) else "-"
                for c, l in zip(a, self.workload.layers)]

    def apply(self, assignment, workload: Workload | None = None) -> Workload:
        """The workload with each layer masked by its assigned candidate."""
        a = self.check_assignment(assignment)
        wl = workload or self.workload
        if [l.name for l in wl.layers] != self.layer_names:
            raise SearchError(f"apply: workload '{wl.name}' does not have the layers the tables were built for")
        layers = []
        for li, (layer, c) in enumerate(zip(wl.layers, a)):
            gm = self.gemm_mask(li, int(c))
            if gm is None:
                layers.append(layer.replace(mask=None, pattern=None) if layer.has_weight or layer.mask is not None
                              else layer)
            else:
                layers.append(layer.with_gemm_mask(gm, self.candidates[c]))
        return wl.replace(layers=tuple(layers))

    def masks(self, assignment) -> dict[str, np.ndarray]:
        """``{parameter name: bool mask}`` in each parameter's shape, every weight layer (dense ones all True)."""
        a = self.check_assignment(assignment)
        out: dict[str, np.ndarray] = {}
        for li, (layer, c) in enumerate(zip(self.workload.layers, a)):
            if not layer.weight_name:
                continue
            m = self.mask(li, int(c))
            if m is None:
                shape = layer.weight.shape if layer.weight is not None else None
                if shape is None:
                    continue
                m = np.ones(shape, dtype=bool)
            if layer.weight_name in out and not np.array_equal(out[layer.weight_name], m):
                raise SearchError(f"masks: parameter '{layer.weight_name}' is used by several layers that were "
                                  f"assigned different masks; pin all but one of them")
            out[layer.weight_name] = m
        return out

    # ------------------------------------------------------------------------------------ choice
    def choose(self, proxy: np.ndarray, budget: float, metric: str = "cycles", method: str = "exact",
               info: dict | None = None) -> np.ndarray:
        """The assignment that maximizes the sum of ``proxy`` (``(L, C)``, higher is better) with the
        total ``metric`` at most ``budget`` (absolute units). ``method``: ``exact`` (multiple-choice
        knapsack, SciPy MILP / HiGHS) or ``greedy`` (HALP-style: best proxy loss per unit saved).
        ``info``: a dict the exact method fills with ``optimal`` (False when HiGHS hit its time limit,
        :data:`search.knapsack.TIME_LIMIT`, before proving the answer optimal) and ``gap``."""
        from .knapsack import choose_exact, choose_greedy
        proxy = np.asarray(proxy, dtype=np.float64)
        if proxy.shape != self.allowed.shape:
            raise SearchError(f"choose: proxy table has shape {proxy.shape}, expected (layers, candidates) = "
                              f"{self.allowed.shape}")
        cost = self.table(metric).astype(np.float64)
        least = self.min_cost(metric)
        if budget < least:
            raise SearchError(f"budget {budget:,.0f} {metric} is below the cheapest assignment "
                              f"({least:,.0f} {metric}, {least / self.dense_totals[metric]:.3f} x dense)")
        # one decision per variable (tied layers are one), costed over all its layers
        vp, vc, va = self.var_table(proxy), self.var_table(cost), self.allowed[self.leaders]
        if method == "exact":
            return self.expand(choose_exact(vp, vc, va, budget, info=info))
        if method == "greedy":
            return self.expand(choose_greedy(vp, vc, va, budget))
        raise SearchError(f"choose: method must be 'exact' or 'greedy', got {method!r}")

    def pareto(self, proxy: np.ndarray, metric: str = "cycles") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The complete exact front of (sum of ``proxy``, total ``metric``): every assignment no other
        beats in both, one per point (:func:`search.knapsack.pareto_front` over the variables).
        Returns ``(metric totals, proxy totals, assignments (P, L))``, cheapest first."""
        from .knapsack import pareto_front
        proxy = np.asarray(proxy, dtype=np.float64)
        if proxy.shape != self.allowed.shape:
            raise SearchError(f"pareto: proxy table has shape {proxy.shape}, expected {self.allowed.shape}")
        vp = self.var_table(np.where(self.allowed, proxy, 0.0))
        fc, fv, va = pareto_front(vp, self.var_table(self.table(metric)), self.allowed[self.leaders])
        return fc, fv, self.expand(va)
