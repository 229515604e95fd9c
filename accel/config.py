"""Accelerator descriptions: parse (YAML) -> validate (types, ranges, semantics, defaults) -> build.

Every error names the key path and what was expected, e.g.
``compute.sparse_modes[1]: N must be <= M, got 5:4``. The document's keys are listed in
``accel/presets/README.md``.
"""
from __future__ import annotations

from dataclasses import replace

import math
from pathlib import Path
from typing import Any

import yaml

from .energy import (DATA_TYPES, DEFAULT_TYPE, DRAM_PJ_PER_BIT, FPGA_FIGURES, bram_pj_per_byte, default_table,
                     dram_pj_per_byte, fpga_energy_data, fpga_family, fpga_figures, fpga_table, sram_pj_per_byte)
from .errors import AccelConfigError, FpgaFitError
from .limits import check_buildable
from .multicore import DRAM_SYSTEM_KEYS, dram_system, parse_cores
from .spec import (Accelerator, ActivationSparsity, ComputeArray, Dataflow, Dram, EnergyTable, FpgaBudget, MapperObjective, Memory,
                   MetadataFormat, NmOverflow, Operand, Ports, SparseSupport, Timing, TimingModel, ZeroHandling)

_REQUIRED = object()


class _Ctx:
    """Reads typed values out of a mapping, naming the key path in every error."""

    def __init__(self, doc: Any, path: str, allowed: tuple[str, ...]):
        if not isinstance(doc, dict):
            raise AccelConfigError(f"{path or '<document>'}: expected a mapping, got {_show(doc)}")
        unknown = [k for k in doc if k not in allowed]
        if unknown:
            raise AccelConfigError(f"{self._p(path, unknown[0])}: unknown key; expected one of {', '.join(allowed)}")
        self.doc, self.path = doc, path

    @staticmethod
    def _p(path, key):
        return f"{path}.{key}" if path else str(key)

    def where(self, key) -> str:
        return self._p(self.path, key)

    def get(self, key, default=_REQUIRED):
        if key not in self.doc or self.doc[key] is None:
            if default is _REQUIRED:
                raise AccelConfigError(f"{self.where(key)}: required key is missing")
            return default
        return self.doc[key]

    def int(self, key, default=_REQUIRED, minimum=1):
        v = self.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise AccelConfigError(f"{self.where(key)}: expected an integer >= {minimum}, got {_show(v)}")
        return v

    def num(self, key, default=_REQUIRED, positive=True):
        v = self.get(key, default)
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                pass
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or \
                (positive and v <= 0) or (not positive and v < 0):
            want = "a positive number" if positive else "a number >= 0"
            raise AccelConfigError(f"{self.where(key)}: expected {want}, got {_show(v)}")
        return float(v)

    def bool(self, key, default=_REQUIRED):
        v = self.get(key, default)
        if not isinstance(v, bool):
            raise AccelConfigError(f"{self.where(key)}: expected true or false, got {_show(v)}")
        return v

    def str(self, key, default=_REQUIRED):
        v = self.get(key, default)
        if not isinstance(v, str):
            raise AccelConfigError(f"{self.where(key)}: expected a string, got {_show(v)}")
        return v

    def enum(self, key, cls, default=_REQUIRED):
        v = self.get(key, default)
        try:
            return cls(v.lower() if isinstance(v, str) else v)
        except ValueError:
            raise AccelConfigError(f"{self.where(key)}: expected one of {', '.join(e.value for e in cls)}, "
                                   f"got {_show(v)}") from None

    def list(self, key, default=_REQUIRED):
        v = self.get(key, default)
        if not isinstance(v, list):
            raise AccelConfigError(f"{self.where(key)}: expected a list, got {_show(v)}")
        return v


def _show(v) -> str:
    return repr(v) if not isinstance(v, dict) else "a mapping"


