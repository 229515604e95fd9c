"""Hardware-aware pruning of a digits zoo model, end to end (what ``sparsim prune`` runs).

Dense training on the seeded digits split -> optional channel permutations -> one
:class:`HardwareAwareSparsifier` step at the budget -> masked fine-tuning -> accuracy, and cycles and
energy from the simulator for the dense and the pruned model.
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


def _simulate_model(model, x, acc, name):
    from simulator import simulate
    from workloads.tracer import trace
    return simulate(trace(model, (x,)).replace(name=name), acc)


def prune_digits(model: str, accelerator, budget: float, objective: str = "latency", epochs: int = 10,
                 batch: int = 1, permute: bool = False, seed: int = 0, finetune: str = "fixed",
                 candidates=None, dense_epochs: int = 30, progress: bool = False,
                 proxy: str = "sensitivity") -> PruneResult:
    """Prune zoo model ``model`` (``mlp_digits`` or ``cnn_digits``) to ``budget`` x its dense cycles
    (or energy) at ``batch`` on ``accelerator``, fine-tune ``epochs`` epochs, and report.

    ``proxy``: what the search keeps: ``sensitivity`` (default; :func:`loss_sensitivity` on the
    training split) or ``magnitude`` (:func:`retained_magnitude`)."""
    import accel
    if model not in DIGITS_MODELS:
        raise SearchError(f"--model {model}: pruning with real accuracy is available for {', '.join(DIGITS_MODELS)} "
                          f"(their data ships with scikit-learn)")
    budget = _check_budget(budget, where="--budget")
    if objective not in OBJECTIVES:
        raise SearchError(f"--objective: expected one of {', '.join(OBJECTIVES)}, got {objective!r}")
    for what, v in (("--epochs", epochs), ("--batch", batch)):
        if not isinstance(v, int) or v < (1 if what == "--batch" else 0):
            raise SearchError(f"{what}: expected a {'positive' if what == '--batch' else 'non-negative'} integer, "
                              f"got {v!r}")
    if proxy not in PROXIES:
        raise SearchError(f"--proxy: expected one of {', '.join(PROXIES)}, got {proxy!r}")
    acc = accelerator if isinstance(accelerator, accel.Accelerator) else accel.load(accelerator)
    x, y, xt, yt = digits_data(seed)
    net, dense_acc = pretrained_digits(model, seed=seed, epochs=dense_epochs)        # dense, trained
    example = xt[:batch] if batch <= xt.shape[0] else xt[:1].repeat(batch, 1)
    dense_sim = _simulate_model(net, example, acc, model)

    sparsifier = HardwareAwareSparsifier(acc, (example,), budget=budget, objective=objective,
                                         candidates=candidates, progress=progress,
                                         proxy=loss_sensitivity(net, x, y) if proxy == "sensitivity" else None)
    perms = {}
    if permute:                     # reorder channels for the tightest N:M candidate before choosing
        from .permute import permute_model
        nms = [parse_pattern(c) for c in sparsifier.candidates if isinstance(parse_pattern(c), NM)]
        if nms:
            p = min(nms, key=lambda q: (q.density, q.m))
            perms = permute_model(net, p.n, p.m, seed=seed)
    sparsifier.prepare(net, None)
    sparsifier.step()                                                                  # the search
    patterns = sparsifier.patterns()
    masks = {g["tensor_fqn"]: g["module"].parametrizations.weight[0].mask.detach().bool().clone()
             for g in sparsifier.groups}
    sparsifier.squash_mask()
    bar = None
    if progress and epochs:
        from tqdm.auto import tqdm
        bar = tqdm(total=epochs, desc="fine-tuning", unit="epoch", leave=False)
    if finetune == "srste":
        pats = {k: v for k, v in patterns.items() if isinstance(parse_pattern(v), NM)}
        fixed = {k: v for k, v in masks.items() if k not in pats}
        train(net, x, y, TrainConfig(epochs=epochs, lr=1e-3), seed=seed, masks=fixed, patterns=pats, mode="srste",
              progress=(lambda e, l: bar.update(1)) if bar else None)
    elif finetune == "fixed":
        train(net, x, y, TrainConfig(epochs=epochs, lr=1e-3), seed=seed, masks=masks,
              progress=(lambda e, l: bar.update(1)) if bar else None)
    else:
        raise SearchError(f"--finetune: expected fixed or srste, got {finetune!r}")
    if bar:
        bar.close()
    pruned_sim = _simulate_model(net, example, acc, model)
    dt, pt = dense_sim.totals, pruned_sim.totals
    layer_names = {g: g.rsplit(".", 1)[0] for g in patterns}
    report = {
        "model": model, "accelerator": acc.name, "objective": objective, "budget": budget, "batch": batch,
        "seed": seed, "epochs": epochs, "finetune": finetune, "permute": bool(permute), "proxy": proxy,
        "dense_accuracy": dense_acc, "accuracy": accuracy(net, xt, yt),
        "dense_cycles": int(dt["cycles"]), "cycles": int(pt["cycles"]),
        "dense_energy_pj": float(dt["energy_pj"]), "energy_pj": float(pt["energy_pj"]),
        "patterns": {layer_names[k]: v for k, v in patterns.items()},
        "modes": dict(zip(pruned_sim.layers["name"], pruned_sim.layers["mode"])),
        "permutation_efficacy": {k: p.efficacy for k, p in perms.items()},
    }
    return PruneResult(net, report, perms)


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
