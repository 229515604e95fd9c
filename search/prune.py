"""Hardware-aware pruning end to end (what ``sparsim prune`` runs): :func:`prune_model` for any model
and data, :func:`prune_digits` for the digits zoo models.

Checks that need no training (budget feasible, candidates, accelerator) -> dense training -> one
:class:`HardwareAwareSparsifier` step at the budget -> optional channel permutations for the pattern
each layer took -> masked fine-tuning -> accuracy (or the user's metric), and cycles and energy from
the simulator for the dense and the pruned model.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from workloads import NM, parse_pattern

from .errors import SearchError
from .finetune import (DIGITS_MODELS, TrainConfig, accuracy, digits_data, digits_validation, pretrained_digits,
                       train)
from .sparsifier import OBJECTIVES, HardwareAwareSparsifier, _check_budget, loss_sensitivity, retained_magnitude

PROXIES = ("sensitivity", "magnitude")


@dataclass
class PruneResult:
    model: torch.nn.Module
    report: dict
    permutations: dict = field(default_factory=dict)


def _simulate_model(model, inputs, acc, name):
    from simulator import simulate
    from workloads.tracer import trace
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    return simulate(trace(model, inputs).replace(name=name), acc)


def prune_digits(model: str, accelerator, budget: float, objective: str = "latency", epochs: int = 10,
                 batch: int = 1, permute: bool = False, seed: int = 0, finetune: str = "fixed",
                 candidates=None, dense_epochs: int = 30, progress: bool = False,
                 proxy: str = "sensitivity", permute_rounds: int = 20) -> PruneResult:
    """Prune zoo model ``model`` (``mlp_digits`` or ``cnn_digits``) to ``budget`` x its dense cycles
    (or energy) at ``batch`` on ``accelerator``, fine-tune ``epochs`` epochs, and report.

    ``proxy``: what the search keeps: ``sensitivity`` (default; :func:`loss_sensitivity` on the
    training split) or ``magnitude`` (:func:`retained_magnitude`). The budget and candidates are
    checked on the untrained model before the dense model is trained."""
    from workloads import zoo
    if model not in DIGITS_MODELS:
        raise SearchError(f"--model {model}: pruning with real accuracy is available for {', '.join(DIGITS_MODELS)} "
                          f"(their data ships with scikit-learn), or give a model file: --model file.py:build "
                          f"with a file.py:data function")
    _check_batch(batch)
    x, y, xt, yt = digits_data(seed)
    example = xt[:batch] if batch <= xt.shape[0] else xt[:1].repeat(batch, 1)
    untrained, _ = zoo.build(model, seed=seed)
    check = dict(accelerator=accelerator, budget=budget, objective=objective, candidates=candidates, proxy=proxy,
                 finetune=finetune, epochs=epochs)
    acc = _precheck(untrained, (example,), **check)                     # before any training
    with _Deterministic():
        net, dense_acc = pretrained_digits(model, seed=seed, epochs=dense_epochs)    # dense, trained
    return prune_model(net, (example,), (x, y, xt, yt), acc, budget, objective=objective, epochs=epochs,
                       permute=permute, permute_rounds=permute_rounds, seed=seed, finetune=finetune,
                       candidates=candidates, progress=progress, proxy=proxy, name=model, dense_metric=dense_acc,
                       checked=True)


def _check_batch(batch):
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise SearchError(f"--batch: expected a positive integer, got {batch!r}")


def _check_args(budget, objective, epochs, proxy, finetune, permute_rounds=1):
    budget = _check_budget(budget, where="--budget")
    if objective not in OBJECTIVES:
        raise SearchError(f"--objective: expected one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise SearchError(f"--epochs: expected a non-negative integer, got {epochs!r}")
    if proxy not in PROXIES:
        raise SearchError(f"--proxy: expected one of {', '.join(PROXIES)}, got {proxy!r}")
    if finetune not in ("fixed", "srste"):
        raise SearchError(f"--finetune: expected fixed or srste, got {finetune!r}")
    if not isinstance(permute_rounds, int) or isinstance(permute_rounds, bool) or permute_rounds < 1:
        raise SearchError(f"--permute-rounds: expected a positive integer, got {permute_rounds!r}")
    return budget


def _precheck(model, example_inputs, accelerator, budget, objective, candidates, proxy, finetune, epochs,
              permute_rounds=1):
    """Every check that needs no training: arguments, accelerator, candidates, and whether the budget
    can be met at all (the cheapest assignment on ``model``'s current weights; N:M costs do not depend
    on the weights). Returns the accelerator. Raises :class:`SearchError` naming what is wrong."""
    import copy

    import accel
    budget = _check_args(budget, objective, epochs, proxy, finetune, permute_rounds)
    acc = accelerator if isinstance(accelerator, accel.Accelerator) else accel.load(accelerator)
    probe = HardwareAwareSparsifier(acc, example_inputs, budget=budget, objective=objective, candidates=candidates)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # the real run warns about skipped weights
        probe.prepare(copy.deepcopy(model), None)
    cost = probe.cost_tables()
    metric = OBJECTIVES[objective]
    least, dense = cost.min_cost(metric), cost.dense_totals[metric]
    if least > budget * dense * (1 + 1e-9):
        skipped = ("; these weights stay dense because no mask can be put on them: " + ", ".join(
            f"{k} ({v})" for k, v in probe.skipped.items())) if probe.skipped else ""
        raise SearchError(f"--budget {budget:g}: below the cheapest assignment ({least / dense:.3f} x dense "
                          f"{'cycles' if metric == 'cycles' else 'energy'} with candidates "
                          f"{','.join(probe.candidates)}){skipped}")
    return acc


def _is_tensors(data) -> bool:
    return isinstance(data, (tuple, list)) and len(data) == 4 and all(isinstance(t, torch.Tensor) for t in data)


def check_data(data, where: str = "data") -> tuple:
    """``data`` as ``(train, test)``: ``(x, y)`` tensor pairs or iterables of ``(x, y)`` batches
    (e.g. DataLoaders). Accepts ``(x_train, y_train, x_test, y_test)`` tensors or ``(train_loader,
    test_loader)``; anything else is a :class:`SearchError` naming ``where``."""
    if _is_tensors(data):
        x, y, xt, yt = data
        for a, b, part in ((x, y, "train"), (xt, yt, "test")):
            if a.shape[0] != b.shape[0] or a.shape[0] == 0:
                raise SearchError(f"{where}: the {part} inputs and labels need the same, nonzero number of rows "
                                  f"(got {a.shape[0]} and {b.shape[0]})")
        return (x, y), (xt, yt)
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(hasattr(d, "__iter__") and not isinstance(
            d, torch.Tensor) for d in data):
        return data[0], data[1]
    raise SearchError(f"{where}: expected (x_train, y_train, x_test, y_test) tensors or (train_loader, test_loader), "
                      f"got {type(data).__name__}" + (f" of {len(data)}" if isinstance(data, (tuple, list)) else ""))


def _some_rows(part, rows: int = 1024):
    """Up to ``rows`` training rows ``(x, y)`` as tensors (what the sensitivity proxy measures on)."""
    if isinstance(part, tuple) and len(part) == 2 and isinstance(part[0], torch.Tensor):
        return part
    xs, ys, n = [], [], 0
    for xb, yb in part:
        xs.append(xb)
        ys.append(yb)
        n += len(yb)
        if n >= rows:
            break
    return torch.cat(xs)[:rows], torch.cat(ys)[:rows]


def top1(model, test) -> float:
    """Top-1 accuracy in percent on ``(x, y)`` tensors or an iterable of ``(x, y)`` batches."""
    if isinstance(test, tuple) and len(test) == 2 and isinstance(test[0], torch.Tensor):
        return accuracy(model, *test)
    was = model.training
    model.eval()
    right = total = 0
    with torch.no_grad():
        for xb, yb in test:
            right += int((model(xb).argmax(dim=1) == yb).sum())
            total += len(yb)
    model.train(was)
    return 100.0 * right / max(total, 1)


def _fit(net, part, config, seed, masks=None, patterns=None, mode="fixed", progress=None):
    """:func:`search.finetune.train` on ``(x, y)`` tensors, or the same loop over a loader's batches."""
    if isinstance(part, tuple) and len(part) == 2 and isinstance(part[0], torch.Tensor):
        return train(net, part[0], part[1], config, seed=seed, masks=masks, patterns=patterns, mode=mode,
                     progress=progress)
    from .finetune import train_batches
    return train_batches(net, part, config, seed=seed, masks=masks, patterns=patterns, mode=mode, progress=progress)