def _parse_mode(text, where: str) -> tuple[int, int] | None:
    if isinstance(text, str) and text.strip().lower() == "dense":
        return None
    if isinstance(text, int) and not isinstance(text, bool) and text >= 60:
        # YAML 1.1 reads an unquoted 2:4 as the base-60 integer 2 x 60 + 4 = 124
        n, m = divmod(text, 60)
        raise AccelConfigError(f"{where}: got {text}, which is how YAML reads an unquoted {n}:{m} (a base-60 "
                               f"number); quote the mode: '{n}:{m}'")
    if not isinstance(text, str) or text.count(":") != 1:
        raise AccelConfigError(f"{where}: expected 'dense' or 'N:M' such as '2:4', got {_show(text)}")
    a, b = text.split(":")
    try:
        n, m = int(a), int(b)
    except ValueError:
        raise AccelConfigError(f"{where}: expected 'dense' or 'N:M' such as '2:4', got {_show(text)}") from None
    if m < 1 or n < 1:
        raise AccelConfigError(f"{where}: N and M must be >= 1, got {n}:{m}")
    if n > m:
        raise AccelConfigError(f"{where}: N must be <= M, got {n}:{m}")
    return n, m


# ---------------------------------------------------------------------------------------------- build
_TOP = ("name", "description", "source", "include", "compute", "memories", "dram", "energy", "fpga", "cores",
        "mapper")
_COMPUTE = ("rows", "cols", "dataflow", "clock_hz", "activation_bits", "weight_bits", "accumulator_bits",
            "sparse_modes", "arbitrary_nm_max_m", "zero_handling", "metadata", "nm_overflow", "timing", "data_type",
            "activation_sparsity")
_MEMORY = ("name", "size_bytes", "read_bw_bytes_per_cycle", "write_bw_bytes_per_cycle",
           "read_energy_pj_per_byte", "write_energy_pj_per_byte", "banks", "double_buffered", "holds",
           "ports")
_ENERGY = ("node_nm", "static_power_w", "mac_pj", "gated_mac_fraction", "index_mux_pj", "register_pj", "model", "fpga")
_FPGA = ("device", "dsp", "bram36", "lut", "ff", "clock_hz", "macs_per_dsp", "lut_per_pe", "lut_per_mux_bit",
         "ff_per_pe", "model")
_TIMING = ("fold_overhead_cycles", "pipeline_latency_cycles", "model", "weight_load_cycles_per_row",
           "stream_cycles_per_row", "fill_drain_extra_cycles")
_DRAM = ("bandwidth_bytes_per_s", "energy_pj_per_byte", "technology") + DRAM_SYSTEM_KEYS
_MAPPER = ("objective",)

#: Every key a description may hold, by section (dotted path; ``""`` is the top level, ``memories``
#: the keys of each ``memories[i]``). :func:`build` accepts these and nothing else; tools that
#: address keys by path (sweep overrides) check against this table. ``cores`` is described in
#: :mod:`accel.multicore`; ``energy.mac_pj`` is a mapping of data types or widths to pJ.
KEYS: dict[str, tuple[str, ...]] = {
    "": _TOP, "compute": _COMPUTE, "compute.timing": _TIMING, "memories": _MEMORY, "dram": _DRAM,
    "energy": _ENERGY, "fpga": _FPGA, "mapper": _MAPPER,
}


