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
tiles. ``tests/test_mapping.py`` checks it against an exhaustive search over the same space.

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
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .kernels import double_buffered_cycles

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


def tile_candidates(d: int, granule: int) -> np.ndarray:
    """Tile sizes for a dimension of ``d`` elements: ``ceil(units / j)`` granules for every count
    ``j`` of tiles from 1 to 8 and every power of two, down to one granule (about 15 sizes)."""
    units = -(-d // granule)
    counts = set(range(1, min(units, 8) + 1)) | {min(units, 1 << i) for i in range(units.bit_length() + 1)}
    tiles = {min(d, granule * -(-units // c)) for c in counts}
    return np.array(sorted(tiles), dtype=np.int64)


def a_pass(p: MapProblem, count_m):
    """DRAM bytes of one pass over A when m is cut into ``count_m`` tiles (halos included)."""
    cuts = np.maximum(0, count_m - 1 - p.a_cut_free)
    return np.minimum(p.a_gemm_bytes, p.a_pass_bytes + cuts * p.a_halo_bytes)


def _reloads(order: str, irrelevant: str, counts: dict):
    """True where an operand that does not depend on ``irrelevant`` is fetched again on every
    iteration of that loop: some loop inside it that the operand depends on runs more than once."""
    loops = order.split(">")
    inner = [d for d in loops[loops.index(irrelevant) + 1:]]
    out = False
    for d in inner:
        out = out | (counts[d] > 1)
    return out


def dram_traffic(p: MapProblem, order: str, cm, cn, ck):
    """DRAM bytes (activation, weight, metadata, output writes, partial-sum reads) of a mapping."""
    counts = {"m": cm, "n": cn, "k": ck}
    a = a_pass(p, cm) * np.where(_reloads(order, "n", counts), cn, 1)
    w_mult = np.where(_reloads(order, "m", counts), cm, 1)
    w, meta = p.w_bytes * w_mult, p.meta_bytes * w_mult
    spill = np.where(_reloads(order, "k", counts), np.maximum(ck - 1, 0), 0)
    psum_rd = spill * p.psum_bytes
    out_wr = p.o_final_bytes + spill * p.psum_bytes
    return a, w, meta, out_wr, psum_rd


def footprints(p: MapProblem, order: str, tm, tn, tk, ck):
    """Buffer bytes of one tile of each operand: activation, weight, metadata, output."""
    a = tm * tk * p.a_tile_factor
    w = tk * tn * p.w_tile_factor
    meta = tk * tn * p.meta_tile_factor
    accumulate = p.psum_on_chip | (ck > 1)
    o = np.where(accumulate, tm * tn * p.acc_bytes, 0.0)
    return a, w, meta, o


def pipeline_cycles(compute, sram, load, write, steps, double_buffered: bool, prologue=0.0, epilogue=0.0,
                    fold=0.0):
    """Cycles of a layer: ``compute`` (array), ``sram`` (busiest port), ``load`` and ``write`` (DRAM
    time), ``steps`` tiles; ``prologue``/``epilogue``: the first fold's stationary tile load and
    the last fold's write-back; ``fold``: one fold's compute. See the module docstring. NumPy-friendly."""
    c = np.maximum(compute, sram)
    if not double_buffered:
        return load + c + write
    transfer = load + write
    p, e = np.minimum(prologue, load), np.minimum(epilogue, write)
    return np.maximum(p + c + e, transfer + np.minimum(fold, transfer))


@lru_cache(maxsize=4096)
def rtl_cycles(weight_folds: int, stream: int, tile: int, rows: int, cols: int, load_per_row: float,
               stream_per_row: float, fill_extra: float) -> float:
    """The RTL schedule over ``weight_folds`` weight tiles, each streaming ``stream`` rows in chunks
    of ``tile`` (each chunk its own fold, the weights reloaded)."""
    chunks = -(-stream // tile)
    pattern = np.array([tile] * (chunks - 1) + [stream - (chunks - 1) * tile], dtype=np.float64)
    return double_buffered_cycles(np.tile(pattern, weight_folds), rows, cols, load_per_row, stream_per_row,
                                  fill_extra)
