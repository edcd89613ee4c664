"""compare_graphs / assert_graphs_equal: what differs between two graphs, node by node and field by field.

"identical" means the same as equal fingerprints when tolerance is 0: same nodes (by name), types, field
values, edges (with each node's input order and each multi-output node's output order) and dt. Node
insertion order and metadata are reported but do not make graphs different. With tolerance > 0, arrays
of equal dtype and shape whose elements differ by at most `tolerance` count as equal.

Arrays are compared wherever a node of the same name exists in both graphs and a field of the same name
holds an array of the same shape on both sides, even when the node's type changed (Affine ->
SpikingAffine keeps `weight` and `bias`). The diff counts the arrays it compared and names those it could
not; `max_weight_diff` is None when no array was compared, never a 0 that was not measured.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from talon.ir import Graph, Node
from talon.ir.node import values_equal
from talon.sdk._args import real
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
    max_weight_diff: float | None
    tolerance: float
    node_order_changed: bool = False
    metadata_changed: bool = False
    notes: list[str] = field(default_factory=list)
    arrays_compared: int = 0
    arrays_not_compared: list[str] = field(default_factory=list)

    def _arrays_line(self, with_tolerance: bool = True) -> str:
        """What max_weight_diff was measured over; never a bare 0 for arrays that were not compared."""
        if self.arrays_compared and self.max_weight_diff is not None:
            text = (f"max weight difference {self.max_weight_diff:.3g} over {self.arrays_compared} compared "
                    f"array{'s' if self.arrays_compared != 1 else ''}")
            if with_tolerance:
                text += f" (tolerance {self.tolerance:g})"
        else:
            text = "no arrays compared (no array field of the same name and shape in a node present in both graphs)"
        if self.arrays_not_compared:
            text += "; not compared: " + ", ".join(self.arrays_not_compared)
        return text

    def summary(self) -> str:
        if self.identical:
            extra = [n for n, flag in (("node order", self.node_order_changed), ("metadata", self.metadata_changed)) if flag]
            tail = f" (differing only in {' and '.join(extra)})" if extra else ""
            return f"graphs are identical within tolerance {self.tolerance:g}; {self._arrays_line(False)}{tail}"
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
        lines.append(f"  {self._arrays_line()}")
        return "\n".join(lines)

    __str__ = summary


def compare_graphs(a: GraphLike, b: GraphLike, tolerance: float = 0.0) -> GraphDiff:
    """Differences from `a` to `b` (Graphs or .t1c paths): added/removed/modified nodes, edges, dt."""
    ga, gb = as_graph(a), as_graph(b)
    tolerance = real(tolerance, "compare_graphs: tolerance")
    added = [n for n in gb.nodes if n not in ga.nodes]
    removed = [n for n in ga.nodes if n not in gb.nodes]
    modified: dict[str, NodeDiff] = {}
    tally = _Tally()
    for name, na in ga.nodes.items():
        nb = gb.nodes.get(name)
        if nb is None:
            continue
        diffs = _node_diffs(name, na, nb, tolerance, tally)
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
        max_weight_diff=tally.max_diff if tally.compared else None,
        tolerance=float(tolerance),
        node_order_changed=node_order_changed,
        metadata_changed=not values_equal(ga.metadata, gb.metadata),
        arrays_compared=tally.compared,
        arrays_not_compared=tally.not_compared,
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


@dataclass
class _Tally:
    """Arrays compared so far, the largest difference among them, and the arrays that could not be compared."""

    compared: int = 0
    max_diff: float = 0.0
    not_compared: list[str] = field(default_factory=list)


def _node_diffs(node: str, na: Node, nb: Node, tol: float, tally: _Tally) -> list[FieldDiff]:
    a_graph, b_graph = isinstance(na, Graph), isinstance(nb, Graph)
    type_changed = type(na) is not type(nb) or na.type_name != nb.type_name
    if a_graph or b_graph:
        if type_changed:
            for side, n in (("A", na), ("B", nb)):
                if not isinstance(n, Graph):
                    tally.not_compared += [f"{node}.{f} (only in {side}: {na.type_name} -> {nb.type_name})"
                                           for f in _array_fields(n)]
            return [FieldDiff("<type>", "type", f"{na.type_name} -> {nb.type_name} (a subgraph on one side only: nothing compared)")]
        inner = compare_graphs(na, nb, tol)
        tally.compared += inner.arrays_compared
        if inner.max_weight_diff is not None:
            tally.max_diff = max(tally.max_diff, inner.max_weight_diff)
        tally.not_compared += [f"{node}/{x}" for x in inner.arrays_not_compared]
        if inner.identical:
            return []
        return [FieldDiff("<graph>", "graph", inner.summary().replace("\n", "\n      "))]
    specs_a, specs_b = na.field_specs(), nb.field_specs()
    shared = [f for f in specs_a if f in specs_b and f not in EXCLUDED_FIELDS]
    diffs: list[FieldDiff] = []
    compared: list[str] = []
    for name in shared:
        va, vb = getattr(na, name), getattr(nb, name)
        a_arr, b_arr = isinstance(va, np.ndarray), isinstance(vb, np.ndarray)
        if a_arr and b_arr:
            if va.shape != vb.shape:
                tally.not_compared.append(f"{node}.{name} (shape {va.shape} -> {vb.shape})")
                diffs.append(FieldDiff(name, "shape", f"{va.shape} -> {vb.shape}"))
                continue
            compared.append(name)
            d = _array_diff(name, va, vb, tol)
            tally.compared += 1
            if d is not None:
                if d.max_abs_diff is not None:
                    tally.max_diff = max(tally.max_diff, d.max_abs_diff)
                if d.kind:
                    diffs.append(d)
            continue
        if a_arr or b_arr:
            tally.not_compared.append(f"{node}.{name} (an array on one side only)")
        if not values_equal(va, vb):
            diffs.append(FieldDiff(name, "value", f"{_short(va)} -> {_short(vb)}"))
    if not type_changed:
        return diffs
    only_a = [f for f in specs_a if f not in specs_b and f not in EXCLUDED_FIELDS and getattr(na, f) is not None]
    only_b = [f for f in specs_b if f not in specs_a and f not in EXCLUDED_FIELDS and getattr(nb, f) is not None]
    tally.not_compared += [f"{node}.{f} (only in {na.type_name})" for f in only_a if isinstance(getattr(na, f), np.ndarray)]
    tally.not_compared += [f"{node}.{f} (only in {nb.type_name})" for f in only_b if isinstance(getattr(nb, f), np.ndarray)]
    parts = [f"{na.type_name} -> {nb.type_name}"]
    parts.append(f"shared arrays compared: {', '.join(compared)}" if compared else "no shared array compared")
    if only_a:
        parts.append(f"only in {na.type_name}: {', '.join(only_a)}")
    if only_b:
        parts.append(f"only in {nb.type_name}: {', '.join(only_b)}")
    return [FieldDiff("<type>", "type", "; ".join(parts))] + diffs


def _array_fields(n: Node) -> list[str]:
    return [f for f in n.field_specs() if f not in EXCLUDED_FIELDS and isinstance(getattr(n, f), np.ndarray)]


def _array_diff(name: str, a: np.ndarray, b: np.ndarray, tol: float) -> FieldDiff | None:
    """A FieldDiff (kind "" when equal within tolerance but with a measurable difference), or None; shapes are equal."""
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
