"""Issue 23: exact Pareto fronts, tied weights, pattern round-trip, layer coverage, permutations for the
chosen pattern, `sparsim prune` on a user model."""
import itertools
import pathlib

import numpy as np
import pytest
import torch
import torch.nn as nn

import accel
import sparsim
from search import HardwareCost, SearchError
from search.algorithms import Problem, budget_range, exact_front, ladder
from search.knapsack import pareto_front
from search.proxies import Proxy
from simulator import simulate


# ------------------------------------------------------------------------------------------ exact fronts
@pytest.mark.parametrize("trial", range(6))
def test_pareto_front_is_every_nondominated_total(trial):
    rng = np.random.default_rng(trial)
    L, C = 5, 4
    value = rng.random((L, C)).round(2)          # rounded: ties in value and in cost are exercised
    cost = rng.integers(1, 9, (L, C)).astype(float)
    allowed = rng.random((L, C)) < 0.7
    allowed[:, 0] = True
    fc, fv, A = pareto_front(value, cost, allowed)
    rows = np.arange(L)
    pts = []
    for a in itertools.product(*[np.flatnonzero(r) for r in allowed]):
        a = np.array(a)
        pts.append((cost[rows, a].sum(), value[rows, a].sum()))
    pts = np.array(pts)
    nd = sorted({(c, v) for c, v in pts if not np.any((pts[:, 0] <= c) & (pts[:, 1] >= v)
                                                      & ((pts[:, 0] < c) | (pts[:, 1] > v)))})
    got = list(zip(fc, fv))
    assert len(got) == len(nd)
    assert np.allclose(np.array(got), np.array(nd), atol=1e-9)
    for c, v, a in zip(fc, fv, A):           # each point's assignment has that point's totals
        assert allowed[rows, a].all()
        assert cost[rows, a].sum() == pytest.approx(c) and value[rows, a].sum() == pytest.approx(v)


def _front_gap(res, cost, ptable, budgets):
    """max over budgets of (exact best proxy within b) - (front's best proxy within b)."""
    gaps = []
    for b in budgets:
        a = cost.choose(ptable, b, metric="cycles")          # the MILP, an independent exact solver
        exact = float(ptable[np.arange(len(a)), a].sum())
        ok = res.front[res.front.cycles <= b]
        gaps.append(exact - (ok.proxy.max() if len(ok) else -np.inf))
    return np.array(gaps)


def test_front_is_no_worse_than_the_exact_choice_at_24_budgets():
    """Before: NSGA-II alone left the front up to several hundredths of proxy below the exact choice."""
    wl = sparsim.trace_zoo("resnet18")
    res = sparsim.search(wl, "vegeta-flex", objective="pareto", evals=300, seed=1)
    cost, _ = res.cost_of(0)
    ptable = Proxy("magnitude", wl).table(cost)
    budgets = ladder(*budget_range(cost, "cycles"), 24)
    gaps = _front_gap(res, cost, ptable, budgets)
    assert np.all(gaps <= 1e-12), gaps.max()
    assert res.info["exact_points"] >= 24


@pytest.mark.slow
def test_pareto_budget_masks_equal_the_latency_choice():
    """Before: the Pareto search wrote its best front point within the budget, below the exact choice.
    On the same table (no allocation baselines as extra candidates) the masks are the latency choice's;
    with them (the default) the point is at least as good."""
    from search.run import run_search
    wl = sparsim.trace_zoo("resnet18")
    acc = accel.load("vegeta-flex")
    kw = dict(candidates="dense,2:4,1:4,unstructured:0.5,unstructured:0.3", evals=200, seed=0)
    for b in (0.5,):
        p = run_search(wl, acc, objective="pareto", budget=b, baselines=False, random_baseline=False, **kw)
        q = run_search(wl, acc, objective="latency", budget=b, **kw)
        mp, mq = p.masks(), q.masks()
        assert mp.keys() == mq.keys() and all(np.array_equal(mp[k], mq[k]) for k in mp)
        assert p.front.loc[p._index(None), "cycles"] == q.front.cycles.iloc[0] <= b * q.info["dense"]["cycles"]
        d = run_search(wl, acc, objective="pareto", budget=b, random_baseline=False, **kw)
        assert d.front.loc[d._index(None), "proxy"] >= q.front.proxy.iloc[0] - 1e-12
        assert d.front.loc[d._index(None), "cycles"] <= b * q.info["dense"]["cycles"]


