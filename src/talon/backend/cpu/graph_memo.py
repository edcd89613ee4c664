"""What the simulator derives from a graph alone, kept per graph while the graph's content is unchanged.

`simulate` needs the cost table and the layers fed by spikes on every call; computing them again (every
node's cost rule, every array scanned for its stored size) was a few percent of a short run. `derived`
returns a dict of such values for the graph as it is now: the same dict while the content key below is
the one it was filled for, a fresh empty one after any change.

The content key covers everything these values are computed from:
* the structure and every node's fields (`Graph._shape_key`: the edges, the node names in order, each
  node's type and every field but its dicts, arrays by dtype and shape and small arrays by value,
  nested graphs recursively);
* the bytes of every larger array (xxh3-128), so a weight changed in place is a new key: numpy arrays
  carry no version counter, and reading them once is far cheaper than the cost table's own scans;
* the cost entries and node classes registered for the node types (a rule replaced with
  `register_cost(..., replace=True)` is a new key).
Dict fields (free-form metadata and hints) are not part of it: cost rules, like shape rules, read a
node's other fields. A graph holding an object array has no key and is never memoised.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterator

import numpy as np
import xxhash

from talon.ir import Graph, get_node_class
from talon.ir.node import ARRAY
from talon.sdk.cost import registered_cost

#: (node class, field kind) -> the names of its fields of that kind
_FIELDS: dict[tuple[type, Any], tuple[str, ...]] = {}
#: id(graph) -> (weak reference to the graph, content key, derived values)
_MEMO: dict[int, tuple[weakref.ref, tuple, dict]] = {}


def derived(graph: Graph) -> dict[str, Any]:
    """The values derived from `graph`'s current content (fill it with `setdefault`-style lookups;
    never mutate a value taken from it)."""
    key = content_key(graph)
    if key is None:
        return {}
    gid = id(graph)
    hit = _MEMO.get(gid)
    if hit is not None and hit[0]() is graph and hit[1] == key:
        return hit[2]
    values: dict[str, Any] = {}
    _MEMO[gid] = (weakref.ref(graph, lambda ref, gid=gid: _forget(gid, ref)), key, values)
    return values


def _forget(gid: int, ref: weakref.ref) -> None:
    hit = _MEMO.get(gid)
    if hit is not None and hit[0] is ref:
        del _MEMO[gid]


def content_key(graph: Graph) -> tuple | None:
    """A key equal for two states of `graph` only when everything the derived values read is equal (see
    the module docstring); None when an array cannot be digested (not a numpy array, or object dtype)."""
    digests: list[int] = []
    types: dict[str, None] = {}
    for node in _nodes(graph):
        types[node.type_name] = None
        for name in fields_of_kind(type(node), ARRAY):
            arr = getattr(node, name)
            if arr is None:
                continue
            if not isinstance(arr, np.ndarray) or arr.dtype.hasobject:
                return None
            digests.append(xxhash.xxh3_128_intdigest(np.ascontiguousarray(arr).reshape(-1).view(np.uint8)))
    registry = tuple((t, registered_cost(t), get_node_class(t)) for t in types)
    # the graph's own structure-and-fields key (the one its shape cache uses)
    return (graph._shape_key(), tuple(digests), registry)


def fields_of_kind(cls: type, kind: Any) -> tuple[str, ...]:
    """The names of the fields of node class `cls` of `kind` (ARRAY, DICT, ...), looked up once per class."""
    fields = _FIELDS.get((cls, kind))
    if fields is None:
        fields = _FIELDS[(cls, kind)] = tuple(n for n, spec in cls.field_specs().items() if spec.kind == kind)
    return fields


def _nodes(graph: Graph) -> Iterator[Any]:
    for node in graph.nodes.values():
        if isinstance(node, Graph):
            yield from _nodes(node)
        yield node
