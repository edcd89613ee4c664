"""Values that forward stores on the model (`self.mem1 = mem1`) to read back on the next call.

torch.fx records data flow, not Python attribute writes: a state kept between calls in an attribute of the
model is invisible to the traced graph, which sees only the attribute's value at trace time (typically
`None`, then a fresh zero state), so the export would compute a neuron that restarts on every call while
snnTorch continues from the stored state. Such writes are found after tracing (the attribute then holds
one of fx's proxies) and refused by name, with the ways to carry the state that the IR does see.
"""

from __future__ import annotations

from typing import Callable

import torch.fx as fx
import torch.nn as nn

from talon.bridge._source import source_line
from talon.errors import UnsupportedModuleError


def attributes(root: nn.Module) -> dict[int, set[str]]:
    """The attribute names each module has before tracing."""
    return {id(m): set(vars(m)) for m in root.modules()}


def check(root: nn.Module, before: dict[int, set[str]], is_neuron: Callable[[nn.Module], bool], api: str) -> None:
    """Refuse a traced value stored during forward in an attribute that the module had before (set up in __init__,
    e.g. `self.mem1 = None`): the next call of forward reads it back."""
    for path, m in root.named_modules():
        if is_neuron(m):
            continue  # neuron state writes are checked by talon.bridge._state_writes
        for name, value in vars(m).items():
            if not isinstance(value, fx.Proxy) or name not in before.get(id(m), ()):
                continue
            where = f"self.{name}" if not path else f"{path}.{name}"
            line = source_line(value.node)
            raise UnsupportedModuleError(
                f"{api}: forward stores a computed value in {where} (the value of {line or repr(value.node.name)}), an "
                f"attribute of {type(m).__name__} that the next call of forward reads back: a state carried between "
                "calls in a Python attribute, which torch.fx does not record, so the graph would restart from the "
                "attribute's value at export time on every step. Keep the state where the IR carries it: in the neuron "
                "(init_hidden=True, or call self.lif(cur) without a state argument), or as a forward argument that the "
                "caller hands back (def forward(self, x, mem1=None), return the new mem1). If forward only stores the "
                "value for inspection, remove the assignment for the export")


def restore(m: nn.Module, saved: dict[str, object]) -> None:
    """Put back (or remove) the attributes of `m` that tracing left holding fx proxies."""
    for name, value in list(vars(m).items()):
        if isinstance(value, fx.Proxy):
            if name in saved:
                m.__dict__[name] = saved[name]
            else:
                del m.__dict__[name]


__all__ = ["attributes", "check", "restore"]
