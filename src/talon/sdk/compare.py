"""compare_graphs / assert_graphs_equal: what differs between two graphs, node by node and field by field.

"identical" means the same as equal fingerprints when tolerance is 0: same nodes (by name), types, field
values, edges (with each node's input order and each multi-output node's output order) and dt. Node
insertion order and metadata are reported but do not make graphs different. With tolerance > 0, arrays
of equal dtype and shape whose elements differ by at most `tolerance` count as equal.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from talon.errors import TalonUsageError
from talon.ir import Graph, Node
from talon.ir.node import values_equal
from talon.sdk._load import GraphLike, as_graph
from talon.sdk.fingerprint import EXCLUDED_FIELDS

Edge = tuple[str, str]


@dataclass(frozen=True)
class FieldDiff:
    """One field that differs: kind is "type", "value", "dtype", "shape", "values" (array contents) or "graph"."""

    field: str
    kind: str
    detail: str
    max_abs_diff: float | None = None


@dataclass(frozen=True)
class NodeDiff:
    name: str
    type_a: str
    type_b: str
    diffs: list[FieldDiff]

    @property
    def fields(self) -> list[str]:
        return [d.field for d in self.diffs]


@dataclass(frozen=True)
class GraphDiff:
    identical: bool
    nodes_added: list[str]
    nodes_removed: list[str]
    nodes_modified: dict[str, NodeDiff]
    edges_added: list[Edge]
    edges_removed: list[Edge]
    edge_order_changed: bool
    dt: tuple[float, float] | None
    max_weight_diff: float
    tolerance: float
    node_order_changed: bool = False
    metadata_changed: bool = False
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.identical:
            extra = [n for n, flag in (("node order", self.node_order_changed), ("metadata", self.metadata_changed)) if flag]
            tail = f" (differing only in {' and '.join(extra)})" if extra else ""
            return f"graphs are identical within tolerance {self.tolerance:g}; max weight difference {self.max_weight_diff:.3g}{tail}"
        lines = ["graphs differ:"]
        if self.dt:
            lines.append(f"  dt: {self.dt[0]:g} -> {self.dt[1]:g}")
        lines += [f"  + node {n}" for n in self.nodes_added]
        lines += [f"  - node {n}" for n in self.nodes_removed]
        for nd in self.nodes_modified.values():
            head = f"  ~ node {nd.name} ({nd.type_a}" + (f" -> {nd.type_b})" if nd.type_b != nd.type_a else ")")
            lines.append(head)
            lines += [f"      {d.field}: {d.detail}" for d in nd.diffs]
        lines += [f"  + edge {s} -> {d}" for s, d in self.edges_added]
        lines += [f"  - edge {s} -> {d}" for s, d in self.edges_removed]
        if self.edge_order_changed:
            lines.append("  the order of some node's inputs (or a multi-output node's outputs) changed")
        lines.append(f"  max weight difference {self.max_weight_diff:.3g} (tolerance {self.tolerance:g})")
        return "\n".join(lines)

    __str__ = summary


def compare_graphs(a: GraphLike, b: GraphLike, tolerance: float = 0.0) -> GraphDiff:
    """Differences from `a` to `b` (Graphs or .t1c paths): added/removed/modified nodes, edges, dt."""
    ga, gb = as_graph(a), as_graph(b)
    if not tolerance >= 0:
        raise TalonUsageError(f"compare_graphs: tolerance must be >= 0, got {tolerance}")
    added = [n for n in gb.nodes if n not in ga.nodes]
    removed = [n for n in ga.nodes if n not in gb.nodes]
    modified: dict[str, NodeDiff] = {}
    max_diff = 0.0
    for name, na in ga.nodes.items():
        nb = gb.nodes.get(name)
        if nb is None:
            continue
        diffs, md = _node_diffs(na, nb, tolerance)
        max_diff = max(max_diff, md)
        if diffs:
            modified[name] = NodeDiff(name, na.type_name, nb.type_name, diffs)
    pairs_a, pairs_b = Counter(ga.edges), Counter(gb.edges)
    edges_added = list((pairs_b - pairs_a).elements())
    edges_removed = list((pairs_a - pairs_b).elements())
    order_changed = not edges_added and not edges_removed and _edge_keys(ga) != _edge_keys(gb)
    dt = None if ga.dt == gb.dt else (ga.dt, gb.dt)
    common = [n for n in ga.nodes if n in gb.nodes]
    node_order_changed = common != [n for n in gb.nodes if n in ga.nodes]
    identical = not (added or removed or modified or edges_added or edges_removed or order_changed or dt)
    return GraphDiff(
        identical=identical,
        nodes_added=added,
        nodes_removed=removed,
        nodes_modified=modified,
        edges_added=edges_added,
        edges_removed=edges_removed,
        edge_order_changed=order_changed,
        dt=dt,
        max_weight_diff=max_diff,
        tolerance=float(tolerance),
        node_order_changed=node_order_changed,
        metadata_changed=not values_equal(ga.metadata, gb.metadata),
    )


def assert_graphs_equal(a: GraphLike, b: GraphLike, tolerance: float = 0.0) -> None:
    """Raise AssertionError (with the diff) unless compare_graphs(a, b, tolerance).identical."""
    diff = compare_graphs(a, b, tolerance)
    if not diff.identical:
        raise AssertionError(diff.summary())


def _edge_keys(g: Graph) -> list[tuple[str, int, str, int]]:
    seen: dict[str, int] = {}
    keys = []
    for (s, d), k in zip(g.edges, g.edge_output_index()):
        j = seen.get(d, 0)
        seen[d] = j + 1
        keys.append((s, k, d, j))
    return sorted(keys)


def _node_diffs(na: Node, nb: Node, tol: float) -> tuple[list[FieldDiff], float]:
    if type(na) is not type(nb) or na.type_name != nb.type_name:
        return [FieldDiff("<type>", "type", f"{na.type_name} -> {nb.type_name}")], 0.0
    if isinstance(na, Graph):
        inner = compare_graphs(na, nb, tol)
        if inner.identical:
            return [], inner.max_weight_diff
        return [FieldDiff("<graph>", "graph", inner.summary().replace("\n", "\n      "))], inner.max_weight_diff
    diffs: list[FieldDiff] = []
    max_diff = 0.0
    for name in na.field_specs():
        if name in EXCLUDED_FIELDS:
            continue
        va, vb = getattr(na, name), getattr(nb, name)
        if isinstance(va, np.ndarray) and isinstance(vb, np.ndarray):
            d = _array_diff(name, va, vb, tol)
            if d is not None:
                if d.max_abs_diff is not None:
                    max_diff = max(max_diff, d.max_abs_diff)
                if d.kind:
                    diffs.append(d)
        elif not values_equal(va, vb):
            diffs.append(FieldDiff(name, "value", f"{_short(va)} -> {_short(vb)}"))
    return diffs, max_diff


def _array_diff(name: str, a: np.ndarray, b: np.ndarray, tol: float) -> FieldDiff | None:
    """A FieldDiff (kind "" when equal within tolerance but with a measurable difference), or None."""
    if a.shape != b.shape:
        return FieldDiff(name, "shape", f"{a.shape} -> {b.shape}")
    if values_equal(a, b):
        return None
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore"):
        delta = np.abs(a64 - b64)
    same_nan = np.isnan(a64) & np.isnan(b64)
    delta = np.where(same_nan | (a64 == b64), 0.0, np.nan_to_num(delta, nan=np.inf))
    md = float(delta.max()) if delta.size else 0.0
    if a.dtype != b.dtype:
        return FieldDiff(name, "dtype", f"{a.dtype} -> {b.dtype} (max |diff| {md:.3g})", md)
    if md > tol:
        n = int(np.count_nonzero(delta > tol))
        return FieldDiff(name, "values", f"{n} of {a.size} elements differ, max |diff| {md:.3g}", md)
    if tol == 0:  # equal values, unequal bits (0.0 vs -0.0): the fingerprints differ, so do we
        return FieldDiff(name, "values", "bitwise difference only (e.g. 0.0 vs -0.0)", md)
    return FieldDiff(name, "", "", md)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."
