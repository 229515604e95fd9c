"""Channel permutations: reorder a layer's input channels before N:M masks are chosen.

An N:M group is M consecutive input channels at one kernel position (the simulator's reduction
order, :mod:`workloads.layout`). Which channels share a group decides what N:M can keep, and, for
an unstructured or mixed mask on a flexible N:M engine, how many nonzeros each group holds and so
how many passes the engine needs. Permuting the input channels of a layer, and the output channels
of the layer that produces them in the same way, leaves the network's function unchanged (Pool et
al., "Channel Permutations for N:M Sparsity", NeurIPS 2021, NVIDIA ASP).

Two objectives:

* ``magnitude``: maximize the weight magnitude N:M keeps. Reported as ASP's *efficacy*,
  ``(base_lost - cur_lost) / (base_lost - optimal_lost)``, where ``lost`` is the magnitude N:M drops
  with the identity order (base) and the found order (cur), and ``optimal_lost`` is what
  unstructured pruning at the same density per output channel drops (the bound).
* ``cycles``: minimize the passes a flexible N:M engine needs for a fixed mask: per M-group, kernel
  position and block of ``block_cols`` output columns (columns that share a schedule), the most
  nonzeros any column of the block holds, ``max(1, ceil(count / N))``. The result is then checked by
  the simulator (:func:`simulated_cycles`).

The search is an iterated local search over channel swaps between groups. For the magnitude
objective the gain of every swap is one vectorized expression: removing channel ``a`` from its group
leaves a known top-N sum and N-th value per column, and adding ``b`` keeps ``max(0, |w_b| - nth)``
more. Each round applies the best non-overlapping improving swaps; at a local optimum a few random
swaps perturb the best order and the search goes on. Deterministic for a seed (a fixed number of
rounds, no wall-clock limit).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from .errors import SearchError
from .torchmask import layout_of, to_gemm_np


@dataclass(frozen=True)
class Permutation:
    """A found input-channel order and how good it is."""

    perm: np.ndarray          # new channel i is old channel perm[i]
    objective: str
    base: float               # magnitude: lost with identity; cycles: passes with identity
    found: float              # the same for ``perm``
    optimal: float            # magnitude: unstructured bound (lost); cycles: nan
    seconds: float            # wall-clock time of the search
    rounds: int
    cpu_seconds: float = float("nan")   # CPU time of this process during the search
    n: int = 0                          # the N:M pattern it was searched for (0: not recorded)
    m: int = 0

    @property
    def efficacy(self) -> float:
        """ASP's efficacy (magnitude objective): share of the gap to the unstructured bound closed."""
        gap = self.base - self.optimal
        return float((self.base - self.found) / gap) if gap > 0 else 0.0


def channel_view(gemm_w: np.ndarray, channels: int) -> np.ndarray:
    """``(groups=1, k, n)`` GEMM array with ``k = positions x channels`` (channels innermost) as
    ``(channels, positions * n)``: one row per input channel."""
    g, k, n = gemm_w.shape
    if g != 1 or k % channels:
        raise SearchError(f"channel permutation: expected one GEMM group with k a multiple of {channels}, got "
                          f"shape {gemm_w.shape}")
    pos = k // channels
    return np.ascontiguousarray(gemm_w[0].reshape(pos, channels, n).transpose(1, 0, 2).reshape(channels, pos * n))


def _check(channels: int, n: int, m: int):
    if not (1 <= n < m):
        raise SearchError(f"channel permutation: needs 1 <= N < M, got {n}:{m}")
    if channels % m or channels < 2 * m:
        raise SearchError(f"channel permutation for {n}:{m}: the layer's {channels} input channels must be a "
                          f"multiple of M and at least 2 groups")


# ---------------------------------------------------------------------------------------------- magnitude
def _group_stats(v: np.ndarray, order: np.ndarray, n: int, m: int):
    """For channels in ``order`` (groups of m), per channel: top-N sum of its group without it,
    N-th largest of its group without it; per group: current top-N sum (all per column)."""
    c, q = v.shape
    g = c // m
    grp = v[order].reshape(g, m, q)
    s = -np.sort(-grp, axis=1)                              # descending per group and column
    cur = s[:, :n].sum(axis=1)                              # (g, q)
    rank = np.argsort(np.argsort(-grp, axis=1, kind="stable"), axis=1, kind="stable")  # (g, m, q)
    top1 = s[:, : n + 1].sum(axis=1)                        # (g, q)
    in_top = rank < n
    rem_top = np.where(in_top, top1[:, None] - grp, cur[:, None])
    rem_nth = np.where(in_top, s[:, n][:, None], s[:, n - 1][:, None])
    out_top = np.empty((c, q))
    out_nth = np.empty((c, q))
    out_top[order] = rem_top.reshape(c, q)
    out_nth[order] = rem_nth.reshape(c, q)
    return out_top, out_nth, cur


