"""nm_dot RTL against the golden model, on Verilator and Icarus (slow: marked, run by make test / CI)."""
import numpy as np
import pytest

from hdl.runner import HdlError, check_nm_params, run_on_all_simulators, simulator_missing
from simulator.golden import Beat, beat_sum, compress_nm, nm_dot_timeline, wrap

SIMS = ["verilator", "icarus"]


def random_vector(n, m, g, seed, beats_per_dot=3, dots=6, bubbles=True, malformed=False):
    rng = np.random.default_rng(seed)
    beats = []
    for d in range(dots):
        for b in range(beats_per_dot):
            idx = []
            for _ in range(g):
                idx += sorted(rng.choice(m, size=n, replace=False).tolist())
            if malformed and d % 3 == 1 and n > 1:
                idx[0], idx[1] = idx[1], idx[0]  # descending pair in group 0
            if malformed and d % 3 == 2 and n > 1 and b == 0:
                idx[-1] = idx[-2]                # repeated index in the last group
            beats.append({"act": rng.integers(-128, 128, g * m).tolist(), "wgt": rng.integers(-128, 128, g * n).tolist(),
                          "idx": idx, "last": b == beats_per_dot - 1})
    length = 40 * len(beats) + 50
    valid = (rng.random(length) < (0.7 if bubbles else 1.0)).tolist()
    ready = (rng.random(length) < (0.6 if bubbles else 1.0)).tolist()
    return {"beats": beats, "valid": valid, "ready": ready}


def _beats(vec):
    return [Beat(tuple(b["act"]), tuple(b["wgt"]), tuple(b["idx"]), b["last"]) for b in vec["beats"]]


def test_golden_beat_sum_and_wrap():
    b = Beat(act=(1, 2, 3, 4), wgt=(5, -6), idx=(1, 3), last=True)
    assert beat_sum(b, 2, 4) == (5 * 2 - 6 * 4, False)
    assert beat_sum(Beat((1, 2, 3, 4), (1, 1), (3, 1), True), 2, 4)[1] is True
    assert wrap(2 ** 31, 32) == -(2 ** 31) and wrap(-1, 8) == -1 and wrap(255, 8) == -1


def test_golden_timeline_backpressure():
    beats = [Beat((1,) * 4, (1, 1), (0, 1), True), Beat((1,) * 4, (2, 2), (0, 1), True)]
    # sink never ready for 3 cycles: the second beat waits for the first output to leave
    ev, first, _ = nm_dot_timeline(beats, [True] * 20, [False, False, False] + [True] * 17, 2, 4)
    assert first == 0 and [(e.cycle, e.value) for e in ev] == [(3, 2), (4, 4)]


def test_compress_nm_roundtrip():
    w = [3, 0, 0, -2, 0, 5, 0, 0, 7]
    mask = [x != 0 for x in w]
    cw, ci = compress_nm(w, mask, 2, 4)
    assert ci == [0, 3, 0, 1, 0, 1] and cw == [3, -2, 0, 5, 7, 0]
    with pytest.raises(ValueError):
        compress_nm([1, 1, 1, 0], [True, True, True, False], 2, 4)


@pytest.mark.parametrize("params,message", [
    ({"N": 5, "M": 4, "G": 1, "DW": 8, "AW": 32}, "N must be <= M"),
    ({"N": 2, "M": 6, "G": 1, "DW": 8, "AW": 32}, "power of two"),
    ({"N": 2, "M": 4, "G": 0, "DW": 8, "AW": 32}, "G: expected an integer >= 1, got 0"),
    ({"N": 2, "M": 4, "G": 1, "DW": 8, "AW": 12}, "at least 2 x DW"),
])
def test_bad_parameters_refused_before_simulation(params, message):
    with pytest.raises(HdlError, match=message):
        check_nm_params(params)


def _run_both(params, vec, request):
    for sim in SIMS:
        if simulator_missing(sim):
            pytest.skip(simulator_missing(sim))
    # the same test on both simulators must give the same cycle counts (else AssertionError)
    results = run_on_all_simulators("nm_dot", params, vec, "hdl.tb.test_nm_dot")
    expected, first, _ = nm_dot_timeline(_beats(vec), vec["valid"], vec["ready"], params["N"], params["M"], params["AW"])
    assert [tuple(e) for e in results["verilator"]["events"]] == [(e.cycle, e.value, e.err) for e in expected]
    return results


@pytest.mark.slow
@pytest.mark.parametrize("n,m", [(1, 4), (2, 4), (2, 8), (4, 8), (4, 4)])
def test_nm_dot_random_with_backpressure(n, m, request):
    params = check_nm_params({"N": n, "M": m, "G": 2, "DW": 8, "AW": 32})
    vec = random_vector(n, m, 2, seed=n * 10 + m, malformed=True)
    _run_both(params, vec, request)


@pytest.mark.slow
def test_nm_dot_real_mask_from_traced_layer(request):
    import sklearn.datasets
    import sparsim
    layer = sparsim.trace_zoo("mlp_digits").sparsify("2:4").layer("fc1")
    w = layer.gemm_weight()[0]            # (64, 128)
    mask = layer.gemm_mask()[0]
    q = np.round(w / np.abs(w).max() * 127).astype(int)
    x = sklearn.datasets.load_digits().data[:2].astype(int)   # real 8x8 digits, values 0..16
    params = check_nm_params({"N": 2, "M": 4, "G": 4, "DW": 8, "AW": 32})
    beats = []
    for row in x:
        for c in range(4):                  # four output channels
            cw, ci = compress_nm(q[:, c], mask[:, c], 2, 4)
            for b in range(0, 16, 4):       # 16 groups of 4 along k, 4 groups per beat
                beats.append({"act": row[b * 4:(b + 4) * 4].tolist(), "wgt": cw[b * 2:(b + 4) * 2],
                              "idx": ci[b * 2:(b + 4) * 2], "last": b == 12})
    rng = np.random.default_rng(7)
    vec = {"beats": beats, "valid": (rng.random(400) < 0.8).tolist(), "ready": (rng.random(400) < 0.7).tolist()}
    res = _run_both(params, vec, request)
    got = [e[1] for e in res["verilator"]["events"]]
    ref = [int(row @ (q[:, c] * mask[:, c])) for row in x for c in range(4)]
    assert got == ref
