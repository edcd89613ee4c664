"""The HLS emitter registry: one emitter per primitive type, the single place the fpga backend asks what a
node's C++ is and what it costs (docs/fpga.md, "Adding a primitive").

Built-in primitives register through `register_emitter`, exactly as a user's primitive does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from talon._registry import put
from talon.errors import BackendError, TalonUsageError

if TYPE_CHECKING:
    from talon.backend.fpga.emitters.context import NodeCode, NodeEstimate
    from talon.backend.fpga.model import LayerEstimate


class Emitter:
    """The fpga backend's knowledge of one primitive type.

    `emit(code)` appends the node's C++ to the top function (its kernel call, constants, state and reset;
    see NodeCode); `estimate(e)` returns its LayerEstimate for reuse factor `e.R`. Both read the same
    descriptor node, so the estimate describes exactly the loops `emit` writes: `code.lanes` is the
    estimate's `lanes`. `multi_output`: the node writes one buffer per outgoing edge, `b_s<k>_<id>`, instead
    of `b_<id>` (ChannelSplit)."""

    multi_output: bool = False

    def emit(self, code: NodeCode) -> None:
        raise NotImplementedError(f"{type(self).__name__}.emit")

    def estimate(self, e: NodeEstimate) -> LayerEstimate:
        raise NotImplementedError(f"{type(self).__name__}.estimate")


_EMITTERS: dict[str, Emitter] = {}


def register_emitter(type_name: str, emitter: Emitter, *, replace: bool = False) -> Emitter:
    """Make `emitter` the fpga backend's emitter for primitive type `type_name` (an IR type name)."""
    if not isinstance(type_name, str) or not type_name:
        raise TalonUsageError(f"register_emitter needs a primitive type name, got {type_name!r}")
    if not (callable(getattr(emitter, "emit", None)) and callable(getattr(emitter, "estimate", None))):
        raise TalonUsageError(f"the emitter for {type_name!r} must have emit(code) and estimate(e) methods, got {emitter!r}")
    return put(_EMITTERS, type_name, emitter, what="an fpga emitter", replace=replace)


def unregister_emitter(type_name: str) -> None:
    """Remove the emitter of `type_name` (tests; a no-op when there is none)."""
    _EMITTERS.pop(type_name, None)


def emitter_for(type_name: str, node: str | None = None) -> Emitter:
    """The emitter registered for `type_name`; BackendError naming the node and the type when there is none."""
    try:
        return _EMITTERS[type_name]
    except KeyError:
        who = f"node {node!r} of type {type_name}" if node is not None else f"primitive type {type_name}"
        raise BackendError(f"the fpga backend has no emitter for {who}: register one with "
                           f"talon.backend.fpga.emitters.register_emitter({type_name!r}, emitter) (docs/fpga.md, "
                           f"'Adding a primitive'); types with an emitter: {', '.join(_EMITTERS)}") from None  # fmt: skip


def emitter_types() -> tuple[str, ...]:
    """The primitive types with an emitter, in registration order."""
    return tuple(_EMITTERS)
