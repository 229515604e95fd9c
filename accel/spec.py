"""Frozen, typed accelerator description. Build these with :func:`accel.load` or :func:`accel.build`."""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field


class Dataflow(str, enum.Enum):
    """Which GEMM dimension is held stationary in the array (SCALE-Sim's names)."""

    WS = "ws"  # weight stationary: k on rows, n on columns, m streamed
    OS = "os"  # output stationary: m on rows, n on columns, k streamed
    IS = "is"  # input stationary:  k on rows, m on columns, n streamed


class ZeroHandling(str, enum.Enum):
    SKIP = "skip"  # zeros are compressed out of the schedule: fewer cycles and less energy
    GATE = "gate"  # zeros still take their slot; the multiplier is clock-gated: less energy only


class NmOverflow(str, enum.Enum):
    """What N:M hardware does with a group that holds more than the mode's N nonzeros.

    * ``dense``: nothing: the layer runs in an N:M mode only if every group of every column fits it,
      otherwise dense (fixed N:M units: NVIDIA's sparse tensor cores, SAT). Such a unit stores N
      slots for every group, an empty one too.
    * ``passes``: the group takes ``ceil(j / N)`` passes of N slots, and an all-zero group (in every
      column of a schedule block) none (flexible units in the style of VEGETA).
    """

    DENSE = "dense"
    PASSES = "passes"


class ActivationSparsity(str, enum.Enum):
    """What the array does with zero activations (key ``compute.activation_sparsity``), used by the
    LLM decode path (:mod:`simulator.llm`), where a step's few tokens leave whole inputs zero:

    * ``none``: zeros are multiplied like any value;
    * ``gate``: a zero input's MACs are clock-gated (less MAC energy, the same cycles and bytes);
    * ``skip``: the weight rows of inputs that are zero for every token of the step are neither
      loaded nor multiplied (fewer weight bytes and MACs; TEAL, Deja Vu, Samsung's NPU).
    """

    NONE = "none"
    GATE = "gate"
    SKIP = "skip"


class MetadataFormat(str, enum.Enum):
    INDEX = "index"      # log2(M) bits per kept value (NVIDIA 2:4 uses 2 bits per nonzero)
    BITMASK = "bitmask"  # M bits per group of M


@dataclass(frozen=True)
class SparseSupport:
    """The N:M modes the array can run besides dense.

    ``modes``: explicit (N, M) pairs, e.g. ((2, 4),) for a fixed 2:4 unit, ((1, 4), (2, 4), (4, 4)) for
    a flexible one. ``arbitrary_max_m``: when set, any N:M with M a power of two up to this value.
    """

    modes: tuple[tuple[int, int], ...] = ()
    arbitrary_max_m: int | None = None
    zero_handling: ZeroHandling = ZeroHandling.SKIP
    metadata: MetadataFormat = MetadataFormat.INDEX
    overflow: NmOverflow = NmOverflow.PASSES
    activation: ActivationSparsity = ActivationSparsity.NONE

    @property
    def is_dense_only(self) -> bool:
        return not self.modes and self.arbitrary_max_m is None

    def group_sizes(self) -> tuple[int, ...]:
        """Every M the hardware can group by."""
        ms = {m for _, m in self.modes}
        if self.arbitrary_max_m:
            ms |= {2 ** i for i in range(1, int(math.log2(self.arbitrary_max_m)) + 1)}
        return tuple(sorted(ms))

    def ns_for(self, m: int) -> tuple[int, ...]:
        """The N values available for group size ``m``."""
        ns = {n for n, mm in self.modes if mm == m}
        if self.arbitrary_max_m and m <= self.arbitrary_max_m and (m & (m - 1)) == 0:
            ns |= set(range(1, m + 1))
        return tuple(sorted(ns))

    def metadata_bits(self, n: int, m: int) -> float:
        """Metadata bits per kept slot (per stored value) in mode n:m."""
        if self.metadata is MetadataFormat.INDEX:
            return float(max(1, math.ceil(math.log2(m)))) if m > 1 else 0.0
        return m / n


class TimingModel(str, enum.Enum):
    """How folds follow each other in time.

    * ``scalesim``: folds run one after another, each ``2R + C + T - 2`` (WS/IS) or ``R + C + T - 2``
      (OS) cycles, the layer their sum minus one: SCALE-Sim v3's count.
    * ``rtl``: the schedule of ``hdl/rtl/nm_array.sv`` (weight stationary, double-buffered weights):
      fold f's weights load while fold f-1 streams, as soon as the bank it reuses has drained; see
      :func:`simulator.kernels.double_buffered_cycles`. Its parameters come from ``sparsim calibrate``.
    """

    SCALESIM = "scalesim"
    RTL = "rtl"


