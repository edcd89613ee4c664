"""The record a time loop in `forward` returns: which per-step values it stacks, and along which dim.

Users build the record in several equivalent ways; each is one value per step laid along dim 0 (time-major) or
dim 1 (batch-first):

* `torch.stack(rec)`, `torch.stack(rec, 1)`, `torch.stack(rec, dim=...)`, `torch.stack(rec, axis=...)`,
  `torch.stack(tensors=rec, dim=...)`;
* `torch.cat` / `torch.concat` / `torch.concatenate` of `spk.unsqueeze(d)` (or `spk[None]`, `spk[:, None]`) along
  dim d, and `torch.vstack` (d = 0) / `torch.hstack` (d = 1) of them, the unsqueeze written in the loop
  (`rec.append(spk.unsqueeze(0))`) or after it (`[r.unsqueeze(0) for r in rec]`);
* any of these followed by `.transpose(0, 1)`, `.swapaxes(0, 1)`, `.swapdims(0, 1)`, `.permute(1, 0, ...)` or
  the torch functions of the same names, which turn a time-major record into a batch-first one and back, or by
  copies that change no value (`.detach()`, `.cpu()`, `.clone()`, `.contiguous()`, `.float()` of float32).

`record_of` only reads the form; `_loops` checks that the items are one value per step in step order.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx

_STACKS = {torch.stack}
_CATS = {torch.cat, torch.concat, torch.concatenate}
_SWAPS = {"transpose", "swapaxes", "swapdims"}


@dataclass(frozen=True)
class Record:
    """`items`: what the record holds per step (fx nodes, or whatever forward passed); `dim`: the record's dim
    along which they lie, non-negative (or not an int when forward passed something else); `call`: the node that
    builds the record, for messages."""

    items: list
    dim: Any
    call: fx.Node
    #: The `spk.unsqueeze(0)` nodes that only lay the items out for the record: not part of the step graph.
    wrappers: tuple = ()


def _arg(n: fx.Node, index: int, names: tuple[str, ...], default: Any = None) -> Any:
    if len(n.args) > index:
        return n.args[index]
    for name in names:
        if name in n.kwargs:
            return n.kwargs[name]
    return default


def _name(n: fx.Node) -> str:
    return n.target if n.op == "call_method" else getattr(n.target, "__name__", "")


def _ndim(values: dict, n: fx.Node) -> int | None:
    value = values.get(n)
    return value.dim() if isinstance(value, torch.Tensor) else None


def _normal(dim: Any, ndim: int | None) -> Any:
    if type(dim) is int and dim < 0 and ndim is not None:
        return dim + ndim
    return dim


def _unsqueezed(item: Any, values: dict) -> tuple[Any, Any] | None:
    """(the value, the dim a size-1 axis was inserted at) for `v.unsqueeze(d)`, `torch.unsqueeze(v, d)`, `v[None]`,
    `v[:, None]`; None for anything else."""
    if not isinstance(item, fx.Node) or item.op not in ("call_method", "call_function") or not item.args:
        return None
    ndim = _ndim(values, item)
    if item.target == "unsqueeze" or item.target is torch.unsqueeze:
        return item.args[0], _normal(_arg(item, 1, ("dim",)), ndim)
    if item.target is operator.getitem and len(item.args) == 2:
        index = item.args[1] if isinstance(item.args[1], tuple) else (item.args[1],)
        if index and index[-1] is None and all(i == slice(None) for i in index[:-1]) and len(index) <= 2:
            return item.args[0], len(index) - 1
    return None


def _stacked(n: fx.Node, values: dict) -> Record | None:
    ndim = _ndim(values, n)
    if n.target in _STACKS:
        items = _arg(n, 0, ("tensors",))
        if not isinstance(items, (list, tuple)):
            return None
        return Record(list(items), _normal(_arg(n, 1, ("dim", "axis"), 0), ndim), n)
    if n.target in _CATS or n.target in (torch.vstack, torch.row_stack, torch.hstack):
        items = _arg(n, 0, ("tensors",))
        if not isinstance(items, (list, tuple)) or not items:
            return None
        if n.target in _CATS:
            dim = _normal(_arg(n, 1, ("dim", "axis"), 0), ndim)
        else:
            dim = 1 if n.target is torch.hstack else 0
        inner = [_unsqueezed(i, values) for i in items]
        if any(u is None or u[1] != dim for u in inner):
            return None  # a plain torch.cat(rec) joins the steps along an existing dim: not a record of steps
        wrappers = tuple(i for i in items if all(u is n for u in i.users))
        return Record([u[0] for u in inner], dim, n, wrappers)
    return None


def swaps_time_and_batch(n: fx.Node, values: dict) -> fx.Node | None:
    """The tensor `n` transposes dims 0 and 1 of (and nothing else), or None: `x.transpose(0, 1)`,
    `x.swapaxes(1, 0)`, `x.transpose(-3, -2)` of a 3-D x, `dim0=`/`dim1=` by name, `x.permute(1, 0, 2)`,
    `x.permute(dims=(1, 0, 2))`, and the torch functions of the same names."""
    if n.op not in ("call_method", "call_function") or not n.args or not isinstance(n.args[0], fx.Node):
        return None
    name, ndim = _name(n), _ndim(values, n)
    if name in _SWAPS:
        dims = [_normal(_arg(n, 1, ("dim0", "axis0")), ndim), _normal(_arg(n, 2, ("dim1", "axis1")), ndim)]
        return n.args[0] if sorted(d for d in dims if type(d) is int) == [0, 1] else None
    if name == "permute" and ndim is not None:
        dims = n.args[1] if len(n.args) == 2 and isinstance(n.args[1], (tuple, list)) else n.args[1:]
        if not dims:
            dims = n.kwargs.get("dims", ())
        if [_normal(d, ndim) for d in dims] == [1, 0, *range(2, ndim)]:
            return n.args[0]
    return None


#: Tensor methods that leave a float32 tensor as it is (checked on the traced values); also read by talon.bridge._loops.
IDENTITY_METHODS = {"detach", "clone", "contiguous", "float", "to", "cpu", "type", "type_as"}
_IDENTITY_FUNCTIONS = {torch.detach, torch.clone}


def _unchanged(n: fx.Node, values: dict) -> fx.Node | None:
    """The tensor `n` copies without changing a value, dtype, device or shape (`rec.detach().cpu()`), or None."""
    if not n.args or not isinstance(n.args[0], fx.Node):
        return None
    if not ((n.op == "call_method" and n.target in IDENTITY_METHODS)
            or (n.op == "call_function" and n.target in _IDENTITY_FUNCTIONS)):
        return None
    after, before = values.get(n), values.get(n.args[0])
    if not (isinstance(after, torch.Tensor) and isinstance(before, torch.Tensor)):
        return None
    same = after.dtype == before.dtype and after.device == before.device and after.shape == before.shape
    return n.args[0] if same else None


def record_of(result: Any, values: dict) -> Record | None:
    """The record `result` is, in one of the forms above; None when it is none of them."""
    if not isinstance(result, fx.Node) or result.op not in ("call_function", "call_method"):
        return None
    copied = _unchanged(result, values)
    if copied is not None:  # torch.stack(rec).detach().cpu(): the record itself
        record = record_of(copied, values)
        return None if record is None else Record(record.items, record.dim, result, record.wrappers)
    inner = swaps_time_and_batch(result, values)
    if inner is not None:
        record = record_of(inner, values)
        if record is None or record.dim not in (0, 1):
            return None
        return Record(record.items, 1 - record.dim, result, record.wrappers)
    return _stacked(result, values)


def last_of(result: Any, values: dict, steps: int) -> Any:
    """The last step's item when `result` picks it out of a record (`torch.stack(rec)[-1]`,
    `torch.stack(rec, dim=1)[:, -1]`); None otherwise."""
    if not (isinstance(result, fx.Node) and result.target is operator.getitem and len(result.args) == 2):
        return None
    record = record_of(result.args[0], values)
    if record is None or record.dim not in (0, 1) or not record.items:
        return None
    index = result.args[1] if isinstance(result.args[1], tuple) else (result.args[1],)
    if record.dim == 1:
        if not index or index[0] != slice(None):
            return None
        index = index[1:]
    if not index or type(index[0]) is not int or index[0] not in (-1, steps - 1):
        return None
    if not all(i is Ellipsis or i == slice(None) for i in index[1:]):
        return None
    return record.items[-1]


def stacks(result: Any) -> bool:
    """`result` is a torch.stack call (checked further by the caller, which refuses a malformed one)."""
    return isinstance(result, fx.Node) and result.op == "call_function" and result.target in _STACKS
