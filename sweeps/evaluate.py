"""``evaluate(point) -> result``: one sweep point, pure apart from per-process caches.

A worker keeps what points share: each model traced once, each (model, sparsity, training) masked
once (on a local pool, once for all workers: :mod:`sweeps.prepared`), each accelerator document
built once, and (in :mod:`simulator.maskcache`) each masked layer's statistics per array geometry.
So a point costs what changes between points: the fold arithmetic of its design. Every failure is
caught and returned as the point's ``error``; nothing is raised.
"""
from __future__ import annotations

import copy
import json
import time

from simulator.lru import Lru

from .spec import Point

#: totals kept per point (SimResult.totals names), besides the FPGA columns
TOTALS = ["cycles", "compute_cycles", "stall_cycles", "energy_pj", "energy_mac_pj", "energy_sram_pj",
          "energy_dram_pj", "energy_meta_pj", "energy_static_pj", "latency_s", "dram_bytes", "sram_bytes",
          "meta_bytes", "utilization", "macs", "effective_macs", "executed_macs", "folds"]
DESIGN = ["dataflow", "rows", "cols", "pes", "clock_hz", "dram_bytes_per_cycle"]
#: LLM points (hf: models): the run's per-token figures (None for other points)
LLM = ["ttft_s", "tpot_mean_s", "tpot_last_s", "tokens_per_s", "energy_per_token_j", "dram_bytes_per_token",
       "bound"]
FPGA = ["fpga_device", "fpga_dsp", "fpga_bram36", "fpga_lut", "fpga_ff", "budget_dsp", "budget_bram36",
        "budget_lut", "budget_ff"]

#: the ``error`` text of an ok point with layers whose mapping does not fit the buffers
UNFIT_NOTE = "warning: the mapping does not fit the buffers"

_TRACED = Lru(3)       # (model, batch, seed) -> Workload
_MASKED = Lru(6)       # Point.workload_key -> Workload
_ACCELS = Lru(512)     # accelerator document JSON -> (Accelerator | None, fpga dict, reason)
_LLMS = Lru(2)         # (hf: model, seed) -> traced LlmModel (one block, scaled)


def _trace(model: str, batch: int, seed: int):
    # the same loader `sparsim simulate --model` uses, so a point equals that command
    from workloads.modelspec import load_model_spec
    return load_model_spec(model, batch=batch, seed=seed)


_WARM = []            # the engine started in this process (see _warm_up)


def _warm_up(point: Point) -> None:
    """Start the compiled engine (NumPy, Numba's compiler, the cached kernels: about a second of
    CPU) on a tiny layer with ``point``'s accelerator. A worker does it while it waits for a
    workload another worker is tracing or masking, instead of after; once per process, and a
    failure here is only a lost head start (the point itself reports its errors)."""
    if _WARM:
        return
    _WARM.append(True)
    try:
        acc = accelerator_for(point.accelerator_doc)[0]
        if acc is None:
            return
        import numpy as np

        from simulator.engine import simulate_columns
        from workloads import Layer, LayerKind, WeightLayout, Workload
        weight = np.arange(1.0, 65.0, dtype=np.float32).reshape(1, 8, 8)
        layer = Layer(name="warm-up", kind=LayerKind.MATMUL, m=8, n=8, k=8, weight_name="warm-up.weight",
                      weight=weight, weight_layout=WeightLayout.KN)
        simulate_columns(Workload(name="warm-up", layers=(layer,)).sparsify("2:4"), acc)
    except Exception:                           # pragma: no cover - the point's own run reports it
        pass


def workload_for(point: Point, cache=None):
    """The masked (and, for training, expanded) workload of ``point``, as `sparsim simulate` builds it.
    ``cache``: a folder where the local workers share prepared workloads (:mod:`sweeps.prepared`)."""
    from . import prepared
    model, batch, seed = point.model, point.batch, point.seed

    def waiting():
        _warm_up(point)

    def trace():
        if cache is None:
            return _trace(model, batch, seed)
        return prepared.traced(cache, model, batch, seed, lambda: _trace(model, batch, seed), waiting)

    def mask():
        wl = _TRACED.get_or_make((model, batch, seed, point.model_sources), trace)
        sp = point.sparsity
        wl = wl.sparsify(dict(sp) if isinstance(sp, tuple) else sp)
        if point.training:
            wl = wl.training(point.training)
        return wl

    def make():
        if cache is None:
            return mask()
        return prepared.masked(cache, model, batch, seed, point.training, point.sparsity, mask, waiting)
    return _MASKED.get_or_make(point.workload_key, make)


