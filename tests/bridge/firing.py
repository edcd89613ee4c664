"""Weights that make a model's neurons fire often: an exact comparison with no spikes would prove little."""

import torch
from torch import nn


def boost(model: nn.Module, gain: float = 3.0, *, layers: tuple[type, ...] = (nn.Linear, nn.Conv2d),
          fan_in: str = "row") -> nn.Module:
    """Uniform weights scaled by gain / sqrt(fan-in), seeded. `fan_in="row"` counts every input of an output
    (a conv's channels x kernel), `"channels"` only the second dimension (a conv's input channels)."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, layers):
            nn.init.uniform_(m.weight, -1.0, 1.0)
            n = m.weight[0].numel() if fan_in == "row" else m.weight.shape[1]
            with torch.no_grad():
                m.weight.mul_(gain / n**0.5)
    return model
