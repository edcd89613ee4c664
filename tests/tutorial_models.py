"""The tutorial's two snnTorch models, shared by the bridge and sdk tests.

Copies of SimpleSNN (section 1) and HybridSNN (section 6) of examples/snntorch_tutorial.py, which must
stay a verbatim copy of the tutorial and so cannot be imported from. Needs torch and snnTorch: import
it after `pytest.importorskip("snntorch")`.
"""

from __future__ import annotations

import snntorch as snn
import torch.nn as nn


class SimpleSNN(nn.Module):
    """The tutorial's model (section 1)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.lif1 = snn.Leaky(beta=0.9)
        self.fc2 = nn.Linear(128, 10)
        self.lif2 = snn.Leaky(beta=0.9)

    def forward(self, x, mem1=None, mem2=None):
        if mem1 is None:
            mem1 = self.lif1.init_leaky()
        if mem2 is None:
            mem2 = self.lif2.init_leaky()
        cur1 = self.fc1(x)
        spk1, mem1 = self.lif1(cur1, mem1)
        cur2 = self.fc2(spk1)
        spk2, mem2 = self.lif2(cur2, mem2)
        return spk2, mem1, mem2


class HybridSNN(nn.Module):
    """The tutorial's hybrid model (section 6)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 14 * 14, 64)
        self.lif = snn.Leaky(beta=0.9)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x, mem=None):
        if mem is None:
            mem = self.lif.init_leaky()
        x = self.pool(self.relu(self.conv1(x)))
        x = self.fc1(self.flatten(x))
        spk, mem = self.lif(x, mem)
        return self.fc2(spk), mem
