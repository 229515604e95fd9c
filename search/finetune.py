"""Real accuracy on real data: dense training and masked fine-tuning of the digits zoo models.

Data: :func:`workloads.zoo.digits_split` (scikit-learn's 8x8 digits, shipped with scikit-learn).
Two ways to fine-tune under masks:

* ``fixed``: the masks stay as given; pruned weights are zero after every optimizer step.
* ``srste``: SR-STE (Zhou et al., "Learning N:M Fine-grained Structured Sparse Neural Networks From
  Scratch", ICLR 2021). Each step re-picks the mask from the dense weights with the layer's pattern
  (so N:M groups may change which weights they keep); the forward pass uses the masked weights, the
  gradient passes straight through to the dense weights, and pruned weights get an extra decay
  ``lambda_w * (1 - mask) * w`` (the paper's sparse-refined term; it uses ``lambda_w = 2e-4``).
  At the end the masks are fixed at the last pick and the pruned weights set to zero.

Everything is seeded: the same seed gives the same model, bit for bit (on the same thread count).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from workloads import SparsityPattern, parse_pattern

from .errors import SearchError
from .torchmask import mask_for

DIGITS_MODELS = ("mlp_digits", "cnn_digits")
MODES = ("fixed", "srste")


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer settings. Defaults are what the digits models need to train in a few seconds."""

    epochs: int = 10
    lr: float = 3e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    srste_decay: float = 2e-4       # lambda_w of SR-STE
    schedule: str = "constant"      # "constant" or "cosine" (lr decays to 0 over all steps)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    was = model.training
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(dim=1)
    model.train(was)
    return 100.0 * float((pred == y).float().mean())


def _check_data(x, y):
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)) or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise SearchError("training data: expected tensors x (rows, features) and y (rows,) with the same, "
                          "nonzero number of rows")


