"""States handed into forward (`forward(self, x, mem1=None)`) must reach their neuron unchanged.

The export fixes every forward argument after the input to its default, so `if mem1 is None:
mem1 = self.lif1.init_leaky()` runs and the path a caller's state takes is never traced. The IR neuron
stands for that state: it continues from what it left, as the caller hands the returned state back. Code
that changes the state on its way in (`mem1 = mem1 * 0.5`, `mem1 + bias`) would be dropped. So forward is
traced once more with those arguments as inputs, and a neuron state argument computed from one of them
(anything but the argument itself, or an identity such as `.detach()`) is refused by name.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch.fx as fx
import torch.nn as nn

from talon.bridge._source import source_line
from talon.bridge.converters import unsupported

_IDENTITY = {"detach", "clone", "contiguous", "float", "to", "cpu"}


def _optional(root: nn.Module) -> list[str]:
    params = list(inspect.signature(root.forward).parameters.values())[1:]
    return [p.name for p in params if p.default is None and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def check(root: nn.Module, tracer: fx.Tracer, concrete: dict[str, Any], is_neuron: Callable[[nn.Module], bool],
          state_index: Callable[[nn.Module, str], int | None], api: str) -> None:
    """Raise UnsupportedModuleError when a neuron's state argument is computed from a state forward takes."""
    names = _optional(root)
    if not names:
        return
    try:
        graph = tracer.trace(root, concrete_args={k: v for k, v in concrete.items() if k not in names})
    except Exception:  # noqa: BLE001 - a path fx cannot follow: the first trace's checks stand
        return
    handed = {n for n in graph.nodes if n.op == "placeholder" and n.target in names}
    for n in graph.nodes:
        if n.op != "call_module":
            continue
        module = root.get_submodule(str(n.target))
        if not is_neuron(module):
            continue
        try:
            params = list(inspect.signature(module.forward).parameters)
        except (TypeError, ValueError):
            continue
        bound = {params[i]: v for i, v in enumerate(n.args) if i < len(params)}
        bound.update(n.kwargs)
        for key, v in bound.items():
            if key == params[0] or not isinstance(v, fx.Node) or state_index(module, key) is None:
                continue
            src = v
            while src.op == "call_method" and src.target in _IDENTITY and src.args and isinstance(src.args[0], fx.Node):
                src = src.args[0]
            if src in handed or not _reads_any(v, handed):
                continue
            line = source_line(v)
            raise unsupported(str(n.target), module, f"its state argument {key!r} is computed from the state forward takes "
                              f"as an argument ({f'at {line}' if line else repr(v.name)}), so in snnTorch the state the "
                              "caller hands back is changed before the neuron continues from it, while the IR neuron "
                              "continues from its own state as it left it. Pass the state to the neuron unchanged (do "
                              "the change inside the model's computation on the input, or outside forward)", api,
                              converter_hint=False)


def _reads_any(v: fx.Node, targets: set[fx.Node]) -> bool:
    """`v` is computed from one of `targets` by ops alone (not through a module call)."""
    seen: set[fx.Node] = set()
    stack = [v]
    while stack:
        n = stack.pop()
        if n in targets:
            return True
        if n in seen or n.op == "call_module":
            continue  # a layer's or neuron's output: the other state checks judge those
        seen.add(n)
        fx.node.map_arg((n.args, n.kwargs), stack.append)
    return False


__all__ = ["check"]
