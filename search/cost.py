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

#: Budgets at which the front of a model with coupled channel groups holds the exact choice, when
#: :meth:`HardwareCost.pareto` is given none: 46 intervals, a multiple of 23, so the 24-budget
#: ladder is among them.
COUPLED_POINTS = 47


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
                 masks_from: "HardwareCost | None" = None, extra: Mapping[str, Iterable] | None = None,
                 graph=None):
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
        self.coupling = None
        if graph is not None:
            from .coupling import Coupling
            cp = Coupling(self, graph)
            self.coupling = cp if cp.active else None
            self.uncoupled = {g: cp.reasons.get(g, grp.reason) for g, grp in enumerate(graph.groups)
                              if g not in cp.groups}
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
            if (masks_from.coupling is None) != (self.coupling is None) or (
                    self.coupling is not None and masks_from.coupling.graph is not self.coupling.graph):
                raise SearchError("HardwareCost: masks_from must have the same channel graph")
            self._packed = masks_from._packed
        #: combinations of input channel densities per layer (1 without coupling); the conditioned
        #: tables are ``(L, width)``, column ``c + C * j`` (see :mod:`search.coupling`)
        self.J = self.coupling.J if self.coupling is not None else 1
        self.width = C * self.J
        self._cond = np.zeros((L, self.width, len(METRICS)))
        self._build(progress)
        self.stacked = self._cond
        self._tables4 = np.concatenate([self.stacked.reshape(1, L * self.width, len(METRICS)),
                                        np.zeros((1, L * self.width, 1))], axis=2)
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
            cells = [(int(c), 0) for c in cs]
            if self.coupling is not None:
                variants, cells = self._coupled_variants(li, layer, cs, variants, cells)
            res = _simulate(self.workload.replace(layers=tuple(variants)), self.accelerator).layers
            cyc = res["cycles"].to_numpy(np.int64)
            en = res["energy_pj"].to_numpy(np.float64)
            dr = res["dram_bytes"].to_numpy(np.float64)
            self._cond[li] = 0.0
            for k, (c, j) in enumerate(cells):
                self._cond[li, c + C * j] = (cyc[k], en[k], dr[k])
            dense0 = self._cond[li, 0].copy()
            for j in range(self.J):      # disallowed pairs (and combinations a layer lacks) cost what dense does
                off = ~self.allowed[li] if j < self._n_combos(li) else np.ones(C, dtype=bool)
                base_j = self._cond[li, C * j] if j < self._n_combos(li) else dense0
                self._cond[li, C * j + np.flatnonzero(off)] = base_j
            self.cycles[li] = np.rint(self._cond[li, :C, 0]).astype(np.int64)
            self.energy_pj[li] = self._cond[li, :C, 1]
            self.dram_bytes[li] = self._cond[li, :C, 2]

    def _n_combos(self, li: int) -> int:
        return int(self.coupling.n_combos[li]) if self.coupling is not None else 1

    def _coupled_variants(self, li, layer, cs, variants, cells):
        """Replace the variants the coupling shrinks (a producer's channel candidate, any input
        combination but the first) and add one per further input combination."""
        cp = self.coupling
        scores = None
        out_v, out_c = [], []
        for j in range(self._n_combos(li)):
            for k, c in enumerate(cs):
                c = int(c)
                if cp.keeps(li, c, j) is None:
                    out_v.append(variants[k])
                    out_c.append((c, j))
                    continue
                key = (li, c, j)
                if key in self._packed:             # another hardware point picked it
                    small, gm = self._small(li, c, j)
                else:
                    if scores is None:
                        scores = self._score(li, layer)
                    small, gm = cp.variant(li, c, j, scores)
                    self._packed[key] = None if gm is None else np.packbits(gm.ravel())
                out_v.append(small.replace(name=f"{layer.name}#{c}.{j}", mask=gm if gm is None else
                                           small.with_gemm_mask(gm).mask, pattern=self.candidates[c]))
                out_c.append((c, j))
        return out_v, out_c

    def _small(self, li: int, c: int, j: int):
        """The shrunk layer of (layer, candidate, combination) and its GEMM mask (None: none)."""
        ks = self.coupling.keeps(li, c, j)
        from .channels import shrink_layer
        small = shrink_layer(self.workload.layers[li].replace(mask=None, pattern=None), ks[0], ks[1], depthwise=ks[2])
        packed = self._packed.get((li, c, j))
        gm = None if packed is None else np.unpackbits(packed, count=int(np.prod(small.gemm_shape))).astype(
            bool).reshape(small.gemm_shape)
        return small, gm

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
        if self.coupling is not None:
            self.coupling.check(a, self.layer_names)
        return a.astype(np.int64)

    # ------------------------------------------------------------------------------------ coupling
    def effective(self, population) -> np.ndarray:
        """Columns of the conditioned ``(L, width)`` tables a ``(P, L)`` population reads: the
        candidate itself without channel coupling, ``c + C * j`` with it (:mod:`search.coupling`)."""
        pop = np.asarray(population, dtype=np.int64)
        return pop if self.coupling is None else self.coupling.effective(pop)

    def repair(self, population) -> np.ndarray:
        """A population whose coupled channel groups decide together (their leader decides)."""
        pop = np.asarray(population, dtype=np.int64)
        return pop if self.coupling is None else self.coupling.repair(pop)

    def kept_channels(self, assignment) -> dict:
        """``{channel graph group: kept channel indices}`` of the coupled groups ``assignment`` prunes
        (for :func:`search.channels.shrink_model`); empty without coupling."""
        if self.coupling is None:
            return {}
        a = self.check_assignment(assignment)
        cp = self.coupling
        out = {}
        for i, g in enumerate(cp.groups):
            d = int(cp.lut[i, a[cp.leader[i]]])
            if d:
                out[g] = cp.kept(i, d)
        return out

    def cells(self, li: int):
        """``(column, full-size GEMM mask or None)`` of every conditioned cell of layer ``li`` that
        differs from its uncoupled candidate (a shrunk variant): the mask is False on the channels
        that cell removes. Empty without coupling."""
        if self.coupling is None:
            return
        C = self.allowed.shape[1]
        layer = self.workload.layers[li]
        for j in range(self._n_combos(li)):
            for c in self.options[li]:
                if self.coupling.keeps(li, int(c), j) is None:
                    continue
                full = self.coupling.full_mask(li, int(c), j, self._small(li, int(c), j)[1])
                yield int(c) + C * j, layer.replace(mask=full).gemm_mask()

    def table_eff(self, metric: str) -> np.ndarray:
        """``metric`` over (layer, candidate + C * input combination): ``(L, width)``."""
        if metric not in METRICS:
            raise SearchError(f"metric: expected one of {METRICS}, got {metric!r}")
        return self._cond[:, :, METRICS.index(metric)]

    def _widen(self, table: np.ndarray, what: str) -> np.ndarray:
        t = np.asarray(table, dtype=np.float64)
        L, C = self.allowed.shape
        if t.shape == (L, self.width):
            return t
        if t.shape == (L, C):
            return np.tile(t, (1, self.J))
        raise SearchError(f"{what}: table has shape {t.shape}, expected (layers, candidates) = {(L, C)}"
                          + (f" or {(L, self.width)}" if self.J > 1 else ""))

    def evaluate(self, population) -> dict[str, np.ndarray]:
        """Totals of a population, ``population``: int ``(P, L)`` candidate indices.

        Returns ``{"cycles": int64 (P,), "energy_pj": (P,), "dram_bytes": (P,)}``; one gather, no
        per-layer Python. Indices are not checked here (this is the hot path): use
        :meth:`check_assignment` on user input.
        """
        pop = np.asarray(population)
        L, C = self.allowed.shape
        out = gather_sum(self._tables4, self.effective(pop.reshape(-1, L)), None, self.width)
        return {"cycles": np.rint(out[:, 0]).astype(np.int64), "energy_pj": out[:, 1], "dram_bytes": out[:, 2]}

    def evaluate_table(self, table: np.ndarray, population) -> np.ndarray:
        """Sum of any per-(layer, candidate) ``table`` (e.g. a proxy; ``(L, C)``, or ``(L, width)``
        conditioned on the input channel densities) over a ``(P, L)`` population."""
        pop = np.asarray(population)
        L, C = self.allowed.shape
        if self.J > 1 and np.shape(table) == (L, self.width):
            return gather_sum(np.asarray(table, dtype=np.float64).reshape(1, L * self.width, 1),
                              self.effective(pop.reshape(-1, L)), None, self.width)[:, 0]
        return gather_sum(np.asarray(table, dtype=np.float64).reshape(1, L * C, 1), pop.reshape(-1, L), None, C)[:, 0]

    def totals(self, assignment) -> dict:
        """Cycles, energy_pj, dram_bytes of one assignment (exact: integer cycles summed as integers)."""
        a = self.check_assignment(assignment)
        idx = np.arange(len(a))
        e = self.effective(a[None])[0]
        t = self._cond[idx, e]
        return {"cycles": int(np.rint(t[:, 0]).astype(np.int64).sum()), "energy_pj": float(t[:, 1].sum()),
                "dram_bytes": float(t[:, 2].sum())}

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
        if self.coupling is not None:
            from .coupling import solve
            return float(self.totals(solve(self, None, metric, None, sense=1))[metric])
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
        combo = self.coupling.combo(a[None])[0] if self.coupling is not None else np.zeros(len(a), np.int64)
        for li, (layer, c) in enumerate(zip(wl.layers, a)):
            if self.coupling is not None and self.coupling.keeps(li, int(c), int(combo[li])) is not None:
                small, sgm = self._small(li, int(c), int(combo[li]))
                layers.append(small if sgm is None else small.with_gemm_mask(sgm, self.candidates[c]))
                continue
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
        combo = self.coupling.combo(a[None])[0] if self.coupling is not None else np.zeros(len(a), np.int64)
        for li, (layer, c) in enumerate(zip(self.workload.layers, a)):
            if not layer.weight_name:
                continue
            if self.coupling is not None and self.coupling.keeps(li, int(c), int(combo[li])) is not None:
                # removed channels are False, in the producer's outputs and in every consumer's inputs
                out[layer.weight_name] = self.coupling.full_mask(li, int(c), int(combo[li]),
                                                                 self._small(li, int(c), int(combo[li]))[1])
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
        if self.coupling is not None:
            return self._choose_coupled(proxy, budget, metric, method, info)
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

    def _choose_coupled(self, proxy, budget, metric, method, info):
        from .coupling import solve
        value = np.where(np.tile(self.allowed, (1, self.J)), self._widen(proxy, "choose: proxy"), 0.0)
        if method == "greedy":
            raise SearchError("choose: the greedy method costs layers independently; with coupled channel "
                              "groups use method='exact'")
        if method != "exact":
            raise SearchError(f"choose: method must be 'exact' or 'greedy', got {method!r}")
        least = self.min_cost(metric)
        if budget < least * (1 - 1e-12):
            raise SearchError(f"budget {budget:,.0f} {metric} is below the cheapest assignment "
                              f"({least:,.0f} {metric}, {least / self.dense_totals[metric]:.3f} x dense)")
        return solve(self, value, metric, max(budget, least), info=info)

    def cost_range(self, metric: str = "cycles") -> tuple[float, float]:
        """The least total ``metric`` of any assignment and the larger of dense's and the most."""
        if self.coupling is not None:
            from .coupling import solve
            hi = self.totals(solve(self, None, metric, None, sense=-1))[metric]
            return self.min_cost(metric), max(float(self.dense_totals[metric]), float(hi))
        t = self.var_table(self.table(metric))
        allowed = self.allowed[self.leaders]
        return self.min_cost(metric), max(float(t[:, 0].sum()), float(np.where(allowed, t, -np.inf).max(axis=1).sum()))

    def pareto(self, proxy: np.ndarray, metric: str = "cycles", budgets=None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The complete exact front of (sum of ``proxy``, total ``metric``): every assignment no other
        beats in both, one per point (:func:`search.knapsack.pareto_front` over the variables).
        Returns ``(metric totals, proxy totals, assignments (P, L))``, cheapest first.

        With coupled channel groups the costs are not a sum of independent per-variable columns, so
        the front is the exact choice (:func:`search.coupling.solve`) at each of ``budgets``
        (default: :data:`COUPLED_POINTS` evenly spaced over :meth:`cost_range`), its non-dominated
        points: exact at those budgets, not complete between them."""
        if self.coupling is not None:
            return self._pareto_coupled(proxy, metric, budgets)
        from .knapsack import pareto_front
        proxy = np.asarray(proxy, dtype=np.float64)
        if proxy.shape != self.allowed.shape:
            raise SearchError(f"pareto: proxy table has shape {proxy.shape}, expected {self.allowed.shape}")
        vp = self.var_table(np.where(self.allowed, proxy, 0.0))
        fc, fv, va = pareto_front(vp, self.var_table(self.table(metric)), self.allowed[self.leaders])
        return fc, fv, self.expand(va)

    def _pareto_coupled(self, proxy, metric, budgets):
        from .coupling import solve
        value = np.where(np.tile(self.allowed, (1, self.J)), self._widen(proxy, "pareto: proxy"), 0.0)
        if budgets is None:
            lo, hi = self.cost_range(metric)
            budgets = np.linspace(lo, hi, COUPLED_POINTS) * (1 + 1e-12)
        least = self.min_cost(metric)
        rows = {}
        for b in np.asarray(budgets, dtype=np.float64):
            if b < least * (1 - 1e-12):
                continue
            a = solve(self, value, metric, max(float(b), least))
            rows[a.tobytes()] = a
        A = np.array(list(rows.values()), dtype=np.int64).reshape(-1, len(self.layer_names))
        fc = self.evaluate(A)[metric].astype(np.float64)
        fv = self.evaluate_table(value, A)
        keep = [i for i in range(len(A)) if not np.any((fc <= fc[i]) & (fv >= fv[i]) & ((fc < fc[i]) | (fv > fv[i])))]
        keep = sorted(keep, key=lambda i: (fc[i], -fv[i]))
        return fc[keep], fv[keep], A[keep]
