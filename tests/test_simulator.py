import json

import numpy as np
import pandas as pd
import pytest

import accel
import sparsim
from simulator import COLUMNS, SimulationError, simulate
from simulator.kernels import as_u8, block_max_counts, column_blocks, nonzero_columns
from workloads import NM, Layer, LayerKind, WeightLayout, Workload

from . import naive


def make_accel(rows=8, cols=8, dataflow="ws", modes=("dense",), big=True, dram_bw=1e15, zero="skip",
               amax=None, double=True, out_kib=None):
    size = 1 << 30 if big else 64 * 1024
    doc = {"name": "t", "compute": {"rows": rows, "cols": cols, "dataflow": dataflow, "clock_hz": 1e9,
                                    "sparse_modes": list(modes), "zero_handling": zero},
           "memories": [{"name": "a", "size_bytes": size, "read_bw_bytes_per_cycle": 1e9, "holds": ["activation"],
                         "double_buffered": double},
                        {"name": "w", "size_bytes": size, "read_bw_bytes_per_cycle": 1e9, "holds": ["weight"],
                         "double_buffered": double},
                        {"name": "o", "size_bytes": (out_kib * 1024) if out_kib else size,
                         "read_bw_bytes_per_cycle": 1e9, "holds": ["output"], "double_buffered": double}],
           "dram": {"bandwidth_bytes_per_s": dram_bw}}
    if amax:
        doc["compute"]["arbitrary_nm_max_m"] = amax
    return accel.build(doc)


def gemm_layer(m, n, k, mask=None, groups=1, weight=None, name="g"):
    if weight is None:
        weight = np.random.default_rng(0).standard_normal((groups, k, n)).astype(np.float32)
    return Layer(name=name, kind=LayerKind.MATMUL, m=m, n=n, k=k, groups=groups, weight_name=f"{name}.w",
                 weight=weight, weight_layout=WeightLayout.KN, mask=mask)


def wl_of(*layers):
    return Workload(name="t", layers=tuple(layers))


# ------------------------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("shape,m,bw", [((1, 16, 8), 4, 4), ((2, 13, 5), 4, 2), ((1, 7, 1), 4, 1),
                                        ((3, 9, 6), 8, 6), ((1, 5, 3), 2, 8), ((1, 32, 17), 4, 8)])
@pytest.mark.parametrize("density", [0.0, 0.3, 0.7, 1.0])
def test_block_max_counts_matches_naive(rng, shape, m, bw, density):
    mask = rng.random(shape) < density
    if density > 0:
        mask[:, :, 0] = False  # a dead column
        mask[:, : min(4, shape[1]), -1] = False  # all-zero groups
    u8 = as_u8(mask)
    live = nonzero_columns(u8)
    np.testing.assert_array_equal(live, mask.any(axis=1))
    cb, nb, live_n = column_blocks(live, bw)
    got, hist = block_max_counts(u8, m, cb, nb)
    exp, exp_hist = naive.block_max_counts(mask, m, bw)
    np.testing.assert_array_equal(got, exp)
    assert list(hist) == exp_hist


# ------------------------------------------------------------------------------------- dense timing
SCALESIM_GOLDEN = [  # measured with scalesim==3.0.0, 8x8 array, GEMM topology (benchmarks/bench_scalesim.py)
    ((20, 12, 10), {"ws": 167, "os": 143, "is": 203}),
    ((7, 3, 5), {"ws": 28, "os": 18, "is": 24}),
    ((64, 64, 64), {"ws": 5503, "os": 4991, "is": 5503}),
]


@pytest.mark.parametrize("mnk,expected", SCALESIM_GOLDEN)
@pytest.mark.parametrize("df", ["ws", "os", "is"])
def test_dense_compute_cycles_match_scalesim_golden(mnk, expected, df):
    m, n, k = mnk
    r = simulate(wl_of(gemm_layer(m, n, k)), make_accel(dataflow=df))
    assert r.layers.loc[0, "compute_cycles"] == expected[df]
    assert naive.scalesim_compute_cycles(m, n, k, 8, 8, df) == expected[df]


SHAPES = [(1, 1, 1), (1, 1000, 512), (3136, 64, 576), (49, 512, 4608), (197, 1152, 384), (31, 33, 35),
          (12544, 64, 147), (128, 3072, 768)]


@pytest.mark.parametrize("mnk", SHAPES)
@pytest.mark.parametrize("df", ["ws", "os", "is"])
@pytest.mark.parametrize("rc", [(32, 32), (16, 8), (8, 64)])
def test_dense_fold_formula_on_layer_suite(mnk, df, rc):
    m, n, k = mnk
    acc = make_accel(rows=rc[0], cols=rc[1], dataflow=df)
    layer = Layer(name="x", kind=LayerKind.MATMUL, m=m, n=n, k=k)
    r = simulate(wl_of(layer), acc)
    assert r.layers.loc[0, "compute_cycles"] == naive.scalesim_compute_cycles(m, n, k, rc[0], rc[1], df)
    assert r.layers.loc[0, "stall_cycles"] == 0


