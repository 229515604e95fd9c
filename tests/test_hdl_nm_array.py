"""nm_array RTL against its golden model on Verilator and Icarus (slow: marked, run by make test / CI)."""
import numpy as np
import pytest

from hdl.runner import HdlError, check_array_params, run_on_all_simulators, simulator_missing
from simulator.golden import ArrayFold, compress_nm, nm_array_timeline

SIMS = ["verilator", "icarus"]


def make_fold(rng, r, c, n, m, rows, dense_w=None, mask=None):
    """A fold from a dense (k = R/N*M) x C weight tile with an N:M mask, compressed into R slots."""
    gr = r // n
    k = gr * m
    if dense_w is None:
        dense_w = rng.integers(-128, 128, size=(k, c))
        mask = np.zeros((k, c), dtype=bool)
        for col in range(c):
            for g in range(gr):
                keep = rng.choice(m, size=rng.integers(0, n + 1), replace=False)  # at most N per group
                mask[g * m + keep, col] = True
    w = np.zeros((r, c), dtype=int)
    ix = np.zeros((r, c), dtype=int)
    for col in range(c):
        cw, ci = compress_nm(dense_w[:, col], mask[:, col], n, m)
        w[:, col], ix[:, col] = cw, ci
    acts = rng.integers(-128, 128, size=(rows, k))
    return ArrayFold(tuple(map(tuple, w.tolist())), tuple(map(tuple, ix.tolist())), tuple(map(tuple, acts.tolist()))), \
        dense_w * mask, acts


def vector(folds, rng, length, bubbles):
    pv, pr = (0.7, 0.6) if bubbles else (1.0, 1.0)
    return {"folds": [{"w": f.w, "idx": f.idx, "rows": f.rows} for f in folds],
            "wl_valid": (rng.random(length) < pv).tolist(), "in_valid": (rng.random(length) < pv).tolist(),
            "out_ready": (rng.random(length) < pr).tolist()}


def _folds(vec):
    return [ArrayFold(tuple(map(tuple, f["w"])), tuple(map(tuple, f["idx"])), tuple(map(tuple, f["rows"])),
                      tuple(f["gsel"]) if f.get("gsel") is not None else None)
            for f in vec["folds"]]


def test_golden_array_matches_dense_matmul_and_pipeline_latency():
    rng = np.random.default_rng(3)
    fold, wdense, acts = make_fold(rng, 4, 3, 2, 4, rows=5)
    n_rows = 100
    ev, first, _ = nm_array_timeline([fold], [True] * n_rows, [True] * n_rows, [True] * n_rows, 4, 3, 2, 4)
    assert [list(e.values) for e in ev] == (acts @ wdense).tolist()
    # weights load in cycles 0..3, the first row is accepted in cycle 4 and leaves R + C = 7 later
    assert first == 0 and ev[0].cycle == 4 + 4 + 3 and ev[-1].last and not ev[0].last
    # with no backpressure, first input to last output: 2R + C + T cycles (SCALE-Sim's fold is 2R + C + T - 2)
    assert ev[-1].cycle - first + 1 == 2 * 4 + 3 + 5


@pytest.mark.parametrize("params,message", [
    ({"R": 6, "C": 4, "N": 4, "M": 4, "DW": 8, "AW": 32}, "multiple of N"),
    ({"R": 4, "C": 1, "N": 2, "M": 4, "DW": 8, "AW": 32}, "C: expected an integer >= 2"),
    ({"R": 4, "C": 4, "N": 2, "M": 6, "DW": 8, "AW": 32}, "power of two"),
    ({"R": 0, "C": 4, "N": 2, "M": 4, "DW": 8, "AW": 32}, "R: expected"),
])
def test_bad_array_parameters(params, message):
    with pytest.raises(HdlError, match=message):
        check_array_params(params)


def skip_without_simulators():
    for sim in SIMS:
        if simulator_missing(sim):
            pytest.skip(simulator_missing(sim))


def run_both(params, vec, defines=None):
    skip_without_simulators()
    # the same test on both simulators must give the same cycle counts (else AssertionError)
    res = run_on_all_simulators("nm_array", params, vec, "hdl.tb.test_nm_array", defines=defines)
    ev, first, _ = nm_array_timeline(_folds(vec), vec["wl_valid"], vec["in_valid"], vec["out_ready"], params["R"],
                                     params["C"], params["N"], params["M"], params["AW"])
    assert [tuple(e) for e in res["verilator"]["events"]] == [(e.cycle, list(e.values), e.last) for e in ev]
    return res


