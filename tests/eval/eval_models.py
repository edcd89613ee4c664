"""Small models for the evaluation tests: a hand-built MLP graph and a seeded snnTorch conv SNN."""

from __future__ import annotations

import numpy as np

from lif_mlp import mlp_graph as mlp_graph  # re-exported for the eval tests


def conv_snn(size: int = 16, seed: int = 0):
    """An snnTorch conv SNN on (2, size, size) event frames, 4 classes; one call is one step."""
    import snntorch as snn
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, stride=2, padding=1)
            self.lif1 = snn.Leaky(beta=0.8)
            self.flat = nn.Flatten()
            self.fc = nn.Linear(4 * (size // 2) ** 2, 4)
            self.lif2 = snn.Leaky(beta=0.8)

        def forward(self, x, mem1=None, mem2=None):
            if mem1 is None:
                mem1 = self.lif1.init_leaky()
            if mem2 is None:
                mem2 = self.lif2.init_leaky()
            spk1, mem1 = self.lif1(self.conv(x), mem1)
            spk2, mem2 = self.lif2(self.fc(self.flat(spk1)), mem2)
            return spk2, mem1, mem2

    return Net()


def snntorch_counts(model, frames) -> np.ndarray:
    """(B, K) output spike counts of the snnTorch model on (T, B, ...) frames."""
    import torch

    with torch.no_grad():
        m1 = m2 = None
        total = 0
        for t in range(frames.shape[0]):
            spk, m1, m2 = model(torch.as_tensor(frames[t]), m1, m2)
            total = total + spk
    return total.numpy()
