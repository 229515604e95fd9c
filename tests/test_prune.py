"""HardwareAwareSparsifier, masked fine-tuning, channel permutations, digits data, ``sparsim prune``."""
import itertools
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.ao.pruning.scheduler.cubic_scheduler import CubicSL

import sparsim
from search.errors import SearchError
from search.finetune import TrainConfig, train
from search.permute import (apply_to_gemm, apply_to_model, channel_view, permute_cycles, permute_magnitude,
                            permute_model, producer_pairs)
from search.adaptive import (hv2, hv2_batch, layer_features, predict_lcb, proxy_pool, select_adaptive,
                             select_noisy_ehvi)
from search.prune import covers
from search.sparsifier import HardwareAwareSparsifier, loss_sensitivity
from search.torchmask import gemm_mask
from workloads import zoo


def _nm_ok(mask_gemm, n, m):
    g, k, cols = mask_gemm.shape
    pad = (-k) % m
    x = np.concatenate([mask_gemm, np.zeros((g, pad, cols), bool)], axis=1).reshape(g, -1, m, cols)
    return bool((x.sum(axis=2) <= n).all())


def _prepared(name="cnn_digits", budget=0.75, **kw):
    model, inputs = zoo.build(name, seed=1)
    sp = HardwareAwareSparsifier("vegeta-flex", inputs, budget=budget, **kw)
    sp.prepare(model, None)
    return model, inputs, sp


