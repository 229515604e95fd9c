"""FPGA resource model: the fit from the committed measurement table, estimates, and the recorded
time of the synthesis and place-and-route behind each grid point (hdl/data/fpga_grid.csv)."""
import time

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
print(f"fit on {len(rows)} measured points: {fit_s * 1000:.1f} ms; one estimate: {est_us:.1f} us")
synth_s = sum(float(r["synth_seconds"]) for r in rows)
pnr_s = sum(float(r["pnr_seconds"]) for r in rows if r["pnr_seconds"] not in ("", None))
print(f"recorded tool time of the grid: synthesis {synth_s / 60:.1f} min, place and route {pnr_s / 60:.1f} min "
      f"(current Yosys and nextpnr-ecp5, WebAssembly, on the machine that measured them)")
for r in rows:
    if (r["R"], r["C"], r["N"], r["M"], r["DW"]) == (8, 8, 2, 4, 8):
        print(f"8x8 2:4 array: synthesis {r['synth_seconds']:.0f} s, place and route "
              f"{r['pnr_seconds'] or 'not run'} s")

# the SAT-style preset (32x64 PEs, 2:8, 16-bit): the array model's ECP5 extrapolation beside the
# preset's own per-PE figures (UltraScale+ units); only the DSP count is comparable across families
import accel  # noqa: E402
from accel.fpga import array_estimate, fpga_usage  # noqa: E402

sat = accel.load("sat-vcu1525")
est = array_estimate(sat.compute)
per_pe = fpga_usage(sat)
print(f"sat-vcu1525 ({sat.compute.rows}x{sat.compute.cols}, 2:8, 16-bit): array model (ECP5 LUT4/FF/MULT18) "
      f"LUT {est['lut']:,} FF {est['ff']:,} DSP {est['dsp']:,} Fmax {est['fmax_mhz']} MHz; preset per-PE "
      f"(XCVU9P) LUT {per_pe.lut:,} FF {per_pe.ff:,} DSP {per_pe.dsp:,} at {sat.compute.clock_hz / 1e6:.0f} MHz")
