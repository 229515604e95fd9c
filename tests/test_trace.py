import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

import sparsim
from workloads import LayerKind, TraceError, UnsupportedOpError, WeightLayout, zoo
from workloads.tracer import trace

aten = torch.ops.aten

# FlopCounterMode (torch 2.13) has no formula for the CPU flash-attention op; give it the same
# formula it uses for the other scaled-dot-product-attention ops.
_SDPA_CPU = {aten._scaled_dot_product_flash_attention_for_cpu:
             lambda q, k, v, *args, out_shape=None, **kw: sdpa_flop_count(q, k, v)}

PUBLISHED_PARAMS = {
    "resnet18": 11_689_512, "resnet50": 25_557_032, "mobilenet_v2": 3_504_872, "vit_small": 22_050_664,
    "gpt2_small": 124_439_808, "mlp_digits": 26_122, "cnn_digits": 7_178,
}


def flop_counter_macs(model, inputs):
    with FlopCounterMode(display=False, custom_mapping=_SDPA_CPU) as fc, torch.no_grad():
        model(*inputs)
    flops = fc.get_total_flops()
    assert flops % 2 == 0
    return flops // 2


SLOW = {"bert_base", "gpt2_small"}
TRAINED = {"code_lm"}   # trained on first use (minutes): tests/test_llm_prune.py traces its tiny version


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in zoo.names() if n not in TRAINED])
def test_zoo_model_traces_with_flopcounter_macs_and_published_params(name):
    model, inputs = zoo.build(name)
    wl = trace(model, inputs)
    assert wl.macs == flop_counter_macs(model, inputs)
    if name == "bert_base":
        assert sum(p.numel() for p in model.encoder.parameters()) == 85_054_464
    else:
        assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMS[name]
    # every parameter GEMM knows its weight, and no layer is silently empty
    for layer in wl.layers:
        assert layer.macs > 0
        if layer.weight is not None:
            assert layer.gemm_weight().shape == layer.gemm_shape
    names = [l.name for l in wl.layers]
    assert len(names) == len(set(names))


def test_zoo_names_and_errors():
    assert set(zoo.names()) == {"resnet18", "resnet50", "mobilenet_v2", "vit_small", "bert_base", "gpt2_small",
                                "mlp_digits", "cnn_digits", "code_lm"}
    with pytest.raises(Exception, match="not in the zoo.*resnet18"):
        zoo.build("resnet19")


def test_zoo_is_seeded():
    a, _ = zoo.build("mlp_digits", seed=3)
    b, _ = zoo.build("mlp_digits", seed=3)
    c, _ = zoo.build("mlp_digits", seed=4)
    assert torch.equal(a.fc1.weight, b.fc1.weight) and not torch.equal(a.fc1.weight, c.fc1.weight)


def test_resnet18_layers_and_batch():
    wl = sparsim.trace_zoo("resnet18", batch=4)
    assert wl.batch == 4 and len(wl.layers) == 21
    c1 = wl.layer("conv1")
    assert (c1.kind, c1.m, c1.n, c1.k) == (LayerKind.CONV2D, 4 * 112 * 112, 64, 3 * 7 * 7)
    assert c1.weight_name == "conv1.weight" and c1.weight.shape == (64, 3, 7, 7)
    assert c1.conv.stride == (2, 2) and c1.conv.padding == (3, 3) and c1.conv.output_size == (112, 112)
    fc = wl.layer("fc")
    assert (fc.kind, fc.m, fc.n, fc.k, fc.weight_layout) == (LayerKind.LINEAR, 4, 1000, 512, WeightLayout.NK)
    assert wl.layer("layer2.0.downsample.0").conv.kernel == (1, 1)
    cats = {o.category for o in wl.other_ops}
    assert {"norm", "activation", "pool", "elementwise"} <= cats