# ---------------------------------------------------------------------------------------------- data
def test_digits_split_is_seeded_and_fits_both_models():
    a, b, c = zoo.digits_split(0), zoo.digits_split(0), zoo.digits_split(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    x, y, xt, yt = a
    assert x.shape == (1347, 64) and xt.shape == (450, 64) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0 and set(y.tolist()) == set(range(10))
    for name in ("mlp_digits", "cnn_digits"):
        assert zoo.build(name)[0](xt[:5]).shape == (5, 10)


# ---------------------------------------------------------------------------------------------- sparsifier
def test_step_meets_budget_and_squashed_masks_fit_patterns_in_reduction_order():
    model, inputs, sp = _prepared()
    sp.step()
    tot = sp.totals()
    assert tot["cycles"] <= 0.75 * tot["dense"]["cycles"]
    pats = sp.patterns()
    assert set(pats.values()) - {"dense"}, "a budget below dense must prune something"
    sp.squash_mask()
    res = sparsim.simulate(sparsim.trace(model, inputs), "vegeta-flex")
    assert int(res.totals["cycles"]) == tot["cycles"]        # the table's sum is what the simulator says
    for fqn, p in pats.items():
        mod = model.get_submodule(fqn.rsplit(".", 1)[0])
        nz = gemm_mask(mod.weight != 0, mod)
        if p != "dense":
            n, m = map(int, p.split(":"))
            assert _nm_ok(nz, n, m)
            assert nz.mean() == pytest.approx(n / m, abs=0.02)
    # conv N:M groups are M consecutive input channels at one kernel position
    if pats["conv2.weight"] in ("2:4", "1:4"):
        n = int(pats["conv2.weight"][0])
        w = model.conv2.weight.detach()
        cnt = (w != 0).permute(0, 2, 3, 1).reshape(16, 3, 3, 2, 4).sum(-1)
        assert int(cnt.max()) <= n


def test_cubic_schedule_tightens_budget_monotonically():
    model, inputs, sp = _prepared(budget=0.7)
    sched = CubicSL(sp, init_sl=0.0, init_t=0, delta_t=1, total_t=4)
    budgets, cycles = [], []
    for _ in range(6):
        sp.step()
        budgets.append(sp.budget)
        cycles.append(sp.totals()["cycles"])
        sched.step()
    assert budgets[0] == pytest.approx(1.0) and budgets[-1] == pytest.approx(0.7)
    assert all(a >= b - 1e-12 for a, b in zip(budgets, budgets[1:]))
    dense = sp.totals()["dense"]["cycles"]
    assert all(c <= b * dense for c, b in zip(cycles, [1.0] + budgets[:-1]))
    assert cycles[0] == dense and cycles[-1] < cycles[1]


def test_state_dict_roundtrip_and_prune_export():
    model, inputs, sp = _prepared()
    sp.step()
    sd = sp.state_dict()
    model2, _ = zoo.build("cnn_digits", seed=1)
    sp2 = HardwareAwareSparsifier("vegeta-flex", inputs, budget=0.75)
    sp2.prepare(model2, None)
    sp2.load_state_dict(sd)
    assert sp2.patterns() == sp.patterns()
    for g1, g2 in zip(sp.groups, sp2.groups):
        assert torch.equal(g1["module"].parametrizations.weight[0].mask, g2["module"].parametrizations.weight[0].mask)
    masks = {g["tensor_fqn"]: g["module"].parametrizations.weight[0].mask.clone() for g in sp.groups}
    sp.export_prune()
    assert torch.equal(model.conv3.weight_mask, masks["conv3.weight"])
    wl = sparsim.trace(model, inputs)                         # the tracer reads prune's weight_mask buffer
    assert np.array_equal(wl.layer("conv3").mask, masks["conv3.weight"].bool().numpy())


def test_pinned_pattern_and_per_layer_candidates():
    model, inputs = zoo.build("mlp_digits", seed=0)
    sp = HardwareAwareSparsifier("vegeta-flex", inputs, budget=0.9)
    sp.prepare(model, [{"tensor_fqn": "fc1.weight", "pattern": "1:4"}, {"tensor_fqn": "fc2.weight"},
                       {"tensor_fqn": "fc3.weight", "pattern": "dense"}])
    sp.step()
    p = sp.patterns()
    assert p["fc1.weight"] == "1:4" and p["fc3.weight"] == "dense"


@pytest.mark.parametrize("make, match", [
    (lambda m, i: HardwareAwareSparsifier("vegeta-flex", i, budget=0).prepare(m, None), "budget.*in \\(0, 1\\]"),
    (lambda m, i: HardwareAwareSparsifier("vegeta-flex", i, budget=1.5), "budget.*got 1.5"),
    (lambda m, i: HardwareAwareSparsifier("vegeta-flex", i).prepare(m, [{"tensor_fqn": "fc9.weight"}]),
     "tensor_fqn 'fc9.weight': the model has no module 'fc9'"),
    (lambda m, i: HardwareAwareSparsifier("vegeta-flex", i, objective="speed"), "objective"),
])
def test_bad_sparsifier_inputs(make, match):
    model, inputs = zoo.build("mlp_digits", seed=0)
    with pytest.raises(SearchError, match=match):
        make(model, inputs)


def test_budget_below_the_cheapest_assignment_is_one_error():
    model, inputs = zoo.build("mlp_digits", seed=0)
    sp = HardwareAwareSparsifier("vegeta-flex", inputs, budget=0.1)
    sp.prepare(model, None)
    with pytest.raises(SearchError, match="below the cheapest assignment"):
        sp.step()


def test_layer_the_tracer_cannot_map_is_one_error():
    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(8, 8)
            self.unused = nn.Linear(8, 8)

        def forward(self, x):
            return self.used(x)

    with pytest.raises(SearchError, match="'unused.weight': cannot map it to one traced layer"):
        HardwareAwareSparsifier("vegeta-flex", (torch.randn(1, 8),)).prepare(Skips(), None)


def test_loss_sensitivity_proxy_is_the_one_shot_loss_rise_and_drives_a_step():
    import copy
    model, inputs, sp = _prepared("mlp_digits", budget=0.7)
    x, y, _, _ = zoo.digits_split(1)
    x, y = x[:200], y[:200]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fn = loss_sensitivity(model, x, y)
    cost = sp.cost_tables()
    table = fn(cost)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())     # the model is not changed
    sp.step()
    model(x)                                                  # and still runs, parametrized
    assert table.shape == cost.allowed.shape and np.all(table[:, 0] == 0)
    plain, _ = zoo.build("mlp_digits", seed=1)                                        # same weights, no masks
    with torch.no_grad():
        base = float(F.cross_entropy(plain(x), y))
        for li, c in ((0, 2), (2, 1)):
            net = copy.deepcopy(plain)
            p = net.get_submodule(cost.workload.layers[li].weight_name.rsplit(".", 1)[0]).weight
            p.mul_(torch.from_numpy(cost.mask(li, c)))
            assert table[li, c] == pytest.approx(base - float(F.cross_entropy(net(x), y)), abs=1e-6)
    model2, _ = zoo.build("mlp_digits", seed=1)
    sp2 = HardwareAwareSparsifier("vegeta-flex", inputs, budget=0.7, proxy=loss_sensitivity(model2, x, y))
    sp2.prepare(model2, None)
    sp2.step()
    tot = sp2.totals()
    assert tot["cycles"] <= 0.7 * tot["dense"]["cycles"]
    value = lambda a: table[np.arange(len(a)), a].sum()      # noqa: E731
    assert value(sp2.last[1]) >= value(sp.last[1]) - 1e-12    # it is the optimum of the sensitivity table


