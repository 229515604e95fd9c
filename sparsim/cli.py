"""The ``sparsim`` command line. Each subcommand calls the same API function the tests call."""
from __future__ import annotations

import argparse
import sys


def _fmt_int(v) -> str:
    return f"{int(v):,}"


def format_layer_table(workload) -> str:
    """Per-layer table (name, kind, M, N, K, groups, MACs, density) and totals, as text."""
    cols = ["name", "kind", "phase", "M", "N", "K", "groups", "MACs", "density", "pattern"]
    rows = []
    for l in workload.layers:
        pat = str(l.pattern) if l.pattern is not None else ("mask" if l.mask is not None else
                                                            ("dense" if l.has_weight else "-"))
        rows.append([l.name, l.kind.value, l.phase.value, str(l.m), str(l.n), str(l.k), str(l.groups),
                     _fmt_int(l.macs), f"{l.density:.3f}", pat])
    show_phase = any(l.phase.value != "forward" for l in workload.layers)
    if not show_phase:
        cols.pop(2)
        rows = [r[:2] + r[3:] for r in rows]
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    right = {"M", "N", "K", "groups", "MACs", "density"}
    def line(cells):
        return "  ".join(c.rjust(w) if cols[i] in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    out = [line(cols), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    macs, nnz = workload.macs, workload.nnz_macs
    out.append("")
    out.append(f"model {workload.name}, batch {workload.batch}: {len(workload.layers)} GEMM layers, "
               f"{_fmt_int(macs)} MACs dense, {_fmt_int(nnz)} with nonzero weights "
               f"({nnz / macs if macs else 1.0:.3f} of dense)")
    if workload.other_ops:
        n_other = sum(o.elements for o in workload.other_ops)
        out.append(f"non-GEMM work: {len(workload.other_ops)} op sites, {_fmt_int(n_other)} elements")
    return "\n".join(out)


def _load_workload(args):
    from sparsim.api import load_model_spec
    wl = load_model_spec(args.model, batch=args.batch, seed=args.seed)
    if args.sparsity:
        wl = wl.sparsify(args.sparsity)
    if getattr(args, "training", None):
        wl = wl.training(args.training)
    return wl


def cmd_trace(args) -> int:
    wl = _load_workload(args)
    print(format_layer_table(wl))
    if args.out:
        wl.save(args.out, weights=args.weights)
        print(f"wrote {args.out}")
    return 0


def cmd_topology(args) -> int:
    wl = _load_workload(args)
    fmt = {"scalesim": "conv", "scalesim-gemm": "gemm"}[args.format]
    text = wl.to_scalesim_csv(None, fmt=fmt)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_models(args) -> int:
    from sparsim.api import zoo_names
    for n in zoo_names():
        print(n)
    return 0


def cmd_demo(args) -> int:
    from sparsim.api import trace_zoo
    print("sparsim demo: ResNet-18 (seeded weights), batch 1, 2:4 masks chosen by magnitude\n")
    wl = trace_zoo("resnet18", batch=1).sparsify("2:4")
    print(format_layer_table(wl))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sparsim", description="Cycle-approximate simulator and co-design "
                                "explorer for sparse DNN accelerators.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def model_args(sp):
        sp.add_argument("--model", required=True,
                        help="zoo model name (see `sparsim models`) or path/to/file.py:build_fn returning "
                             "(model, example_inputs)")
        sp.add_argument("--sparsity", help="pattern for every weight layer: dense, 2:4, unstructured:0.3, "
                                           "block:4x4:0.5, channel:0.5")
        sp.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
        sp.add_argument("--seed", type=int, default=0, help="seed of the zoo model's random weights")

    sp = sub.add_parser("trace", help="trace a model into GEMM layers and print them")
    model_args(sp)
    sp.add_argument("--training", choices=["bdwp", "forward-only-sparse", "dense"],
                    help="expand into forward, backward-data and backward-weight GEMMs")
    sp.add_argument("--out", help="save the workload (with masks) to this JSON file")
    sp.add_argument("--weights", action="store_true", help="also save the weights in --out")
    sp.set_defaults(func=cmd_trace)

    sp = sub.add_parser("topology", help="write a model's layers as a SCALE-Sim topology CSV")
    model_args(sp)
    sp.add_argument("--format", choices=["scalesim", "scalesim-gemm"], default="scalesim",
                    help="scalesim: conv format (default); scalesim-gemm: Layer, M, N, K")
    sp.add_argument("--out", help="write to this file instead of standard output")
    sp.set_defaults(func=cmd_topology)

    sp = sub.add_parser("models", help="list the zoo's models")
    sp.set_defaults(func=cmd_models)

    sp = sub.add_parser("demo", help="the built-in default job")
    sp.set_defaults(func=cmd_demo)
    return p


def _project_errors() -> tuple:
    from workloads import WorkloadError
    errs = [WorkloadError]
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