def test_dataflow_override_and_bad_engine():
    layer = Layer(name="x", kind=LayerKind.MATMUL, m=20, n=12, k=10)
    acc = make_accel(dataflow="ws")
    assert simulate(wl_of(layer), acc, dataflow="os").layers.loc[0, "compute_cycles"] == 143
    with pytest.raises(SimulationError, match="dataflow must be one of"):
        simulate(wl_of(layer), acc, dataflow="xs")
    with pytest.raises(SimulationError, match="engine: expected 'fast' or 'event'"):
        simulate(wl_of(layer), acc, engine="evnt")


# ------------------------------------------------------------------------------------ sparse timing
@pytest.mark.parametrize("df", ["ws", "os", "is"])
@pytest.mark.parametrize("pattern", ["2:4", "1:4", "unstructured:0.5", "unstructured:0.2", "channel:0.5"])
@pytest.mark.parametrize("shape", [(10, 20, 24), (3, 9, 37), (50, 1, 16)])
def test_sparse_timing_matches_naive(df, pattern, shape):
    m, n, k = shape
    layer = gemm_layer(m, n, k).sparsify(sparsim_pattern(pattern))
    for mode in [(2, 4), (1, 4)]:
        acc = make_accel(dataflow=df, modes=("dense", f"{mode[0]}:{mode[1]}"))
        got = simulate(wl_of(layer), acc).layers.iloc[0]
        sparse = naive.sparse_compute_cycles(layer.gemm_mask(), m, 8, 8, df, *mode)
        gm = layer.gemm_mask()   # dense mode drops all-zero columns and all-zero k rows
        dense = naive.scalesim_compute_cycles(m, int(gm.any(axis=1).sum()), int(gm.any(axis=2).sum()), 8, 8, df)
        assert got.compute_cycles == min(sparse, dense)
        # equal cycles: the mode with fewer DRAM bytes (the compressed one) may win
        assert got["mode"] == (f"{mode[0]}:{mode[1]}" if sparse < dense else "dense") or sparse == dense


def sparsim_pattern(text):
    from workloads import parse_pattern
    return parse_pattern(text)


def test_dense_only_hardware_runs_masks_dense():
    layer = gemm_layer(64, 64, 64)
    acc = make_accel()
    d = simulate(wl_of(layer), acc).layers.iloc[0]
    s = simulate(wl_of(layer.sparsify(NM(2, 4))), acc).layers.iloc[0]
    assert s.compute_cycles == d.compute_cycles and s["mode"] == "dense"
    assert s.effective_macs == d.effective_macs // 2


def test_gating_saves_energy_not_cycles():
    layer = gemm_layer(64, 64, 64).sparsify(NM(2, 4))
    skip = simulate(wl_of(layer), make_accel(modes=("dense", "2:4"), zero="skip")).layers.iloc[0]
    gate = simulate(wl_of(layer), make_accel(modes=("dense", "2:4"), zero="gate")).layers.iloc[0]
    dense = simulate(wl_of(gemm_layer(64, 64, 64)), make_accel(modes=("dense", "2:4"), zero="gate")).layers.iloc[0]
    assert gate.compute_cycles == dense.compute_cycles > skip.compute_cycles
    assert gate.energy_mac_pj < dense.energy_mac_pj


def test_arbitrary_nm_hardware():
    layer = gemm_layer(64, 32, 64).sparsify(NM(1, 8))
    r = simulate(wl_of(layer), make_accel(amax=8)).layers.iloc[0]
    assert r["mode"] == "1:8"


def test_all_zero_layer_costs_nothing():
    layer = gemm_layer(8, 8, 8, mask=np.zeros((1, 8, 8), bool))
    r = simulate(wl_of(layer), make_accel(modes=("dense", "2:4"))).layers.iloc[0]
    assert r.compute_cycles == 0 and r.effective_macs == 0


def test_psum_chunking_when_outputs_do_not_fit():
    layer = Layer(name="x", kind=LayerKind.MATMUL, m=4096, n=64, k=64)
    big = simulate(wl_of(layer), make_accel()).layers.iloc[0]
    # output buffer of 16 KiB, double buffered: 8 KiB = 256 rows x 8 columns x 4 B per chunk
    small = simulate(wl_of(layer), make_accel(out_kib=16)).layers.iloc[0]
    assert big.folds == 64 and small.folds == 64 * 16
    assert small.compute_cycles > big.compute_cycles


# ------------------------------------------------------------------------- sanity a hardware person checks
@pytest.fixture(scope="module")
def r50():
    return sparsim.trace_zoo("resnet50")