class MapperObjective(str, enum.Enum):
    """What the fast engine's mapper (:mod:`simulator.mapping`) minimizes first, per layer: the
    pipeline's ``cycles`` (then DRAM bytes), or the ``dram`` bytes (then cycles). Key
    ``mapper.objective``."""

    CYCLES = "cycles"
    DRAM = "dram"


class Ports(str, enum.Enum):
    """How a memory's ports serve the array's accesses (key ``memories[i].ports``; the mapper's busiest
    port, :func:`simulator.engine._mode_cost`). A partial-sum step is one read and one write of a row of
    partial sums (one per array column).

    * ``bandwidth``: bytes over bandwidth, reads at the read bandwidth plus writes at the write
      bandwidth (sparsim's model before ports existed): a read and a write narrower than the port
      share a cycle;
    * ``single``: one read-write port, one access a cycle, each access whole cycles: a partial-sum
      step's read and write take two cycles however wide the port (the port-conflict stall);
    * ``dual``: a read port and a write port (1R1W), each access whole cycles: the reads and the
      writes overlap."""

    BANDWIDTH = "bandwidth"
    SINGLE = "single"
    DUAL = "dual"


@dataclass(frozen=True)
class Timing:
    """Cycle parameters; the defaults reproduce SCALE-Sim, ``sparsim calibrate`` fits them to RTL."""

    fold_overhead_cycles: int = 0      # scalesim model: extra cycles per fold
    pipeline_latency_cycles: int = 0   # scalesim model: extra cycles once per layer
    model: TimingModel = TimingModel.SCALESIM
    weight_load_cycles_per_row: float = 1.0   # rtl model: cycles to load one array row of weights
    stream_cycles_per_row: float = 1.0        # rtl model: cycles per streamed row (1 / throughput)
    fill_drain_extra_cycles: float = 0.0      # rtl model: latency from accept to output is R + C + this


@dataclass(frozen=True)
class ComputeArray:
    rows: int
    cols: int
    dataflow: Dataflow
    clock_hz: float
    activation_bits: int = 8
    weight_bits: int = 8
    accumulator_bits: int = 32
    sparse: SparseSupport = field(default_factory=SparseSupport)
    timing: Timing = field(default_factory=Timing)
    data_type: str | None = None   # int8, int16, fp16, bf16, fp32 (MAC energy); None: an integer of the width

    @property
    def pes(self) -> int:
        return self.rows * self.cols


class Operand(str, enum.Enum):
    ACTIVATION = "activation"
    WEIGHT = "weight"
    OUTPUT = "output"
    METADATA = "metadata"


@dataclass(frozen=True)
class Memory:
    """An on-chip buffer. Energies are per byte; bandwidths in bytes per cycle of the array clock."""

    name: str
    size_bytes: int
    read_bw_bytes_per_cycle: float
    write_bw_bytes_per_cycle: float
    read_energy_pj_per_byte: float
    write_energy_pj_per_byte: float
    holds: tuple[Operand, ...]
    banks: int = 1
    double_buffered: bool = True
    #: ``double_buffered: streamed``: the mapping's stationary tile is held once and only the streamed
    #: tiles are double buffered, within the whole memory (``double_buffered`` stays True; see
    #: :mod:`simulator.mapping`)
    streamed: bool = False
    #: how its ports serve the array's reads and writes (:class:`Ports`)
    ports: Ports = Ports.BANDWIDTH

    @property
    def usable_bytes(self) -> int:
        """Bytes one working set may use: half when double buffered (the other half prefetches). A
        ``streamed`` memory may hold more (its stationary tile once); this is its plain half."""
        return self.size_bytes // 2 if self.double_buffered else self.size_bytes


@dataclass(frozen=True)
class Dram:
    bandwidth_bytes_per_s: float   # total over the channels
    energy_pj_per_byte: float
    technology: str = "ddr3"
    channels: int = 1              # event engine: channels sharing the bandwidth equally
    latency_cycles: float = 0.0    # event engine: access latency of one transfer


@dataclass(frozen=True)
class EnergyTable:
    """Energy per action in pJ at ``node_nm``. ``mac_pj`` maps a data type ('bf16') or an integer
    width in bits -> pJ per MAC."""

    node_nm: float
    mac_pj: tuple[tuple[int | str, float], ...]
    gated_mac_fraction: float
    index_mux_pj: float
    register_pj: float
    static_power_w: float
    source: str = ""
    model: str = "asic"            # asic (the scaled Horowitz table) | fpga (accel/data/fpga_energy.json)

    def mac(self, bits: int, data_type: str | None = None) -> float:
        """pJ per MAC of ``data_type`` (int8, int16, fp16, bf16, fp32), else of a ``bits``-wide integer."""
        table = dict(self.mac_pj)
        if data_type is not None and data_type in table:
            return table[data_type]
        if bits in table:
            return table[bits]
        # another integer width: from the next listed width up (the multiplier the hardware would
        # use), as an array multiplier grows ~ quadratically with its width
        known = sorted(b for b in table if isinstance(b, int))
        ref = next((b for b in known if b >= bits), known[-1])
        return table[ref] * (bits / ref) ** 2

    def gated_mac(self, bits: int, data_type: str | None = None) -> float:
        return self.mac(bits, data_type) * self.gated_mac_fraction


