"""The engine's `rtl` fold rule against the RTL array (hdl/rtl/nm_array.sv) on Verilator: the quick
calibration suite of `sparsim calibrate --quick` (one mode, a 4x4 array, 12 tiles), its fitted
parameters and its error on the held-out tiles, per condition, and per tile.

Run: .venv/bin/python benchmarks/bench_calibrate.py [--full]   (about 2 minutes; in `make bench`)
`--full` runs the whole suite for the preset's modes (several times longer). Needs Verilator
(scripts/setup.sh installs it); without it the script says so and writes nothing.
"""
import sys
import time

import accel
from docs_out import DocsOut
from hdl.calibrate import calibrate, simulator_missing


def main(full: bool = False):
    missing = simulator_missing("verilator")
    if missing:
        print(f"bench_calibrate: skipped: {missing}")
        return
    acc = accel.load("vegeta-flex")
    out = DocsOut("calibration", "python benchmarks/bench_calibrate.py" + (" --full" if full else ""))
    t0 = time.perf_counter()
    _, rep = calibrate(acc, "verilator", quick=not full, log=lambda *_: None)
    wall = time.perf_counter() - t0
    ho = rep["held_out"]
    sim = rep["simulator"]
    out.text(f"{len(rep['tiles'])} tiles of vegeta-flex's suite ({'full' if full else '`--quick`'}) on "
             f"{sim['version'].split(' rev')[0]}, {wall:.0f} s including the RTL builds. Held-out "
             f"tiles: MAPE {rep['mape_percent']:.3f} %, max {rep['max_abs_error_percent']:.3f} %; before fitting "
             f"(the SCALE-Sim fold rule) their MAPE is {rep['before_fit_mape_percent']:.1f} %.")
    cond = [("all held out, no backpressure", ho["no_backpressure"]),
            ("of which unstructured (multi-pass, never fitted on)", ho["unstructured_no_backpressure"]),
            ("all held out, random backpressure", ho["backpressure"]),
            ("of which unstructured", ho["unstructured_backpressure"])]
    cond = [(name, e) for name, e in cond if e["cases"]]
    out.table(["held-out tiles", "tiles", "MAPE %", "max error %", "max error cycles"],
              [[name, e["cases"], f"{e['mape_percent']:.3f}", f"{e['max_abs_error_percent']:.3f}",
                f"{e['max_abs_error_cycles']:.1f}"] for name, e in cond])
    fit = rep["fit"]
    out.table(["fitted on", "weight load cycles / row", "stream cycles / row", "extra fill/drain cycles"],
              [[k.replace("_", " "), *(f"{fit[k][p]:.4f}" for p in ("weight_load_cycles_per_row", "stream_cycles_per_row",
                                                                  "fill_drain_extra_cycles"))]
               for k in ("no_backpressure", "backpressure")])
    out.table(["tile", "mask", "array", "backpressure", "held out", "RTL cycles", "before fit", "after fit", "error %"],
              [[t["name"], t["mask"], f"{t['rows']}x{t['cols']}", "y" if t["backpressure"] else "n",
                "y" if t["held_out"] else "n", t["rtl_cycles"], f"{t['model_cycles_before']:.0f}",
                f"{t['model_cycles']:.1f}", f"{t['error_percent']:+.2f}"] for t in rep["tiles"]], echo=False)
    out.write()


if __name__ == "__main__":
    main("--full" in sys.argv[1:])