def build(doc: dict, source: str = "") -> Accelerator:
    """Validate a parsed description (a dict) and build the frozen :class:`Accelerator`."""
    top = _Ctx(doc, "", _TOP)
    name = top.str("name")
    c = _Ctx(top.get("compute"), "compute", _COMPUTE)
    modes: list[tuple[int, int]] = []
    for i, t in enumerate(c.list("sparse_modes", ["dense"])):
        mode = _parse_mode(t, f"compute.sparse_modes[{i}]")
        if mode is not None and mode not in modes and mode[0] != mode[1]:
            modes.append(mode)
    amax = c.get("arbitrary_nm_max_m", None)
    if amax is not None:
        amax = c.int("arbitrary_nm_max_m", minimum=2)
        if amax & (amax - 1):
            raise AccelConfigError(f"compute.arbitrary_nm_max_m: expected a power of two >= 2, got {amax}")
    sparse = SparseSupport(modes=tuple(modes), arbitrary_max_m=amax,
                           zero_handling=c.enum("zero_handling", ZeroHandling, "skip"),
                           metadata=c.enum("metadata", MetadataFormat, "index"),
                           overflow=c.enum("nm_overflow", NmOverflow, "passes"),
                           activation=c.enum("activation_sparsity", ActivationSparsity, "none"))
    t = _Ctx(c.get("timing", {}), "compute.timing", _TIMING)
    timing = Timing(fold_overhead_cycles=t.int("fold_overhead_cycles", 0, minimum=0),
                    pipeline_latency_cycles=t.int("pipeline_latency_cycles", 0, minimum=0),
                    model=t.enum("model", TimingModel, "scalesim"),
                    weight_load_cycles_per_row=t.num("weight_load_cycles_per_row", 1.0),
                    stream_cycles_per_row=t.num("stream_cycles_per_row", 1.0),
                    fill_drain_extra_cycles=t.num("fill_drain_extra_cycles", 0.0, positive=False))
    if timing.model is TimingModel.RTL and c.enum("dataflow", Dataflow) is not Dataflow.WS:
        # the rtl rule is the weight-stationary RTL array's schedule; under os / is no RTL exists and
        # SCALE-Sim's rule applies: the same rule as a --dataflow or sweep override (Accelerator.with_dataflow)
        timing = replace(timing, model=TimingModel.SCALESIM)
    a_bits, w_bits = c.int("activation_bits", 8), c.int("weight_bits", 8)
    dtype = c.get("data_type", None)
    if dtype is None:
        dtype = DEFAULT_TYPE.get(max(a_bits, w_bits))
    elif dtype not in DATA_TYPES:
        raise AccelConfigError(f"compute.data_type: expected one of {', '.join(DATA_TYPES)}, got {_show(dtype)}")
    elif int(dtype[-2:].lstrip("t")) != max(a_bits, w_bits):
        raise AccelConfigError(f"compute.data_type: {dtype} does not match activation_bits/weight_bits "
                               f"{a_bits}/{w_bits}")
    clock_from_fpga = str(c.get("clock_hz", "")).strip().lower() == "fpga"
    compute = ComputeArray(rows=c.int("rows"), cols=c.int("cols"), dataflow=c.enum("dataflow", Dataflow),
                           clock_hz=1.0 if clock_from_fpga else c.num("clock_hz"), activation_bits=a_bits, weight_bits=w_bits,
                           accumulator_bits=c.int("accumulator_bits", 32), sparse=sparse, timing=timing,
                           data_type=dtype)

    fpga = None
    if top.get("fpga", None) is not None:
        fpga, compute = _fpga(top.get("fpga"), compute, clock_from_fpga)
        if fpga.clock_hz < compute.clock_hz:
            raise AccelConfigError(f"compute.clock_hz: {compute.clock_hz:g} Hz is above the FPGA budget's "
                                   f"fpga.clock_hz {fpga.clock_hz:g} Hz")
    elif clock_from_fpga:
        raise AccelConfigError("compute.clock_hz: 'fpga' takes the clock of the fpga: section, which this "
                               "description does not have")

    e = _Ctx(top.get("energy", {}), "energy", _ENERGY)
    node = e.num("node_nm", 45.0)
    fpga_fig, table = _fpga_energy(e, fpga, compute)
    if table is None:
        table = default_table(node, e.num("static_power_w", 0.0, positive=False))
    if e.get("mac_pj", None) is not None:
        mp = e.get("mac_pj")
        if not isinstance(mp, dict) or not mp:
            raise AccelConfigError(f"energy.mac_pj: expected a mapping of data types or operand bits to pJ, "
                                   f"got {_show(mp)}")
        mac = dict(table.mac_pj)
        for key, pj in mp.items():
            mc = _Ctx({"v": pj}, f"energy.mac_pj.{key}", ("v",))
            if not (key in DATA_TYPES or (isinstance(key, int) and not isinstance(key, bool) and key >= 1)):
                raise AccelConfigError(f"energy.mac_pj: keys must be one of {', '.join(DATA_TYPES)} or operand "
                                       f"widths in bits, got {_show(key)}")
            mac[key] = mc.num("v")
            if isinstance(key, int):   # a width given by the user stands for every type of that width
                for dt in DATA_TYPES:
                    if int(dt[-2:].lstrip("t")) == key and dt not in mp:
                        mac.pop(dt, None)
        table = EnergyTable(**{**vars(table), "mac_pj": tuple(mac.items()), "source": "description file"})
    overrides = {k: e.num(k, positive=False) for k in ("gated_mac_fraction", "index_mux_pj", "register_pj")
                 if e.get(k, None) is not None}
    if overrides:
        table = EnergyTable(**{**vars(table), **overrides})

    memories = []
    raw_mems = top.list("memories")
    if not raw_mems:
        raise AccelConfigError("memories: expected at least one on-chip memory")
    seen_names = set()
    for i, md in enumerate(raw_mems):
        m = _Ctx(md, f"memories[{i}]", _MEMORY)
        size = m.int("size_bytes")
        holds = []
        for j, h in enumerate(m.list("holds")):
            try:
                holds.append(Operand(h))
            except ValueError:
                raise AccelConfigError(f"memories[{i}].holds[{j}]: expected one of "
                                       f"{', '.join(o.value for o in Operand)}, got {_show(h)}") from None
        mname = m.str("name")
        if mname in seen_names:
            raise AccelConfigError(f"memories[{i}].name: '{mname}' is used twice")
        seen_names.add(mname)
        rd_pj = m.num("read_energy_pj_per_byte",
                      bram_pj_per_byte(fpga_fig) if fpga_fig else sram_pj_per_byte(size, node), positive=False)
        rbw = m.num("read_bw_bytes_per_cycle")
        memories.append(Memory(name=mname, size_bytes=size, read_bw_bytes_per_cycle=rbw,
                               write_bw_bytes_per_cycle=m.num("write_bw_bytes_per_cycle", rbw),
                               read_energy_pj_per_byte=rd_pj,
                               write_energy_pj_per_byte=m.num("write_energy_pj_per_byte", rd_pj, positive=False),
                               holds=tuple(holds), banks=m.int("banks", 1),
                               ports=m.enum("ports", Ports, "bandwidth"), **_buffering(m)))
    for op in (Operand.ACTIVATION, Operand.WEIGHT, Operand.OUTPUT):
        if not any(op in mem.holds for mem in memories):
            raise AccelConfigError(f"memories: no memory holds '{op.value}'; every operand needs one "
                                   f"(list it under some memories[i].holds)")
    if not any(Operand.METADATA in mem.holds for mem in memories):
        # metadata travels with the weights unless a memory of its own is declared
        idx = next(i for i, mem in enumerate(memories) if Operand.WEIGHT in mem.holds)
        mem = memories[idx]
        memories[idx] = Memory(**{**vars(mem), "holds": mem.holds + (Operand.METADATA,)})

    check_buildable(compute, memories)    # accel/limits.py: refuse what cannot be built

    d = _Ctx(top.get("dram"), "dram", _DRAM)
    tech = d.str("technology", "ddr3").lower()
    if tech not in DRAM_PJ_PER_BIT:
        raise AccelConfigError(f"dram.technology: expected one of {', '.join(DRAM_PJ_PER_BIT)}, got {_show(tech)}")
    dram = Dram(bandwidth_bytes_per_s=d.num("bandwidth_bytes_per_s"),
                energy_pj_per_byte=d.num("energy_pj_per_byte", dram_pj_per_byte(tech), positive=False),
                technology=tech, **dram_system(d))

    mp = _Ctx(top.get("mapper", {}), "mapper", _MAPPER)
    acc = Accelerator(name=name, compute=compute, memories=tuple(memories), dram=dram, energy=table, fpga=fpga,
                      description=top.str("description", ""), source=top.str("source", source),
                      cores=parse_cores(top, doc, build, _Ctx),
                      mapper_objective=mp.enum("objective", MapperObjective, "cycles"))
    if fpga is not None:
        from .fpga import fpga_usage
        usage = fpga_usage(acc)
        if not usage.fits:
            over = ", ".join(f"{k} {v * 100:.0f}%" for k, v in usage.utilization().items() if v > 1.0)
            raise FpgaFitError(f"accelerator '{name}' does not fit {fpga.device}: {over} of the budget "
                               f"(needs DSP {usage.dsp}/{fpga.dsp}, BRAM36 {usage.bram36}/{fpga.bram36}, "
                               f"LUT {usage.lut}/{fpga.lut}, FF {usage.ff}/{fpga.ff})")
    return acc


