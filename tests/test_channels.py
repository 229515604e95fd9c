"""Channel coupling (issue 23, item 3): ``channel:D`` on a producer shrinks its consumers, in the
costs, the exact choice and the masks written; the smaller model re-simulates to the reported cost."""
import copy
import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import accel
from search.algorithms import Problem, random_search
from search.channels import channel_graph, shrink_model
from search.cost import HardwareCost
from search.coupling import solve
from search.errors import SearchError
from search.proxies import Proxy
from simulator import simulate
from workloads import trace


class Net(nn.Module):
    """A residual add, a concatenation, a depthwise conv on the concatenation, batch norms, and a
    flatten into a linear: every kind of coupling the graph models."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.a = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bna = nn.BatchNorm2d(16)
        self.b1 = nn.Conv2d(16, 8, 1)
        self.b2 = nn.Conv2d(16, 8, 1)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.bndw = nn.BatchNorm2d(16)
        self.pw = nn.Conv2d(16, 32, 1)
        self.fc = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        y = F.relu(self.bn(self.stem(x)))
        y = F.relu(y + self.bna(self.a(y)))
        z = torch.cat([self.b1(y), self.b2(y)], 1)
        z = F.relu(self.bndw(self.dw(z)))
        z = F.max_pool2d(F.relu(self.pw(z)), 2)
        return self.fc(torch.flatten(z, 1))


CANDS = ["dense", "2:4", "channel:0.5"]


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = Net()
    with torch.no_grad():     # batch norms with statistics of their own, so that bias channels matter
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-1, 1)
    model.eval()
    x = torch.randn(1, 3, 8, 8)
    wl = trace(model, x)
    graph = channel_graph(model, x, wl)
    acc = accel.load("vegeta-flex")
    cost = HardwareCost(wl, acc, CANDS, graph=graph)
    return model, x, wl, graph, acc, cost


def _idx(cost, name):
    return cost.layer_names.index(name)


def test_graph_finds_residual_concat_depthwise_and_flatten(setup):
    model, x, wl, graph, acc, cost = setup
    names = cost.layer_names
    by = {tuple(names[p] for p in g.producers): g for g in graph.groups}
    res = by[("stem", "a")]                       # the residual add: one group, two producers
    assert res.prunable and {names[c] for c in res.consumers} == {"a", "b1", "b2"}
    b1, b2 = by[("b1",)], by[("b2",)]
    assert [names[p] for p in b1.passes] == ["dw"] and {names[c] for c in b1.consumers} == {"dw", "pw"}
    gi = graph.groups.index
    assert graph.inputs[_idx(cost, "pw")].segments == ((gi(b1), 8), (gi(b2), 8))   # concatenation offsets
    assert graph.inputs[_idx(cost, "fc")].factor == 16                              # flatten of 32 x 4 x 4
    assert not by[("fc",)].prunable and "output" in by[("fc",)].reason
    # a depthwise conv takes no channel candidate of its own: it shrinks with its group
    assert not cost.allowed[_idx(cost, "dw"), CANDS.index("channel:0.5")]


def _resimulate_shrunk(setup, a):
    """Mask a copy of the model with ``cost.masks(a)``, remove the channels, trace, simulate."""
    model, x, wl, graph, acc, cost = setup
    masks = cost.masks(a)
    small = copy.deepcopy(model)
    params = dict(small.named_parameters())
    with torch.no_grad():
        for name, m in masks.items():
            params[name].mul_(torch.from_numpy(m))
    masked = copy.deepcopy(small)
    kept = cost.kept_channels(a)
    shrink_model(small, graph, kept)
    with torch.no_grad():     # the masks zero exactly what the smaller model no longer has
        torch.testing.assert_close(masked(x), small(x), rtol=1e-5, atol=1e-5)
    return simulate(trace(small, x), acc).totals


@pytest.mark.parametrize("producer,consumers", [("b1", ["pw", "dw"]), ("pw", ["fc"]), ("stem", ["b1", "b2"])])
def test_channel_on_a_producer_shrinks_its_consumers_and_resimulates(setup, producer, consumers):
    model, x, wl, graph, acc, cost = setup
    ch = CANDS.index("channel:0.5")
    a = np.zeros(len(wl.layers), dtype=np.int64)
    a[_idx(cost, producer)] = ch
    if producer == "stem":
        a[_idx(cost, "a")] = ch                  # the residual group decides together
    base = simulate(cost.apply(np.zeros_like(a)), acc).layers.set_index("name")
    got = simulate(cost.apply(a), acc).layers.set_index("name")
    for c in consumers:                          # the consumer itself is cheaper
        assert got.loc[c, "cycles"] < base.loc[c, "cycles"], c
        assert got.loc[c, "macs"] < base.loc[c, "macs"], c
    t = cost.totals(a)
    assert t["cycles"] == int(got["cycles"].sum()) == cost.evaluate(a[None])["cycles"][0]
    r = _resimulate_shrunk(setup, a)
    assert r["cycles"] == t["cycles"]
    assert r["energy_pj"] == pytest.approx(t["energy_pj"], rel=1e-12)
    assert r["dram_bytes"] == pytest.approx(t["dram_bytes"], rel=1e-12)
    # with 2:4 on a consumer too: the N:M mask is picked on what is left, and still re-simulates
    a[_idx(cost, consumers[0] if consumers[0] != "dw" else "pw")] = CANDS.index("2:4")
    t = cost.totals(a)
    r = _resimulate_shrunk(setup, a)
    assert r["cycles"] == t["cycles"] and r["energy_pj"] == pytest.approx(t["energy_pj"], rel=1e-12)


def test_residual_group_prunes_the_same_channels_or_is_refused(setup):
    model, x, wl, graph, acc, cost = setup
    ch = CANDS.index("channel:0.5")
    a = np.zeros(len(wl.layers), dtype=np.int64)
    a[_idx(cost, "stem")] = ch
    with pytest.raises(SearchError, match="residual add"):
        cost.totals(a)
    a[_idx(cost, "a")] = ch
    m = cost.masks(a)
    out_stem = m["stem.weight"].any(axis=(1, 2, 3))
    out_a = m["a.weight"].any(axis=(1, 2, 3))
    assert out_stem.sum() == 8 and np.array_equal(out_stem, out_a)      # the same 8 channels go
    for cons in ("a", "b1", "b2"):                                    # and every consumer loses them
        assert np.array_equal(m[f"{cons}.weight"].any(axis=(0, 2, 3)), out_stem)
    # NSGA-II and random search see only feasible assignments: the leader decides for its group
    prob = Problem(cost, Proxy("magnitude", wl).table(cost))
    pop = random_search(prob, 200, seed=1)
    for row in pop:
        cost.check_assignment(row)
    np.testing.assert_allclose(prob.totals(pop)[:, 0], cost.evaluate(pop)["cycles"])


def test_exact_choice_equals_brute_force(setup):
    model, x, wl, graph, acc, cost = setup
    proxy = Proxy("magnitude", wl).table(cost)
    assert proxy.shape == (len(wl.layers), cost.width)
    opts = [cost.options[li] for li in range(len(wl.layers))]
    pop = cost.repair(np.array(list(itertools.product(*opts)), dtype=np.int64))
    pop = np.unique(pop, axis=0)
    cyc = cost.evaluate(pop)["cycles"]
    val = cost.evaluate_table(proxy, pop)
    lo, hi = cost.cost_range("cycles")
    assert lo == cyc.min() and hi >= cyc.max()
    for frac in (0.55, 0.7, 0.85, 1.0):
        b = lo + frac * (cost.dense_totals["cycles"] - lo)
        a = cost.choose(proxy, b)
        assert cost.totals(a)["cycles"] <= b
        assert cost.evaluate_table(proxy, a[None])[0] == pytest.approx(val[cyc <= b].max(), abs=1e-12)
    fc, fv, A = cost.pareto(proxy, "cycles")
    for c, v in zip(fc, fv):           # every front point is the best within its own cost
        assert v == pytest.approx(val[cyc <= c].max(), abs=1e-12)


def test_search_costs_coupling_and_writes_masks_that_resimulate(setup, tmp_path):
    from search.run import run_search
    model, x, wl, graph, acc, cost = setup
    res = run_search(wl, acc, objective="latency", budget=0.7, candidates=CANDS, model=model, inputs=x,
                     baselines=False)
    assert "coupled" in res.info["channel_coupling"]
    c, a = res.cost_of()
    assert c.coupling is not None
    assert simulate(c.apply(a), acc).totals["cycles"] == res.front["cycles"].iloc[0]
    # the Pareto search: every front point can be built and re-simulates to its row; --masks writes
    # the exact choice within --budget, the point --objective latency writes
    par = run_search(wl, acc, objective="pareto", budget=0.7, candidates=CANDS, model=model, inputs=x,
                     evals=200, baselines=False, random_baseline=False)
    for i in range(len(par.front)):
        pc, pa = par.cost_of(i)
        assert simulate(pc.apply(pa), acc).totals["cycles"] == par.front["cycles"].iloc[i]
    assert np.array_equal(par.cost_of(par.info["budget_point"])[1], a)
    # without the model the search cannot couple, and says so
    res2 = run_search(wl, acc, objective="latency", budget=0.7, candidates=CANDS, baselines=False)
    assert res2.info["channel_coupling"].startswith("not modelled")


def test_untraceable_model_is_named():
    class Dyn(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            return self.c(x) if x.sum() > 0 else self.c(-x)
    m, x = Dyn(), torch.ones(1, 3, 4, 4)
    with pytest.raises(SearchError, match="torch.fx cannot trace"):
        channel_graph(m, x, trace(m, x))


def test_sparsifier_couples_channel_candidates(setup):
    """The torch.ao sparsifier (``sparsim prune``'s engine) costs and masks channel candidates the
    same way: a consumer's mask drops the producer's removed channels, and the squashed model,
    with the channels removed, re-simulates to the sparsifier's totals."""
    from search.sparsifier import HardwareAwareSparsifier
    model, x, wl, graph, acc, cost = setup
    net = copy.deepcopy(model)
    fqns = [n for n, _ in net.named_parameters() if n.endswith("weight") and not n.startswith("bn")]
    config = [{"tensor_fqn": f, **({"pattern": "channel:0.5"} if f == "b1.weight" else {})} for f in fqns]
    sp = HardwareAwareSparsifier(acc, x, budget=0.9, candidates=CANDS)
    sp.prepare(net, config)
    sp.step()
    c, a = sp.last
    assert c.coupling is not None and c.candidate_names[a[_idx(c, "b1")]] == "channel:0.5"
    sp.squash_mask()
    pw = net.pw.weight.detach().numpy()
    kept_b1 = np.abs(net.b1.weight.detach().numpy()).sum(axis=(1, 2, 3)) > 0
    assert kept_b1.sum() == 4 and np.all(pw[:, :8][:, ~kept_b1] == 0)     # pw no longer reads them
    kept = c.kept_channels(a)
    shrink_model(net, graph, kept)
    assert simulate(trace(net, x), acc).totals["cycles"] == sp.totals()["cycles"]


def test_prune_removes_the_channels_and_reports_the_smaller_model():
    """``sparsim prune`` with a channel candidate: the reported cycles are the smaller model's, equal
    to what the sparsifier chose (before: the masked model, whose readers still counted the removed
    channels' activations)."""
    from search.prune import prune_digits
    res = prune_digits("cnn_digits", "vegeta-flex", budget=0.7, epochs=1, dense_epochs=2,
                       candidates=["dense", "2:4", "channel:0.5"], proxy="magnitude")
    r = res.report
    assert r["channel_groups_removed"], r["patterns"]
    assert r["cycles"] == r["chosen_cycles"] <= 0.7 * r["dense_cycles"]
