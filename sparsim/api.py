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
    path_s, sep, fn_name = spec.rpartition(":")
    if not sep or not path_s.endswith(".py"):
        return trace_zoo(spec, batch=batch, seed=seed)
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
    return trace(model, inputs, batch=None if not takes_batch else batch).replace(name=f"{path.stem}:{fn_name}")


def accelerator(name_or_path):
    """An :class:`accel.Accelerator` from a preset name, a ``.yaml`` description or a SCALE-Sim ``.cfg``."""
    import accel
    return accel.load(name_or_path)


def simulate(workload: Workload, accel_or_name, engine: str = "fast", dataflow=None, trace: bool = False):
    """Simulate ``workload`` on an accelerator (object, preset name or file); returns a SimResult.
    ``engine="event"`` runs the SimPy model (``trace=True`` keeps its per-tile timeline)."""
    from simulator import simulate as _simulate
    acc = accelerator(accel_or_name)                              # the hardware
    return _simulate(workload, acc, engine=engine, dataflow=dataflow, trace=trace)  # per-layer cycles and energy


def load_workload(path) -> Workload:
    """A saved workload (``.json``) or a SCALE-Sim topology (``.csv``)."""
    p = Path(path)
    if p.suffix.lower() == ".csv":
        return Workload.from_scalesim_csv(p)
    return Workload.load(p)