def _modules_by_param(model: nn.Module) -> dict[str, nn.Module]:
    """``{parameter name: module}`` of every weight :mod:`search.torchmask` can mask."""
    from .torchmask import tensor_of
    out = {}
    for name, mod in model.named_modules():
        t = tensor_of(mod)
        if t is not None:
            out[f"{name}.{t}" if name else t] = mod
    return out


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig = TrainConfig(), seed: int = 0,
          masks: Mapping[str, torch.Tensor] | None = None, patterns: Mapping[str, SparsityPattern | str] | None = None,
          mode: str = "fixed", progress=None) -> nn.Module:
    """Train ``model`` in place on ``(x, y)`` with Adam and cross-entropy; returns it.

    ``masks`` (``{'fc1.weight': bool tensor}``) are kept fixed (mode ``fixed``). With mode ``srste``,
    ``patterns`` (``{'fc1.weight': '2:4'}``) name each layer's pattern; masks are re-picked each step
    in the simulator's reduction order. ``progress`` is an optional callable ``(epoch, loss)``.
    """
    _check_data(x, y)

    def batches(gen):
        order = torch.randperm(x.shape[0], generator=gen)
        for i in range(0, x.shape[0], config.batch_size):
            idx = order[i:i + config.batch_size]
            yield x[idx], y[idx]
    return _train(model, batches, -(-x.shape[0] // config.batch_size), config, seed, masks, patterns, mode, progress)


def train_batches(model: nn.Module, loader, config: TrainConfig = TrainConfig(), seed: int = 0,
                  masks: Mapping[str, torch.Tensor] | None = None,
                  patterns: Mapping[str, SparsityPattern | str] | None = None, mode: str = "fixed",
                  progress=None) -> nn.Module:
    """:func:`train` over an iterable of ``(x, y)`` batches (e.g. a ``DataLoader``; its own batch size
    and shuffling, seeded by ``seed``) instead of tensors."""
    try:
        steps = len(loader)
    except TypeError:
        steps = 1

    def batches(gen):
        for i, item in enumerate(loader):
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise SearchError(f"training data: batch {i} of the loader is not an (inputs, labels) pair")
            yield item[0], item[1]
    return _train(model, batches, steps, config, seed, masks, patterns, mode, progress)


def _train(model, batches, steps_per_epoch, config, seed, masks, patterns, mode, progress):
    if mode not in MODES:
        raise SearchError(f"fine-tuning mode must be one of {', '.join(MODES)}, got {mode!r}")
    by_param = _modules_by_param(model)
    params = dict(model.named_parameters())
    masks = dict(masks or {})
    pats = {k: parse_pattern(v) for k, v in (patterns or {}).items()}
    for name in list(masks) + list(pats):
        if name not in params:
            raise SearchError(f"fine-tuning: model has no parameter '{name}'")
        if name in pats and name not in by_param:
            raise SearchError(f"fine-tuning: '{name}' is not a weight search.torchmask can mask (nn.Conv1d/2d/3d, "
                              f"nn.Linear, nn.MultiheadAttention in_proj_weight, transformers Conv1D)")
    if mode == "srste" and not pats:
        raise SearchError("fine-tuning mode 'srste' needs patterns={'layer.weight': 'N:M', ...}")
    masks = {k: m.to(torch.bool) for k, m in masks.items()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        sched = None
        if config.schedule == "cosine":
            steps = config.epochs * steps_per_epoch
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
        elif config.schedule != "constant":
            raise SearchError(f"TrainConfig.schedule: expected 'constant' or 'cosine', got {config.schedule!r}")
        model.train()
        with torch.no_grad():
            for k, m in masks.items():
                params[k].mul_(m)
        for epoch in range(config.epochs):
            total, rows = 0.0, 0
            for xb, yb in batches(gen):
                if mode == "srste":
                    loss = _srste_step(params, by_param, pats, lambda: F.cross_entropy(model(xb), yb), config)
                else:
                    opt.zero_grad(set_to_none=True)
                    loss = F.cross_entropy(model(xb), yb)
                    loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                with torch.no_grad():
                    for k, m in masks.items():
                        params[k].mul_(m)
                total += float(loss.detach()) * len(yb)
                rows += len(yb)
            if progress is not None:
                progress(epoch, total / max(rows, 1))
        if mode == "srste":
            with torch.no_grad():   # fix the masks at the last pick, on the final weights
                for k, p in pats.items():
                    params[k].mul_(mask_for(params[k], by_param[k], p))
    model.eval()
    return model


def _srste_step(params, by_param, pats, loss_fn, config):
    """One SR-STE forward/backward: masked forward, straight-through gradient, decay on pruned weights."""
    for p in params.values():
        p.grad = None
    cur = {k: mask_for(params[k], by_param[k], p) for k, p in pats.items()}
    dense = {k: params[k].detach().clone() for k in pats}
    with torch.no_grad():
        for k, m in cur.items():
            params[k].mul_(m)
    loss = loss_fn()
    loss.backward()
    with torch.no_grad():
        for k, m in cur.items():
            # straight-through: the gradient taken at the masked weights updates the dense weights
            params[k].copy_(dense[k])
            params[k].grad.add_(config.srste_decay * (~m) * dense[k])
    return loss


def digits_data(seed: int = 0):
    """The seeded digits split (see :func:`workloads.zoo.digits_split`)."""
    from workloads import zoo
    return zoo.digits_split(seed=seed)


def digits_validation(seed: int = 0, val_fraction: float = 0.2):
    """The training split of :func:`digits_data` cut in two, stratified and seeded: ``(x_fit, y_fit,
    x_val, y_val)``; ``val_fraction`` of the training rows are held out for selection (never the test
    split). ``val_fraction=0`` gives the whole training split and empty validation tensors."""
    x, y, _, _ = digits_data(seed)
    if not 0.0 <= float(val_fraction) < 1.0:
        raise SearchError(f"val_fraction: expected a number in [0, 1), got {val_fraction!r}")
    if float(val_fraction) == 0.0:
        return x, y, x[:0], y[:0]
    from sklearn.model_selection import train_test_split
    i_fit, i_val = train_test_split(range(x.shape[0]), test_size=float(val_fraction), random_state=int(seed),
                                    stratify=y.numpy())
    i_fit, i_val = torch.as_tensor(i_fit), torch.as_tensor(i_val)
    return x[i_fit], y[i_fit], x[i_val], y[i_val]


@lru_cache(maxsize=8)
def _dense_state(name: str, seed: int, epochs: int, val_fraction: float = 0.0) -> tuple[dict, float]:
    from workloads import zoo
    model, _ = zoo.build(name, seed=seed)
    x, y, _, _ = digits_validation(seed, val_fraction)
    xt, yt = digits_data(seed)[2:]
    train(model, x, y, TrainConfig(epochs=epochs), seed=seed)
    return {k: v.clone() for k, v in model.state_dict().items()}, accuracy(model, xt, yt)


def pretrained_digits(name: str, seed: int = 0, epochs: int = 30, val_fraction: float = 0.0) -> tuple[nn.Module, float]:
    """Zoo model ``name`` (``mlp_digits`` or ``cnn_digits``) trained dense on the digits split of
    ``seed`` from the zoo's ``seed`` weights; returns ``(model, test accuracy in percent)``. With
    ``val_fraction``, trained only on the fit part of :func:`digits_validation` (the held-out rows
    stay unseen). Cached per process: later calls return a fresh copy of the same weights."""
    from workloads import zoo
    if name not in DIGITS_MODELS:
        raise SearchError(f"model '{name}': real-data training is available for {', '.join(DIGITS_MODELS)}")
    state, acc = _dense_state(name, int(seed), int(epochs), float(val_fraction))
    model, _ = zoo.build(name, seed=seed)
    model.load_state_dict(state)
    return model.eval(), acc