def test_covers_is_weak_set_dominance_point_by_point():
    u = [(0.4, 0.76), (0.9, 0.65), (1.1, 0.70)]
    same = covers(u, u)
    assert same["covered"] == [True] * 3 and not same["strict"] and not same["better"]
    f = [(0.4, 0.76), (0.2, 0.65), (1.1, 0.70)]              # contains two of them, improves the third
    r = covers(f, u)
    assert r["covered"] == [True] * 3 and r["strict"] and r["better"]
    g = [(0.0, 0.80)]                                        # better accuracy, more cycles: covers nothing
    r = covers(g, u)
    assert r["covered"] == [False] * 3 and r["strict"] and not r["better"]
    assert covers(u, g)["covered"] == [False]


# ---------------------------------------------------------------------------------------------- fine-tuning
# ---------------------------------------------------------------------------------------------- accuracy in the loop
def test_hv2_matches_pymoo_hypervolume(rng):
    from search.algorithms import hypervolume
    for n in (1, 2, 5, 12):
        P = np.column_stack([rng.uniform(-1, 2.5, n), rng.uniform(0.2, 1.1, n)])
        assert hv2(P) == pytest.approx(hypervolume(P, ref=(2.0, 1.0)), abs=1e-12)
    assert hv2(np.zeros((0, 2))) == 0.0


def test_adaptive_selection_fills_the_largest_front_gap():
    # measured after the two initial points: (0.0, 0.2) and (-1.0, 0.9); the front's big gap lies
    # between them. Candidates 2 (cost 0.5) and 3 (cost 0.85) have the same proxy score, so the same
    # predicted value; only candidate 2 adds much hypervolume, and it must be picked first.
    costs = [0.2, 0.9, 0.5, 0.85, 0.95]
    scores = [0.0, -1.0, -0.5, -0.5, -2.0]
    truth = {0: 0.0, 1: -1.0, 2: -0.6, 3: -0.6, 4: -1.2}
    calls = []

    def evaluate(i):
        calls.append(i)
        return truth[i]
    sel = select_adaptive(costs, scores, evaluate, 3, initial=[0, 1])
    assert sel.order == (0, 1, 2) and sel.phases == ("initial", "initial", "gap")
    assert calls == [0, 1, 2] and sel.values == (0.0, -1.0, -0.6)
    # the lower confidence bound is the least-squares line minus kappa residual sds
    pred = predict_lcb(np.array(scores), [0, 1, 2], [0.0, -1.0, -0.6], kappa=1.0)
    slope, icpt = np.polyfit([0.0, -1.0, -0.5], [0.0, -1.0, -0.6], 1)
    sd = np.sqrt(np.mean((np.array([0.0, -1.0, -0.6]) - (icpt + slope * np.array([0.0, -1.0, -0.5]))) ** 2))
    assert pred[4] == pytest.approx(icpt + slope * -2.0 - sd)


