"""The one-import Python API: each function composes the stages, one commented line each."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from workloads import ModelNotFoundError, Workload


def trace(model, example_inputs, batch: int | None = None, ignore_ops=(), copy_weights: bool = True) -> Workload:
    """Trace a ``torch.nn.Module`` on example inputs into a :class:`workloads.Workload`
    (``copy_weights=False``: share the parameters' memory, for a model that is not changed afterwards)."""
    from workloads.tracer import trace as _trace
    return _trace(model, example_inputs, batch=batch, ignore_ops=ignore_ops, copy_weights=copy_weights)


def zoo_names() -> list[str]:
    from workloads import zoo
    return zoo.names()


def trace_zoo(name: str, batch: int = 1, seed: int = 0) -> Workload:
    """Build zoo model ``name`` (seeded weights) and trace it at ``batch``."""
    from workloads import zoo
    _check_batch(batch, f"model '{name}'")
    with _memory_errors(f"model '{name}' at batch {batch}"):
        model, inputs = zoo.build(name, seed=seed, batch=batch)   # the model, in code
        return trace(model, inputs, batch=batch, copy_weights=False).replace(name=name)  # its GEMM layers


#: Largest batch a model is traced at: tracing runs the model on real inputs of that many rows.
MAX_TRACE_BATCH = 1 << 20


def _check_batch(batch, where: str) -> None:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ModelNotFoundError(f"{where}: --batch must be a positive integer, got {batch!r}")
    if batch > MAX_TRACE_BATCH:
        raise ModelNotFoundError(f"{where}: --batch {batch} is above {MAX_TRACE_BATCH:,}: tracing runs the model "
                                 f"on example inputs of that many rows; trace at a smaller batch")


class _memory_errors:
    """Turn an allocation failure while building or running a model into a ModelNotFoundError."""

    def __init__(self, where: str):
        self.where = where

    def __enter__(self):
        return self

    def __exit__(self, typ, e, tb):
        if e is None:
            return False
        text = str(e)
        if isinstance(e, MemoryError) or "can't allocate memory" in text or "not enough memory" in text:
            raise ModelNotFoundError(f"{self.where}: out of memory while building or tracing the model "
                                     f"({text.splitlines()[-1][:160] if text else type(e).__name__}); "
                                     f"use a smaller --batch") from None
        return False


def _seeded(seed: int):
    """Seed torch's, NumPy's and Python's global generators for a user's build function, and put the
    generators back afterwards (so a run is reproducible without changing the caller's state)."""
    import contextlib
    import random

    import numpy as np
    import torch

    @contextlib.contextmanager
    def ctx():
        np_state, py_state = np.random.get_state(), random.getstate()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed % (1 << 32))
            random.seed(seed)
            try:
                yield
            finally:
                np.random.set_state(np_state)
                random.setstate(py_state)
    return ctx()


def load_model_spec(spec: str, batch: int | None = None, seed: int = 0) -> Workload:
    """Trace a zoo name, or ``path/to/file.py:build_fn`` where ``build_fn(batch=...)`` (or
    ``build_fn()``) returns ``(model, example_inputs)``.

    ``batch``: None means 1 for a zoo model and the example inputs' own batch for a build function;
    a build function without a ``batch`` parameter cannot honour another batch, which is refused.
    ``seed``: seeds torch's, NumPy's and Python's generators before the build function runs (the
    file's directory is on the import path meanwhile, so it can import modules that sit beside it).
    """
    path_s, sep, fn_name = spec.rpartition(":")
    if not sep or not path_s.endswith(".py"):
        if spec.endswith(".py") or "/" in spec or "\\" in spec:
            raise ModelNotFoundError(f"--model {spec}: a model file needs the name of the function that builds "
                                     f"the model: {spec}:build_fn, where build_fn(batch=...) returns "
                                     f"(model, example_inputs)")
        return trace_zoo(spec, batch=1 if batch is None else batch, seed=seed)
    where = f"--model {spec}"
    if batch is not None:
        _check_batch(batch, where)
    path = Path(path_s)
    if not path.is_file():
        raise ModelNotFoundError(f"{where}: file {path} does not exist")
    folder = str(path.resolve().parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)            # `import helper` from a module beside the model file
    try:
        return _trace_user_model(spec, path, fn_name, batch, seed, where)
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


def _trace_user_model(spec, path: Path, fn_name: str, batch, seed: int, where: str) -> Workload:
    mod_name = f"_sparsim_user_model_{abs(hash(str(path.resolve())))}"
    loader = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(loader)
    sys.modules[mod_name] = module
    try:
        with _seeded(seed):
            loader.loader.exec_module(module)
    except Exception as e:
        raise ModelNotFoundError(f"{where}: importing {path} failed: {type(e).__name__}: {e}") from e
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise ModelNotFoundError(f"{where}: {path} has no function '{fn_name}'")
    import inspect
    try:
        takes_batch = "batch" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes_batch = False
    with _memory_errors(f"{where} at batch {batch}"):
        try:
            with _seeded(seed):                   # the same seed gives the same weights and inputs
                built = fn(batch=1 if batch is None else batch) if takes_batch else fn()
        except Exception as e:
            if isinstance(e, MemoryError) or "can't allocate memory" in str(e):
                raise
            raise ModelNotFoundError(f"{where}: {fn_name}() failed: {type(e).__name__}: {e}") from e
        if not (isinstance(built, tuple) and len(built) == 2):
            raise ModelNotFoundError(f"{where}: {fn_name}() must return (model, example_inputs), "
                                     f"got {type(built).__name__}")
        model, inputs = built
        with _seeded(seed):
            wl = trace(model, inputs, batch=(1 if batch is None else batch) if takes_batch else None,
                       copy_weights=False)     # the model was built here and is dropped after
    if batch is not None and not takes_batch and wl.batch != batch:
        raise ModelNotFoundError(f"{where}: --batch {batch} cannot be applied: {fn_name}() takes no 'batch' "
                                 f"parameter, and its example inputs have batch {wl.batch}; add a batch "
                                 f"parameter to {fn_name}, or leave out --batch")
    return wl.replace(name=f"{path.stem}:{fn_name}")


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
