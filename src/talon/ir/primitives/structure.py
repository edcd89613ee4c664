"""Structural primitives: Flatten, Skip, Concat, ChannelSplit and HybridRegion markers.

Dimensions (`dim`, `start_dim`, `end_dim`) count sample dimensions, batch excluded.
A node with several inputs receives them in edge order; ChannelSplit hands its k-th chunk to the
destination of its k-th outgoing edge.
"""

from __future__ import annotations

import math

from talon.errors import PrimitiveError
from talon.ir.node import Node, Shape, integer, ints, primitive, string
from talon.ir.primitives._shapes import norm_dim, same_shapes


@primitive
class Flatten(Node):
    """Merge sample dimensions start_dim..end_dim into one."""

    grid_preserving = True

    start_dim: int = integer(0)
    end_dim: int = integer(-1)

    def output_shape_for(self, shape: Shape) -> Shape:
        rank = len(shape)
        if rank == 0:
            return (1,)
        s = norm_dim("Flatten.start_dim", self.start_dim, rank)
        e = norm_dim("Flatten.end_dim", self.end_dim, rank)
        if s > e:
            raise PrimitiveError(f"Flatten.start_dim ({self.start_dim}) comes after end_dim ({self.end_dim}) for input {tuple(shape)}")
        return tuple(shape[:s]) + (math.prod(shape[s : e + 1]),) + tuple(shape[e + 1 :])


@primitive
class Skip(Node):
    """Skip connection: `residual` adds its inputs, `passthrough` is the identity, `concatenate` joins them on dim 0."""

    skip_type: str = string("residual", choices=("residual", "passthrough", "concatenate"))
    max_inputs = None

    @property
    def sums_inputs(self) -> bool:  # type: ignore[override]
        return self.skip_type == "residual"

    def infer_output_shapes(self, input_shapes: list[Shape]) -> list[Shape]:
        if self.skip_type == "passthrough":
            if len(input_shapes) != 1:
                raise PrimitiveError(f"Skip(passthrough) takes one input, got {len(input_shapes)}")
            return [tuple(input_shapes[0])]
        if self.skip_type == "residual":
            return [same_shapes("Skip(residual)", input_shapes)]
        return Concat(num_inputs=len(input_shapes), dim=0).infer_output_shapes(input_shapes)


@primitive
class Concat(Node):
    """Concatenate `num_inputs` inputs (in edge order) along `dim`."""

    num_inputs: int = integer(2, minimum=1)
    dim: int = integer(0)
    max_inputs = None
    sums_inputs = False  # joins its inputs

    def infer_output_shapes(self, input_shapes: list[Shape]) -> list[Shape]:
        if len(input_shapes) != self.num_inputs:
            raise PrimitiveError(f"Concat expects {self.num_inputs} inputs, got {len(input_shapes)}")
        rank = len(input_shapes[0])
        d = norm_dim("Concat", self.dim, rank)
        for s in input_shapes:
            if len(s) != rank or any(s[i] != input_shapes[0][i] for i in range(rank) if i != d):
                raise PrimitiveError(f"Concat inputs must agree except on dim {self.dim}: {[tuple(x) for x in input_shapes]}")
        out = list(input_shapes[0])
        out[d] = sum(s[d] for s in input_shapes)
        return [tuple(out)]


@primitive
class ChannelSplit(Node):
    """Split the input along `dim` into chunks of `split_sections`; chunk k goes to the k-th outgoing edge."""

    grid_preserving = True

    split_sections: tuple = ints()
    dim: int = integer(0)

    def check(self) -> None:
        if not self.split_sections or min(self.split_sections) < 1:
            raise PrimitiveError(f"ChannelSplit.split_sections must be positive, got {self.split_sections}")

    @property
    def num_outputs(self) -> int:
        return len(self.split_sections)

    def infer_output_shapes(self, input_shapes: list[Shape]) -> list[Shape]:
        if len(input_shapes) != 1:
            raise PrimitiveError(f"ChannelSplit takes one input, got {len(input_shapes)}")
        shape = input_shapes[0]
        d = norm_dim("ChannelSplit", self.dim, len(shape))
        if sum(self.split_sections) != shape[d]:
            raise PrimitiveError(f"ChannelSplit sections {self.split_sections} sum to {sum(self.split_sections)}, but dim {self.dim} of {tuple(shape)} is {shape[d]}")
        return [tuple(shape[:d]) + (n,) + tuple(shape[d + 1 :]) for n in self.split_sections]


@primitive
class HybridRegion(Node):
    """Identity marker: what follows runs as `mode` ("ann" or "snn") until the next marker."""

    grid_preserving = True

    mode: str = string("snn", choices=("ann", "snn"))
    features: int | None = integer(optional=True)
    name: str | None = string(optional=True)
