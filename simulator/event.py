"""The event engine: a SimPy discrete-event model of the memory system, tile by tile.

What it models, per core (an array with its own buffers) and for the DRAM they share:

* **The plan of a layer comes from the fast engine** (:func:`layer_plan`, the one adapter to its
  internals): the mode it chose, its folds and their compute cycles, the DRAM bytes of each operand,
  the SRAM port time, the energy. One source of truth: the two engines differ only in how time
  passes, never in what a fold costs.
* **DMA in**: the loads of a fold (activation, weight, metadata) are issued together once an input
  buffer slot is free. The buffers hold two folds' tiles (double buffering) when the fast engine's
  mapper found tiles that fit their halves, one when it did not or a memory is single buffered
  (the next load then waits for the array: loads serialize); a memory that cannot hold one fold's
  smallest tiles (the stationary R x C tile, one streamed row) is an error naming it.
  The operands' DMAs share the channel's bandwidth, so they are one striped transfer that ends when
  the largest would; a wait for it is split among the operands by their bytes.
* **The array** computes a tile once its loads are in and an output slot is free; a tile takes its
  compute cycles, or its SRAM port time when that is longer (the array reads the buffers while it
  streams; without double buffering the two add up, as in the fast engine).
* **Write-back**: a computed tile's outputs go to DRAM on the same channels, competing with the
  loads; the output slot is free again when they are written.
* **DRAM channels** are processor-sharing servers: transfers in flight share a channel's bandwidth
  equally (a DRAM controller interleaving their bursts), and each transfer ends ``latency_cycles``
  after its last byte. With ``channels`` > 1 and interleaved placement a transfer is striped over
  every channel; with ``per-core`` placement core ``i`` uses channel ``i mod channels``.
* **Layer dependencies**: a core starts a layer's loads once its previous layer has written back its
  last output (single core and ``split-n``: once every core has); under ``pipeline`` a stage's tile
  waits until the previous stage has written back the same fraction of the layer it consumes.

**Merging identical folds.** A layer has up to 10^5 folds; simulating each would cost ~10 events a
fold. Consecutive folds are merged into at most ``max_chunks`` tiles per layer: sizes grow 1, 2, 4,
... from each end of the layer (so the first load and the last write-back are exposed for one fold,
as they are) to an equal size in the middle. In the steady state a tile of s folds takes
``s x max(compute, transfer)`` as s separate folds would, so the event count per layer is bounded
(about 10 x max_chunks) whatever the layer's size; ``max_chunks=None`` simulates every fold
(``tests/test_event.py`` checks both give the same cycles within 1 %).

Stall breakdown (columns ``stall_*_cycles``): each wait of the array before a tile is split into
``dependency`` (the loads waited for another layer), ``activation`` / ``weight`` / ``metadata``
(the loads at the channel's full rate, split by bytes), ``contention`` (the loads took longer than
alone on the channel: other cores' traffic or this core's own write-back), ``writeback`` (no
output slot free) and ``sram`` (tiles longer than their compute because of SRAM ports).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import simpy

from accel import Accelerator, Dataflow, Operand
from accel.multicore import ChannelPlacement, Distribution
from workloads import Layer, Workload
from workloads.layout import WeightLayout

from .dataflow import DATAFLOWS
from .errors import SimulationError
from .result import SimResult

#: how many merged tiles a layer is simulated as (see the module docstring)
MAX_CHUNKS = 24
STALL_KINDS = ("dependency", "activation", "weight", "metadata", "contention", "writeback", "sram")
STALL_COLUMNS = [f"stall_{k}_cycles" for k in STALL_KINDS]
EVENT_COLUMNS = ["core"] + STALL_COLUMNS + ["dram_contention_cycles", "fast_cycles"]
EVENT_COLUMN_DOCS = {
    "core": "the core(s) that ran the layer",
    "stall_dependency_cycles": "the array waited for a layer it depends on",
    "stall_activation_cycles": "the array waited for activation loads (at the channel's full rate)",
    "stall_weight_cycles": "the array waited for weight loads",
    "stall_metadata_cycles": "the array waited for sparse metadata loads",
    "stall_contention_cycles": "the array waited because its loads shared a DRAM channel",
    "stall_writeback_cycles": "the array waited for an output slot (write-back still in flight)",
    "stall_sram_cycles": "tiles took longer than their compute because of SRAM port time",
    "dram_contention_cycles": "sum over the layer's transfers of the time they lost sharing a channel",
    "fast_cycles": "the fast engine's cycles for the same layer (single core)",
}
_LOAD_OPS = (Operand.ACTIVATION, Operand.WEIGHT, Operand.METADATA)


# ============================================================================= the plan of a layer
@dataclass(frozen=True)
class LayerPlan:
    """What one layer costs on one core, from the fast engine: folds (in runs of equal compute
    time), DRAM bytes per fold and per operand, buffer slots, and the fast engine's row."""

    row: dict                   # the fast engine's result row (mode, traffic, energy, cycles)
    run_folds: np.ndarray       # folds per run of identical folds (in order)
    run_busy: np.ndarray        # array cycles per fold of each run (compute, or SRAM port time)
    load_bytes: dict            # Operand -> DRAM bytes per fold
    store_bytes: float          # DRAM write-back bytes per fold
    in_slots: int               # tiles the input buffers hold (2: double buffered)
    out_slots: int
    tail_cycles: int            # compute_cycles - sum of fold cycles (SCALE-Sim's minus one, latency)
    sram_extra: float           # cycles the SRAM ports add over the folds' compute
    reload_cycles: float = 0.0  # double_buffered: streamed: the array waits for its resident tiles' reloads
    reload_stall: str = "activation"   # ... charged to this stall kind

    @property
    def folds(self) -> int:
        return int(self.run_folds.sum())


