"""FPGA resource model: the fit from the committed measurement table, estimates, and the recorded
time of the synthesis and place-and-route behind each grid point (hdl/data/fpga_grid.csv)."""
import time

from docs_out import DocsOut

out = DocsOut("fpga_model", "python benchmarks/bench_fpga_model.py")
_lines = []


def say(line: str) -> None:
    print(line)
    _lines.append(line)


from accel.fpga import estimate_array, fit_array_model, read_grid
from hdl.fpga_fit import TABLE

rows = read_grid(TABLE)
t0 = time.perf_counter()
model = fit_array_model(rows)
fit_s = time.perf_counter() - t0
t0 = time.perf_counter()
for _ in range(1000):
    estimate_array(16, 16, 2, 4, 8, model=model)
est_us = (time.perf_counter() - t0) / 1000 * 1e6
say(f"fit on {len(rows)} measured points: {fit_s * 1000:.1f} ms; one estimate: {est_us:.1f} us")
synth_s = sum(float(r["synth_seconds"]) for r in rows)
pnr_s = sum(float(r["pnr_seconds"]) for r in rows if r["pnr_seconds"] not in ("", None))
say(f"recorded tool time of the grid: synthesis {synth_s / 60:.1f} min, place and route {pnr_s / 60:.1f} min "
      f"(current Yosys and nextpnr-ecp5, WebAssembly, on the machine that measured them)")
for r in rows:
    if (r["R"], r["C"], r["N"], r["M"], r["DW"]) == (8, 8, 2, 4, 8):
        say(f"8x8 2:4 array: synthesis {r['synth_seconds']:.0f} s, place and route "
              f"{r['pnr_seconds'] or 'not run'} s")

# the SAT-style preset (32x64 PEs, 2:8, 16-bit): the array model's ECP5 extrapolation beside the
# preset's own per-PE figures (UltraScale+ units); only the DSP count is comparable across families
import accel  # noqa: E402
from accel.fpga import array_estimate, fpga_usage  # noqa: E402

sat = accel.load("sat-vcu1525")
est = array_estimate(sat.compute)
per_pe = fpga_usage(sat)
say(f"sat-vcu1525 ({sat.compute.rows}x{sat.compute.cols}, 2:8, 16-bit): array model (ECP5 LUT4/FF/MULT18) "
      f"LUT {est['lut']:,} FF {est['ff']:,} DSP {est['dsp']:,} Fmax {est['fmax_mhz']} MHz; preset per-PE "
      f"(XCVU9P) LUT {per_pe.lut:,} FF {per_pe.ff:,} DSP {per_pe.dsp:,} at {sat.compute.clock_hz / 1e6:.0f} MHz")

# A published structured-sparse FPGA array beside the model: MCBBS (Liu & Brown, "Leveraging
# Fine-grained Structured Sparsity for CNN Inference on Systolic Array Architectures", FPL 2021;
# figures from github.com/mustard-seed/SparseDNNAccelerator README, "Results"). Intel Arria 10
# GX1150, int8, a 24x7 systolic array of PEs with 16 multipliers each, every multiplier fed through a
# 4:1 activation mux (pruning range of 4 clusters of 1 weight: the N:4 pattern at 1:4 and 2:4), whole
# accelerator (OpenCL shell, buffers, DDR, a pooling engine). Only the multiplier count is comparable
# across families (an Arria 10 DSP block holds two 18x19 multipliers, a MULT18X18D one 18x18).
MCBBS = {"config": "24x7M1_C1R4P16G8", "multipliers": 24 * 7 * 16, "alm": 336_000, "dsp_blocks": 1352,
         "m20k": 1785, "fmax_mhz": 242}
for rr, cc in ((48, 56), (16, 168)):
    e = estimate_array(rr, cc, 1, 4, 8, model=model)
    say(f"MCBBS ({MCBBS['multipliers']:,} int8 multipliers, N:4; Arria 10): {MCBBS['alm']:,} ALM, "
          f"{MCBBS['dsp_blocks']:,} DSP blocks (= {2 * MCBBS['dsp_blocks']:,} multipliers), {MCBBS['m20k']:,} M20K, "
          f"{MCBBS['fmax_mhz']} MHz | array model {rr}x{cc} 1:4 (ECP5): LUT4 {e['lut']:,} FF {e['ff']:,} "
          f"MULT18 {e['dsp']:,} Fmax {e['fmax_mhz']} MHz")

from hdl.fpga_fit import markdown  # noqa: E402

out.text("The measured grid (hdl/data/fpga_grid.csv: ECP5-85k, Yosys `synth_ecp5`, nextpnr-ecp5; 8-bit data, "
         "32-bit accumulators; tool times as recorded when each point was measured) beside the model's estimates "
         "(accel/data/fpga_model.json):")
out.text(markdown())
out.table(["resource", "held-out points", "mean error %", "max error %"],
          [[k, v["points"], f"{v['mean_abs_percent']:.2f}", f"{v['max_abs_percent']:.2f}"]
           for k, v in model["held_out_error"].items()],
          caption="The model's error on the held-out sizes (fitted on the other rows):", echo=False)
out.text("\n".join(f"* {ln}" for ln in _lines))
out.write()
