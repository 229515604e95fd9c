"""The mapper and the memory pipeline of the fast engine.

A layer (``groups`` GEMMs ``O[M x N] = A[M x K] · W[K x N]``, K the compressed reduction of the
chosen mode) is tiled into the on-chip buffers: the mapping's tile is ``Tm x Tn x Tk`` and the
DRAM-level loop nest walks ``Nm x Nn x Nk`` such tiles (``Nd = ceil(D / Td)``) in one of the six
loop orders. What an operand costs in DRAM follows from the loop order, as in Timeloop's and ZigZag's
(LOMA) analytic models. Each operand has its own **level**, as ZigZag allocates loops to each
operand's memory: how many of the innermost loops its buffer tile takes in (0: the mapping's tile;
a level that takes in a loop makes the tile span that whole dimension; 3: the whole operand, loaded
once per group). An operand is fetched again on every trip of the loop that does not index it (n
for A, m for W, k for the outputs) when that loop lies outside its tile and a loop that does index
it runs more than once between them; outputs fetched again are partial sums, re-read and re-written
(at accumulator width) for every k tile after the first. So an operand that fits stays resident
while the others are tiled finer (a conv's weights read once while its feature map streams in
rows). With one level for all (every level 0) the innermost loop with more than one trip decides
everything:

* ``k`` innermost (``m>n>k``): outputs stay on chip until complete; A is re-read for every n tile,
  W for every m tile;
* ``n`` innermost (``m>k>n``): A is read once; W is re-read for every m tile; outputs are partial
  sums re-read and re-written for every k tile after the first;
* ``m`` innermost (``n>k>m``): W is read once; A is re-read for every n tile; partial sums as above.

A tile must fit: per memory, the tiles of the operands it holds (A, W, metadata, and the output
tile when partial sums accumulate on chip), each over its level, within its usable bytes (half of it when double
buffered: the other half takes the next tile). Tile sizes of the dimensions on the array's rows and
columns are multiples of R and C (or the whole dimension), so the array's folds are the same in
every mapping; a tile of the streamed dimension cuts the stream into ``N_stream`` chunks, each a
fold of its own (the stationary tile is reloaded), so it costs compute cycles.

A conv's activations sit in DRAM and in the buffer as the feature map (the buffer's address
generator expands it to the im2col rows the array reads); a k tile spans every kernel position of a
slice of input channels, so one pass over k reads the feature map once, and every cut of m inside an
image re-reads a halo of ``(kernel - stride)`` input rows.

The candidates are a restricted space: for each dimension about 15 tile sizes (every count of tiles
from 1 to 8 and every power of two), each of the six orders, and per tile and order the operands'
levels (with each memory holding one operand and no ``streamed`` memory, each operand's highest level
that fits, which is then the best; otherwise every combination of useful levels). The chosen mapping has
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

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._jit import jit, jit_inline
from .kernels import double_buffered_runs
from .lru import Lru

# outer > inner. With one tile for every operand the innermost loop alone decides the reuse and the
# first three orders are all that differ; with each operand's own level (how many of the innermost
# loops its tile takes in) the order of the outer loops matters too, so all six are searched (the
# first three first: on ties they are kept).
ORDERS = ("m>n>k", "m>k>n", "n>k>m", "n>m>k", "k>m>n", "k>n>m")
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
    #: per operand (activation, weight and its metadata, output): how many of the innermost loops of
    #: the DRAM-level nest its buffer tile takes in (0: the tile above; 3: the whole operand, loaded
    #: once per group), as ZigZag's LOMA allocates loops to each operand's memory
    levels: tuple = (0, 0, 0)

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
    #: a 2-D conv whose output pixels are streamed (m tiles are then rectangles of output rows x
    #: columns, :func:`a_cut`): (batch, out_y, out_x, in_y, in_x, stride_y, stride_x, kernel span y,
    #: span x, pad y, pad x, input bytes per pixel over all channels, kernel positions); () otherwise
    conv: tuple = ()


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


@lru_cache(maxsize=1 << 16)
def _axis_windows(out: int, t: int, stride: int, span: int, pad: int, size: int):
    """Input positions along one spatial dimension when its ``out`` outputs are cut in tiles of ``t``:
    (the sum over tiles of each tile's input window, the largest window). A window is clipped to the
    input: padding is made on chip, never read."""
    total, largest = 0, 0
    for a in range(0, out, t):
        b = min(a + t, out) - 1
        w = max(0, min(b * stride - pad + span, size) - max(a * stride - pad, 0))
        total, largest = total + w, max(largest, w)
    return total, largest


@lru_cache(maxsize=4096)
def _axis_tiles(out: int):
    """The distinct tile sizes ``ceil(out / j)`` of a spatial dimension (about ``2 sqrt(out)``)."""
    return tuple(sorted({-(-out // j) for j in range(1, out + 1)}))


@lru_cache(maxsize=1 << 16)
def _best_rectangle(conv: tuple, count: int, most: int):
    """The rectangle ``(tile_y, tile_x)`` of at most ``most`` output pixels that cuts each image in
    ``count`` tiles (``ny x nx``, each dimension in tiles of ``ceil(out / n)``) with the fewest input
    pixels read (halos counted once per tile; ties: the larger tile, then the shorter), and that pass's
    input pixels per image and its largest window; None when no rectangle does. A rectangle counts
    only if the batch's tiles are as many as ``ceil(batch x pixels / (tile_y x tile_x))`` (the flat
    count the array's stream chunks follow)."""
    b, oy, ox, iy, ix, sy, sx, ey, ex, py, px = conv[:11]
    best = None
    for ty in _axis_tiles(oy):
        ny = -(-oy // ty)
        if count % ny:
            continue
        nx = count // ny
        tx = -(-ox // nx)
        if -(-ox // tx) != nx or ty * tx > most or -(-(b * oy * ox) // (ty * tx)) != b * count:
            continue
        (wy, my), (wx, mx) = _axis_windows(oy, ty, sy, ey, py, iy), _axis_windows(ox, tx, sx, ex, px, ix)
        key = (wy * wx, -(ty * tx), ty)
        if best is None or key < best[0]:
            best = (key, (ty, tx), wy * wx, my * mx)
    return None if best is None else best[1:]


@lru_cache(maxsize=1 << 16)
def a_cut(p: MapProblem, tm: int):
    """(DRAM bytes of one pass over A, A's buffer bytes per (m x k) element) when its tile is cut
    along m in tiles of ``tm`` rows. A 2-D conv (``p.conv``) cut inside an image is tiled as
    rectangles of output rows x columns (:func:`_best_rectangle`), each reading its own input window
    once: halos are counted once per tile, and the buffer holds the largest window. Whole images: the
    feature map once. Otherwise a flat run of ``tm`` rows whose every cut inside an image re-reads
    ``a_halo_bytes`` (a 1-D conv's halo), never more than the im2col matrix."""
    m = max(1, p.m)
    cm = -(-m // max(1, tm))
    if p.conv:
        b, oy, ox = p.conv[:3]
        px_bytes, kpos = p.conv[11], p.conv[12]
        pix = oy * ox
        if tm >= pix and tm % pix == 0:
            return float(p.a_pass_bytes), float(p.a_tile_factor)
        if tm < pix and cm % b == 0:
            rect = _best_rectangle(p.conv, cm // b, tm)
            if rect is not None:
                _, read, window = rect
                whole = _axis_windows(oy, oy, *p.conv[5:11:2], p.conv[3])[0] * \
                    _axis_windows(ox, ox, *p.conv[6:11:2], p.conv[4])[0]
                avg = min(1.0, whole / pix / kpos)
                factor = p.a_tile_factor * (min(1.0, window / tm / kpos) / avg if avg > 0 else 1.0)
                return min(float(p.a_gemm_bytes), b * read * px_bytes), float(factor)
    a = min(float(p.a_gemm_bytes), float(p.a_pass_bytes) + max(0, cm - 1 - p.a_cut_free) * float(p.a_halo_bytes))
    return a, float(p.a_tile_factor)


def a_cuts(p: MapProblem, tiles_m) -> tuple:
    """:func:`a_cut` for every tile size of m in ``tiles_m``, as two float arrays (bytes, factor),
    read-only and cached by what :func:`a_cut` reads of ``p`` (a short key: a plan misses the cache
    of its whole problem, whose hash and comparison cost more than these)."""
    tiles_m = np.ascontiguousarray(tiles_m, dtype=np.int64)
    key = (p.m, p.conv, p.a_pass_bytes, p.a_halo_bytes, p.a_cut_free, p.a_gemm_bytes, p.a_tile_factor,
           tiles_m.tobytes())
    return _A_CUTS.get_or_make(key, lambda: _a_cuts(p, tiles_m))


def _a_cuts(p: MapProblem, tiles_m: np.ndarray) -> tuple:
    got = np.array([a_cut(p, int(t)) for t in tiles_m], dtype=np.float64).reshape(-1, 2)
    out = np.ascontiguousarray(got[:, 0]), np.ascontiguousarray(got[:, 1])
    for x in out:
        x.flags.writeable = False
    return out


_A_CUTS = Lru(4096)


def m_tile_candidates(p: MapProblem, granule: int) -> np.ndarray:
    """Tile sizes of m: :func:`tile_candidates`, or for a 2-D conv (``p.conv``, m streamed) whole
    images (1 to 8 tiles of the batch and every power of two) and, inside an image, for every count
    of tiles from 2 to 8 and every power of two, the best rectangle (:func:`_best_rectangle`)."""
    if not p.conv or granule != 1:
        return tile_candidates(max(1, p.m), granule)
    return _conv_tiles(p.conv, max(1, p.m))


@lru_cache(maxsize=4096)
def _conv_tiles(conv: tuple, m: int) -> np.ndarray:
    b, oy, ox = conv[:3]
    pix = oy * ox

    def counts(units):
        return set(range(1, min(units, 8) + 1)) | {min(units, 1 << i) for i in range(units.bit_length() + 1)}

    tiles = {min(m, pix * -(-b // c)) for c in counts(b)}
    for c in counts(pix) - {1}:
        rect = _best_rectangle(conv, c, pix)
        if rect is not None:
            tiles.add(rect[0][0] * rect[0][1])
    out = np.array(sorted(tiles), dtype=np.int64)
    out.flags.writeable = False
    return out


# The loops of each order, outer to inner, as dimension indices (0 m, 1 n, 2 k), and which dimensions
# index each operand (A: m, k; W and its metadata: k, n; output: m, n).
_LOOPS = np.array([[DIMS.index(d) for d in o.split(">")] for o in ORDERS], dtype=np.int64)
_INDEXES = np.array([[True, False, True], [False, True, True], [True, True, False]], dtype=np.bool_)
#: the most loops an operand's level can take in (all three: the whole operand, loaded once per group)
LEVELS = 4


@jit
def _count(d, cm, cn, ck):
    return cm if d == 0 else (cn if d == 1 else ck)


@jit
def _inside(order, d, level):
    """Is dimension ``d``'s loop inside an operand's buffer tile at ``level`` (its ``level`` innermost
    loops of the DRAM-level nest are)?"""
    for q in range(3 - level, 3):
        if _LOOPS[order, q] == d:
            return True
    return False


@jit
def _refetch(order, operand, cm, cn, ck, level):
    """Is ``operand`` (0 A, 1 W, 2 output) fetched again on every trip of the loop that does not
    index it? Yes when that loop lies outside the operand's tile (``level``) and a loop that does
    index it runs more than once between them (then the tile it needs changes under that loop)."""
    outer = 3 - level
    for p in range(outer):
        if not _INDEXES[operand, _LOOPS[order, p]]:
            for q in range(p + 1, outer):
                d = _LOOPS[order, q]
                if _INDEXES[operand, d] and _count(d, cm, cn, ck) > 1:
                    return True
    return False


@jit
def _whole(order, operand, level, cm, cn, ck):
    """Does ``operand``'s tile at ``level`` cover all of it (every loop that indexes it and runs more
    than once inside the tile)? Then it is loaded once per group."""
    for d in range(3):
        if _INDEXES[operand, d] and _count(d, cm, cn, ck) > 1 and not _inside(order, d, level):
            return False
    return True


@jit
def _level_useful(order, operand, level, cm, cn, ck):
    """A level of ``operand`` (0 A, 1 W, 2 output) differs from the one below it only when the loop it
    takes in indexes the operand and runs more than once (taking in the loop that does not index it
    changes neither its tile nor, with nothing between them, its fetches)."""
    if level == 0:
        return True
    if level == 1 and _whole(order, operand, 0, cm, cn, ck):
        return True      # the mapping's tile is all of it: a level above 0 holds it once (:func:`_held`)
    if level == 1 and _stationary(order, cm, cn, ck) == (3 if operand == 2 else operand):
        return True      # the stationary tile is held at level 0 only (:func:`_held`): level 1 differs
    d = _LOOPS[order, 3 - level]
    return _INDEXES[operand, d] and _count(d, cm, cn, ck) > 1


@jit
def _traffic(order, cm, cn, ck, la, lw, lo, a_pass_bytes, a_cut_bytes, w_bytes, meta_bytes, o_final_bytes, psum_bytes):
    """See :func:`dram_traffic` (``order`` an index into :data:`ORDERS`; ``la``/``lw``/``lo``: the
    activation's, weight's (and its metadata's) and output's levels; ``a_cut_bytes``: a pass over A
    when its tile is cut along m, :func:`a_cut`)."""
    a = a_pass_bytes if _inside(order, 0, la) else a_cut_bytes
    a = a * (cn if _refetch(order, 0, cm, cn, ck, la) else 1)
    w_mult = cm if _refetch(order, 1, cm, cn, ck, lw) else 1
    spill = max(ck - 1, 0) if _refetch(order, 2, cm, cn, ck, lo) else 0
    return (a, w_bytes * w_mult, meta_bytes * w_mult, o_final_bytes + spill * psum_bytes, spill * psum_bytes)


def dram_traffic(p: MapProblem, order: str, cm: int, cn: int, ck: int, levels=(0, 0, 0), tm: int | None = None):
    """DRAM bytes (activation, weight, metadata, output writes, partial-sum reads) of a mapping:
    ``cm x cn x ck`` tiles walked in ``order``, each operand's buffer tile taking in its ``levels``
    innermost loops (activation, weight and metadata, output; 0: the mapping's tile). A pass over A
    whose tile is cut along m costs what :func:`a_cut` says for the m tile ``tm`` (default: the
    smallest tile that makes ``cm`` tiles)."""
    tm = -(-max(1, p.m) // max(1, cm)) if tm is None else tm
    return _traffic(ORDERS.index(order), cm, cn, ck, *(int(x) for x in levels), float(p.a_pass_bytes),
                    float(a_cut(p, int(tm))[0]), float(p.w_bytes), float(p.meta_bytes), float(p.o_final_bytes),
                    float(p.psum_bytes))


@jit
def _footprints(order, tm, tn, tk, m, n, k, ck, la, lw, lo, a_tile_factor, a_cut_factor, w_tile_factor,
                meta_tile_factor, acc_bytes, psum_on_chip):
    """See :func:`footprints` (``a_cut_factor``: A's bytes per element of a tile cut along m)."""
    cut = not _inside(order, 0, la)
    am = tm if cut else m
    ak = k if _inside(order, 2, la) else tk
    wk = k if _inside(order, 2, lw) else tk
    wn = n if _inside(order, 1, lw) else tn
    om = m if _inside(order, 0, lo) else tm
    on = n if _inside(order, 1, lo) else tn
    o = om * on * acc_bytes if (psum_on_chip or ck > 1) else 0.0
    return am * ak * (a_cut_factor if cut else a_tile_factor), wk * wn * w_tile_factor, wk * wn * meta_tile_factor, o


def footprints(p: MapProblem, tm: int, tn: int, tk: int, ck: int, order: str = "m>n>k", levels=(0, 0, 0)):
    """Buffer bytes of one tile of each operand: activation, weight, metadata, output (the output
    tile only when partial sums accumulate on chip), each over the loops its level takes in (an
    activation tile cut along m: its largest input window, :func:`a_cut`)."""
    return _footprints(ORDERS.index(order), tm, tn, tk, max(1, p.m), max(1, p.n), max(1, p.k), ck,
                       *(int(x) for x in levels), float(p.a_tile_factor), float(a_cut(p, int(tm))[1]),
                       float(p.w_tile_factor), float(p.meta_tile_factor), float(p.acc_bytes), bool(p.psum_on_chip))


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
    for q in range(2, -1, -1):
        d = _LOOPS[order, q]
        if _count(d, cm, cn, ck) > 1:
            return 1 if d == 0 else (0 if d == 1 else 3)
    return -1


@jit
def _held(order, cm, cn, ck, groups, la, lw, lo):
    """The operands (bits 0..3: activation, weight, metadata, output) a ``streamed`` memory holds
    once: the mapping's stationary tile (:func:`_stationary`) when that operand keeps the mapping's
    tile (level 0), every operand whose level is the whole operand (loaded once per group), and with
    one group and every loop run once, every tile. Tiles of the levels in between stream twice."""
    stat = _stationary(order, cm, cn, ck)
    if stat < 0 and groups == 1:
        return 15
    held = 0
    if stat == 0 and la == 0:
        held |= 1
    if stat == 1 and lw == 0:
        held |= 6
    if stat == 3 and lo == 0:
        held |= 8
    if la > 0 and _whole(order, 0, la, cm, cn, ck):
        held |= 1
    if lw > 0 and _whole(order, 1, lw, cm, cn, ck):
        held |= 6
    if lo > 0 and _whole(order, 2, lo, cm, cn, ck):
        held |= 8
    return held


@jit
def _streamed_fit(order, cm, cn, ck, groups, fa, fw, fmeta, fo, la, lw, lo, op_mem, used, usable, size, streamed):
    """The buffers of a mapping: (fits, double buffered, the operands (bits 0..3: activation, weight,
    metadata, output) whose resident tile is held once). Per memory, its operands' tiles (each over
    its level) within its usable bytes; a ``streamed`` memory whose tiles do not fit half of it tries
    the held tiles (:func:`_held`) once and the others twice within all of it (the held tiles are
    then single: their reloads are exposed), then every tile once within all of it (then the layer
    runs single buffered)."""
    return _buffers_fit(_held(order, cm, cn, ck, groups, la, lw, lo), fa, fw, fmeta, fo, op_mem, used, usable, size,
                        streamed)


@jit
def _buffers_fit(held_ops, fa, fw, fmeta, fo, op_mem, used, usable, size, streamed):
    """:func:`_streamed_fit` with the held operands given (bits 0..3, :func:`_held`)."""
    fp = (fa, fw, fmeta, fo)
    fits, double, resident = True, True, 0
    for j in range(usable.shape[0]):
        if not used[j]:
            continue
        u, held = 0.0, 0.0
        for op in range(4):
            if op_mem[op] == j:
                u += fp[op]
                if held_ops & (1 << op):
                    held += fp[op]
        if u <= usable[j]:
            continue
        if not streamed[j]:
            fits = False
        elif 2.0 * u - held <= size[j]:
            for op in range(4):
                if op_mem[op] == j and held_ops & (1 << op):
                    resident |= 1 << op
        elif u <= size[j]:
            double = False
        else:
            fits = False
    return fits, double, resident


@jit
def _reload_cycles(resident, order, groups, cm, cn, ck, la, lw, lo, a, w, meta, out_wr, bw):
    """Array cycles lost to the resident tiles' reloads: per operand held once, all but the first of
    its ``R`` distinct tiles wait for their own DRAM transfer (loads; the output's: the write-back
    that frees its buffer). ``R`` = groups x the tile counts of the dimensions the operand has (the
    stationary tile, level 0), or groups alone (a level above 0 is held only when it is the whole
    operand, :func:`_held`)."""
    total = 0.0
    if resident & 1:
        r = groups * (1 if la > 0 else cm * ck)
        total += (r - 1) / r * a / bw
    if resident & 6:
        r = groups * (1 if lw > 0 else ck * cn)
        total += (r - 1) / r * ((w if resident & 2 else 0.0) + (meta if resident & 4 else 0.0)) / bw
    if resident & 8:
        r = groups * (1 if lo > 0 else cm * cn)
        total += (r - 1) / r * out_wr / bw
    return total


@jit
def _fits(op_mem, used, usable, fa, fw, fmeta, fo):
    """Do the tiles fit the memories' usable bytes (each memory the sum of the tiles it holds)?"""
    for j in range(usable.shape[0]):
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
                return False
    return True


@jit
def _separate(op_mem, used):
    """Does every memory hold the tiles of one operand at most (the weight with its metadata)?"""
    for j in range(used.shape[0]):
        if used[j]:
            a = op_mem[0] == j
            w = op_mem[1] == j or op_mem[2] == j
            o = op_mem[3] == j
            if (1 if a else 0) + (1 if w else 0) + (1 if o else 0) > 1:
                return False
    return True


@jit
def _max_level(order, operand, tm, tn, tk, m, n, k, cm, cn, ck, a_tile_factor, a_cut_factor, w_tile_factor,
               meta_tile_factor, acc_bytes, psum_on_chip, op_mem, used, usable):
    """The highest useful level of ``operand`` (0 A, 1 W, 2 output) whose tile fits, the others at
    level 0 (which fit); see :func:`_separate`."""
    for level in range(LEVELS - 1, 0, -1):
        d = _LOOPS[order, 3 - level]
        if not (_INDEXES[operand, d] and _count(d, cm, cn, ck) > 1):
            continue
        la, lw, lo = (level, 0, 0) if operand == 0 else ((0, level, 0) if operand == 1 else (0, 0, level))
        fa, fw, fmeta, fo = _footprints(order, tm, tn, tk, m, n, k, ck, la, lw, lo, a_tile_factor, a_cut_factor,
                                        w_tile_factor, meta_tile_factor, acc_bytes, psum_on_chip)
        if _fits(op_mem, used, usable, fa, fw, fmeta, fo):
            return level
    return 0


@jit
def _alone(u, hold, bits, j, usable, size, streamed):
    """:func:`_buffers_fit` of memory ``j`` holding ``u`` bytes of one operand's tiles (the others
    there taking no room; ``bits``: its operand bits, ``hold``: whether it is held once)."""
    if u <= usable[j]:
        return True, True, 0
    if not streamed[j]:
        return False, True, 0
    if 2.0 * u - (u if hold else 0.0) <= size[j]:
        return True, True, bits if hold else 0
    if u <= size[j]:
        return True, False, 0
    return False, True, 0


@jit_inline
def _weight_alone(fw, fmeta, hold, op_mem, usable, size, streamed):
    """:func:`_alone` for the weight's tiles and its metadata's, in one memory or two."""
    if op_mem[1] == op_mem[2]:
        return _alone(fw + fmeta, hold, 6, op_mem[1], usable, size, streamed)
    f, d, r = _alone(fw, hold, 2, op_mem[1], usable, size, streamed)
    f2, d2, r2 = _alone(fmeta, hold, 4, op_mem[2], usable, size, streamed)
    return f and f2, d and d2, r | r2


def _static_table():
    """Per order, operand (0 A, 1 W, 2 output), level and which loops run more than once (bit 0 m,
    bit 1 n, bit 2 k): whether the level is useful (:func:`_level_useful`), whether the operand is
    fetched again under an outer loop (:func:`_refetch`), whether a streamed memory holds it once
    (:func:`_held`, without its every-loop-once case) and whether the level's tile takes in each
    dimension (:func:`_inside`). These depend on nothing else, so the search looks them up."""
    g = globals()
    kernels = {name: g[name] for name in ("_count", "_inside", "_whole", "_stationary", "_refetch", "_level_useful")}
    g.update({name: getattr(f, "py_func", f) for name, f in kernels.items()})   # plain Python: nothing compiles
    # at import (under NUMBA_DISABLE_JIT=1 the kernels are plain functions already)
    try:
        return _static_rows()
    finally:
        g.update(kernels)


def _static_rows():
    n_o = _LOOPS.shape[0]
    out = np.zeros((n_o, 3, LEVELS, 8, 6), dtype=np.bool_)
    for o in range(n_o):
        for pat in range(8):
            cm, cn, ck = 1 + (pat & 1), 1 + ((pat >> 1) & 1), 1 + ((pat >> 2) & 1)
            stat = _stationary(o, cm, cn, ck)
            for x in range(3):
                for level in range(LEVELS):
                    whole = level > 0 and _whole(o, x, level, cm, cn, ck)
                    out[o, x, level, pat] = (
                        _level_useful(o, x, level, cm, cn, ck), _refetch(o, x, cm, cn, ck, level),
                        (level == 0 and stat == (3 if x == 2 else x)) or whole,
                        _inside(o, 0, level), _inside(o, 1, level), _inside(o, 2, level))
    out.flags.writeable = False
    return out


_STATIC = _static_table()


@jit
def _tile_table(tm, tn, tk, m, n, k, ck, a_tile_factor, a_cut_factor, w_tile_factor, meta_tile_factor, acc_bytes,
                psum_on_chip, op_mem, usable, size, streamed, fp, ok, dbl, res):
    """What an operand's tile costs in buffer for each way a level can take in the two dimensions that
    index it (whatever the order): ``fp[x, q]`` its bytes as :func:`_footprints` gives them (A's,
    q = m inside + 2 k inside; W's and the metadata's, q = k inside + 2 n inside; the output's,
    q = m inside + 2 n inside) and, for each ``h`` (held once or not), ``ok``/``dbl``/``res[x, q, h]``:
    :func:`_buffers_fit` of those tiles alone (the other operands taking no room)."""
    for q in range(4):
        i1, i2 = (q & 1) == 1, (q & 2) == 2
        fa = (m if i1 else tm) * (k if i2 else tk) * (a_tile_factor if i1 else a_cut_factor)
        wk = k if i1 else tk
        wn = n if i2 else tn
        fw, fmeta = wk * wn * w_tile_factor, wk * wn * meta_tile_factor
        fo = (m if i1 else tm) * (n if i2 else tn) * acc_bytes if (psum_on_chip or ck > 1) else 0.0
        fp[0, q, 0], fp[1, q, 0], fp[1, q, 1], fp[2, q, 0] = fa, fw, fmeta, fo
        for h in range(2):
            hold = h == 1
            ok[0, q, h], dbl[0, q, h], res[0, q, h] = _alone(fa, hold, 1, op_mem[0], usable, size, streamed)
            ok[1, q, h], dbl[1, q, h], res[1, q, h] = _weight_alone(fw, fmeta, hold, op_mem, usable, size, streamed)
            ok[2, q, h], dbl[2, q, h], res[2, q, h] = _alone(fo, hold, 8, op_mem[3], usable, size, streamed)


@jit
def _level_table(order, cm, cn, ck, groups, a_pass_bytes, a_cut_bytes, w_bytes, meta_bytes, o_final_bytes,
                 psum_bytes, p_fp, p_ok, p_dbl, p_res, use, fp, held, tr, ok, dbl, res):
    """Per operand (0 A, 1 W with its metadata, 2 output) and level, what the search combines: whether
    the level is useful (``use``, :func:`_level_useful`), its tiles' bytes (``fp[x, level]``: A's;
    W's and the metadata's; the output's, as :func:`_footprints`), the operands a streamed memory
    holds once (``held``, its bits of :func:`_held`) and its DRAM traffic (``tr``, its slots of
    :func:`_traffic`), each by the same operations as those functions (:data:`_STATIC` gives their
    loop logic, :func:`_tile_table` (``p_*``) the tile's bytes and buffers). Each depends on the
    operand's own level only, so a combination of levels costs lookups. ``ok``, ``dbl``, ``res``:
    :func:`_buffers_fit` of the operand's tiles alone (the others taking no room): a level that does
    not fit alone fits in no combination, and when each memory holds one operand
    (:func:`_separate`) a combination's buffers are these combined (all fit, all double buffered,
    the resident operands together)."""
    pat = (1 if cm > 1 else 0) + (2 if cn > 1 else 0) + (4 if ck > 1 else 0)
    every = pat == 0 and groups == 1
    for x in range(3):
        for level in range(LEVELS):
            st = _STATIC[order, x, level, pat]
            use[x, level] = st[0]
            if not st[0]:
                continue
            refetch, h, in_m, in_n, in_k = st[1], 1 if (st[2] or every) else 0, st[3], st[4], st[5]
            if x == 0:
                q = (1 if in_m else 0) + (2 if in_k else 0)
                a = a_pass_bytes if in_m else a_cut_bytes
                fp[0, level, 0], held[0, level], tr[0, level, 0] = p_fp[0, q, 0], h, a * (cn if refetch else 1)
            elif x == 1:
                q = (1 if in_k else 0) + (2 if in_n else 0)
                mult = cm if refetch else 1
                fp[1, level, 0], fp[1, level, 1], held[1, level] = p_fp[1, q, 0], p_fp[1, q, 1], 6 * h
                tr[1, level, 1], tr[1, level, 2] = w_bytes * mult, meta_bytes * mult
            else:
                q = (1 if in_m else 0) + (2 if in_n else 0)
                spill = max(ck - 1, 0) if refetch else 0
                fp[2, level, 0], held[2, level] = p_fp[2, q, 0], 8 * h
                tr[2, level, 3], tr[2, level, 4] = o_final_bytes + spill * psum_bytes, spill * psum_bytes
            ok[x, level], dbl[x, level], res[x, level] = p_ok[x, q, h], p_dbl[x, q, h], p_res[x, q, h]


@jit_inline
def _cannot_win(k1, k2, later, comp, vol, i, g_set, g_k1, g_k2, f_i, s1, s2, f_comp, f_vol):
    """Do lower bounds ``(k1, k2)`` of a tile's mappings in an order (its compute cycles, volume and
    grid index given) rank it after the best mapping that fits of any order, ``(g_k1, g_k2)`` (or at
    best tie it, when an earlier order holds it: ``later``; across orders a tie goes to the first), or
    after its own order's best ``(s1, s2)`` (``f_i`` its grid index, -1 for none) with the tie-breaks
    (fewer compute cycles, the larger tile, the first in grid order)?"""
    if g_set and (k1 > g_k1 or (k1 == g_k1 and (k2 > g_k2 or (k2 == g_k2 and later)))):
        return True
    return f_i >= 0 and (k1 > s1 or (k1 == s1 and (k2 > s2 or (k2 == s2 and (comp > f_comp or (comp == f_comp and (
        vol < f_vol or (vol == f_vol and i > f_i))))))))


@jit_inline
def _over(k1, cut, dram_first):
    """Does a first key of ``k1`` rank after another mode's ``cut`` (see :func:`_search`)?"""
    return k1 > cut if dram_first else k1 >= cut


@jit_inline
def _bound(a, w, meta, out_wr, psum_rd, bw, c_lo, double_buffered, prologue, epilogue, fold):
    """The fewest (cycles, DRAM bytes) of a mapping that moves these DRAM bytes with the array taking
    ``c_lo``: its bytes exactly, and its cycles at their least over how it may run (the pipeline
    formulas with no reload, single buffered or double). The same operations as the search's own
    costing, and non-decreasing in each input, so bytes no larger than a mapping's give no more than
    its cycles, not even by rounding."""
    load = (a + w + meta + psum_rd) / bw
    write = out_wr / bw
    cyc = load + c_lo + write
    if double_buffered:
        transfer = load + write
        cyc = min(cyc, max(min(prologue, load) + c_lo + min(epilogue, write), transfer + min(fold, transfer)))
    return cyc, a + w + meta + psum_rd + out_wr


@jit_inline
def _pruned(cyc, dram, dram_first, b_set, b_k1, b_k2, later, comp, vol, i, g_set, g_k1, g_k2, f_i, s1, s2, f_comp,
            f_vol):
    """Can no combination of levels whose least (cycles, DRAM bytes) are ``(cyc, dram)`` (:func:`_bound`)
    be chosen: none ranks strictly before the tile's best so far ``(b_k1, b_k2)``, or none can win
    against the orders' bests (:func:`_cannot_win`)?"""
    k1, k2 = (dram, cyc) if dram_first else (cyc, dram)
    if b_set and (k1 > b_k1 or (k1 == b_k1 and k2 >= b_k2)):
        return True
    return _cannot_win(k1, k2, later, comp, vol, i, g_set, g_k1, g_k2, f_i, s1, s2, f_comp, f_vol)


@jit
def _tile_bound(outer, a_t, cm, cn, ck, whole_a, whole_w, whole_o, w_bytes, meta_bytes, o_final_bytes, psum_bytes, bw,
                c_lo, double_buffered, prologue, epilogue, fold):
    """The fewest (cycles, DRAM bytes) of any mapping of a tile whose order's outermost loop is
    ``outer`` (0 m, 1 n, 2 k): the operand that loop does not index (W, A, the output) is fetched again
    on its every trip unless the whole of it fits its memory (``whole_*``); the others move once, A
    at ``a_t`` (its cheapest pass); the array takes ``c_lo`` (:func:`_bound`)."""
    a = a_t * (cn if (outer == 1 and not whole_a) else 1)
    w_mult = cm if (outer == 0 and not whole_w) else 1
    spill = max(ck - 1, 0) if (outer == 2 and not whole_o) else 0
    return _bound(a, w_bytes * w_mult, meta_bytes * w_mult, o_final_bytes + spill * psum_bytes, spill * psum_bytes,
                  bw, c_lo, double_buffered, prologue, epilogue, fold)


@jit
def _search(tiles_m, tiles_n, tiles_k, stream, compute_s, port, m, n, k, a_cut_m, a_pass_bytes,
            a_cut_factor_m, a_tile_factor, w_bytes, meta_bytes, w_tile_factor, meta_tile_factor,
            o_final_bytes, psum_bytes, acc_bytes, psum_on_chip, op_mem, used, usable, double_buffered, bw,
            prologue, epilogue, fold, size, streamed, groups, dram_first, cut=np.inf):
    """The mapper's search (see :func:`search`); returns (order, tile indices m/n/k, fits, cycles,
    the chosen mapping's :func:`dram_traffic`, its operands' levels, and how it uses ``streamed``
    memories: (1.0 when double buffered else 0.0, the resident operands' bits, the reload cycles
    when the layer runs double buffered, else 0), as :func:`_streamed_fit` and
    :func:`_reload_cycles` give them). Per tile and order, every combination of the operands'
    levels (each the mapping's tile or one that takes in more of the innermost loops, up to the
    whole operand) that fits; each order keeps its own best.
    ``dram_first``: rank DRAM bytes before cycles (``mapper.objective: dram``); otherwise cycles
    before DRAM bytes. Ties: the lower levels (less buffer).

    Exact shortcuts (the result is the full search's, :func:`tests.naive.mapper_search`): the tiles
    that do not fit are costed only when no tile fits in any order (a second pass; one that fits
    always wins); a tile is skipped when lower bounds of its cycles and DRAM bytes rank it after the
    best mapping found (of its order, or of an order that wins a tie against it); the levels' tiles,
    held operands and traffic are worked out once per operand and level (:func:`_level_table`) and
    combined by lookups; combinations are searched by branch and bound (:func:`_bound`).

    ``cut``: a rank another mode of the layer already reaches (the engine's mode choice,
    :func:`simulator.engine._shared_plan`), in the search's terms: a tile that fits is skipped when its
    bound's first key is at least ``cut`` (cycles; ``cut`` is the other mode's cycles plus 0.5, so
    these cycles round to more) or above it (``dram_first``). When that skips any tile, order -1
    means that no mapping of this mode can rank as well as the other mode (a tile fits, and every one
    that fits was skipped), and order -2 that the search must run again without ``cut`` (no tile
    that was costed fits, and whether a skipped one does is not known); otherwise the result is the
    full search's whenever its rank is no worse than ``cut``."""
    n_mem = usable.shape[0]
    any_streamed = False
    for j in range(n_mem):
        if used[j] and streamed[j]:
            any_streamed = True
    n_tm, n_tn, n_tk = tiles_m.shape[0], tiles_n.shape[0], tiles_k.shape[0]
    mm, nn, kk = max(1, m), max(1, n), max(1, k)
    t_use = np.zeros((3, LEVELS), dtype=np.bool_)       # per operand and level (see _level_table)
    t_fp = np.zeros((3, LEVELS, 2))
    t_held = np.zeros((3, LEVELS), dtype=np.int64)
    t_tr = np.zeros((3, LEVELS, 5))
    t_ok = np.zeros((3, LEVELS), dtype=np.bool_)
    t_dbl = np.zeros((3, LEVELS), dtype=np.bool_)
    t_res = np.zeros((3, LEVELS), dtype=np.int64)
    p_fp = np.zeros((3, 4, 2))                            # per tile (see _tile_table)
    p_ok = np.zeros((3, 4, 2), dtype=np.bool_)
    p_dbl = np.zeros((3, 4, 2), dtype=np.bool_)
    p_res = np.zeros((3, 4, 2), dtype=np.int64)
    one_each = _separate(op_mem, used)
    separate = not any_streamed and one_each
    # per order: fitting: fewest (cycles, DRAM bytes, compute cycles), then the largest tile;
    # none fits: the smallest tile, then fewest (cycles, DRAM bytes). Ties: the first in grid order.
    # With dram_first, (DRAM bytes, cycles) in both places.
    n_o = _LOOPS.shape[0]
    f_i = np.full(n_o, -1, dtype=np.int64)
    # the best (k1, k2) that fits over all orders so far, and the first order that has it (an order
    # after it wins nothing by equalling it: across orders a tie goes to the first)
    g_set, g_k1, g_k2, g_o = False, 0.0, 0.0, 0
    f_cyc = np.zeros(n_o)
    f_dram = np.zeros(n_o)
    f_comp = np.zeros(n_o)
    f_vol = np.zeros(n_o, dtype=np.int64)
    f_tr = np.zeros((n_o, 5))
    f_lv = np.zeros((n_o, 3), dtype=np.int64)
    f_use = np.zeros((n_o, 3))       # the buffers' use: double buffered, resident bits, reload cycles
    x_use = np.zeros((n_o, 3))
    x_i = np.full(n_o, -1, dtype=np.int64)
    x_cyc = np.zeros(n_o)
    x_dram = np.zeros(n_o)
    x_vol = np.zeros(n_o, dtype=np.int64)
    x_tr = np.zeros((n_o, 5))
    # lower bounds for pruning: a tile whose bounds already lose to an order's best is not costed. The
    # operand that the order's outermost loop does not index is fetched again on its every trip
    # unless its level is the whole operand (:func:`_refetch`), which needs the whole operand to fit
    # its memory (alone, held once); every other operand moves at least once (A at its cheapest pass).
    # A mapping's cycles and bytes come from the same operations on inputs no smaller, so they are
    # never below these bounds, not even by rounding.
    fw_whole, fmeta_whole = kk * nn * w_tile_factor, kk * nn * meta_tile_factor
    whole_a = _alone(mm * kk * a_tile_factor, True, 1, op_mem[0], usable, size, streamed)[0]
    whole_w = _weight_alone(fw_whole, fmeta_whole, True, op_mem, usable, size, streamed)[0]
    whole_o = _alone(mm * nn * acc_bytes, True, 8, op_mem[3], usable, size, streamed)[0]
    b_k1s, b_k2s = np.zeros(3), np.zeros(3)      # per outermost loop (0 m, 1 n, 2 k), this tile's bounds
    base_known = np.full(16, -1, dtype=np.int64)
    # something skipped for ``cut``; one of the tiles skipped fits at level 0 (whatever the order)
    cut_any, cut_fit = False, False
    # pass 0: the tiles that fit; pass 1 (only when none fits in any order): the tiles that do not.
    # The grid is walked from the largest tiles down (the best mapping is often a large one, and then
    # most others are pruned); ties go to the first in grid order, as the order of the walk does not
    for phase in range(2):
        if phase == 1 and g_set:
            break
        if phase == 1 and cut_any:
            # nothing that fits ranks as well as ``cut`` (one fits, and every one was skipped for it),
            # or whether a tile skipped fits is not known
            return (-1 if cut_fit else -2), 0, 0, 0, False, 0.0, (0.0, 0.0, 0.0, 0.0, 0.0), (0, 0, 0), (1.0, 0.0, 0.0)
        for im in range(n_tm - 1, -1, -1):
            tm = tiles_m[im]
            cm = -(-mm // tm)
            a_cut_bytes, a_cut_factor = a_cut_m[im], a_cut_factor_m[im]
            for jn in range(n_tn - 1, -1, -1):
                tn = tiles_n[jn]
                cn = -(-nn // tn)
                for ik in range(n_tk - 1, -1, -1):
                    tk = tiles_k[ik]
                    ck = -(-kk // tk)
                    s = im if stream == 0 else (jn if stream == 1 else ik)
                    comp = compute_s[s]
                    vol = tm * tn * tk
                    i = (im * n_tn + jn) * n_tk + ik
                    # the fewest cycles and DRAM bytes any mapping of this tile can take, per outermost
                    # loop (see _pipeline_cycles and _streamed_cycles, each term at its least), and over all
                    c_lo = max(comp, port[s])
                    a_t = min(a_pass_bytes, a_cut_bytes)
                    for c in range(3):
                        cyc_c, dram_c = _tile_bound(c, a_t, cm, cn, ck, whole_a, whole_w, whole_o, w_bytes, meta_bytes,
                                                    o_final_bytes, psum_bytes, bw, c_lo, double_buffered, prologue,
                                                    epilogue, fold)
                        b_k1s[c], b_k2s[c] = (dram_c, cyc_c) if dram_first else (cyc_c, dram_c)
                    k1_lo, k2_lo = b_k1s[0], b_k2s[0]
                    for c in range(1, 3):
                        if b_k1s[c] < k1_lo or (b_k1s[c] == k1_lo and b_k2s[c] < k2_lo):
                            k1_lo, k2_lo = b_k1s[c], b_k2s[c]
                    if g_set and (k1_lo > g_k1 or (k1_lo == g_k1 and k2_lo > g_k2)):
                        continue     # ranks after a mapping of some order that fits: in no order can it win
                    # the mapping's own tiles (level 0 for every operand, whatever the order) decide whether it fits
                    fa0, fw0, fmeta0, fo0 = _footprints(0, tm, tn, tk, mm, nn, kk, ck, 0, 0, 0, a_tile_factor,
                                                        a_cut_factor, w_tile_factor, meta_tile_factor, acc_bytes,
                                                        psum_on_chip)
                    fits0 = _fits(op_mem, used, usable, fa0, fw0, fmeta0, fo0)
                    if phase == 0 and _over(k1_lo, cut, dram_first):
                        # ranks after the other mode: skipped, noting whether it fits (its tiles at level 0
                        # fit whatever the order: then a mapping of this mode fits, and loses)
                        cut_any, cut_fit = True, cut_fit or fits0
                        continue
                    if phase == 1 and fits0:
                        continue
                    tile_done = False     # _tile_table worked out for this tile
                    base_known[:] = -1    # per set of held operands (_held's bits): do the level-0 tiles fit?
                    pat = (1 if cm > 1 else 0) + (2 if cn > 1 else 0) + (4 if ck > 1 else 0)
                    for o in range(n_o):
                        base_fits = fits0
                        if o >= 3 and not (fits0 or any_streamed):
                            continue     # nothing but the tile: the same as one of the first three orders
                        s1, s2 = (f_dram[o], f_cyc[o]) if dram_first else (f_cyc[o], f_dram[o])
                        if _cannot_win(b_k1s[_LOOPS[o, 0]], b_k2s[_LOOPS[o, 0]], o > g_o, comp, vol, i, g_set, g_k1,
                                       g_k2, f_i[o], s1, s2, f_comp[o], f_vol[o]):
                            continue
                        if any_streamed and not base_fits:
                            # (the tiles at level 0 differ between orders only in the operand held once)
                            h0 = 15 if (pat == 0 and groups == 1) else (
                                (1 if _STATIC[o, 0, 0, pat, 2] else 0) | (6 if _STATIC[o, 1, 0, pat, 2] else 0)
                                | (8 if _STATIC[o, 2, 0, pat, 2] else 0))     # _held at level 0
                            if base_known[h0] < 0:
                                base_known[h0] = 1 if _buffers_fit(h0, fa0, fw0, fmeta0, fo0, op_mem, used, usable,
                                                                   size, streamed)[0] else 0
                            base_fits = base_known[h0] == 1
                        if base_fits != (phase == 0):
                            continue
                        if phase == 0 and _over(b_k1s[_LOOPS[o, 0]], cut, dram_first):
                            cut_any, cut_fit = True, cut_fit or fits0
                            continue
                        b_set, b_k1, b_k2 = False, 0.0, 0.0
                        b_cyc, b_dram = 0.0, 0.0
                        b_tr = (0.0, 0.0, 0.0, 0.0, 0.0)
                        b_lv = (0, 0, 0)
                        b_use = (1.0, 0.0, 0.0)
                        if separate or not base_fits:
                            # each memory holds one operand and none is streamed: each operand's highest
                            # level that fits is the best (fewer fetches, and time falls with the bytes);
                            # a tile that does not fit takes in nothing more
                            lo_a, lo_w, lo_o = 0, 0, 0
                            if base_fits:
                                lo_a = _max_level(o, 0, tm, tn, tk, mm, nn, kk, cm, cn, ck, a_tile_factor, a_cut_factor,
                                                  w_tile_factor, meta_tile_factor, acc_bytes, psum_on_chip, op_mem,
                                                  used, usable)
                                lo_w = _max_level(o, 1, tm, tn, tk, mm, nn, kk, cm, cn, ck, a_tile_factor, a_cut_factor,
                                                  w_tile_factor, meta_tile_factor, acc_bytes, psum_on_chip, op_mem,
                                                  used, usable)
                                lo_o = _max_level(o, 2, tm, tn, tk, mm, nn, kk, cm, cn, ck, a_tile_factor, a_cut_factor,
                                                  w_tile_factor, meta_tile_factor, acc_bytes, psum_on_chip, op_mem,
                                                  used, usable)
                                if o >= 3 and lo_a + lo_w + lo_o == 0:
                                    continue     # as above
                            elif o >= 3:
                                # with every operand at level 0 an order past the first three is one of them
                                useful = False
                                for x in range(3):
                                    for level in range(1, LEVELS):
                                        if _level_useful(o, x, level, cm, cn, ck):
                                            useful = True
                                if not useful:
                                    continue
                            la, lw, lo = lo_a, lo_w, lo_o
                            if (_level_useful(o, 0, la, cm, cn, ck) and _level_useful(o, 1, lw, cm, cn, ck)
                                    and _level_useful(o, 2, lo, cm, cn, ck)):
                                fa, fw, fmeta, fo = _footprints(o, tm, tn, tk, mm, nn, kk, ck, la, lw, lo,
                                                                a_tile_factor, a_cut_factor, w_tile_factor,
                                                                meta_tile_factor, acc_bytes, psum_on_chip)
                                dbl, resident = True, 0
                                if any_streamed:
                                    fits, dbl, resident = _streamed_fit(o, cm, cn, ck, groups, fa, fw, fmeta, fo, la,
                                                                        lw, lo, op_mem, used, usable, size, streamed)
                                else:
                                    fits = _fits(op_mem, used, usable, fa, fw, fmeta, fo)
                                if fits or not base_fits:
                                    tr = _traffic(o, cm, cn, ck, la, lw, lo, a_pass_bytes, a_cut_bytes, w_bytes,
                                                  meta_bytes, o_final_bytes, psum_bytes)
                                    a, w, meta, out_wr, psum_rd = tr
                                    load = (a + w + meta + psum_rd) / bw
                                    write = out_wr / bw
                                    rl = 0.0
                                    if not any_streamed:
                                        cyc = _pipeline_cycles(comp, port[s], load, write, double_buffered, prologue,
                                                               epilogue, fold)
                                    elif dbl and double_buffered:
                                        rl = _reload_cycles(resident, o, groups, cm, cn, ck, la, lw, lo, a, w, meta,
                                                            out_wr, bw)
                                        cyc = _streamed_cycles(comp, port[s], load, write, prologue, epilogue, fold, rl)
                                    else:
                                        cyc = _pipeline_cycles(comp, port[s], load, write, False, prologue, epilogue,
                                                               fold)
                                    dram = a + w + meta + psum_rd + out_wr
                                    k1, k2 = (dram, cyc) if dram_first else (cyc, dram)
                                    b_set, b_k1, b_k2, b_cyc, b_dram, b_tr = True, k1, k2, cyc, dram, tr
                                    b_lv = (la, lw, lo)
                                    b_use = (1.0 if dbl else 0.0, float(resident), rl)
                        else:
                            if not tile_done:
                                _tile_table(tm, tn, tk, mm, nn, kk, ck, a_tile_factor, a_cut_factor, w_tile_factor,
                                            meta_tile_factor, acc_bytes, psum_on_chip, op_mem, usable, size,
                                            streamed, p_fp, p_ok, p_dbl, p_res)
                                tile_done = True
                            _level_table(o, cm, cn, ck, groups, a_pass_bytes, a_cut_bytes, w_bytes, meta_bytes,
                                         o_final_bytes, psum_bytes, p_fp, p_ok, p_dbl, p_res, t_use, t_fp, t_held,
                                         t_tr, t_ok, t_dbl, t_res)
                            if o >= 3:
                                # with every operand at level 0 an order past the first three is one of them
                                useful = False
                                for x in range(3):
                                    for level in range(1, LEVELS):
                                        if t_use[x, level]:
                                            useful = True
                                if not useful:
                                    continue
                            # tighter bounds for this order: each operand's least traffic over its levels
                            # that fit alone (every combination moves at least that much)
                            a_m, w_m, meta_m, out_m, ps_m = np.inf, np.inf, np.inf, np.inf, np.inf
                            for level in range(LEVELS):
                                if t_use[0, level] and t_ok[0, level]:
                                    a_m = min(a_m, t_tr[0, level, 0])
                                if t_use[1, level] and t_ok[1, level]:
                                    w_m, meta_m = min(w_m, t_tr[1, level, 1]), min(meta_m, t_tr[1, level, 2])
                                if t_use[2, level] and t_ok[2, level]:
                                    out_m, ps_m = min(out_m, t_tr[2, level, 3]), min(ps_m, t_tr[2, level, 4])
                            if a_m == np.inf or w_m == np.inf or out_m == np.inf:
                                continue     # an operand fits at no level
                            cyc_lb, d_lb = _bound(a_m, w_m, meta_m, out_m, ps_m, bw, c_lo, double_buffered, prologue,
                                                  epilogue, fold)
                            k1_t, k2_t = (d_lb, cyc_lb) if dram_first else (cyc_lb, d_lb)
                            later = o > g_o
                            if _cannot_win(k1_t, k2_t, later, comp, vol, i, g_set, g_k1, g_k2, f_i[o], s1, s2,
                                           f_comp[o], f_vol[o]):
                                continue
                            if _over(k1_t, cut, dram_first):
                                cut_any, cut_fit = True, cut_fit or fits0
                                continue
                            # branch and bound over the levels: each operand's level fixed in turn, the others
                            # at their least traffic, bound what the combinations below can take; a bound that
                            # cannot rank before this tile's best so far (ties go to the lower levels, met
                            # first) or cannot win against the orders' bests (_cannot_win) is not followed.
                            # (a level whose tiles do not fit alone fits in no combination)
                            for la in range(LEVELS):
                                if not (t_use[0, la] and t_ok[0, la]):
                                    continue
                                a = t_tr[0, la, 0]
                                cyc_l, d_l = _bound(a, w_m, meta_m, out_m, ps_m, bw, c_lo, double_buffered, prologue,
                                                    epilogue, fold)
                                if _over(d_l if dram_first else cyc_l, cut, dram_first):
                                    cut_any, cut_fit = True, cut_fit or fits0
                                    continue
                                if _pruned(cyc_l, d_l, dram_first, b_set, b_k1, b_k2, later, comp, vol, i, g_set, g_k1,
                                           g_k2, f_i[o], s1, s2, f_comp[o], f_vol[o]):
                                    continue
                                for lw in range(LEVELS):
                                    if not (t_use[1, lw] and t_ok[1, lw]):
                                        continue
                                    w, meta = t_tr[1, lw, 1], t_tr[1, lw, 2]
                                    cyc_l, d_l = _bound(a, w, meta, out_m, ps_m, bw, c_lo, double_buffered, prologue,
                                                        epilogue, fold)
                                    if _over(d_l if dram_first else cyc_l, cut, dram_first):
                                        cut_any, cut_fit = True, cut_fit or fits0
                                        continue
                                    if _pruned(cyc_l, d_l, dram_first, b_set, b_k1, b_k2, later, comp, vol, i, g_set,
                                               g_k1, g_k2, f_i[o], s1, s2, f_comp[o], f_vol[o]):
                                        continue
                                    for lo in range(LEVELS):
                                        if not (t_use[2, lo] and t_ok[2, lo]):
                                            continue
                                        out_wr, psum_rd = t_tr[2, lo, 3], t_tr[2, lo, 4]
                                        cyc_l, d_l = _bound(a, w, meta, out_wr, psum_rd, bw, c_lo, double_buffered,
                                                            prologue, epilogue, fold)
                                        if _over(d_l if dram_first else cyc_l, cut, dram_first):
                                            cut_any, cut_fit = True, cut_fit or fits0
                                            continue
                                        if _pruned(cyc_l, d_l, dram_first, b_set, b_k1, b_k2, later, comp, vol, i,
                                                   g_set, g_k1, g_k2, f_i[o], s1, s2, f_comp[o], f_vol[o]):
                                            continue
                                        dbl, resident = True, 0
                                        if one_each:
                                            # each memory's buffers follow from its one operand's level
                                            dbl = t_dbl[0, la] and t_dbl[1, lw] and t_dbl[2, lo]
                                            resident = t_res[0, la] | t_res[1, lw] | t_res[2, lo]
                                        else:
                                            fa, fw, fmeta = t_fp[0, la, 0], t_fp[1, lw, 0], t_fp[1, lw, 1]
                                            fo = t_fp[2, lo, 0]
                                            if any_streamed:
                                                fits, dbl, resident = _buffers_fit(
                                                    t_held[0, la] | t_held[1, lw] | t_held[2, lo], fa, fw, fmeta, fo,
                                                    op_mem, used, usable, size, streamed)
                                            else:
                                                fits = _fits(op_mem, used, usable, fa, fw, fmeta, fo)
                                            if not fits:
                                                continue
                                        load = (a + w + meta + psum_rd) / bw
                                        write = out_wr / bw
                                        rl = 0.0
                                        if not any_streamed:
                                            cyc = _pipeline_cycles(comp, port[s], load, write, double_buffered,
                                                                   prologue, epilogue, fold)
                                        elif dbl and double_buffered:
                                            rl = _reload_cycles(resident, o, groups, cm, cn, ck, la, lw, lo, a, w, meta,
                                                                out_wr, bw)
                                            cyc = _streamed_cycles(comp, port[s], load, write, prologue, epilogue, fold,
                                                                   rl)
                                        else:
                                            cyc = _pipeline_cycles(comp, port[s], load, write, False, prologue,
                                                                   epilogue, fold)
                                        dram = d_l     # (_bound: the same sum)
                                        k1, k2 = (dram, cyc) if dram_first else (cyc, dram)
                                        if not b_set or k1 < b_k1 or (k1 == b_k1 and k2 < b_k2):
                                            b_set, b_k1, b_k2, b_cyc, b_dram = True, k1, k2, cyc, dram
                                            b_tr = (a, w, meta, out_wr, psum_rd)
                                            b_lv = (la, lw, lo)
                                            b_use = (1.0 if dbl else 0.0, float(resident), rl)
                        if not b_set:
                            continue
                        cyc, dram, k1, k2 = b_cyc, b_dram, b_k1, b_k2
                        a, w, meta, out_wr, psum_rd = b_tr
                        if base_fits:
                            s1, s2 = (f_dram[o], f_cyc[o]) if dram_first else (f_cyc[o], f_dram[o])
                            if f_i[o] < 0 or k1 < s1 or (k1 == s1 and (k2 < s2 or (
                                    k2 == s2 and (comp < f_comp[o] or (comp == f_comp[o] and (
                                        vol > f_vol[o] or (vol == f_vol[o] and i < f_i[o]))))))):
                                f_i[o], f_cyc[o], f_dram[o], f_comp[o], f_vol[o] = i, cyc, dram, comp, vol
                                if not g_set or k1 < g_k1 or (k1 == g_k1 and k2 < g_k2):
                                    g_set, g_k1, g_k2, g_o = True, k1, k2, o
                                elif k1 == g_k1 and k2 == g_k2 and o < g_o:
                                    g_o = o
                                f_tr[o, 0], f_tr[o, 1], f_tr[o, 2], f_tr[o, 3], f_tr[o, 4] = a, w, meta, out_wr, psum_rd
                                f_lv[o, 0], f_lv[o, 1], f_lv[o, 2] = b_lv
                                f_use[o, 0], f_use[o, 1], f_use[o, 2] = b_use
                            continue
                        s1, s2 = (x_dram[o], x_cyc[o]) if dram_first else (x_cyc[o], x_dram[o])
                        if x_i[o] < 0 or vol < x_vol[o] or (vol == x_vol[o] and (k1 < s1 or (k1 == s1 and (
                                k2 < s2 or (k2 == s2 and i < x_i[o]))))):
                            x_i[o], x_cyc[o], x_dram[o], x_vol[o] = i, cyc, dram, vol
                            x_tr[o, 0], x_tr[o, 1], x_tr[o, 2], x_tr[o, 3], x_tr[o, 4] = a, w, meta, out_wr, psum_rd
                            x_use[o, 0], x_use[o, 1], x_use[o, 2] = b_use
    b_o, b_im, b_in, b_ik, b_ok, b_cyc, b_dram = -1, 0, 0, 0, False, 0.0, 0.0
    b_tr = (0.0, 0.0, 0.0, 0.0, 0.0)
    b_lv = (0, 0, 0)
    b_use = (1.0, 0.0, 0.0)
    for o in range(n_o):
        lv = (0, 0, 0)
        if f_i[o] < 0 and x_i[o] < 0:
            continue     # an order skipped (the same as one of the first three)
        if f_i[o] >= 0:
            i, ok, cyc, dram = f_i[o], True, f_cyc[o], f_dram[o]
            tr = (f_tr[o, 0], f_tr[o, 1], f_tr[o, 2], f_tr[o, 3], f_tr[o, 4])
            lv = (f_lv[o, 0], f_lv[o, 1], f_lv[o, 2])
            use = (f_use[o, 0], f_use[o, 1], f_use[o, 2])
        else:
            i, ok, cyc, dram = x_i[o], False, x_cyc[o], x_dram[o]
            tr = (x_tr[o, 0], x_tr[o, 1], x_tr[o, 2], x_tr[o, 3], x_tr[o, 4])
            use = (x_use[o, 0], x_use[o, 1], x_use[o, 2])
        k1, k2, s1, s2 = (dram, cyc, b_dram, b_cyc) if dram_first else (cyc, dram, b_cyc, b_dram)
        if b_o < 0 or (ok and not b_ok) or (ok == b_ok and (k1 < s1 or (k1 == s1 and k2 < s2))):
            b_o, b_im, b_in, b_ik = o, i // (n_tn * n_tk), (i // n_tk) % n_tn, i % n_tk
            b_ok, b_cyc, b_dram, b_tr, b_lv, b_use = ok, cyc, dram, tr, lv, use
    return b_o, b_im, b_in, b_ik, b_ok, b_cyc, b_tr, b_lv, b_use


def search(p: MapProblem, tiles: dict, compute, port, op_mem, used, usable, double_buffered: bool, bw: float,
           prologue: float, epilogue: float, fold: float, size=None, streamed=None, objective: str = "cycles",
           cut: float = math.inf):
    """The best mapping of ``p`` over the grid ``tiles[m] x tiles[n] x tiles[k]``, every order in
    :data:`ORDERS` and every level of each operand: the fewest pipeline cycles among the mappings
    that fit, then the fewest DRAM bytes (``objective="dram"``: the fewest DRAM bytes, then cycles),
    the fewest compute cycles, the largest tile (when nothing fits: the smallest tile).
    ``compute``/``port``: array and busiest-port cycles per tile of the streamed dimension;
    ``op_mem``: the memory index holding activation, weight, metadata, output; ``used``/``usable``
    per memory, ``size``/``streamed`` its whole bytes and whether it is ``double_buffered: streamed``
    (default: none is). Returns ``(Mapping, cycles, (a, w, meta, out_wr, psum_rd), index of the stream
    tile)``. ``cut``: a first key (cycles, or DRAM bytes with ``objective="dram"``) to beat; then the
    result is the full search's when that ranks before ``cut`` (cycles below it, DRAM bytes no more),
    else a mapping that ranks no better or None when no mapping that fits does (:func:`_search`)."""
    tm_, tn_, tk_ = tiles["m"], tiles["n"], tiles["k"]
    stream = DIMS.index(p.stream)
    if streamed is None:
        size, streamed = np.asarray(usable, dtype=np.float64), np.zeros(len(usable), dtype=np.bool_)
    cut_bytes, cut_factor = a_cuts(p, tm_)
    o = -2
    while o == -2:     # (-2: the search must run again without ``cut``)
        o, im, jn, ik, ok, cyc, traffic, lv, _ = _search(
            tm_, tn_, tk_, stream, compute.astype(np.float64), port.astype(np.float64), p.m, p.n, p.k, cut_bytes,
            float(p.a_pass_bytes), cut_factor, float(p.a_tile_factor), float(p.w_bytes),
            float(p.meta_bytes), float(p.w_tile_factor), float(p.meta_tile_factor), float(p.o_final_bytes),
            float(p.psum_bytes), float(p.acc_bytes), bool(p.psum_on_chip), op_mem, used, usable,
            bool(double_buffered), float(bw), float(prologue), float(epilogue), float(fold),
            np.asarray(size, dtype=np.float64), np.asarray(streamed, dtype=np.bool_), p.groups, objective == "dram",
            float(cut))
        cut = math.inf
    if o == -1:
        return None
    tm, tn, tk = int(tm_[im]), int(tn_[jn]), int(tk_[ik])
    mapping = Mapping(order=ORDERS[o], tile_m=tm, tile_n=tn, tile_k=tk, count_m=-(-max(1, p.m) // tm),
                      count_n=-(-max(1, p.n) // tn), count_k=-(-max(1, p.k) // tk), groups=p.groups, fits=bool(ok),
                      levels=tuple(int(x) for x in lv))
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