class _Deterministic:
    """One thread and PyTorch's deterministic kernels while a pruning run trains (restored after).
    This makes a run repeat bit for bit on one machine; another CPU (other SIMD kernels) can still
    give other accuracies, which is why ``sparsim prune --seeds`` reports mean and sd over seeds."""

    def __enter__(self):
        self._threads = torch.get_num_threads()
        self._det = torch.are_deterministic_algorithms_enabled()
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True, warn_only=True)

    def __exit__(self, *exc):
        torch.set_num_threads(self._threads)
        torch.use_deterministic_algorithms(self._det)


def prune_model(model: torch.nn.Module, example_inputs, data, accelerator, budget: float, evaluate=None,
                objective: str = "latency", epochs: int = 10, permute: bool = False, permute_rounds: int = 20,
                seed: int = 0, finetune: str = "fixed", candidates=None, progress: bool = False,
                proxy: str = "sensitivity", dense_epochs: int = 0, name: str | None = None,
                dense_metric: float | None = None, lr: float = 1e-3, checked: bool = False) -> PruneResult:
    """Prune any model to ``budget`` x its dense cycles (or energy) on ``accelerator`` and report.

    ``model``: a ``torch.nn.Module`` (trained, or trained here for ``dense_epochs``), changed in place;
    ``example_inputs``: a tuple the model is traced with (its batch sets the GEMM rows);
    ``data``: ``(x_train, y_train, x_test, y_test)`` tensors or ``(train_loader, test_loader)``
    (iterables of ``(x, y)`` batches); training uses cross-entropy and Adam (``lr``);
    ``evaluate(model, test) -> float`` (higher is better; default top-1 accuracy in percent), called on
    the test part as ``data`` gave it.

    Order: every check that needs no training (arguments, accelerator, candidates, whether the budget
    can be met; :class:`SearchError` otherwise), dense training (``dense_epochs``), one
    :class:`HardwareAwareSparsifier` step, channel permutations for the pattern each layer took
    (``permute``, ``permute_rounds``), masked fine-tuning (``finetune``: ``fixed`` or ``srste``), and
    the simulator's cycles and energy of the dense and the pruned model."""
    train_part, test_part = check_data(data)
    metric_name = "accuracy" if evaluate is None else getattr(evaluate, "__name__", "metric")
    evaluate = evaluate or top1
    if not callable(evaluate):
        raise SearchError(f"evaluate: expected a function evaluate(model, test) -> float, got {type(evaluate).__name__}")
    example_inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    if checked:
        import accel
        acc = accelerator if isinstance(accelerator, accel.Accelerator) else accel.load(accelerator)
    else:
        acc = _precheck(model, example_inputs, accelerator, budget, objective, candidates, proxy, finetune, epochs,
                        permute_rounds)
    budget = float(budget)
    name = name or type(model).__name__
    with _Deterministic():
        if dense_epochs:
            _fit(model, train_part, TrainConfig(epochs=dense_epochs), seed=seed)
        net = model.eval()
        if dense_metric is None:
            dense_metric = float(evaluate(net, test_part))
        dense_sim = _simulate_model(net, example_inputs, acc, name)
        x, y = _some_rows(train_part, rows=10 ** 9 if isinstance(train_part, tuple) else 1024)
        sparsifier = HardwareAwareSparsifier(acc, example_inputs, budget=budget, objective=objective,
                                             candidates=candidates, progress=progress,
                                             proxy=loss_sensitivity(net, x, y) if proxy == "sensitivity" else None)
        sparsifier.prepare(net, None)
        sparsifier.step()                                                                  # the search
        patterns = sparsifier.patterns()
        perms = {}
        chosen_cost, chosen = sparsifier.last
        kept = chosen_cost.kept_channels(chosen)      # coupled channel groups the choice prunes
        if kept and (permute or finetune == "srste"):
            # both re-pick masks layer by layer, which would bring back the channels a producer's
            # channel pruning removed from its readers' inputs
            import warnings
            warnings.warn(f"prune: channel groups are pruned with their readers; "
                          f"{'--permute is skipped' if permute else ''}"
                          f"{' and ' if permute and finetune == 'srste' else ''}"
                          f"{'SR-STE fine-tuning keeps the chosen masks fixed' if finetune == 'srste' else ''}",
                          stacklevel=2)
            permute, finetune = False, "fixed"
        if permute:
            masks, perms = _permute_for_patterns(net, sparsifier, patterns, permute_rounds, seed)
        else:
            masks = {g["tensor_fqn"]: g["module"].parametrizations[g["tensor_name"]][0].mask.detach().bool().clone()
                     for g in sparsifier.groups}
            sparsifier.squash_mask()
        bar = None
        if progress and epochs:
            from tqdm.auto import tqdm
            bar = tqdm(total=epochs, desc="fine-tuning", unit="epoch", leave=False)
        try:
            tick = (lambda e, l: bar.update(1)) if bar else None
            cfg = TrainConfig(epochs=epochs, lr=lr)
            if finetune == "srste":
                pats = {k: v for k, v in patterns.items() if isinstance(parse_pattern(v), NM)}
                fixed = {k: v for k, v in masks.items() if k not in pats}
                _fit(net, train_part, cfg, seed=seed, masks=fixed, patterns=pats, mode="srste", progress=tick)
            else:
                _fit(net, train_part, cfg, seed=seed, masks=masks, progress=tick)
        finally:
            if bar:
                bar.close()
        if kept:    # the channels go from the model itself: it runs, and is simulated, smaller
            import copy
            from .channels import shrink_model
            pruned_sim = _simulate_model(shrink_model(copy.deepcopy(net), chosen_cost.coupling.graph, kept),
                                         example_inputs, acc, name)
        else:
            pruned_sim = _simulate_model(net, example_inputs, acc, name)
        metric_after = float(evaluate(net, test_part))
    dt, pt = dense_sim.totals, pruned_sim.totals
    layer_names = {g: g.rsplit(".", 1)[0] for g in patterns}
    report = {
        "model": name, "accelerator": acc.name, "objective": objective, "budget": budget,
        "batch": int(dense_sim.workload.get("batch", 1)),
        "seed": seed, "epochs": epochs, "finetune": finetune, "permute": bool(permute), "proxy": proxy,
        "metric": metric_name, "dense_accuracy": dense_metric, "accuracy": metric_after,
        "dense_cycles": int(dt["cycles"]), "cycles": int(pt["cycles"]),
        "chosen_cycles": int(chosen_cost.totals(chosen)["cycles"]),
        "channel_groups_removed": {chosen_cost.layer_names[chosen_cost.coupling.graph.groups[g].producers[0]]:
                                   f"{len(k)} of {chosen_cost.coupling.graph.groups[g].size}" for g, k in kept.items()},
        "dense_energy_pj": float(dt["energy_pj"]), "energy_pj": float(pt["energy_pj"]),
        "patterns": {layer_names[k]: v for k, v in patterns.items()},
        "modes": dict(zip(pruned_sim.layers["name"], pruned_sim.layers["mode"])),
        "permutation_efficacy": {k: p.efficacy for k, p in perms.items()},
        "permutations": {k: {"pattern": f"{p.n}:{p.m}", "efficacy": p.efficacy, "lost_identity": p.base,
                             "lost": p.found, "applied": bool(p.found < p.base), "seconds": p.seconds,
                             "rounds": p.rounds} for k, p in perms.items()},
        "skipped": dict(sparsifier.skipped),
    }
    return PruneResult(net, report, perms)


