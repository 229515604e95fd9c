"""Run every benchmark in this folder and print its numbers: `make bench`. Each script also writes
its tables (and figures) into docs/benchmarks/generated/, which the benchmark pages include."""
import pathlib
import runpy
import sys

here = pathlib.Path(__file__).parent
sys.path.insert(0, str(here))          # the scripts import benchmarks/docs_out.py, as they do run alone
# bench_scalesim.py installs SCALE-Sim into a side environment and runs for minutes, bench_llm.py builds
# LLM blocks of up to 5 GB for minutes: run them on their own.
for path in sorted(p for p in here.glob("bench_*.py") if p.name not in ("bench_scalesim.py", "bench_llm.py")):
    print(f"== {path.name}")
    runpy.run_path(str(path), run_name="__main__")
    print()
