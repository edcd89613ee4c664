"""Views of the model input while tracing: they keep the sample's sizes, so a time loop over them unrolls.

The traced input knows the sample's shape, device and dtype (export's `_SampleProxy`), which is what makes
`range(x.size(0))`, `len(x)` and `for x_t in x` unroll, and `torch.zeros(B, n, device=x.device)` a constant. A view taken before the loop used to lose that: `x = x.permute(1, 0, 2)` then
`for x_t in x`, `x = x.float()` then `range(x.size(0))`, and `for x_t in x.unbind(1)` (or `torch.unbind(x, 1)`)
failed in torch.fx ("Proxy object cannot be iterated"). Here the layout-only views (identity conversions and
swaps of two dims) return a proxy sized like the view, and `unbind(d)` returns the steps `x[i]` / `x[:, i]`, which
the loop analysis reads as it reads those forms written out (`talon.bridge._loops`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

#: Methods that leave the sample's shape as it is (the loop analysis checks that they change no value).
_SAME_SHAPE = {"float", "to", "contiguous", "detach", "clone", "cpu", "type_as"}
#: Methods that reorder the sample's dims (the shape comes from a meta tensor).
_REORDER = {"transpose", "swapaxes", "swapdims", "permute"}
VIEWS = _SAME_SHAPE | _REORDER | {"unbind"}
_TORCH = {name: getattr(torch, name) for name in ("transpose", "swapaxes", "swapdims", "permute", "unbind")}


def torch_view(fn: Any, args: Any) -> str | None:
    """The method name of torch.<fn>(x, ...) when x is a sized input proxy and fn one of the views above."""
    for name, f in _TORCH.items():
        if fn is f and args and isinstance(args[0], fx.Proxy) and "_sample_shape" in vars(args[0]):
            return name
    return None


def _has_proxy(values: Any) -> bool:
    found: list = []
    fx.node.map_aggregate(values, lambda v: found.append(v) if isinstance(v, fx.Proxy) else None)
    return bool(found)


def _unbind(proxy: Any, args: tuple, kwargs: dict) -> Any:
    shape = proxy._sample_shape
    dim = args[0] if args else kwargs.get("dim", 0)
    if type(dim) is not int or not -len(shape) <= dim < len(shape):
        return None
    dim %= len(shape)
    lead = (slice(None),) * dim
    return tuple(proxy[lead + (i,)] if dim else proxy[i] for i in range(shape[dim]))


def call(proxy: Any, name: str, args: tuple, kwargs: dict) -> Any:
    """`proxy.<name>(*args, **kwargs)` traced, sized like its value where that is known."""
    if name == "unbind":
        steps = _unbind(proxy, args, kwargs)
        if steps is not None:
            return steps
    traced = proxy.tracer.create_proxy("call_method", name, (proxy, *args), kwargs)
    if name == "unbind":
        return traced
    shape = proxy._sample_shape
    if name in _REORDER:
        if _has_proxy((args, kwargs)):
            return traced
        try:
            shape = getattr(torch.empty(shape, device="meta"), name)(*args, **kwargs).shape
        except (RuntimeError, TypeError, IndexError):
            return traced  # torch's own error is raised when the sample runs
    return type(proxy)(traced.node, proxy.tracer, shape, *_meta(proxy, name, args, kwargs))


def _meta(proxy: Any, name: str, args: tuple, kwargs: dict) -> tuple[Any, Any]:
    """The (device, dtype) of the view, None where it cannot be known while tracing."""
    device, dtype = proxy._sample_device, proxy._sample_dtype
    if name == "float":
        return device, torch.float32
    if name == "cpu":
        return torch.device("cpu"), dtype
    if name == "type_as":
        return device, None
    if name == "to":
        for a in (*args, *kwargs.values()):
            if isinstance(a, torch.dtype):
                dtype = a
            elif isinstance(a, (str, torch.device)):
                device = torch.device(a)
            elif a is not None and not isinstance(a, bool):
                return None, None  # x.to(other): the other tensor's
    return device, dtype