def layer_plan(layer: Layer, acc: Accelerator) -> LayerPlan:
    """The adapter to the fast engine: its :func:`simulator.engine.plan_layer` for ``layer``, spread
    over the layer's folds as the fast engine spreads it (compute, SRAM port time, DRAM loads per
    operand and write-back evenly), plus the fast engine's row (mode, traffic, energy, cycles).

    This is the only function that knows the fast engine's plan."""
    from .engine import _row, plan_layer
    fp = plan_layer(layer, acc, DATAFLOWS[acc.compute.dataflow])
    row = _row(fp, layer, acc)
    n = int(fp.folds)
    busy = max(float(fp.compute_cycles), float(fp.sram_port_cycles))
    # a resident tile held once (double_buffered: streamed) is reloaded while the array waits: the
    # fast engine's exposed reload time, spread over the folds as array time, charged as a load stall
    reload = float(fp.extra.get("reload_cycles", 0.0))
    op = fp.extra.get("reload_operand")
    if n:
        run_folds, run_busy = np.array([n], dtype=np.int64), np.array([(busy + reload) / n])
    else:
        run_folds, run_busy = np.zeros(0, dtype=np.int64), np.zeros(0)
    load = {op: fp.dram_read_bytes.get(op, 0.0) / n if n else 0.0 for op in _LOAD_OPS}
    # partial sums spilled to DRAM and read back travel with the loads
    psum = fp.dram_read_bytes.get(Operand.OUTPUT, 0.0) / n if n else 0.0
    load[Operand.ACTIVATION] = load[Operand.ACTIVATION] + psum
    store = fp.dram_write_bytes / n if n else 0.0
    in_slots, out_slots = _slots(fp, layer, acc)
    return LayerPlan(row=row, run_folds=run_folds, run_busy=run_busy, load_bytes=load, store_bytes=store,
                     in_slots=in_slots, out_slots=out_slots, tail_cycles=0,
                     sram_extra=busy - float(fp.compute_cycles) if n else 0.0, reload_cycles=reload if n else 0.0,
                     reload_stall="writeback" if op is Operand.OUTPUT else (op.value if op is not None else "activation"))


def _fold_tiles(acc: Accelerator, fp) -> dict:
    """Bytes each operand needs on chip for one fold with the smallest tiles: the stationary
    operand's R x C tile, one streamed row of the others (metadata with a sparse mode's weights)."""
    comp, dmap = acc.compute, DATAFLOWS[acc.compute.dataflow]
    extent = {dmap.rows: comp.rows, dmap.cols: comp.cols, dmap.stream: 1}
    tiles = {Operand.ACTIVATION: extent["m"] * extent["k"] * comp.activation_bits / 8,
             Operand.WEIGHT: extent["k"] * extent["n"] * comp.weight_bits / 8,
             Operand.OUTPUT: extent["m"] * extent["n"] * comp.accumulator_bits / 8, Operand.METADATA: 0.0}
    n, m = fp.extra.get("n", 0), fp.extra.get("m", 0)
    if n:
        tiles[Operand.METADATA] = extent["k"] * extent["n"] * comp.sparse.metadata_bits(n, m) / 8
    return tiles


