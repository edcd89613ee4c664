"""Values that forward stores on the model (`self.mem1 = mem1`) to read back on the next call.

torch.fx records data flow, not Python attribute writes: a state kept between calls in an attribute of the
model is invisible to the traced graph, which sees only the attribute's value at trace time (typically
`None`, then a fresh zero state), so the export would compute a neuron that restarts on every call while
snnTorch continues from the stored state. Such writes are found after tracing (the attribute then holds
one of fx's proxies) and refused by name, with the ways to carry the state that the IR does see.

The same holds for proxies stored inside a container: `self.states[0] = mem` (a list or dict set up in `__init__`
and mutated in place), `self.mems = [mem]`, `self.recordings = {"mem1": mem_rec}`. Before session 8 these were
not seen: the export went on (a neuron the list carried between calls became a memoryless Threshold) and left the
proxies in the user's model, whose next snnTorch call then failed in torch.fx. Containers are now searched
(nested, to a small depth) and the model's containers are put back as they were, contents included.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch.fx as fx
import torch.nn as nn

from talon.bridge._source import source_line
from talon.errors import UnsupportedModuleError


_DEPTH = 4        # containers inside containers searched
_ITEMS = 10_000  # a container larger than this is not searched (a data set kept on the model)


def attributes(root: nn.Module) -> dict[int, set[str]]:
    """The attribute names each module has before tracing."""
    return {id(m): set(vars(m)) for m in root.modules()}


def _searched(value: Any, depth: int) -> bool:
    """`value` is a container whose items are searched for proxies and saved for `restore`."""
    return depth < _DEPTH and isinstance(value, (list, tuple, dict)) and len(value) <= _ITEMS


def _proxies(value: Any, where: str, depth: int = 0) -> Iterator[tuple[str, fx.Proxy]]:
    """(`where` extended by the index or key, proxy) for every fx proxy in `value` and the containers it holds."""
    if isinstance(value, fx.Proxy):
        yield where, value
        return
    if not _searched(value, depth):
        return
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        yield from _proxies(item, f"{where}[{key!r}]", depth + 1)


def check(root: nn.Module, before: dict[int, set[str]], is_neuron: Callable[[nn.Module], bool], api: str) -> None:
    """Refuse a traced value stored during forward in an attribute that the module had before (set up in __init__,
    e.g. `self.mem1 = None` or `self.states = [None]`, whose items forward may set): the next call of forward
    reads it back."""
    for path, m in root.named_modules():
        if is_neuron(m):
            continue  # neuron state writes are checked by talon.bridge._state_writes
        for name, attr in vars(m).items():
            if name not in before.get(id(m), ()):
                continue
            where = f"self.{name}" if not path else f"{path}.{name}"
            for at, value in _proxies(attr, where):
                line = source_line(value.node)
                raise UnsupportedModuleError(
                    f"{api}: forward stores a computed value in {at} (the value of {line or repr(value.node.name)}), "
                    f"an attribute of {type(m).__name__} that the next call of forward reads back: a state carried "
                    "between calls in a Python attribute, which torch.fx does not record, so the graph would restart "
                    "from the attribute's value at export time on every step. Keep the state where the IR carries it: "
                    "in the neuron (init_hidden=True, or call self.lif(cur) without a state argument), or as a forward "
                    "argument that the caller hands back (def forward(self, x, mem1=None), return the new mem1). If "
                    "forward only stores the value for inspection, remove the assignment for the export")


def snapshot(m: nn.Module) -> dict[str, tuple]:
    """The attributes of `m` with the contents of their containers, which forward may change in place."""
    return {name: _snap(value) for name, value in vars(m).items()}


def _snap(value: Any, depth: int = 0) -> tuple:
    if not _searched(value, depth):
        return value, None
    if isinstance(value, dict):
        return value, {k: _snap(v, depth + 1) for k, v in value.items()}
    return value, [_snap(v, depth + 1) for v in value]


def _put_back(saved: tuple) -> Any:
    value, contents = saved
    if contents is None:
        return value
    if isinstance(value, dict):
        value.clear()
        value.update({k: _put_back(c) for k, c in contents.items()})
    elif isinstance(value, list):
        value[:] = [_put_back(c) for c in contents]
    else:  # a tuple: its own items cannot change, containers inside it can
        for c in contents:
            _put_back(c)
    return value


def restore(m: nn.Module, saved: dict[str, tuple]) -> None:
    """Put back (or remove) the attributes of `m` that tracing left holding fx proxies, at any depth of their
    containers; `saved` is `snapshot(m)` taken before tracing."""
    for name, value in list(vars(m).items()):
        # a proxy stored in the attribute, or into the container it held before (`self.states[0] = mem`)
        if not _holds_proxy(value) and not (name in saved and _holds_proxy(saved[name][0])):
            continue
        if name in saved:
            m.__dict__[name] = _put_back(saved[name])
        else:
            del m.__dict__[name]


def _holds_proxy(value: Any) -> bool:
    return next(_proxies(value, ""), None) is not None


__all__ = ["attributes", "check", "restore", "snapshot"]
