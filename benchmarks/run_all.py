"""Run every benchmark in this folder and print its numbers: `make bench`."""
import pathlib
import runpy

here = pathlib.Path(__file__).parent
for path in sorted(here.glob("bench_*.py")):
    print(f"== {path.name}")
    runpy.run_path(str(path), run_name="__main__")
    print()
