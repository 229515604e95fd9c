"""``HardwareAwareSparsifier``: a ``torch.ao.pruning`` sparsifier whose masks are chosen by what they
cost on an accelerator.

It is a :class:`torch.ao.pruning.BaseSparsifier`: ``prepare(model, config)`` puts a ``FakeSparsity``
mask parametrization on every configured weight (by default every weight :mod:`search.torchmask`
covers: ``nn.Conv1d/2d/3d``, ``nn.Linear``, ``nn.MultiheadAttention``'s ``in_proj_weight``,
``transformers``' ``Conv1D``; the traced weights it does not cover are listed in ``skipped`` and
named in a warning), ``step()``
recomputes the masks from the current dense weights, ``squash_mask()`` folds them into the weights,
``state_dict()`` / ``load_state_dict()`` save and restore masks and choices. What differs is
``step()``: it builds the simulator's cost tables (:class:`search.HardwareCost`) for the current
weights and picks one candidate pattern per layer so that the model's cycles (or energy) are at most
``budget`` x the dense model's, keeping as much weight magnitude as it can (exact multiple-choice
knapsack). Masks are picked in the simulator's reduction order (:mod:`search.torchmask`).

Gradual pruning: every group carries ``sparsity_level`` = 1 - budget, the key torch's schedulers
drive, so :class:`torch.ao.pruning.scheduler.CubicSL` (Zhu & Gupta, 2017) tightens the budget from
1 (dense) to the final one with the cubic schedule. ``step()`` uses ``1 - max(sparsity_level)`` over
the groups as the budget of that step.

Config keys per module (besides ``tensor_fqn``): ``candidates`` (this layer's patterns, a subset of
the sparsifier's), ``pattern`` (pin this layer to one pattern; ``dense`` keeps it dense).
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.ao.pruning import BaseSparsifier
from torch.nn.utils import parametrize

from workloads import Workload, parse_pattern

from .errors import SearchError
from .torchmask import layout_of, mask_for, prunable_tensors, skipped_tensors, tensor_of

OBJECTIVES = {"latency": "cycles", "energy": "energy_pj"}

#: ``choose(cost, proxy, budget, metric) -> assignment``: how a step picks one candidate per layer.
ChooseFn = Callable[["object", np.ndarray, float, str], np.ndarray]


def retained_magnitude(cost) -> np.ndarray:
    """Proxy table ``(L, C)``: minus the fraction of a layer's squared weight magnitude that candidate
    ``c``'s mask drops (0 for dense, higher is better). Each layer counts once, whatever its size, so
    a small layer is not pruned away because it holds few weights."""
    L, C = cost.allowed.shape
    # coupled channel groups (``cost.J > 1``): a consumer also loses what its producers' channel
    # pruning removes, in the conditioned columns ``c + C * j`` (:meth:`HardwareCost.cells`)
    out = np.zeros((L, C * cost.J))
    for li, layer in enumerate(cost.workload.layers):
        w = layer.gemm_weight()
        if w is None:
            continue
        e = np.square(w.astype(np.float64))
        total = float(e.sum()) or 1.0
        for c in cost.options[li]:
            gm = cost.gemm_mask(li, int(c))
            if gm is not None:
                out[li, c + C * np.arange(cost.J)] = -float(e[~gm].sum()) / total
        for col, gm in cost.cells(li):
            out[li, col] = -float(e[~gm].sum()) / total
    return out


def loss_sensitivity(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable:
    """Proxy factory: ``loss_sensitivity(model, x, y)(cost) -> (L, C)`` table of minus the rise in
    cross-entropy on ``(x, y)`` when layer ``l`` alone takes candidate ``c``'s mask (all other layers
    dense, no fine-tuning; 0 for dense, higher is better). This is one-shot per-layer sensitivity
    analysis: it knows which layers the network needs, which weight magnitude does not (a last layer
    with few, large weights can hold little of its magnitude in the dropped half and still carry the
    decision). Pass *training* data, never the test split. Costs ``sum of options`` forward passes.

    ``model`` may carry this sparsifier's mask parametrizations: the dense ``original`` weights are
    what it measures (on a copy; ``model`` is not changed)."""
    import copy

    import torch.nn.functional as F

    def table(cost) -> np.ndarray:
        # A copy whose masks are all ones. (Removing the parametrizations of a deep copy would break
        # the original: both share the parametrized class the property lives on.)
        net = copy.deepcopy(model)
        params = dict(net.named_parameters())
        for name, mod in net.named_modules():
            if parametrize.is_parametrized(mod, "weight"):
                for p in mod.parametrizations.weight:
                    if isinstance(getattr(p, "mask", None), torch.Tensor):
                        p.mask.fill_(True)
                params[f"{name}.weight" if name else "weight"] = mod.parametrizations.weight.original
        out = np.zeros(cost.allowed.shape)
        was = net.training
        net.eval()
        with torch.no_grad():
            base = float(F.cross_entropy(net(x), y))
            for li, layer in enumerate(cost.workload.layers):
                p = params.get(layer.weight_name or "")
                if p is None:
                    continue
                keep = p.detach().clone()
                for c in cost.options[li]:
                    m = cost.mask(li, int(c))
                    if m is None:
                        continue
                    p.copy_(keep * torch.from_numpy(m).to(p.dtype))
                    out[li, c] = base - float(F.cross_entropy(net(x), y))
                p.copy_(keep)
        net.train(was)
        return out

    return table


def _exact(cost, proxy, budget, metric):
    # A budget is a fraction of the dense cost, a float. Cycles are integers: floor(budget) + 0.5 admits
    # exactly the assignments of at most floor(budget) cycles, whatever the float's last bits. Energy is
    # summed in another order than the dense total the budget came from: allow a relative 2e-9.
    if metric == "cycles":
        budget = np.floor(budget + 1e-9) + 0.5
    else:
        budget = budget * (1.0 + 2e-9)
    return cost.choose(proxy, budget, metric=metric, method="exact")


def _check_budget(budget, where="budget") -> float:
    try:
        b = float(budget)
    except (TypeError, ValueError):
        raise SearchError(f"{where}: expected a fraction of the dense cost in (0, 1], got {budget!r}") from None
    if not (0.0 < b <= 1.0):
        raise SearchError(f"{where}: expected a fraction of the dense cost in (0, 1], got {budget!r}")
    return b


class HardwareAwareSparsifier(BaseSparsifier):
    """N:M (or any candidate pattern) masks for Conv2d and Linear weights under a hardware budget.

    Parameters
    ----------
    accelerator:     an :class:`accel.Accelerator`, a preset name or a YAML file.
    example_inputs:  a tuple of inputs the model is traced with (their batch sets the GEMM rows).
    budget:          final cycles (or energy) as a fraction of the dense model's, in (0, 1].
    objective:       ``latency`` (cycles) or ``energy``.
    candidates:      patterns a layer may take (``dense`` is always one of them); default: dense
                     and the accelerator's sparse modes.
    pins:            globs of layers held dense (module or weight names).
    choose:          ``choose(cost, proxy, budget, metric) -> assignment``; default: the exact
                     knapsack of :meth:`search.HardwareCost.choose`.
    proxy:           ``proxy(cost) -> (L, C)`` table, higher is better; default
                     :func:`retained_magnitude`.
    """

    def __init__(self, accelerator, example_inputs, budget: float = 0.5, objective: str = "latency",
                 candidates: Sequence | None = None, pins: Iterable[str] = (), choose: ChooseFn | None = None,
                 proxy: Callable | None = None, progress: bool = False):
        budget = _check_budget(budget)
        if objective not in OBJECTIVES:
            raise SearchError(f"objective: expected one of {', '.join(OBJECTIVES)}, got {objective!r}")
        super().__init__(defaults={"sparsity_level": 1.0 - budget})
        import accel
        self.accelerator = accelerator if isinstance(accelerator, accel.Accelerator) else accel.load(accelerator)
        self.example_inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
        self.objective = objective
        self.metric = OBJECTIVES[objective]
        if candidates is None:
            sp = self.accelerator.compute.sparse
            candidates = ["dense"] + [f"{n}:{m}" for n, m in sp.modes if n < m]
        from .candidates import parse_candidates
        self.candidates = [str(c) for c in parse_candidates(candidates, where="candidates")]
        self.pins = list(pins)
        self.choose_fn = choose or _exact
        self.proxy_fn = proxy or retained_magnitude
        self.progress = progress
        self._workload: Workload | None = None
        self._layer_of: dict[str, str] = {}          # tensor_fqn -> traced layer name (its first use)
        self._uses: dict[str, list[str]] = {}         # tensor_fqn -> every traced layer that uses it
        self.skipped: dict[str, str] = {}             # traced weights no mask can be put on -> module type
        self.last = None                               # (HardwareCost, assignment) of the last step

    # ------------------------------------------------------------------------------------ prepare
    def prepare(self, model: nn.Module, config: list[dict] | None = None):
        """Trace ``model``, check ``config`` and add mask parametrizations (all ones: dense).

        A weight several traced layers use (a module called twice) is one entry: its layers take one
        pattern, costed over all of them. ``self.skipped``: ``{weight name: module type}`` of traced
        weights left dense because no mask can be put on them (named in a warning)."""
        default = config is None
        if config is None:
            config = [{"tensor_fqn": fqn} for fqn in prunable_tensors(model)]
        if not isinstance(config, (list, tuple)) or not config:
            raise SearchError("config: expected a non-empty list of {'tensor_fqn': 'module.weight', ...} dicts")
        for i, entry in enumerate(config):
            self._check_entry(model, i, entry)
        self._workload = self._trace(model)
        by_weight: dict[str, list[str]] = {}
        for layer in self._workload.layers:
            if layer.weight_name:
                by_weight.setdefault(layer.weight_name, []).append(layer.name)
        # the tracer names a shared parameter by its first name; a config may use another
        first = {}
        for name, p in model.named_parameters(remove_duplicate=False):
            first.setdefault(id(p), name)
        params = dict(model.named_parameters(remove_duplicate=False))
        for entry in config:
            fqn = entry["tensor_fqn"]
            layers = by_weight.get(first.get(id(params.get(fqn)), fqn), [])
            if not layers:
                raise SearchError(f"config tensor_fqn '{fqn}': cannot map it to one traced layer: the tracer saw "
                                  f"no GEMM that uses it (is the module called in forward(), and with its own "
                                  f"weight?)")
            self._layer_of[fqn] = layers[0]      # the first use; the cost tables tie the others to it
            self._uses[fqn] = layers
        self._graph = self._channel_graph(model, config)
        self.skipped = skipped_tensors(model, self._workload) if default else {}
        if self.skipped:
            import warnings
            warnings.warn("HardwareAwareSparsifier: no mask can be put on " + ", ".join(
                f"{k} ({v})" for k, v in self.skipped.items()) + "; these layers stay dense", stacklevel=2)
        super().prepare(model, [dict(e) for e in config])

    def _channel_graph(self, model, config):
        """The channel dependency graph when a channel candidate is possible (None otherwise), with
        every group whose producers or readers are not all configured made unprunable: their masks
        must remove the channels from every layer that reads them. A model ``torch.fx`` cannot trace
        keeps uncoupled channel costs, with a warning."""
        from workloads import Channel
        from .channels import channel_graph
        pats = list(self.candidates) + [p for e in config for p in
                                        ([e["pattern"]] if "pattern" in e else []) + list(e.get("candidates", []))]
        if not any(isinstance(parse_pattern(p), Channel) for p in pats):
            return None
        try:
            graph = channel_graph(model, self.example_inputs, self._workload)
        except SearchError as e:
            import warnings
            warnings.warn(f"HardwareAwareSparsifier: channel candidates are costed without coupling: {e}",
                          stacklevel=3)
            return None
        import dataclasses
        configured = {name for e in config for name in self._uses.get(e["tensor_fqn"], [])}
        names = [l.name for l in self._workload.layers]
        for g, grp in enumerate(graph.groups):
            outside = [names[li] for li in grp.producers + grp.consumers if names[li] not in configured]
            if grp.prunable and outside:
                graph.groups[g] = dataclasses.replace(grp, prunable=False, reason=f"layer '{outside[0]}' is not "
                                                      f"configured in the sparsifier (it would keep the channels)")
        return graph

    def _check_entry(self, model, i, entry):
        if not isinstance(entry, dict) or not isinstance(entry.get("tensor_fqn"), str):
            raise SearchError(f"config[{i}]: expected a dict with a 'tensor_fqn' string such as 'fc1.weight', "
                              f"got {entry!r}")
        fqn = entry["tensor_fqn"]
        mod_path, _, tname = fqn.rpartition(".")
        try:
            module = model.get_submodule(mod_path)
        except AttributeError:
            raise SearchError(f"config[{i}] tensor_fqn '{fqn}': the model has no module '{mod_path}'") from None
        layout_of(module, where=f"config[{i}] tensor_fqn '{fqn}'")
        want = tensor_of(module)
        if tname != want or not isinstance(getattr(module, tname, None), torch.Tensor):
            raise SearchError(f"config[{i}] tensor_fqn '{fqn}': expected the '{want}' of a module")
        known = {"tensor_fqn", "candidates", "pattern", "sparsity_level"}
        extra = set(entry) - known
        if extra:
            raise SearchError(f"config[{i}] ({fqn}): unknown key(s) {sorted(extra)}; expected {sorted(known)}")
        from workloads import PatternError
        for c in ([entry["pattern"]] if "pattern" in entry else []) + list(entry.get("candidates", [])):
            try:
                parse_pattern(c)
            except PatternError as e:
                raise SearchError(f"config[{i}] ({fqn}): {e}") from None

    def _trace(self, model) -> Workload:
        from workloads.tracer import trace
        from workloads import WorkloadError
        try:
            return trace(model, self.example_inputs)
        except WorkloadError as e:
            raise SearchError(f"tracing the model for the sparsifier: {e}") from None

    # ------------------------------------------------------------------------------------ step
    @property
    def budget(self) -> float:
        """The budget of the next step: 1 - the groups' largest ``sparsity_level`` (what schedulers set)."""
        return 1.0 - max(float(g.get("sparsity_level", 0.0)) for g in self.groups)

    def _current_workload(self) -> Workload:
        """The traced workload with each configured layer's weight replaced by its current dense value."""
        fresh = {}
        for g in self.groups:
            w = _dense_weight(g["module"], g["tensor_name"])
            value = w.detach().cpu().float().numpy().copy()
            for name in self._uses.get(g["tensor_fqn"], [self._layer_of[g["tensor_fqn"]]]):
                fresh[name] = value
        layers = tuple(l.replace(weight=fresh[l.name], mask=None, pattern=None) if l.name in fresh else l
                       for l in self._workload.layers)
        return self._workload.replace(layers=layers)

    def cost_tables(self):
        """A :class:`search.HardwareCost` for the current weights, with this sparsifier's candidates,
        pins and per-layer config (unconfigured layers are held dense)."""
        from .cost import HardwareCost
        wl = self._current_workload()
        configured = {name: g for g in self.groups
                      for name in self._uses.get(g["tensor_fqn"], [self._layer_of[g["tensor_fqn"]]])}
        pins = list(self.pins) + [l.name for l in wl.layers if l.name not in configured and l.has_weight]
        per_layer = {}
        fixed = {}
        for name, g in configured.items():
            if name != self._layer_of[g["tensor_fqn"]]:
                continue                     # a later use of a shared weight: tied to its first use
            if "pattern" in g:
                fixed[name] = str(parse_pattern(g["pattern"]))
                per_layer[name] = [fixed[name]]
            elif "candidates" in g:
                per_layer[name] = list(g["candidates"])
        cands = list(self.candidates) + [p for p in fixed.values() if p not in self.candidates]
        cost = HardwareCost(wl, self.accelerator, candidates=cands, pins=pins, per_layer=per_layer,
                            progress=self.progress, graph=getattr(self, "_graph", None))
        for name, p in fixed.items():       # a pinned pattern is the only choice (not "it or dense")
            cost.restrict(name, [cost.candidate_names.index(p)])
        return cost

    def step(self, use_path: bool = True) -> None:
        """Pick one pattern per configured layer within the current budget and set the masks."""
        if not self.enable_mask_update:
            return
        budget = _check_budget(self.budget, where="budget (1 - sparsity_level)")
        with torch.no_grad():
            cost = self.cost_tables()
            proxy = self.proxy_fn(cost)
            try:
                a = np.asarray(self.choose_fn(cost, proxy, budget * cost.dense_totals[self.metric], self.metric))
            except SearchError as e:
                if self.skipped and "below the cheapest" in str(e):
                    raise SearchError(f"{e}; these weights stay dense because no mask can be put on them: " + ", ".join(
                        f"{k} ({v})" for k, v in self.skipped.items())) from None
                raise
            a = cost.check_assignment(a)
            self.last = (cost, a)
            full = cost.masks(a) if cost.coupling is not None else None    # removed channels in readers too
            for g in self.groups:
                li = cost.layer_names.index(self._layer_of[g["tensor_fqn"]])
                m = full[cost.workload.layers[li].weight_name] if full is not None else cost.mask(li, int(a[li]))
                mask = _mask_of(g["module"], g["tensor_name"])
                if m is None:
                    mask.fill_(True)
                else:
                    mask.copy_(torch.from_numpy(m).to(mask.device, mask.dtype))
                g["chosen"] = cost.candidate_names[int(a[li])]

    def update_mask(self, module: nn.Module, tensor_name: str, chosen: str = "dense", **kwargs):
        """Re-pick one module's mask with the pattern last chosen for it (BaseSparsifier's per-group hook)."""
        mask = _mask_of(module, tensor_name)
        mask.copy_(mask_for(_dense_weight(module, tensor_name), module, parse_pattern(chosen)).to(mask.dtype))

    # ------------------------------------------------------------------------------------ results
    def patterns(self) -> dict[str, str]:
        """``{tensor_fqn: chosen pattern}`` after a step."""
        return {g["tensor_fqn"]: g.get("chosen", "dense") for g in self.groups}

    def totals(self) -> dict:
        """Cycles, energy_pj, dram_bytes of the last step's choice and of the dense model."""
        if self.last is None:
            raise SearchError("totals: call step() first")
        cost, a = self.last
        return {**cost.totals(a), "dense": dict(cost.dense_totals)}

    def export_prune(self) -> None:
        """Replace each mask parametrization by ``torch.nn.utils.prune.custom_from_mask`` (the weight
        becomes ``weight_orig * weight_mask``); the sparsifier then no longer holds the model."""
        from torch.nn.utils import prune
        for g in self.groups:
            module, name = g["module"], g["tensor_name"]
            mask = _mask_of(module, name).clone()
            parametrize.remove_parametrizations(module, name, leave_parametrized=False)
            prune.custom_from_mask(module, name, mask)
        self.groups = []

    def load_state_dict(self, state_dict, strict: bool = True):
        super().load_state_dict(state_dict, strict)
        if self._workload is None:
            self._workload = self._trace_unparametrized()
            for g in self.groups:
                for layer in self._workload.layers:
                    if layer.weight_name == g["tensor_fqn"]:
                        self._layer_of.setdefault(g["tensor_fqn"], layer.name)
                        self._uses.setdefault(g["tensor_fqn"], []).append(layer.name)

    def _trace_unparametrized(self) -> Workload:
        return self._trace(self.model)


def _dense_weight(module: nn.Module, name: str) -> torch.Tensor:
    """The dense (unmasked) value of a parametrized weight, or the weight itself."""
    if parametrize.is_parametrized(module, name):
        return module.parametrizations[name].original
    return getattr(module, name)


def _mask_of(module: nn.Module, name: str) -> torch.Tensor:
    for p in module.parametrizations[name]:
        if hasattr(p, "mask"):
            return p.mask
    raise SearchError(f"module {type(module).__name__}: weight '{name}' has no mask parametrization")
