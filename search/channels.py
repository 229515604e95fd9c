"""The channel dependency graph of a model: which layers' output channels feed which layers' inputs.

Removing a conv's output channel (``channel:D``) removes an input channel of every layer that reads
it, so those layers shrink too; and channels that meet in a residual add (or an elementwise product)
must be removed together from every layer that writes them. This is the coupling Torch-Pruning
(Fang et al., "DepGraph: Towards Any Structural Pruning", CVPR 2023) models with its dependency
graph. Here it is built from a ``torch.fx`` trace of the model and the shapes of one forward pass:

* a **group** is a set of channels that must be kept or removed together: the output channels of
  the convs and linears that write them (``producers``), merged by residual adds and elementwise
  products; depthwise convs (``groups == in_channels == out_channels``) pass a group's channels
  straight through (``passes``: their weights shrink with it), and so do batch norms, activations,
  pooling and dropout;
* a **consumer** reads a list of segments (a concatenation along channels puts groups one after the
  other) and, after a flatten, ``factor`` input features per channel (``c * factor + s``, PyTorch's
  flatten order);
* a group is **prunable** unless its channels reach the model's output, the model's input, or an op
  whose use of channels is not modelled (a reshape other than a flatten, a channel slice, a
  normalization over channels, a grouped conv, a module called twice, ...): those keep every
  channel, and ``reason`` says why. A producer of such a group still takes ``channel:D`` as a mask
  (its output columns zeroed), without shrinking its consumers.

:func:`shrink_layer` gives a traced layer with some of its input and output channels removed, as
tracing the physically smaller model gives it; :func:`shrink_model` removes the channels from the
PyTorch model itself.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

import numpy as np

from workloads import ConvGeometry, Layer, Phase, WeightLayout, Workload

from .errors import SearchError


@dataclass(frozen=True)
class ChannelGroup:
    """Channels kept or removed together.

    size:       channels in the group.
    producers:  workload layer indices whose output channels (GEMM columns) are these channels.
    passes:     depthwise conv layers the channels pass through (their channels shrink with the group).
    consumers:  layers that read the group (conv/linear inputs, and the depthwise ones).
    prunable:   False when the channels cannot be removed; ``reason`` says why.
    """

    size: int
    producers: tuple[int, ...]
    passes: tuple[int, ...]
    consumers: tuple[int, ...]
    prunable: bool
    reason: str = ""


@dataclass(frozen=True)
class ChannelInput:
    """How a layer's input channels are laid out: ``segments`` of ``(group index, channels)`` in order
    (a concatenation gives several), each channel ``factor`` input features (a flatten)."""

    segments: tuple[tuple[int, int], ...]
    factor: int = 1

    @property
    def channels(self) -> int:
        return sum(n for _, n in self.segments)


@dataclass
class ChannelGraph:
    """``groups``; ``inputs[l]``: the :class:`ChannelInput` of layer ``l`` (consumers and depthwise
    layers only); ``modules``: ``{module name: (role, ChannelInput | group index)}`` for
    :func:`shrink_model` (roles ``out``, ``in``, ``dw``, ``bn``)."""

    groups: list[ChannelGroup]
    inputs: dict[int, ChannelInput]
    modules: dict[str, tuple[str, object]] = field(default_factory=dict)

    def group_of(self, li: int) -> int:
        """The group whose channels layer ``li`` produces (-1: none)."""
        for g, grp in enumerate(self.groups):
            if li in grp.producers:
                return g
        return -1

    @property
    def prunable(self) -> list[int]:
        return [g for g, grp in enumerate(self.groups) if grp.prunable]


# ----------------------------------------------------------------------------------------- building
@dataclass(frozen=True)
class _Chan:
    segs: tuple[tuple[int, int], ...]    # (atom, channels)
    dim: int                             # the channel axis of the tensor
    factor: int = 1


_PASS_MODULES = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "ReLU", "ReLU6", "GELU", "SiLU", "Sigmoid", "Tanh",
                 "Hardswish", "Hardsigmoid", "LeakyReLU", "ELU", "Mish", "Dropout", "Dropout1d", "Dropout2d",
                 "Dropout3d", "Identity", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d",
                 "AvgPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool2d")
_PASS_NAMES = {"relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid", "leaky_relu", "elu",
               "dropout", "dropout1d", "dropout2d", "contiguous", "clone", "max_pool1d", "max_pool2d", "max_pool3d",
               "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
               "adaptive_avg_pool3d", "adaptive_max_pool2d", "relu_", "sigmoid_", "batch_norm"}
_BINARY = {"add", "mul", "sub", "iadd", "imul", "add_", "mul_", "sub_"}


def _fname(target) -> str:
    return getattr(target, "__name__", str(target)).split(".")[-1]


class _Builder:
    def __init__(self, workload: Workload):
        self.parent: list[int] = []
        self.size: list[int] = []
        self.blocked: dict[int, str] = {}
        self.producers: dict[int, list[int]] = {}
        self.passes: dict[int, list[int]] = {}      # layer -> its segments (ChannelInput over atoms)
        self.inputs: dict[int, tuple] = {}
        self.modules: dict[str, tuple] = {}
        self.by_module: dict[str, list[int]] = {}
        for li, layer in enumerate(workload.layers):
            if layer.phase is Phase.FORWARD and layer.module:
                self.by_module.setdefault(layer.module, []).append(li)
        self.workload = workload

    def atom(self, size: int, reason: str = "") -> int:
        self.parent.append(len(self.parent))
        self.size.append(int(size))
        if reason:
            self.blocked[len(self.parent) - 1] = reason
        return len(self.parent) - 1

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra

    def block(self, chan, reason: str) -> None:
        if isinstance(chan, _Chan):
            for a, _ in chan.segs:
                self.blocked.setdefault(a, reason)

    def layer_of(self, target: str, where: str):
        lis = self.by_module.get(target, [])
        return lis[0] if len(lis) == 1 else None


def _shape(node):
    tm = node.meta.get("tensor_meta") if hasattr(node, "meta") else None
    return tuple(tm.shape) if tm is not None and hasattr(tm, "shape") else None


def channel_graph(model, example_inputs, workload: Workload) -> ChannelGraph:
    """The channel dependency graph of ``model`` (an ``nn.Module``), mapped onto ``workload`` (its
    trace: layers are matched by module path). ``example_inputs``: a tensor or a tuple of them.
    Raises :class:`SearchError` when ``torch.fx`` cannot trace the model (data-dependent control flow)."""
    import torch
    from torch import fx
    from torch.fx.passes.shape_prop import ShapeProp

    inputs = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    modes = {m: m.training for m in model.modules()}
    try:
        gm = fx.symbolic_trace(model)
        gm.eval()                      # one forward for the shapes; batch norm statistics stay as they are
        with torch.no_grad():
            ShapeProp(gm).propagate(*inputs)
    except Exception as e:   # noqa: BLE001 - fx raises many types; one line names the cause
        msg = (str(e).splitlines() or [""])[0][:160]
        raise SearchError(f"channel graph of '{workload.name}': torch.fx cannot trace the model "
                          f"({type(e).__name__}: {msg})") from None
    finally:
        for m, mode in modes.items():
            m.train(mode)
    b = _Builder(workload)
    mods = dict(gm.named_modules())
    env: dict = {}

    def chan_of(arg):
        return env.get(arg) if isinstance(arg, fx.Node) else None

    def all_chans(args):
        out = []
        for a in args:
            if isinstance(a, (list, tuple)):
                out += all_chans(a)
            elif isinstance(a, fx.Node) and isinstance(env.get(a), _Chan):
                out.append(env[a])
        return out

    def unknown(node, why):
        for c in all_chans(list(node.args) + list(node.kwargs.values())):
            b.block(c, why)
        env[node] = None

    for node in gm.graph.nodes:
        shape = _shape(node)
        if node.op == "placeholder":
            env[node] = _Chan(((b.atom(shape[1], "the model's input"), shape[1]),), 1) \
                if shape is not None and len(shape) >= 2 else None
            continue
        if node.op == "get_attr":
            env[node] = None
            continue
        if node.op == "output":
            for c in all_chans(node.args):
                b.block(c, "reaches the model's output")
            continue
        x = chan_of(node.args[0]) if node.args else None
        if node.op == "call_module":
            mod = mods[node.target]
            kind = type(mod).__name__
            if kind in ("Conv1d", "Conv2d", "Conv3d", "Linear"):
                li = b.layer_of(node.target, node.name)
                is_conv = kind != "Linear"
                cin = mod.in_channels if is_conv else mod.in_features
                cout = mod.out_channels if is_conv else mod.out_features
                groups = mod.groups if is_conv else 1
                in_dim = 1 if is_conv else (len(shape) - 1 if shape else 1)
                depthwise = is_conv and groups > 1 and groups == cin == cout
                if li is None:
                    b.block(x, f"module '{node.target}' is not one traced layer (called twice, or not traced)")
                    env[node] = _Chan(((b.atom(cout, f"module '{node.target}' is not one traced layer"), cout),),
                                      in_dim)
                    continue
                if x is not None and (x.dim != in_dim or sum(n for _, n in x.segs) * x.factor != cin):
                    b.block(x, f"'{node.target}' reads its channels through a reshape that is not modelled")
                    x = None
                if depthwise and x is not None and x.factor == 1:
                    b.passes[li] = x.segs
                    b.inputs[li] = (x.segs, 1)
                    b.modules[node.target] = ("dw", x.segs)
                    env[node] = x
                    continue
                if groups > 1:
                    b.block(x, f"grouped conv '{node.target}' (groups={groups}) is not channel-pruned")
                    env[node] = _Chan(((b.atom(cout, f"grouped conv '{node.target}'"), cout),), in_dim)
                    continue
                if x is not None:
                    b.inputs[li] = (x.segs, x.factor)
                    b.modules[node.target] = ("in", (x.segs, x.factor))
                a = b.atom(cout)
                b.producers[a] = [li]
                b.modules[node.target + "#out"] = ("out", a)
                env[node] = _Chan(((a, cout),), in_dim)
                continue
            if kind.startswith("BatchNorm"):
                if x is not None and x.dim == 1 and x.factor == 1:
                    b.modules[node.target] = ("bn", x.segs)
                    env[node] = x
                else:
                    unknown(node, f"batch norm '{node.target}' on a reshaped tensor")
                continue
            if kind in _PASS_MODULES:
                env[node] = x
                continue
            if kind == "Flatten" and x is not None:
                env[node] = _flatten(x, _shape(node.args[0]), mod.start_dim, mod.end_dim)
                if env[node] is None:
                    unknown(node, f"flatten '{node.target}' over the channel axis")
                continue
            unknown(node, f"module '{node.target}' ({kind}) is not modelled for channel pruning")
            continue
        name = _fname(node.target)
        if node.op == "call_method" and name in ("size", "dim"):
            env[node] = None
            continue
        if name in _PASS_NAMES:
            env[node] = x
            continue
        if name in ("flatten",) and x is not None:
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
            env[node] = _flatten(x, _shape(node.args[0]), start, end)
            if env[node] is None:
                unknown(node, f"'{node.name}' flattens over the channel axis")
            continue
        if name in ("view", "reshape") and x is not None:
            ins = _shape(node.args[0])
            env[node] = _flatten(x, ins, 1, -1) if (shape is not None and ins is not None and len(shape) == 2
                                                    and shape[0] == ins[0]) else None
            if env[node] is None:
                unknown(node, f"'{node.name}' reshapes the channel axis")
            continue
        if name in _BINARY or node.target in (operator.add, operator.mul, operator.sub, operator.iadd):
            chans = [chan_of(a) for a in node.args[:2]]
            tensors = [isinstance(a, fx.Node) and _shape(a) is not None for a in node.args[:2]]
            c = [ch for ch in chans if isinstance(ch, _Chan)]
            if len(c) == 2:
                p, q = c
                if p.dim == q.dim and p.factor == q.factor and [n for _, n in p.segs] == [n for _, n in q.segs]:
                    for (a1, _), (a2, _) in zip(p.segs, q.segs):
                        b.union(a1, a2)
                    env[node] = p
                else:
                    b.block(p, f"'{node.name}' combines channels laid out differently")
                    b.block(q, f"'{node.name}' combines channels laid out differently")
                    env[node] = None
            elif len(c) == 1 and sum(tensors) <= 1:      # with a scalar: channels pass
                env[node] = c[0]
            else:
                unknown(node, f"'{node.name}' combines a channel tensor with an untracked tensor")
            continue
        if name == "cat":
            tensors = node.args[0] if node.args else node.kwargs.get("tensors")
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            cs = [chan_of(t) for t in tensors]
            nd = len(shape) if shape else 0
            if cs and all(isinstance(c, _Chan) for c in cs) and nd and dim % nd == cs[0].dim % nd \
                    and all(c.dim % nd == cs[0].dim % nd and c.factor == 1 for c in cs):
                env[node] = _Chan(tuple(s for c in cs for s in c.segs), cs[0].dim)
            else:
                unknown(node, f"'{node.name}' concatenates along another axis or untracked tensors")
            continue
        unknown(node, f"'{node.name}' ({name}) is not modelled for channel pruning")

    # groups: one per union-find root that has producers
    roots: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    for a in range(len(b.parent)):
        members.setdefault(b.find(a), []).append(a)
    groups: list[ChannelGroup] = []
    for r, atoms in members.items():
        roots[r] = len(groups)
        prods = sorted(li for a in atoms for li in b.producers.get(a, []))
        why = next((b.blocked[a] for a in atoms if a in b.blocked), "")
        if not prods and not why:
            why = "no conv or linear writes these channels"
        groups.append(ChannelGroup(size=b.size[r], producers=tuple(prods), passes=(), consumers=(),
                                   prunable=not why, reason=why))

    def gsegs(segs):
        return tuple((roots[b.find(a)], n) for a, n in segs)

    inputs = {li: ChannelInput(gsegs(s), f) for li, (s, f) in b.inputs.items()}
    passes: dict[int, list[int]] = {}
    consumers: dict[int, list[int]] = {}
    for li, ci in inputs.items():
        for g, _ in ci.segments:
            consumers.setdefault(g, []).append(li)
            if li in b.passes:
                passes.setdefault(g, []).append(li)
    groups = [ChannelGroup(size=g.size, producers=g.producers, passes=tuple(sorted(set(passes.get(i, [])))),
                           consumers=tuple(sorted(set(consumers.get(i, [])))), prunable=g.prunable, reason=g.reason)
              for i, g in enumerate(groups)]
    modules = {}
    for name, (role, what) in b.modules.items():
        if role == "out":
            modules[name[:-4]] = modules.get(name[:-4], ()) + (("out", roots[b.find(what)]),)
        elif role == "in":
            modules[name] = modules.get(name, ()) + (("in", ChannelInput(gsegs(what[0]), what[1])),)
        else:
            modules[name] = modules.get(name, ()) + ((role, ChannelInput(gsegs(what))),)
    return ChannelGraph(groups=groups, inputs=inputs, modules=modules)


def _flatten(x: _Chan, in_shape, start, end):
    """A flatten from ``start`` to the last axis of a tensor whose channel axis is ``x.dim``: the
    channels stay (each now ``factor`` features) when the flatten starts at the channel axis."""
    if in_shape is None:
        return None
    nd = len(in_shape)
    start, end = start % nd, end % nd
    if start > x.dim or end < x.dim:
        return x if end < x.dim else None    # flattening only the batch axes before it (not modelled: None)
    if start != x.dim or end != nd - 1:
        return None
    return _Chan(x.segs, x.dim, x.factor * int(math.prod(in_shape[x.dim + 1:])))


# ----------------------------------------------------------------------------------------- shrinking
def input_keep(ci: ChannelInput, kept: dict[int, np.ndarray]) -> np.ndarray:
    """The input features a layer keeps: for each segment, the kept channels of its group (all of
    them when ``kept`` has no entry for it), each expanded to ``ci.factor`` features."""
    idx, off = [], 0
    for g, n in ci.segments:
        ch = kept.get(g)
        idx.append(off + (np.arange(n) if ch is None else np.asarray(ch)))
        off += n
    chans = np.concatenate(idx) if idx else np.zeros(0, np.int64)
    if ci.factor == 1:
        return chans
    return (chans[:, None] * ci.factor + np.arange(ci.factor)[None, :]).ravel()


def shrink_layer(layer: Layer, keep_in: np.ndarray | None, keep_out: np.ndarray | None,
                 depthwise: bool = False) -> Layer:
    """``layer`` (a traced conv or linear, unmasked) with only the input features ``keep_in`` and the
    output channels ``keep_out`` (None: all), shaped as tracing the smaller model gives it: ``k``,
    ``n`` (or ``groups`` for a depthwise conv, whose ``keep_in`` are its channels) and the conv
    geometry shrink, ``m`` does not."""
    w = layer.weight
    if w is None or layer.weight_layout not in (WeightLayout.CONV, WeightLayout.NK):
        raise SearchError(f"layer '{layer.name}': only a traced conv or linear weight can lose channels")
    if depthwise:
        keep = np.arange(w.shape[0]) if keep_in is None else np.asarray(keep_in)
        w2 = np.ascontiguousarray(w[keep])
        g = len(keep)
        conv = _geom(layer.conv, in_channels=g, out_channels=g, groups=g)
        return layer.replace(weight=w2, mask=None, pattern=None, groups=g, conv=conv)
    if keep_out is not None:
        w = w[np.asarray(keep_out)]
    if keep_in is not None:
        w = w[:, np.asarray(keep_in)]
    w = np.ascontiguousarray(w)
    n, cin = w.shape[0], w.shape[1]
    if layer.weight_layout is WeightLayout.CONV:
        conv = _geom(layer.conv, in_channels=cin * layer.groups, out_channels=n)
        return layer.replace(weight=w, mask=None, pattern=None, n=n, k=cin * int(math.prod(w.shape[2:])), conv=conv)
    return layer.replace(weight=w, mask=None, pattern=None, n=n, k=cin)


def _geom(conv: ConvGeometry | None, **changes):
    import dataclasses
    return None if conv is None else dataclasses.replace(conv, **changes)


def shrink_model(model, graph: ChannelGraph, kept: dict[int, np.ndarray]):
    """Remove channels from ``model`` in place: ``kept`` is ``{group index: kept channel indices}``
    (groups not named keep all). Producers lose output channels (and bias entries), batch norms
    their features and running statistics, depthwise convs their channels, consumers their input
    channels (or features, after a flatten). Returns ``model``."""
    import torch

    mods = dict(model.named_modules())
    kept = {int(g): np.sort(np.asarray(k, dtype=np.int64)) for g, k in kept.items()}
    for g in kept:
        if not graph.groups[g].prunable:
            raise SearchError(f"shrink_model: channel group {g} cannot be pruned ({graph.groups[g].reason})")

    def cut(t, idx, dim):
        return torch.nn.Parameter(t.detach().index_select(dim, torch.as_tensor(idx)).clone(),
                                  requires_grad=t.requires_grad)

    def cut_out(mod, idx):          # output channels: the weight's first axis and the bias
        mod.weight = cut(mod.weight, idx, 0)
        if getattr(mod, "bias", None) is not None:
            mod.bias = cut(mod.bias, idx, 0)

    def resize(mod, conv_attr, linear_attr, n):
        setattr(mod, conv_attr if hasattr(mod, conv_attr) else linear_attr, n)

    with torch.no_grad():
        for name, roles in graph.modules.items():
            mod = mods[name]
            for role, what in roles:
                idx = kept.get(what) if role == "out" else input_keep(what, kept)
                if idx is None:
                    continue
                if role == "out":
                    cut_out(mod, idx)
                    resize(mod, "out_channels", "out_features", len(idx))
                elif role == "in" and len(idx) != mod.weight.shape[1]:
                    mod.weight = cut(mod.weight, idx, 1)
                    resize(mod, "in_channels", "in_features", len(idx))
                elif role == "dw" and len(idx) != mod.weight.shape[0]:
                    cut_out(mod, idx)
                    mod.in_channels = mod.out_channels = mod.groups = len(idx)
                elif role == "bn" and len(idx) != mod.num_features:
                    if mod.weight is not None:
                        cut_out(mod, idx)
                    if mod.running_mean is not None:
                        mod.running_mean = mod.running_mean.index_select(0, torch.as_tensor(idx)).clone()
                        mod.running_var = mod.running_var.index_select(0, torch.as_tensor(idx)).clone()
                    mod.num_features = len(idx)
    return model
