"""The example sweeps (examples/*.yaml) from an empty store: how long each takes as a whole, and the
report figures the docs show (docs/howto/sweep.md, the home page), written into
docs/benchmarks/generated/.

Run: .venv/bin/python benchmarks/bench_examples.py   (a few minutes on 2 cores; in `make bench`)
Each sweep runs into a fresh store in a temporary folder (no prepared workloads from an earlier run),
with one worker per core; the report page is photographed in headless Chromium when it is installed.
"""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from docs_out import ROOT, DocsOut
from sweeps import load_spec, run_sweep, write_report

#: spec, report --color, {report figure: file name in docs/benchmarks/generated/}
EXAMPLES = [
    ("examples/tour_resnet18.yaml", None, {}),
    ("examples/dataflow_sparsity_resnet50.yaml", None, {"speedup_vs_sparsity": "sweep-resnet50-speedup.png"}),
    ("examples/array_buffer_bert.yaml", "compute.rows", {"pareto": "sweep-bert-pareto.png"}),
    ("examples/fpga_vcu1525_bdwp.yaml", None, {"fpga": "sweep-fpga-resources.png"}),
]
CHROMIUM = "/usr/bin/chromium"


def screenshot(page: Path, png: Path, profile: Path) -> bool:
    if not Path(CHROMIUM).exists():
        return False
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
             "--virtual-time-budget=5000", "--window-size=1200,1500"]
    subprocess.run([CHROMIUM, *flags, f"--screenshot={png}", page.as_uri()], capture_output=True, timeout=300)
    return png.exists()


def main():
    out = DocsOut("examples", "python benchmarks/bench_examples.py")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for spec_path, color, figures in EXAMPLES:
            name = Path(spec_path).stem
            spec = load_spec(ROOT / spec_path)
            (tmp / name).mkdir()            # a folder each: no workloads prepared by an earlier sweep
            s = run_sweep(spec, tmp / name / "results.db", progress=False)
            print(f"{spec_path}: {s.line()}", flush=True)
            rows.append([f"`{spec_path}`", s.total, s.ok, s.infeasible, s.errors, f"{s.seconds:.0f}",
                         f"{s.first_s:.0f}"])
            written = write_report(tmp / name / "results.db", tmp / name / "report", color=color)
            for fig, target in figures.items():
                src = next(p for p in written if p.stem == fig)
                shutil.copy(src, out.folder / target)
                print(f"wrote {out.folder / target}")
            if name == "fpga_vcu1525_bdwp" and screenshot(tmp / name / "report" / "report.html", out.folder / "sweep-report.png",
                                                          tmp / "profile"):
                print(f"wrote {out.folder / 'sweep-report.png'}")
    out.table(["spec", "points", "ok", "infeasible", "failed", "seconds (whole sweep)", "seconds to the first point"],
              rows, caption=f"Each sweep from an empty store, {os.cpu_count()} local workers, workloads traced and "
                            f"masked in the run:")
    out.write()


if __name__ == "__main__":
    main()