def _compute_bound(r):
    return r.layers[r.layers.stall_cycles < 0.02 * r.layers.cycles]


def test_2of4_on_2of4_hardware_near_2x_on_compute_bound_layers(r50):
    acc = accel.load("vegeta-flex")
    d, s = simulate(r50, acc), simulate(r50.sparsify("2:4"), acc)
    speed = d.layers.cycles / s.layers.cycles
    cb = (d.layers.stall_cycles < 0.02 * d.layers.cycles) & (s.layers.stall_cycles < 0.02 * s.layers.cycles)
    big = d.layers.k >= 256
    assert (cb & big).sum() >= 5
    assert speed[cb & big].between(1.8, 2.0).all()
    # memory-bound layers gain less than compute-bound ones
    mb = s.layers.stall_cycles > 0.3 * s.layers.cycles
    if mb.any():
        assert speed[mb].mean() < speed[cb & big].mean()


def test_1of4_on_flexible_hardware_near_4x(r50):
    acc = make_accel(rows=32, cols=32, modes=("dense", "1:4", "2:4"))
    d, s = simulate(r50, acc), simulate(r50.sparsify("1:4"), acc)
    speed = d.layers.compute_cycles / s.layers.compute_cycles
    assert (speed[d.layers.k >= 512] > 3.5).all()
    assert d.totals["compute_cycles"] / s.totals["compute_cycles"] > 3.3


def test_unstructured_slower_than_true_2of4_on_2of4_hardware(r50):
    acc = accel.load("sparse-tc-2of4")
    nm = simulate(r50.sparsify("2:4"), acc).totals
    un = simulate(r50.sparsify("unstructured:0.5"), acc).totals
    assert un["compute_cycles"] > 1.3 * nm["compute_cycles"]


@pytest.mark.parametrize("preset", ["vegeta-flex", "sparse-tc-2of4", "sat-vcu1525", "tpu-like"])
def test_sparse_never_slower_than_dense_and_energy_falls(r50, preset):
    acc = accel.load(preset)
    dense = simulate(r50, acc)
    for pat in ["2:4", "1:4", "2:8", "unstructured:0.5", "block:4x4:0.5", "channel:0.5"]:
        s = simulate(r50.sparsify(pat), acc)
        assert (s.layers.cycles <= dense.layers.cycles).all(), pat
        if not acc.compute.sparse.is_dense_only:
            assert s.totals["energy_pj"] <= dense.totals["energy_pj"], pat
    e = [simulate(r50.sparsify(p), acc).totals["energy_pj"] for p in ["dense", "unstructured:0.5", "2:4", "1:4"]]
    if preset == "vegeta-flex":
        assert e[0] > e[2] > e[3]


def test_cycles_never_fall_when_bandwidth_falls(r50):
    wl = r50.sparsify("2:4")
    base = accel.load("vegeta-flex")
    prev = None
    for bw in [1e12, 1e11, 3e10, 1.6e10, 4e9, 1e9]:
        acc = accel.build({**_doc_of("vegeta-flex"), "dram": {"bandwidth_bytes_per_s": bw}})
        r = simulate(wl, acc)
        if prev is not None:
            assert (r.layers.cycles.values >= prev.layers.cycles.values).all()
            # a starved layer may switch to a mode with less traffic, never to less compute
            assert (r.layers.compute_cycles.values >= prev.layers.compute_cycles.values).all()
        prev = r
    assert prev.totals["stall_cycles"] > simulate(wl, base).totals["stall_cycles"]


def _doc_of(preset):
    import yaml
    return yaml.safe_load(accel.presets.path(preset).read_text())


def test_training_workload_simulates(r50):
    tr = sparsim.trace_zoo("mlp_digits").sparsify("2:8").training("bdwp")
    r = simulate(tr, accel.load("sat-vcu1525"))
    modes = dict(zip(r.layers.name, r.layers["mode"]))
    assert modes["fc2.fwd"] == "2:8" and modes["fc2.bwd_data"] == "2:8" and modes["fc2.bwd_weight"] == "dense"


