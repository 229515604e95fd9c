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