def _permute_for_patterns(net, sparsifier, patterns, rounds, seed):
    """Undo the sparsifier's masks (dense weights back), permute every permutable layer that took an
    N:M pattern for that pattern (a permutation that keeps no more than the identity is not applied),
    and pick each layer's mask again with its pattern on the permuted weights. A layer whose producer
    took an unstructured, block or channel pattern is not permuted (reordering the producer's outputs
    would move its mask's columns between folds and change its cycles). Returns ``(masks, perms)``."""
    from torch.nn.utils import parametrize
    from .permute import permute_for_patterns
    from .torchmask import mask_for
    for g in sparsifier.groups:
        parametrize.remove_parametrizations(g["module"], g["tensor_name"], leave_parametrized=False)
    sparsifier.groups = []
    chosen = {fqn.rsplit(".", 1)[0]: parse_pattern(p) for fqn, p in patterns.items()}
    perms = permute_for_patterns(net, chosen, rounds=rounds, seed=seed)
    masks = {}
    for fqn, p in patterns.items():
        mod_path, _, tname = fqn.rpartition(".")
        mod = net.get_submodule(mod_path)
        w = getattr(mod, tname)
        masks[fqn] = mask_for(w, mod, parse_pattern(p)).bool()
        with torch.no_grad():
            w.mul_(masks[fqn])
    return masks, perms


