import numpy as np
import pytest

from workloads import (NM, Block, Channel, Dense, PatternError, Unstructured, group_counts, mask_stats,
                       parse_pattern)

from . import naive


def _weights(rng, shape, ties=False):
    if ties:  # few distinct magnitudes, so tie-breaking is exercised
        return rng.integers(-3, 4, size=shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("text,expected", [
    ("dense", Dense()), ("2:4", NM(2, 4)), (" 1 : 4 ", NM(1, 4)), ("4:4", NM(4, 4)), ("2:8", NM(2, 8)),
    ("unstructured:0.3", Unstructured(0.3)), ("block:4x4:0.5", Block(4, 4, 0.5)),
    ("channel:0.5", Channel(0.5)), ("Block:2x8:1", Block(2, 8, 1.0)),
])
def test_parse_pattern(text, expected):
    p = parse_pattern(text)
    assert p == expected
    assert parse_pattern(str(p)) == p


@pytest.mark.parametrize("text,fragment", [
    ("5:4", "1 <= N <= M"), ("2:0", "1 <= N <= M"), ("0:4", "1 <= N <= M"), ("-1:4", "1 <= N <= M"),
    ("unstructured:0", "(0, 1]"), ("unstructured:1.5", "(0, 1]"), ("unstructured:abc", "not a number"),
    ("block:0x4:0.5", "positive integer"), ("channel:-0.1", "(0, 1]"), ("sparse", "expected one of"),
    ("", "expected one of"),
])
def test_parse_pattern_rejects(text, fragment):
    with pytest.raises(PatternError) as e:
        parse_pattern(text)
    assert fragment in str(e.value)
    if text:
        assert text in str(e.value)


def test_parse_pattern_rejects_non_string():
    with pytest.raises(PatternError, match="expected a string"):
        parse_pattern(24)


@pytest.mark.parametrize("n,m", [(1, 4), (2, 4), (4, 4), (2, 8), (4, 8), (1, 1), (3, 5)])
@pytest.mark.parametrize("shape", [(1, 16, 3), (2, 13, 5), (1, 7, 1), (3, 3, 2)])
@pytest.mark.parametrize("ties", [False, True])
def test_nm_mask_matches_naive(rng, n, m, shape, ties):
    w = _weights(rng, shape, ties)
    got = NM(n, m).mask(w)
    assert got.dtype == bool and got.shape == w.shape
    np.testing.assert_array_equal(got, naive.nm_mask(w, n, m))
    # at most n per group, and exactly min(n, group length) when weights are nonzero
    counts = group_counts(got, m)
    assert counts.max() <= n


def test_nm_mask_2d_input(rng):
    w = _weights(rng, (12, 4))
    np.testing.assert_array_equal(NM(2, 4).mask(w), naive.nm_mask(w[None], 2, 4)[0])


@pytest.mark.parametrize("density", [0.1, 0.3, 0.5, 0.999, 1.0])
@pytest.mark.parametrize("ties", [False, True])
def test_unstructured_mask_matches_naive(rng, density, ties):
    w = _weights(rng, (2, 10, 7), ties)
    got = Unstructured(density).mask(w)
    np.testing.assert_array_equal(got, naive.unstructured_mask(w, density))
    assert got.sum() == naive.keep_count(density, w.size)


@pytest.mark.parametrize("bh,bw", [(1, 1), (2, 2), (4, 4), (3, 2), (8, 1)])
@pytest.mark.parametrize("density", [0.25, 0.5, 0.8])
def test_block_mask_matches_naive(rng, bh, bw, density):
    w = _weights(rng, (2, 11, 9), ties=True)
    np.testing.assert_array_equal(Block(bh, bw, density).mask(w), naive.block_mask(w, bh, bw, density))


@pytest.mark.parametrize("density", [0.2, 0.5, 1.0])
def test_channel_mask_matches_naive(rng, density):
    w = _weights(rng, (3, 6, 5), ties=True)
    got = Channel(density).mask(w)
    np.testing.assert_array_equal(got, naive.channel_mask(w, density))
    # whole columns only
    assert np.all(got.all(axis=1) | ~got.any(axis=1))


@pytest.mark.parametrize("m", [2, 4, 8])
def test_mask_stats_histogram_matches_naive(rng, m):
    mask = rng.random((2, 19, 6)) < 0.4
    st = mask_stats(mask, mask.shape, m)
    assert list(st.histogram) == naive.group_histogram(mask, m)
    assert st.nnz == mask.sum() and st.size == mask.size
    assert st.density == pytest.approx(mask.mean())


def test_mask_stats_compliance():
    w = np.random.default_rng(0).standard_normal((1, 64, 8))
    st = mask_stats(NM(2, 4).mask(w), (1, 64, 8), 4)
    assert st.is_nm(2) and not st.is_nm(1)
    assert st.compliance(2) == 1.0 and st.compliance(1) == 0.0
    assert st.density == 0.5 and st.max_per_group == 2
    dense = mask_stats(None, (1, 8, 2), 4)
    assert dense.density == 1.0 and dense.histogram == (0, 0, 0, 0, 4)


@pytest.mark.parametrize("kind", ["normal", "few values", "zeros", "nan"])
def test_unstructured_selection_equals_a_stable_descending_sort(kind):
    # the linear-time selection must keep exactly what a stable sort keeps: earlier index on ties
    from workloads.patterns import _top_flat
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 120))
        x = {"normal": lambda: rng.normal(size=n), "few values": lambda: rng.integers(0, 3, n) * 1.0,
             "zeros": lambda: np.zeros(n), "nan": lambda: np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n))}[kind]()
        for keep in (0, 1, n // 3, n - 1, n):
            want = np.zeros(n, dtype=bool)
            want[np.argsort(-x, kind="stable")[:keep]] = True
            assert np.array_equal(_top_flat(x, keep), want), (kind, n, keep)
