"""In-place operations in a traced forward: refused unless the export provably reproduces them.

torch.fx records `y.mul_(2.0)` as a node whose result may never be read: the mutation of `y` itself is
invisible to the graph of data flow the exporter builds, so `y = fc(x); y.mul_(2.0); return y` would export
as `fc` alone. Every in-place method, in-place torch function (`torch.relu_`), functional call with
`inplace=True` and item assignment is refused with the node named; `a += b` is kept when the overwritten tensor is a
new one that nothing reads afterwards (torch.fx rebinds `a` to the result). A module with `inplace=True`
(`nn.ReLU(inplace=True)`) is kept when it is exact: its input is the fresh output of a layer (not a view,
not a neuron's state, not the model's input) that nothing else reads, so the mutated tensor is only ever
seen through the module's own result.
"""

from __future__ import annotations

import inspect
import operator
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn as nn

from talon.bridge._source import source_line
from talon.bridge.converters import unsupported
from talon.errors import UnsupportedModuleError

#: Tensor methods ending in `_` that change no values.
_HARMLESS = {"requires_grad_", "share_memory_", "retain_grad", "detach_"}
#: Modules whose output is (or may be) their input tensor itself.
_PASS_THROUGH = (nn.Identity, nn.Flatten, nn.Unflatten, nn.modules.dropout._DropoutNd)


def _inplace_kwarg(n: fx.Node) -> bool:
    if n.kwargs.get("inplace") is True:
        return True
    try:
        params = list(inspect.signature(n.target).parameters)
    except (TypeError, ValueError):
        return False
    if "inplace" in params:
        i = params.index("inplace")
        return i < len(n.args) and n.args[i] is True
    return False


def _inplace_op(n: fx.Node) -> str | None:
    """A description of the in-place operation `n` performs, or None."""
    if n.op == "call_method":
        name = str(n.target)
        if name == "__setitem__":  # item assignment into a tensor made in forward (a preallocated record)
            return "item assignment (x[...] = ...)"
        if name.endswith("_") and not name.endswith("__") and name not in _HARMLESS and hasattr(torch.Tensor, name):
            return f"Tensor.{name}"
    elif n.op == "call_function":
        if n.target is operator.setitem:
            return "item assignment (x[...] = ...)"
        name = getattr(n.target, "__name__", "")
        if name.endswith("_") and not name.endswith("__") and name not in _HARMLESS:
            return f"{getattr(n.target, '__module__', None) or 'torch'}.{name}"
        if _inplace_kwarg(n):
            return f"{name}(..., inplace=True)"
    return None


def _fresh(producer: Any, gm: fx.GraphModule, is_neuron: Callable[[nn.Module], bool]) -> bool:
    """`producer`'s value is a new tensor of a layer's own making (or an exact in-place module of one)."""
    if not isinstance(producer, fx.Node) or producer.op != "call_module":
        return False
    m = gm.get_submodule(str(producer.target))
    if is_neuron(m) or isinstance(m, _PASS_THROUGH):
        return False
    if getattr(m, "inplace", False) is True:
        return len(producer.users) == 1 and _fresh(producer.args[0] if producer.args else None, gm, is_neuron)
    return True


#: Ops whose result may share memory with their input (a view, or the input itself).
_ALIAS_FUNCTIONS = {operator.getitem, torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, torch.transpose,
                    torch.permute, torch.narrow, torch.select, torch.t, torch.nn.functional.dropout, torch.detach}
_ALIAS_METHODS = {"view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "contiguous", "detach", "expand",
                  "expand_as", "permute", "transpose", "t", "squeeze", "unsqueeze", "narrow", "select", "as_strided",
                  "__getitem__", "type_as", "to", "float"}
#: `a += b`, `a *= b`, `a /= b`: torch.fx records them as operator.iadd / imul / itruediv (export's proxy), which the
#: export maps to Add / Scale.
_AUGMENTED = {operator.iadd: "+=", operator.imul: "*=", operator.itruediv: "/="}


def _augmented_exact(n: fx.Node, gm: fx.GraphModule, is_neuron: Callable[[nn.Module], bool]) -> bool:
    """`a += b` is exact when the overwritten `a` is a new tensor that nothing reads after the statement and
    that shares memory with no other value (so the rebound name is its only way to the new value)."""
    a = n.args[0] if n.args else None
    if not isinstance(a, fx.Node) or a.op in ("placeholder", "get_attr"):
        return False
    order = {m: i for i, m in enumerate(gm.graph.nodes)}
    if any(order[u] > order[n] for u in a.users):
        return False
    if a.op == "call_module":
        return _fresh(a, gm, is_neuron)
    if a.op == "call_function":
        return a.target not in _ALIAS_FUNCTIONS and (a.target not in _AUGMENTED or _augmented_exact(a, gm, is_neuron))
    return a.op == "call_method" and str(a.target) not in _ALIAS_METHODS and _inplace_op(a) is None


def _where(n: fx.Node) -> str:
    line = source_line(n)
    return f"at {line}" if line else f"traced as {n.name!r}"


def check_inplace(gm: fx.GraphModule, is_neuron: Callable[[nn.Module], bool], api: str) -> None:
    """Raise UnsupportedModuleError for the first in-place operation the export cannot reproduce exactly."""
    for n in gm.graph.nodes:
        if n.op == "call_module":
            m = gm.get_submodule(str(n.target))
            if getattr(m, "inplace", False) is not True:
                continue
            src = n.args[0] if n.args else None
            if isinstance(src, fx.Node) and len(src.users) == 1 and _fresh(src, gm, is_neuron):
                continue
            raise unsupported(str(n.target), m, "it has inplace=True and overwrites a tensor that is read elsewhere "
                              "(or is a view, a neuron's state or the model's input); the graph would read the value "
                              f"before the overwrite. Construct it with inplace=False ({type(m).__name__}())", api,
                              converter_hint=False)
        if n.op == "call_function" and n.target in _AUGMENTED:
            if _augmented_exact(n, gm, is_neuron):
                continue
            sign = _AUGMENTED[n.target]
            raise UnsupportedModuleError(
                f"cannot export the in-place operation a {sign} b ({_where(n)}) on {n.args[0].name!r}: the "
                "tensor it overwrites is read again afterwards, is the model's input, or shares memory with another "
                f"value (a view, a neuron's output), and the graph would read the value before the overwrite. Write "
                f"a = a {sign[0]} b (a new tensor) instead")
        what = _inplace_op(n)
        if what is None:
            continue
        target = n.args[0].name if n.args and isinstance(n.args[0], fx.Node) else "its argument"
        plain = f"{str(n.target)[:-1]}" if n.op == "call_method" and n.target != "__setitem__" else None
        if what.startswith("item assignment"):
            hint = ("collect per-step values in a list and return torch.stack(spk_rec, dim=0) instead of writing "
                    "into a preallocated tensor (spk_rec[step] = spk); build other tensors with torch.cat")
        elif plain:
            hint = f"write y = y.{plain}(...) (e.g. y = y * 2.0 instead of y.mul_(2.0))"
        else:
            hint = ("write y = op(y, ...) without inplace (e.g. y = F.relu(y) instead of F.relu(y, inplace=True) "
                    "or torch.relu_(y))")
        line = source_line(n)
        raise UnsupportedModuleError(
            f"cannot export the in-place operation {what} ({f'at {line}' if line else f'traced as {n.name!r}'}) on "
            f"{target!r}: it overwrites a tensor "
            f"in place, which the IR cannot express (the graph carries values, not mutations: the overwrite would be "
            f"dropped). Compute a new tensor instead: {hint}")
