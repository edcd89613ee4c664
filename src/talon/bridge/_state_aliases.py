"""`mem = mem.detach()` in a time loop: copies of a neuron's state that change no value are the state itself.

Truncated backpropagation through time hands a neuron its state detached (`spk, mem = self.lif(cur, mem.detach())`,
or `mem = mem.detach()` after the call), sometimes cloned. At inference these are the same values, so the state
is still the neuron's own state from the previous step, which the IR neuron carries. The loop analysis
(`talon.bridge._loops`) compares the state argument with the neuron's previous output node; before session 8 the
copy in between made it refuse the loop ("its state argument 'mem' is not its own mem"). Here such copies are
removed from the traced graph first: they are no node of the IR anyway (docs/bridge.md, functional ops).
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn as nn

_COPY_METHODS = {"detach", "clone", "contiguous"}
_COPY_FUNCTIONS = {torch.detach, torch.clone}


def _is_copy(n: fx.Node) -> bool:
    if n.op == "call_method":
        return n.target in _COPY_METHODS and len(n.args) == 1 and set(n.kwargs) <= {"memory_format"}
    return n.op == "call_function" and n.target in _COPY_FUNCTIONS and len(n.args) == 1 and not n.kwargs


def _neuron_output(n: Any, gm: fx.GraphModule, is_neuron: Callable[[nn.Module], bool]) -> bool:
    """`n` is an item of a neuron call's result (`spk` or a state)."""
    return (isinstance(n, fx.Node) and n.op == "call_function" and n.target is operator.getitem
            and isinstance(n.args[0], fx.Node) and n.args[0].op == "call_module"
            and is_neuron(gm.get_submodule(str(n.args[0].target))))


#: node.meta key: the node's position in the traced graph before copies were removed, which the state-write check
#: (talon.bridge._state_writes) compares with the node count it recorded at each write during the trace.
TRACE_INDEX = "talon_trace_index"


def drop_state_copies(gm: fx.GraphModule, is_neuron: Callable[[nn.Module], bool]) -> None:
    """Replace every `.detach()` / `.clone()` / `.contiguous()` of a neuron's output by that output (in place)."""
    for i, n in enumerate(gm.graph.nodes):
        n.meta.setdefault(TRACE_INDEX, i)
    for n in list(gm.graph.nodes):
        if _is_copy(n) and _neuron_output(n.args[0], gm, is_neuron):
            n.replace_all_uses_with(n.args[0])
            gm.graph.erase_node(n)