def test_exact_front_ladder_holds_the_milp_choice():
    wl = sparsim.trace_zoo("mlp_digits")
    cost = HardwareCost(wl, accel.load("vegeta-flex"), ["2:4", "1:4", "unstructured:0.3"])
    problem = Problem(cost, Proxy("magnitude", wl).table(cost))
    A = exact_front(problem, "energy_pj", 24)
    for b in ladder(*budget_range(cost, "energy_pj"), 24):
        a = cost.choose(problem.proxy, b, metric="energy_pj")
        best = max(problem.totals(x[None])[0, 3] for x in A if cost.totals(x)["energy_pj"] <= b)
        assert best >= problem.totals(a[None])[0, 3] - 1e-12


# ------------------------------------------------------------------------------------------ tied weights
class _Reused(nn.Module):
    """One block applied twice, and a tied head (the embedding's weight is the output layer's)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(64, 32)
        self.blk = nn.Linear(32, 32)
        self.mid = nn.Linear(32, 32)
        self.head = nn.Linear(32, 64, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, t):
        h = self.emb(t)
        h = torch.relu(self.blk(h))
        h = torch.relu(self.mid(h))
        h = torch.relu(self.blk(h))
        return self.head(h)


def _reused_workload():
    torch.manual_seed(0)
    m = _Reused()
    return m, sparsim.trace(m, (torch.randint(0, 64, (1, 8)),))


def test_tied_weights_are_one_decision_on_the_whole_front():
    """Before: 'blk' and 'blk#2' were two variables, so front points such as blk=1:4, blk#2=2:4 existed."""
    _, wl = _reused_workload()
    names = [l.name for l in wl.layers]
    assert "blk#2" in names and wl.layers[names.index("head")].weight_name == "emb.weight"
    res = sparsim.search(wl, "vegeta-flex", objective="pareto", evals=400, seed=0,
                         candidates="dense,2:4,1:4,unstructured:0.5,unstructured:0.3")
    cost, _ = res.cost_of(0)
    assert [list(g) for g in cost.ties] == [[names.index("blk"), names.index("blk#2")]]
    assert len(res.front) > 3
    assert (res.front["layer:blk"] == res.front["layer:blk#2"]).all()
    for i in range(len(res.front)):
        masks = res.masks(i)                             # every point can be written
        wlm = res.apply(index=i)
        assert np.array_equal(wlm.layers[names.index("blk")].mask, wlm.layers[names.index("blk#2")].mask)
        assert simulate(wlm, accel.load("vegeta-flex")).totals["cycles"] == res.front.cycles.iloc[i]
        assert masks["blk.weight"].shape == (32, 32)
    lat = sparsim.search(wl, "vegeta-flex", objective="latency", budget=0.8, candidates="dense,2:4,1:4")
    assert lat.front["layer:blk"].iloc[0] == lat.front["layer:blk#2"].iloc[0]


