"""Trace a PyTorch model into a :class:`Workload` at the aten-op level.

A :class:`torch.utils._python_dispatch.TorchDispatchMode` sees every aten op the model runs,
functional calls included (the way ``torch.utils.flop_counter`` counts FLOPs). GEMM-shaped ops
become :class:`Layer` s through handlers registered per op; non-GEMM arithmetic (elementwise, norms,
pooling, activations, softmax, reductions) is listed with its element count; ops that only move or
create data are passed over; any other op raises :class:`UnsupportedOpError`, so nothing is silently
counted as free.

Which operand is a weight: every parameter is a root; an op whose tensor inputs all come from
parameters or buffers (a transpose, ``weight_orig * weight_mask``, a parametrization) yields a tensor
that still comes from that parameter, with a flag that says whether it is the parameter transposed.
Anything that depends on an input is an activation.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.weak import WeakIdKeyDictionary

from .errors import MaskError, TraceError, UnsupportedOpError
from .layer import ConvGeometry, Layer, LayerKind
from .layout import WeightLayout
from .workload import OtherOp, Workload

aten = torch.ops.aten

# ---------------------------------------------------------------------------------------------------
# Op classification. Keys are overload packets (aten.add covers add.Tensor, add_.Tensor via add_...).
_HANDLERS: dict = {}


def register(*ops) -> Callable:
    """Register a GEMM handler for aten overload packets; a packet may have only one handler."""
    def deco(fn):
        for op in ops:
            if op in _HANDLERS:
                raise RuntimeError(f"a handler for {op} is already registered")
            _HANDLERS[op] = fn
        return fn
    return deco


def _packets(names: Iterable[str]) -> set:
    out = set()
    for n in names:
        op = getattr(aten, n, None)
        if op is not None:
            out.add(op)
    return out


_CATEGORIES = {
    "elementwise": """add add_ sub sub_ rsub mul mul_ div div_ neg abs pow sqrt rsqrt exp exp2 expm1 log log2
        log1p reciprocal clamp clamp_ clamp_min clamp_max maximum minimum where masked_fill masked_fill_
        addcmul addcdiv lerp floor ceil round trunc sign sgn eq ne lt le gt ge logical_not logical_and
        logical_or logical_xor bitwise_not bitwise_and bitwise_or bitwise_xor tril triu fmod remainder
        floor_divide sin cos tan erf erfinv square native_dropout bernoulli isnan isinf nan_to_num
        cumsum cumprod""",
    "activation": """relu relu_ gelu gelu_ silu silu_ sigmoid sigmoid_ tanh tanh_ hardtanh hardtanh_ hardswish
        hardswish_ hardsigmoid hardsigmoid_ leaky_relu leaky_relu_ elu elu_ softplus mish mish_ glu
        threshold prelu _prelu_kernel celu selu log_sigmoid_forward""",
    "softmax": "_softmax _log_softmax _safe_softmax",
    "norm": """native_layer_norm native_batch_norm _native_batch_norm_legit _native_batch_norm_legit_no_training
        _native_batch_norm_legit_functional native_group_norm _fused_rms_norm""",
    "pool": """max_pool1d max_pool2d max_pool3d max_pool2d_with_indices max_pool3d_with_indices avg_pool1d
        avg_pool2d avg_pool3d _adaptive_avg_pool2d _adaptive_avg_pool3d adaptive_avg_pool1d
        adaptive_max_pool1d adaptive_max_pool2d""",
    "reduction": """sum mean amax amin max min argmax argmin var var_mean std std_mean linalg_vector_norm norm prod
        logsumexp any all topk sort""",
    "lookup": "embedding embedding_bag index_select gather _embedding_bag",
}
_CATEGORY_OF: dict = {}
for _cat, _names in _CATEGORIES.items():
    for _p in _packets(_names.split()):
        _CATEGORY_OF[_p] = _cat

# Ops that only create, copy, view or rearrange data: no arithmetic to account for.
_NO_ARITH = _packets("""view _unsafe_view reshape _reshape_alias permute transpose transpose_ t expand expand_as
    clone contiguous detach detach_ alias slice select cat stack split split_with_sizes chunk unbind
    unsqueeze unsqueeze_ squeeze squeeze_ flatten unflatten _to_copy copy_ copy empty empty_like
    empty_strided new_empty new_empty_strided zeros zeros_like ones ones_like full full_like new_zeros
    new_ones new_full fill_ fill zero_ arange lift_fresh lift_fresh_copy as_strided index index_put
    index_put_ scalar_tensor roll flip repeat constant_pad_nd pad narrow _local_scalar_dense
    view_as normal_ uniform_ randn rand randint randperm resolve_conj resolve_neg pixel_shuffle
    pixel_unshuffle channel_shuffle view_as_real view_as_complex set_ _assert_async
    _assert_tensor_metadata _unsafe_index select_scatter slice_scatter masked_select nonzero
    unfold im2col col2im _to_dtype to dim sym_size sym_stride sym_numel is_same_size
    linspace tensor_split movedim moveaxis diagonal diag_embed tile broadcast_to _unsafe_view_copy
    split_copy unbind_copy alias_copy upsample_nearest2d _assert_scalar""".split())


@dataclass(frozen=True)
class _ParamRef:
    """A tensor that comes from parameter ``root`` (``transposed`` when it is the root's transpose)."""

    root: str
    transposed: bool = False


_CONST = "const"   # comes from buffers or constants only

_TRANSPOSING = _packets(["t", "transpose", "transpose_"])


def _flips(func, args) -> bool:
    """Does this view op swap the last two dims of a 2-D (or batched) tensor?"""
    pk = func.overloadpacket
    if pk is aten.t:
        return True
    if pk in (aten.transpose, getattr(aten, "transpose_", None)):
        x, d0, d1 = args[0], args[1], args[2]
        nd = x.dim()
        return {d0 % nd, d1 % nd} == {nd - 2, nd - 1}
    if pk is aten.permute:
        x, dims = args[0], list(args[1])
        nd = x.dim()
        dims = [d % nd for d in dims]
        return nd >= 2 and dims[:-2] == list(range(nd - 2)) and dims[-2:] == [nd - 1, nd - 2]
    return False


def _bits(t: torch.Tensor) -> int:
    if t.dtype == torch.bool:
        return 1
    return t.element_size() * 8


class _Tracer(TorchDispatchMode):
    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # TorchDispatchMode wraps __torch_dispatch__ in torch._disable_dynamo, whose first call
        # imports torch._dynamo (seconds, most of a first trace). Tracing never runs under
        # torch.compile, so there is nothing to disable.
        return False

    def __init__(self, params: dict, buffers: Iterable[torch.Tensor], ignore_ops: set, copy_weights: bool = True):
        super().__init__()
        self.copy_weights = copy_weights
        self.taint = WeakIdKeyDictionary()
        self.param_storage: dict = {}
        for name, p in params.items():
            self.taint[p] = _ParamRef(name)
            self.param_storage[(p.untyped_storage().data_ptr(), tuple(p.shape), tuple(p.stride()))] = name
        for b in buffers:
            self.taint[b] = _CONST
        self.ignore_ops = ignore_ops
        self.module_stack: list[str] = []
        self.layers: list[dict] = []
        self.others: "OrderedDict[tuple, list]" = OrderedDict()

    # -- provenance ------------------------------------------------------------------------------
    def source(self, t):
        """_ParamRef, _CONST, or None (activation) for a tensor."""
        if not isinstance(t, torch.Tensor):
            return _CONST
        s = self.taint.get(t)
        if s is not None:
            return s
        name = self.param_storage.get((t.untyped_storage().data_ptr(), tuple(t.shape), tuple(t.stride())))
        return _ParamRef(name) if name else None

    def _propagate(self, func, args, kwargs, out):
        tensors = [a for a in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
        pk = func.overloadpacket
        if not tensors:
            src = _CONST
        elif pk in (aten.lift_fresh, aten.lift_fresh_copy):
            src = _CONST
        else:
            srcs = [self.source(t) for t in tensors]
            if any(s is None for s in srcs):
                src = None
            else:
                refs = [s for s in srcs if isinstance(s, _ParamRef)]
                if refs:
                    r = refs[0]
                    src = _ParamRef(r.root, r.transposed ^ _flips(func, args)) if pk in _TRANSPOSING or pk is aten.permute else r
                else:
                    src = _CONST
        for o in torch.utils._pytree.tree_leaves(out):
            if isinstance(o, torch.Tensor):
                if src is None:
                    if o in self.taint:
                        del self.taint[o]
                else:
                    self.taint[o] = src

    # -- dispatch ----------------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        pk = func.overloadpacket
        module = self.module_stack[-1] if self.module_stack else ""
        handler = _HANDLERS.get(pk)
        if handler is not None:
            handler(self, func, args, kwargs, out, module)
        elif pk in _CATEGORY_OF:
            self._other(module, pk, _CATEGORY_OF[pk], args, out)
        elif pk in _NO_ARITH:
            pass
        elif str(pk) in self.ignore_ops or pk.__name__ in self.ignore_ops:
            self._other(module, pk, "ignored", args, out)
        else:
            raise UnsupportedOpError(str(pk), module)
        self._propagate(func, args, kwargs, out)
        return out

    def _other(self, module, pk, category, args, out):
        if category in ("reduction", "lookup", "pool"):
            first = args[0] if args and isinstance(args[0], torch.Tensor) else None
            elements = first.numel() if first is not None else 0
            if category == "lookup" and len(args) > 1 and isinstance(args[1], torch.Tensor):
                elements = sum(o.numel() for o in torch.utils._pytree.tree_leaves(out) if isinstance(o, torch.Tensor))
        else:
            leaves = [o for o in torch.utils._pytree.tree_leaves(out) if isinstance(o, torch.Tensor)]
            elements = leaves[0].numel() if leaves else 0
        self._count(module, pk, category, elements)

    def _count(self, module, pk, category, elements):
        key = (module, str(pk), category)
        rec = self.others.setdefault(key, [0, 0])
        rec[0] += int(elements)
        rec[1] += 1

    def snapshot(self, value: np.ndarray) -> np.ndarray:
        """A C-contiguous weight array: a copy, or (``copy_weights=False``) a read-only view of the
        parameter's memory when it already is contiguous (no copy of a model the caller throws away)."""
        if self.copy_weights:
            return np.array(value, order="C")
        out = np.ascontiguousarray(value)
        out = out.view()
        out.flags.writeable = False
        return out

    # -- layer recording ---------------------------------------------------------------------------
    def add_layer(self, *, module, op, kind, m, n, k, groups=1, a, w, o, suffix="", conv=None,
                  right_is_weight=True):
        """Record a GEMM. ``w`` is the right operand as a (groups, k, n) or (k, n) tensor."""
        src = self.source(w) if right_is_weight else None
        rec = dict(module=module, op=str(op), kind=kind, m=int(m), n=int(n), k=int(k), groups=int(groups),
                   conv=conv, suffix=suffix, a_bits=_bits(a), w_bits=_bits(w), o_bits=_bits(o),
                   weight_name=None, weight=None, weight_layout=None)
        if isinstance(src, _ParamRef):
            rec["weight_name"] = src.root
            value = w.detach().to(torch.float32).cpu().numpy()   # a view of the parameter
            if kind in (LayerKind.CONV1D, LayerKind.CONV2D, LayerKind.CONV3D):
                rec["weight"], rec["weight_layout"] = self.snapshot(value), WeightLayout.CONV
            elif value.ndim == 2 and src.transposed:
                # the parameter's own (n, k) layout: for nn.Linear the contiguous parameter itself
                rec["weight"], rec["weight_layout"] = self.snapshot(value.T), WeightLayout.NK
            else:
                rec["weight"], rec["weight_layout"] = self.snapshot(value), WeightLayout.KN
        self.layers.append(rec)


def _weight_operand(tr: _Tracer, a, b):
    """For ``a @ b``: return (lhs, rhs, swapped) so that a parameter operand, if any, is on the right.

    ``O = A B`` with A the parameter is computed as ``O^T = B^T A^T``: the GEMM's rows become the
    activation's columns.
    """
    sa, sb = tr.source(a), tr.source(b)
    if isinstance(sa, _ParamRef) and not isinstance(sb, _ParamRef):
        return b.transpose(-2, -1), a.transpose(-2, -1), True
    return a, b, False


def _derive_ref(tr: _Tracer, orig, new, flip: bool = False):
    """Mark ``new`` (a view the handler made of ``orig``) as coming from the same parameter."""
    s = tr.source(orig)
    if isinstance(s, _ParamRef):
        tr.taint[new] = _ParamRef(s.root, s.transposed ^ flip)


def _swap_ref(tr: _Tracer, orig, swapped):
    _derive_ref(tr, orig, swapped, flip=True)


@register(aten.mm, aten.addmm, aten.bmm, aten.baddbmm)
def _matmul(tr, func, args, kwargs, out, module):
    pk = func.overloadpacket
    a, b = (args[0], args[1]) if pk in (aten.mm, aten.bmm) else (args[1], args[2])
    lhs, rhs, swapped = _weight_operand(tr, a, b)
    if swapped:
        _swap_ref(tr, a, rhs)
    groups = lhs.shape[0] if lhs.dim() == 3 else 1
    m, k = lhs.shape[-2], lhs.shape[-1]
    n = rhs.shape[-1]
    if lhs.dim() == 3:
        kind = LayerKind.BMM
    else:
        kind = LayerKind.LINEAR if isinstance(tr.source(rhs), _ParamRef) else LayerKind.MATMUL
    tr.add_layer(module=module, op=pk, kind=kind, m=m, n=n, k=k, groups=groups, a=lhs, w=rhs, o=out)


@register(aten.mv, aten.addmv)
def _mv(tr, func, args, kwargs, out, module):
    a, v = (args[0], args[1]) if func.overloadpacket is aten.mv else (args[1], args[2])
    rows, k = a.shape
    if isinstance(tr.source(a), _ParamRef):
        # A parameter matrix times an activation vector: the vector is the one streamed row.
        wt = a.t()
        _swap_ref(tr, a, wt)
        tr.add_layer(module=module, op=func.overloadpacket, kind=LayerKind.LINEAR, m=1, n=rows, k=k,
                     a=v, w=wt, o=out)
    else:
        col = v.reshape(-1, 1)
        _derive_ref(tr, v, col)
        tr.add_layer(module=module, op=func.overloadpacket, kind=LayerKind.MATMUL, m=rows, n=1, k=k,
                     a=a, w=col, o=out)


@register(aten.dot, aten.vdot)
def _dot(tr, func, args, kwargs, out, module):
    a, b = args[0], args[1]
    col = b.reshape(-1, 1)
    _derive_ref(tr, b, col)
    tr.add_layer(module=module, op=func.overloadpacket, kind=LayerKind.MATMUL, m=1, n=1, k=a.numel(),
                 a=a, w=col, o=out)


@register(aten.convolution, aten._convolution)
def _conv(tr, func, args, kwargs, out, module):
    x, w = args[0], args[1]
    stride, padding, dilation, transposed = args[3], args[4], args[5], args[6]
    groups = args[8]
    if transposed:
        raise UnsupportedOpError(str(func.overloadpacket), module, "transposed convolution is not modelled")
    nd = w.dim() - 2
    kind = {1: LayerKind.CONV1D, 2: LayerKind.CONV2D, 3: LayerKind.CONV3D}.get(nd)
    if kind is None:
        raise UnsupportedOpError(str(func.overloadpacket), module, f"{nd}-d convolution is not modelled")
    batch = x.shape[0] if x.dim() == nd + 2 else 1
    cout, cin_g = w.shape[0], w.shape[1]
    kernel = tuple(int(s) for s in w.shape[2:])
    out_sp = tuple(int(s) for s in out.shape[-nd:])
    conv = ConvGeometry(in_channels=cin_g * groups, out_channels=int(cout), kernel=kernel,
                        stride=_tup(stride, nd), padding=_tup(padding, nd), dilation=_tup(dilation, nd),
                        groups=int(groups), input_size=tuple(int(s) for s in x.shape[-nd:]), output_size=out_sp)
    tr.add_layer(module=module, op=func.overloadpacket, kind=kind, m=batch * math.prod(out_sp),
                 n=cout // groups, k=cin_g * math.prod(kernel), groups=groups, a=x, w=w, o=out, conv=conv)


def _tup(v, nd):
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    if len(v) == 1:
        v = v * nd
    return tuple(int(x) for x in v)


_SDPA = _packets(["_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
                  "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
                  "_scaled_dot_product_fused_attention_overrideable"])


def _sdpa(tr, func, args, kwargs, out, module):
    q, k, v = args[0], args[1], args[2]
    b = math.prod(q.shape[:-2])
    lq, e = q.shape[-2], q.shape[-1]
    lk, ev = k.shape[-2], v.shape[-1]
    o = out[0] if isinstance(out, (tuple, list)) else out
    # QK^T: every (batch, head) is a GEMM Lq x Lk x E; AV: Lq x Ev x Lk. (Causal masking is not
    # treated as sparsity: the hardware computes the full score matrix, as FlopCounterMode counts.)
    tr.add_layer(module=module, op=func.overloadpacket, kind=LayerKind.ATTENTION, m=lq, n=lk, k=e, groups=b,
                 a=q, w=k, o=o, suffix="qk", right_is_weight=False)
    tr.add_layer(module=module, op=func.overloadpacket, kind=LayerKind.ATTENTION, m=lq, n=ev, k=lk, groups=b,
                 a=q, w=v, o=o, suffix="av", right_is_weight=False)


for _p in _SDPA:
    register(_p)(_sdpa)



def _bind(func, args, kwargs) -> dict:
    """The op's arguments by schema name (positional and keyword alike)."""
    names = [a.name for a in func._schema.arguments]
    out = {a.name: a.default_value for a in func._schema.arguments if a.has_default_value()}
    out.update(zip(names, args))
    out.update(kwargs)
    return out


def _attention_gemms(tr, func, module, prefix, q, k, v, embed_dim, heads, qkv_w, proj_w, out):
    """The GEMMs of multi-head attention as ``F.multi_head_attention_forward`` runs them: the
    in-projection (one GEMM when query, key and value are one tensor, else one per input, each with
    its slice of ``qkv_w``), QK^T and AV per (batch, head), and the out-projection."""
    def rows(t):
        return math.prod(t.shape[:-1])
    lq = q.shape[-2] if q.dim() >= 2 else 1
    lk = k.shape[-2] if k.dim() >= 2 else 1
    batch = math.prod(q.shape[:-2]) if q.dim() >= 3 else 1
    e, h = int(embed_dim), int(heads)
    if e % h:
        raise UnsupportedOpError(str(func.overloadpacket), module, f"embed_dim {e} is not a multiple of "
                                 f"num_heads {h}")
    d = e // h
    pk = func.overloadpacket
    if q is k and k is v:
        wt = qkv_w.t()
        _swap_ref(tr, qkv_w, wt)
        tr.add_layer(module=module, op=pk, kind=LayerKind.LINEAR, m=rows(q), n=3 * e, k=e, a=q, w=wt, o=out,
                     suffix=f"{prefix}in_proj")
    else:
        for i, (part, x) in enumerate((("q", q), ("k", k), ("v", v))):
            w_i = qkv_w[i * e:(i + 1) * e]
            _derive_ref(tr, qkv_w, w_i)
            wt = w_i.t()
            _swap_ref(tr, w_i, wt)
            tr.add_layer(module=module, op=pk, kind=LayerKind.LINEAR, m=rows(x), n=e, k=e, a=x, w=wt, o=out,
                         suffix=f"{prefix}in_proj_{part}")
    # QK^T: Lq x Lk x d per (batch, head); AV: Lq x d x Lk. Weightless, as for scaled_dot_product_attention.
    tr.add_layer(module=module, op=pk, kind=LayerKind.ATTENTION, m=lq, n=lk, k=d, groups=batch * h,
                 a=q, w=k, o=out, suffix=f"{prefix}qk", right_is_weight=False)
    tr.add_layer(module=module, op=pk, kind=LayerKind.ATTENTION, m=lq, n=d, k=lk, groups=batch * h,
                 a=q, w=v, o=out, suffix=f"{prefix}av", right_is_weight=False)
    tr._count(module, pk, "softmax", batch * h * lq * lk)
    wt = proj_w.t()
    _swap_ref(tr, proj_w, wt)
    tr.add_layer(module=module, op=pk, kind=LayerKind.LINEAR, m=rows(q), n=e, k=e, a=q, w=wt, o=out,
                 suffix=f"{prefix}out_proj")


@register(aten._native_multi_head_attention)
def _native_mha(tr, func, args, kwargs, out, module):
    """``nn.MultiheadAttention``'s fused inference path (eval mode, no grad)."""
    b = _bind(func, args, kwargs)
    _attention_gemms(tr, func, module, "", b["query"], b["key"], b["value"], b["embed_dim"], b["num_head"],
                     b["qkv_weight"], b["proj_weight"], out[0])


@register(aten._transformer_encoder_layer_fwd)
def _encoder_layer(tr, func, args, kwargs, out, module):
    """``nn.TransformerEncoderLayer``'s fused inference path: self-attention, then the feed-forward
    ``linear2(act(linear1(x)))``; layers are named after the modules the unfused path would use."""
    b = _bind(func, args, kwargs)
    src = b["src"]
    if src.is_nested:
        raise UnsupportedOpError(str(func.overloadpacket), module, "nested-tensor inputs are not modelled")
    _attention_gemms(tr, func, module, "self_attn.", src, src, src, b["embed_dim"], b["num_heads"],
                     b["qkv_weight"], b["proj_weight"], out)
    rows = math.prod(src.shape[:-1])
    pk = func.overloadpacket
    w1, w2 = b["ffn_weight_1"], b["ffn_weight_2"]
    hidden, e = w1.shape
    for name, w, n, k in (("linear1", w1, hidden, e), ("linear2", w2, e, hidden)):
        wt = w.t()
        _swap_ref(tr, w, wt)
        tr.add_layer(module=module, op=pk, kind=LayerKind.LINEAR, m=rows, n=n, k=k, a=src, w=wt, o=out,
                     suffix=name)
    tr._count(module, pk, "activation", rows * hidden)
    tr._count(module, pk, "norm", 2 * rows * e)

# ---------------------------------------------------------------------------------------------------
def _install_module_hooks(model: torch.nn.Module, tracer: _Tracer) -> list:
    handles = []
    for name, mod in model.named_modules():
        def pre(_m, _inp, _name=name):
            tracer.module_stack.append(_name)

        def post(_m, _inp, _out):
            if tracer.module_stack:
                tracer.module_stack.pop()
        handles.append(mod.register_forward_pre_hook(pre))
        handles.append(mod.register_forward_hook(post, always_call=True))
    return handles


def _canonical_weight_name(root: str) -> str:
    """``conv.weight_orig`` (torch.nn.utils.prune) and ``conv.parametrizations.weight.original``
    (torch.nn.utils.parametrize, torch.ao.pruning) both name ``conv.weight``."""
    if root.endswith("_orig"):
        return root[: -len("_orig")]
    parts = root.split(".")
    if len(parts) >= 3 and parts[-1] == "original" and parts[-3] == "parametrizations":
        return ".".join(parts[:-3] + [parts[-2]])
    return root


def _broadcasts(shape, to) -> bool:
    try:
        return tuple(np.broadcast_shapes(tuple(shape), tuple(to))) == tuple(to)
    except ValueError:
        return False


def _model_mask(model: torch.nn.Module, weight_name: str):
    """The mask the model itself holds for a weight: a prune ``*_mask`` buffer or parametrization masks."""
    modpath, _, attr = weight_name.rpartition(".")
    try:
        mod = model.get_submodule(modpath) if modpath else model
    except AttributeError:
        return None
    masks = []
    buf = getattr(mod, attr + "_mask", None)
    if isinstance(buf, torch.Tensor):
        masks.append(buf)
    params = getattr(mod, "parametrizations", None)
    if params is not None and attr in params:
        for p in params[attr]:
            pm = getattr(p, "mask", None)
            if isinstance(pm, torch.Tensor):
                masks.append(pm)
    if not masks:
        return None
    out = masks[0].detach().cpu().bool()
    for m in masks[1:]:
        out = out & m.detach().cpu().bool()
    return out.numpy()


def trace(model: torch.nn.Module, example_inputs, batch: int | None = None, ignore_ops=(),
          name: str | None = None, copy_weights: bool = True) -> Workload:
    """Run ``model`` once on ``example_inputs`` (eval mode, no grad) and return its GEMM layers.

    ``example_inputs``: a tensor, a tuple of positional inputs, or a dict of keyword inputs.
    ``batch``: recorded on the workload; by default the first input's leading dimension.
    ``ignore_ops``: aten op names (``"aten.foo"`` or ``"foo"``) to list as non-GEMM work instead of
    raising :class:`UnsupportedOpError`.
    ``copy_weights``: False shares the parameters' memory (read-only views) instead of copying them,
    for a model nobody changes afterwards (the zoo and the command line build one and drop it).

    Masks: a prune ``weight_mask`` buffer or a ``torch.ao.pruning`` parametrization mask wins; else a
    weight with exact zeros is masked where it is nonzero; else the layer is dense (``mask=None``).
    """
    if not isinstance(model, torch.nn.Module):
        raise TraceError(f"trace: expected a torch.nn.Module, got {type(model).__name__}")
    model_name = name or type(model).__name__
    if isinstance(example_inputs, dict):
        args, kwargs = (), dict(example_inputs)
    elif isinstance(example_inputs, (tuple, list)):
        args, kwargs = tuple(example_inputs), {}
    else:
        args, kwargs = (example_inputs,), {}
    leaves = [t for t in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
    if batch is None:
        batch = int(leaves[0].shape[0]) if leaves and leaves[0].dim() > 0 else 1
    ignore = {str(o) for o in ignore_ops} | {str(o).replace("aten.", "") for o in ignore_ops}

    params = dict(model.named_parameters(remove_duplicate=True))
    buffers = list(model.buffers())
    tracer = _Tracer(params, buffers, ignore, copy_weights)
    was_training = model.training
    handles = _install_module_hooks(model, tracer)
    model.eval()
    try:
        with torch.no_grad(), tracer:
            model(*args, **kwargs)
    except UnsupportedOpError:
        raise
    except Exception as e:  # the user's forward failed: say so, naming the model and the inputs
        shapes = [tuple(t.shape) for t in leaves]
        raise TraceError(f"model '{model_name}': forward failed on example inputs of shapes {shapes}: "
                         f"{type(e).__name__}: {e}") from e
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return _build_workload(model, model_name, batch, tracer)


def _build_workload(model, model_name, batch, tracer: _Tracer) -> Workload:
    layers = []
    used: dict[str, int] = {}
    mask_cache: dict = {}
    for rec in tracer.layers:
        base = rec["module"] or "model"
        if rec["suffix"]:
            base = f"{base}.{rec['suffix']}"
        elif rec["kind"] in (LayerKind.MATMUL, LayerKind.BMM) and rec["weight_name"] is None:
            base = f"{base}.{rec['kind'].value}"
        count = used.get(base, 0)
        used[base] = count + 1
        lname = base if count == 0 else f"{base}#{count + 1}"
        weight, mask, wname = rec["weight"], None, rec["weight_name"]
        if wname is not None:
            wname = _canonical_weight_name(wname)
            if wname not in mask_cache:
                mask_cache[wname] = _model_mask(model, wname)
            mm = mask_cache[wname]
            if mm is not None and tuple(mm.shape) == tuple(weight.shape):
                mask = mm
            elif mm is not None and tuple(mm.T.shape) == tuple(weight.shape):
                mask = np.ascontiguousarray(mm.T)
            elif mm is not None and _broadcasts(mm.shape, weight.shape):
                mask = np.broadcast_to(mm, weight.shape).copy()     # e.g. one flag per output row
            elif mm is not None:
                raise MaskError(f"layer '{lname}': the model's mask for weight '{wname}' (a prune weight_mask "
                                f"buffer or a parametrization mask) has shape {tuple(mm.shape)}, the weight "
                                f"{tuple(weight.shape)}; expected the weight's shape")
            elif np.count_nonzero(weight) != weight.size:      # no temporary array, unlike weight != 0
                mask = weight != 0
            if mask is not None and mask.all():
                mask = None
        layers.append(Layer(name=lname, kind=rec["kind"], m=rec["m"], n=rec["n"], k=rec["k"],
                            groups=rec["groups"], module=rec["module"], op=rec["op"], conv=rec["conv"],
                            a_bits=rec["a_bits"], w_bits=rec["w_bits"], o_bits=rec["o_bits"], weight_name=wname,
                            weight=weight, weight_layout=rec["weight_layout"], mask=mask))
    others = tuple(OtherOp(module=mod, op=op, category=cat, elements=v[0], calls=v[1])
                   for (mod, op, cat), v in tracer.others.items())
    return Workload(name=model_name, layers=tuple(layers), batch=int(batch), other_ops=others)