class Functional(nn.Module):
    """GEMMs reached through functional calls, not modules."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(16, 8))      # used as x @ w (k x n)
        self.lin = nn.Parameter(torch.randn(12, 16))   # used through F.linear (n x k)
        self.left = nn.Parameter(torch.randn(5, 12))   # used as left @ x^T
        self.c1 = nn.Parameter(torch.randn(6, 2, 3))   # conv1d weight, groups 2
        self.dw = nn.Parameter(torch.randn(4, 1, 3, 3))  # depthwise conv2d

    def forward(self, x, img, seq):
        y = x @ self.w                                   # mm
        y = F.linear(y.repeat(1, 2), self.lin)           # addmm-free linear (no bias) -> mm
        z = self.left @ y.t()                            # parameter on the left
        a = torch.einsum("bij,bjk->bik", seq, seq.transpose(1, 2))   # einsum -> bmm
        b = torch.baddbmm(torch.zeros(2, 5, 5), seq, seq.transpose(1, 2))
        c = F.conv1d(seq.transpose(1, 2)[:, :4].repeat(1, 1, 1), self.c1, groups=2, dilation=2)
        d = F.conv2d(img, self.dw, padding=1, stride=2, groups=4)
        q = seq.reshape(2, 1, 5, 4)
        e = F.scaled_dot_product_attention(q, q, q)
        return z.sum() + a.sum() + b.sum() + c.sum() + d.sum() + e.sum()


def test_functional_ops_are_traced():
    torch.manual_seed(0)
    model = Functional()
    inputs = (torch.randn(3, 16), torch.randn(1, 4, 9, 9), torch.randn(2, 5, 4))
    wl = trace(model, inputs)
    by_op = [(l.op, l.kind, l.m, l.n, l.k, l.groups, l.weight_name) for l in wl.layers]
    assert by_op == [
        ("aten.mm", LayerKind.LINEAR, 3, 8, 16, 1, "w"),
        ("aten.mm", LayerKind.LINEAR, 3, 12, 16, 1, "lin"),
        ("aten.mm", LayerKind.LINEAR, 3, 5, 12, 1, "left"),
        ("aten.bmm", LayerKind.BMM, 5, 5, 4, 2, None),
        ("aten.baddbmm", LayerKind.BMM, 5, 5, 4, 2, None),
        ("aten.convolution", LayerKind.CONV1D, 2 * 1, 3, 2 * 3, 2, "c1"),
        ("aten.convolution", LayerKind.CONV2D, 25, 1, 9, 4, "dw"),
        ("aten._scaled_dot_product_flash_attention_for_cpu", LayerKind.ATTENTION, 5, 5, 4, 2, None),
        ("aten._scaled_dot_product_flash_attention_for_cpu", LayerKind.ATTENTION, 5, 4, 5, 2, None),
    ]
    assert wl.macs == flop_counter_macs(model, inputs)
    # weights are stored in the parameter's own layout, whatever orientation the op saw
    np.testing.assert_array_equal(wl.layers[0].weight, model.w.detach().numpy())
    assert wl.layers[0].weight_layout == WeightLayout.KN
    np.testing.assert_array_equal(wl.layers[1].weight, model.lin.detach().numpy())
    assert wl.layers[1].weight_layout == WeightLayout.NK
    np.testing.assert_array_equal(wl.layers[2].weight, model.left.detach().numpy())
    np.testing.assert_array_equal(wl.layers[2].gemm_weight()[0], model.left.detach().numpy().T)
    names = [l.name for l in wl.layers]
    assert names[-2:] == ["model.qk", "model.av"] and len(set(names)) == len(names)


def test_masks_from_torch_prune():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 4 * 4, 10))
    torch.nn.utils.prune.l1_unstructured(model[0], "weight", amount=0.5)
    torch.nn.utils.prune.random_structured(model[3], "weight", amount=0.3, dim=0)
    wl = trace(model, torch.randn(1, 8, 6, 6))
    conv, fc = wl.layers
    assert conv.weight_name == "0.weight" and fc.weight_name == "3.weight"
    np.testing.assert_array_equal(conv.mask, model[0].weight_mask.bool().numpy())
    np.testing.assert_array_equal(fc.mask, model[3].weight_mask.bool().numpy())
    assert conv.density == pytest.approx(0.5)


def test_masks_from_ao_pruning_parametrization():
    from torch.ao.pruning import WeightNormSparsifier
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 8))
    sp = WeightNormSparsifier(sparsity_level=1.0, sparse_block_shape=(1, 4), zeros_per_block=2)
    sp.prepare(model, [{"tensor_fqn": "0.weight"}, {"tensor_fqn": "2.weight"}])
    sp.step()
    wl = trace(model, torch.randn(4, 32))
    l0, l1 = wl.layers
    assert l0.weight_name == "0.weight" and l1.weight_name == "2.weight"
    expected = model[0].parametrizations.weight[0].mask.bool().numpy()
    np.testing.assert_array_equal(l0.mask, expected)
    assert l0.density == pytest.approx(0.5)
    # zeros_per_block=2 in blocks of 4 along the input axis is 2:4 along the GEMM's reduction axis
    assert l0.mask_stats(4).is_nm(2)


def test_mask_from_exact_zeros_and_dense_without_zeros():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 4), nn.Linear(4, 4))
    with torch.no_grad():
        model[0].weight[:, ::2] = 0
    wl = trace(model, torch.randn(2, 8))
    assert wl.layers[0].mask is not None and wl.layers[0].density == 0.5
    assert wl.layers[1].mask is None and wl.layers[1].density == 1.0


def test_unsupported_op_names_op_and_module_and_ignore_ops():
    class Spectral(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(8, 8)

        def forward(self, x):
            return torch.fft.rfft(self.proj(x)).abs()

    model = nn.Sequential(nn.Linear(8, 8), Spectral())
    with pytest.raises(UnsupportedOpError) as e:
        trace(model, torch.randn(2, 8))
    assert "aten._fft_r2c" in str(e.value) and "'1'" in str(e.value) and "ignore_ops" in str(e.value)
    wl = trace(model, torch.randn(2, 8), ignore_ops=["aten._fft_r2c"])
    assert [l.name for l in wl.layers] == ["0", "1.proj"]
    assert any(o.op == "aten._fft_r2c" and o.category == "ignored" and o.module == "1" for o in wl.other_ops)


def test_transposed_conv_is_unsupported():
    model = nn.ConvTranspose2d(4, 4, 3)
    with pytest.raises(UnsupportedOpError, match="transposed"):
        trace(model, torch.randn(1, 4, 5, 5))


def test_forward_failure_is_a_trace_error():
    model = nn.Linear(8, 4)
    with pytest.raises(TraceError) as e:
        trace(model, torch.randn(2, 5))
    msg = str(e.value)
    assert "Linear" in msg and "(2, 5)" in msg and "forward failed" in msg
    with pytest.raises(TraceError, match="torch.nn.Module"):
        trace("not a model", torch.randn(1))


def test_tracing_restores_training_mode_and_leaves_no_hooks():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    model.train()
    trace(model, torch.randn(2, 4))
    assert model.training
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in model.modules())


def test_sparsify_traced_conv_is_nm_along_channels():
    wl = sparsim.trace_zoo("resnet18").sparsify("2:4")
    for layer in wl.layers:
        st = layer.mask_stats(4)
        assert st.is_nm(2), layer.name
        if layer.k % 4 == 0:
            assert layer.density == pytest.approx(0.5)
    # a 3x3 conv's group of 4 is 4 consecutive input channels at one kernel position
    l = wl.layer("layer1.0.conv1")
    kept = l.mask[0, 0:4, 1, 2]  # out channel 0, input channels 0..3, kernel (1, 2)
    assert kept.sum() == 2


# -- nn.MultiheadAttention / nn.TransformerEncoderLayer: their fused inference paths ---------------------
class _FusedEncoderLayer(nn.Module):
    """Calls the fused encoder-layer op the way ``nn.TransformerEncoderLayer.forward`` does when no hook
    is attached (the tracer's module hooks otherwise make PyTorch take the unfused path)."""

    def __init__(self, layer: nn.TransformerEncoderLayer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        la, sa = self.layer, self.layer.self_attn
        return torch._transformer_encoder_layer_fwd(
            x, sa.embed_dim, sa.num_heads, sa.in_proj_weight, sa.in_proj_bias, sa.out_proj.weight,
            sa.out_proj.bias, la.activation_relu_or_gelu == 2, la.norm_first, la.norm1.eps, la.norm1.weight,
            la.norm1.bias, la.norm2.weight, la.norm2.bias, la.linear1.weight, la.linear1.bias,
            la.linear2.weight, la.linear2.bias, None, None)


class _Attn(nn.Module):
    def __init__(self, cross: bool):
        super().__init__()
        self.cross = cross
        self.mha = nn.MultiheadAttention(64, 4, batch_first=True, dropout=0.0)

    def forward(self, x, mem):
        return self.mha(x, mem, mem)[0] if self.cross else self.mha(x, x, x)[0]


def _fused_cases():
    torch.manual_seed(0)
    x, mem = torch.randn(2, 10, 64), torch.randn(2, 7, 64)
    enc = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)
    enc_gelu = nn.TransformerEncoderLayer(64, 4, 96, dropout=0.0, batch_first=True, activation="gelu")
    return {
        "mha_self": (_Attn(False), (x, mem), "_native_multi_head_attention", None),
        # PyTorch fuses self-attention only; cross-attention runs the unfused ops (checked for MACs too)
        "mha_cross": (_Attn(True), (x, mem), None, None),
        "encoder_layer": (enc, (x,), "_native_multi_head_attention", None),
        "encoder_layer_fused_op": (_FusedEncoderLayer(enc_gelu), (x,), "_transformer_encoder_layer_fwd", enc_gelu),
    }


@pytest.mark.parametrize("case", ["mha_self", "mha_cross", "encoder_layer", "encoder_layer_fused_op"])
def test_fused_attention_paths_trace_with_unfused_flopcounter_macs(case):
    model, inputs, fused_op, unfused = _fused_cases()[case]
    model.eval()
    wl = trace(model, inputs)
    if fused_op is not None:
        assert any(fused_op in l.op for l in wl.layers), "the eval-mode trace should see the fused op"
    reference = unfused if unfused is not None else model
    reference.train()                       # training mode: PyTorch's unfused path, which FlopCounterMode counts
    try:
        expected = flop_counter_macs(reference, inputs)
    finally:
        reference.eval()
    assert wl.macs == expected
    assert sum(not l.has_weight for l in wl.layers) == 2          # QK^T and AV
    for layer in wl.layers:
        if layer.has_weight:
            assert layer.weight is not None and layer.gemm_weight().shape == layer.gemm_shape
    # the projections are weight layers a pattern can sparsify; QK^T and AV stay dense
    sp = wl.sparsify("2:4")
    assert all(l.mask_stats(4).is_nm(2) for l in sp.layers if l.has_weight)
    assert all(l.mask is None for l in sp.layers if not l.has_weight)


def test_fused_attention_picks_up_the_models_prune_mask():
    model = _Attn(False).eval()
    torch.nn.utils.prune.l1_unstructured(model.mha, "in_proj_weight", amount=0.5)
    wl = trace(model, (torch.randn(1, 6, 64), torch.randn(1, 6, 64)))
    in_proj = wl.layer("mha.in_proj")
    assert in_proj.weight_name == "mha.in_proj_weight"
    assert abs(in_proj.density - 0.5) < 1e-6
