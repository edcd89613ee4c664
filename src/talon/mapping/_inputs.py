"""What the mapping entry points accept from a user: a graph (a talon.ir.Graph, a NeuronGraph, or the path
of a .t1c/.nir file, as every talon.sdk function takes), a HardwareSpec, a default rate, and neuron or
mesh indices. Anything else is refused with a MappingError naming the argument and the way forward,
never a bare TypeError/AttributeError from deep inside, and never silently truncated (int(2.5) is 2).
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

from talon._numbers import whole_number
from talon.errors import MappingError
from talon.ir import Graph, read
from talon.mapping.hardware import HardwareSpec
from talon.mapping.neurons import NeuronGraph


def as_graph(graph: Any, where: str) -> Graph | NeuronGraph:
    """`graph` itself (an IR Graph or a NeuronGraph), or the graph read from the file it names."""
    if isinstance(graph, (Graph, NeuronGraph)):
        return graph
    if isinstance(graph, (str, os.PathLike)):
        return read(os.fspath(graph))
    raise MappingError(
        f"{where} expects a talon.ir.Graph, a NeuronGraph or the path of a .t1c file, got {type(graph).__name__}"
    )


def check_hardware(hw: Any, where: str) -> HardwareSpec:
    if isinstance(hw, HardwareSpec):
        return hw
    if isinstance(hw, str):
        hint = f"talon.mapping.preset({hw!r})"
    elif isinstance(hw, dict):
        hint = "talon.mapping.HardwareSpec.from_dict(d)"
    else:
        hint = "talon.mapping.HardwareSpec(mesh=(rows, cols), ...) or talon.mapping.preset(name)"
    raise MappingError(f"{where}: hw must be a HardwareSpec, got {type(hw).__name__}; build one with {hint}")


def check_rate(value: Any, what: str) -> float:
    """A spike rate of an IR graph's layer: a real number in [0, 1] (a neuron or an input element sends at
    most one spike per step)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MappingError(f"{what} must be a number of spikes per neuron per step in [0, 1], got {value!r}")
    out = float(value)
    if not (math.isfinite(out) and 0.0 <= out <= 1.0):
        raise MappingError(
            f"{what} must be in [0, 1] spikes per neuron per step (a neuron sends at most one spike a step), "
            f"got {out:g}; for a spike count over T steps, divide by T"
        )
    return out


def check_index(value: Any, what: str) -> int:
    """A whole number (Python or numpy integer, or an integral float), else MappingError."""
    out = whole_number(value)
    if out is None:
        raise MappingError(f"{what} must be an integer, got {value!r}")
    return out
