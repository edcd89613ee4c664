"""HLS emitters: one per primitive type, each writing its node's C++ and estimating what that code costs.

    from talon.backend.fpga.emitters import Emitter, register_emitter

    class MyEmitter(Emitter):
        def emit(self, code): ...        # NodeCode: kernel call, constants, state, reset, ports
        def estimate(self, e): ...       # NodeEstimate -> LayerEstimate (the same loops)

    register_emitter("MyPrimitive", MyEmitter())

Importing this package registers the built-in emitters (through the same `register_emitter`): every module of
this package (not starting with "_") is imported at package import, in sorted order (pkgutil.iter_modules),
so a new primitive's emitter module registers itself with no import line elsewhere. A node
whose type has no emitter fails with a BackendError naming it (docs/fpga.md, "Adding a primitive").
"""

import importlib
import pkgutil

from talon.backend.fpga.emitters.context import NodeCode, NodeEstimate, ProjectCode
from talon.backend.fpga.emitters.registry import Emitter, emitter_for, emitter_types, register_emitter, unregister_emitter
from talon.backend.fpga.emitters.elementwise import elementwise_estimate
from talon.backend.fpga.emitters.synaptic import synaptic_estimate
from talon.backend.fpga.model import LayerEstimate

__all__ = [
    "Emitter", "LayerEstimate", "NodeCode", "NodeEstimate", "ProjectCode", "elementwise_estimate", "emitter_for",
    "emitter_types", "register_emitter", "synaptic_estimate", "unregister_emitter",
]  # fmt: skip

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")  # the built-ins register as they are imported
