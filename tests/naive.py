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


def block_max_counts(mask, m, block_width):
    """Per group, per M-group along k, per block of ``block_width`` live columns: the largest count
    of nonzeros; dead (all-zero) columns are dropped first. Also the histogram over live columns."""
    g, k, n = mask.shape
    kg = -(-k // m)
    live = [[c for c in range(n) if mask[gi, :, c].any()] for gi in range(g)]
    nb = max(1, max(-(-len(l) // block_width) for l in live))
    out = np.zeros((g, kg, nb), dtype=np.int64)
    hist = [0] * (m + 1)
    for gi in range(g):
        for j, c in enumerate(live[gi]):
            b = j // block_width
            for q in range(kg):
                cnt = int(sum(bool(mask[gi, i, c]) for i in range(q * m, min(k, q * m + m))))
                hist[cnt] += 1
                out[gi, q, b] = max(out[gi, q, b], cnt)
    return out, hist


def scalesim_compute_cycles(m, n, k, rows, cols, dataflow):
    """SCALE-Sim v3's "Total Cycles" for a dense GEMM, from its demand-matrix construction:
    for every (column fold, row fold) pair one fold; WS and IS folds last 2R + C + T - 2 cycles
    (R-cycle preload, T streamed rows, skew), OS folds R + C + T - 2; the total is their sum - 1."""
    sr, sc, t = {"ws": (k, n, m), "os": (m, n, k), "is": (k, m, n)}[dataflow]
    total = 0
    for _fc in range(-(-sc // cols)):
        for _fr in range(-(-sr // rows)):
            total += (rows if dataflow in ("ws", "is") else 0) + rows + cols + t - 2
    return total - 1


def sparse_compute_cycles(gemm_mask, m_rows, rows, cols, dataflow, n, mm, overflow="passes"):
    """Compute cycles of one layer in mode n:mm with real masks, written fold by fold.

    All-zero columns are removed. Columns that share a schedule (a fold's columns for WS/OS, all
    columns for IS) cost, for each group of mm along k, n x max over them of ceil(j / n) slots
    (``passes``: an empty group costs nothing), or n slots for every group (``dense`` overflow:
    None when some group holds more than n). WS/IS put the compressed k on rows, OS streams it.
    Buffers are assumed large enough.
    """
    if overflow == "dense":
        for q in range(0, gemm_mask.shape[1], mm):
            if gemm_mask[:, q:q + mm, :].sum(axis=1).max() > n:
                return None
    g, k, ncol = gemm_mask.shape
    total = 0
    for gi in range(g):
        live = [c for c in range(ncol) if gemm_mask[gi, :, c].any()]
        width = cols if dataflow in ("ws", "os") else max(1, len(live))
        blocks = [live[i:i + width] for i in range(0, len(live), width)]
        for blk in blocks:
            kp = 0
            for q in range(0, k, mm):
                worst = 0
                for c in blk:
                    j = int(gemm_mask[gi, q:q + mm, c].sum())
                    worst = max(worst, 1 if overflow == "dense" else -(-j // n))
                kp += n * worst
            if dataflow == "ws":
                folds, t = -(-kp // rows), m_rows
                total += folds * (2 * rows + cols + t - 2)
            elif dataflow == "os":
                folds, t = -(-m_rows // rows), kp
                total += folds * (rows + cols + t - 2)
            else:
                folds, t = -(-kp // rows) * -(-m_rows // cols), len(blk)
                total += folds * (2 * rows + cols + t - 2)
    return total - 1


def chunked_compute_cycles(m, n, k, rows, cols, dataflow, tile):
    """SCALE-Sim's fold rule with the streamed dimension cut into chunks of ``tile``, each a fold:
    the sum over folds minus one."""
    sr, sc, t = {"ws": (k, n, m), "os": (m, n, k), "is": (k, m, n)}[dataflow]
    total = 0
    for _fc in range(-(-sc // cols)):
        for _fr in range(-(-sr // rows)):
            for lo in range(0, t, tile):
                total += (rows if dataflow in ("ws", "is") else 0) + rows + cols + min(tile, t - lo) - 2
    return total - 1


def fold_count(m, n, k, rows, cols, dataflow, tile):
    sr, sc, t = {"ws": (k, n, m), "os": (m, n, k), "is": (k, m, n)}[dataflow]
    return -(-sc // cols) * -(-sr // rows) * -(-t // tile)


def stationary(order, cm, cn, ck):
    """The operand held across the innermost loop with more than one trip: 0 activation (n), 1 weight
    (m), 3 output (k); None when every loop runs once."""
    count = {"m": cm, "n": cn, "k": ck}
    inner = [d for d in order.split(">") if count[d] > 1]
    return {"n": 0, "m": 1, "k": 3}[inner[-1]] if inner else None


def whole(order, operand, level, counts):
    """Does an operand's tile at ``level`` (its ``level`` innermost loops taken in) cover every loop
    that indexes it and runs more than once? ``operand``: "a", "w" or "o"."""
    inner = order.split(">")[3 - level:] if level else []
    return all(d in inner for d in {"a": "mk", "w": "kn", "o": "mn"}[operand] if counts["mnk".index(d)] > 1)


def streamed_buffers(order, counts, groups, fp, op_mem, used, usable, size, streamed, traffic, bw,
                     levels=(0, 0, 0)):
    """``double_buffered: streamed`` written out: (fits, double buffered, resident reload cycles).
    A streamed memory is used as halves if its tiles fit half of it, else with the held tiles once
    and the others twice in all of it (a held operand's reloads, all but the first of its R distinct
    tiles, are exposed), else once in all of it (single buffered). Held: the stationary tile when its
    operand keeps the mapping's tile (level 0), an operand whose level covers all of it, and with
    one group and every loop run once, every tile."""
    cm, cn, ck = counts
    la, lw, lo = levels
    stat = stationary(order, cm, cn, ck)
    if stat is None and groups == 1:
        held_ops = {0, 1, 2, 3}
    else:
        held_ops = set()
        if (stat == 0 and la == 0) or (la > 0 and whole(order, "a", la, counts)):
            held_ops.add(0)
        if (stat == 1 and lw == 0) or (lw > 0 and whole(order, "w", lw, counts)):
            held_ops |= {1, 2}
        if (stat == 3 and lo == 0) or (lo > 0 and whole(order, "o", lo, counts)):
            held_ops.add(3)
    fits, double, resident = True, True, set()
    for j in range(len(usable)):
        if not used[j]:
            continue
        ops = [op for op in range(4) if op_mem[op] == j]
        u = sum(fp[op] for op in ops)
        if u <= usable[j]:
            continue
        if not streamed[j]:
            fits = False
        elif sum(fp[op] * (1 if op in held_ops else 2) for op in ops) <= size[j]:
            resident |= held_ops & set(ops)
        elif u <= size[j]:
            double = False
        else:
            fits = False
    a, w, meta, out_wr = traffic[:4]
    reload = 0.0
    if 0 in resident:
        r = groups * (1 if la else cm * ck)
        reload += (r - 1) / r * a / bw
    if resident & {1, 2}:
        r = groups * (1 if lw else ck * cn)
        reload += (r - 1) / r * ((w if 1 in resident else 0.0) + (meta if 2 in resident else 0.0)) / bw
    if 3 in resident:
        r = groups * (1 if lo else cm * cn)
        reload += (r - 1) / r * out_wr / bw
    return fits, double, reload


def mapper_search(p, tiles, compute, port, op_mem, used, usable, double, bw, pro, epi, fold, size=None,
                  streamed=None, objective="cycles"):
    """The mapper's rule over the grid, one mapping at a time in plain Python, with the scalar cost
    formulas (dram_traffic, footprints, pipeline_cycles): per order and tile, the best of every
    combination of the operands' levels (0..3 each) that fits, if the tile itself (every level 0)
    fits; per order, among the mappings that fit the fewest (cycles, DRAM bytes, compute cycles)
    then the largest tile, else the smallest tile then the fewest (cycles, DRAM bytes); the first in
    grid order on ties; across orders the first order unless another is feasible where it is not,
    or has fewer (cycles, DRAM bytes). With ``streamed`` memories (``size``: their whole bytes) the
    buffers follow :func:`streamed_buffers`. ``objective`` ``"dram"``: (DRAM bytes, cycles) in place
    of (cycles, DRAM bytes) everywhere."""
    import itertools

    from simulator.mapping import ORDERS, dram_traffic, footprints, pipeline_cycles
    any_streamed = streamed is not None and any(bool(streamed[j]) and used[j] for j in range(len(usable)))
    best = None
    stream = "mnk".index(p.stream)

    def rank(r):      # (cycles, DRAM bytes) or, with the dram objective, (DRAM bytes, cycles)
        return (r[3], r[2]) if objective == "dram" else (r[2], r[3])

    for order in ORDERS:
        rows = []
        for idx in itertools.product(*(range(len(tiles[d])) for d in "mnk")):
            tm, tn, tk = (int(tiles[d][i]) for d, i in zip("mnk", idx))
            cm, cn, ck = -(-max(1, p.m) // tm), -(-max(1, p.n) // tn), -(-max(1, p.k) // tk)
            s = idx[stream]
            options = []
            for levels in itertools.product(range(4), repeat=3):
                a, w, meta, out_wr, psum_rd = dram_traffic(p, order, cm, cn, ck, levels, tm=tm)
                fp = footprints(p, tm, tn, tk, ck, order, levels)
                args = (float(compute[s]), float(port[s]), (a + w + meta + psum_rd) / bw, out_wr / bw, 0)
                if any_streamed:
                    fits, dbl, reload = streamed_buffers(order, (cm, cn, ck), p.groups, fp, op_mem, used, usable,
                                                         size, streamed, (a, w, meta, out_wr), bw, levels)
                    cyc = (pipeline_cycles(*args, True, pro, epi, fold, reload=reload) if dbl and double
                           else pipeline_cycles(*args, False))
                else:
                    use = [0.0] * len(usable)
                    for j, f in zip(op_mem, fp):
                        use[j] += f
                    fits = all(use[j] <= usable[j] for j in range(len(usable)) if used[j])
                    cyc = pipeline_cycles(*args, double, pro, epi, fold)
                if levels == (0, 0, 0):
                    base = fits
                elif not (base and fits):
                    continue
                options.append((idx, fits, cyc, a + w + meta + psum_rd + out_wr, float(compute[s]), tm * tn * tk,
                                (a, w, meta, out_wr, psum_rd)))
            rows.append(min(options, key=rank))
        ok = [r for r in rows if r[1]]
        pick = (min(ok, key=lambda r: (*rank(r), r[4], -r[5])) if ok
                else min(rows, key=lambda r: (r[5], *rank(r))))
        cand = (bool(ok), pick[2], pick[3], order, pick)
        if best is None or (cand[0], *(-x for x in rank(cand[4]))) > (best[0], *(-x for x in rank(best[4]))):
            best = cand
    return best


def conv_tile_reads(out, inp, stride, span, pad, tile):
    """Input pixels a 2-D conv's tiles read, one output pixel and kernel tap at a time: the output map
    ``out`` (y, x) cut in ``tile`` (y, x) rectangles, each reading the box of real (not padding) input
    rows and columns its outputs' taps touch (a DMA reads rows whole, so a strided 1x1 conv's skipped
    rows and columns come with it, as the compulsory bytes count them); (the sum over tiles, the
    largest tile's box)."""
    total, largest = 0, 0
    for y0 in range(0, out[0], tile[0]):
        for x0 in range(0, out[1], tile[1]):
            ys, xs = set(), set()
            for oy in range(y0, min(y0 + tile[0], out[0])):
                for ox in range(x0, min(x0 + tile[1], out[1])):
                    for dy in range(span[0]):
                        for dx in range(span[1]):
                            iy, ix = oy * stride[0] - pad[0] + dy, ox * stride[1] - pad[1] + dx
                            if 0 <= iy < inp[0] and 0 <= ix < inp[1]:
                                ys.add(iy)
                                xs.add(ix)
            box = (max(ys) - min(ys) + 1) * (max(xs) - min(xs) + 1) if ys else 0
            total, largest = total + box, max(largest, box)
    return total, largest


def best_conv_rectangle(out, inp, stride, span, pad, batch, count, most):
    """Every grid of ``ny x nx == count`` tiles per image (each dimension in tiles of ``ceil(out / n)``)
    whose tiles have at most ``most`` pixels and whose batch has as many tiles as the flat count
    ``ceil(batch * pixels / (ty * tx))``: the fewest input pixels read (:func:`conv_tile_reads`), then
    the larger tile, then the shorter; (reads, largest window) or None."""
    best = None
    for ny in range(1, out[0] + 1):
        for nx in range(1, out[1] + 1):
            ty, tx = -(-out[0] // ny), -(-out[1] // nx)
            if (-(-out[0] // ty), -(-out[1] // tx)) != (ny, nx) or ny * nx != count or ty * tx > most:
                continue
            if -(-(batch * out[0] * out[1]) // (ty * tx)) != batch * count:
                continue
            reads, largest = conv_tile_reads(out, inp, stride, span, pad, (ty, tx))
            if best is None or (reads, -ty * tx, ty) < best[0]:
                best = ((reads, -ty * tx, ty), (reads, largest))
    return None if best is None else best[1]
