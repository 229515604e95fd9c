"""Run a sweep's points: in this process, on a local process pool, or on a Dask cluster.

Workers only compute (``evaluate_batch``); this process is the only writer of the store, one
transaction per point, so a run killed at any moment resumes from what it had written. Local
workers share each traced model and masked workload through files next to the store
(:mod:`sweeps.prepared`); Dask workers, which may share no disk, make their own.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from itertools import groupby

from . import prepared
from .errors import SweepError
from .evaluate import evaluate_batch
from .spec import Spec
from .store import Store


@dataclass
class SweepSummary:
    total: int          # points in the spec (after where)
    skipped: int        # already in the store
    ran: int
    ok: int
    infeasible: int
    errors: int
    dropped: int        # combinations the where filter removed
    seconds: float
    first_s: float = 0.0  # until the first point was written (workers starting, models traced)
    superseded: tuple = ()  # (axes, reason) of the stored rows this run replaced (see Store.supersede)

    def superseded_line(self, out) -> str | None:
        """One line naming what the run superseded, or None."""
        if not self.superseded:
            return None
        reasons = sorted({r for _, r in self.superseded})
        return (f"superseded {len(self.superseded)} stored point{'s' if len(self.superseded) != 1 else ''} "
                f"({'; '.join(reasons)}): moved to table 'superseded' of {out}, out of the results")

    def line(self) -> str:
        rate = self.ran / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.total} points ({self.dropped} dropped by where): {self.skipped} already done, ran "
                f"{self.ran} in {self.seconds:.1f} s ({rate:.1f} points/s): {self.ok} ok, "
                f"{self.infeasible} infeasible, {self.errors} failed")


def _tasks(points, workers: int) -> list[list]:
    """Points grouped by workload (so a worker's caches are reused), cut into tasks small enough to
    keep every worker busy and to lose little when the run is killed.

    A workload's first task prepares it (traces or masks the model, seconds), its other tasks only
    simulate; so the first tasks of ``workers`` workloads go first (workers starting together
    prepare different workloads), and the first task of workload ``i + workers`` goes just before
    the rest of workload ``i``: one worker prepares the next workload while the others simulate,
    and nobody waits for a workload another worker is still making."""
    order = sorted(points, key=lambda p: repr(p.workload_key))
    size = max(1, min(16, math.ceil(len(order) / max(1, workers * 8))))
    groups = []
    for _, group in groupby(order, key=lambda p: repr(p.workload_key)):
        group = list(group)
        groups.append([group[i:i + size] for i in range(0, len(group), size)])
    out = [g.pop(0) for g in groups[:workers]]
    for i, g in enumerate(groups):
        if i + workers < len(groups):
            out.append(groups[i + workers].pop(0))
        out.extend(g)
    return out


def run_sweep(spec: Spec, out, workers: int | None = None, scheduler: str | None = None,
              progress: bool = True) -> SweepSummary:
    """Run the points of ``spec`` that ``out`` does not hold yet.

    ``workers``: local processes (default: one per core; 0 runs in this process).
    ``scheduler``: a Dask scheduler address (``tcp://host:port``); then ``workers`` is ignored.
    """
    import time
    t0 = time.perf_counter()
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 0:
        raise SweepError(f"--workers: expected an integer >= 0, got {workers}")
    with Store(out) as store:
        store.set_meta("spec", spec.text)
        store.set_meta("axes", list(spec.axes))
        superseded = store.supersede(spec.points)
        done = store.finished_keys()
        todo = [p for p in spec.points if p.key not in done]
        by_key = {p.key: p for p in todo}
        counts = {"ok": 0, "infeasible": 0, "error": 0}
        bar = _bar(len(spec.points), len(spec.points) - len(todo), progress)

        first = []

        def record(results):
            if not first:
                first.append(time.perf_counter() - t0)
            for r in results:
                store.write(by_key[r["key"]], r)     # one transaction per point
                counts[r["status"]] += 1
            bar.update(len(results))
        try:
            if todo:
                if scheduler:
                    _run_dask(todo, scheduler, record)
                elif workers == 0:
                    for task in _tasks(todo, 1):
                        record(evaluate_batch(task, prepared.cache_folder(out)))
                else:
                    _run_pool(todo, workers, record, prepared.cache_folder(out))
        finally:
            bar.close()
    return SweepSummary(total=len(spec.points), skipped=len(spec.points) - len(todo), ran=sum(counts.values()),
                        ok=counts["ok"], infeasible=counts["infeasible"], errors=counts["error"],
                        dropped=spec.dropped, seconds=time.perf_counter() - t0, first_s=first[0] if first else 0.0,
                        superseded=tuple(superseded))


def _bar(total: int, initial: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit="pt", disable=not enabled, smoothing=0.1,
                dynamic_ncols=True, desc="sweep")


def _run_pool(todo, workers: int, record, cache) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    # spawn: workers start clean (no inherited threads or locks) and import what they need; each
    # traced model and masked workload is made by one of them and shared on disk (sweeps.prepared)
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_worker_start) as pool:
        futures = [pool.submit(evaluate_batch, t, cache) for t in _tasks(todo, workers)]
        try:
            for fut in as_completed(futures):
                record(fut.result())
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _worker_start() -> None:
    """In each local worker: end the process without tearing the interpreter down. Freeing a traced
    model, torch and Numba's compiler object by object costs a worker 0.6-1.5 s of CPU when the
    pool shuts down, which the sweep waits for; results are all sent by then. Registered first, so
    it runs after every other exit handler.

    And end the worker when the sweep process dies (``kill -9``, out of memory): a thread waits on
    the parent's sentinel, so no worker (and, once they are gone, no resource tracker) outlives it."""
    import atexit
    import multiprocessing as mp
    import threading
    atexit.register(_exit_now)
    parent = mp.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent.sentinel,), daemon=True,
                         name="sparsim-exit-with-parent").start()


def _exit_with_parent(sentinel) -> None:
    from multiprocessing.connection import wait
    wait([sentinel])            # readable once the parent process has ended
    os._exit(1)


def _exit_now() -> None:
    import sys
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(0)


def _run_dask(todo, scheduler: str, record) -> None:
    try:
        from dask.distributed import Client, as_completed
    except ImportError as e:  # pragma: no cover - dask is a dependency
        raise SweepError(f"--scheduler needs dask.distributed ({e})") from None
    try:
        client = Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as e:
        raise SweepError(f"--scheduler {scheduler}: cannot connect ({type(e).__name__}: {e})") from None
    try:
        n = max(1, len(client.scheduler_info().get("workers", {})))
        futures = client.map(evaluate_batch, _tasks(todo, n), pure=False)
        for fut in as_completed(futures):
            record(fut.result())
    finally:
        client.close()
