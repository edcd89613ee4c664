"""Neuron state written from Python inside forward: recorded during the trace, kept only where exact.

`utils.reset(self)`, `self.lif.reset_mem()`, `self.lif.init_leaky()` and `self.lif.mem = ...` are Python
attribute writes that torch.fx does not record. While tracing, every write of a neuron's state attribute
(`mem`, `syn`, `spk`) is recorded with the number of fx nodes traced so far, so that it can be placed among
the neuron's calls. A write is exact when the IR neuron sees the same thing: a zero state before the
neuron's first call of a time loop in forward (tutorial 7's `utils.reset(net)` before the loop), a write the
next call overrides with an explicit state argument, one after the loop's last call, or the state's own tensor
written back (`self.lif.mem = self.lif.mem.detach()`, truncated BPTT). Anything else (a
reset inside the loop, a non-zero start, a reset in a one-step forward that the caller steps) is refused.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.fx as fx
import torch.nn as nn

from talon.bridge._state_aliases import TRACE_INDEX
from talon.bridge.converters import unsupported

_STATES = ("mem", "syn", "spk", "syn_exc", "syn_inh")


@dataclass
class StateWrite:
    path: str
    attr: str
    nodes_before: int
    zero: bool
    #: The value is the attribute's own tensor again (`self.lif.mem = self.lif.mem.detach()`, truncated BPTT):
    #: the same storage, shape and strides, so the same values whatever they are when the model runs.
    same: bool = False


@contextlib.contextmanager
def recording(root: nn.Module, tracer: fx.Tracer, is_neuron: Callable[[nn.Module], bool]) -> Iterator[list[StateWrite]]:
    """Record the state writes on `root`'s neurons while the block runs; the neuron classes are put back after."""
    paths = {id(m): p for p, m in root.named_modules() if is_neuron(m)}
    classes = {type(m) for p, m in root.named_modules() if is_neuron(m)}
    writes: list[StateWrite] = []
    saved = {cls: cls.__dict__.get("__setattr__") for cls in classes}

    def make(cls: type) -> Callable[[Any, str, Any], None]:
        inner = cls.__setattr__

        def setattr_(self: Any, name: str, value: Any) -> None:
            if name in _STATES and id(self) in paths:
                graph = getattr(tracer, "graph", None)
                zero = isinstance(value, torch.Tensor) and not isinstance(value, fx.Proxy) and not bool(torch.any(value != 0))
                writes.append(StateWrite(paths[id(self)], name, len(graph.nodes) if graph is not None else 0, zero,
                                         _same_tensor(value, getattr(self, name, None))))
            inner(self, name, value)
        return setattr_

    try:
        for cls in classes:
            cls.__setattr__ = make(cls)
        yield writes
    finally:
        for cls, original in saved.items():
            if original is None:
                del cls.__setattr__
            else:
                cls.__setattr__ = original


def _same_tensor(value: Any, current: Any) -> bool:
    real = [isinstance(t, torch.Tensor) and not isinstance(t, fx.Proxy) for t in (value, current)]
    if not all(real):
        return False
    return (value.untyped_storage()._cdata == current.untyped_storage()._cdata and value.shape == current.shape
            and value.stride() == current.stride() and value.storage_offset() == current.storage_offset()
            and value.dtype == current.dtype)


def _passes(n: fx.Node, module: nn.Module, attr: str) -> bool:
    """The neuron call `n` hands `attr` (e.g. mem) in as an argument, which overrides the attribute."""
    try:
        params = list(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):
        return False
    bound = {params[i]: v for i, v in enumerate(n.args) if i < len(params)}
    bound.update(n.kwargs)
    return bound.get(attr) is not None


def check(writes: list[StateWrite], gm: fx.GraphModule, has_loop: bool, api: str) -> None:
    """Raise UnsupportedModuleError for the first state write that the IR neuron would not see."""
    order = {n: n.meta.get(TRACE_INDEX, i) for i, n in enumerate(gm.graph.nodes)}  # positions as traced
    for w in writes:
        calls = [n for n in gm.graph.nodes if n.op == "call_module" and str(n.target) == w.path]
        if not calls:
            continue  # a neuron forward initialises but never calls: not in the graph
        module = gm.get_submodule(w.path)
        before = sum(1 for n in calls if order[n] < w.nodes_before)
        if before < len(calls) and _passes(calls[before], module, w.attr):
            continue  # the next call takes its state from its argument
        if before == len(calls) and (has_loop or not calls):
            continue  # after the loop: the next sequence starts where the caller resets it
        if before == 0 and has_loop and w.zero:
            continue  # zero before the loop: the IR neuron starts from zero too
        if w.same:
            continue  # self.lif.mem = self.lif.mem.detach(): the state, unchanged
        if before == 0 and has_loop:
            why = f"forward sets its state {w.attr!r} to a non-zero value before the time loop"
        elif has_loop:
            why = f"forward resets or sets its state {w.attr!r} inside the time loop (after call {before} of {len(calls)})"
        else:
            why = (f"forward resets or sets its state {w.attr!r} (utils.reset, reset_mem(), init_leaky() or an assignment), "
                   "so in snnTorch every call of forward restarts the neuron")
        raise unsupported(w.path, module, f"{why}; torch.fx does not record it, and the IR neuron starts from zero and "
                          "continues from its own state. Move the reset out of forward: call utils.reset(net) between "
                          "sequences in snnTorch and executor.reset() (or start from an empty state) in TALON; give a "
                          "non-zero start to the executor: ir_to_torch(graph, return_state=True)(x, state)", api,
                          converter_hint=False)
