"""``sparsim sweep``, ``sparsim results`` and ``sparsim report``: grids of points, their store, their plots."""
from __future__ import annotations

import sys

#: the columns `sparsim results` exports after the axes
EXPORT = ["status", "cycles", "energy_pj", "latency_s", "dram_bytes", "utilization", "speedup", "energy_saving",
          "error", "key"]


def register(sub) -> None:
    sp = sub.add_parser("sweep", help="run a YAML grid of points into a resumable results store",
                        description="Run every point of a sweep spec (models x accelerators x sparsity x "
                                    "overrides, with zip groups and a where filter) and store the results. "
                                    "Re-running the same command resumes: finished points are skipped.")
    sp.add_argument("spec", help="the sweep spec (.yaml)")
    sp.add_argument("--out", required=True, help="the results store (SQLite), e.g. results.db")
    sp.add_argument("--workers", type=int, default=None,
                    help="local worker processes (default: one per core; 0 runs in this process)")
    sp.add_argument("--scheduler", help="run on a Dask cluster: its scheduler address, tcp://host:port")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp.set_defaults(func=cmd_sweep)

    sp = sub.add_parser("results", help="export a sweep's results, one row per point")
    sp.add_argument("store", help="a results store written by `sparsim sweep`")
    sp.add_argument("--format", choices=["csv", "parquet", "json"],
                    help="output format (default: from --out's extension, else csv)")
    sp.add_argument("--out", help="write to this file (default: standard output; parquet needs a file)")
    sp.add_argument("--where", help="keep rows where this holds, e.g. \"sparsity == '2:4' and cycles < 2e6\"")
    sp.add_argument("--all-columns", action="store_true", help="every column, not only axes and headline numbers")
    sp.set_defaults(func=cmd_results)

    sp = sub.add_parser("report", help="write an HTML report with plots (and PNGs) from a results store")
    sp.add_argument("store", help="a results store written by `sparsim sweep`")
    sp.add_argument("--out", required=True, help="folder for report.html and the PNGs")
    sp.add_argument("--point", help="the point (key, or a unique key prefix) whose layers to break down "
                                    "(default: the fastest ok point)")
    sp.add_argument("--color", help="the axis that colours the cycles-vs-energy plot (default: the first "
                                    "override axis)")
    sp.set_defaults(func=cmd_report)


def errors() -> list:
    from sweeps.errors import SweepError
    return [SweepError]


#: file names a results store may have (it is SQLite)
STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def cmd_sweep(args) -> int:
    from sparsim._io import check_writable
    from sweeps import load_spec
    from sweeps.runner import run_sweep
    check_writable(args.out, "--out", STORE_SUFFIXES, "the results store is an SQLite file, e.g. results.db")
    spec = load_spec(args.spec)
    if not args.quiet:
        print(f"{spec.name}: {len(spec.points)} points over {', '.join(spec.axes)} -> {args.out}", file=sys.stderr)
    summary = run_sweep(spec, args.out, workers=args.workers, scheduler=args.scheduler, progress=not args.quiet)
    if summary.superseded_line(args.out):
        print(summary.superseded_line(args.out))
    print(summary.line())
    _warn_unfit(args.out)
    if summary.errors:
        from sweeps.store import load_results
        pts, _ = load_results(args.out)
        failed = pts[pts["status"] == "error"]
        for _, r in failed.head(5).iterrows():
            where = ", ".join(f"{a}={r[a]}" for a in spec.axes)
            print(f"  failed: {where}: {r['error']}", file=sys.stderr)
        if len(failed) > 5:
            print(f"  ... and {len(failed) - 5} more (`sparsim results {args.out} --where \"status == 'error'\"`)",
                  file=sys.stderr)
    return 0


def _warn_unfit(path) -> None:
    """On stderr, once: how many ok points have layers whose mapping does not fit the buffers."""
    import sqlite3

    from sweeps.evaluate import UNFIT_NOTE
    with sqlite3.connect(path) as db:
        n = db.execute("SELECT COUNT(*) FROM points WHERE status = 'ok' AND error LIKE ?",
                       (UNFIT_NOTE + "%",)).fetchone()[0]
    if n:
        print(f"warning: {n} ok point{'s have' if n != 1 else ' has'} layers whose mapping does not fit the buffers "
              f"(their numbers are not what the hardware can do; the layers are in the error column: "
              f"sparsim results {path} --where \"status == 'ok' and error != None\")", file=sys.stderr)


def _warn_stale(path) -> None:
    """On stderr: which stored points are out of date with the files they were read from."""
    from sweeps.store import stale_line
    line = stale_line(path)
    if line:
        print(line, file=sys.stderr)


def export_frame(path, where: str | None = None, all_columns: bool = False):
    """The table `sparsim results` writes: one row per point."""
    from sweeps.errors import SweepError
    from sweeps.expr import Expr
    from sweeps.store import load_results
    pts, _ = load_results(path)
    _warn_stale(path)
    if where:
        expr = Expr(where, "--where", set(pts.columns))
        rows = pts.to_dict(orient="records")
        keep = [expr({k: (None if _isnan(v) else v) for k, v in r.items()}) for r in rows]
        pts = pts[keep]
        if pts.empty:
            print(f"--where {where!r}: no row matches", file=sys.stderr)
    if not all_columns:
        axes = list(pts.columns[:list(pts.columns).index("status")])
        pts = pts[axes + EXPORT]
    if pts.empty and not where:
        raise SweepError(f"{path}: the store holds no points")
    return pts


def _isnan(v) -> bool:
    return isinstance(v, float) and v != v


def cmd_results(args) -> int:
    from sparsim._io import check_writable, writing
    from sweeps.errors import SweepError
    fmt = args.format
    if args.out:
        check_writable(args.out, "--out", (".csv", ".parquet", ".json"), "the file name says the format")
        ext = args.out.rsplit(".", 1)[-1].lower()
        if fmt is not None and fmt != ext:
            raise SweepError(f"--format {fmt} does not match --out {args.out}: give a .{fmt} file name, or "
                             f"--format {ext}")
        fmt = ext
    elif fmt is None:
        fmt = "csv"
    if fmt == "parquet" and not args.out:
        raise SweepError("--format parquet: needs --out FILE (parquet is binary)")
    df = export_frame(args.store, args.where, args.all_columns)
    if fmt == "csv":
        text = df.to_csv(index=False)
    elif fmt == "json":
        text = df.to_json(orient="records", indent=1)
    if args.out:
        import os
        tmp = args.out + ".tmp"
        with writing(args.out, "--out"):
            if fmt == "parquet":
                df.to_parquet(tmp, index=False)
            else:
                with open(tmp, "w") as f:
                    f.write(text)
            os.replace(tmp, args.out)
        print(f"wrote {len(df)} rows to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_report(args) -> int:
    from pathlib import Path

    from sparsim._io import OutputPathError, check_writable, writing
    from sweeps.report import write_report
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"--out {args.out}: is a file; expected a folder for report.html and the PNGs")
    if out.is_dir():
        check_writable(out / "report.html", "--out")
    _warn_stale(args.store)
    with writing(args.out, "--out"):
        paths = write_report(args.store, args.out, point=args.point, color=args.color)
    for p in paths:
        print(f"wrote {p}")
    return 0
