"""Convolution primitives: Conv1d, Conv2d, SepConv2d (and the existing SDK's SConv/SDConv)."""

from __future__ import annotations

import numpy as np

from talon.errors import PrimitiveError
from talon.ir.node import Node, Shape, array, integer, ints, primitive
from talon.ir.primitives._shapes import conv_out


@primitive
class Conv1d(Node):
    """y[o, l] = b[o] + sum_{c,k} W[o, c, k] x[g*C/G + c, l*stride + k*dilation - padding], per group g.

    weight: (out_channels, in_channels / groups, kernel); input (C, L), batch excluded.
    """

    weight: np.ndarray = array()
    bias: np.ndarray = array()
    stride: int = integer(1, minimum=1)
    padding: int = integer(0, minimum=0)
    dilation: int = integer(1, minimum=1)
    groups: int = integer(1, minimum=1)

    def check(self) -> None:
        w = self.weight
        if w.ndim != 3:
            raise PrimitiveError(f"Conv1d.weight must be 3-D (out, in/groups, kernel), got shape {w.shape}")
        if self.bias.shape != (w.shape[0],):
            raise PrimitiveError(f"Conv1d.bias must have shape ({w.shape[0]},), got {self.bias.shape}")
        if w.shape[0] % self.groups:
            raise PrimitiveError(f"Conv1d: out_channels {w.shape[0]} is not divisible by groups {self.groups}")

    def output_shape_for(self, shape: Shape) -> Shape:
        w = self.weight
        if len(shape) != 2 or shape[0] != w.shape[1] * self.groups:
            raise PrimitiveError(f"Conv1d expects input (C={w.shape[1] * self.groups}, L), got {tuple(shape)}")
        return (int(w.shape[0]), conv_out(shape[1], w.shape[2], self.stride, self.padding, self.dilation))


class _Conv2dBase(Node):
    weight: np.ndarray
    bias: np.ndarray

    def check(self) -> None:
        w = self.weight
        if w.ndim != 4:
            raise PrimitiveError(f"{self.type_name}.weight must be 4-D (out, in/groups, kh, kw), got shape {w.shape}")
        if self.bias.shape != (w.shape[0],):
            raise PrimitiveError(f"{self.type_name}.bias must have shape ({w.shape[0]},), got {self.bias.shape}")
        if w.shape[0] % self.groups:
            raise PrimitiveError(f"{self.type_name}: out_channels {w.shape[0]} is not divisible by groups {self.groups}")
        if min(self.stride) < 1 or min(self.dilation) < 1 or min(self.padding) < 0:
            raise PrimitiveError(f"{self.type_name}: stride and dilation must be >= 1 and padding >= 0")

    def output_shape_for(self, shape: Shape) -> Shape:
        w = self.weight
        if len(shape) != 3 or shape[0] != w.shape[1] * self.groups:
            raise PrimitiveError(f"{self.type_name} expects input (C={w.shape[1] * self.groups}, H, W), got {tuple(shape)}")
        h = conv_out(shape[1], w.shape[2], self.stride[0], self.padding[0], self.dilation[0])
        wd = conv_out(shape[2], w.shape[3], self.stride[1], self.padding[1], self.dilation[1])
        return (int(w.shape[0]), h, wd)


@primitive
class Conv2d(_Conv2dBase):
    """2-D convolution as torch.nn.Conv2d (zero padding). weight: (out, in/groups, kh, kw); input (C, H, W)."""

    weight: np.ndarray = array()
    bias: np.ndarray = array()
    stride: tuple = ints((1, 1), length=2)
    padding: tuple = ints((0, 0), length=2)
    dilation: tuple = ints((1, 1), length=2)
    groups: int = integer(1, minimum=1)


@primitive
class SConv(_Conv2dBase):
    """The existing SDK's spiking convolution: stored and shaped like Conv2d."""

    weight: np.ndarray = array()
    bias: np.ndarray = array()
    stride: tuple = ints((1, 1), length=2)
    padding: tuple = ints((0, 0), length=2)
    dilation: tuple = ints((1, 1), length=2)
    groups: int = integer(1, minimum=1)


@primitive
class SDConv(_Conv2dBase):
    """The existing SDK's spiking depthwise convolution: stored and shaped like Conv2d."""

    weight: np.ndarray = array()
    bias: np.ndarray = array()
    stride: tuple = ints((1, 1), length=2)
    padding: tuple = ints((0, 0), length=2)
    dilation: tuple = ints((1, 1), length=2)
    groups: int = integer(1, minimum=1)


@primitive
class SepConv2d(Node):
    """Depthwise-separable convolution: depthwise Conv2d (groups = C) then pointwise 1x1 Conv2d.

    depthwise_weight: (C, 1, kh, kw), depthwise_bias: (C,), pointwise_weight: (O, C, 1, 1), pointwise_bias: (O,).
    stride, padding and dilation apply to the depthwise stage.
    """

    depthwise_weight: np.ndarray = array()
    depthwise_bias: np.ndarray = array()
    pointwise_weight: np.ndarray = array()
    pointwise_bias: np.ndarray = array()
    stride: tuple = ints((1, 1), length=2)
    padding: tuple = ints((0, 0), length=2)
    dilation: tuple = ints((1, 1), length=2)

    def check(self) -> None:
        dw, pw = self.depthwise_weight, self.pointwise_weight
        if dw.ndim != 4 or dw.shape[1] != 1:
            raise PrimitiveError(f"SepConv2d.depthwise_weight must be (C, 1, kh, kw), got {dw.shape}")
        if pw.ndim != 4 or pw.shape[1] != dw.shape[0] or pw.shape[2:] != (1, 1):
            raise PrimitiveError(f"SepConv2d.pointwise_weight must be (O, {dw.shape[0]}, 1, 1), got {pw.shape}")
        if self.depthwise_bias.shape != (dw.shape[0],):
            raise PrimitiveError(f"SepConv2d.depthwise_bias must have shape ({dw.shape[0]},), got {self.depthwise_bias.shape}")
        if self.pointwise_bias.shape != (pw.shape[0],):
            raise PrimitiveError(f"SepConv2d.pointwise_bias must have shape ({pw.shape[0]},), got {self.pointwise_bias.shape}")

    def output_shape_for(self, shape: Shape) -> Shape:
        dw, pw = self.depthwise_weight, self.pointwise_weight
        if len(shape) != 3 or shape[0] != dw.shape[0]:
            raise PrimitiveError(f"SepConv2d expects input (C={dw.shape[0]}, H, W), got {tuple(shape)}")
        h = conv_out(shape[1], dw.shape[2], self.stride[0], self.padding[0], self.dilation[0])
        w = conv_out(shape[2], dw.shape[3], self.stride[1], self.padding[1], self.dilation[1])
        return (int(pw.shape[0]), h, w)
