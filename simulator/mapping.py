"""The mapper and the memory pipeline of the fast engine.

A layer (``groups`` GEMMs ``O[M x N] = A[M x K] · W[K x N]``, K the compressed reduction of the
chosen mode) is tiled into the on-chip buffers: the buffers hold a tile of ``Tm x Tn x Tk`` and
the DRAM-level loop nest walks ``Nm x Nn x Nk`` such tiles (``Nd = ceil(D / Td)``). What an operand
costs in DRAM follows from the loop order, as in Timeloop's and ZigZag's (LOMA) analytic models,
reduced here to the three orders that differ (named by their innermost loop; a loop that runs once
does not count, so ``m>n>k`` with one k tile behaves as ``n`` innermost):

* ``k`` innermost (``m>n>k``): outputs stay on chip until complete; A is re-read for every n tile,
  W for every m tile;
* ``n`` innermost (``m>k>n``): A is read once; W is re-read for every m tile; outputs are partial
  sums re-read and re-written for every k tile after the first (at accumulator width);
* ``m`` innermost (``n>k>m``): W is read once; A is re-read for every n tile; partial sums as above.

A tile must fit: per memory, the tiles of the operands it holds (A, W, metadata, and the output
tile when partial sums accumulate on chip) within its usable bytes (half of it when double
buffered: the other half takes the next tile). Tile sizes of the dimensions on the array's rows and
columns are multiples of R and C (or the whole dimension), so the array's folds are the same in
every mapping; a tile of the streamed dimension cuts the stream into ``N_stream`` chunks, each a
fold of its own (the stationary tile is reloaded), so it costs compute cycles.

A conv's activations sit in DRAM and in the buffer as the feature map (the buffer's address
generator expands it to the im2col rows the array reads); a k tile spans every kernel position of a
slice of input channels, so one pass over k reads the feature map once, and every cut of m inside an
image re-reads a halo of ``(kernel - stride)`` input rows.

The candidates are a restricted, vectorized space: for each dimension about 15 tile sizes (every
count of tiles from 1 to 8 and every power of two), for each of the three orders. The chosen mapping has
the fewest cycles of the whole pipeline (below), then the fewest DRAM bytes, then the largest
tiles; with ``mapper.objective: dram`` (an accelerator key) the fewest DRAM bytes, then cycles.
``tests/test_mapping.py`` checks it against an exhaustive search over the same space.

Pipeline. The DRAM channel and the array are two resources working at once; ``L`` and ``W`` are the
layer's load and write-back time at the DRAM bandwidth, ``C`` its compute (or the busiest buffer
port's time for the array's accesses, when longer: the array reads the buffers while it streams):

* double buffered: ``max(p + C + e, L + W + min(f, L + W))``: the array waits for the first
  fold's stationary tile (``p``, its load time) and ends with the last fold's outputs (``e``, their
  write-back); when DRAM is the bottleneck one fold's compute ``f`` cannot overlap (the last one,
  after its data arrived). ``p``, ``e`` and ``f`` do not depend on the mapping, so cutting tiles
  finer never pays by itself;
* single buffered: ``L + C + W`` (each step loads, computes, writes back in turn).

So double buffering is never slower than single buffering, a single-fold DRAM-bound layer costs
``L + W + min(C, L + W)``, not twice its DRAM time, and the time never rises when a buffer or the
bandwidth grows (a bigger buffer only adds mappings; every term falls with the bandwidth).

``double_buffered: streamed`` (a memory's third setting): the mapping's stationary tile (the operand
its innermost loop with more than one trip does not index: A for ``n``, W and metadata for ``m``, the
output tile for ``k``; every tile when one group's loops all run once) is held once and the other
tiles twice, within the whole memory. The resident tile is then single buffered: the array waits
for each reload, all but the first of its ``R`` distinct tiles (``R`` = groups x the tile counts of
its dimensions; for the output tile the wait is the write-back that frees it), ``s`` one tile's DRAM
time: ``min(max(p + C + e + (R - 1) s, L + W + min(f, L + W)), L + C + W)``. Per mapping and memory
the first that fits of: halves (as ``true``, nothing exposed), this split, the whole memory once (as
``false``: the layer runs single buffered). So a streamed memory is never slower than ``true`` or
``false`` with the same size, and every guarantee above holds for it (``tests/test_mapping.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._jit import jit
from .kernels import double_buffered_runs

ORDERS = ("m>n>k", "m>k>n", "n>k>m")  # outer > inner; the innermost loop decides the reuse
DIMS = ("m", "n", "k")


@dataclass(frozen=True)
class Mapping:
    """How a layer is tiled into the buffers (per group)."""

    order: str            # loop order of the DRAM-level nest, outer > inner
    tile_m: int
    tile_n: int
    tile_k: int           # in compressed reduction slots
    count_m: int
    count_n: int
    count_k: int
    groups: int
    fits: bool = True     # False when even the smallest tiles overflow a buffer (then it is used anyway)

    @property
    def steps(self) -> int:
        return self.groups * self.count_m * self.count_n * self.count_k


@dataclass(frozen=True)
class MapProblem:
    """Everything the mapper needs about one layer in one mode (sizes in elements, traffic in bytes).

    ``m, n, k``: the GEMM as mapped (live columns, compressed reduction: the largest over the
    layer's schedule blocks); the byte totals are over all groups."""

    m: int
    n: int
    k: int
    groups: int
    stream: str             # the dimension streamed through the array
    row_dim: str
    col_dim: str
    rows: int
    cols: int
    a_pass_bytes: float     # DRAM bytes of one full pass over A (a conv: its feature map)
    a_halo_bytes: float     # extra DRAM bytes per cut of m inside an image (a conv's halo rows)
    a_cut_free: int         # cuts of m that need no halo (at image boundaries: the batch)
    a_gemm_bytes: float     # the im2col matrix: the most a pass can cost
    a_tile_factor: float    # buffer bytes of an A tile per (m x k) element: a_bits/8, less for a conv
    w_bytes: float          # stored weight values
    meta_bytes: float       # their metadata
    w_tile_factor: float    # buffer bytes of a W tile per (k x n) element (values)
    meta_tile_factor: float
    o_final_bytes: float    # final outputs
    psum_bytes: float       # all outputs at accumulator width
    acc_bytes: float        # accumulator width in bytes
    psum_on_chip: bool      # do partial sums accumulate across array folds (k folded on the array)?


@lru_cache(maxsize=8192)
def tile_candidates(d: int, granule: int) -> np.ndarray:
    """Tile sizes for a dimension of ``d`` elements: ``ceil(units / j)`` granules for every count
    ``j`` of tiles from 1 to 8 and every power of two, down to one granule (about 15 sizes).
    Cached: the array is read-only."""
    units = -(-d // granule)
    counts = set(range(1, min(units, 8) + 1)) | {min(units, 1 << i) for i in range(units.bit_length() + 1)}
    tiles = {min(d, granule * -(-units // c)) for c in counts}
    out = np.array(sorted(tiles), dtype=np.int64)
    out.flags.writeable = False
    return out


# What an operand re-fetches: A does not depend on n, W not on m, outputs not on k; each is fetched
# again on every iteration of that loop when some loop inside it that the operand does depend on
# runs more than once. _RELOAD[order, operand (A, W, output), dim (m, n, k)]: is dim such a loop?
_IRRELEVANT = ("n", "m", "k")


def _inner_loops(order: str, irrelevant: str) -> list[str]:
    loops = order.split(">")
    return loops[loops.index(irrelevant) + 1:]


_RELOAD = np.array([[[d in _inner_loops(o, irr) for d in DIMS] for irr in _IRRELEVANT] for o in ORDERS],
                   dtype=np.bool_)


@jit
def _reloads(reload, order, operand, cm, cn, ck):
    return ((reload[order, operand, 0] and cm > 1) or (reload[order, operand, 1] and cn > 1)
            or (reload[order, operand, 2] and ck > 1))


@jit
def _traffic(reload, order, cm, cn, ck, a_pass_bytes, a_halo_bytes, a_cut_free, a_gemm_bytes, w_bytes, meta_bytes,
             o_final_bytes, psum_bytes):
    """See :func:`dram_traffic` (``order`` an index into :data:`ORDERS`)."""
    cuts = max(0, cm - 1 - a_cut_free)
    a = min(a_gemm_bytes, a_pass_bytes + cuts * a_halo_bytes) * (cn if _reloads(reload, order, 0, cm, cn, ck) else 1)
    w_mult = cm if _reloads(reload, order, 1, cm, cn, ck) else 1
    spill = max(ck - 1, 0) if _reloads(reload, order, 2, cm, cn, ck) else 0
    return (a, w_bytes * w_mult, meta_bytes * w_mult, o_final_bytes + spill * psum_bytes, spill * psum_bytes)


def dram_traffic(p: MapProblem, order: str, cm: int, cn: int, ck: int):
    """DRAM bytes (activation, weight, metadata, output writes, partial-sum reads) of a mapping:
    ``cm x cn x ck`` tiles walked in ``order``. A pass over A costs its feature map plus a halo per
    cut of m inside an image, never more than the im2col matrix."""
    return _traffic(_RELOAD, ORDERS.index(order), cm, cn, ck, float(p.a_pass_bytes), float(p.a_halo_bytes),
                    p.a_cut_free, float(p.a_gemm_bytes), float(p.w_bytes), float(p.meta_bytes),
                    float(p.o_final_bytes), float(p.psum_bytes))


@jit
def _footprints(tm, tn, tk, ck, a_tile_factor, w_tile_factor, meta_tile_factor, acc_bytes, psum_on_chip):
    """See :func:`footprints`."""
    o = tm * tn * acc_bytes if (psum_on_chip or ck > 1) else 0.0
    return tm * tk * a_tile_factor, tk * tn * w_tile_factor, tk * tn * meta_tile_factor, o


def footprints(p: MapProblem, tm: int, tn: int, tk: int, ck: int):
    """Buffer bytes of one tile of each operand: activation, weight, metadata, output (the output
    tile only when partial sums accumulate on chip)."""
    return _footprints(tm, tn, tk, ck, float(p.a_tile_factor), float(p.w_tile_factor), float(p.meta_tile_factor),
                       float(p.acc_bytes), bool(p.psum_on_chip))


def pipeline_cycles(compute, sram, load, write, steps, double_buffered: bool, prologue=0.0, epilogue=0.0,
                    fold=0.0, reload=None) -> float:
    """Cycles of a layer: ``compute`` (array), ``sram`` (busiest port), ``load`` and ``write`` (DRAM
    time), ``steps`` tiles; ``prologue``/``epilogue``: the first fold's stationary tile load and
    the last fold's write-back; ``fold``: one fold's compute; ``reload``: with a resident tile held
    once (``double_buffered: streamed``), the array cycles its reloads take (then double buffered).
    See the module docstring. Scalars."""
    if reload is not None:
        return float(_streamed_cycles(float(compute), float(sram), float(load), float(write), float(prologue),
                                      float(epilogue), float(fold), float(reload)))
    return float(_pipeline_cycles(float(compute), float(sram), float(load), float(write), bool(double_buffered),
                                  float(prologue), float(epilogue), float(fold)))


@jit
def _pipeline_cycles(compute, sram, load, write, double_buffered, prologue, epilogue, fold):
    """See :func:`pipeline_cycles`."""
    c = max(compute, sram)
    if not double_buffered:
        return load + c + write
    transfer = load + write
    p, e = min(prologue, load), min(epilogue, write)
    return max(p + c + e, transfer + min(fold, transfer))


@jit
def _streamed_cycles(compute, sram, load, write, prologue, epilogue, fold, reload):
    """:func:`_pipeline_cycles` double buffered with ``reload`` cycles on the array's side (the
    resident tile's reloads, which cannot overlap the compute that uses them), never above single
    buffering (the layer can always run load, compute, write-back in turn)."""
    c = max(compute, sram)
    transfer = load + write
    p, e = min(prologue, load), min(epilogue, write)
    return min(max(p + c + e + reload, transfer + min(fold, transfer)), load + c + write)


@jit
def _stationary(order, cm, cn, ck):
    """The operand a mapping holds across its innermost loop with more than one trip (the one that
    loop does not index): 0 activation (``n`` innermost), 1 weight and its metadata (``m``), 3 the
    output tile (``k``); -1 when every loop runs once. ``order`` indexes :data:`ORDERS`."""
    if order == 0:     # m>n>k
        return 3 if ck > 1 else (0 if cn > 1 else (1 if cm > 1 else -1))
    if order == 1:     # m>k>n
        return 0 if cn > 1 else (3 if ck > 1 else (1 if cm > 1 else -1))
    return 1 if cm > 1 else (3 if ck > 1 else (0 if cn > 1 else -1))     # n>k>m


@jit
def _streamed_fit(order, cm, cn, ck, groups, fa, fw, fmeta, fo, op_mem, used, usable, size, streamed):
    """The buffers of a mapping on a design with ``double_buffered: streamed`` memories:
    (fits, double buffered, the operands (bits 0..3: activation, weight, metadata, output) whose
    resident tile is held once). Per streamed memory, the first that fits of: its operands' tiles
    within half of it (``true``); the stationary operand's tile once and the others' twice within
    all of it (the resident tile is then single: its reloads are exposed; with one step, one group
    and every loop run once, every tile once); the tiles once within all of it (then the layer runs
    single buffered). Other memories as described. Several groups with every loop run once hold
    nothing across steps: every tile twice."""
    stat = _stationary(order, cm, cn, ck)
    every = stat < 0 and groups == 1
    fp = (fa, fw, fmeta, fo)
    fits, double, resident = True, True, 0
    for j in range(usable.shape[0]):
        if not used[j]:
            continue
        u, held = 0.0, 0.0
        for op in range(4):
            if op_mem[op] == j:
                u += fp[op]
                if every or (stat >= 0 and (op == stat or (stat == 1 and op == 2))):
                    held += fp[op]
        if u <= usable[j]:
            continue
        if not streamed[j]:
            fits = False
        elif 2.0 * u - held <= size[j]:
            for op in range(4):
                if op_mem[op] == j and (every or (stat >= 0 and (op == stat or (stat == 1 and op == 2)))):
                    resident |= 1 << op
        elif u <= size[j]:
            double = False
        else:
            fits = False
    return fits, double, resident


@jit
def _reload_cycles(resident, groups, cm, cn, ck, a, w, meta, out_wr, bw):
    """Array cycles lost to the resident tiles' reloads: all but the first of the ``R`` distinct
    resident tiles (``R`` = groups x the tile counts of the dimensions the stationary operand has)
    wait for their own DRAM transfer (loads; the output's: the write-back that frees its buffer)."""
    if resident == 0:
        return 0.0
    if resident & 1:
        r, nbytes = cm * ck, a
    elif resident & 8:
        r, nbytes = cm * cn, out_wr
    else:
        r, nbytes = ck * cn, (w if resident & 2 else 0.0) + (meta if resident & 4 else 0.0)
    r = r * groups
    return (r - 1) / r * nbytes / bw


@jit
def _search(tiles_m, tiles_n, tiles_k, stream, compute_s, port, reload, m, n, k, a_cut_free, a_pass_bytes,
            a_halo_bytes, a_gemm_bytes, a_tile_factor, w_bytes, meta_bytes, w_tile_factor, meta_tile_factor,
            o_final_bytes, psum_bytes, acc_bytes, psum_on_chip, op_mem, used, usable, double_buffered, bw,
            prologue, epilogue, fold, size, streamed, groups, dram_first):
    """The mapper's search (see :func:`search`); returns (order, tile indices m/n/k, fits, cycles,
    and the chosen mapping's :func:`dram_traffic`). One pass over the tile grid: whether a tile fits
    does not depend on the order (but with a ``streamed`` memory), the traffic and the time do; each
    order keeps its own best. ``dram_first``: rank DRAM bytes before cycles (``mapper.objective:
    dram``); otherwise cycles before DRAM bytes."""
    n_mem = usable.shape[0]
    any_streamed = False
    for j in range(n_mem):
        if used[j] and streamed[j]:
            any_streamed = True
    n_tm, n_tn, n_tk = tiles_m.shape[0], tiles_n.shape[0], tiles_k.shape[0]
    # per order: fitting: fewest (cycles, DRAM bytes, compute cycles), then the largest tile;
    # none fits: the smallest tile, then fewest (cycles, DRAM bytes). Ties: the first in grid order.
    # With dram_first, (DRAM bytes, cycles) in both places.
    f_i = np.full(3, -1, dtype=np.int64)
    f_cyc = np.zeros(3)
    f_dram = np.zeros(3)
    f_comp = np.zeros(3)
    f_vol = np.zeros(3, dtype=np.int64)
    f_tr = np.zeros((3, 5))
    x_i = np.full(3, -1, dtype=np.int64)
    x_cyc = np.zeros(3)
    x_dram = np.zeros(3)
    x_vol = np.zeros(3, dtype=np.int64)
    x_tr = np.zeros((3, 5))
    for im in range(n_tm):
        tm = tiles_m[im]
        cm = -(-max(1, m) // tm)
        for jn in range(n_tn):
            tn = tiles_n[jn]
            cn = -(-max(1, n) // tn)
            for ik in range(n_tk):
                tk = tiles_k[ik]
                ck = -(-max(1, k) // tk)
                s = im if stream == 0 else (jn if stream == 1 else ik)
                comp = compute_s[s]
                fa, fw, fmeta, fo = _footprints(tm, tn, tk, ck, a_tile_factor, w_tile_factor, meta_tile_factor,
                                                acc_bytes, psum_on_chip)
                fits = True
                for j in range(n_mem):      # per memory, the tiles it holds (in operand order)
                    if used[j]:
                        u = 0.0
                        if op_mem[0] == j:
                            u += fa
                        if op_mem[1] == j:
                            u += fw
                        if op_mem[2] == j:
                            u += fmeta
                        if op_mem[3] == j:
                            u += fo
                        if not u <= usable[j]:
                            fits = False
                vol = tm * tn * tk
                i = (im * n_tn + jn) * n_tk + ik
                dbl, resident = True, 0
                for o in range(3):
                    if any_streamed:   # a streamed memory holds the order's stationary tile once
                        fits, dbl, resident = _streamed_fit(o, cm, cn, ck, groups, fa, fw, fmeta, fo, op_mem, used,
                                                            usable, size, streamed)
                    if not fits and f_i[o] >= 0:
                        continue
                    tr = _traffic(reload, o, cm, cn, ck, a_pass_bytes, a_halo_bytes, a_cut_free, a_gemm_bytes,
                                  w_bytes, meta_bytes, o_final_bytes, psum_bytes)
                    a, w, meta, out_wr, psum_rd = tr
                    load = (a + w + meta + psum_rd) / bw
                    write = out_wr / bw
                    if not any_streamed:
                        cyc = _pipeline_cycles(comp, port[s], load, write, double_buffered, prologue, epilogue, fold)
                    elif dbl and double_buffered:
                        cyc = _streamed_cycles(comp, port[s], load, write, prologue, epilogue, fold,
                                               _reload_cycles(resident, groups, cm, cn, ck, a, w, meta, out_wr, bw))
                    else:
                        cyc = _pipeline_cycles(comp, port[s], load, write, False, prologue, epilogue, fold)
                    dram = a + w + meta + psum_rd + out_wr
                    k1, k2 = (dram, cyc) if dram_first else (cyc, dram)
                    if fits:
                        s1, s2 = (f_dram[o], f_cyc[o]) if dram_first else (f_cyc[o], f_dram[o])
                        if f_i[o] < 0 or k1 < s1 or (k1 == s1 and (k2 < s2 or (
                                k2 == s2 and (comp < f_comp[o] or (comp == f_comp[o] and vol > f_vol[o]))))):
                            f_i[o], f_cyc[o], f_dram[o], f_comp[o], f_vol[o] = i, cyc, dram, comp, vol
                            f_tr[o, 0], f_tr[o, 1], f_tr[o, 2], f_tr[o, 3], f_tr[o, 4] = a, w, meta, out_wr, psum_rd
                        continue
                    s1, s2 = (x_dram[o], x_cyc[o]) if dram_first else (x_cyc[o], x_dram[o])
                    if x_i[o] < 0 or vol < x_vol[o] or (vol == x_vol[o] and (k1 < s1 or (k1 == s1 and k2 < s2))):
                        x_i[o], x_cyc[o], x_dram[o], x_vol[o] = i, cyc, dram, vol
                        x_tr[o, 0], x_tr[o, 1], x_tr[o, 2], x_tr[o, 3], x_tr[o, 4] = a, w, meta, out_wr, psum_rd
    b_o, b_im, b_in, b_ik, b_ok, b_cyc, b_dram = -1, 0, 0, 0, False, 0.0, 0.0
    b_tr = (0.0, 0.0, 0.0, 0.0, 0.0)
    for o in range(3):
        if f_i[o] >= 0:
            i, ok, cyc, dram = f_i[o], True, f_cyc[o], f_dram[o]
            tr = (f_tr[o, 0], f_tr[o, 1], f_tr[o, 2], f_tr[o, 3], f_tr[o, 4])
        else:
            i, ok, cyc, dram = x_i[o], False, x_cyc[o], x_dram[o]
            tr = (x_tr[o, 0], x_tr[o, 1], x_tr[o, 2], x_tr[o, 3], x_tr[o, 4])
        k1, k2, s1, s2 = (dram, cyc, b_dram, b_cyc) if dram_first else (cyc, dram, b_cyc, b_dram)
        if b_o < 0 or (ok and not b_ok) or (ok == b_ok and (k1 < s1 or (k1 == s1 and k2 < s2))):
            b_o, b_im, b_in, b_ik = o, i // (n_tn * n_tk), (i // n_tk) % n_tn, i % n_tk
            b_ok, b_cyc, b_dram, b_tr = ok, cyc, dram, tr
    return b_o, b_im, b_in, b_ik, b_ok, b_cyc, b_tr


def search(p: MapProblem, tiles: dict, compute, port, op_mem, used, usable, double_buffered: bool, bw: float,
           prologue: float, epilogue: float, fold: float, size=None, streamed=None, objective: str = "cycles"):
    """The best mapping of ``p`` over the grid ``tiles[m] x tiles[n] x tiles[k]`` and every order in
    :data:`ORDERS`: the fewest pipeline cycles among the mappings that fit, then the fewest DRAM
    bytes (``objective="dram"``: the fewest DRAM bytes, then cycles), the fewest compute cycles, the
    largest tile (when nothing fits: the smallest tile).
    ``compute``/``port``: array and busiest-port cycles per tile of the streamed dimension;
    ``op_mem``: the memory index holding activation, weight, metadata, output; ``used``/``usable``
    per memory, ``size``/``streamed`` its whole bytes and whether it is ``double_buffered: streamed``
    (default: none is). Returns ``(Mapping, cycles, (a, w, meta, out_wr, psum_rd), index of the stream
    tile)``."""
    tm_, tn_, tk_ = tiles["m"], tiles["n"], tiles["k"]
    stream = DIMS.index(p.stream)
    if streamed is None:
        size, streamed = np.asarray(usable, dtype=np.float64), np.zeros(len(usable), dtype=np.bool_)
    o, im, jn, ik, ok, cyc, traffic = _search(
        tm_, tn_, tk_, stream, compute.astype(np.float64), port.astype(np.float64), _RELOAD, p.m, p.n, p.k, p.a_cut_free, float(p.a_pass_bytes),
        float(p.a_halo_bytes), float(p.a_gemm_bytes), float(p.a_tile_factor), float(p.w_bytes), float(p.meta_bytes),
        float(p.w_tile_factor), float(p.meta_tile_factor), float(p.o_final_bytes), float(p.psum_bytes),
        float(p.acc_bytes), bool(p.psum_on_chip), op_mem, used, usable, bool(double_buffered), float(bw),
        float(prologue), float(epilogue), float(fold), np.asarray(size, dtype=np.float64),
        np.asarray(streamed, dtype=np.bool_), p.groups, objective == "dram")
    tm, tn, tk = int(tm_[im]), int(tn_[jn]), int(tk_[ik])
    mapping = Mapping(order=ORDERS[o], tile_m=tm, tile_n=tn, tile_k=tk, count_m=-(-max(1, p.m) // tm),
                      count_n=-(-max(1, p.n) // tn), count_k=-(-max(1, p.k) // tk), groups=p.groups, fits=bool(ok))
    return mapping, float(cyc), tuple(float(x) for x in traffic), (im, jn, ik)[stream]


@lru_cache(maxsize=4096)
def rtl_cycles(weight_folds: int, stream: int, tile: int, rows: int, cols: int, load_per_row: float,
               stream_per_row: float, fill_extra: float) -> float:
    """The RTL schedule over ``weight_folds`` weight tiles, each streaming ``stream`` rows in chunks
    of ``tile`` (each chunk its own fold, the weights reloaded)."""
    chunks = -(-stream // tile)
    last = stream - (chunks - 1) * tile
    values, counts = ([tile, last], [chunks - 1, 1]) if chunks > 1 else ([last], [1])
    return double_buffered_runs(np.asarray(values, dtype=np.float64), np.asarray(counts, dtype=np.int64),
                                weight_folds, rows, cols, load_per_row, stream_per_row, fill_extra)
