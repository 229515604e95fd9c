"""search/: cost tables equal the simulator, masks equal the patterns', budgeted choice, errors."""
import numpy as np
import pytest

import accel
import sparsim
from search import HardwareCost, SearchError
from search.masks import pick
from simulator import simulate
from workloads import parse_pattern


@pytest.fixture(scope="module")
def mlp():
    return sparsim.trace_zoo("mlp_digits")


@pytest.fixture(scope="module")
def r18():
    return sparsim.trace_zoo("resnet18")


def _random_assignments(cost, rng, n):
    return [np.array([rng.choice(o) for o in cost.options]) for _ in range(n)]


@pytest.mark.parametrize("shape", [(1, 37, 5), (3, 16, 7), (2, 64, 33)])
def test_fast_masks_equal_pattern_masks(shape, rng):
    for w in (rng.standard_normal(shape), np.round(rng.standard_normal(shape)), rng.integers(0, 3, shape) * 1.0):
        for text in ("2:4", "1:4", "2:8", "4:8", "3:3", "unstructured:0.3", "unstructured:0.5", "block:2x2:0.5",
                     "channel:0.5"):
            p = parse_pattern(text)
            assert np.array_equal(pick(p, np.abs(w)), p.mask(w)), text


@pytest.mark.parametrize("preset", ["vegeta-flex", "sparse-tc-2of4", "sat-vcu1525"])
def test_table_sum_equals_simulate(r18, preset, rng):
    acc = accel.load(preset)
    cost = HardwareCost(r18, acc, ["2:4", "1:4", "2:8", "unstructured:0.4", "channel:0.75"], pins=["conv1"])
    for a in _random_assignments(cost, rng, 2) + [cost.uniform("2:4"), np.zeros(len(r18.layers), int)]:
        res = simulate(cost.apply(a), acc)
        # every per-layer entry is the simulator's own number, bit for bit
        idx = np.arange(len(a))
        assert np.array_equal(cost.cycles[idx, a], res.layers["cycles"].to_numpy())
        assert np.array_equal(cost.energy_pj[idx, a], res.layers["energy_pj"].to_numpy())
        assert np.array_equal(cost.dram_bytes[idx, a], res.layers["dram_bytes"].to_numpy())
        tot = cost.totals(a)
        assert tot["cycles"] == res.totals["cycles"]
        assert tot["energy_pj"] == pytest.approx(res.totals["energy_pj"], rel=1e-12)
        ev = cost.evaluate(a[None])
        assert ev["cycles"][0] == res.totals["cycles"]
        assert ev["dram_bytes"][0] == pytest.approx(res.totals["dram_bytes"], rel=1e-12)


def test_masks_are_the_patterns_and_parameter_shaped(r18):
    cost = HardwareCost(r18, accel.load("vegeta-flex"), ["2:4"])
    a = cost.uniform("2:4")
    masks = cost.masks(a)
    ref = r18.sparsify("2:4")
    for layer in ref.layers:
        assert masks[layer.weight_name].shape == layer.weight.shape
        assert np.array_equal(masks[layer.weight_name], layer.mask)


def test_cost_of_mask_matches_table(mlp):
    cost = HardwareCost(mlp, accel.load("vegeta-flex"), ["2:4", "1:4"])
    for li in range(len(mlp.layers)):
        for c in cost.options[li]:
            got = cost.cost_of_mask(li, cost.mask(li, c))
            assert got["cycles"] == cost.cycles[li, c]
            assert got["energy_pj"] == cost.energy_pj[li, c]


def test_choose_exact_beats_greedy_and_meets_budget(r18, rng):
    cost = HardwareCost(r18, accel.load("vegeta-flex"), ["2:4", "1:4", "2:8"], pins=["conv1", "fc"])
    proxy = rng.random(cost.shape)
    for frac in (0.6, 0.8):
        budget = frac * cost.dense_totals["cycles"]
        ex, gr = cost.choose(proxy, budget), cost.choose(proxy, budget, method="greedy")
        idx = np.arange(len(ex))
        assert cost.totals(ex)["cycles"] <= budget and cost.totals(gr)["cycles"] <= budget
        assert proxy[idx, ex].sum() >= proxy[idx, gr].sum() - 1e-12
        # brute-force check on the best single-layer deviations from the exact answer
        for li in range(len(ex)):
            for c in cost.options[li]:
                b = ex.copy()
                b[li] = c
                if cost.totals(b)["cycles"] <= budget:
                    assert proxy[idx, b].sum() <= proxy[idx, ex].sum() + 1e-9
    with pytest.raises(SearchError, match="below the cheapest"):
        cost.choose(proxy, 0.5 * cost.min_cost())


def test_bad_inputs(mlp):
    acc = accel.load("vegeta-flex")
    with pytest.raises(SearchError, match="'3:q'"):
        HardwareCost(mlp, acc, ["2:4", "3:q"])
    with pytest.raises(SearchError, match="empty"):
        HardwareCost(mlp, acc, [])
    with pytest.raises(SearchError, match="--pin 'nope'"):
        HardwareCost(mlp, acc, ["2:4"], pins=["nope"])
    cost = HardwareCost(mlp, acc, ["2:4"], pins=["fc1"])
    assert list(cost.options[0]) == [0]
    with pytest.raises(SearchError, match="fc1"):
        cost.check_assignment(np.array([1, 0, 0]))


