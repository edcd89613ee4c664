"""Read-only graph helpers for the sdk passes: adjacency, schedule, reachability and inferred shapes.

The IR's `Graph.predecessors()` scans every edge per call; passes over large graphs use the maps built
here once. Shapes are inferred on a shallow copy so that analysing a graph never writes to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from talon.ir import Graph, Node

Shape = tuple[int, ...]


@dataclass
class Topology:
    """Adjacency of a graph, built once. Edge lists keep edge order; `delayed` holds recurrent edge ids."""

    names: list[str]
    preds: dict[str, list[str]] = field(default_factory=dict)
    succs: dict[str, list[str]] = field(default_factory=dict)
    in_edge_ids: dict[str, list[int]] = field(default_factory=dict)
    delayed: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, graph: Graph, *, with_delays: bool = True) -> "Topology":
        t = cls(list(graph.nodes))
        t.preds = {n: [] for n in graph.nodes}
        t.succs = {n: [] for n in graph.nodes}
        t.in_edge_ids = {n: [] for n in graph.nodes}
        for i, (s, d) in enumerate(graph.edges):
            if s in t.succs and d in t.preds:
                t.succs[s].append(d)
                t.preds[d].append(s)
                t.in_edge_ids[d].append(i)
        if with_delays:
            t.delayed = set(graph.delayed_edges())
        return t

    def reachable(self, starts: list[str], *, forward: bool = True) -> set[str]:
        adj = self.succs if forward else self.preds
        seen = set(starts)
        stack = list(starts)
        while stack:
            for m in adj[stack.pop()]:
                if m not in seen:
                    seen.add(m)
                    stack.append(m)
        return seen


def shallow_copy(graph: Graph) -> Graph:
    """A Graph with copies of the node objects (arrays shared), so shape inference can write to them."""
    nodes: dict[str, Node] = {}
    for name, node in graph.nodes.items():
        nodes[name] = shallow_copy(node) if isinstance(node, Graph) else _copy_node(node)
    return Graph(nodes, graph.edges, dt=graph.dt)


def _copy_node(node: Node) -> Node:
    new = object.__new__(type(node))
    new.__dict__.update(node.__dict__)
    return new


def infer_shapes(graph: Graph) -> dict[str, tuple[list[Shape], list[Shape]]]:
    """{name: (input shapes, output shapes)} without touching `graph` (cached on it until it changes).
    Raises GraphValidationError."""
    return graph.shape_table()


def numel(shape: Shape) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out
