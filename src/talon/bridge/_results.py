"""What forward returns: a namedtuple of results (`return Out(spk_rec, mem_rec)`) reads as the tuple it is.

torch.fx records the construction of a namedtuple as a call of its class; when only the graph's output reads it,
the export and the time-loop analysis unpack it like a plain tuple, whose first item is the graph's output.
"""

from __future__ import annotations

import torch.fx as fx

__all__ = ["is_namedtuple_of_result", "namedtuple_items"]


def is_namedtuple_of_result(n: object) -> bool:
    return (isinstance(n, fx.Node) and n.op == "call_function" and isinstance(n.target, type)
            and issubclass(n.target, tuple) and hasattr(n.target, "_fields") and all(u.op == "output" for u in n.users))


def namedtuple_items(n: fx.Node) -> tuple:
    """The fields of the returned namedtuple in order, passed positionally or by name."""
    fields = n.target._fields
    return tuple(n.args) + tuple(n.kwargs[f] for f in fields[len(n.args):] if f in n.kwargs)
