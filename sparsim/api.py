"""The one-import Python API: each function composes the stages, one commented line each."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from workloads import ModelNotFoundError, Workload


def trace(model, example_inputs, batch: int | None = None, ignore_ops=()) -> Workload:
    """Trace a ``torch.nn.Module`` on example inputs into a :class:`workloads.Workload`."""
    from workloads.tracer import trace as _trace
    return _trace(model, example_inputs, batch=batch, ignore_ops=ignore_ops)


def zoo_names() -> list[str]:
    from workloads import zoo
    return zoo.names()


def trace_zoo(name: str, batch: int = 1, seed: int = 0) -> Workload:
    """Build zoo model ``name`` (seeded weights) and trace it at ``batch``."""
    from workloads import zoo
    model, inputs = zoo.build(name, seed=seed, batch=batch)   # the model, in code
    return trace(model, inputs, batch=batch).replace(name=name)  # its GEMM layers


def load_model_spec(spec: str, batch: int = 1, seed: int = 0) -> Workload:
    """Trace a zoo name, or ``path/to/file.py:build_fn`` where ``build_fn(batch=...)`` (or
    ``build_fn()``) returns ``(model, example_inputs)``."""
    model, inputs, name, traced_batch = build_model_spec(spec, batch=batch, seed=seed)
    return trace(model, inputs, batch=traced_batch).replace(name=name)


def build_model_spec(spec: str, batch: int = 1, seed: int = 0):
    """``(model, example_inputs, name, batch or None)`` for a zoo name or ``path/to/file.py:build_fn``."""
    path_s, sep, fn_name = spec.rpartition(":")
    if not sep or not path_s.endswith(".py"):
        from workloads import zoo
        model, inputs = zoo.build(spec, seed=seed, batch=batch)
        return model, inputs, spec, batch
    path = Path(path_s)
    if not path.is_file():
        raise ModelNotFoundError(f"--model {spec}: file {path} does not exist")
    mod_name = f"_sparsim_user_model_{abs(hash(str(path.resolve())))}"
    loader = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(loader)
    sys.modules[mod_name] = module
    try:
        loader.loader.exec_module(module)
    except Exception as e:
        raise ModelNotFoundError(f"--model {spec}: importing {path} failed: {type(e).__name__}: {e}") from e
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise ModelNotFoundError(f"--model {spec}: {path} has no function '{fn_name}'")
    import inspect
    try:
        takes_batch = "batch" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes_batch = False
    try:
        built = fn(batch=batch) if takes_batch else fn()
    except Exception as e:
        raise ModelNotFoundError(f"--model {spec}: {fn_name}() failed: {type(e).__name__}: {e}") from e
    if not (isinstance(built, tuple) and len(built) == 2):
        raise ModelNotFoundError(f"--model {spec}: {fn_name}() must return (model, example_inputs), "
                                 f"got {type(built).__name__}")
    model, inputs = built
    return model, inputs, f"{path.stem}:{fn_name}", (batch if takes_batch else None)


def accelerator(name_or_path):
    """An :class:`accel.Accelerator` from a preset name, a ``.yaml`` description or a SCALE-Sim ``.cfg``."""
    import accel
    return accel.load(name_or_path)


def simulate(workload: Workload, accel_or_name, engine: str = "fast", dataflow=None):
    """Simulate ``workload`` on an accelerator (object, preset name or file); returns a SimResult."""
    from simulator import simulate as _simulate
    acc = accelerator(accel_or_name)                              # the hardware
    return _simulate(workload, acc, engine=engine, dataflow=dataflow)  # per-layer cycles and energy


def load_workload(path) -> Workload:
    """A saved workload (``.json``) or a SCALE-Sim topology (``.csv``)."""
    p = Path(path)
    if p.suffix.lower() == ".csv":
        return Workload.from_scalesim_csv(p)
    return Workload.load(p)


def search(workload, accel_or_name, objective: str = "pareto", budget: float | None = None,
           candidates=("dense", "2:4", "1:4"), pins=(), per_layer=None, proxy: str = "magnitude",
           mask_score: str = "magnitude",
           evals: int = 5000, seed: int = 0, joint=None, model=None, inputs=None, batch: int = 1,
           calib_rows: int = 256, baseline_density: float = 0.5, progress: bool = False):
    """Choose per-layer sparsity against simulated cost; returns a :class:`search.SearchResult`.

    ``workload``: a Workload (pass ``model`` and ``inputs`` for the wanda / reconstruction proxies),
    a zoo name or ``path/to/file.py:build_fn`` (the model is built, traced, and run once on its
    example inputs for calibration). ``objective``: ``latency`` / ``energy`` (exact choice within
    ``budget`` x the dense model's cycles / energy; default 0.6) or ``pareto`` (NSGA-II, ``evals``
    evaluations, front over proxy, cycles and energy). ``candidates``: patterns per layer (dense is
    always one); ``pins``: layer globs kept dense; ``per_layer``: ``{layer glob: candidates}`` for
    the layers a glob matches (first glob wins); ``proxy``: magnitude | wanda | reconstruction;
    ``mask_score``: masks inside a pattern chosen by magnitude or by Wanda's |W|·||x||; ``joint``:
    hardware axes (``{"rows": [16, 32], "dataflow": ["ws", "os"]}`` or ``"rows=16,32 dataflow=ws,os"``).
    """
    from search.run import run_search
    if isinstance(workload, str):
        model, inputs, name, traced_batch = build_model_spec(workload, batch=batch, seed=0)  # the model
        workload = trace(model, inputs, batch=traced_batch).replace(name=name)               # its layers
    acc = accelerator(accel_or_name)                                                          # the hardware
    return run_search(workload, acc, objective=objective, budget=budget, candidates=candidates, pins=pins,
                      per_layer=per_layer, proxy=proxy, mask_score=mask_score, evals=evals, seed=seed, joint=joint,
                      model=model, inputs=inputs, calib_rows=calib_rows, baseline_density=baseline_density,
                      progress=progress)                                                      # tables -> front
