"""`self.lif.forward(cur, mem)` and `self.fc.forward(x)`: a layer's forward called directly, traced as the call.

torch.fx records a layer as one node when the model calls the module (`self.fc(x)`), through the `Module.__call__`
it patches while tracing. A direct `self.fc.forward(x)` bypasses that, so the trace went into the layer's own code:
snnTorch's neuron forward failed with fx's "symbolically traced variables cannot be used as inputs to control
flow", and `nn.Linear.forward` became a call of `F.linear`, refused as "no IR equivalent". Both compute what the
call computes (the call adds only hooks, which the export checks separately), so while tracing, every leaf of the
trace gets an instance `forward` that calls the module; the instances are put back as they were right after.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from torch import nn


class _AsCall:
    """An instance `forward` that calls the module instead, so that fx records the call."""

    __slots__ = ("module",)

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)


@contextlib.contextmanager
def traced_as_calls(root: nn.Module, is_leaf: Callable[[nn.Module, str], bool]) -> Iterator[None]:
    """While the block runs (one fx trace), `m.forward(...)` of every outermost leaf module `m` below `root` is `m(...)`.

    Only leaves: fx's patched `__call__` records them without running their forward, so the instance `forward`
    is never reached from inside the call. A module whose `forward` is already an instance attribute is left alone.
    """
    patched: list[nn.Module] = []
    inside: list[str] = []
    try:
        for path, m in root.named_modules():
            if m is root or any(path.startswith(p + ".") for p in inside):
                continue
            if isinstance(m, (nn.ModuleList, nn.ModuleDict)):
                continue  # containers, never called (fx's default counts every torch.nn class as a leaf)
            if not is_leaf(m, path):
                continue
            inside.append(path)
            if "forward" in vars(m):
                continue
            object.__setattr__(m, "forward", _AsCall(m))
            patched.append(m)
        yield
    finally:
        for m in patched:
            vars(m).pop("forward", None)