@pytest.mark.slow
@pytest.mark.parametrize("n,m,r,c", [(1, 4, 4, 3), (2, 4, 4, 4), (4, 4, 4, 2), (2, 8, 4, 3), (4, 8, 8, 2)])
def test_nm_array_folds_with_backpressure(n, m, r, c):
    rng = np.random.default_rng(100 * n + m)
    params = check_array_params({"R": r, "C": c, "N": n, "M": m, "DW": 8, "AW": 32})
    folds = [make_fold(rng, r, c, n, m, rows=int(rng.integers(1, 7)))[0] for _ in range(3)]
    run_both(params, vector(folds, rng, 600, bubbles=True))


@pytest.mark.slow
def test_nm_array_real_mask_no_backpressure():
    import sparsim
    layer = sparsim.trace_zoo("mlp_digits").sparsify("2:4").layer("fc2")
    w = layer.gemm_weight()[0][:8, :4]          # k = 8 (two groups of 4), 4 output channels
    mask = layer.gemm_mask()[0][:8, :4]
    q = np.round(w / np.abs(w).max() * 127).astype(int)
    rng = np.random.default_rng(5)
    params = check_array_params({"R": 4, "C": 4, "N": 2, "M": 4, "DW": 8, "AW": 32})
    fold, dense, acts = make_fold(rng, 4, 4, 2, 4, rows=6, dense_w=q, mask=mask)
    res = run_both(params, vector([fold, fold], rng, 200, bubbles=False))
    got = [e[1] for e in res["verilator"]["events"]]
    assert got == (acts @ dense).tolist() * 2