def digits_cost(model: str, accelerator, seed: int = 0, batch: int = 1, candidates=None, dense_epochs: int = 30,
                val_fraction: float = 0.0):
    """The trained dense digits model (on the fit part only with ``val_fraction``, see
    :func:`search.finetune.digits_validation`), its test accuracy and its :class:`search.HardwareCost`
    tables at ``batch``."""
    import accel
    from workloads.tracer import trace
    from .cost import HardwareCost
    acc = accelerator if isinstance(accelerator, accel.Accelerator) else accel.load(accelerator)
    net, dense_acc = pretrained_digits(model, seed=seed, epochs=dense_epochs, val_fraction=val_fraction)
    xt = digits_data(seed)[2]
    wl = trace(net, (xt[:batch],)).replace(name=model)
    if candidates is None:
        candidates = ["dense"] + [f"{n}:{m}" for n, m in acc.compute.sparse.modes if n < m]
    return net, dense_acc, HardwareCost(wl, acc, candidates=candidates)


def digits_proxy(kind: str, net, cost, seed: int = 0, val_fraction: float = 0.0):
    """The ``(L, C)`` proxy table ``kind`` (``sensitivity`` or ``magnitude``) of a :func:`digits_cost`
    (the sensitivity on the rows the model was trained on)."""
    if kind == "sensitivity":
        x, y, _, _ = digits_validation(seed, val_fraction)
        return loss_sensitivity(net, x, y)(cost)
    if kind == "magnitude":
        return retained_magnitude(cost)
    raise SearchError(f"proxy: expected one of {', '.join(PROXIES)}, got {kind!r}")


