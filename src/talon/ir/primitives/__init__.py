"""Built-in primitives, one module per family (or per neuron); importing this package registers them all.

Every module of this package (not starting with "_") is imported at package import, in sorted order
(pkgutil.iter_modules), so a new primitive's module registers itself with no import line elsewhere. The
exported names are the Node classes each module registers (talon.ir.node's registry), so `from
talon.ir.primitives import Alpha` and `talon.ir.Alpha` work for a discovered primitive too.
"""

import importlib
import pkgutil
from typing import TYPE_CHECKING

from talon.ir.node import Node, get_node_class


if TYPE_CHECKING:  # static type checkers do not run the discovery below: the long-standing families, spelled out
    from talon.ir.primitives.io import Input, Output  # noqa: F401
    from talon.ir.primitives.linear import Affine, Linear, Scale, SpikingAffine  # noqa: F401
    from talon.ir.primitives.conv import Conv1d, Conv2d, SConv, SDConv, SepConv2d  # noqa: F401
    from talon.ir.primitives.pooling import AvgPool2d, MaxPool2d, SumPool2d, Upsample  # noqa: F401
    from talon.ir.primitives.neurons import IF, LI, LIF, CubaLIF, Delay, Integrator, Threshold  # noqa: F401
    from talon.ir.primitives.activations import ELU, GELU, PReLU, ReLU, Sigmoid, Softmax, Tanh  # noqa: F401
    from talon.ir.primitives.norm import BatchNorm1d, BatchNorm2d, Dropout, LayerNorm  # noqa: F401
    from talon.ir.primitives.structure import ChannelSplit, Concat, Flatten, HybridRegion, Skip  # noqa: F401
    from talon.ir.primitives.legacy import (  # noqa: F401
        DFLDecode, Dist2BBox, GhostBasicBlock1, GhostBasicBlock2, NMS, SDDetect, SGhostConv, SGhostEncoderLite,
    )


def _registered_classes(module: object) -> list[str]:
    """The names of the Node classes `module` defines and registered under their type name, in its order."""
    return [name for name, value in vars(module).items()
            if isinstance(value, type) and issubclass(value, Node) and value.__module__ == getattr(module, "__name__", None)
            and get_node_class(value.type_name) is value]


__all__ = ["RESET_MODES"]
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
    if _info.name.startswith("_"):
        continue
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    for _name in _registered_classes(_module):
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)

# Helpers, not primitives (kept out of __all__): talon.bridge and talon.ir.nir call them as primitives.X.
from talon.ir.primitives.neurons import RESET_MODES, NeuronCoefficients as NeuronCoefficients, coefficients as coefficients, in_time_unit as in_time_unit  # noqa: E402
