"""The one-import Python API: each function composes the stages, one commented line each."""
from __future__ import annotations

from pathlib import Path

from workloads import Workload
# zoo names and path/to/file.py:build_fn, checked and seeded the same way for every command
from workloads.modelspec import MAX_TRACE_BATCH, build_model_spec, load_model_spec, trace_zoo  # noqa: F401


def trace(model, example_inputs, batch: int | None = None, ignore_ops=(), copy_weights: bool = True) -> Workload:
    """Trace a ``torch.nn.Module`` on example inputs into a :class:`workloads.Workload`
    (``copy_weights=False``: share the parameters' memory, for a model that is not changed afterwards)."""
    from workloads.tracer import trace as _trace
    return _trace(model, example_inputs, batch=batch, ignore_ops=ignore_ops, copy_weights=copy_weights)


def zoo_names() -> list[str]:
    from workloads import zoo
    return zoo.names()


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


def search(workload, accel_or_name, objective: str = "pareto", budget: float | None = None,
           candidates=None, pins=(), per_layer=None, proxy: str = "magnitude",
           mask_score: str = "magnitude",
           evals: int = 5000, seed: int = 0, joint=None, model=None, inputs=None, batch: int = 1,
           calib_rows: int = 256, baseline_density: float = 0.5, progress: bool = False):
    """Choose per-layer sparsity against simulated cost; returns a :class:`search.SearchResult`.

    ``workload``: a Workload (pass ``model`` and ``inputs`` for the wanda / reconstruction proxies),
    a zoo name or ``path/to/file.py:build_fn`` (the model is built, traced, and run once on its
    example inputs for calibration). ``objective``: ``latency`` / ``energy`` (exact choice within
    ``budget`` x the dense model's cycles / energy; default 0.6) or ``pareto`` (NSGA-II, ``evals``
    evaluations, front over proxy, cycles and energy). ``candidates``: patterns per layer (dense is
    always one; default ``search.DEFAULT_CANDIDATES``: dense, 2:4, 1:4, 2:8 and unstructured 0.7, 0.5,
    0.3); ``pins``: layer globs kept dense; ``per_layer``: ``{layer glob: candidates}`` for
    the layers a glob matches (first glob wins); ``proxy``: magnitude | wanda | reconstruction;
    ``mask_score``: masks inside a pattern chosen by magnitude or by Wanda's |W|·||x||; ``joint``:
    hardware axes (``{"rows": [16, 32], "dataflow": ["ws", "os"]}`` or ``"rows=16,32 dataflow=ws,os"``).
    """
    from search.candidates import DEFAULT_CANDIDATES
    from search.run import run_search
    if candidates is None:
        candidates = DEFAULT_CANDIDATES
    if isinstance(workload, str):
        model, inputs, name, traced_batch = build_model_spec(workload, batch=batch, seed=0)  # the model
        workload = trace(model, inputs, batch=traced_batch).replace(name=name)               # its layers
    if not workload.layers:
        from search.errors import SearchError
        raise SearchError(f"model '{workload.name}' has no GEMM layers (convolution, linear, matmul, attention): "
                          f"nothing to choose sparsity for")
    acc = accelerator(accel_or_name)                                                          # the hardware
    return run_search(workload, acc, objective=objective, budget=budget, candidates=candidates, pins=pins,
                      per_layer=per_layer, proxy=proxy, mask_score=mask_score, evals=evals, seed=seed, joint=joint,
                      model=model, inputs=inputs, calib_rows=calib_rows, baseline_density=baseline_density,
                      progress=progress)                                                      # tables -> front


def load_results(path):
    """A sweep's results store as ``(points, layers)`` pandas DataFrames (see :func:`sweeps.store.load_results`)."""
    from sweeps.store import load_results as _load
    return _load(path)


def llm_model(spec, blocks: int | None = 1, seed: int = 0, sparsity=None, weight_bits=None, group_size: int = 128,
              kv_bits: int = 16, act_sparsity=None, moe_routing=None):
    """An LLM ready for :func:`run_llm`: ``spec`` is ``hf:NAME``, ``hf:/path`` or an in-memory
    ``transformers`` causal LM; ``blocks`` of its identical blocks traced (None: all); then its
    weight pattern (blocks' linear layers, or ``{layer glob: pattern}``), weight and KV bits,
    TEAL-style activation density and MoE routing (see :class:`workloads.llm.LlmModel`)."""
    from workloads.hf import from_model, load_llm
    if isinstance(spec, str):
        model = load_llm(spec, blocks=blocks, seed=seed)                        # config -> seeded model -> traced
    else:
        model = from_model(spec, blocks=blocks, seed=seed)                      # an in-memory model, traced
    if sparsity is not None:
        model = model.sparsify(sparsity)                                        # weight masks
    if weight_bits is not None:
        model = model.with_weight_bits(weight_bits, group_size=group_size)      # weight storage
    model = model.with_kv_bits(kv_bits)                                         # KV-cache storage
    if act_sparsity is not None:
        model = model.with_act_sparsity(act_sparsity)                           # activation thresholds
    if moe_routing is not None:
        model = model.with_routing(moe_routing)                                 # expert routing
    return model


def run_llm(model, accel_or_name, batch: int, prompt: int, generate: int, detail: bool = False,
            on_chip: bool = False):
    """Prefill + decode of an :func:`llm_model` at one batch; see :func:`simulator.llm.run_llm`
    (``on_chip``: weights, then the KV cache, kept in the buffer across decode steps as they fit)."""
    from simulator.llm import run_llm as _run
    return _run(model, accelerator(accel_or_name), batch, prompt, generate, detail=detail, on_chip=on_chip)