def test_adaptive_selection_counts_every_evaluation_once():
    rng = np.random.default_rng(3)
    costs, scores = rng.uniform(0.3, 1.0, 20), rng.normal(size=20)
    calls = []

    def evaluate(i):
        calls.append(i)
        return float(scores[i] + rng.normal(scale=0.1))
    sel = select_adaptive(costs, scores, evaluate, 8, initial=[5, 5, 7], spread=(0.25, 0.5, 0.75))
    assert len(calls) == 8 == sel.evaluations and len(set(calls)) == 8 and list(sel.order) == calls
    assert sel.phases == ("initial",) * 2 + ("spread",) * 3 + ("gap",) * 3
    # spread: the proxy's best candidate below each fraction of the cost range
    lo, hi = costs.min(), costs.max()
    first = [i for i in range(20) if i not in (5, 7) and costs[i] <= lo + 0.25 * (hi - lo) + 1e-12]
    assert sel.order[2] == min(first, key=lambda i: scores[i])
    calls.clear()
    assert select_adaptive(costs[:4], scores[:4], evaluate, 10).evaluations == 4 == len(calls)   # all there are
    with pytest.raises(SearchError, match="evals"):
        select_adaptive(costs, scores, evaluate, 0)
    with pytest.raises(SearchError, match="initial candidate 20"):
        select_adaptive(costs, scores, evaluate, 3, initial=[20])
    with pytest.raises(SearchError, match="as many scores"):
        select_adaptive(costs, scores[:3], evaluate, 3)



def test_hv2_batch_equals_hv2_row_by_row(rng):
    costs = np.array([0.3, 0.55, 0.34, 1.2, 0.9, 0.3])        # one beyond the reference, two tied
    V = rng.uniform(-1.0, 2.5, size=(50, len(costs)))
    got = hv2_batch(V, costs)
    assert got.shape == (50,)
    for row, h in zip(V, got):
        assert h == pytest.approx(hv2(np.column_stack([row, costs])), abs=1e-12)
    assert hv2_batch(V[:, 3:4], costs[3:4]).tolist() == [0.0] * 50      # nothing below the reference


def test_layer_features_of_an_additive_model():
    proxy = np.array([[0.0, -0.1, -0.4], [0.0, -0.2, -0.3]])
    X = layer_features([[0, 0], [1, 2], [2, 1]], proxy)
    assert X.tolist() == [[1, 0.0, 0, 0, 0, 0], [1, pytest.approx(0.4), 1, 0, 0, 1],
                          [1, pytest.approx(0.6), 0, 1, 1, 0]]
    with pytest.raises(SearchError, match=r"shape \(P, 2\) with options in 0..2"):
        layer_features([[0, 3]], proxy)


def _toy_layers():
    """Two layers, options dense / moderate / aggressive; layer 0's aggressive option costs 3 points,
    everything else next to nothing; cost falls with every sparser option."""
    import itertools
    A = np.array(list(itertools.product(range(3), range(3))))
    effect = np.array([[0.0, 0.1, 3.0], [0.0, 0.1, 0.2]])
    drop = effect[0, A[:, 0]] + effect[1, A[:, 1]]
    cost = 1.0 - 0.3 * A[:, 0] / 2 - 0.2 * A[:, 1] / 2
    proxy = -np.array([[0.0, 0.01, 0.3], [0.0, 0.01, 0.02]])
    return A, drop, cost, proxy


