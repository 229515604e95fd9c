"""A model zoo built in code (no torchvision, nothing downloaded).

Each builder returns ``(model, example_inputs)``. Shapes follow the published architectures:

=============  =========================================================  ====================
name           architecture                                               parameters
=============  =========================================================  ====================
resnet18       He et al. 2016, torchvision layout                         11,689,512
resnet50       He et al. 2016, bottleneck v1.5 (stride on the 3x3)        25,557,032
mobilenet_v2   Sandler et al. 2018, width 1.0                             3,504,872
vit_small      DeiT-S (Touvron et al. 2021): 12 x (384, 6 heads, 1536)    22,050,664
bert_base      BERT-base encoder (Devlin et al. 2019), seq 128            85,054,464 encoder
gpt2_small     GPT-2 small (Radford et al. 2019), seq 128, tied head      124,439,808
mlp_digits     64-128-128-10 MLP for scikit-learn's digits                26,122
cnn_digits     3 convs (8, 16, 32 channels) + linear, scikit-learn digits  7,178
=============  =========================================================  ====================

Weights are seeded random (PyTorch's default init under ``torch.manual_seed(seed)``) unless the
caller loads a state dict. The two digits models take the same input, ``(batch, 64)`` pixel rows
scaled to [0, 1], which :func:`digits_split` gives for real data (scikit-learn's 8x8 digits ship
with scikit-learn: nothing is downloaded).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import ModelNotFoundError


# ---------------------------------------------------------------------------------------------- ResNet
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + idt)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != out:
            self.downsample = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + idt)


class ResNet(nn.Module):
    def __init__(self, block, depths, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), depths)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(block(cin, planes, stride))
                cin = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# -------------------------------------------------------------------------------------- MobileNetV2
def _conv_bn_relu6(cin, cout, k=3, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [_conv_bn_relu6(cin, hidden, 1)]
        layers += [_conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x):
        y = self.conv(x)
        return x + y if self.use_res else y


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        feats = [_conv_bn_relu6(3, 32, 3, 2)]
        cin = 32
        for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                           (6, 160, 3, 2), (6, 320, 1, 1)):
            for i in range(n):
                feats.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        feats.append(_conv_bn_relu6(cin, 1280, 1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


# ------------------------------------------------------------------------------------- Transformers
class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused qkv projection and scaled_dot_product_attention."""

    def __init__(self, dim, heads, causal=False, qkv_name="qkv"):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(x).reshape(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.proj(y.transpose(1, 2).reshape(b, s, d))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class PreNormBlock(nn.Module):
    """ViT / GPT-2 block: x + attn(ln(x)); x + mlp(ln(x))."""

    def __init__(self, dim, heads, hidden, causal=False, eps=1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = SelfAttention(dim, heads, causal)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, img=224, patch=16, dim=384, depth=12, heads=6, hidden=1536, num_classes=1000):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        n = (img // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[PreNormBlock(dim, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


class BertLayer(nn.Module):
    """Post-norm encoder layer with separate query/key/value projections, as in BERT."""

    def __init__(self, dim=768, heads=12, hidden=3072):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.attn_out = nn.Linear(dim, dim)
        self.attn_norm = nn.LayerNorm(dim, eps=1e-12)
        self.intermediate = nn.Linear(dim, hidden)
        self.output = nn.Linear(hidden, dim)
        self.out_norm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x):
        b, s, d = x.shape
        h = self.heads

        def split(t):
            return t.reshape(b, s, h, d // h).transpose(1, 2)
        y = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)))
        x = self.attn_norm(x + self.attn_out(y.transpose(1, 2).reshape(b, s, d)))
        return self.out_norm(x + self.output(F.gelu(self.intermediate(x))))


class BertEmbeddings(nn.Module):
    def __init__(self, vocab=30522, dim=768, max_pos=512, types=2):
        super().__init__()
        self.word = nn.Embedding(vocab, dim)
        self.position = nn.Embedding(max_pos, dim)
        self.token_type = nn.Embedding(types, dim)
        self.norm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.word(ids) + self.position(pos)[None] + self.token_type(torch.zeros_like(ids))
        return self.norm(x)


class BertEncoderModel(nn.Module):
    def __init__(self, layers=12):
        super().__init__()
        self.embeddings = BertEmbeddings()
        self.encoder = nn.Sequential(*[BertLayer() for _ in range(layers)])

    def forward(self, ids):
        return self.encoder(self.embeddings(ids))


