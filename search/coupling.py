"""Channel coupling in the cost tables: ``channel:D`` on a producer shrinks its consumers.

With a :class:`search.channels.ChannelGraph`, a :class:`search.HardwareCost` costs channel pruning as
the physically smaller model runs it (Torch-Pruning's dependency groups):

* **Groups decide together.** A prunable group's producers (the convs that meet in a residual add,
  say) take a channel candidate together or not at all: the group's *leader* (its first producer)
  decides, the others follow (:meth:`Coupling.repair`), and the same channels go, chosen on the
  sum over the producers of each output channel's L2 norm (for one producer exactly the channels
  ``channel:D`` picks on its own). A depthwise conv the channels pass through takes no channel
  candidate of its own: it shrinks with its group.
* **Consumers are costed conditioned on their input groups.** Layer ``l``'s cost is a table over
  (its own candidate ``c``, the combination ``j`` of its input groups' densities): the producer's
  output channels, the consumer's input channels (a flatten: ``factor`` features each; a
  concatenation: each segment its own group's) and a depthwise conv's channels are removed from the
  traced layer (:func:`search.channels.shrink_layer`, the shapes the smaller model traces to), the
  layer's own pattern is picked on what is left, and the simulator costs the result. Column
  ``c + C * j`` of the ``(L, C * J)`` tables is that entry; ``j = 0`` (no input channel removed) is
  the uncoupled table. An assignment's cost is still one gather, at the effective columns
  (:meth:`Coupling.effective`), and equals ``simulate`` of :meth:`HardwareCost.apply` exactly.
* **The exact choice** is a MILP (SciPy ``milp``/HiGHS): binaries ``x[v, c]`` per decision variable
  and candidate, and for every conditioned layer continuous ``w[l, c, j]`` whose marginals are tied
  to ``x`` of the layer and ``x`` of each input group's leader (``sum_j w[l, c, j] = x[l, c]``;
  ``sum_{c, j: digit_g(j) = d} w[l, c, j] = x[leader_g, col_d]``). With one-hot integral marginals
  the only feasible ``w`` is their product, so the linearization is exact, without big-M.
"""
from __future__ import annotations

import numpy as np

from workloads import Channel, WeightLayout
from workloads.layout import from_gemm, to_gemm
from workloads.patterns import _keep_count, _top_flat

from .channels import ChannelGraph, input_keep, shrink_layer
from .errors import SearchError

#: Most input-density combinations one layer is costed for; a layer reading more (a concatenation
#: of many prunable groups) leaves its later groups uncoupled (each group's reason says so).
MAX_COMBOS = 64