def _slots(fp, layer: Layer, acc: Accelerator) -> tuple[int, int]:
    """Tiles the buffers hold at once: two (double buffering) when the mapper's tiles fit the
    buffers' halves; one when they do not (each load then waits for the array: loads serialize);
    an error when a memory cannot hold even one fold's smallest tiles."""
    need = _fold_tiles(acc, fp)
    for i, mem in enumerate(acc.memories):
        held = [op for op in (Operand.ACTIVATION, Operand.WEIGHT, Operand.METADATA, Operand.OUTPUT)
                if op in mem.holds and need[op] > 0]
        tile = sum(need[op] for op in held)
        if tile > mem.size_bytes:
            what = " + ".join(f"{need[op]:,.0f} B of {op.value}" for op in held)
            raise SimulationError(f"memories[{i}].size_bytes: buffer '{mem.name}' has {mem.size_bytes:,} B, "
                                  f"smaller than one tile of layer '{layer.name}' ({what}); expected at least "
                                  f"{math.ceil(tile):,}")
    if not fp.mapping.fits:
        return 1, 1
    if any(mem.streamed for mem in acc.memories) and not fp.double_buffered:
        return 1, 1    # the streamed memories' tiles fit only once: the mapper ran the layer single buffered
    out_mem = acc.memory_for(Operand.OUTPUT)
    ins = [acc.memory_for(op) for op in _LOAD_OPS]
    return (2 if all(mem.double_buffered for mem in ins) else 1), (2 if out_mem.double_buffered else 1)


