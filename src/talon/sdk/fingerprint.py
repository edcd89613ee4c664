"""fingerprint_graph: a canonical SHA-256 of what a graph computes (checked against a stamp by stamp.verify_fingerprint).

The hash covers, in this order (format "talon-fingerprint/1"; docs/sdk.md has the byte layout):

1. the tag "talon-fingerprint/1" and whether weights are included;
2. dt, as a little-endian float64;
3. every node, sorted by name: name, type name, then every field (sorted by field name, the per-node
   `metadata` field excluded) as a typed value. Arrays contribute dtype (little-endian form), shape and,
   when weights are included, their C-order little-endian bytes. A nested Graph contributes its own
   canonical form (2-4) recursively;
4. every edge as (source, which output of the source, destination, which input of the destination),
   sorted.

So the hash does not depend on node insertion order or on how the edge list interleaves (only the order
of each node's inputs and of a multi-output node's outputs matters, and that is kept), nor on graph or
node metadata (stamps live there: stamping does not change the fingerprint), nor on `extras` or inferred
shapes. It changes with any field, weight bit, dtype, shape, name, type, edge or dt.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import numpy as np

from talon.errors import TalonError
from talon.ir import Graph, Node
from talon.sdk._load import GraphLike, as_graph

FORMAT_TAG = b"talon-fingerprint/1"
EXCLUDED_FIELDS = frozenset({"metadata"})


def fingerprint_graph(graph: GraphLike, include_weights: bool = True) -> str:
    """SHA-256 hex digest (64 characters) of the canonical form of `graph` (a Graph or a .t1c path).

    With include_weights=False the contents of every array (weights, biases, neuron constants) are left
    out but their dtype and shape are kept: a structure-only fingerprint.
    """
    g = as_graph(graph)
    h = hashlib.sha256()
    h.update(FORMAT_TAG)
    h.update(b"\x01" if include_weights else b"\x00")
    _graph(h, g, include_weights)
    return h.hexdigest()


def _graph(h: Any, g: Graph, weights: bool) -> None:
    h.update(b"G")
    h.update(struct.pack("<d", float(g.dt)))
    h.update(struct.pack("<Q", len(g.nodes)))
    for name in sorted(g.nodes):
        _str(h, name)
        _node(h, g.nodes[name], weights)
    out_idx = g.edge_output_index()
    in_count: dict[str, int] = {}
    edges = []
    for (s, d), k in zip(g.edges, out_idx):
        j = in_count.get(d, 0)
        in_count[d] = j + 1
        edges.append((s, k, d, j))
    edges.sort()
    h.update(struct.pack("<Q", len(edges)))
    for s, k, d, j in edges:
        _str(h, s)
        h.update(struct.pack("<q", k))
        _str(h, d)
        h.update(struct.pack("<q", j))


def _node(h: Any, node: Node, weights: bool) -> None:
    _str(h, node.type_name)
    if isinstance(node, Graph):
        _graph(h, node, weights)
        return
    names = sorted(n for n in node.field_specs() if n not in EXCLUDED_FIELDS)
    h.update(struct.pack("<Q", len(names)))
    for name in names:
        _str(h, name)
        _value(h, getattr(node, name), weights)


def _str(h: Any, s: str) -> None:
    b = s.encode("utf-8")
    h.update(struct.pack("<Q", len(b)))
    h.update(b)


def _value(h: Any, v: Any, weights: bool) -> None:
    """Typed encoding: a one-byte tag, then the value. numpy scalars count as their Python types so that a
    value read back from a file hashes like the one written."""
    if v is None:
        h.update(b"N")
    elif isinstance(v, (bool, np.bool_)):
        h.update(b"B1" if v else b"B0")
    elif isinstance(v, (int, np.integer)):
        _str(h, "I" + str(int(v)))
    elif isinstance(v, (float, np.floating)):
        h.update(b"F" + struct.pack("<d", float(v)))
    elif isinstance(v, (str, bytes)):
        h.update(b"S")
        _str(h, v.decode("utf-8") if isinstance(v, bytes) else v)
    elif isinstance(v, np.ndarray):
        _array(h, v, weights)
    elif isinstance(v, (tuple, list)):
        h.update(b"T")
        h.update(struct.pack("<Q", len(v)))
        for x in v:
            _value(h, x, weights)
    elif isinstance(v, dict):
        h.update(b"D")
        h.update(struct.pack("<Q", len(v)))
        for k in sorted(v, key=str):
            _str(h, str(k))
            _value(h, v[k], weights)
    else:
        raise TalonError(f"fingerprint: cannot hash a field value of type {type(v).__name__}")


def _array(h: Any, a: np.ndarray, weights: bool) -> None:
    dt = a.dtype.newbyteorder("<")  # single-byte dtypes keep their "|" order
    h.update(b"A")
    _str(h, dt.str)
    h.update(struct.pack("<Q", a.ndim))
    for d in a.shape:
        h.update(struct.pack("<Q", d))
    if weights:
        h.update(np.ascontiguousarray(a, dtype=dt).tobytes())
