"""Run every benchmark in this folder and print its numbers: `make bench`. Each script also writes
its tables (and figures) into docs/benchmarks/generated/, which the benchmark pages include."""
import pathlib
import runpy
import sys

here = pathlib.Path(__file__).parent
sys.path.insert(0, str(here))          # the scripts import benchmarks/docs_out.py, as they do run alone
# bench_scalesim.py installs SCALE-Sim into a side environment and runs for minutes, bench_llm.py builds
# LLM blocks of up to 5 GB for minutes, bench_front.py solves 200 MILPs on ResNet-50 and BERT-base
# (about 10 minutes), bench_llm_prune.py trains and prunes code_lm for several minutes a seed and
# bench_llmcompressor.py installs llmcompressor into a side environment (both say "not in run_all.py"):
# run them on their own.
ON_THEIR_OWN = {"bench_scalesim.py", "bench_llm.py", "bench_front.py", "bench_llm_prune.py", "bench_llmcompressor.py"}
for path in sorted(p for p in here.glob("bench_*.py") if p.name not in ON_THEIR_OWN):
    print(f"== {path.name}")
    runpy.run_path(str(path), run_name="__main__")
    print()
