"""A model of your own, as `--model examples/models/tiny_cnn.py:build` takes it (docs/howto/trace-model.md).

`build(batch=1)` returns the model and the example inputs it is traced on; its weights come from
torch's generator, which sparsim seeds (`--seed`, default 0) before calling it.
"""
import torch
from torch import nn


def build(batch=1):
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, 10),
    )
    return model, (torch.randn(batch, 3, 32, 32),)