def engine_action_counts(folds, r, c, n, m, masks):
    """What the fast engine charges energy for on the same folds: each fold is a layer of T rows,
    k = R/N x M, n = C with the fold's mask, on an R x C weight-stationary array with the mode."""
    import accel
    from simulator import simulate
    from workloads import Layer, LayerKind, WeightLayout, Workload
    doc = {"name": "rtl-array", "compute": {"rows": r, "cols": c, "dataflow": "ws", "clock_hz": 1e9,
                                            "sparse_modes": ["dense"] + ([f"{n}:{m}"] if n < m else [])},
           "memories": [{"name": "buf", "size_bytes": 1 << 30, "read_bw_bytes_per_cycle": 1e9,
                         "holds": ["activation", "weight", "output"]}],
           "dram": {"bandwidth_bytes_per_s": 1e18}}
    acc = accel.build(doc)
    layers = []
    for i, (fold, mask) in enumerate(zip(folds, masks)):
        k = (r // n) * m
        layers.append(Layer(name=f"f{i}", kind=LayerKind.MATMUL, m=len(fold.rows), n=c, k=k, weight_name="w",
                            weight_layout=WeightLayout.KN, mask=mask[None]))
    res = simulate(Workload(name="tile", layers=tuple(layers)), acc)
    assert set(res.layers["mode"]) == {f"{n}:{m}" if n < m else "dense"}
    return int(res.totals["executed_macs"]), int(res.totals["weight_loads"])


@pytest.mark.slow
@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (4, 4)])
def test_rtl_activity_matches_engine_action_counts(n, m):
    """Multiplies (= index-mux selects = partial-sum register writes) and weight-register writes
    counted inside the RTL equal the counts the engine charges energy for, on the same tiles."""
    rng = np.random.default_rng(11 * n + m)
    r, c = 4, 3
    folds, masks = [], []
    for t in (3, 7, 2):
        k = (r // n) * m
        dense = rng.integers(1, 128, size=(k, c)) * rng.choice([-1, 1], size=(k, c))
        from workloads import NM
        mask = NM(n, m).mask(dense.astype(float)) if n < m else np.ones((k, c), dtype=bool)
        fold, _, _ = make_fold(rng, r, c, n, m, rows=t, dense_w=dense, mask=mask)
        folds.append(fold)
        masks.append(mask)
    params = check_array_params({"R": r, "C": c, "N": n, "M": m, "DW": 8, "AW": 32})
    vec = vector(folds, rng, 400, bubbles=True)
    act = run_both(params, vec, defines={"SPARSIM_ACTIVITY": 1})["verilator"]["activity"]
    executed, weight_loads = engine_action_counts(folds, r, c, n, m, masks)
    assert act["mults"] == executed == sum(len(f.rows) for f in folds) * r * c
    assert act["weight_writes"] == weight_loads == len(folds) * r * c
    assert act["in_beats"] == act["out_beats"] == sum(len(f.rows) for f in folds)


# ------------------------------------------------------------------ multi-pass N:M (arbitrary masks)
def multipass_folds(rng, dense, mask, n, m, r, rows):
    """Folds of a k x C tile scheduled multi-pass, and the activations they stream."""
    from simulator.golden import fold_beat, schedule_multipass
    sched = schedule_multipass(dense, mask, n, m, r)
    acts = rng.integers(-128, 128, size=(rows, dense.shape[0]))
    folds = [ArrayFold(w, ix, tuple(fold_beat(a, groups, m, r // n) for a in acts), gsel)
             for w, ix, gsel, groups in sched.folds]
    return sched, folds, acts


def _multipass_vector(folds, rng, length, bubbles):
    vec = vector(folds, rng, length, bubbles)
    for f, fold in zip(vec["folds"], folds):
        f["gsel"] = fold.gsel
    return vec


def test_multipass_schedule_golden_sums_to_the_masked_matmul():
    """Partial sums of the multi-pass folds add up to acts @ (W x mask) for masks with more than N
    nonzeros per group; the fold count is ceil(sum of passes / (R / N)), each group's passes
    ceil(j / N) for the column that keeps the most (at least one)."""
    from simulator.golden import array_row_result
    rng = np.random.default_rng(7)
    for n, m, r, density in [(2, 4, 4, 0.7), (1, 4, 4, 0.5), (2, 8, 8, 0.3), (4, 8, 8, 0.9)]:
        k, c = 6 * m, 5
        dense = rng.integers(-128, 128, size=(k, c))
        mask = rng.random((k, c)) < density
        sched, folds, acts = multipass_folds(rng, dense, mask, n, m, r, rows=4)
        counts = mask.reshape(k // m, m, c).sum(axis=1).max(axis=1)
        assert sched.passes == tuple(max(1, -(-int(j) // n)) for j in counts)
        assert len(folds) == -(-sum(sched.passes) // (r // n))
        total = sum(np.array([array_row_result(f, row, n, m, 32) for row in f.rows]) for f in folds)
        assert (total == acts @ (dense * mask)).all()
        assert max(sched.passes) > 1          # the masks do need more than one pass somewhere


@pytest.mark.slow
@pytest.mark.parametrize("density,bubbles", [(0.5, False), (0.7, True)])
def test_nm_array_multipass_real_unstructured_mask(density, bubbles):
    """A zoo layer's weights, pruned unstructured by magnitude to 50 % and 70 % density (groups with 3
    or 4 nonzeros take two passes), run multi-pass on both simulators, calm and with bubbles."""
    from workloads import Unstructured, trace, zoo
    model, inputs = zoo.build("mlp_digits", seed=0)
    w = trace(model, inputs).layer("fc2").gemm_weight()[0][:24, :4]       # k = 24: six groups of 4
    mask = Unstructured(density).mask(w)
    q = np.round(w / np.abs(w).max() * 127).astype(int)
    rng = np.random.default_rng(int(density * 10))
    params = check_array_params({"R": 4, "C": 4, "N": 2, "M": 4, "DW": 8, "AW": 32})
    sched, folds, acts = multipass_folds(rng, q, mask, 2, 4, 4, rows=5)
    assert max(sched.passes) == 2
    res = run_both(params, _multipass_vector(folds, rng, 900, bubbles))
    rows = [e[1] for e in res["verilator"]["events"]]
    per_fold = np.array(rows).reshape(len(folds), 5, 4)
    assert (per_fold.sum(axis=0) == acts @ (q * mask)).all()


@pytest.mark.slow
def test_nm_array_multipass_random_masks_with_backpressure():
    rng = np.random.default_rng(21)
    # the 4x3 2:8 array is also built by test_nm_array_folds_with_backpressure: one build for both
    params = check_array_params({"R": 4, "C": 3, "N": 2, "M": 8, "DW": 8, "AW": 32})
    dense = rng.integers(-128, 128, size=(40, 3))
    sched, folds, acts = multipass_folds(rng, dense, rng.random((40, 3)) < 0.6, 2, 8, 4, rows=4)
    assert max(sched.passes) >= 3
    run_both(params, _multipass_vector(folds, rng, 1500, bubbles=True))
