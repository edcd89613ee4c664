"""Dense synaptic primitives: Affine, Linear, SpikingAffine and elementwise Scale."""

from __future__ import annotations

import numpy as np

from talon.errors import PrimitiveError
from talon.ir.node import Node, Shape, array, integer, mapping, primitive, string
from talon.ir.primitives._shapes import check_broadcast


class _Dense(Node):
    """y = x @ weight.T (+ bias), applied to the last axis."""

    def check(self) -> None:
        w = self.weight
        if w.ndim != 2:
            raise PrimitiveError(f"{self.type_name}.weight must be 2-D (out_features, in_features), got shape {w.shape}")
        bias = getattr(self, "bias", None)
        if bias is not None and bias.shape != (w.shape[0],):
            raise PrimitiveError(f"{self.type_name}.bias must have shape ({w.shape[0]},) to match weight {w.shape}, got {bias.shape}")

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    def output_shape_for(self, shape: Shape) -> Shape:
        if len(shape) < 1 or shape[-1] != self.in_features:
            raise PrimitiveError(f"{self.type_name} expects inputs whose last dimension is {self.in_features}, got shape {tuple(shape)}")
        return tuple(shape[:-1]) + (self.out_features,)


@primitive
class Affine(_Dense):
    """y = W x + b. weight: (out, in), bias: (out,)."""

    weight: np.ndarray = array()
    bias: np.ndarray = array()


@primitive
class Linear(_Dense):
    """y = W x (no bias). weight: (out, in)."""

    weight: np.ndarray = array()


@primitive
class SpikingAffine(_Dense):
    """y = W s + b on spike inputs, for hardware with `weight_bits` weights and `accumulator_bits` sums.

    Numerically the same affine map as Affine in float mode; the bit widths drive fixed-point simulation
    and hardware code. `spike_mode` says how the output is interpreted downstream: binary, rate or graded.
    The remaining optional fields are hardware hints kept for compatibility with the existing SDK.
    """

    weight: np.ndarray = array()
    bias: np.ndarray = array()
    weight_bits: int = integer(8, minimum=1)
    accumulator_bits: int = integer(16, minimum=2)
    spike_mode: str = string("binary", choices=("binary", "rate", "graded"))
    precision: str | None = string(optional=True)
    weight_t: str | None = string(optional=True)
    accum_t: str | None = string(optional=True)
    reuse_factor: int | None = integer(optional=True, minimum=1)
    core_id: int | None = integer(optional=True)
    hardware_hints: dict | None = mapping()

    def check(self) -> None:
        super().check()
        if self.weight_bits > 32 or self.accumulator_bits > 64:
            raise PrimitiveError(f"SpikingAffine bit widths too large: weight_bits={self.weight_bits}, accumulator_bits={self.accumulator_bits}")
        if self.accumulator_bits < self.weight_bits:
            raise PrimitiveError(f"SpikingAffine.accumulator_bits ({self.accumulator_bits}) must be >= weight_bits ({self.weight_bits})")


@primitive
class Scale(Node):
    """y = scale * x, elementwise; `scale` broadcasts to the input shape."""

    scale: np.ndarray = array()

    def output_shape_for(self, shape: Shape) -> Shape:
        check_broadcast("Scale", "scale", self.scale, shape)
        return tuple(shape)