# ------------------------------------------------------------------------------------------ the loop
import torch  # noqa: E402
import torch.nn.utils.prune  # noqa: E402,F401

from search.calibration import capture  # noqa: E402
from search import baselines as bl  # noqa: E402
from sparsim.cli import main  # noqa: E402
from workloads import zoo  # noqa: E402


def test_calibration_rows_times_gemm_weight_is_the_layer_output():
    model, inputs = zoo.build("resnet18", seed=0, batch=1)
    wl = sparsim.trace(model, inputs)
    cal = capture(model, inputs, wl, rows=10 ** 9)
    outs = {}
    hooks = [model.get_submodule(n).register_forward_hook(lambda m, a, o, n=n: outs.__setitem__(n, o))
             for n in ("layer2.0.conv1", "layer1.0.conv2", "fc")]
    with torch.no_grad():
        model(*inputs)
    for h in hooks:
        h.remove()
    for name in ("layer2.0.conv1", "layer1.0.conv2", "fc"):
        layer = wl.layer(name)
        a = cal[name].sample                         # (g, all rows, k), rows in output order
        got = a[0] @ layer.gemm_weight()[0]          # (rows, n)
        o = outs[name]
        if o.dim() == 4:
            o = o.permute(0, 2, 3, 1).reshape(-1, o.shape[1])
        bias = model.get_submodule(name).bias
        if bias is not None:
            o = o - bias
        np.testing.assert_allclose(got, o.detach().numpy(), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(cal[name].sq_norm[0], (a[0].astype(np.float64) ** 2).sum(0), rtol=1e-5)


def test_erk_lamp_global_meet_the_density(mlp):
    cost = HardwareCost(mlp, accel.load("vegeta-flex"), ["2:4"], pins=["fc3"])
    lis = bl._prunable_layers(cost)
    assert lis == [0, 1]
    total = sum(mlp.layers[li].weight.size for li in lis)
    for fn in (bl.global_magnitude, bl.lamp, bl.erk):
        wl = fn(cost, 0.3)
        kept = sum(int(np.count_nonzero(wl.layers[li].mask)) if wl.layers[li].mask is not None
                   else wl.layers[li].weight.size for li in lis)
        assert kept / total == pytest.approx(0.3, abs=2e-3), fn.__name__
        assert wl.layer("fc3").mask is None
    d = bl.erk_densities(cost, 0.3)
    assert d[0] > d[1]     # ERK keeps more of the 64-input layer than of the 128 x 128 one


def test_allocation_baselines_are_table_assignments(r18):
    """GM, LAMP and ERK are per-layer unstructured densities: given as extra candidates of their
    layers, each baseline is a table assignment whose cost equals simulate on the baseline workload,
    and global magnitude is one |W| threshold over all prunable layers."""
    acc = accel.load("vegeta-flex")
    allocs = bl.allocation_patterns(r18, ["conv1"], 0.5)
    assert set(allocs) == {"global magnitude 0.5", "LAMP 0.5", "ERK 0.5"}
    cost = HardwareCost(r18, acc, ["2:4"], pins=["conv1"], extra=bl.allocation_extras(allocs, r18))
    assert cost.n_shared == 2 and cost.shape[1] > 2
    assert not cost.allowed[0, 2:].any()             # conv1 is pinned: no extra candidate
    wls = bl.allocations(cost, 0.5)
    for name, pats in allocs.items():
        a = bl.allocation_assignment(cost, pats)
        r, t = simulate(wls[name], acc).totals, cost.totals(a)
        assert t["cycles"] == r["cycles"], name
        assert t["energy_pj"] == pytest.approx(r["energy_pj"], rel=1e-12, abs=0), name
        assert t["dram_bytes"] == pytest.approx(r["dram_bytes"], rel=1e-12, abs=0), name
    lis = bl.prunable_layers(r18, ["conv1"])
    w = np.concatenate([np.abs(r18.layers[li].gemm_weight()).ravel() for li in lis])
    gm = wls["global magnitude 0.5"]
    kept = np.concatenate([gm.layers[li].gemm_mask().ravel() for li in lis])
    assert kept.sum() == int(0.5 * w.size + 0.5) and w[kept].min() >= w[~kept].max()
    with pytest.raises(SearchError, match="no layer named 'nope'"):
        HardwareCost(r18, acc, ["2:4"], extra={"nope": ["unstructured:0.5"]})


def test_pareto_front_covers_every_baseline(r18):
    """The front covers each baseline: some point no worse in (proxy, cycles), some in (proxy, energy)."""
    res = sparsim.search(r18, "vegeta-flex", objective="pareto", evals=500, pins=["conv1", "fc"], seed=2)
    assert len(res.baselines) == 7
    f = res.front
    for _, b in res.baselines.iterrows():
        better = f.proxy >= b.proxy - 1e-12
        assert (better & (f.cycles <= b.cycles)).any(), b["name"]
        assert (better & (f.energy_pj <= b.energy_pj * (1 + 1e-12))).any(), b["name"]


def test_same_seed_same_front_and_columns(mlp):
    model, inputs = zoo.build("mlp_digits", seed=0, batch=4)
    kw = dict(objective="pareto", evals=400, candidates="dense,2:4,1:4,2:8,unstructured:0.3",
              proxy="reconstruction", model=model, inputs=inputs)
    a = sparsim.search(mlp, "vegeta-flex", seed=3, **kw)
    b = sparsim.search(mlp, "vegeta-flex", seed=3, **kw)
    pd_testing = pytest.importorskip("pandas.testing")
    pd_testing.assert_frame_equal(a.front, b.front, check_exact=True)
    assert list(a.front.columns) == ["proxy", "cycles", "energy_pj", "dram_bytes", "speedup"] + [
        f"layer:{l.name}" for l in mlp.layers]
    # every front point is non-dominated and its numbers are the tables'
    F = np.stack([-a.front.proxy, a.front.cycles, a.front.energy_pj], axis=1)
    for i in range(len(F)):
        assert not np.any(np.all(F <= F[i], axis=1) & np.any(F < F[i], axis=1))
    wl = a.apply(index=len(a.front) - 1)
    assert simulate(wl, accel.load("vegeta-flex")).totals["cycles"] == a.front.cycles.iloc[-1]


def test_nsga2_same_seed_same_population_and_beats_random(r18):
    from search.algorithms import Problem, hypervolume, nondominated, nsga2, random_search
    from search.proxies import Proxy
    cost = HardwareCost(r18, accel.load("vegeta-flex"), ["2:4", "1:4"], pins=["conv1"])
    problem = Problem(cost, Proxy("magnitude", r18).table(cost))
    a, b = nsga2(problem, 600, seed=5), nsga2(problem, 600, seed=5)
    assert a.shape == (600, len(r18.layers)) and np.array_equal(a, b)
    assert not np.array_equal(a, nsga2(problem, 600, seed=6))
    fa, fr = problem.objectives(a), problem.objectives(random_search(problem, 600, seed=5))
    assert hypervolume(fa[nondominated(fa)]) > hypervolume(fr[nondominated(fr)])


def test_joint_reports_designs_that_do_not_fit(mlp):
    res = sparsim.search(mlp, "sat-vcu1525", objective="latency", budget=0.9, candidates="2:8,1:4",
                         joint={"rows": [16, 1024], "dataflow": ["ws", "os"]})
    assert list(res.front.columns[5:7]) == ["rows", "dataflow"]
    assert res.infeasible is not None and set(res.infeasible["rows"]) == {1024}
    assert "does not fit" in res.infeasible["reason"].iloc[0]
    cost, a = res.cost_of()
    assert cost.accelerator.compute.rows == int(res.front["rows"].iloc[0])
    assert simulate(res.apply(), cost.accelerator).totals["cycles"] == res.front.cycles.iloc[0]


@pytest.mark.slow
def test_cli_masks_roundtrip_through_torch_prune(tmp_path, capsys):
    out, masks, png = tmp_path / "p.csv", tmp_path / "m.pt", tmp_path / "f.png"
    rc = main(["search", "--model", "resnet18", "--accel", "vegeta-flex", "--objective", "latency", "--budget", "0.6",
               "--candidates", "dense,2:4,1:4,unstructured:0.3", "--pin", "conv1,fc", "--out", str(out),
               "--masks", str(masks), "--plot", str(png)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "uniform 2:4" in text and "LAMP" in text and "chosen *" in text
    import pandas as pd
    front = pd.read_csv(out)
    assert len(front) == 1 and front["layer:conv1"].iloc[0] == "dense"
    loaded = torch.load(masks)
    model, inputs = zoo.build("resnet18", seed=0, batch=1)
    for name, m in loaded.items():
        assert m.dtype == torch.bool and m.shape == model.get_parameter(name).shape
        mod_name, _, attr = name.rpartition(".")
        torch.nn.utils.prune.custom_from_mask(model.get_submodule(mod_name), attr, m)
    wl = sparsim.trace(model, inputs)
    assert simulate(wl, accel.load("vegeta-flex")).totals["cycles"] == front["cycles"].iloc[0]
    assert front["cycles"].iloc[0] <= 0.6 * simulate(sparsim.trace_zoo("resnet18"), accel.load("vegeta-flex")).totals["cycles"]
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize("args, needle", [
    (["--candidates", "dense,2:4,3:q"], "candidate '3:q'"),
    (["--candidates", " , "], "empty"),
    (["--pin", "nosuchlayer"], "--pin 'nosuchlayer'"),
    (["--objective", "latency", "--budget", "0.05"], "--budget 0.05: below the fastest"),
    (["--out", "front.txt"], "--out front.txt"),
    (["--joint", "rowz=4"], "--joint rowz"),
])
def test_cli_bad_inputs_exit_2(args, needle, capsys):
    rc = main(["search", "--model", "mlp_digits", "--accel", "vegeta-flex", "--evals", "50"] + args)
    err = capsys.readouterr().err
    assert rc == 2
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
