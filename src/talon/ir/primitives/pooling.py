"""Spatial resampling primitives: MaxPool2d, AvgPool2d, SumPool2d and Upsample."""

from __future__ import annotations

from talon.errors import PrimitiveError
from talon.ir.node import Node, Shape, boolean, ints, number, primitive, string
from talon.ir.primitives._shapes import conv_out
from talon.ir.primitives._ranges import check_range


class _Pool2d(Node):
    def _pool_shape(self, shape: Shape, dilation: tuple = (1, 1), ceil_mode: bool = False) -> Shape:
        if len(shape) != 3:
            raise PrimitiveError(f"{self.type_name} expects input (C, H, W), got {tuple(shape)}")
        k, s, p = self.kernel_size, self.stride, self.padding
        if min(k) < 1 or min(s) < 1 or min(p) < 0:
            raise PrimitiveError(f"{self.type_name}: kernel_size and stride must be >= 1, padding >= 0")
        if p[0] * 2 > k[0] or p[1] * 2 > k[1]:
            raise PrimitiveError(f"{self.type_name}: padding {p} must be at most half the kernel {k}")
        return (shape[0], conv_out(shape[1], k[0], s[0], p[0], dilation[0], ceil_mode), conv_out(shape[2], k[1], s[1], p[1], dilation[1], ceil_mode))


@primitive
class MaxPool2d(_Pool2d):
    """y = max over each window (as torch.nn.MaxPool2d, padding with -inf)."""

    grid_preserving = True

    kernel_size: tuple = ints(length=2)
    stride: tuple = ints(length=2)
    padding: tuple = ints((0, 0), length=2)
    dilation: tuple = ints((1, 1), length=2)
    ceil_mode: bool = boolean(False)

    def output_shape_for(self, shape: Shape) -> Shape:
        return self._pool_shape(shape, self.dilation, self.ceil_mode)


@primitive
class AvgPool2d(_Pool2d):
    """y = mean over each window (as torch.nn.AvgPool2d)."""

    kernel_size: tuple = ints(length=2)
    stride: tuple = ints(length=2)
    padding: tuple = ints((0, 0), length=2)
    ceil_mode: bool = boolean(False)
    count_include_pad: bool = boolean(True)

    def output_shape_for(self, shape: Shape) -> Shape:
        return self._pool_shape(shape, (1, 1), self.ceil_mode)


@primitive
class SumPool2d(_Pool2d):
    """y = sum over each window (NIR's SumPool2d; zero padding)."""

    kernel_size: tuple = ints(length=2)
    stride: tuple = ints(length=2)
    padding: tuple = ints((0, 0), length=2)

    def output_shape_for(self, shape: Shape) -> Shape:
        return self._pool_shape(shape)


@primitive
class Upsample(Node):
    """Spatial upsampling of a (C, H, W) input as torch.nn.Upsample: to `size` if given, else by `scale_factor`."""

    grid_preserving = True  # in mode 'nearest' (the fixed-point plan refuses bilinear)

    scale_factor: float | int | None = number(2, optional=True)
    size: tuple | None = ints(optional=True, length=2)
    mode: str = string("nearest", choices=("nearest", "bilinear"))
    align_corners: bool = boolean(False)

    def check(self) -> None:
        if self.size is None and self.scale_factor is None:
            raise PrimitiveError("Upsample needs a positive scale_factor or a size, got scale_factor=None")
        if self.size is None:
            check_range("Upsample", "scale_factor", self.scale_factor, "must be positive (Upsample needs a positive scale_factor or a size)",
                        low=0.0, low_open=True)
        if self.size is not None and min(self.size) < 1:
            raise PrimitiveError(f"Upsample.size must be positive, got {self.size}")

    def output_shape_for(self, shape: Shape) -> Shape:
        if len(shape) != 3:
            raise PrimitiveError(f"Upsample expects input (C, H, W), got {tuple(shape)}")
        if self.size is not None:
            return (shape[0],) + tuple(self.size)
        f = self.scale_factor
        return (shape[0], int(shape[1] * f), int(shape[2] * f))
