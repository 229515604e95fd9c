"""search: Workload x Accelerator x objective -> masks and hardware on a Pareto front.

Stable API (issue 9; the pruning code of issue 10 builds on it)
---------------------------------------------------------------
``HardwareCost(workload, accelerator, candidates=("dense", "2:4", "1:4"), pins=(), per_layer=None,
importance=None, progress=False)`` builds, once, the simulator's cost of every (layer, candidate):

* ``cost.candidates`` (patterns; ``cost.candidate_names`` their text; index 0 is always ``dense``),
  ``cost.layer_names``, ``cost.allowed`` bool ``(L, C)`` and ``cost.options[l]`` (allowed indices;
  pinned layers and weightless layers allow only dense);
* ``cost.cycles`` int64 ``(L, C)``, ``cost.energy_pj`` and ``cost.dram_bytes`` float64 ``(L, C)``,
  ``cost.table(metric)``; ``cost.dense_totals`` (the dense model on this accelerator);
* ``cost.gemm_mask(l, c)`` / ``cost.mask(l, c)``: candidate ``c``'s mask of layer ``l`` in GEMM
  layout ``(groups, k, n)`` / in the parameter's own layout (None = dense);
  ``cost.pick_mask(l, pattern)`` picks a mask for any pattern the same way;
* ``cost.evaluate(pop)``: ``pop`` int ``(P, L)`` -> ``{"cycles", "energy_pj", "dram_bytes"}``
  arrays ``(P,)``, one NumPy gather; ``cost.evaluate_table(table, pop)`` sums any ``(L, C)`` table;
  ``cost.totals(assignment)`` for one (checked) assignment;
* ``cost.cost_of_mask(layer, mask)``: cycles / energy_pj / dram_bytes of one layer under an explicit
  mask in the parameter's layout (simulated now);
* ``cost.choose(proxy, budget, metric="cycles", method="exact"|"greedy")``: the assignment that
  maximizes ``sum proxy[l, a_l]`` (higher is better, any ``(L, C)`` table) within ``budget``
  (absolute units of ``metric``), exact multiple-choice knapsack (SciPy MILP) or HALP-style greedy;
* ``cost.apply(assignment)`` -> masked :class:`workloads.Workload` (simulates to the table sum),
  ``cost.masks(assignment)`` -> ``{parameter name: bool array}``, ``cost.patterns(assignment)``,
  ``cost.uniform(pattern)``, ``cost.min_cost(metric)``.

Layers that use one parameter (a tied head, a block called twice) are one decision variable:
``cost.var_of`` (layer -> variable), ``cost.leaders``, ``cost.ties``, ``cost.n_vars``,
``cost.var_table(table)`` (sums over each variable's layers), ``cost.expand(var_assignment)``,
``cost.restrict(layer, columns)``; every solver works on variables, ``check_assignment`` refuses
tied layers with different patterns. ``cost.pareto(proxy, metric)``: the complete exact front of
(proxy, metric) (Nemhauser-Ullmann merge, ``search.knapsack.pareto_front``).

``graph=search.channel_graph(model, inputs, workload)`` couples channel candidates along the model's
channel dependency graph (:mod:`search.channels`, :mod:`search.coupling`): ``channel:D`` on a conv
shrinks every layer that reads its channels, a residual group decides together; the tables are then
conditioned on input channel densities (``cost.J`` combinations, ``cost.width = C * J`` columns,
``cost.effective(pop)``, ``cost.table_eff(metric)``), ``choose`` is a MILP with linking variables,
``cost.repair(pop)`` makes any population feasible, and ``shrink_model`` removes the channels
from the PyTorch model (which then re-simulates to ``cost.totals``).

``importance={layer name: score}`` (broadcastable to ``(groups, k, n)``) picks masks on
``|W| * score`` instead of ``|W|`` (Wanda: ``score = ||x||`` per input feature).
``extra={layer name: patterns}`` adds candidates only that layer may take (columns after the
``cost.n_shared`` shared ones); the Pareto search puts the allocation baselines there
(``baselines.allocation_patterns``) and starts from them.

Around it: ``Proxy(kind, workload, calibration).table(cost)`` (magnitude / wanda / reconstruction,
``(L, C)``, higher is better, dense = 1), ``capture(model, inputs, workload)`` (calibration
activations), ``Problem`` + ``nsga2`` / ``random_search`` / ``exact_front`` (solvers over tables),
``baselines`` (uniform, global magnitude, LAMP, ERK), ``joint`` (hardware grids) and ``run_search``
(all of it, returning a ``SearchResult``; ``sparsim.search`` is its one-import form).

Errors are :class:`SearchError` (a ``ValueError``) with a message naming the input.
"""
from importlib import import_module

_EXPORTS = {
    "HardwareCost": "cost", "METRICS": "cost",
    "SearchError": "errors",
    "parse_candidates": "candidates", "DEFAULT_CANDIDATES": "candidates",
    "choose_exact": "knapsack", "choose_greedy": "knapsack",
    "Proxy": "proxies", "PROXIES": "proxies", "Calibration": "calibration", "capture": "calibration",
    "Problem": "algorithms", "nsga2": "algorithms", "random_search": "algorithms", "exact_front": "algorithms",
    "nondominated": "algorithms", "hypervolume": "algorithms",
    "SearchResult": "result", "FRONT_COLUMNS": "result", "run_search": "run",
    "channel_graph": "channels", "ChannelGraph": "channels", "shrink_model": "channels",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'search' has no attribute {name!r}")