def test_noisy_ehvi_counts_evaluations_and_learns_which_layer_hurts():
    A, drop, cost, proxy = _toy_layers()
    calls = []

    def evaluate(i):
        calls.append(i)
        return float(drop[i])
    sel = select_noisy_ehvi(A, cost, proxy, evaluate, 5, initial=[0, 0, 8])      # dense, then all-aggressive
    assert len(calls) == 5 == sel.evaluations and len(set(calls)) == 5 and list(sel.order) == calls
    assert sel.phases == ("initial", "initial") + ("ehvi",) * 3 and sel.values == tuple(drop[calls])
    # all-aggressive measured 3.2 points: the picks go to the cheap points that keep layer 0 moderate
    picked = [tuple(A[i]) for i in sel.order[2:]]
    assert (1, 2) in picked and all(a[0] != 2 for a in picked)
    again = select_noisy_ehvi(A, cost, proxy, lambda i: float(drop[i]), 5, initial=[0, 8])
    assert again.order == sel.order                       # seeded: the same picks every time
    assert select_noisy_ehvi(A, cost, proxy, lambda i: float(drop[i]), 50).evaluations == 9    # all there are


def test_noisy_ehvi_rejects_bad_input():
    A, drop, cost, proxy = _toy_layers()
    ev = lambda i: float(drop[i])       # noqa: E731
    with pytest.raises(SearchError, match="evals must be a positive integer"):
        select_noisy_ehvi(A, cost, proxy, ev, 0)
    with pytest.raises(SearchError, match="initial candidate 9 is not in 0..8"):
        select_noisy_ehvi(A, cost, proxy, ev, 3, initial=[9])
    with pytest.raises(SearchError, match="as many assignments as costs"):
        select_noisy_ehvi(A, cost[:4], proxy, ev, 3)
    with pytest.raises(SearchError, match="tau must be a positive number"):
        select_noisy_ehvi(A, cost, proxy, ev, 3, tau=0.0)

def test_bench_test_bootstrap_resamples_rows_shared_by_every_model():
    """benchmarks/bench_prune.py's bootstrap of the test rows: identical sets give exactly 0 in every
    resample; a front whose one model gets a superset of the random model's rows right (at the same
    cycles) is never worse, and strictly better whenever a resample holds one of the extra rows."""
    import importlib.util
    import sys
    from pathlib import Path
    here = Path(__file__).parent.parent / "benchmarks"
    spec = importlib.util.spec_from_file_location("bench_prune_t", here / "bench_prune.py")
    bench = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(here))
    try:
        spec.loader.exec_module(bench)
    finally:
        sys.path.pop(0)
    rng = np.random.default_rng(3)
    dense = rng.random(200) < 0.95             # 1 row = 0.5 points
    a = dense.copy()
    a[np.flatnonzero(dense)[:2]] = False       # the random model misses 2 rows dense gets right: drop 1.0
    same = bench._test_bootstrap(dense, [a], [a], [0.5], [0.5], seed=0, draws=50)
    assert same["mean"] == same["lo"] == same["hi"] == 0.0 and same["p"] == 0.0
    b = a.copy()
    b[np.flatnonzero(dense)[0]] = True         # the front's model gets one of them back: drop 0.5
    up = bench._test_bootstrap(dense, [b], [a], [0.5], [0.5], seed=0, draws=300)
    assert up["lo"] >= 0.0 and up["mean"] > 0.0
    assert 0.45 < up["p"] < 0.8                # the extra row is in a resample with probability 1 - (199/200)^200


def test_proxy_pool_is_the_first_fronts_of_proxy_and_cycles():
    from search.prune import digits_cost
    _, _, cost = digits_cost("mlp_digits", "vegeta-flex", seed=0, candidates=["dense", "2:4", "1:4", "2:8"],
                             dense_epochs=1)
    proxy = np.random.default_rng(0).uniform(-1, 0, cost.allowed.shape)
    proxy[:, 0] = 0.0
    every = np.array(list(itertools.product(*[list(o) for o in cost.options])))
    s, c = cost.evaluate_table(proxy, every), cost.evaluate(every)["cycles"]
    front = {tuple(a) for a, si, ci in zip(every, s, c)
             if not any((s2 >= si and c2 <= ci) and (s2 > si or c2 < ci) for s2, c2 in zip(s, c))}
    one = proxy_pool(cost, proxy, fronts=1)
    assert {tuple(a) for a in one} == front
    assert np.all(np.diff(cost.evaluate(one)["cycles"]) >= 0)
    two = {tuple(a) for a in proxy_pool(cost, proxy, fronts=2)}
    assert front < two
    # without enumeration: the exact choice at many budgets, all on the first front
    assert {tuple(a) for a in proxy_pool(cost, proxy, fronts=1, enumerate_up_to=1)} <= front


