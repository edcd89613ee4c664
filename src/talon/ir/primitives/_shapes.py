"""Shape arithmetic shared by the primitive shape rules (convolution, pooling, broadcasting)."""

from __future__ import annotations

import math

import numpy as np

from talon.errors import PrimitiveError


def conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output length of a convolution or pooling window along one axis (PyTorch's rule)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if span < 0:
        raise PrimitiveError(f"window of {kernel} (dilation {dilation}) does not fit input of {size} with padding {padding}")
    if ceil_mode:
        out = math.ceil(span / stride) + 1
        # PyTorch drops a last window that would start inside the right padding only.
        if (out - 1) * stride >= size + padding:
            out -= 1
        return out
    return span // stride + 1


def check_broadcast(owner: str, field: str, param: np.ndarray, shape: tuple[int, ...]) -> None:
    """Raise unless a per-neuron parameter array broadcasts to the neuron shape without growing it."""
    # By the rule itself: np.broadcast_shapes refuses shapes of more elements than memory can address.
    grows = len(param.shape) > len(shape) or any(p not in (1, s) for p, s in zip(reversed(param.shape), reversed(tuple(shape))))
    if grows:
        raise PrimitiveError(f"{owner}.{field} has shape {param.shape}, which does not broadcast to the neuron shape {tuple(shape)}")


def same_shapes(owner: str, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    if not shapes:
        raise PrimitiveError(f"{owner} needs at least one input")
    first = tuple(shapes[0])
    for s in shapes[1:]:
        if tuple(s) != first:
            raise PrimitiveError(f"{owner} inputs must all have the same shape, got {[tuple(x) for x in shapes]}")
    return first


def norm_dim(owner: str, dim: int, rank: int) -> int:
    d = dim + rank if dim < 0 else dim
    if not 0 <= d < rank:
        raise PrimitiveError(f"{owner}.dim={dim} is out of range for a rank-{rank} input (batch dimension excluded)")
    return d