def chunk_sizes(folds: int, max_chunks: int | None) -> np.ndarray:
    """Fold counts of the merged tiles of a layer: 1, 2, 4, ... from each end, equal in the middle."""
    if folds <= 0:
        return np.zeros(0, dtype=np.int64)
    if max_chunks is None or folds <= max_chunks:
        return np.ones(folds, dtype=np.int64)
    ramp_budget = max(0, max_chunks // 2 - 1)
    target = -(-folds // max(1, max_chunks - 2 * int(math.log2(max(2, folds)))))
    head = []
    s = 1
    while s < target and len(head) < ramp_budget and 2 * (sum(head) + s) <= folds:
        head.append(s)
        s *= 2
    middle = folds - 2 * sum(head)
    n_mid = max(1, -(-middle // max(1, target))) if middle > 0 else 0
    mid = [middle // n_mid + (1 if i < middle % n_mid else 0) for i in range(n_mid)]
    return np.array(head + mid + head[::-1], dtype=np.int64)


def _chunk_busy(plan: LayerPlan, sizes: np.ndarray) -> np.ndarray:
    """Array cycles of each merged tile: the exact sum over its folds."""
    edges = np.concatenate(([0], np.cumsum(plan.run_folds)))
    cum = np.concatenate(([0.0], np.cumsum(plan.run_folds * plan.run_busy)))
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    # with one input slot a fold's load waits for the previous fold's compute: a tile's loads cannot
    # overlap its own compute, so it loads as a whole and then computes
    stream = plan.in_slots > 1
    at = np.interp(bounds, edges, cum)
    return np.diff(at)


# ============================================================================= DRAM channels
class Channel:
    """A DRAM channel shared by processor sharing: n transfers in flight each get 1/n of its rate."""

    def __init__(self, env: simpy.Environment, index: int, bytes_per_cycle: float, latency: float,
                 log: bool):
        self.env, self.index, self.bw, self.latency = env, index, bytes_per_cycle, latency
        self.active: dict = {}      # event -> bytes remaining
        self.t = 0.0
        self.token = 0
        self.busy_cycles = 0.0
        self.bytes = 0.0
        self.log = [] if log else None   # (start, end, bytes) intervals of use

    def _advance(self) -> None:
        now = self.env.now
        dt = now - self.t
        if self.active and dt > 0:
            share = self.bw * dt / len(self.active)
            for ev in self.active:
                self.active[ev] -= share
            self.busy_cycles += dt
            self.bytes += self.bw * dt
            if self.log is not None:
                self.log.append((self.t, now, self.bw * dt))
        self.t = now

    def transfer(self, nbytes: float) -> simpy.Event:
        done = self.env.event()
        if nbytes <= 0:
            done.succeed()
            return done
        self._advance()
        self.active[done] = nbytes
        self._reschedule()
        return done

    def _reschedule(self) -> None:
        self.token += 1
        if not self.active:
            return
        token = self.token
        delay = min(self.active.values()) * len(self.active) / self.bw
        self.env.timeout(max(0.0, delay)).callbacks.append(lambda _e: self._wake(token))

    def _wake(self, token: int) -> None:
        if token != self.token:
            return
        self._advance()
        least = min(self.active.values())
        for ev in [e for e, r in self.active.items() if r <= least + 1e-6]:
            del self.active[ev]
            if self.latency > 0:
                self.env.timeout(self.latency).callbacks.append(lambda _e, ev=ev: ev.succeed())
            else:
                ev.succeed()
        self._reschedule()


class MemorySystem:
    def __init__(self, env, acc: Accelerator, placement: ChannelPlacement, log: bool):
        n = acc.dram.channels
        self.env = env
        self.channels = [Channel(env, i, acc.dram_bytes_per_cycle / n, acc.dram.latency_cycles, log)
                         for i in range(n)]
        self.placement = placement
        self.rate = acc.dram_bytes_per_cycle

    def route(self, core: int) -> list[Channel]:
        if self.placement is ChannelPlacement.PER_CORE:
            return [self.channels[core % len(self.channels)]]
        return self.channels

    def alone_cycles(self, core: int, nbytes: float) -> float:
        chans = self.route(core)
        if nbytes <= 0:
            return 0.0
        return nbytes / sum(c.bw for c in chans) + chans[0].latency

    def transfer(self, core: int, nbytes: float) -> simpy.Event:
        chans = self.route(core)
        if len(chans) == 1:
            return chans[0].transfer(nbytes)
        return simpy.AllOf(self.env, [c.transfer(nbytes / len(chans)) for c in chans])


# ============================================================================= tasks
@dataclass(eq=False)
class Task:
    """One layer (or a share of one: split-n; one micro-batch of one: pipeline) on one core."""

    layer_index: int
    core: int
    plan: LayerPlan
    sizes: np.ndarray
    busy: np.ndarray
    after: list = field(default_factory=list)   # tasks that must finish before this one starts
    stream_from: "Task | None" = None            # pipeline: the tile-by-tile producer
    done: simpy.Event | None = None
    stored: list = field(default_factory=list)   # per chunk: write-back done
    frac: np.ndarray | None = None               # per chunk: fraction of folds written back once done
    start: float = 0.0
    end: float = 0.0
    stalls: dict = field(default_factory=lambda: dict.fromkeys(STALL_KINDS, 0.0))
    contention: float = 0.0
    compute_busy: float = 0.0
    micro: int = 0                               # pipeline: the micro-batch


def _run_task(env, task: Task, mem: MemorySystem, trace: list | None):
    """The three processes of one task (DMA in, array, DMA out); returns when its last write-back ends.

    A merged tile of s folds streams: its first fold's loads are one transfer, the other s - 1
    folds' a second one; the array starts on the first and computes the last fold once the second
    is in; the outputs of the first s - 1 folds are written back from the end of the first fold on,
    the last fold's at the end. Slots are counted in folds: a tile's loads wait until the fold
    ``in_slots`` before its first has been computed, its compute until the fold ``out_slots`` before
    has been written back. So a tile's transfers overlap its own compute as s separate folds would.
    With one input slot a fold's load waits for the previous fold's compute, so a tile loads as a
    whole and then computes."""
    plan, sizes, busy = task.plan, task.sizes, task.busy
    n = len(sizes)
    core = task.core
    for t in task.after:
        yield t.done
    task.start = env.now
    if n == 0:
        task.end = env.now
        task.done.succeed()
        return
    first = [env.event() for _ in range(n)]
    loaded = [env.event() for _ in range(n)]
    computed = [env.event() for _ in range(n)]
    mid = [env.event() for _ in range(n)]
    one = [env.event() for _ in range(n)]
    stored_a = [env.event() for _ in range(n)]
    dep_t = np.zeros((n, 2))        # slot free, dependency satisfied
    ld = np.zeros((n, 4))           # first part start / end, rest start / end
    load_bytes = sum(plan.load_bytes.values())
    comp_t = np.zeros((n, 2))
    store_t = np.zeros((n, 2))
    waited = [""] * n
    prod = task.stream_from
    need_idx = None
    if prod is not None and len(prod.stored):
        need_idx = np.minimum(np.searchsorted(prod.frac - 1e-12, task.frac, side="left"), len(prod.stored) - 1)

    def move(nbytes):
        t0 = env.now
        yield mem.transfer(core, nbytes)
        task.contention += max(0.0, (env.now - t0) - mem.alone_cycles(core, nbytes))

    bounds = np.concatenate(([0], np.cumsum(sizes)))
    # with one input slot a fold's load waits for the previous fold's compute: a tile's loads cannot
    # overlap its own compute, so it loads as a whole and then computes
    stream = plan.in_slots > 1

    def fold_event(x, part_a, whole):
        """The event that fold ``x`` is computed: the first s - 1 folds of a tile finish with its
        part A, the last one with the whole tile."""
        c = int(np.searchsorted(bounds, x, side="right")) - 1
        return part_a[c] if x <= bounds[c + 1] - 2 else whole[c]

    def dma_in():
        for j in range(n):
            if bounds[j] >= plan.in_slots:   # a slot: the fold in_slots back has been computed
                yield fold_event(bounds[j] - plan.in_slots, mid, computed)
            dep_t[j, 0] = env.now
            if need_idx is not None:
                yield prod.stored[int(need_idx[j])]
            dep_t[j, 1] = ld[j, 0] = env.now
            yield from move(load_bytes * (1 if stream else sizes[j]))
            ld[j, 1] = ld[j, 2] = env.now
            first[j].succeed()
            if stream and sizes[j] > 1:
                yield from move(load_bytes * (sizes[j] - 1))
            ld[j, 3] = env.now
            loaded[j].succeed()

    def dma_out():
        for j in range(n):
            if not stream:        # serialized: a fold's outputs leave while the next fold loads
                yield computed[j]
                store_t[j, 0] = env.now
                yield from move(plan.store_bytes * sizes[j])
                stored_a[j].succeed()
            else:                 # outputs stream out from the first fold on: the first s - 1 folds'
                yield one[j]
                store_t[j, 0] = env.now
                if sizes[j] > 1:
                    yield from move(plan.store_bytes * (sizes[j] - 1))
                stored_a[j].succeed()
                yield computed[j]
                yield from move(plan.store_bytes)
            store_t[j, 1] = env.now
            task.stored[j].succeed()

    env.process(dma_in())
    env.process(dma_out())
    st = task.stalls
    share = {op: (b / load_bytes if load_bytes > 0 else 0.0) for op, b in plan.load_bytes.items()}

    def charge_load(wait, dep, t_start, t_end, nbytes):
        """Split an array wait on a load into dependency, contention and per-operand DRAM time."""
        dep = min(wait, dep)
        rest = wait - dep
        cont = min(rest, max(0.0, (t_end - t_start) - mem.alone_cycles(core, nbytes)))
        st["dependency"] += dep
        st["contention"] += cont
        for op, f in share.items():
            st[op.value] += (rest - cont) * f
        return dep

    ready = env.now
    for j in range(n):
        yield first[j]
        t_loaded = env.now
        if bounds[j] >= plan.out_slots:  # an output slot: the fold out_slots back is written back
            yield fold_event(bounds[j] - plan.out_slots, stored_a, task.stored)
        start = env.now
        wait_load = max(0.0, t_loaded - ready)
        dep = 0.0
        if wait_load > 0:
            dep = charge_load(wait_load, max(0.0, dep_t[j, 1] - max(ready, dep_t[j, 0])), ld[j, 0], ld[j, 1],
                              load_bytes * (1 if stream else sizes[j]))
        wait_wb = max(0.0, start - max(ready, t_loaded))
        st["writeback"] += wait_wb
        comp_t[j, 0] = start
        s = sizes[j]
        if s > 1:
            yield env.timeout(busy[j] / s)
            one[j].succeed()
            if s > 2:
                yield env.timeout(busy[j] * (s - 2) / s)
            mid[j].succeed()
            t_mid = env.now
            yield loaded[j]
            if env.now > t_mid:
                charge_load(env.now - t_mid, 0.0, ld[j, 2], ld[j, 3], load_bytes * (s - 1))
                wait_load += env.now - t_mid
            yield env.timeout(busy[j] / s)
        else:
            one[j].succeed()
            mid[j].succeed()
            yield env.timeout(busy[j])
        comp_t[j, 1] = env.now
        if trace is not None:
            waited[j] = ("writeback" if wait_wb > wait_load else "dependency" if dep > wait_load / 2 else
                         "dram_load" if wait_load > 0 else "none")
        ready = env.now
        computed[j].succeed()
    t_last = env.now
    yield task.stored[n - 1]
    st["writeback"] += env.now - t_last    # the last write-back is exposed
    if plan.tail_cycles > 0:
        yield env.timeout(plan.tail_cycles)
    task.end = env.now
    st["sram"] = plan.sram_extra
    st[plan.reload_stall] += plan.reload_cycles
    task.compute_busy = float(busy.sum()) - plan.reload_cycles
    if trace is not None:
        for j in range(n):
            trace.append((core, task.layer_index, j, int(sizes[j]), ld[j, 0], ld[j, 3], comp_t[j, 0],
                          comp_t[j, 1], store_t[j, 0], store_t[j, 1], waited[j]))
    task.done.succeed()


def _core_proc(env, tasks: list[Task], mem: MemorySystem, trace):
    for t in tasks:
        yield env.process(_run_task(env, t, mem, trace))


# ============================================================================= distribution
def _split_layer(layer: Layer, shares: list[int]) -> list[Layer | None]:
    """Contiguous column shares of ``layer`` (None for a core that gets no column)."""
    gm = layer.gemm_mask()
    out, lo = [], 0
    for s in shares:
        if s <= 0:
            out.append(None)
            continue
        hi = lo + s
        if gm is None:
            out.append(layer.replace(n=s, weight=None, mask=None, weight_layout=None))
        else:
            out.append(layer.replace(n=s, weight=None, mask=np.ascontiguousarray(gm[:, :, lo:hi]),
                                     weight_layout=WeightLayout.KN))
        lo = hi
    return out


def _shares(n: int, pes: list[int]) -> list[int]:
    """Columns per core proportional to its PEs (largest remainders)."""
    total = sum(pes)
    raw = [n * p / total for p in pes]
    base = [int(math.floor(r)) for r in raw]
    for i in sorted(range(len(pes)), key=lambda i: raw[i] - base[i], reverse=True)[: n - sum(base)]:
        base[i] += 1
    return base


def _stages(costs: np.ndarray) -> list[int]:
    """Stage (core) of each layer: contiguous stages in core order minimizing the slowest stage,
    ``costs[c, l]`` being layer l's cycles on core c (dynamic programming over the cut points)."""
    n_cores, n = costs.shape
    cum = np.concatenate((np.zeros((n_cores, 1)), np.cumsum(costs, axis=1)), axis=1)
    best = np.full((n_cores + 1, n + 1), np.inf)
    cut = np.zeros((n_cores + 1, n + 1), dtype=np.int64)
    best[0, 0] = 0.0
    for c in range(1, n_cores + 1):
        for j in range(n + 1):
            # stage c - 1 takes layers i..j-1 (possibly none)
            stage = cum[c - 1, j] - cum[c - 1, : j + 1]
            cand = np.maximum(best[c - 1, : j + 1], stage)
            i = int(np.argmin(cand))
            best[c, j], cut[c, j] = cand[i], i
    stage_of = np.zeros(n, dtype=int)
    j = n
    for c in range(n_cores, 0, -1):
        i = cut[c, j]
        stage_of[i:j] = c - 1
        j = i
    return list(stage_of)


def _make(layer_index, core, plan, max_chunks) -> Task:
    sizes = chunk_sizes(plan.folds, max_chunks)
    return Task(layer_index=layer_index, core=core, plan=plan, sizes=sizes, busy=_chunk_busy(plan, sizes))


def _build_tasks(workload: Workload, cores: list[Accelerator], dist: Distribution, max_chunks):
    """Per core, its tasks in order; and per layer, its tasks (for the result rows)."""
    per_core: list[list[Task]] = [[] for _ in cores]
    per_layer: list[list[Task]] = [[] for _ in workload.layers]
    if len(cores) == 1 or dist is Distribution.SPLIT_N:
        prev: list[Task] = []
        pes = [c.compute.pes for c in cores]
        for li, layer in enumerate(workload.layers):
            parts = [layer] if len(cores) == 1 else _split_layer(layer, _shares(layer.n, pes))
            now = []
            for ci, part in enumerate(parts):
                if part is None:
                    continue
                t = _make(li, ci, layer_plan(part, cores[ci]), max_chunks)
                t.after = [p for p in prev if p.core != ci]   # same core: in order anyway
                per_core[ci].append(t)
                now.append(t)
            per_layer[li] = now
            prev = now
        return per_core, per_layer
    # pipeline: contiguous stages, micro-batches of the workload's batch flow through them
    batch = max(1, workload.batch)
    micro = batch if all(layer.m % batch == 0 for layer in workload.layers) else 1
    parts = [layer.replace(m=layer.m // micro) if micro > 1 else layer for layer in workload.layers]
    by_core = [[layer_plan(part, core) for part in parts] for core in cores]
    stage = _stages(np.array([[p.row["cycles"] for p in plans] for plans in by_core], dtype=float))
    plans = [by_core[stage[li]][li] for li in range(len(parts))]
    last: dict[tuple[int, int], Task] = {}
    for b in range(micro):
        for li in range(len(workload.layers)):
            t = _make(li, stage[li], plans[li], max_chunks)
            t.micro = b
            if li > 0 and stage[li - 1] != stage[li]:
                t.stream_from = last[(li - 1, b)]
            last[(li, b)] = t
            per_core[stage[li]].append(t)
            per_layer[li].append(t)
    return per_core, per_layer


# ============================================================================= results
class EventResult(SimResult):
    """A :class:`SimResult` with the event engine's extras: ``cores`` (one row per core), ``trace``
    (one row per simulated tile, when asked for) and the DRAM channels' use over time."""

    cores: pd.DataFrame
    trace: pd.DataFrame | None
    dram_log: list
    dram_bytes_per_cycle: float
    clock_hz: float
    events: int        # SimPy events scheduled
    tiles: int         # merged tiles simulated

    def to_trace_csv(self, path):
        from .trace_export import trace_csv
        return trace_csv(self, path)

    def to_chrome_trace(self, path):
        from .trace_export import chrome_trace
        return chrome_trace(self, path)

    def plot_dram_bandwidth(self, path, bins: int = 400):
        from .trace_export import plot_dram_bandwidth
        return plot_dram_bandwidth(self, path, bins=bins)


def simulate_event(workload: Workload, accelerator: Accelerator, dataflow=None, trace: bool = False,
                   max_chunks: int | None = MAX_CHUNKS) -> EventResult:
    """Simulate ``workload`` on ``accelerator`` (one core or several) with the event engine."""
    mc = accelerator.cores
    cores = list(mc.cores) if mc is not None else [accelerator]
    if dataflow is not None:
        cores = [c.with_dataflow(Dataflow(str(dataflow).lower())) for c in cores]
    dist = mc.distribution if mc is not None else Distribution.SPLIT_N
    placement = mc.placement if mc is not None else ChannelPlacement.INTERLEAVED
    if max_chunks is not None and max_chunks < 4:
        raise SimulationError(f"max_chunks: expected None or an integer >= 4, got {max_chunks!r}")
    per_core, per_layer = _build_tasks(workload, cores, dist, max_chunks)
    env = simpy.Environment()
    mem = MemorySystem(env, accelerator, placement, log=trace)
    for tasks in per_core:
        for t in tasks:   # made before any task runs: a consumer may wait on a producer not yet started
            t.done = env.event()
            t.stored = [env.event() for _ in range(len(t.sizes))]
            t.frac = np.cumsum(t.sizes) / max(1, t.sizes.sum())
    trace_rows: list | None = [] if trace else None
    for tasks in per_core:
        env.process(_core_proc(env, tasks, mem, trace_rows))
    env.run()
    events = next(env._eid) if hasattr(env, "_eid") else -1   # SimPy's count of scheduled events
    makespan = max((t.end for ts in per_core for t in ts), default=0.0)
    rows = [_layer_row(layer, per_layer[li], cores, accelerator) for li, layer in enumerate(workload.layers)]
    res = EventResult.from_rows(rows, cores[0], workload)
    extra = pd.DataFrame([{c: r[c] for c in EVENT_COLUMNS} for r in rows], columns=EVENT_COLUMNS)
    res.layers = pd.concat([res.layers, extra], axis=1)
    if len(cores) > 1:
        res.totals["cycles"] = int(math.ceil(makespan))
        res.totals["stall_cycles"] = int(res.totals["cycles"] - res.layers["compute_cycles"].max())
        pes = sum(c.compute.pes for c in cores)
        cyc = res.totals["cycles"]
        res.totals["utilization"] = res.totals["effective_macs"] / (cyc * pes) if cyc else 0.0
        res.totals["latency_s"] = cyc / cores[0].compute.clock_hz
    for col in STALL_COLUMNS + ["dram_contention_cycles"]:
        res.totals[col] = float(res.layers[col].sum())
    res.totals["fast_cycles"] = int(res.layers["fast_cycles"].sum())
    res.accelerator = accelerator.to_dict()
    res.accelerator["cores"] = len(cores)
    res.cores = _core_table(per_core, cores, makespan, mem)
    res.trace = _trace_table(trace_rows, workload) if trace else None
    res.dram_log = [(ch.index, a, b, nb) for ch in mem.channels for (a, b, nb) in (ch.log or [])]
    res.dram_bytes_per_cycle = accelerator.dram_bytes_per_cycle
    res.clock_hz = cores[0].compute.clock_hz
    res.events = events
    res.tiles = int(sum(len(t.sizes) for ts in per_core for t in ts))
    return res


def _layer_row(layer: Layer, tasks: list[Task], cores: list[Accelerator], top: Accelerator) -> dict:
    if not tasks:
        raise SimulationError(f"layer '{layer.name}': no core received any of its columns")
    rows = [t.plan.row for t in tasks]
    row = dict(rows[0])
    row["n"] = layer.n
    row["m"] = layer.m
    for col in ("folds", "macs", "effective_macs", "executed_macs", "weight_loads", "sram_bytes", "dram_bytes",
                "meta_bytes", "energy_mac_pj", "energy_sram_pj", "energy_dram_pj", "energy_meta_pj"):
        row[col] = sum(r[col] for r in rows)
    split = len({t.core for t in tasks}) > 1
    if split:   # split-n: the layer spans from its first start to its last end
        span = max(t.end for t in tasks) - min(t.start for t in tasks)
        compute = max(r["compute_cycles"] for r in rows)
    else:       # one core (pipeline: its micro-batches in turn)
        span = sum(t.end - t.start for t in tasks)
        compute = sum(r["compute_cycles"] for r in rows)
    neg_tail = sum(min(0, t.plan.tail_cycles) for t in tasks) if not split else min(
        min(0, t.plan.tail_cycles) for t in tasks)
    cycles = max(int(math.floor(span + neg_tail + 0.5)), int(compute))
    row["cycles"], row["compute_cycles"], row["stall_cycles"] = cycles, int(compute), cycles - int(compute)
    used = {t.core for t in tasks}
    pes = sum(cores[c].compute.pes for c in used)
    row["utilization"] = row["effective_macs"] / (cycles * pes) if cycles else 0.0
    static = sum(cores[c].energy.static_power_w for c in used)
    row["energy_static_pj"] = static * cycles / cores[0].compute.clock_hz * 1e12
    row["energy_pj"] = sum(row[c] for c in ("energy_mac_pj", "energy_sram_pj", "energy_dram_pj", "energy_meta_pj",
                                           "energy_static_pj"))
    for k in STALL_KINDS:
        row[f"stall_{k}_cycles"] = sum(t.stalls[k] for t in tasks)
    row["dram_contention_cycles"] = sum(t.contention for t in tasks)
    row["core"] = ",".join(str(c) for c in sorted(used))
    row["fast_cycles"] = sum(r["cycles"] for r in rows) if not split else max(r["cycles"] for r in rows)
    return row


def _core_table(per_core, cores, makespan: float, mem: MemorySystem) -> pd.DataFrame:
    out = []
    for ci, tasks in enumerate(per_core):
        busy = sum(t.compute_busy for t in tasks)
        d = {"core": ci, "name": cores[ci].name, "array": f"{cores[ci].compute.rows}x{cores[ci].compute.cols}",
             "tasks": len(tasks), "busy_cycles": busy, "utilization": busy / makespan if makespan else 0.0,
             "dram_bytes": sum(t.plan.row["dram_bytes"] for t in tasks)}
        for k in STALL_KINDS:
            d[f"stall_{k}_cycles"] = sum(t.stalls[k] for t in tasks)
        d["dram_contention_cycles"] = sum(t.contention for t in tasks)
        out.append(d)
    return pd.DataFrame(out)


def _trace_table(rows, workload: Workload) -> pd.DataFrame:
    cols = ["core", "layer_index", "tile", "folds", "load_start", "load_end", "compute_start", "compute_end",
            "store_start", "store_end", "waited_on"]
    df = pd.DataFrame(rows, columns=cols).sort_values(["compute_start", "core"], kind="stable").reset_index(drop=True)
    names = [layer.name for layer in workload.layers]
    df.insert(2, "layer", [names[i] for i in df["layer_index"]])
    return df