def _buffering(m: _Ctx) -> dict:
    """``memories[i].double_buffered``: true (halves), false (the whole memory, no overlap) or
    ``streamed`` (the stationary tile once, the streamed tiles twice, in the whole memory)."""
    v = m.get("double_buffered", True)
    if isinstance(v, str) and v.strip().lower() == "streamed":
        return {"double_buffered": True, "streamed": True}
    if not isinstance(v, bool):
        raise AccelConfigError(f"{m.where('double_buffered')}: expected true, false or streamed, got {_show(v)}")
    return {"double_buffered": v}


def _fpga_energy(e: _Ctx, fpga: FpgaBudget | None, compute: ComputeArray) -> tuple[dict | None, EnergyTable | None]:
    """``energy.model`` and ``energy.fpga``: the FPGA figures and table, or (None, None) for the ASIC table.
    A design with an ``fpga:`` section on a device of a known family gets FPGA energy by default."""
    from .fpga import fabric_per_pe
    families = sorted(fpga_energy_data()["families"])
    family, dkey = fpga_family(fpga.device) if fpga is not None else (None, None)
    f = _Ctx(e.get("fpga", {}), "energy.fpga", ("family",) + FPGA_FIGURES)
    if f.get("family", None) is not None:
        chosen = f.str("family")
        if chosen not in families:
            raise AccelConfigError(f"energy.fpga.family: expected one of {', '.join(families)}, got {_show(chosen)}")
        if chosen != family:
            dkey = None
        family = chosen
    model = e.str("model", "fpga" if fpga is not None and family is not None else "asic").lower()
    if model not in ("asic", "fpga"):
        raise AccelConfigError(f"energy.model: expected asic or fpga, got {_show(e.get('model'))}")
    if model == "asic":
        if e.get("fpga", None) is not None:
            raise AccelConfigError("energy.fpga: FPGA figures apply only with energy.model: fpga")
        return None, None
    if fpga is None:
        raise AccelConfigError("energy.model: fpga needs an fpga: section (the device and its per-PE LUT and "
                               "FF counts)")
    if family is None:
        raise AccelConfigError(f"energy.model: fpga has no figures for fpga.device {fpga.device!r}; name its "
                               f"family with energy.fpga.family (one of {', '.join(families)})")
    fig = fpga_figures(family, dkey)
    for key in FPGA_FIGURES:
        if f.get(key, None) is not None:
            fig[key] = f.int(key) if key == "bram_width_bits" else f.num(key, positive=False)
    static = (e.num("static_power_w", positive=False) if e.get("static_power_w", None) is not None
              else fig["static_power_w"])
    if static is None:
        raise AccelConfigError(f"energy.static_power_w: accel/data/fpga_energy.json has no static power for "
                               f"fpga.device {fpga.device!r}; give the device's static power in watts")
    lut, ff, mux = fabric_per_pe(fpga, compute)
    bits = max(compute.activation_bits, compute.weight_bits)
    return fig, fpga_table(fig, fpga.macs_per_dsp, lut, ff, mux, static, compute.data_type, bits, family)


