"""The TALON IR: typed primitives, the Graph, and the .t1c file format. Never imports torch."""

from talon.errors import GraphValidationError, PrimitiveError, TalonError, TalonFormatError
from talon.ir.node import Node, get_node_class, list_primitives, register_node, unregister_node
from talon.ir.primitives import *  # noqa: F401,F403  (registers every built-in primitive)
from talon.ir.primitives import __all__ as _primitive_names
from talon.ir.graph import Graph
from talon.ir.format import FORMAT_VERSION, read, read_version, write
from talon.ir.spike_inputs import spike_inputs, with_spike_inputs

__all__ = [
    "Node", "Graph", "register_node", "unregister_node", "get_node_class", "list_primitives", "read", "write", "read_version",
    "FORMAT_VERSION", "TalonError", "TalonFormatError", "GraphValidationError", "PrimitiveError",
    "from_nir", "to_nir", "spike_inputs", "with_spike_inputs",  # noqa: F405 (from_nir/to_nir: module __getattr__, lazily)
    *_primitive_names,
]


def __getattr__(name: str):
    # NIR interop is resolved lazily: talon.ir.nir imports the optional `nir` package only when called.
    if name in ("from_nir", "to_nir"):
        from talon.ir import nir as _nir

        return getattr(_nir, name)
    raise AttributeError(f"module 'talon.ir' has no attribute {name!r}")
