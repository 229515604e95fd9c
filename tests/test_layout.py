import numpy as np
import pytest

from workloads import WeightLayout
from workloads.layout import from_gemm, to_gemm

from . import naive


@pytest.mark.parametrize("cout,cin,groups,kh,kw", [(8, 4, 1, 3, 3), (6, 6, 3, 3, 1), (4, 4, 4, 3, 3), (5, 3, 1, 1, 1)])
def test_conv_to_gemm_matches_naive(rng, cout, cin, groups, kh, kw):
    w = rng.standard_normal((cout, cin // groups, kh, kw))
    g = to_gemm(w, WeightLayout.CONV, groups)
    np.testing.assert_array_equal(g, naive.conv_weight_to_gemm(w, groups))
    np.testing.assert_array_equal(from_gemm(g, WeightLayout.CONV, w.shape), w)


def test_conv1d_roundtrip(rng):
    w = rng.standard_normal((6, 2, 5))
    g = to_gemm(w, WeightLayout.CONV, 3)
    assert g.shape == (3, 10, 2)
    np.testing.assert_array_equal(from_gemm(g, WeightLayout.CONV, w.shape), w)


def test_nk_and_kn(rng):
    w = rng.standard_normal((5, 7))  # nn.Linear(7, 5)
    g = to_gemm(w, WeightLayout.NK)
    assert g.shape == (1, 7, 5)
    np.testing.assert_array_equal(g[0], w.T)
    np.testing.assert_array_equal(from_gemm(g, WeightLayout.NK, w.shape), w)
    kn = rng.standard_normal((3, 4, 2))
    np.testing.assert_array_equal(to_gemm(kn, WeightLayout.KN, 3), kn)
    np.testing.assert_array_equal(from_gemm(kn, WeightLayout.KN, kn.shape), kn)
