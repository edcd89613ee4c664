"""Graph boundary primitives: Input and Output."""

from __future__ import annotations

from talon.errors import PrimitiveError
from talon.ir.node import Node, Shape, boolean, ints, primitive


@primitive
class Input(Node):
    """Graph input. `shape` is one sample's shape, batch dimension excluded.

    `spikes`: the input carries spikes (every value 0 or 1), e.g. rate-coded pixels. The layers it feeds
    are then event-driven: their cost follows the input's rate (docs/cost_model.md). A TALON addition,
    stored only when true, which the existing SDK's reader ignores.
    """

    shape: tuple = ints()
    spikes: bool = boolean(False, extension=True, doc="the input carries spikes (0/1 values)")
    min_inputs = 0
    max_inputs = 0

    def check(self) -> None:
        if any(d <= 0 for d in self.shape):
            raise PrimitiveError(f"Input.shape must be positive, got {self.shape}")

    def infer_output_shapes(self, input_shapes: list[Shape]) -> list[Shape]:
        if input_shapes:
            raise PrimitiveError("Input takes no inputs")
        return [tuple(self.shape)]


@primitive
class Output(Node):
    """Graph output: passes its input through. `shape` records the output sample shape."""

    grid_preserving = True

    shape: tuple = ints(optional=True)

    def output_shape_for(self, shape: Shape) -> Shape:
        if self.shape is not None and tuple(self.shape) != tuple(shape):
            raise PrimitiveError(f"Output.shape is {self.shape} but its input has shape {tuple(shape)}")
        return tuple(shape)
