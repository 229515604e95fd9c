"""Models named on a command line or in a spec: a zoo name, or ``path/to/file.py:build_fn``.

``build_model_spec`` builds the model (seeded, its file's folder on the import path), ``load_model_spec``
also traces it; both check the batch up front and turn an allocation failure into one clear error.
The CLI, the search and the sweeps all come here, so a model name means the same thing everywhere.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from .errors import ModelNotFoundError
from .workload import Workload


def trace(model, example_inputs, batch=None, copy_weights: bool = True) -> Workload:
    from .tracer import trace as _trace
    return _trace(model, example_inputs, batch=batch, copy_weights=copy_weights)


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
    where = f"--model {spec}"
    with _model_file_on_path(spec):
        model, inputs, name, traced_batch = build_model_spec(spec, batch=batch, seed=seed)  # the model
        with _memory_errors(f"{where} at batch {batch}"), _seeded(seed):
            wl = trace(model, inputs, batch=traced_batch,
                       copy_weights=False).replace(name=name)  # its GEMM layers; the model is dropped after
    if batch is not None and traced_batch is None and wl.batch != batch:
        fn_name = spec.rpartition(":")[2]
        raise ModelNotFoundError(f"{where}: --batch {batch} cannot be applied: {fn_name}() takes no 'batch' "
                                 f"parameter, and its example inputs have batch {wl.batch}; add a batch "
                                 f"parameter to {fn_name}, or leave out --batch")
    return wl


class _model_file_on_path:
    """While a model file is imported, built and traced, its directory is on ``sys.path`` (so it can
    ``import helper`` from a module beside it); removed afterwards. A zoo name changes nothing."""

    def __init__(self, spec: str):
        path_s, sep, _ = spec.rpartition(":")
        self.folder = str(Path(path_s).resolve().parent) if sep and path_s.endswith(".py") else None
        self.added = False

    def __enter__(self):
        if self.folder is not None and self.folder not in sys.path:
            sys.path.insert(0, self.folder)
            self.added = True
        return self

    def __exit__(self, *exc):
        if self.added and self.folder in sys.path:
            sys.path.remove(self.folder)
        return False


def build_model_spec(spec: str, batch: int | None = None, seed: int = 0):
    """``(model, example_inputs, name, batch to trace at)`` for a zoo name or ``path/to/file.py:build_fn``;
    the batch is None when a build function takes no ``batch`` parameter (its inputs say it). Checks and
    seeding as :func:`load_model_spec` says."""
    path_s, sep, fn_name = spec.rpartition(":")
    if not sep or not path_s.endswith(".py"):
        if spec.endswith(".py") or "/" in spec or "\\" in spec:
            raise ModelNotFoundError(f"--model {spec}: a model file needs the name of the function that builds "
                                     f"the model: {spec}:build_fn, where build_fn(batch=...) returns "
                                     f"(model, example_inputs)")
        from workloads import zoo
        b = 1 if batch is None else batch
        _check_batch(b, f"model '{spec}'")
        with _memory_errors(f"model '{spec}' at batch {b}"):
            model, inputs = zoo.build(spec, seed=seed, batch=b)
        return model, inputs, spec, b
    where = f"--model {spec}"
    if batch is not None:
        _check_batch(batch, where)
    path = Path(path_s)
    if not path.is_file():
        raise ModelNotFoundError(f"{where}: file {path} does not exist")
    with _model_file_on_path(spec):
        return _build_user_model(path, fn_name, batch, seed, where)


#: top-level packages of sparsim itself: never imported afresh for a model file beside them
_OWN_PACKAGES = frozenset({"workloads", "accel", "simulator", "search", "sweeps", "sparsim", "hdl"})


def _forget_local_modules(spec: str) -> None:
    """Drop from ``sys.modules`` the modules a model file imports from its folder (by their names:
    ``helper``, ``pkg.sub``), so that a build in a long-running process (a sweep run in process, a
    notebook) imports their current content, and not a same-named module of another model's folder."""
    path_s = spec.rpartition(":")[0]
    folder = Path(path_s).resolve().parent
    for f in model_source_files(spec):
        parts = list(Path(f).relative_to(folder).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts and parts[0] not in _OWN_PACKAGES:
            sys.modules.pop(".".join(parts), None)


def _build_user_model(path: Path, fn_name: str, batch, seed: int, where: str):
    _forget_local_modules(f"{path}:{fn_name}")
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
    return model, inputs, f"{path.stem}:{fn_name}", ((1 if batch is None else batch) if takes_batch else None)


def model_source_files(spec: str) -> dict[str, str]:
    """``{absolute path: sha256 of its bytes}`` of every file a ``path/to/file.py:build_fn`` model is
    built from: the file itself and the Python modules it imports from its own folder (the folder is
    on the import path while it is built), followed transitively; a local package counts with every
    ``.py`` file under it. A zoo name gives ``{}`` (its code is sparsim's: the version names it); an
    ``hf:`` model gives :func:`workloads.hf.hf_source_files`.

    Sweep stores key their points by these hashes, so an edited model file or helper module never
    reuses an old result. Data files a build function opens are not followed."""
    import ast
    import hashlib
    if spec.startswith("hf:"):
        from .hf import hf_source_files
        return hf_source_files(spec)
    path_s, sep, _ = spec.rpartition(":")
    if not (sep and path_s.endswith(".py")) or not Path(path_s).is_file():
        return {}
    first = Path(path_s).resolve()
    folder = first.parent
    out: dict[str, str] = {}
    todo = [first]
    while todo:
        f = todo.pop()
        if str(f) in out:
            continue
        data = f.read_bytes()
        out[str(f)] = hashlib.sha256(data).hexdigest()
        if f.suffix != ".py":
            continue
        try:
            tree = ast.parse(data, filename=str(f))
        except (SyntaxError, ValueError):
            continue                        # building it will say what is wrong
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = f.parent if node.level else folder
                for _ in range(max(0, node.level - 1)):
                    base = base.parent
                if not _inside(base, folder):
                    continue
                prefix = ".".join(base.relative_to(folder).parts + tuple(filter(None, (node.module or "").split("."))))
                names = ([prefix] if prefix else []) + [f"{prefix}.{a.name}" if prefix else a.name for a in node.names]
            else:
                continue
            for name in names:
                todo.extend(_local_module_files(folder, name))
    return dict(sorted(out.items()))


def _inside(p: Path, folder: Path) -> bool:
    try:
        p.relative_to(folder)
        return True
    except ValueError:
        return False


def _local_module_files(folder: Path, dotted: str) -> list[Path]:
    """The files of module ``dotted`` (and of each package on its way) found under ``folder``."""
    parts = [p for p in dotted.split(".") if p]
    found: list[Path] = []
    for i in range(1, len(parts) + 1):
        base = folder.joinpath(*parts[:i])
        if base.with_suffix(".py").is_file():
            found.append(base.with_suffix(".py").resolve())
            break
        if (base / "__init__.py").is_file():
            if i == len(parts):
                found.extend(sorted(p.resolve() for p in base.rglob("*.py")))
            else:
                found.append((base / "__init__.py").resolve())
            continue
        break
    return found

