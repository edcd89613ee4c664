"""Normalisation and regularisation primitives: BatchNorm1d, BatchNorm2d, LayerNorm, Dropout.

Batch norms are in inference form: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias,
per channel (dimension 0 of the sample). Dropout is the identity at inference.
"""

from __future__ import annotations

import numpy as np

from talon.errors import PrimitiveError
from talon.ir.node import Node, Shape, array, integer, ints, primitive, real
from talon.ir.primitives._ranges import check_range


class _BatchNorm(Node):
    ranks: tuple[int, ...] = ()

    def check(self) -> None:
        n = self.num_features
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(self, name).shape != (n,):
                raise PrimitiveError(f"{self.type_name}.{name} must have shape ({n},), got {getattr(self, name).shape}")
        check_range(self.type_name, "running_var", self.running_var, "must be >= 0", low=0.0)

    def output_shape_for(self, shape: Shape) -> Shape:
        if len(shape) not in self.ranks or shape[0] != self.num_features:
            raise PrimitiveError(f"{self.type_name} expects {self.num_features} channels in an input of rank {self.ranks}, got {tuple(shape)}")
        return tuple(shape)


@primitive
class BatchNorm1d(_BatchNorm):
    """Inference batch norm over (C,) or (C, L) samples."""

    num_features: int = integer(minimum=1)
    weight: np.ndarray = array()
    bias: np.ndarray = array()
    running_mean: np.ndarray = array()
    running_var: np.ndarray = array()
    eps: float = real(1e-5, minimum=0.0)
    momentum: float = real(0.1)
    ranks = (1, 2)


@primitive
class BatchNorm2d(_BatchNorm):
    """Inference batch norm over (C, H, W) samples."""

    num_features: int = integer(minimum=1)
    weight: np.ndarray = array()
    bias: np.ndarray = array()
    running_mean: np.ndarray = array()
    running_var: np.ndarray = array()
    eps: float = real(1e-5, minimum=0.0)
    momentum: float = real(0.1)
    ranks = (3,)


@primitive
class LayerNorm(Node):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the trailing `normalized_shape` dimensions."""

    normalized_shape: tuple = ints()
    weight: np.ndarray = array()
    bias: np.ndarray = array()
    eps: float = real(1e-5, minimum=0.0)

    def check(self) -> None:
        for name in ("weight", "bias"):
            if getattr(self, name).shape != tuple(self.normalized_shape):
                raise PrimitiveError(f"LayerNorm.{name} must have shape {tuple(self.normalized_shape)}, got {getattr(self, name).shape}")

    def output_shape_for(self, shape: Shape) -> Shape:
        k = len(self.normalized_shape)
        if tuple(shape[len(shape) - k:]) != tuple(self.normalized_shape) or len(shape) < k:
            raise PrimitiveError(f"LayerNorm normalizes trailing {tuple(self.normalized_shape)}, input has shape {tuple(shape)}")
        return tuple(shape)


@primitive
class Dropout(Node):
    """Identity at inference; `p` is the training drop probability (lint flags it in inference graphs)."""

    grid_preserving = True

    features: int | None = integer(optional=True)
    p: float = real(0.5, minimum=0.0)

    def check(self) -> None:
        if not self.p <= 1.0:
            raise PrimitiveError(f"Dropout.p must be in [0, 1], got {self.p}")
