"""HLS emitters: one per primitive type, each writing its node's C++ and estimating what that code costs.

    from talon.backend.fpga.emitters import Emitter, register_emitter

    class MyEmitter(Emitter):
        def emit(self, code): ...        # NodeCode: kernel call, constants, state, reset, ports
        def estimate(self, e): ...       # NodeEstimate -> LayerEstimate (the same loops)

    register_emitter("MyPrimitive", MyEmitter())

Importing this package registers the built-in emitters (through the same `register_emitter`). A node
whose type has no emitter fails with a BackendError naming it (docs/fpga.md, "Adding a primitive").
"""

from talon.backend.fpga.emitters.context import NodeCode, NodeEstimate, ProjectCode
from talon.backend.fpga.emitters.registry import Emitter, emitter_for, emitter_types, register_emitter, unregister_emitter
from talon.backend.fpga.emitters import elementwise, neurons, pooling, synaptic  # noqa: E402,F401  (built-ins register)
from talon.backend.fpga.emitters.elementwise import elementwise_estimate
from talon.backend.fpga.emitters.synaptic import synaptic_estimate
from talon.backend.fpga.model import LayerEstimate

__all__ = [
    "Emitter", "LayerEstimate", "NodeCode", "NodeEstimate", "ProjectCode", "elementwise_estimate", "emitter_for",
    "emitter_types", "register_emitter", "synaptic_estimate", "unregister_emitter",
]  # fmt: skip
