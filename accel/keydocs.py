"""What each key of an accelerator description means: its type, its default and its meaning.

One entry per key of :data:`accel.config.KEYS` (plus ``cores`` and ``energy.fpga``, which their own
modules validate), addressed by dotted path; ``memories.size_bytes`` is the key of every
``memories[i]``. The reference page ``docs/reference/accelerator-keys.md`` is generated from this
table, and ``tests/test_docs_reference.py`` checks that it names every key the validator accepts
and nothing else, and that every literal default is the one :func:`accel.config.build` applies
(a description that spells the default out builds the same accelerator as one that omits it).
"""
from __future__ import annotations

from dataclasses import dataclass

REQUIRED = "required"


@dataclass(frozen=True)
class Derived:
    """A default that depends on other keys, stated in words."""
    text: str


@dataclass(frozen=True)
class KeyDoc:
    type: str
    default: object        # a YAML value (checked against build()), REQUIRED, or Derived
    meaning: str


_NM = "quote N:M (YAML reads an unquoted 2:4 as the base-60 number 124)"

KEY_DOCS: dict[str, KeyDoc] = {
    # ------------------------------------------------------------------------------- top level
    "name": KeyDoc("string", REQUIRED, "the design's name, printed in results"),
    "description": KeyDoc("string", "", "one paragraph: what the design is"),
    "source": KeyDoc("string", Derived("the file's path"), "where its numbers come from (paper, datasheet)"),
    "include": KeyDoc("path or list of paths", Derived("none"),
                      "files merged under this document, relative to it (this document's keys win): calibration "
                      "results (`sparsim calibrate --out`), FPGA costs (`sparsim synth --fpga-yaml`), a preset"),
    "compute": KeyDoc("mapping", REQUIRED, "the PE array (keys `compute.*`)"),
    "memories": KeyDoc("list of mappings", REQUIRED, "the on-chip buffers (keys `memories.*`, one mapping each)"),
    "dram": KeyDoc("mapping", REQUIRED, "off-chip memory (keys `dram.*`)"),
    "energy": KeyDoc("mapping", Derived("the Horowitz table at 45 nm"), "the energy table (keys `energy.*`)"),
    "fpga": KeyDoc("mapping", Derived("none"), "an FPGA budget (keys `fpga.*`); a design over it is refused"),
    "cores": KeyDoc("mapping", Derived("one core"),
                    "several arrays sharing DRAM, simulated by the event engine (keys `cores.*`); the fast engine "
                    "refuses more than one core"),
    "mapper": KeyDoc("mapping", Derived("objective: cycles"), "what the mapper minimizes (keys `mapper.*`)"),
    # ------------------------------------------------------------------------------- compute
    "compute.rows": KeyDoc("integer >= 1", REQUIRED, "PE rows of the array"),
    "compute.cols": KeyDoc("integer >= 1", REQUIRED, "PE columns of the array"),
    "compute.dataflow": KeyDoc("`ws` | `os` | `is`", REQUIRED,
                               "which GEMM operand stays in the PEs: weights (k on rows, n on columns, m streamed), "
                               "outputs (m, n; k streamed) or inputs (k, m; n streamed)"),
    "compute.clock_hz": KeyDoc("positive number, or `fpga`", REQUIRED,
                               "array clock; `fpga` takes the clock of the `fpga:` section"),
    "compute.activation_bits": KeyDoc("integer >= 1", 8, "activation width; MAC energy is looked up at the wider operand"),
    "compute.weight_bits": KeyDoc("integer >= 1", 8, "weight width"),
    "compute.accumulator_bits": KeyDoc("integer >= 1", 32, "partial-sum width (buffer footprint of spilled partial sums)"),
    "compute.sparse_modes": KeyDoc("list of `dense` / `N:M`", ["dense"],
                                   f"the explicit N:M modes the PEs support, e.g. `[dense, \"1:4\", \"2:4\"]`; {_NM}"),
    "compute.arbitrary_nm_max_m": KeyDoc("power of two >= 2", Derived("none"),
                                         "any N:M with M a power of two up to this value"),
    "compute.zero_handling": KeyDoc("`skip` | `gate`", "skip",
                                    "`skip`: zeros leave the schedule (fewer cycles); `gate`: zeros keep their slot, "
                                    "clock-gated (less energy only)"),
    "compute.metadata": KeyDoc("`index` | `bitmask`", "index",
                               "sparse metadata: log2 M bits per kept value, or M bits per group"),
    "compute.nm_overflow": KeyDoc("`passes` | `dense`", "passes",
                                  "a group holding more than N nonzeros: `passes` (flexible, VEGETA-style: ceil(j/N) "
                                  "passes, an empty group none) or `dense` (fixed N:M, NVIDIA sparse tensor cores, "
                                  "SAT: the mode is used only if every group fits, else the layer runs dense)"),
    "compute.activation_sparsity": KeyDoc("`none` | `gate` | `skip`", "none",
                                          "zero activations in LLM decode (simulator/llm.py): `none` (multiplied "
                                          "like any value), `gate` (their MACs clock-gated: less energy), `skip` "
                                          "(the weight rows of inputs that are zero for the whole step are neither "
                                          "loaded nor multiplied: fewer bytes and MACs)"),
    "compute.data_type": KeyDoc("`int8` | `int16` | `fp16` | `bf16` | `fp32`", Derived("from the operand widths"),
                                "keys the MAC energy; must match the wider operand's width"),
    "compute.timing": KeyDoc("mapping", Derived("scalesim rule, no overheads"), "cycle parameters (keys `compute.timing.*`)"),
    # ------------------------------------------------------------------------------- compute.timing
    "compute.timing.model": KeyDoc("`scalesim` | `rtl`", "scalesim",
                                   "fold rule: SCALE-Sim v3's count, or the double-buffered schedule of the weight-"
                                   "stationary RTL array (`hdl/rtl/nm_array.sv`); under `os`/`is` no RTL exists and the "
                                   "scalesim rule applies"),
    "compute.timing.fold_overhead_cycles": KeyDoc("integer >= 0", 0, "cycles added per fold (scalesim rule)"),
    "compute.timing.pipeline_latency_cycles": KeyDoc("integer >= 0", 0, "cycles added per layer (scalesim rule)"),
    "compute.timing.weight_load_cycles_per_row": KeyDoc("positive number", 1.0,
                                                        "rtl rule: cycles to load one weight row (fitted by `sparsim calibrate`)"),
    "compute.timing.stream_cycles_per_row": KeyDoc("positive number", 1.0,
                                                   "rtl rule: cycles per streamed row (fitted by `sparsim calibrate`)"),
    "compute.timing.fill_drain_extra_cycles": KeyDoc("number >= 0", 0.0,
                                                     "rtl rule: extra fill and drain latency (fitted by `sparsim calibrate`)"),
    # ------------------------------------------------------------------------------- memories[i]
    "memories.name": KeyDoc("string", REQUIRED, "unique name (sweeps address a memory by it)"),
    "memories.size_bytes": KeyDoc("integer >= 1", REQUIRED, "capacity"),
    "memories.read_bw_bytes_per_cycle": KeyDoc("positive number", REQUIRED, "read port bandwidth per array cycle"),
    "memories.write_bw_bytes_per_cycle": KeyDoc("positive number", Derived("the read bandwidth"), "write port bandwidth"),
    "memories.read_energy_pj_per_byte": KeyDoc("number >= 0", Derived("from the size (Horowitz), or block RAM on an FPGA"),
                                               "read energy"),
    "memories.write_energy_pj_per_byte": KeyDoc("number >= 0", Derived("the read energy"), "write energy"),
    "memories.banks": KeyDoc("integer >= 1", 1, "banks"),
    "memories.double_buffered": KeyDoc("`true` | `false` | `streamed`", True,
                                       "`true`: half is filled while the other half is used; `false`: the whole "
                                       "memory, loads, compute and write-back in turn; `streamed`: the mapping's "
                                       "stationary tile held once and the streamed tiles doubled, in the whole memory"),
    "memories.ports": KeyDoc("`bandwidth` | `single` | `dual`", "bandwidth",
                             "how the ports serve the array's accesses: `bandwidth`: bytes over bandwidth, reads "
                             "plus writes; `single`: one read-write port, one access a cycle (a partial-sum read "
                             "and write take two cycles); `dual`: a read and a write port, reads and writes overlap"),
    "memories.holds": KeyDoc("list of `activation` | `weight` | `output` | `metadata`", REQUIRED,
                             "operands it holds; each of the first three needs a memory; metadata sits with the "
                             "weights unless a memory holds it"),
    # ------------------------------------------------------------------------------- dram
    "dram.bandwidth_bytes_per_s": KeyDoc("positive number", REQUIRED, "total bandwidth (over all channels)"),
    "dram.technology": KeyDoc("`ddr3` | `ddr4` | `lpddr4` | `gddr5` | `hbm2`", "ddr3",
                              "sets the energy per byte (cited in `accel/energy.py`)"),
    "dram.energy_pj_per_byte": KeyDoc("number >= 0", Derived("from the technology"), "overrides the technology's energy"),
    "dram.channels": KeyDoc("integer >= 1", 1, "channels the bandwidth is split among (event engine)"),
    "dram.latency_cycles": KeyDoc("number >= 0", 0.0, "access latency of one transfer, in array cycles (event engine)"),
    # ------------------------------------------------------------------------------- energy
    "energy.node_nm": KeyDoc("positive number", 45.0, "technology node; the 45 nm table is scaled by C·V²"),
    "energy.static_power_w": KeyDoc("number >= 0", Derived("0 (ASIC); the device's figure (FPGA)"),
                                    "static power, charged for the latency"),
    "energy.mac_pj": KeyDoc("mapping of data type or operand bits to pJ", Derived("Horowitz, scaled to the node"),
                            "replaces entries of the MAC energy table"),
    "energy.gated_mac_fraction": KeyDoc("number >= 0", Derived("0.1"), "energy of a clock-gated MAC, as a share of an active one"),
    "energy.index_mux_pj": KeyDoc("number >= 0", Derived("0.02 pJ at 45 nm, scaled"), "one index-mux select of an N:M PE"),
    "energy.register_pj": KeyDoc("number >= 0", Derived("0.04 pJ at 45 nm, scaled"), "one pipeline register write"),
    "energy.model": KeyDoc("`asic` | `fpga`", Derived("`fpga` with an `fpga:` section on a known device, else `asic`"),
                           "which energy figures apply"),
    "energy.fpga": KeyDoc("mapping", Derived("the device family's figures"),
                          "overrides of the FPGA figures: `family` (`xilinx-ultrascale+`, `ecp5`), `dsp_op_pj`, "
                          "`lut_pj`, `ff_pj`, `bram_access_pj`, `bram_width_bits` (`accel/data/fpga_energy.json`)"),
    # ------------------------------------------------------------------------------- fpga
    "fpga.device": KeyDoc("string", "fpga", "device name; a known part (`xcvu9p`, `ecp5-25k`, `ecp5-45k`, `ecp5-85k`) "
                                            "supplies the budget and the energy figures"),
    "fpga.dsp": KeyDoc("integer >= 1", Derived("the device's, else required"), "DSP budget"),
    "fpga.bram36": KeyDoc("integer >= 1", Derived("the device's, else required"), "36 Kb block RAM budget"),
    "fpga.lut": KeyDoc("integer >= 1", Derived("the device's, else required"), "LUT budget"),
    "fpga.ff": KeyDoc("integer >= 1", Derived("the device's, else required"), "flip-flop budget"),
    "fpga.clock_hz": KeyDoc("positive number, or `estimated`", Derived("compute.clock_hz"),
                            "the clock the design must meet; `estimated`: the fitted array model's Fmax"),
    "fpga.macs_per_dsp": KeyDoc("positive number", 1.0, "MACs one DSP does per cycle (2 for packed int8 on DSP48E2)"),
    "fpga.lut_per_pe": KeyDoc("number >= 0", 40.0, "LUTs per PE (per-PE model; `sparsim synth --fpga-yaml` measures it)"),
    "fpga.lut_per_mux_bit": KeyDoc("number >= 0", 1.0, "LUTs per index-mux bit"),
    "fpga.ff_per_pe": KeyDoc("number >= 0", 64.0, "flip-flops per PE"),
    "fpga.model": KeyDoc("`per_pe` | `array`", "per_pe",
                         "resource model: per-PE costs, or the model fitted on placed `nm_array`s (ECP5 only)"),
    # ------------------------------------------------------------------------------- mapper
    "mapper.objective": KeyDoc("`cycles` | `dram`", "cycles",
                               "what the mapper minimizes first per layer (tiling, loop order, mode): the fewest "
                               "cycles then DRAM bytes, or the fewest DRAM bytes then cycles"),
    # ------------------------------------------------------------------------------- cores
    "cores.count": KeyDoc("integer >= 1", Derived("the number of `arrays`, else 1"), "cores, each with its own array and buffers"),
    "cores.distribution": KeyDoc("`split-n` | `pipeline`", "split-n",
                                 "`split-n`: each layer's output channels split by PE count; `pipeline`: contiguous "
                                 "stages (the slowest minimized), micro-batches of one sample"),
    "cores.channel_placement": KeyDoc("`interleaved` | `per-core`", "interleaved",
                                      "`interleaved`: every transfer striped over all channels; `per-core`: core i "
                                      "uses channel i mod channels"),
    "cores.arrays": KeyDoc("list of mappings", Derived("identical cores"),
                           "per-core overrides of `compute` and `memories` (cores that are not identical)"),
}
