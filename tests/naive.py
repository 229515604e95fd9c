"""Slow, obvious reference implementations that the fast code is checked against."""
from __future__ import annotations

import math

import numpy as np


def _rank_key(values, idx):
    # larger magnitude first; on ties the smaller index first
    return (-values[idx], idx)


def nm_mask(w, n, m):
    """(g, k, n_cols) -> mask keeping the n largest |w| of every m consecutive elements along k."""
    g, k, cols = w.shape
    out = np.zeros(w.shape, dtype=bool)
    for gi in range(g):
        for c in range(cols):
            for start in range(0, k, m):
                idx = list(range(start, min(start + m, k)))
                mags = {i: abs(float(w[gi, i, c])) for i in idx}
                order = sorted(idx, key=lambda i: (-mags[i], i))
                for i in order[:n]:
                    out[gi, i, c] = True
    return out


def keep_count(density, total):
    return int(math.floor(density * total + 0.5))


def unstructured_mask(w, density):
    flat = [abs(float(x)) for x in w.ravel()]
    order = sorted(range(len(flat)), key=lambda i: (-flat[i], i))
    out = np.zeros(len(flat), dtype=bool)
    for i in order[:keep_count(density, len(flat))]:
        out[i] = True
    return out.reshape(w.shape)


def block_mask(w, bh, bw, density):
    g, k, cols = w.shape
    blocks = []
    for gi in range(g):
        for bi in range(0, k, bh):
            for bj in range(0, cols, bw):
                vals = [abs(float(w[gi, i, j])) for i in range(bi, min(bi + bh, k)) for j in range(bj, min(bj + bw, cols))]
                blocks.append(((gi, bi, bj), sum(vals) / len(vals)))
    order = sorted(range(len(blocks)), key=lambda i: (-blocks[i][1], i))
    out = np.zeros(w.shape, dtype=bool)
    for i in order[:keep_count(density, len(blocks))]:
        gi, bi, bj = blocks[i][0]
        out[gi, bi:bi + bh, bj:bj + bw] = True
    return out


def channel_mask(w, density):
    g, k, cols = w.shape
    norms = []
    for gi in range(g):
        for c in range(cols):
            norms.append(math.sqrt(sum(float(w[gi, i, c]) ** 2 for i in range(k))))
    order = sorted(range(len(norms)), key=lambda i: (-norms[i], i))
    out = np.zeros(w.shape, dtype=bool)
    for i in order[:keep_count(density, len(norms))]:
        out[i // cols, :, i % cols] = True
    return out


def group_histogram(mask, m):
    g, k, cols = mask.shape
    hist = [0] * (m + 1)
    for gi in range(g):
        for c in range(cols):
            for start in range(0, k, m):
                hist[int(sum(bool(mask[gi, i, c]) for i in range(start, min(start + m, k))))] += 1
    return hist


def conv_weight_to_gemm(w, groups):
    """(cout, cin_g, kh, kw) -> (groups, kh*kw*cin_g, cout/groups) with k = (kh, kw, c), c innermost."""
    cout, cin_g, kh, kw = w.shape
    ng = cout // groups
    out = np.zeros((groups, kh * kw * cin_g, ng), dtype=w.dtype)
    for gi in range(groups):
        for o in range(ng):
            for y in range(kh):
                for x in range(kw):
                    for c in range(cin_g):
                        out[gi, (y * kw + x) * cin_g + c, o] = w[gi * ng + o, c, y, x]
    return out