class Coupling:
    """The coupled groups of one :class:`search.HardwareCost` (built by it; restricts its ``allowed``)."""

    def __init__(self, cost, graph: ChannelGraph):
        if not isinstance(graph, ChannelGraph):
            raise SearchError(f"HardwareCost graph: expected a search.channels.ChannelGraph, got "
                              f"{type(graph).__name__}")
        self.graph = graph
        wl = cost.workload
        L, C = cost.allowed.shape
        self.C = C
        chan_cols = [c for c, p in enumerate(cost.candidates) if isinstance(p, Channel)]
        tied = {int(li) for grp in cost.ties for li in grp}
        self.groups: list[int] = []          # graph group indices that are coupled here
        self.cols: list[list[int]] = []      # their channel columns (digit d -> cols[d - 1])
        self.reasons: dict[int, str] = {}    # graph group -> why it is not coupled
        for g, grp in enumerate(graph.groups):
            if not grp.prunable:
                continue
            if any(l >= L or wl.layers[l].weight is None for l in grp.producers + grp.consumers):
                self.reasons[g] = "a member layer has no weight values"
                continue
            if tied & set(grp.producers + grp.consumers):
                self.reasons[g] = "a member layer shares its weight with another use"
                continue
            cols = [c for c in chan_cols if cost.allowed[list(grp.producers), c].all()]
            if not cols:
                continue
            self.groups.append(g)
            self.cols.append(cols)
        # layers' input groups; a layer over MAX_COMBOS combinations drops its later groups
        self.inputs: dict[int, list[int]] = {}
        dropped = True
        while dropped:
            dropped = False
            pos = {g: i for i, g in enumerate(self.groups)}
            self.inputs = {}
            for li, ci in graph.inputs.items():
                gs = list(dict.fromkeys(pos[g] for g, _ in ci.segments if g in pos))
                combos = 1
                for i, gi in enumerate(gs):
                    combos *= 1 + len(self.cols[gi])
                    if combos > MAX_COMBOS:
                        g = self.groups[gi]
                        self.reasons[g] = (f"layer '{wl.layers[li].name}' reads more than {MAX_COMBOS} "
                                           f"combinations of channel densities")
                        del self.groups[gi], self.cols[gi]
                        dropped = True
                        break
                if dropped:
                    break
                if gs:
                    self.inputs[li] = gs
        G = len(self.groups)
        self.leader = np.array([graph.groups[g].producers[0] for g in self.groups], dtype=np.int64)
        self.lut = np.zeros((G, C), dtype=np.int64)       # column -> digit (0: keeps every channel)
        for i, cols in enumerate(self.cols):
            self.lut[i, cols] = np.arange(1, len(cols) + 1)
        self.producer_of = {li: i for i, g in enumerate(self.groups) for li in graph.groups[g].producers}
        self.passes = {li for g in self.groups for li in graph.groups[g].passes}
        # restrict the candidates: a group's producers take only the channel columns all of them
        # allow; a depthwise layer the channels pass through takes none of its own
        for li, i in self.producer_of.items():
            bad = [c for c in chan_cols if c not in self.cols[i]]
            cost.allowed[li, bad] = False
        for li in self.passes:
            cost.allowed[li, chan_cols] = False
        self.radix: dict[int, np.ndarray] = {}
        self.n_combos = np.ones(L, dtype=np.int64)
        for li, gs in self.inputs.items():
            sizes = np.array([1 + len(self.cols[i]) for i in gs], dtype=np.int64)
            self.radix[li] = np.concatenate([[1], np.cumprod(sizes)[:-1]]).astype(np.int64)
            self.n_combos[li] = int(np.prod(sizes))
        self.J = int(self.n_combos.max()) if L else 1
        self._kept: dict[tuple[int, int], np.ndarray] = {}
        self._cost = cost

    @property
    def active(self) -> bool:
        return bool(self.groups)

    # ----------------------------------------------------------------------------------- digits
    def digits_of(self, li: int, j: int) -> list[tuple[int, int]]:
        """``[(coupled group position, digit)]`` of combination ``j`` of layer ``li``'s inputs."""
        gs = self.inputs.get(li, [])
        out = []
        for i, r in zip(gs, self.radix.get(li, [])):
            out.append((i, int(j // r) % (1 + len(self.cols[i]))))
        return out

    def combo(self, pop: np.ndarray) -> np.ndarray:
        """``(P, L)`` combination index of every layer's input densities."""
        pop = np.asarray(pop, dtype=np.int64)
        out = np.zeros(pop.shape, dtype=np.int64)
        if not self.groups:
            return out
        d = self.lut[np.arange(len(self.groups))[None, :], pop[:, self.leader]]   # (P, G)
        for li, gs in self.inputs.items():
            out[:, li] = d[:, gs] @ self.radix[li]
        return out

    def effective(self, pop: np.ndarray) -> np.ndarray:
        """Columns of the ``(L, C * J)`` tables that ``pop`` ``(P, L)`` reads."""
        pop = np.asarray(pop, dtype=np.int64)
        return pop + self.C * self.combo(pop)

    def repair(self, pop: np.ndarray) -> np.ndarray:
        """Group members follow their leader's channel choice: its channel column when it takes one,
        else no channel column (a member's own channel choice becomes dense)."""
        pop = np.array(pop, dtype=np.int64, copy=True)
        for i, g in enumerate(self.groups):
            lead = pop[:, self.leader[i]]
            on = self.lut[i, lead] > 0
            for p in self.graph.groups[g].producers[1:]:
                mine = pop[:, p]
                pop[:, p] = np.where(on, lead, np.where(self.lut[i, mine] > 0, 0, mine))
        return pop

    def check(self, a: np.ndarray, names) -> None:
        for i, g in enumerate(self.groups):
            prods = self.graph.groups[g].producers
            d = self.lut[i, a[list(prods)]]
            if np.any(d != d[0]) or (d[0] > 0 and np.any(a[list(prods)] != a[prods[0]])):
                raise SearchError(f"assignment: layers {[names[p] for p in prods]} write channels that meet "
                                  f"(a residual add) and must take one channel candidate together, got "
                                  f"{[self._cost.candidate_names[c] for c in a[list(prods)]]}")

    # ----------------------------------------------------------------------------------- channels
    def kept(self, i: int, digit: int) -> np.ndarray | None:
        """Channels coupled group ``i`` keeps at ``digit`` (None: all)."""
        if digit == 0:
            return None
        key = (i, digit)
        if key not in self._kept:
            cost = self._cost
            pattern = cost.candidates[self.cols[i][digit - 1]]
            norms = None
            for li in self.graph.groups[self.groups[i]].producers:
                s = cost._score(li, cost.workload.layers[li]).astype(np.float64)
                nrm = np.sqrt(np.square(s).sum(axis=1)).reshape(-1)          # (groups * n,), Channel.mask's
                norms = nrm if norms is None else norms + nrm
            keep = _top_flat(norms, _keep_count(pattern.density, norms.size))
            self._kept[key] = np.flatnonzero(keep)
        return self._kept[key]

    def keeps(self, li: int, c: int, j: int):
        """``(keep_in, keep_out, depthwise)`` of layer ``li`` at candidate ``c``, combination ``j``
        (None: that side keeps everything); ``None`` when the layer is not shrunk at all."""
        kept = {self.groups[i]: self.kept(i, d) for i, d in self.digits_of(li, j) if d}
        keep_in = input_keep(self.graph.inputs[li], kept) if kept else None
        keep_out = None
        i = self.producer_of.get(li)
        if i is not None and self.lut[i, c] > 0:
            keep_out = self.kept(i, int(self.lut[i, c]))
        if keep_in is None and keep_out is None:
            return None
        return keep_in, keep_out, li in self.passes

    def variant(self, li: int, c: int, j: int, scores: np.ndarray | None):
        """The shrunk layer (unmasked) and its GEMM mask under candidate ``c`` (None: dense or a
        channel candidate, which the shrinking itself carries out); None when not shrunk."""
        ks = self.keeps(li, c, j)
        if ks is None:
            return None
        keep_in, keep_out, dw = ks
        layer = self._cost.workload.layers[li].replace(mask=None, pattern=None)
        small = shrink_layer(layer, keep_in, keep_out, depthwise=dw)
        if c == 0 or (self.producer_of.get(li) is not None and self.lut[self.producer_of[li], c] > 0):
            return small, None
        from .masks import pick
        s = _restrict(layer, small, scores, keep_in, keep_out, dw)
        return small, pick(self._cost.candidates[c], s)

    def full_mask(self, li: int, c: int, j: int, small_gemm_mask: np.ndarray | None) -> np.ndarray:
        """The mask in the full parameter's layout: False on removed channels, the small layer's
        mask (or all True) on the rest."""
        keep_in, keep_out, dw = self.keeps(li, c, j)
        layer = self._cost.workload.layers[li]
        full = np.zeros(layer.weight.shape, dtype=bool)
        small = shrink_layer(layer.replace(mask=None, pattern=None), keep_in, keep_out, depthwise=dw)
        part = np.ones(small.weight.shape, dtype=bool) if small_gemm_mask is None else \
            from_gemm(small_gemm_mask, small.weight_layout, small.weight.shape)
        if dw:
            full[np.arange(full.shape[0]) if keep_in is None else keep_in] = part
            return full
        ko = np.arange(full.shape[0]) if keep_out is None else keep_out
        ki = np.arange(full.shape[1]) if keep_in is None else keep_in
        full[np.ix_(ko, ki)] = part
        return full


def _restrict(layer, small, scores, keep_in, keep_out, dw):
    """``scores`` (the full layer's GEMM layout) restricted to the small layer's weights."""
    p = from_gemm(np.asarray(scores), layer.weight_layout, layer.weight.shape)
    if dw:
        p = p[keep_in]
    else:
        if keep_out is not None:
            p = p[keep_out]
        if keep_in is not None:
            p = p[:, keep_in]
    return np.ascontiguousarray(to_gemm(np.ascontiguousarray(p), small.weight_layout, small.groups))


# ----------------------------------------------------------------------------------------- exact choice
class _quiet:
    """Silence file descriptor 1 while HiGHS runs: some HiGHS builds print a debug line
    (``HighsMipSolverData::transformNewIntegerFeasibleSolution``) on stdout whatever ``disp`` says."""

    def __enter__(self):
        import os
        import sys
        sys.stdout.flush()
        try:
            self.saved = os.dup(1)
        except OSError:
            self.saved = None
            return self
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
        return self

    def __exit__(self, *exc):
        import os
        if self.saved is not None:
            os.dup2(self.saved, 1)
            os.close(self.saved)
        return False


def solve(cost, value: np.ndarray, metric: str, budget: float | None, sense: int = 1,
          time_limit: float | None = None, info: dict | None = None) -> np.ndarray:
    """The exact assignment of a coupled ``cost``: with ``budget``, the best total ``value``
    (``(L, C * J)``) whose total ``metric`` is within it; without, the least (``sense=1``) or the
    most (``sense=-1``) total ``metric``. A MILP (see the module docstring); ``info`` gets
    ``optimal`` and ``gap`` as :func:`search.knapsack.choose_exact` gives them."""
    from scipy.optimize import LinearConstraint
    from scipy.optimize import milp as _milp
    from scipy.sparse import coo_array
    from .knapsack import TIME_LIMIT
    cp: Coupling = cost.coupling
    L, C = cost.allowed.shape
    W = C * cp.J
    table = cost.table_eff(metric)
    value = np.zeros((L, W)) if value is None else np.asarray(value, dtype=np.float64)
    leaders = cost.leaders
    V = len(leaders)
    # x variables: (v, c) allowed on the variable's leader
    xv, xc = np.nonzero(cost.allowed[leaders])
    xid = -np.ones((V, C), dtype=np.int64)
    xid[xv, xc] = np.arange(xv.size)
    n = xv.size
    obj_v = np.zeros(n)
    obj_c = np.zeros(n)
    cond = [li for li in range(L) if cp.n_combos[li] > 1]
    plain = np.ones(L, dtype=bool)
    plain[cond] = False
    # plain layers: their j = 0 entries, summed per variable
    for li in np.flatnonzero(plain):
        v = cost.var_of[li]
        for c in cost.options[li]:
            obj_v[xid[v, c]] += value[li, c]
            obj_c[xid[v, c]] += table[li, c]
    rows, cols, vals, lo, hi = [], [], [], [], []
    r = 0
    for v in range(V):                          # one candidate per variable
        ids = xid[v][xid[v] >= 0]
        rows += [r] * len(ids); cols += list(ids); vals += [1.0] * len(ids); lo.append(1); hi.append(1); r += 1
    wv, wc, wcol = [], [], []
    for li in cond:
        v = cost.var_of[li]
        base = n + len(wv)
        opts = list(cost.options[li])
        J = int(cp.n_combos[li])
        for c in opts:
            for j in range(J):
                wv.append(value[li, c + C * j])
                wc.append(table[li, c + C * j])
        idx = {(c, j): base + k * J + j for k, c in enumerate(opts) for j in range(J)}
        for c in opts:                          # sum_j w[l, c, j] = x[v, c]
            rows += [r] * (J + 1); cols += [idx[c, j] for j in range(J)] + [xid[v, c]]
            vals += [1.0] * J + [-1.0]; lo.append(0); hi.append(0); r += 1
        digits = [cp.digits_of(li, j) for j in range(J)]
        for pos, i in enumerate(cp.inputs[li]):     # each input group's density follows its leader
            lv = cost.var_of[cp.leader[i]]
            for d in range(1, 1 + len(cp.cols[i])):
                cells = [idx[c, j] for c in opts for j in range(J) if digits[j][pos][1] == d]
                rows += [r] * (len(cells) + 1); cols += cells + [xid[lv, cp.cols[i][d - 1]]]
                vals += [1.0] * len(cells) + [-1.0]; lo.append(0); hi.append(0); r += 1
    for i, g in enumerate(cp.groups):           # group members take the leader's channel column
        lv = cost.var_of[cp.leader[i]]
        for p in cp.graph.groups[g].producers[1:]:
            pv = cost.var_of[p]
            for col in cp.cols[i]:
                rows += [r, r]; cols += [xid[pv, col], xid[lv, col]]; vals += [1.0, -1.0]
                lo.append(0); hi.append(0); r += 1
    N = n + len(wv)
    cvec_v = np.concatenate([obj_v, np.array(wv)])
    cvec_c = np.concatenate([obj_c, np.array(wc)])
    A = coo_array((vals, (rows, cols)), shape=(r, N)).tocsr()
    cons = [LinearConstraint(A, np.array(lo, float), np.array(hi, float))]
    integ = np.concatenate([np.ones(n), np.zeros(N - n)])
    bounds = (np.zeros(N), np.ones(N))
    opts = {"disp": False, "mip_rel_gap": 0.0, "time_limit": float(time_limit or TIME_LIMIT)}

    def milp(**kw):
        with _quiet():
            return _milp(**kw)

    def decode(x):
        a_v = np.zeros(V, dtype=np.int64)
        on = x[:n] > 0.5
        a_v[xv[on]] = xc[on]
        return cost.expand(a_v)

    if budget is None:
        res = milp(c=sense * cvec_c, integrality=integ, bounds=bounds, constraints=cons, options=opts)
        if res.x is None:
            raise SearchError(f"coupled channel costs: the solver found no assignment ({res.message})")
        return decode(res.x)
    scale = float(budget) if budget > 0 else 1.0
    for slack in (0.0, 1e-9, 1e-7, 1e-5, 1e-3):
        bc = cons + [LinearConstraint((cvec_c / scale)[None, :], -np.inf, 1.0 - slack)]
        res = milp(c=-cvec_v, integrality=integ, bounds=bounds, constraints=bc, options=opts)
        if res.x is None:
            break
        a = decode(res.x)
        if cost.totals(a)[metric] <= budget:
            if info is not None:
                bound = -getattr(res, "mip_dual_bound", np.nan)
                got = float(cost.evaluate_table(value, a[None])[0])
                gap = 0.0 if res.status == 0 else (float((bound - got) / abs(bound)) if np.isfinite(bound) and bound
                                                   else float("nan"))
                info.update(optimal=res.status == 0, gap=gap)
            return a
    raise SearchError(f"budget {budget:,.0f}: the exact solver found no assignment within it "
                      f"({getattr(res, 'message', '')})")
