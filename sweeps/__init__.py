"""sweeps: spec (YAML grid) -> points -> runner (local pool | Dask) -> results store -> report.

    from sweeps import load_spec, run_sweep, load_results
    spec = load_spec("examples/sweep.yaml")
    run_sweep(spec, "results.db", workers=2)          # resumable; re-run skips finished points
    points, layers = load_results("results.db")       # pandas DataFrames

Heavy modules (torch, numba, dask, plotly) load on first use.
"""
from .errors import StoreError, SweepError, SweepSpecError
from .spec import Point, Spec, load_spec

__all__ = ["Point", "Spec", "load_spec", "run_sweep", "evaluate", "load_results", "write_report",
           "SweepError", "SweepSpecError", "StoreError"]


def __getattr__(name):
    if name == "run_sweep":
        from .runner import run_sweep
        return run_sweep
    if name == "evaluate":
        from .evaluate import evaluate
        return evaluate
    if name == "load_results":
        from .store import load_results
        return load_results
    if name == "write_report":
        from .report import write_report
        return write_report
    raise AttributeError(f"module 'sweeps' has no attribute {name!r}")
