"""Queries over a graph: inspect_node, trace_path, find_pattern and extract_subgraph."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from talon.errors import GraphValidationError, TalonUsageError
from talon.ir import Graph, Input, Output, list_primitives
from talon.sdk import _args
from talon.sdk._graph import Shape, Topology, infer_shapes
from talon.sdk._load import GraphLike, as_graph
from talon.sdk.cost import NodeCost, node_cost


@dataclass(frozen=True)
class ArrayInfo:
    shape: tuple[int, ...]
    dtype: str
    min: float
    max: float
    mean: float
    std: float
    nonzero: int
    nonfinite: int


@dataclass(frozen=True)
class NodeInfo:
    name: str
    type_name: str
    fields: dict[str, Any]
    arrays: dict[str, ArrayInfo]
    inputs: list[str]
    outputs: list[str]
    input_shapes: list[Shape] | None
    output_shapes: list[Shape] | None
    cost: NodeCost | None
    stateful: bool
    spiking: bool
    metadata: dict = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"{self.name}: {self.type_name}" + (" (stateful)" if self.stateful else "") + (" (spiking)" if self.spiking else "")]
        lines.append(f"  inputs  {self.inputs} shapes {self.input_shapes}")
        lines.append(f"  outputs {self.outputs} shapes {self.output_shapes}")
        for k, v in self.fields.items():
            lines.append(f"  {k} = {v!r}")
        for k, a in self.arrays.items():
            lines.append(f"  {k}: {a.dtype}{list(a.shape)} min {a.min:.4g} max {a.max:.4g} mean {a.mean:.4g} std {a.std:.4g}")
        if self.cost is not None:
            c = self.cost
            lines.append(f"  cost: {c.params:,} params, {c.macs:,} MACs, {c.flops:,} FLOPs, {c.neurons:,} neurons")
        return "\n".join(lines)


def inspect_node(graph: GraphLike, name: str) -> NodeInfo:
    """Everything about one node: scalar fields, array statistics, neighbours, shapes and cost.

    Shapes and cost are None when the graph's shapes cannot be inferred.
    """
    g = as_graph(graph)
    node = _node(g, name)
    fields, arrays = {}, {}
    for fname, value in node.field_values().items():
        if fname == "metadata":
            continue
        if isinstance(value, np.ndarray):
            arrays[fname] = _array_info(value)
        else:
            fields[fname] = value
    ins: list[Shape] | None
    outs: list[Shape] | None
    cost: NodeCost | None
    try:
        ins, outs = infer_shapes(g)[name]
        cost = node_cost(node, ins, outs)
    except GraphValidationError:
        ins = outs = None
        cost = None
    return NodeInfo(
        name=name,
        type_name=node.type_name,
        fields=fields,
        arrays=arrays,
        inputs=[s for s, d in g.edges if d == name],
        outputs=[d for s, d in g.edges if s == name],
        input_shapes=ins,
        output_shapes=outs,
        cost=cost,
        stateful=bool(node.stateful),
        spiking=bool(node.spiking),
        metadata=dict(node.metadata or {}),
    )


def _array_info(a: np.ndarray) -> ArrayInfo:
    f = a.astype(np.float64)
    finite = f[np.isfinite(f)]
    stat = (lambda fn: float(fn(finite)) if finite.size else float("nan"))  # noqa: E731
    return ArrayInfo(
        shape=tuple(a.shape),
        dtype=str(a.dtype),
        min=stat(np.min),
        max=stat(np.max),
        mean=stat(np.mean),
        std=stat(np.std),
        nonzero=int(np.count_nonzero(a)),
        nonfinite=int(a.size - finite.size),
    )


def _node(g: Graph, name: str):
    try:
        return g.nodes[name]
    except KeyError:
        raise TalonUsageError(f"no node named {name!r} (nodes: {list(g.nodes)[:20]})") from None


def trace_path(graph: GraphLike, source: str, target: str) -> list[str]:
    """A shortest path of nodes from `source` to `target` following edges (ties: earlier edges first).

    [source] when they are the same node; [] when `target` cannot be reached from `source`.
    """
    g = as_graph(graph)
    _node(g, source), _node(g, target)
    topo = Topology.of(g, with_delays=False)
    parent: dict[str, str | None] = {source: None}
    queue = deque([source])
    while queue:
        n = queue.popleft()
        if n == target:
            path = []
            cur: str | None = n
            while cur is not None:
                path.append(cur)
                cur = parent[cur]
            return path[::-1]
        for m in topo.succs[n]:
            if m not in parent:
                parent[m] = n
                queue.append(m)
    return []


def find_pattern(graph: GraphLike, pattern: str) -> list[tuple[str, ...]]:
    """Chains of nodes whose types match `pattern`, each joined to the next by an edge.

    Pattern syntax: type names joined by "->", e.g. "Conv2d->LIF"; "A|B" matches either type; "*" any
    type. Unknown type names raise TalonUsageError (a typo would otherwise match nothing). Matches
    come in graph order of their first node, then edge order.
    """
    g = as_graph(graph)
    steps = _parse_pattern(pattern)
    topo = Topology.of(g, with_delays=False)
    found: list[tuple[str, ...]] = []

    def extend(chain: list[str]) -> None:
        if len(chain) == len(steps):
            found.append(tuple(chain))
            return
        allowed = steps[len(chain)]
        seen = set()
        for nxt in topo.succs[chain[-1]]:
            if nxt not in seen and (allowed is None or g.nodes[nxt].type_name in allowed):
                seen.add(nxt)
                extend(chain + [nxt])

    for name, node in g.nodes.items():
        if steps[0] is None or node.type_name in steps[0]:
            extend([name])
    return found


def _type_hint(name: str, known: set[str]) -> str | None:
    """The IR type a pattern step spelled in another case most likely means ('conv2d' -> 'Conv2d')."""
    return next((k for k in sorted(known) if k.lower() == name.lower()), None)


def _parse_pattern(pattern: str) -> list[frozenset[str] | None]:
    parts = [p.strip() for p in re.split(r"->", pattern)]
    if not pattern.strip() or any(not p for p in parts):
        raise TalonUsageError(f"find_pattern: malformed pattern {pattern!r}; write e.g. 'Conv2d->LIF' or 'Affine|Linear->*'")
    known = set(list_primitives())
    steps = [None if p == "*" else frozenset(x.strip() for x in p.split("|")) for p in parts]
    unknown = sorted({n for names in steps if names for n in names if n not in known})
    if unknown:
        hints = [f"{n!r} -> {_type_hint(n, known)!r}" for n in unknown if _type_hint(n, known)]
        hint = f" (IR type names: {', '.join(hints)})" if hints else ""
        hint += ("; these are IR type names, which 'talon primitives' lists (snnTorch's and PyTorch's classes "
                 "export to them: docs/bridge.md)")
        raise TalonUsageError(f"find_pattern: unknown node type(s) {unknown} in {pattern!r}{hint}")
    return steps


def extract_subgraph(
    graph: GraphLike,
    nodes: Iterable[str] | None = None,
    *,
    start: str | None = None,
    end: str | None = None,
    add_io: bool = True,
) -> Graph:
    """A standalone copy of part of a graph: the given `nodes`, or every node on a path from `start` to
    `end` (both included).

    With add_io, every value entering the part from outside becomes an Input node named
    "<producer>_input" (shape from shape inference; an original Input keeps its name) and every value leaving it (or a node with no
    consumers) feeds an Output node named "<node>_output", so the result validates on its own.
    """
    g = as_graph(graph)
    if nodes is not None:
        if start is not None or end is not None:
            raise TalonUsageError("extract_subgraph: give either nodes or start/end, not both")
        keep = list(dict.fromkeys(_args.names(nodes, "extract_subgraph: nodes")))
        for n in keep:
            _node(g, n)
    else:
        if start is None or end is None:
            raise TalonUsageError("extract_subgraph: give nodes, or both start and end")
        _node(g, start), _node(g, end)
        topo = Topology.of(g, with_delays=False)
        between = topo.reachable([start]) & topo.reachable([end], forward=False)
        if not between:
            raise TalonUsageError(f"extract_subgraph: no path from {start!r} to {end!r}")
        keep = [n for n in g.nodes if n in between]
    keep_set = set(keep)
    sub = g.subgraph(keep)
    if not add_io:
        return sub
    out_idx = g.edge_output_index()
    inputs: dict[tuple[str, int], str] = {}
    edges: list[tuple[str, str]] = []
    taken = set(g.nodes)

    def fresh(base: str) -> str:
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}{k}"
        taken.add(name)
        return name

    # edges keep their original positions, so input order (and a multi-output node's output order) holds
    outputs: dict[tuple[str, int], str] = {}
    for i, (s, d) in enumerate(g.edges):
        if d in keep_set and s not in keep_set:
            key = (s, out_idx[i])
            if key not in inputs:
                if g.nodes[s].type_name == "Input":  # an original graph input keeps its name
                    inputs[key] = s
                else:
                    inputs[key] = fresh(f"{s}_input" if out_idx[i] == 0 else f"{s}_{out_idx[i]}_input")
            edges.append((inputs[key], d))
        elif s in keep_set and d in keep_set:
            edges.append((s, d))
        elif s in keep_set:
            key = (s, out_idx[i])
            if key not in outputs:
                outputs[key] = fresh(f"{s}_output" if out_idx[i] == 0 else f"{s}_{out_idx[i]}_output")
                edges.append((s, outputs[key]))
    has_out = {s for s, _ in g.edges}
    for n in keep:
        if n not in has_out and g.nodes[n].type_name != "Output":
            outputs[(n, 0)] = fresh(f"{n}_output")
            edges.append((n, outputs[(n, 0)]))
    shapes = infer_shapes(g) if inputs else {}
    new_nodes: dict[str, Any] = {}
    for (s, k), name in inputs.items():
        new_nodes[name] = Input(shape=shapes[s][1][k])
    new_nodes.update(sub.nodes)
    for name in outputs.values():
        new_nodes[name] = Output()
    return Graph(new_nodes, edges, dt=sub.dt, metadata=sub.metadata, extras=sub.extras)
