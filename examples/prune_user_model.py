"""A user model for `sparsim prune --model examples/prune_user_model.py:build` (docs/search-and-prune.md).

`build(batch)` returns (model, example_inputs); `data()` returns (x_train, y_train, x_test, y_test)
tensors (or it could return (train_loader, test_loader)); `evaluate(model, test)` is the metric
(higher is better; without it sparsim reports top-1 accuracy). The data are synthetic and seeded:
three classes decided by two input channels, learnable in a few epochs.
"""
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 8, 64)
        self.fc2 = nn.Linear(64, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(torch.relu(self.conv(x)).flatten(1))))


def build(batch=1):
    return Net(), (torch.randn(batch, 4, 8),)


def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 4, 8, generator=g)
    y = (x[:, 0].sum(dim=1) > 0).long() + (x[:, 1].sum(dim=1) > 1).long()
    return x[:400], y[:400], x[400:], y[400:]


def loaders():
    """The same data as DataLoaders (``--data examples/prune_user_model.py:loaders``)."""
    from torch.utils.data import DataLoader, TensorDataset
    x, y, xt, yt = data()
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True), DataLoader(TensorDataset(xt, yt), batch_size=100)


def evaluate(model, test):
    batches = [test] if isinstance(test, tuple) else test        # tensors, or a loader's batches
    right = total = 0
    with torch.no_grad():
        for x, y in batches:
            right += int((model(x).argmax(dim=1) == y).sum())
            total += len(y)
    return 100.0 * right / total