# ------------------------------------------------------------------------------------------ results
def test_result_columns_totals_and_files(tmp_path):
    wl = sparsim.trace_zoo("mlp_digits").sparsify("2:4")
    r = sparsim.simulate(wl, "vegeta-flex")
    assert list(r.layers.columns) == COLUMNS
    for col in ["cycles", "compute_cycles", "stall_cycles", "macs", "effective_macs", "energy_pj"]:
        assert r.totals[col] == pytest.approx(r.layers[col].sum())
    parts = sum(r.totals[c] for c in ["energy_mac_pj", "energy_sram_pj", "energy_dram_pj", "energy_meta_pj",
                                      "energy_static_pj"])
    assert r.totals["energy_pj"] == pytest.approx(parts)
    assert r.totals["latency_s"] == pytest.approx(r.totals["cycles"] / 1e9)
    doc = json.loads(r.to_json(tmp_path / "r.json").read_text())
    assert set(doc) == {"layers", "totals", "accelerator", "workload"} and len(doc["layers"]) == 3
    assert doc["accelerator"]["name"] == "vegeta-flex" and doc["workload"]["name"] == "mlp_digits"
    pd.testing.assert_frame_equal(pd.read_csv(r.to_csv(tmp_path / "r.csv")), r.layers, check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_parquet(r.to_parquet(tmp_path / "r.parquet")), r.layers)



@pytest.mark.parametrize("preset", ["vegeta-flex", "sat-vcu1525"])
def test_simulate_columns_equals_simulate_value_and_type(preset):
    from simulator.engine import simulate_columns
    wl = sparsim.trace_zoo("cnn_digits", batch=2).sparsify("unstructured:0.5").training("bdwp")
    acc = accel.load(preset)
    r = simulate(wl, acc)
    cols, totals = simulate_columns(wl, acc)
    assert list(cols) == list(r.layers.columns)
    for c, values in cols.items():
        want = r.layers[c].tolist()
        assert values == want and [type(v) for v in values] == [type(v) for v in want], c
    want = r.totals_dict()
    assert totals == want and [type(v) for v in totals.values()] == [type(v) for v in want.values()]


def test_column_values_follow_pandas_inference():
    from simulator.columns import column_values
    rows = [{"a": 1, "b": np.int64(2), "c": "x", "d": 1.5}, {"a": 2.5, "b": 3, "c": "y", "d": np.float32(2.0)}]
    got = column_values(rows, ["a", "b", "c", "d"])
    frame = pd.DataFrame(rows, columns=["a", "b", "c", "d"])
    for values, c in zip(got, "abcd"):
        want = frame[c].tolist()
        assert values == want and [type(v) for v in values] == [type(v) for v in want], c

def test_deterministic():
    wl = sparsim.trace_zoo("mobilenet_v2").sparsify("unstructured:0.4")
    a = simulate(wl, accel.load("vegeta-flex")).layers
    b = simulate(wl, accel.load("vegeta-flex")).layers
    pd.testing.assert_frame_equal(a, b)


def test_bad_inputs():
    with pytest.raises(SimulationError, match="expected a workloads.Workload"):
        simulate("resnet", accel.load("tpu-like"))
    with pytest.raises(SimulationError, match="expected an accel.Accelerator"):
        simulate(wl_of(gemm_layer(2, 2, 2)), "tpu-like")


# ------------------------------------------------------------------------------- training traffic
def test_training_traffic_keeps_conv_geometry():
    """Backward-weight reads the input feature map and backward-data writes it (im2col / col2im on
    chip), so neither moves the im2col matrix: for a 3x3 conv that is 9x the feature map."""
    wl = sparsim.trace_zoo("resnet18", batch=2).training("dense")
    r = simulate(wl, accel.load("vegeta-flex")).layers.set_index("name")
    conv = next(l for l in wl.layers if l.name == "layer1.0.conv1.fwd").conv
    fmap = 2 * conv.in_channels * conv.input_size[0] * conv.input_size[1] * 2   # 2 B; padding is made on chip
    fwd, bd, bw = (r.loc[f"layer1.0.conv1.{p}"] for p in ("fwd", "bwd_data", "bwd_weight"))
    assert bw.compulsory_bytes == pytest.approx(fwd.compulsory_bytes)
    assert bd.dram_out_bytes == pytest.approx(fmap) and bw.dram_act_bytes >= fmap
    im2col = bw.k * bw.m * 2
    assert bw.dram_act_bytes < 0.3 * im2col
    for row in (bd, bw):
        assert row.dram_bytes < 2.0 * fwd.dram_bytes


def test_fixed_2of4_hardware_runs_unstructured_masks_dense(r50):
    acc = accel.load("sparse-tc-2of4")
    dense = simulate(r50, acc).totals
    un = simulate(r50.sparsify("unstructured:0.1"), acc)
    assert (un.layers["mode"] == "dense").all()
    assert dense["cycles"] / un.totals["cycles"] == pytest.approx(1.0, abs=0.01)
    nm = simulate(r50.sparsify("2:4"), acc)
    assert (nm.layers["mode"] == "2:4").all()
    # flexible hardware takes extra passes instead
    flex = accel.build({**_doc_of("sparse-tc-2of4"), "compute": {**_doc_of("sparse-tc-2of4")["compute"],
                                                                 "nm_overflow": "passes"}})
    assert (simulate(r50.sparsify("unstructured:0.1"), flex).layers["mode"] == "2:4").any()
