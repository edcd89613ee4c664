"""Elementwise and normalising activations: ReLU, Sigmoid, Tanh, Softmax, GELU, ELU, PReLU.

`features` is informational (the existing SDK stores it): the number of elements per sample when known.
"""

from __future__ import annotations

import numpy as np

from talon.errors import PrimitiveError
from talon.ir.node import Node, Shape, array, boolean, integer, primitive, real
from talon.ir.primitives._shapes import norm_dim


@primitive
class ReLU(Node):
    """y = max(x, 0) + negative_slope * min(x, 0)."""

    features: int | None = integer(optional=True)
    negative_slope: float = real(0.0)


@primitive
class Sigmoid(Node):
    """y = 1 / (1 + exp(-x))."""

    features: int | None = integer(optional=True)


@primitive
class Tanh(Node):
    """y = tanh(x)."""

    features: int | None = integer(optional=True)


@primitive
class Softmax(Node):
    """y = exp(x) / sum(exp(x)) along `dim` (batch dimension excluded)."""

    features: int | None = integer(optional=True)
    dim: int = integer(-1)

    def output_shape_for(self, shape: Shape) -> Shape:
        norm_dim("Softmax", self.dim, len(shape))
        return tuple(shape)


@primitive
class GELU(Node):
    """y = x * Phi(x); with approximate=True the tanh approximation."""

    features: int | None = integer(optional=True)
    approximate: bool = boolean(False)


@primitive
class ELU(Node):
    """y = x if x > 0 else alpha * (exp(x) - 1)."""

    features: int | None = integer(optional=True)
    alpha: float = real(1.0)


@primitive
class PReLU(Node):
    """y = max(x, 0) + weight * min(x, 0); weight has 1 entry or one per channel (dimension 0)."""

    weight: np.ndarray = array()
    features: int | None = integer(optional=True)

    def check(self) -> None:
        if self.weight.ndim != 1 or self.weight.size < 1:
            raise PrimitiveError(f"PReLU.weight must be 1-D with 1 or C entries, got shape {self.weight.shape}")

    def output_shape_for(self, shape: Shape) -> Shape:
        n = self.weight.size
        if n != 1 and (len(shape) < 1 or shape[0] != n):
            raise PrimitiveError(f"PReLU has {n} slopes but the input has {shape[0] if shape else 0} channels (shape {tuple(shape)})")
        return tuple(shape)