def accelerator_for(doc_json: str):
    """(Accelerator or None when it exceeds its FPGA budget, FPGA usage columns, infeasibility reason)."""
    def make():
        import accel
        doc = json.loads(doc_json)
        try:
            acc = accel.build(copy.deepcopy(doc))
            reason = None
        except accel.FpgaFitError as e:
            # build it with the budget lifted to count what it needs, then compare with the real budget
            lifted = copy.deepcopy(doc)
            lifted["fpga"].update(dsp=1 << 40, bram36=1 << 40, lut=1 << 40, ff=1 << 40)
            acc, reason = accel.build(lifted), str(e)
        fpga = dict.fromkeys(FPGA)
        if acc.fpga is not None:
            u = accel.fpga_usage(acc)
            budget = doc["fpga"]
            fpga.update(fpga_device=acc.fpga.device, fpga_dsp=u.dsp, fpga_bram36=u.bram36, fpga_lut=u.lut,
                        fpga_ff=u.ff, budget_dsp=budget["dsp"], budget_bram36=budget["bram36"],
                        budget_lut=budget["lut"], budget_ff=budget["ff"])
        design = {"dataflow": acc.compute.dataflow.value, "rows": acc.compute.rows, "cols": acc.compute.cols,
                  "pes": acc.compute.pes, "clock_hz": acc.compute.clock_hz,
                  "dram_bytes_per_cycle": acc.dram_bytes_per_cycle}
        return (None if reason else acc), {**fpga, **design}, reason
    return _ACCELS.get_or_make(doc_json, make)


def evaluate(point: Point, cache=None) -> dict:
    """Simulate one point. Returns ``{"key", "status" (ok | infeasible | error), "error", totals...,
    FPGA and design columns, "elapsed_s", "layers": {simulator column: [its value per layer]}}``
    (columns travel from a worker to the store in about half the bytes and CPU of one dict per
    layer); never raises. ``cache``: see
    :func:`workload_for`."""
    t0 = time.perf_counter()
    out = {"key": point.key, "status": "ok", "error": None, "layers": {}}
    out.update(dict.fromkeys(TOTALS + DESIGN + FPGA + LLM))
    try:
        acc, extra, reason = accelerator_for(point.accelerator_doc)
        out.update(extra)
        if reason is not None:
            out.update(status="infeasible", error=reason)
        elif point.llm:
            out.update(_evaluate_llm(point, acc))
        else:
            from simulator.engine import simulate_columns
            # the values `simulate` puts in its SimResult, without building its DataFrame
            unfit: list = []
            columns, totals = simulate_columns(workload_for(point, cache), acc, unfit=unfit)
            out.update({k: totals[k] for k in TOTALS})
            out["layers"] = columns
            if unfit:       # an ok point, flagged: the numbers are not what this hardware can do
                out["error"] = (f"{UNFIT_NOTE} ({len(unfit)} layers: {', '.join(unfit[:5])}"
                                f"{' ...' if len(unfit) > 5 else ''})")
    except Exception as e:                      # a failing point is recorded, never stops the sweep
        out.update(status="error", error=f"{type(e).__name__}: {e}", layers={})
    out["elapsed_s"] = time.perf_counter() - t0
    return out


def _evaluate_llm(point: Point, acc) -> dict:
    """An hf: model's point: `sparsim llm` at the point's batch and LLM axes; the totals are its
    phase's (prefill, or the whole decode), the LLM columns the run's; no per-layer rows."""
    from simulator.llm import run_llm
    from workloads.hf import load_llm
    llm = dict(point.llm)
    model = _LLMS.get_or_make((point.model, point.seed), lambda: load_llm(point.model, blocks=1, seed=point.seed))
    sp = point.sparsity
    model = model.sparsify(dict(sp) if isinstance(sp, tuple) else sp)
    if llm["weight_bits"] != 16:
        model = model.with_weight_bits(llm["weight_bits"])
    model = model.with_kv_bits(llm["kv_bits"])
    if llm["act_sparsity"] is not None:
        model = model.with_act_sparsity(llm["act_sparsity"])
    run = run_llm(model, acc, point.batch, llm["prompt"], llm["generate"])
    cost = run.prefill if llm["phase"] == "prefill" else run.decode
    cycles = int(round(cost.cycles))
    compute = int(round(cost.compute_cycles))
    return {"cycles": cycles, "compute_cycles": compute, "stall_cycles": max(0, cycles - compute),
            "energy_pj": cost.energy_pj, "latency_s": cost.cycles / acc.compute.clock_hz,
            "dram_bytes": cost.dram_bytes, "macs": int(round(cost.macs)),
            **{k: v for k, v in run.row().items() if k in LLM}}


def evaluate_batch(points: list[Point], cache=None) -> list[dict]:
    """Several points in one task (fewer round trips to the pool or the scheduler)."""
    return [evaluate(p, cache) for p in points]