def test_validation_split_is_stratified_disjoint_and_seeded():
    from search.finetune import digits_validation
    x, y, _, _ = zoo.digits_split(0)
    xf, yf, xv, yv = digits_validation(0, 0.2)
    assert len(yv) == -(-len(y) // 5) and len(yf) + len(yv) == len(y) and set(yv.tolist()) == set(range(10))
    both = torch.cat([xf, xv])              # a partition of the training split (as multisets of rows)
    assert sorted(map(tuple, both.tolist())) == sorted(map(tuple, x.tolist()))
    assert all(torch.equal(a, b) for a, b in zip(digits_validation(0, 0.2), (xf, yf, xv, yv)))
    assert torch.equal(digits_validation(0, 0.0)[0], x)
    with pytest.raises(SearchError, match="val_fraction"):
        digits_validation(0, 1.0)


def test_fine_tuning_keeps_masks_fixed_and_srste_ends_nm():
    model, _ = zoo.build("mlp_digits", seed=0)
    x, y, _, _ = zoo.digits_split(0)
    x, y = x[:256], y[:256]
    mask = torch.rand(128, 64, generator=torch.Generator().manual_seed(0)) > 0.5
    train(model, x, y, TrainConfig(epochs=1), seed=0, masks={"fc1.weight": mask})
    assert torch.equal(model.fc1.weight != 0, mask)
    before = model.fc2.weight.detach().clone()
    train(model, x, y, TrainConfig(epochs=1), seed=0, patterns={"fc2.weight": "2:4"}, mode="srste")
    assert _nm_ok(gemm_mask(model.fc2.weight != 0, model.fc2), 2, 4)
    assert not torch.equal(before != 0, model.fc2.weight != 0)
    with pytest.raises(SearchError, match="no parameter 'fc9.weight'"):
        train(model, x, y, masks={"fc9.weight": mask})
    train(model, x, y, TrainConfig(epochs=1, schedule="cosine"), seed=0, masks={"fc1.weight": mask})
    assert torch.equal(model.fc1.weight != 0, mask)
    with pytest.raises(SearchError, match="schedule: expected 'constant' or 'cosine'"):
        train(model, x, y, TrainConfig(epochs=1, schedule="step"), seed=0)


# ---------------------------------------------------------------------------------------------- permutations
def test_permuted_dense_models_compute_the_same_function():
    class WithBN(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 16, 3, padding=1)
            self.bn = nn.BatchNorm2d(16)
            self.c2 = nn.Conv2d(16, 8, 3, padding=1)

        def forward(self, x):
            return self.c2(F.relu(self.bn(self.c1(x))))

    torch.manual_seed(0)
    bn = WithBN().eval()
    bn.bn.running_mean.uniform_(-1, 1)
    bn.bn.running_var.uniform_(0.5, 2)
    for model, x in ((zoo.build("cnn_digits", seed=2)[0], torch.rand(4, 64)),
                     (zoo.build("mlp_digits", seed=2)[0], torch.rand(4, 64)), (bn, torch.randn(2, 3, 6, 6))):
        ref = model(x)
        found = permute_model(model, 2, 4, rounds=5)
        assert found and any(not np.array_equal(p.perm, np.arange(len(p.perm))) for p in found.values())
        torch.testing.assert_close(model(x), ref, rtol=1e-5, atol=1e-5)
    assert set(producer_pairs(zoo.build("cnn_digits")[0])) == {"conv2", "conv3"}   # fc follows a flatten
    with pytest.raises(SearchError, match="'conv1' has no single Conv2d/Linear producer"):
        apply_to_model(zoo.build("cnn_digits")[0], "conv1", np.arange(1))


def test_magnitude_permutation_finds_the_brute_force_optimum_on_small_layers(rng):
    gaps = 0
    for _ in range(4):
        w = rng.standard_normal((1, 8, 3))
        v = np.abs(w[0])
        best = 0.0
        for first in itertools.combinations(range(8), 4):   # every split of 8 channels into two groups of 4
            rest = [c for c in range(8) if c not in first]
            best = max(best, sum(np.sort(v[list(g)], axis=0)[-2:].sum() for g in (first, rest)))
        p = permute_magnitude(w, 8, 2, 4, rounds=10)
        assert v.sum() - p.found == pytest.approx(best)
        assert p.optimal - 1e-9 <= p.found <= p.base and -1e-9 <= p.efficacy <= 1.0 + 1e-9
        gaps += p.found < p.base
    assert gaps > 0


def test_efficacy_and_cycle_objective_on_a_conv_layer(rng):
    w = rng.standard_normal((1, 9 * 32, 24))                   # 3x3 conv, 32 input channels
    p = permute_magnitude(w, 32, 2, 8, rounds=8)
    assert p.efficacy > 0.1 and p.optimal < p.found < p.base
    # the permuted weight's 2:8 loss is what the search reports
    from workloads import nm
    pw = apply_to_gemm(w, 32, p.perm)
    assert np.abs(pw).sum() - np.abs(pw)[nm(2, 8).mask(pw)].sum() == pytest.approx(p.found)
    assert channel_view(pw, 32).shape == (32, 9 * 24)
    mask = rng.random((1, 9 * 32, 24)) < 0.5
    c = permute_cycles(mask, 32, 1, 4, block_cols=8, rounds=5)
    assert c.found < c.base
    with pytest.raises(SearchError, match="multiple of M"):
        permute_magnitude(w[:, :9 * 6], 6, 2, 4)


# ---------------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("argv, match", [
    (["--model", "mlp_digits", "--accel", "vegeta-flex", "--budget", "0"], "--budget: expected a fraction"),
    (["--model", "mlp_digits", "--accel", "vegeta-flex", "--budget", "1.5"], "--budget: expected a fraction"),
    (["--model", "resnet18", "--accel", "vegeta-flex", "--budget", "0.5"], "mlp_digits, cnn_digits"),
    (["--model", "mlp_digits", "--accel", "vegeta-flx", "--budget", "0.5"], "vegeta-flx"),
    (["--model", "mlp_digits", "--accel", "vegeta-flex", "--budget", "0.5", "--report", "/nonexist/r.json"],
     "does not exist"),
])
def test_prune_cli_bad_inputs(capsys, argv, match):
    from sparsim.cli import main
    assert main(["prune"] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert match in err


@pytest.mark.slow
def test_prune_cli_end_to_end(tmp_path, capsys):
    from sparsim.cli import main
    out, rep = tmp_path / "p.pt", tmp_path / "r.json"
    assert main(["prune", "--model", "mlp_digits", "--accel", "vegeta-flex", "--budget", "0.8", "--epochs", "1",
                 "--permute", "--out", str(out), "--report", str(rep)]) == 0
    text = capsys.readouterr().out
    assert "accuracy %" in text and "cycles" in text
    r = json.loads(rep.read_text())
    for key in ("dense_accuracy", "accuracy", "dense_cycles", "cycles", "dense_energy_pj", "energy_pj", "patterns"):
        assert key in r
    assert r["cycles"] <= 0.8 * r["dense_cycles"] and r["accuracy"] > 80
    model, _ = zoo.build("mlp_digits", seed=0)
    model.load_state_dict(torch.load(out))
    for layer, p in r["patterns"].items():
        if p != "dense":
            mod = model.get_submodule(layer)
            assert _nm_ok(gemm_mask(mod.weight != 0, mod), *map(int, p.split(":")))