def _fpga(doc, compute: ComputeArray, clock_from_fpga: bool) -> tuple[FpgaBudget, ComputeArray]:
    """The ``fpga:`` section. A known ``device`` (accel.fpga.DEVICES) supplies the budget's defaults;
    ``model: array`` estimates resources with the fitted array model, and ``clock_hz: estimated``
    takes that model's Fmax; ``compute.clock_hz: fpga`` then runs the array at the FPGA's clock."""
    from dataclasses import replace

    from .fpga import DEVICES, array_estimate
    f = _Ctx(doc, "fpga", _FPGA)
    device = f.str("device", "fpga")
    known = DEVICES.get(device.strip().lower())
    model = f.str("model", "per_pe")
    if model not in ("per_pe", "array"):
        raise AccelConfigError(f"fpga.model: expected per_pe or array, got {model!r}")
    if model == "array" and (known is None or known["family"] != "ecp5"):
        raise AccelConfigError(f"fpga.model: array is fitted on ECP5; fpga.device must be one of "
                               f"{', '.join(k for k, v in DEVICES.items() if v['family'] == 'ecp5')}, got {device!r}")
    budget = {key: f.int(key) if known is None or f.get(key, None) is not None else known[key]
              for key in ("dsp", "bram36", "lut", "ff")}
    estimated = str(f.get("clock_hz", "")).strip().lower() == "estimated"
    if estimated:
        if model != "array":
            raise AccelConfigError("fpga.clock_hz: 'estimated' needs fpga.model: array (the fitted clock model)")
        fmax = array_estimate(compute)["fmax_mhz"]
        if not fmax:
            raise AccelConfigError("fpga.clock_hz: the fitted array model has no clock fit")
        clock = fmax * 1e6
    elif f.get("clock_hz", None) is None:
        if clock_from_fpga:
            raise AccelConfigError("compute.clock_hz: 'fpga' needs fpga.clock_hz (a number or 'estimated')")
        clock = compute.clock_hz       # no FPGA clock given: the design's own clock is assumed met
    else:
        clock = f.num("clock_hz")
    fpga = FpgaBudget(device=device, **budget, clock_hz=clock,
                      macs_per_dsp=f.num("macs_per_dsp", 1.0), lut_per_pe=f.num("lut_per_pe", 40.0, False),
                      lut_per_mux_bit=f.num("lut_per_mux_bit", 1.0, False), ff_per_pe=f.num("ff_per_pe", 64.0, False),
                      model=model, clock_estimated=estimated)
    if clock_from_fpga:
        compute = replace(compute, clock_hz=clock)
    return fpga, compute


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_yaml_document(path: Path, what: str, error: type[Exception] = AccelConfigError):
    """The parsed YAML document at ``path``; a missing file or bad YAML raises ``error`` naming
    ``what`` and the path (one line, no traceback on the CLI)."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise error(f"{what} {path}: no such file") from None
    except yaml.YAMLError as e:
        raise error(f"{what} {path}: not valid YAML ({e})") from None


def read_yaml(path: Path, _stack=(), files: list | None = None) -> dict:
    """Read a YAML description, resolving ``include:`` (paths relative to the file; the including
    document's own keys win over included ones). ``files``: a list each file read is appended to
    (the description, then what it includes), for callers that key results by file content."""
    path = Path(path)
    if path.resolve() in _stack:
        raise AccelConfigError(f"{path}: include cycle ({' -> '.join(str(p) for p in _stack)})")
    doc = read_yaml_document(path, "accelerator file")
    if files is not None:
        files.append(path.resolve())
    if not isinstance(doc, dict):
        raise AccelConfigError(f"accelerator file {path}: expected a mapping at the top level")
    includes = doc.pop("include", None) or []
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list):
        raise AccelConfigError(f"{path}: include: expected a path or a list of paths")
    merged: dict = {}
    for inc in includes:
        merged = _deep_merge(merged, read_yaml(path.parent / inc, _stack + (path.resolve(),), files))
    return _deep_merge(merged, doc)


def load_yaml(path) -> Accelerator:
    path = Path(path)
    doc = read_yaml(path)
    try:
        return build(doc, source=str(path))
    except AccelConfigError as e:
        raise type(e)(f"{path}: {e}") from None
