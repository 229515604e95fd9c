"""A dataflow as data: which GEMM dimension sits on the array's rows, which on its columns and which
streams through it, and whether the stationary operand is preloaded before streaming.

Fold time (one tile of the array), from the systolic skew as SCALE-Sim v3 counts it:

* preloaded (WS, IS): ``2R + C + T - 2``: R cycles to load the stationary tile, then the stream of
  T rows enters with an R-cycle skew and leaves through C columns;
* not preloaded (OS): ``R + C + T - 2``.

A layer's compute cycles are the sum over its folds minus one: SCALE-Sim counts up to the cycle
in which the last output leaves, and its "Total Cycles" is that sum minus one for every dataflow
(checked against ``scalesim==3.0.0``; see ``benchmarks/bench_scalesim.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

from accel import Dataflow

from ._jit import jit


@jit
def fold_time(preload_rows, r, c, t):
    """Cycles of one fold of an R x C array streaming T rows, after ``preload_rows`` cycles of
    stationary-tile loading (R when preloaded, else 0); compiled, so the mapper's kernels call it."""
    return preload_rows + r + c + t - 2


@dataclass(frozen=True)
class DataflowMap:
    rows: str     # GEMM dimension on array rows: "m", "n" or "k"
    cols: str     # on array columns
    stream: str   # streamed through the array in time
    preload: bool  # stationary tile loaded before the stream starts

    def fold_cycles(self, r: int, c: int, t):
        """Cycles of one fold with T streamed rows (T may be a NumPy array)."""
        return fold_time(r if self.preload else 0, r, c, t)

    @property
    def tiled(self) -> tuple[str, str]:
        return (self.rows, self.cols)


DATAFLOWS = {
    Dataflow.WS: DataflowMap(rows="k", cols="n", stream="m", preload=True),
    Dataflow.OS: DataflowMap(rows="m", cols="n", stream="k", preload=False),
    Dataflow.IS: DataflowMap(rows="k", cols="m", stream="n", preload=True),
}