def test_tied_weights_cost_is_the_sum_over_uses_and_mixed_assignments_are_refused():
    _, wl = _reused_workload()
    cost = HardwareCost(wl, accel.load("vegeta-flex"), ["2:4", "1:4"])
    i, j = cost.layer_names.index("blk"), cost.layer_names.index("blk#2")
    assert cost.n_vars == len(wl.layers) - 1
    a = np.zeros(len(wl.layers), dtype=np.int64)
    a[i] = 1
    with pytest.raises(SearchError, match="use one parameter 'blk.weight' and must take one pattern"):
        cost.totals(a)
    a[j] = 1
    t = cost.var_table(cost.cycles)
    assert t[cost.var_of[i], 1] == cost.cycles[i, 1] + cost.cycles[j, 1]
    assert cost.totals(a)["cycles"] == simulate(cost.apply(a), accel.load("vegeta-flex")).totals["cycles"]
    # a pin on one use holds every use dense
    pinned = HardwareCost(wl, accel.load("vegeta-flex"), ["2:4"], pins=["blk#2"])
    assert list(pinned.options[i]) == [0]


# ------------------------------------------------------------------------------------------ pattern text
def test_pattern_text_parses_back_to_the_same_mask(rng):
    """Before: str() kept 6 digits; unstructured:0.398263 kept 939,620 weights where the mask kept 939,621."""
    from workloads import Block, Channel, Unstructured, parse_pattern
    w = rng.standard_normal((1, 4608, 512)).astype(np.float32)       # ResNet-50's 3x3x512x512 conv
    p = Unstructured(939621 / w.size)
    q = parse_pattern(str(p))
    assert q == p and int(q.mask(w).sum()) == int(p.mask(w).sum()) == 939621
    for d in rng.random(20):
        for pat in (Unstructured(d), Channel(d), Block(2, 2, d)):
            assert parse_pattern(str(pat)) == pat
    assert str(Unstructured(0.3)) == "unstructured:0.3" and str(Channel(1.0)) == "channel:1"


# ------------------------------------------------------------------------------------------ layer coverage
class _Kinds(nn.Module):
    """One of each layer type issue 23 names: Conv1d, Conv3d, MultiheadAttention, transformers' Conv1D."""

    def __init__(self):
        super().__init__()
        from transformers.pytorch_utils import Conv1D
        self.c1 = nn.Conv1d(16, 32, 3)
        self.c3 = nn.Conv3d(8, 16, 3)
        self.mha = nn.MultiheadAttention(32, 2, batch_first=True)
        self.hf = Conv1D(64, 32)            # GPT-2's projection: weight (in=32, out=64)

    def forward(self, x1, x3, t):
        a = self.c1(x1).mean()
        b = self.c3(x3).mean()
        o, _ = self.mha(t, t, t, need_weights=False)
        return a + b + self.hf(o).mean()


def _kinds():
    torch.manual_seed(0)
    return _Kinds().eval(), (torch.randn(1, 16, 12), torch.randn(1, 8, 5, 5, 5), torch.randn(1, 6, 32))


def test_every_layer_type_is_pruned_and_resimulates_to_the_reported_cost():
    """Before: the default config held Conv2d and Linear only; these layers stayed dense without a word."""
    from search.sparsifier import HardwareAwareSparsifier
    model, inputs = _kinds()
    sp = HardwareAwareSparsifier("vegeta-flex", inputs, budget=0.75, candidates=["dense", "2:4", "1:4"])
    sp.prepare(model, None)
    fqns = {g["tensor_fqn"] for g in sp.groups}
    assert fqns == {"c1.weight", "c3.weight", "mha.in_proj_weight", "mha.out_proj.weight", "hf.weight"}
    assert sp.skipped == {}
    sp.step()
    pats = sp.patterns()
    assert all(pats[f] != "dense" for f in ("c1.weight", "c3.weight", "mha.in_proj_weight", "hf.weight")), pats
    reported = sp.totals()
    sp.squash_mask()
    wl = sparsim.trace(model, inputs)
    acc = accel.load("vegeta-flex")
    res = simulate(wl, acc)
    assert res.totals["cycles"] == reported["cycles"] <= 0.75 * reported["dense"]["cycles"]
    by = {l.weight_name: l for l in wl.layers if l.weight_name}
    for f in ("c1.weight", "c3.weight", "mha.in_proj_weight", "hf.weight"):
        n, m = map(int, pats[f].split(":"))
        gm = by[f].gemm_mask()                  # the model's zeros, in the simulator's reduction order
        g, k, cols = gm.shape
        assert (gm[:, : k - k % m].reshape(g, -1, m, cols).sum(axis=2) <= n).all(), f


