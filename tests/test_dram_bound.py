"""benchmarks/bench_dram_bound.py: its complete walk of the engine's tiling space and its lower
bounds, checked against schedules that exist (a lower bound above a real schedule is wrong)."""
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

import accel
from simulator import plan_layer
from workloads import Layer, LayerKind

_spec = importlib.util.spec_from_file_location(
    "bench_dram_bound", Path(__file__).parent.parent / "benchmarks" / "bench_dram_bound.py")


@pytest.fixture(scope="module")
def bench():
    import sys
    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    try:
        mod = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(mod)
    finally:
        sys.path.pop(0)
    return mod


def _design(sizes, pool=False, double_buffered=True, rows=8, cols=8):
    doc = yaml.safe_load(accel.presets.path("vegeta-flex").read_text())
    doc["compute"].update(rows=rows, cols=cols)
    if pool:
        doc["memories"] = [{"name": "pool", "size_bytes": sum(sizes), "read_bw_bytes_per_cycle": 256,
                            "holds": ["activation", "weight", "output"]}]
    else:
        for mem, size in zip(doc["memories"], sizes):
            mem["size_bytes"] = size
    for mem in doc["memories"]:
        mem["double_buffered"] = double_buffered
    return accel.build(doc)


def _shapes(count, seed):
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(16, 700)), int(rng.integers(16, 700)), int(rng.integers(16, 700)))
            for _ in range(count)]


def test_tile_sizes_one_smallest_tile_per_count(bench):
    for size, gran in ((1024, 1), (768, 32), (100, 32), (33, 8)):
        tiles = bench.tile_sizes(size, gran)
        counts = -(-size // tiles)
        every = np.minimum(size, gran * np.arange(1, -(-size // gran) + 1))
        assert set(counts) == set(-(-size // every))                 # every count is reachable
        for c, t in zip(counts, tiles):                              # and with its smallest tile
            assert t == every[-(-size // every) == c].min()


def test_walk_bounds_the_engine_and_compulsory(bench):
    """The complete walk finds no more bytes than the engine's chosen mapping (which lies in the
    walked space) and no fewer than the compulsory bytes."""
    acc = _design((48 * 1024, 24 * 1024, 24 * 1024))
    for m, n, k in _shapes(12, 1):
        layer = Layer(name="g", kind=LayerKind.LINEAR, m=m, n=n, k=k)
        plan = plan_layer(layer, acc)
        best, _, comp = bench.min_dram(layer, acc)
        if plan.mapping.fits:
            assert best <= plan.dram_bytes * (1 + 1e-9)
        assert best >= comp * (1 - 1e-9)
        assert comp == pytest.approx(plan.compulsory_bytes)
        # resident-single keeps the stationary tile once: never more bytes than halving every buffer;
        # uneven tiles (fractional passes) never more than whole ones
        resident = bench.min_dram(layer, acc, "resident")[0]
        assert resident <= best * (1 + 1e-9)
        assert comp * (1 - 1e-9) <= bench.min_dram(layer, acc, "resident", whole=False)[0] <= resident * (1 + 1e-9)


def test_lower_bounds_never_exceed_a_real_schedule(bench):
    """Smith et al.'s bound (any organisation of the capacity) and the per-buffer phase bound stay at
    or below the bytes of schedules that exist: the best tiling of one pool and of three buffers."""
    sizes = (64 * 1024, 32 * 1024, 32 * 1024)
    sep, pool = _design(sizes, double_buffered=False), _design(sizes, pool=True, double_buffered=False)
    for m, n, k in _shapes(10, 2):
        layer = Layer(name="g", kind=LayerKind.LINEAR, m=m, n=n, k=k)
        real_sep = bench.min_dram(layer, sep)[0]
        real_pool = bench.min_dram(layer, pool)[0]
        assert bench.smith_bound(m, n, k, sum(sizes)) <= min(real_sep, real_pool)
        assert bench.phase_bound(m, n, k, sizes) <= real_sep


def test_bounds_grow_as_the_memory_shrinks(bench):
    m, n, k = 1024, 3072, 768
    assert bench.smith_bound(m, n, k, 1 << 19) > bench.smith_bound(m, n, k, 1 << 20) > 0
    small = bench.phase_bound(m, n, k, (1 << 18, 1 << 17, 1 << 17))
    assert small > bench.phase_bound(m, n, k, (1 << 19, 1 << 18, 1 << 18)) > 0
    # the safe form of Smith et al.: 2MNK/sqrt(S) - 2S - MN words of 2 bytes, S = capacity / 2
    s = (1 << 20) / 2
    assert bench.smith_bound(m, n, k, 1 << 20) == pytest.approx(2 * (2 * m * n * k / math.sqrt(s) - 2 * s - m * n))
