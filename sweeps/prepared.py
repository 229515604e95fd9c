"""Workloads prepared once on disk and shared by a sweep's local workers (and by later runs).

Tracing a model needs torch (seconds to import) and masking it takes about a second per pattern;
done in every worker, that start-up is paid once per worker. Here the first process that needs a
traced model or a masked workload makes it, under a file lock, and writes it next to the results
store (``<results folder>/.sparsim-cache/workloads/``); every other process waits for the lock and
loads the file, without importing torch. A masked workload is kept without its weight values (the
engine reads only the masks; a layer keeps its weight's name, so it still counts as a weight layer)
and with its masks packed to bits.

Files are named by a hash of what decides their content: the model name (and for ``file.py:fn`` the
bytes of that file and of the modules it imports from its folder), batch, seed, training mode,
sparsity, the versions of sparsim, torch and NumPy, and the source of the ``workloads`` package. A
file is written to a temporary name and renamed, so a killed process leaves no half file; one that
cannot be read is made again. The folder can be deleted at any time.

Only the local process pool uses this: Dask workers may run on hosts that share no disk, so they
trace and mask in memory as before (:mod:`sweeps.evaluate`).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path

FORMAT = 2
FOLDER = ".sparsim-cache"


def cache_folder(out) -> Path:
    """Where the prepared workloads of the sweep writing ``out`` live."""
    return Path(out).resolve().parent / FOLDER / "workloads"


@functools.lru_cache(maxsize=1)
def _versions() -> dict:
    from importlib import metadata

    import numpy as np

    import workloads

    from .spec import sparsim_version
    # the workloads package's own code too: an edited tracer or pattern must not reuse old files
    code = hashlib.sha256()
    for f in sorted(Path(workloads.__file__).parent.rglob("*.py")):
        code.update(f.read_bytes())
    out = {"format": FORMAT, "sparsim": sparsim_version(), "workloads_code": code.hexdigest(), "numpy": np.__version__}
    try:
        out["torch"] = metadata.version("torch")
    except metadata.PackageNotFoundError:   # pragma: no cover - torch is a dependency
        out["torch"] = None
    return out


def _model_identity(model: str) -> dict:
    """The model's name, and for ``path/to/file.py:fn`` the hashes of that file and of the modules it
    imports from its folder (:func:`workloads.modelspec.model_source_files`)."""
    from workloads.modelspec import model_source_files
    out = {"model": model}
    sources = model_source_files(model)
    if sources:
        out["sources"] = sources
    return out


def _name(kind: str, identity: dict) -> str:
    text = json.dumps({"kind": kind, **identity, **_versions()}, sort_keys=True, default=repr)
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


@contextlib.contextmanager
def _locked(path: Path, while_waiting=None):
    """Hold an exclusive lock on ``path``; when another process holds it, call ``while_waiting()``
    (work this process needs anyway) before waiting for it."""
    try:
        import fcntl
    except ImportError:                      # pragma: no cover - no POSIX locks: each process makes its own
        yield
        return
    with open(path, "a+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if while_waiting is not None:
                while_waiting()
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write(path: Path, obj) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read(path: Path):
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        return None
    except Exception:                        # a file this version cannot read: make it again
        return None


def _shared(folder: Path, name: str, make, pack, unpack, while_waiting=None):
    """The object stored under ``name`` in ``folder``, made by ``make()`` by the first process that
    needs it (the others call ``while_waiting()``, wait for it and load it). A folder that cannot
    be written only costs the sharing: the object is made here."""
    folder = Path(folder)
    path = folder / f"{name}.pkl"
    got = _read(path)
    if got is not None:
        return unpack(got)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = _locked(folder / f"{name}.lock", while_waiting)
        lock.__enter__()
    except OSError:
        return make()
    try:
        got = _read(path)                    # made by another process while this one waited
        if got is not None:
            return unpack(got)
        obj = make()
        with contextlib.suppress(OSError):
            _write(path, pack(obj))
        return obj
    finally:
        lock.__exit__(None, None, None)


def traced(folder: Path, model: str, batch: int, seed: int, make, while_waiting=None):
    """The traced model (weights included: masks are chosen on them)."""
    name = _name("traced", {**_model_identity(model), "batch": batch, "seed": seed})
    return _shared(folder, name, make, lambda wl: wl, lambda wl: wl, while_waiting)


def masked(folder: Path, model: str, batch: int, seed: int, training, sparsity, make, while_waiting=None):
    """The masked (and for training, expanded) workload, without weight values."""
    name = _name("masked", {**_model_identity(model), "batch": batch, "seed": seed, "training": training,
                            "sparsity": sparsity})
    return _shared(folder, name, make, _pack, _unpack, while_waiting)


def _pack(wl):
    """``wl`` without weight values (a layer whose weight has no name keeps it: without a name it
    would no longer count as a weight layer), masks as bits with the statistics the simulator
    reads of them (:func:`simulator.maskcache.statistics`: computed here once for every worker)."""
    import numpy as np

    from simulator import maskcache
    layers, masks = [], []
    for layer in wl.layers:
        keep = layer.weight if layer.weight_name is None else None
        mask = layer.mask
        masks.append(None if mask is None else (mask.shape, np.packbits(mask, axis=None),
                                                maskcache.statistics(layer)))
        layers.append(layer.replace(weight=keep, mask=None) if mask is not None or keep is not layer.weight
                      else layer)
    return wl.replace(layers=tuple(layers)), masks


def _unpack(packed):
    import numpy as np

    from simulator import maskcache
    wl, masks = packed
    for layer, m in zip(wl.layers, masks):
        if m is not None:
            shape, bits, stats = m
            size = int(np.prod(shape))
            # the layer was checked when it was made; its mask goes back as the same bool array
            object.__setattr__(layer, "mask", np.unpackbits(bits, count=size).reshape(shape).view(np.bool_))
            maskcache.seed(layer, stats)
    return wl