class GPT2(nn.Module):
    def __init__(self, vocab=50257, ctx=1024, dim=768, depth=12, heads=12):
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.wpe = nn.Embedding(ctx, dim)
        self.h = nn.Sequential(*[PreNormBlock(dim, heads, 4 * dim, causal=True, eps=1e-5) for _ in range(depth)])
        self.ln_f = nn.LayerNorm(dim, eps=1e-5)
        # tied to wte, as in GPT-2: built without values (meta), since its own init would be discarded
        self.lm_head = nn.Linear(dim, vocab, bias=False, device="meta")
        self.lm_head.weight = self.wte.weight

    def forward(self, ids):
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.h(self.wte(ids) + self.wpe(pos)[None])
        return self.lm_head(self.ln_f(x))


class MLPDigits(nn.Module):
    """64-128-128-10 MLP for scikit-learn's 8x8 digits."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 128)
        self.fc3 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class CNNDigits(nn.Module):
    """A small CNN for scikit-learn's 8x8 digits: conv 1->8 (8x8), conv 8->16 + max-pool (4x4),
    conv 16->32 + max-pool (2x2), linear 128->10. All convs 3x3, padding 1, no batch norm, so that a
    permutation of a conv's output channels only has to follow its bias and the next conv.

    Input: ``(batch, 64)`` pixel rows (as :func:`digits_split` gives) or ``(batch, 1, 8, 8)``.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.conv3 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        x = x.reshape(-1, 1, 8, 8)
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        return self.fc(torch.flatten(x, 1))


def digits_split(seed: int = 0, test_fraction: float = 0.25):
    """scikit-learn's 8x8 digits (1,797 images, 10 classes) as a seeded, stratified split.

    Returns ``(x_train, y_train, x_test, y_test)``: float32 tensors of shape ``(rows, 64)`` with pixel
    values scaled from 0..16 to [0, 1], the input both digits models take, and int64 class labels.
    The same seed gives the same split, bit for bit.
    """
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not (0.0 < float(test_fraction) < 1.0):
        raise ModelNotFoundError(f"digits_split: test_fraction must be in (0, 1), got {test_fraction!r}")
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=float(test_fraction), random_state=int(seed),
                                              stratify=y)
    return torch.from_numpy(x_tr), torch.from_numpy(y_tr), torch.from_numpy(x_te), torch.from_numpy(y_te)


# ------------------------------------------------------------------------------------------ registry
def _image(batch):
    return (torch.randn(batch, 3, 224, 224),)


def _tokens(vocab, seq):
    return lambda batch: (torch.randint(0, vocab, (batch, seq)),)


_ZOO: dict[str, tuple[Callable[[], nn.Module], Callable[[int], tuple]]] = {
    "resnet18": (lambda: ResNet(BasicBlock, (2, 2, 2, 2)), _image),
    "resnet50": (lambda: ResNet(Bottleneck, (3, 4, 6, 3)), _image),
    "mobilenet_v2": (MobileNetV2, _image),
    "vit_small": (VisionTransformer, _image),
    "bert_base": (BertEncoderModel, _tokens(30522, 128)),
    "gpt2_small": (GPT2, _tokens(50257, 128)),
    "mlp_digits": (MLPDigits, lambda batch: (torch.randn(batch, 64),)),
    "cnn_digits": (CNNDigits, lambda batch: (torch.rand(batch, 64),)),
}


#: Models with a builder of their own (trained here, then cached): name -> "module:function".
_TRAINED = {"code_lm": "workloads.code_lm:build"}


def names() -> list[str]:
    """Names of the zoo's models."""
    return list(_ZOO) + list(_TRAINED)


def build(name: str, seed: int = 0, batch: int = 1) -> tuple[nn.Module, tuple]:
    """Build zoo model ``name`` with seeded random weights and example inputs of ``batch`` rows."""
    if name not in _ZOO and name not in _TRAINED:
        raise ModelNotFoundError(f"model '{name}' is not in the zoo; known models: {', '.join(names())}")
    if not isinstance(batch, int) or batch < 1:
        raise ModelNotFoundError(f"model '{name}': batch must be a positive integer, got {batch!r}")
    if name in _TRAINED:          # a trained model (code_lm): ``seed`` is its training seed
        import importlib
        mod, fn = _TRAINED[name].split(":")
        return getattr(importlib.import_module(mod), fn)(seed=seed, batch=batch)
    make, inputs = _ZOO[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make().eval()
        example = inputs(batch)
    return model, example