@dataclass(frozen=True)
class FpgaBudget:
    device: str
    dsp: int
    bram36: int
    lut: int
    ff: int
    clock_hz: float
    macs_per_dsp: float = 1.0      # 2 for int8 packing on DSP48E2, 1 for int16, 1/3 for fp32
    lut_per_pe: float = 40.0       # control and accumulator LUTs per PE
    lut_per_mux_bit: float = 1.0   # per activation bit per log2(M) levels of the index mux
    ff_per_pe: float = 64.0
    model: str = "per_pe"          # per_pe | array (the fitted array model, accel/fpga.py)
    clock_estimated: bool = False  # clock_hz is the array model's Fmax estimate


@dataclass(frozen=True)
class FpgaUsage:
    dsp: int
    bram36: int
    lut: int
    ff: int
    budget: FpgaBudget
    clock_hz: float | None = None  # achievable clock estimated by the array model (None: per-PE model)

    def utilization(self) -> dict[str, float]:
        b = self.budget
        return {"dsp": self.dsp / b.dsp, "bram36": self.bram36 / b.bram36, "lut": self.lut / b.lut,
                "ff": self.ff / b.ff}

    @property
    def fits(self) -> bool:
        return all(v <= 1.0 for v in self.utilization().values())


@dataclass(frozen=True)
class Accelerator:
    name: str
    compute: ComputeArray
    memories: tuple[Memory, ...]
    dram: Dram
    energy: EnergyTable
    fpga: FpgaBudget | None = None
    description: str = ""
    source: str = ""
    cores: "MultiCore | None" = None   # several arrays sharing DRAM (accel.multicore); None: one core
    mapper_objective: MapperObjective = MapperObjective.CYCLES   # mapper.objective

    def memory_for(self, operand: Operand) -> Memory:
        for mem in self.memories:
            if operand in mem.holds:
                return mem
        raise KeyError(operand)  # validation guarantees every operand has a memory

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram.bandwidth_bytes_per_s / self.compute.clock_hz

    def with_dataflow(self, dataflow) -> "Accelerator":
        """The same hardware run in another dataflow, by the rule a description file follows: the ``rtl``
        fold rule is the schedule of the weight-stationary RTL array, so under ``os`` or ``is`` the
        SCALE-Sim rule applies (``timing_model`` in results and the CLI's summary say which)."""
        from dataclasses import replace
        from .errors import AccelConfigError
        try:
            df = Dataflow(str(getattr(dataflow, "value", dataflow)).lower())
        except ValueError:
            raise AccelConfigError(f"dataflow override: expected one of ws, os, is; got {dataflow!r}") from None
        timing = self.compute.timing
        if df is not Dataflow.WS and timing.model is TimingModel.RTL:
            timing = replace(timing, model=TimingModel.SCALESIM)
        return replace(self, compute=replace(self.compute, dataflow=df, timing=timing))

    def to_dict(self) -> dict:
        """A plain-data summary (for result files)."""
        c = self.compute
        return {
            "name": self.name, "rows": c.rows, "cols": c.cols, "dataflow": c.dataflow.value,
            "clock_hz": c.clock_hz, "activation_bits": c.activation_bits, "weight_bits": c.weight_bits,
            "sparse_modes": [f"{n}:{m}" for n, m in c.sparse.modes],
            "arbitrary_max_m": c.sparse.arbitrary_max_m, "zero_handling": c.sparse.zero_handling.value,
            "metadata": c.sparse.metadata.value, "nm_overflow": c.sparse.overflow.value,
            "timing_model": c.timing.model.value,
            "memories": [{"name": m.name, "size_bytes": m.size_bytes, "holds": [o.value for o in m.holds]}
                         for m in self.memories],
            "dram_bandwidth_bytes_per_s": self.dram.bandwidth_bytes_per_s,
            "node_nm": self.energy.node_nm, "data_type": c.data_type, "dram_technology": self.dram.technology,
            "energy_model": self.energy.model, "energy_source": self.energy.source,
            "mapper_objective": self.mapper_objective.value,
        }