def covers(front, other) -> dict:
    """Point-by-point comparison of two evaluated sets of ``(accuracy drop, cycles ratio)`` points
    (both minimized). ``covered[j]``: some ``front`` point weakly dominates ``other[j]`` (no worse in
    both). ``strict``: some ``front`` point is weakly dominated by no ``other`` point (it is strictly
    better than each of them in some objective). ``better``: all covered and strict, i.e. ``front``
    is better than ``other`` in the sense of Zitzler et al. (IEEE TEVC 2003): it weakly dominates the
    set and the sets are not equivalent."""
    import numpy as np
    F = np.asarray(front, dtype=np.float64).reshape(-1, 2)
    O = np.asarray(other, dtype=np.float64).reshape(-1, 2)
    weak = np.all(F[:, None, :] <= O[None, :, :], axis=2)          # weak[i, j]: F[i] weakly dominates O[j]
    covered = weak.any(axis=0)
    strict = bool((~np.all(O[None, :, :] <= F[:, None, :], axis=2).any(axis=1)).any()) if len(F) else False
    return {"covered": covered.tolist(), "strict": strict, "better": bool(covered.all() and strict)}


def finetuned_accuracy(model: str, seed: int, masks: dict, epochs: int = 5, dense_epochs: int = 30,
                       net: torch.nn.Module | None = None) -> float:
    """Test accuracy (percent) of the trained dense ``model`` (or of ``net``, e.g. a permuted copy of
    it, which is trained in place) after fixed-mask fine-tuning under ``masks`` (``{parameter name:
    bool array}``, e.g. :meth:`HardwareCost.masks`)."""
    return finetuned_accuracies(model, seed, masks, epochs, dense_epochs, net=net)[1]


def finetuned_accuracies(model: str, seed: int, masks: dict, epochs: int = 5, dense_epochs: int = 30,
                         val_fraction: float = 0.0, net: torch.nn.Module | None = None,
                         train_seed: int | None = None) -> tuple[float | None, float]:
    """One evaluation: fixed-mask fine-tuning of the dense ``model`` (or ``net``) under ``masks`` on
    the fit part of :func:`search.finetune.digits_validation`, then ``(validation accuracy, test
    accuracy)`` in percent (validation None when ``val_fraction`` is 0). Selection should look only
    at the first; the second is what gets reported. ``train_seed`` (default ``seed``) seeds the
    fine-tuning run alone: the data split stays ``seed``'s."""
    if net is None:
        net, _ = pretrained_digits(model, seed=seed, epochs=dense_epochs, val_fraction=val_fraction)
    x, y, xv, yv = digits_validation(seed, val_fraction)
    xt, yt = digits_data(seed)[2:]
    tm = {k: torch.as_tensor(v) for k, v in masks.items()}
    train(net, x, y, TrainConfig(epochs=epochs, lr=1e-3), seed=seed if train_seed is None else train_seed,
          masks=tm)
    return (accuracy(net, xv, yv) if len(yv) else None), accuracy(net, xt, yt)