def test_a_weight_no_mask_can_be_put_on_is_named():
    from search.sparsifier import HardwareAwareSparsifier

    class Proj(nn.Module):                   # a weight used through F.linear, not an nn.Linear
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(64, 64))

        def forward(self, x):
            return torch.nn.functional.linear(x, self.w)

    class WithCustom(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = Proj()
            self.fc = nn.Linear(64, 8)

        def forward(self, x):
            return self.fc(self.up(x))

    sp = HardwareAwareSparsifier("vegeta-flex", (torch.randn(4, 64),), budget=0.3)
    with pytest.warns(UserWarning, match=r"up\.w \(Proj\)"):
        sp.prepare(WithCustom(), None)
    assert sp.skipped == {"up.w": "Proj"}
    with pytest.raises(SearchError, match=r"below the cheapest.*up\.w \(Proj\)"):
        sp.step()


def test_sparsifier_ties_a_module_called_twice():
    from search.sparsifier import HardwareAwareSparsifier
    model, inputs = _reused_workload()[0], (torch.randint(0, 64, (1, 8)),)
    sp = HardwareAwareSparsifier("vegeta-flex", inputs, budget=0.8, candidates=["dense", "2:4", "1:4"])
    sp.prepare(model, None)
    sp.step()
    cost, a = sp.last
    assert a[cost.layer_names.index("blk")] == a[cost.layer_names.index("blk#2")]
    rep = sp.totals()
    sp.squash_mask()
    assert simulate(sparsim.trace(model, inputs), accel.load("vegeta-flex")).totals["cycles"] == rep["cycles"]


# ------------------------------------------------------------------------------------------ prune any model
_USER_MODEL = pathlib.Path(__file__).resolve().parents[1] / "examples" / "prune_user_model.py"


def test_prune_cli_on_a_user_model_file_with_its_data_and_evaluate(tmp_path, capsys):
    import json
    from sparsim.cli import main
    f = tmp_path / "user_net.py"
    f.write_text(_USER_MODEL.read_text())
    rep = tmp_path / "r.json"
    rc = main(["prune", "--model", f"{f}:build", "--accel", "vegeta-flex", "--budget", "0.8", "--epochs", "2",
               "--dense-epochs", "3", "--report", str(rep)])
    out = capsys.readouterr().out
    assert rc == 0, out
    r = json.loads(rep.read_text())
    assert r["model"] == "user_net:build" and r["metric"] == "evaluate"
    assert set(r["patterns"]) == {"conv", "fc1", "fc2"} and r["cycles"] <= 0.8 * r["dense_cycles"]
    assert 0 <= r["dense_accuracy"] <= 100 and 0 <= r["accuracy"] <= 100
    assert "user_net:build on vegeta-flex" in out and r["skipped"] == {}
    # loaders instead of tensors, and the default metric (top-1 accuracy)
    rc = main(["prune", "--model", f"{f}:build", "--data", f"{f}:loaders", "--evaluate", f"{f}:evaluate",
               "--accel", "vegeta-flex", "--budget", "0.8", "--epochs", "1"])
    assert rc == 0


def test_infeasible_budget_is_refused_before_any_training(tmp_path, capsys, monkeypatch):
    """Before: `--budget 0.5` trained the dense model for 15 s and then failed on a half-drawn progress bar."""
    import search.prune as sp
    from sparsim.cli import main

    def no_training(*a, **k):
        raise AssertionError("trained before the budget was checked")
    monkeypatch.setattr(sp, "pretrained_digits", no_training)
    monkeypatch.setattr(sp, "_fit", no_training)
    rc = main(["prune", "--model", "cnn_digits", "--accel", "vegeta-flex", "--budget", "0.5"])
    err = capsys.readouterr().err
    assert rc == 2 and "--budget 0.5: below the cheapest assignment" in err and len(err.strip().splitlines()) == 1
    rc = main(["prune", "--model", "cnn_digits", "--accel", "vegeta-flex", "--budget", "0.8", "--candidates", "2:4,3:q"])
    err = capsys.readouterr().err
    assert rc == 2 and "3:q" in err
    f = tmp_path / "user_net.py"
    f.write_text(_USER_MODEL.read_text())
    rc = main(["prune", "--model", f"{f}:build", "--accel", "vegeta-flex", "--budget", "0.2", "--dense-epochs", "5"])
    err = capsys.readouterr().err
    assert rc == 2 and "below the cheapest assignment" in err
    rc = main(["prune", "--model", f"{f}:build", "--data", f"{f}:nodata", "--accel", "vegeta-flex", "--budget", "0.8"])
    err = capsys.readouterr().err
    assert rc == 2 and "has no function 'nodata'" in err


# ------------------------------------------------------------------------------------------ permutations
def test_permutation_is_for_the_pattern_each_layer_takes_and_never_below_identity():
    """Before: every layer was permuted for the tightest candidate (1:4) and then took 2:4; on seed 1
    conv2's 2:4 retained magnitude went down (efficacy -4.6 %)."""
    from search.permute import permute_for_patterns, permute_magnitude
    from search.kernels import group_stats
    from search.permute import _group_stats
    from workloads import NM, zoo
    model, inputs = zoo.build("cnn_digits", seed=1)
    before = {n: model.get_submodule(n).weight.detach().clone() for n in ("conv2", "conv3")}
    with torch.no_grad():
        y0 = model.eval()(*inputs)
    chosen = {"conv1": "dense", "conv2": "2:4", "conv3": "1:4", "fc": "2:4"}
    perms = permute_for_patterns(model, chosen, rounds=10, seed=1)
    assert set(perms) == {"conv2", "conv3"}
    with torch.no_grad():
        assert torch.allclose(model(*inputs), y0, atol=1e-5)       # the same function
    from search.torchmask import to_gemm_np
    for name, (n, m) in (("conv2", (2, 4)), ("conv3", (1, 4))):
        p = perms[name]
        assert (p.n, p.m) == (n, m) and p.found <= p.base and p.efficacy >= 0
        mod = model.get_submodule(name)
        kept = lambda w: float(np.abs(w[NM(n, m).mask(w)]).sum())        # noqa: E731
        w0 = to_gemm_np(before[name], mod)
        w1 = to_gemm_np(mod.weight, mod)
        assert kept(w1) >= kept(w0) - 1e-4
    # an order that keeps no more than the identity is never returned (one group: nothing to swap to)
    w = np.abs(np.random.default_rng(0).standard_normal((1, 8, 3)))
    p = permute_magnitude(w, 8, 2, 4, rounds=1)
    assert p.found <= p.base
    # the kernel's group statistics equal the NumPy reference
    rng = np.random.default_rng(3)
    v, order = np.abs(rng.standard_normal((16, 9))).round(1), rng.permutation(16)
    for a, b in zip(_group_stats(v, order, 2, 4), group_stats(v, order, 2, 4)):
        assert np.allclose(a, b)


def test_prune_permute_reports_the_pattern_it_permuted_for(tmp_path):
    from search.prune import prune_model
    from workloads import zoo
    model, inputs = zoo.build("cnn_digits", seed=1)
    x, y, xt, yt = zoo.digits_split(1)
    res = prune_model(model, (xt[:1],), (x[:300], y[:300], xt[:100], yt[:100]), "vegeta-flex", 0.75,
                      epochs=0, permute=True, permute_rounds=5, seed=1, proxy="magnitude")
    r = res.report
    assert r["permutations"]
    for layer, p in r["permutations"].items():
        assert p["pattern"] == r["patterns"][layer] and p["lost"] <= p["lost_identity"]


def test_prune_seeds_reports_mean_and_sd_and_a_seed_repeats_bit_for_bit(tmp_path, capsys):
    """Item 8: one run's accuracy is machine-specific; --seeds gives mean and sd, and a run repeats exactly."""
    import json
    from sparsim.cli import main
    f = tmp_path / "user_net.py"
    f.write_text(_USER_MODEL.read_text())
    rep = tmp_path / "r.json"
    args = ["prune", "--model", f"{f}:build", "--accel", "vegeta-flex", "--budget", "0.8", "--epochs", "1",
            "--dense-epochs", "2", "--seeds", "0,1,0", "--report", str(rep)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "seeds 0,1,0: dense " in out and "(mean ± sd)" in out
    runs = json.loads(rep.read_text())["runs"]
    assert [r["seed"] for r in runs] == [0, 1, 0]
    assert runs[0]["accuracy"] == runs[2]["accuracy"] and runs[0]["patterns"] == runs[2]["patterns"]
    assert torch.get_num_threads() >= 1 and not torch.are_deterministic_algorithms_enabled()   # restored


def test_exact_choice_does_not_depend_on_the_cost_unit():
    """Costs in seconds (budget below 1) choose what the same costs in nanoseconds choose: the solver's
    constraint is scaled by the budget itself, never by max(budget, 1)."""
    import numpy as np

    from search.knapsack import choose_exact
    rng = np.random.default_rng(3)
    value = -rng.random((6, 3))
    value[:, 0] = 0.0                               # dense: no loss, the highest cost
    cost = np.sort(rng.random((6, 3)) * 1e-3, axis=1)[:, ::-1].copy()
    allowed = np.ones((6, 3), dtype=bool)
    budget = 0.6 * cost[:, 0].sum()
    a_s = choose_exact(value, cost, allowed, budget)
    a_ns = choose_exact(value, cost * 1e9, allowed, budget * 1e9)
    assert cost[np.arange(6), a_s].sum() <= budget
    assert value[np.arange(6), a_s].sum() == value[np.arange(6), a_ns].sum()


def test_pair_regroup_kernel_equals_brute_force_and_regroup_never_loses():
    """The bounded exhaustive pair search (ASP-style): the kernel's best split of two groups equals a
    brute-force search over every split, and polishing an order never lowers what N:M keeps."""
    import itertools
    from search.kernels import pair_regroup
    from search.permute import _regroup, _retained, _splits, permute_magnitude
    rng = np.random.default_rng(5)
    v, order = np.abs(rng.standard_normal((16, 7))), rng.permutation(16)
    parts = _splits(4)
    assert len(parts) == 35 and list(parts[0]) == list(range(8))
    pairs = np.array([(0, 1), (2, 3), (1, 3)])
    for n in (1, 2):
        gain, choice = pair_regroup(v, order, pairs, parts, n, 4)
        for t, (ga, gb) in enumerate(pairs):
            pool = np.concatenate([order[ga * 4:ga * 4 + 4], order[gb * 4:gb * 4 + 4]])

            def keep(a):
                b = [c for c in pool if c not in a]
                return sum(np.sort(v[list(s)], axis=0)[-n:].sum() for s in (a, b))
            best = max(keep(a) for a in itertools.combinations(pool, 4))
            assert gain[t] == pytest.approx(best - keep(tuple(pool[:4])), abs=1e-9)
        polished = _regroup(v, order, n, 4, rng, sweeps=5)
        assert sorted(polished) == list(range(16))
        assert _retained(v, polished, n, 4) >= _retained(v, order, n, 4) - 1e-12
    w = np.abs(rng.standard_normal((1, 32, 5)))
    assert permute_magnitude(w, 32, 2, 4, rounds=4, regroup=True).found <= \
        permute_magnitude(w, 32, 2, 4, rounds=4).found + 1e-9