def _swap_gains(v, order, n, m, rows=None, windows=None):
    """Gain of swapping channel a (every channel, or the channels in ``rows``) with every channel b,
    or of the swaps inside each row of ``windows`` (Numba kernels, :mod:`search.kernels`; no
    ``(rows, c, q)`` temporaries)."""
    from .kernels import group_stats, swap_gains, swap_gains_windows
    c, q = v.shape
    group_of = np.empty(c, dtype=np.int64)
    group_of[order] = np.arange(c) // m
    rem_top, rem_nth, cur = group_stats(v, order, n, m)      # what _group_stats gives (tests compare)
    d = (rem_top - cur[group_of]).sum(axis=1)               # (c,) loss of taking a out
    if windows is not None:
        return swap_gains_windows(v, rem_nth, d, windows, group_of), group_of
    rows = np.arange(c) if rows is None else rows
    return swap_gains(v, rem_nth, d, rows, group_of), group_of


def _retained(v, order, n, m) -> float:
    c, q = v.shape
    grp = v[order].reshape(c // m, m, q)
    return float(-np.sort(-grp, axis=1)[:, :n].sum())


def _local_search(v, order, n, m, gains_fn, value_fn, rounds, rng, kick):
    """Iterated local search over swaps; ``gains_fn(order) -> (gains (c,c), group_of)`` (higher is
    better), ``value_fn(order)`` the objective (higher is better)."""
    best = order.copy()
    best_val = value_fn(best)
    cur = order.copy()
    done = 0
    for done in range(1, rounds + 1):
        gains, group_of = gains_fn(cur)
        pos = np.argsort(cur)                 # channel -> position
        flat = np.argsort(-gains, axis=None, kind="stable")
        used = set()
        moved = 0
        for idx in flat[: 4 * v.shape[0]]:
            a, b = divmod(int(idx), gains.shape[1])
            if gains[a, b] <= 1e-12:
                break
            ga, gb = group_of[a], group_of[b]
            if ga in used or gb in used:
                continue
            used.update((ga, gb))
            cur[pos[a]], cur[pos[b]] = b, a
            moved += 1
        if moved:
            continue
        val = value_fn(cur)
        if val > best_val + 1e-12:
            best, best_val = cur.copy(), val
        cur = best.copy()                     # perturb the best order with a few random swaps
        for _ in range(kick):
            i, j = rng.choice(len(cur), 2, replace=False)
            cur[i], cur[j] = cur[j], cur[i]
    val = value_fn(cur)
    if val > best_val + 1e-12:
        best, best_val = cur, val
    return best, done


#: Largest M the pair re-grouping polishes with: its C(2M-1, M-1) splits of two groups are 35 at M = 4.
MAX_REGROUP_M = 4
#: Groups per window of the pair re-grouping on a wide layer (all pairs inside each window).
REGROUP_WINDOW = 8


def _splits(m: int) -> np.ndarray:
    """Every way to split 2m pooled channels into two groups of m (the group holding pool position
    0 first), the current split first: ``C(2m - 1, m - 1)`` rows of 2m pool positions."""
    import itertools
    rows = []
    for rest in itertools.combinations(range(1, 2 * m), m - 1):
        a = (0,) + rest
        rows.append(a + tuple(i for i in range(2 * m) if i not in a))
    return np.array(rows, dtype=np.int64)


def _regroup(v, order, n, m, rng, sweeps: int):
    """Polish ``order`` by bounded exhaustive search over pairs of groups, in the spirit of NVIDIA
    ASP's exhaustive search over small sets of stripe groups: for each pair, the best of all the
    splits of its 2m channels (a swap search sees only m^2 of them); the best non-overlapping
    improvements are applied, and sweeps repeat until none improves. A layer of more than
    ``REGROUP_WINDOW`` groups pairs groups inside random windows of that many (new each sweep)."""
    from .kernels import pair_regroup
    order = order.copy()
    g = len(order) // m
    parts = _splits(m)
    for _ in range(sweeps):
        if g <= REGROUP_WINDOW:
            wins = [np.arange(g)]
        else:
            perm = rng.permutation(g)
            wins = [perm[i:i + REGROUP_WINDOW] for i in range(0, g, REGROUP_WINDOW)]
        pairs = np.array([(w[i], w[j]) for w in wins for i in range(len(w)) for j in range(i + 1, len(w))],
                         dtype=np.int64).reshape(-1, 2)
        gain, choice = pair_regroup(v, order, pairs, parts, n, m)
        used = set()
        moved = 0
        for t in np.argsort(-gain, kind="stable"):
            if gain[t] <= 1e-12:
                break
            ga, gb = int(pairs[t, 0]), int(pairs[t, 1])
            if ga in used or gb in used:
                continue
            used.update((ga, gb))
            pool = np.concatenate([order[ga * m:(ga + 1) * m], order[gb * m:(gb + 1) * m]])
            new = pool[parts[choice[t]]]
            order[ga * m:(ga + 1) * m], order[gb * m:(gb + 1) * m] = new[:m], new[m:]
            moved += 1
        if not moved and g <= REGROUP_WINDOW:
            break
    return order


def permute_magnitude(gemm_w: np.ndarray, channels: int, n: int, m: int, rounds: int = 20, seed: int = 0,
                      sample: int = 32, regroup: bool = False) -> Permutation:
    """Input-channel order that maximizes the magnitude N:M keeps (see module docstring). Layers with
    more than ``2 * sample`` channels evaluate, each round, the swaps inside random windows of
    ``sample`` channels (every channel is in one window; a new partition each round), all pairs
    otherwise: all channels move every round at a ``sample / channels`` share of the all-pairs cost."""
    _check(channels, n, m)
    t0, c0 = time.perf_counter(), time.process_time()
    v = np.abs(channel_view(np.asarray(gemm_w, dtype=np.float64), channels))
    total = float(v.sum())
    ident = np.arange(channels)
    base_lost = total - _retained(v, ident, n, m)
    # bound: unstructured at the same density per output channel (each GEMM column keeps N/M of k)
    gk = np.abs(np.asarray(gemm_w, dtype=np.float64))[0]
    keep = int(np.floor(gk.shape[0] * n / m + 0.5))
    opt_lost = total - float(-np.sort(-gk, axis=0)[:keep].sum())
    rng = np.random.default_rng(seed)

    def gains(o):
        if channels <= 2 * sample:
            return _swap_gains(v, o, n, m)
        w = max(2 * m, sample)
        perm = rng.permutation(channels)
        return _swap_gains(v, o, n, m, windows=perm[: channels // w * w].reshape(-1, w))
    best, r = _local_search(v, ident.copy(), n, m, gains,
                            lambda o: _retained(v, o, n, m), rounds, rng, kick=max(2, channels // (4 * m)))
    if regroup and m <= MAX_REGROUP_M:
        best = _regroup(v, best, n, m, rng, sweeps=rounds)
    cur_lost = total - _retained(v, best, n, m)
    if not cur_lost < base_lost:          # never keep an order that retains no more than the identity
        best, cur_lost = ident, base_lost
    return Permutation(best, "magnitude", base_lost, cur_lost, opt_lost, time.perf_counter() - t0, r,
                       time.process_time() - c0, n, m)


# ---------------------------------------------------------------------------------------------- cycles
def _passes(cnt, n):
    return np.maximum(1, -(-cnt // n))


def _cycle_value(b, order, n, m, pos, cols, bw):
    """Minus (sum of per-(group, position, block) worst passes) minus a small balance term."""
    c = b.shape[0]
    cnt = b[order].reshape(c // m, m, pos, cols).sum(axis=1)            # (g, pos, cols)
    nb = -(-cols // bw)
    padded = np.zeros(cnt.shape[:2] + (nb * bw,), dtype=cnt.dtype)
    padded[..., :cols] = cnt
    worst = _passes(padded.reshape(cnt.shape[:2] + (nb, bw)), n).max(axis=3).sum()
    return -float(worst) - 1e-4 * float(np.square(cnt).sum())


def _cycle_gains(b, order, n, m, pos, cols, bw, rng, sample):
    """Gain (higher is better) of swapping channel a (a sample of rows) with every other channel."""
    c = b.shape[0]
    g = c // m
    group_of = np.empty(c, dtype=np.int64)
    group_of[order] = np.arange(c) // m
    cnt = b[order].reshape(g, m, pos, cols).sum(axis=1).astype(np.int32)   # (g, pos, cols)
    nb = -(-cols // bw)

    def block_cost(x):   # x (..., pos, cols) -> (...,) worst passes per block summed + balance
        pad = np.zeros(x.shape[:-1] + (nb * bw,), dtype=x.dtype)
        pad[..., :cols] = x
        w = _passes(pad.reshape(x.shape[:-1] + (nb, bw)), n).max(axis=-1).sum(axis=(-1, -2))
        return w + 1e-4 * np.square(x).sum(axis=(-1, -2))

    base = block_cost(cnt)                                   # (g,)
    bb = b.reshape(c, pos, cols).astype(np.int32)
    rows = np.arange(c) if sample >= c else np.sort(rng.choice(c, sample, replace=False))
    gains = np.full((c, c), -np.inf)
    for a in rows:
        ga = group_of[a]
        # group of a: loses a, gains b (every b)
        new_a = cnt[ga][None] - bb[a][None] + bb                          # (c, pos, cols)
        new_b = cnt[group_of] - bb + bb[a][None]                          # (c, pos, cols)
        gains[a] = base[ga] + base[group_of] - block_cost(new_a) - block_cost(new_b)
    gains[group_of[:, None] == group_of[None, :]] = -np.inf
    return gains, group_of


def permute_cycles(gemm_mask: np.ndarray, channels: int, n: int, m: int, block_cols: int, rounds: int = 40,
                   seed: int = 0, sample: int = 64) -> Permutation:
    """Input-channel order that minimizes the N:M passes a flexible engine needs for a fixed mask
    (the mask moves with its weights). ``block_cols``: output columns sharing one schedule (the
    array's columns for weight-stationary)."""
    _check(channels, n, m)
    t0, c0 = time.perf_counter(), time.process_time()
    b = channel_view(np.asarray(gemm_mask, dtype=np.int32), channels)
    cols = gemm_mask.shape[2]
    pos = b.shape[1] // cols
    rng = np.random.default_rng(seed)
    ident = np.arange(channels)
    value = lambda o: _cycle_value(b, o, n, m, pos, cols, block_cols)   # noqa: E731
    best, r = _local_search(b, ident.copy(), n, m,
                            lambda o: _cycle_gains(b, o, n, m, pos, cols, block_cols, rng, sample),
                            value, rounds, rng, kick=max(2, channels // (4 * m)))
    return Permutation(best, "cycles", -value(ident), -value(best), float("nan"), time.perf_counter() - t0, r,
                       time.process_time() - c0)


def apply_to_gemm(gemm: np.ndarray, channels: int, perm: np.ndarray) -> np.ndarray:
    """A ``(1, k, n)`` GEMM array with its input channels reordered (new channel i = old perm[i])."""
    g, k, n = gemm.shape
    pos = k // channels
    return np.ascontiguousarray(gemm.reshape(g, pos, channels, n)[:, :, perm, :].reshape(g, k, n))


# ---------------------------------------------------------------------------------------------- models
_PASS_THROUGH_MODULES = (nn.ReLU, nn.ReLU6, nn.GELU, nn.MaxPool2d, nn.AvgPool2d, nn.Dropout, nn.Identity,
                         nn.BatchNorm2d, nn.BatchNorm1d)
_PASS_THROUGH_FUNCS = {"relu", "relu6", "gelu", "max_pool2d", "avg_pool2d", "dropout"}


def producer_pairs(model: nn.Module) -> dict[str, tuple[str, list[str]]]:
    """``{consumer module: (producer module, [per-channel modules between])}`` for every Conv2d /
    Linear whose input comes from one other Conv2d / Linear through channel-wise ops only (ReLU,
    pooling, dropout, batch norm), the producer's output feeding nothing else. Only these layers can
    be permuted without changing the function (found with ``torch.fx``)."""
    import torch.fx as fx
    try:
        gm = fx.symbolic_trace(model)
    except Exception as e:  # noqa: BLE001 - fx raises many types on dynamic control flow
        raise SearchError(f"channel permutation: torch.fx cannot trace the model ({type(e).__name__}: {e})") from None
    mods = dict(gm.named_modules())
    out = {}
    for node in gm.graph.nodes:
        if node.op != "call_module" or not isinstance(mods[node.target], (nn.Conv2d, nn.Linear)):
            continue
        if isinstance(mods[node.target], nn.Conv2d) and mods[node.target].groups != 1:
            continue
        between = []
        src = node.args[0]
        while isinstance(src, fx.Node) and len(src.users) == 1:
            if src.op == "call_module" and isinstance(mods[src.target], (nn.Conv2d, nn.Linear)):
                p = mods[src.target]
                if not (isinstance(p, nn.Conv2d) and p.groups != 1):
                    out[node.target] = (src.target, between)
                break
            if src.op == "call_module" and isinstance(mods[src.target], _PASS_THROUGH_MODULES):
                if isinstance(mods[src.target], (nn.BatchNorm2d, nn.BatchNorm1d)):
                    between.append(src.target)
            elif not (src.op in ("call_function", "call_method")
                      and getattr(src.target, "__name__", str(src.target)) in _PASS_THROUGH_FUNCS):
                break
            src = src.args[0]
    return out


def apply_to_model(model: nn.Module, consumer: str, perm: np.ndarray, pairs: dict | None = None) -> None:
    """Reorder ``consumer``'s input channels by ``perm`` and its producer's output channels (weight,
    bias, batch norms in between) the same way: the model computes the same function."""
    pairs = producer_pairs(model) if pairs is None else pairs
    if consumer not in pairs:
        raise SearchError(f"channel permutation: layer '{consumer}' has no single Conv2d/Linear producer "
                          f"reached through channel-wise ops; permutable layers: {sorted(pairs) or 'none'}")
    prod_name, between = pairs[consumer]
    idx = torch.as_tensor(np.asarray(perm), dtype=torch.long)
    cons, prod = model.get_submodule(consumer), model.get_submodule(prod_name)
    with torch.no_grad():
        cons.weight.copy_(cons.weight[:, idx])
        prod.weight.copy_(prod.weight[idx])
        if prod.bias is not None:
            prod.bias.copy_(prod.bias[idx])
        for name in between:
            bn = model.get_submodule(name)
            for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
                if t is not None:
                    t.copy_(t[idx])


def permute_model(model: nn.Module, n: int, m: int, rounds: int = 20, seed: int = 0) -> dict[str, Permutation]:
    """Permute (magnitude objective, N:M) every layer of ``model`` that can be permuted; in place.
    Returns ``{consumer module: Permutation}``; layers whose channels do not fit N:M groups are skipped."""
    pairs = producer_pairs(model)
    found = {}
    for consumer in pairs:
        mod = model.get_submodule(consumer)
        layout_of(mod)
        channels = mod.weight.shape[1]
        if channels % m or channels < 2 * m:
            continue
        p = permute_magnitude(to_gemm_np(mod.weight, mod), channels, n, m, rounds=rounds, seed=seed)
        apply_to_model(model, consumer, p.perm, pairs)
        found[consumer] = p
    return found


def permute_for_patterns(model: nn.Module, patterns: dict, rounds: int = 20, seed: int = 0) -> dict[str, Permutation]:
    """Permute, in place, each permutable layer for the N:M pattern it takes (``patterns``: ``{module
    name: pattern}``, e.g. a sparsifier's choice), magnitude objective. A layer is left as it is when
    its pattern is not N:M (N < M), when its channels do not fill two N:M groups, when its producer's
    pattern is not dense or N:M (reordering the producer's outputs would move the columns of an
    unstructured, block or channel mask between folds and change its cost; N:M and dense costs do not
    move), or when no order keeps more magnitude than the identity. Returns ``{consumer: Permutation}``
    for the layers searched (identity included when nothing better was found)."""
    from workloads import NM as _NM
    from workloads import Dense, parse_pattern
    pairs = producer_pairs(model)
    found = {}
    for consumer, (producer, _) in pairs.items():
        p = parse_pattern(patterns.get(consumer, "dense"))
        if not isinstance(p, _NM) or p.n >= p.m:
            continue
        q = parse_pattern(patterns.get(producer, "dense"))
        if not isinstance(q, (Dense, _NM)):
            continue
        mod = model.get_submodule(consumer)
        channels = mod.weight.shape[1]
        if channels % p.m or channels < 2 * p.m:
            continue
        perm = permute_magnitude(to_gemm_np(mod.weight, mod), channels, p.n, p.m, rounds=rounds, seed=seed)
        if perm.found < perm.base:
            apply_to_model(model, consumer, perm.perm, pairs)
        found[consumer] = perm
    return found


def simulated_cycles(layer, gemm_mask: np.ndarray, accelerator) -> int:
    """Cycles of a traced ``layer`` under ``gemm_mask`` (GEMM layout) on ``accelerator``, by the simulator."""
    from simulator import DATAFLOWS
    from simulator.engine import simulate_layer
    lay = layer.with_gemm_mask(gemm_mask)
    return int(simulate_layer(lay, accelerator, DATAFLOWS[accelerator.compute.dataflow])["cycles"])
