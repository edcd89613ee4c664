"""The Graph: ordered nodes and edges, structural checks, topological order, cycles and shape inference.

A Graph is itself a Node (type "Graph"), so composite blocks nest. Edges are (src, dst) pairs; their order
matters: a node with several inputs receives them in edge order, and a node with several outputs
(ChannelSplit, a nested graph with several Output nodes) sends its k-th output along its k-th outgoing
edge. Cycles are legal only through a stateful node: the edges leaving a stateful node inside a cycle
carry that node's output from the previous timestep ("delayed" edges), which is what breaks the cycle.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import math
import operator
from typing import Any, Iterable, Iterator

import numpy as np

from talon.errors import GraphValidationError, PrimitiveError
from talon.ir.node import DICT, Node, Shape, register_node, values_equal

Edge = tuple[str, str]


def check_name(name: Any) -> None:
    """Names become HDF5 group names and CLI arguments: non-empty text without '/', NUL or dot-only."""
    if not isinstance(name, str) or not name:
        raise GraphValidationError(f"node name must be a non-empty string, got {name!r}")
    if "/" in name or "\x00" in name or name in (".", ".."):
        raise GraphValidationError(f"node name {name!r} is not allowed: it may not contain '/' or NUL, or be '.' or '..'")


def back_edges(successors: dict[str, list[str]], roots: Iterable[str]) -> set[Edge]:
    """The edges that close a cycle in an iterative depth-first walk started from each unvisited root in
    turn, successors taken in the order given: set them aside and the rest is acyclic.

    Which edge of a cycle counts as its "back" edge depends on the walk, so callers choose the roots
    (Input nodes first, so a recurrent loop is cut where it returns) and the successor order.
    """
    state: dict[str, int] = {}  # 1 on the DFS stack, 2 done
    back: set[Edge] = set()
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(successors[root]))]
        while stack:
            v, it = stack[-1]
            for w in it:
                if state.get(w) == 1:
                    back.add((v, w))
                elif w not in state:
                    state[w] = 1
                    stack.append((w, iter(successors[w])))
                    break
            else:
                state[v] = 2
                stack.pop()
    return back


_VERSIONS = itertools.count(1)


class _EdgeList(list):
    """The edge list of a Graph: a plain list that counts its changes, so the Graph can keep an index
    of its edges (predecessors, successors, in-edge ids) and rebuild it only after a change, instead of
    scanning every edge for every query (quadratic on large graphs)."""

    def _bump(self) -> None:
        self._version = next(_VERSIONS)

    def __reduce__(self):  # copies and pickles carry the edges, not the caches kept on the list
        return (_EdgeList, (list(self),))

    @property
    def version(self) -> int:
        """A number no other state of any edge list has had (so a cache key never matches a stale list)."""
        v = getattr(self, "_version", None)
        if v is None:
            v = self._version = next(_VERSIONS)
        return v


def _changes(method: str):
    base = getattr(list, method)

    def changed(self, *args, **kwargs):
        self._bump()
        return base(self, *args, **kwargs)

    changed.__name__ = method
    return changed


for _m in ("append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse",
           "__setitem__", "__delitem__", "__iadd__", "__imul__"):
    setattr(_EdgeList, _m, _changes(_m))
del _m


class _EdgeIndex:
    """Adjacency of one version of an edge list, edges to unknown nodes included (in edge order)."""

    def __init__(self, edges: list[Edge]) -> None:
        self.in_ids: dict[str, list[int]] = {}
        self.out_ids: dict[str, list[int]] = {}
        for i, (s, d) in enumerate(edges):
            self.out_ids.setdefault(s, []).append(i)
            self.in_ids.setdefault(d, []).append(i)


class Graph(Node):
    """A graph of IR nodes. `dt` is the simulation timestep; `metadata` is free-form and round-trips.

    A nested graph runs on the clock of the graph that contains it: only the outermost `dt` is used.

    `extras` keeps graph-level fields of the existing SDK's files (cyclic_config, quantization_config,
    partition_metadata, target_hardware) verbatim so that they survive a read/write cycle.
    """

    type_name = "Graph"
    max_inputs = None
    sums_inputs = False  # its Input nodes take its inputs one each

    @property
    def edges(self) -> list[Edge]:
        return self._edges

    @edges.setter
    def edges(self, value: Iterable[Edge]) -> None:
        self._edges = value if isinstance(value, _EdgeList) else _EdgeList(value)

    def _edge_index(self) -> _EdgeIndex:
        """The index of the current edges, rebuilt only when the edge list changed (O(edges) once)."""
        edges = self._edges
        key = (edges.version, len(edges))
        cached = edges.__dict__.get("index_cache")
        if cached is None or cached[0] != key:
            cached = (key, _EdgeIndex(edges))
            edges.__dict__["index_cache"] = cached
        return cached[1]

    def __init__(
        self,
        nodes: dict[str, Node] | Iterable[tuple[str, Node]] | None = None,
        edges: Iterable[Edge] | None = None,
        *,
        dt: float = 1.0,
        metadata: dict | None = None,
        extras: dict | None = None,
    ) -> None:
        self.nodes: dict[str, Node] = {}
        self.edges = _EdgeList()
        self.dt = float(dt)
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise GraphValidationError(f"Graph.dt must be > 0, got {dt}")
        self.metadata: dict = dict(metadata or {})
        self.extras: dict = dict(extras or {})
        self.input_shapes = None
        self.output_shapes = None
        items = nodes.items() if isinstance(nodes, dict) else (nodes or ())
        for name, node in items:
            self.add_node(name, node)
        edge_list = [(src, dst) for src, dst in edges or ()]
        for src, dst in edge_list:
            if src not in self.nodes or dst not in self.nodes:
                self.add_edge(src, dst)  # raises, naming the unknown end
        self.edges = edge_list

    # -- construction -----------------------------------------------------------------------------
    def add_node(self, name: str, node: Node) -> Node:
        check_name(name)
        if not isinstance(node, Node):
            raise GraphValidationError(f"node {name!r} must be a talon.ir Node, got {type(node).__name__}")
        if name in self.nodes:
            raise GraphValidationError(f"a node named {name!r} already exists")
        self.nodes[name] = node
        return node

    def add_edge(self, src: str, dst: str) -> None:
        """Append an edge; both ends must exist (use `Graph(nodes, edges)` or add nodes first)."""
        for end in (src, dst):
            if end not in self.nodes:
                raise GraphValidationError(f"edge {src!r} -> {dst!r} refers to unknown node {end!r}")
        self.edges.append((src, dst))

    def chain(self, *names: str) -> None:
        """Add edges a->b->c... between existing nodes."""
        for a, b in zip(names, names[1:]):
            self.add_edge(a, b)

    def copy(self) -> "Graph":
        """A deep copy: nodes, arrays and metadata are not shared with the original."""
        return copy.deepcopy(self)

    # -- Node protocol (a Graph nested inside another) ----------------------------------------------
    @property
    def stateful(self) -> bool:  # type: ignore[override]
        return any(n.stateful for n in self.nodes.values())

    @property
    def num_outputs(self) -> int:
        return max(1, len(self.output_names))

    @classmethod
    def field_specs(cls) -> dict:
        return {}

    def infer_output_shapes(self, input_shapes: list[Shape]) -> list[Shape]:
        ins = self.input_names
        if len(input_shapes) != len(ins):
            raise PrimitiveError(f"nested graph has {len(ins)} Input nodes but receives {len(input_shapes)} inputs")
        for name, shape in zip(ins, input_shapes):
            declared = tuple(self.nodes[name].shape)
            if declared != tuple(shape):
                raise PrimitiveError(f"nested graph input {name!r} declares shape {declared}, receives {tuple(shape)}")
        shapes = self.infer_shapes()
        return [shapes[name][0] for name in self.output_names]

    # -- queries ----------------------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return [n for n, node in self.nodes.items() if node.type_name == "Input"]

    @property
    def output_names(self) -> list[str]:
        return [n for n, node in self.nodes.items() if node.type_name == "Output"]

    # Aliases used across the SDK (the tutorial-era API names).
    input_nodes = input_names
    output_nodes = output_names

    def predecessors(self, name: str) -> list[str]:
        """Sources of the edges into `name`, in edge order (repeats kept)."""
        return [self._edges[i][0] for i in self._edge_index().in_ids.get(name, ())]

    def successors(self, name: str) -> list[str]:
        return [self._edges[i][1] for i in self._edge_index().out_ids.get(name, ())]

    def in_edges(self, name: str) -> list[Edge]:
        return [self._edges[i] for i in self._edge_index().in_ids.get(name, ())]

    def out_edges(self, name: str) -> list[Edge]:
        return [self._edges[i] for i in self._edge_index().out_ids.get(name, ())]

    def edge_output_index(self) -> list[int]:
        """For each edge (in order), which output of its source it carries."""
        seen: dict[str, int] = {}
        out = []
        for src, _ in self.edges:
            k = seen.get(src, 0)
            seen[src] = k + 1
            out.append(k if self.nodes[src].num_outputs > 1 else 0)
        return out

    def _adjacency(self, skip: set[int] | None = None) -> dict[str, list[str]]:
        adj: dict[str, list[str]] = {n: [] for n in self.nodes}
        for i, (s, d) in enumerate(self.edges):
            if skip and i in skip:
                continue
            if s in adj and d in self.nodes:
                adj[s].append(d)
        return adj

    def _structure_key(self) -> tuple:
        """What the structural results (components, order) depend on: the node names and the edges."""
        edges = self._edges
        return (edges.version, len(edges), tuple(self.nodes))

    def _cached(self, what: str, key: tuple, compute):
        """One structural result per (what, key): validate, analyze and lint each ask for the same
        components and order several times; a large graph computes them once."""
        cache = self._edges.__dict__.setdefault("structure_cache", {})  # on the list: vars(graph) stays as it was
        hit = cache.get(what)
        if hit is not None and hit[0] == key:
            return hit[1]
        value = compute()
        cache[what] = (key, value)
        return value

    def _shape_key(self) -> tuple:
        """Everything `infer_shapes` reads: the edges, the node names in order and each node's shape state
        (`_node_shape_key`), nested graphs recursively. Equal keys give equal shapes, so a cached
        result is reused only while no edge, node or shape-relevant field has changed."""
        edges = self._edges
        parts: list = [edges.version, len(edges)]
        for name, node in self.nodes.items():
            parts.append(name)
            parts.append(_node_shape_key(node))
        return tuple(parts)

    def strongly_connected_components(self) -> list[list[str]]:
        """Tarjan's algorithm (iterative). Components in reverse topological order, nodes in graph order."""
        comps = self._cached("scc", self._structure_key(), self._tarjan)
        return [list(c) for c in comps]

    def _tarjan(self) -> list[list[str]]:
        adj = self._adjacency()
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        on_stack: set[str] = set()
        stack: list[str] = []
        comps: list[list[str]] = []
        counter = 0
        order = {n: i for i, n in enumerate(self.nodes)}
        for root in self.nodes:
            if root in index:
                continue
            work: list[tuple[str, Iterator[str]]] = [(root, iter(adj[root]))]
            index[root] = low[root] = counter
            counter += 1
            stack.append(root)
            on_stack.add(root)
            while work:
                v, it = work[-1]
                advanced = False
                for w in it:
                    if w not in index:
                        index[w] = low[w] = counter
                        counter += 1
                        stack.append(w)
                        on_stack.add(w)
                        work.append((w, iter(adj[w])))
                        advanced = True
                        break
                    if w in on_stack:
                        low[v] = min(low[v], index[w])
                if advanced:
                    continue
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    comps.append(sorted(comp, key=order.__getitem__) if len(comp) > 1 else comp)
        return comps

    def cycles(self) -> list[list[str]]:
        """Strongly connected components that contain a cycle (including self-loops)."""
        key = self._structure_key()
        if len(self._cached("plain_order", key, lambda: self._kahn_order(set())[0])) == len(self.nodes):
            return []  # a complete topological order: no cycle (the common case, cheaper than Tarjan)
        self_loops = {s for s, d in self.edges if s == d}
        comps = self._cached("scc", key, self._tarjan)
        return [list(c) for c in comps if len(c) > 1 or c[0] in self_loops]

    @property
    def is_dag(self) -> bool:
        return not self.cycles()

    def delayed_edges(self) -> list[int]:
        """Indices of edges that carry last step's output: those leaving a stateful node inside a cycle."""
        comps = self.cycles()  # cached; a graph without cycles (the common case) has no delayed edge
        if not comps:
            return []
        member: dict[str, int] = {}
        for i, comp in enumerate(comps):
            for n in comp:
                member[n] = i
        return [
            i
            for i, (s, d) in enumerate(self.edges)
            if s in member and member.get(d) == member[s] and self.nodes[s].stateful
        ]

    def topological_order(self) -> list[str]:
        """Nodes so that every non-delayed edge points forward; ties keep graph insertion order.

        Raises GraphValidationError naming the nodes of any cycle that no stateful node breaks.
        """
        delayed = self.delayed_edges()
        key = (*self._structure_key(), tuple(delayed))
        if not delayed:
            order = self._cached("plain_order", key[:-1], lambda: self._kahn_order(set())[0])
        else:
            order = self._cached("order", key, lambda: self._kahn_order(set(delayed))[0])
        if len(order) != len(self.nodes):
            indeg = self._kahn_order(set(delayed))[1]
            stuck = [n for n in self.nodes if indeg[n] > 0]
            raise GraphValidationError(
                f"cycle without a stateful node through {stuck}: a recurrent loop needs a neuron (or Delay) to carry it from one step to the next"
            )
        return list(order)

    def _kahn_order(self, delayed: set[int]) -> tuple[list[str], dict[str, int]]:
        """Kahn's algorithm without the `delayed` edges, ties in insertion order: (the nodes it could
        order, the remaining in-degrees); fewer nodes than the graph's when a cycle remains."""
        adj = self._adjacency(delayed)
        indeg = {n: 0 for n in self.nodes}
        for succ in adj.values():
            for d in succ:
                indeg[d] += 1
        position = {n: i for i, n in enumerate(self.nodes)}

        ready = [(position[n], n) for n, k in indeg.items() if k == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            _, n = heapq.heappop(ready)
            order.append(n)
            for d in adj[n]:
                indeg[d] -= 1
                if indeg[d] == 0:
                    heapq.heappush(ready, (position[d], d))
        return order, indeg

    # -- shapes -----------------------------------------------------------------------------------
    def infer_shapes(self, *, failures: dict | None = None, skip: Iterable[str] = ()) -> dict[str, list[Shape]]:
        """Propagate shapes from the Input nodes; set each node's input_shapes/output_shapes.

        Returns {name: output shapes}. Raises GraphValidationError naming the node and its producers.
        With `failures` (a dict), a node that cannot be shaped is recorded there instead, as
        {name: (its input shapes, the GraphValidationError)}, and left out of the result with every node
        downstream of it; so are the nodes in `skip` (lint reports them all in one pass this way).

        The result is cached until the graph changes (`_shape_key`): a repeated call sets the same
        shapes on the nodes again without re-running every node's shape rule.
        """
        if failures is None and not skip:
            key = self._shape_key()
            hit = self._cached_shapes(key)
            if hit is None:
                outs = self._infer_shapes(None, ())
                self._store_shapes(key, outs)
                return {n: list(s) for n, s in outs.items()}
            table, outs = hit
            for name, node in self.nodes.items():
                if isinstance(node, Graph):
                    node.infer_shapes()  # its own nodes' shapes, as the nested call of a full pass sets them
                ins_n, outs_n = table[name]
                node.input_shapes = list(ins_n)
                node.output_shapes = list(outs_n)
            self.input_shapes = [outs[n][0] for n in self.input_names]
            self.output_shapes = [outs[n][0] for n in self.output_names]
            return {n: list(s) for n, s in outs.items()}
        return self._infer_shapes(failures, skip)

    def shape_table(self) -> dict[str, tuple[list[Shape], list[Shape]]]:
        """{name: (input shapes, output shapes)} of every node, without writing to the graph or its nodes.

        Cached like `infer_shapes` (the two share one cache). Raises GraphValidationError as it does.
        """
        key = self._shape_key()
        hit = self._cached_shapes(key)
        if hit is None:
            copy_ = _shallow_copy(self)
            self._store_shapes(key, copy_.infer_shapes(), copy_)
            hit = self._cached_shapes(key)
            assert hit is not None
        return {n: (list(ins), list(outs)) for n, (ins, outs) in hit[0].items()}

    def _cached_shapes(self, key: tuple):
        hit = self._edges.__dict__.get("structure_cache", {}).get("shapes")
        return hit[1] if hit is not None and hit[0] == key else None

    def _store_shapes(self, key: tuple, outs: dict, shaped: "Graph | None" = None) -> None:
        """Cache {name: (input shapes, output shapes)} as a full pass left them on `shaped`'s nodes (this
        graph's, or a shallow copy's), with the `outs` that pass returned."""
        nodes = (shaped or self).nodes
        table = {n: (tuple(nodes[n].input_shapes or ()), tuple(nodes[n].output_shapes or ())) for n in self.nodes}
        frozen = {n: tuple(s) for n, s in outs.items()}
        self._edges.__dict__.setdefault("structure_cache", {})["shapes"] = (key, (table, frozen))

    def _infer_shapes(self, failures: dict | None, skip: Iterable[str]) -> dict[str, list[Shape]]:
        order = self.topological_order()
        out_idx = self.edge_output_index()
        in_edges: dict[str, list[int]] = {n: [] for n in self.nodes}
        for i, (_, d) in enumerate(self.edges):
            in_edges[d].append(i)
        outs: dict[str, list[Shape]] = {}
        # {node: (input shapes, output shapes)} of every successful call: a nested graph is shaped once
        # per distinct input, not once per pass (passes per level would multiply: 2**depth).
        memo: dict[str, tuple[tuple, list]] = {}
        blocked = set(skip)
        # Provisional passes let a node inside a loop shape itself before its recurrent inputs are known,
        # so the rest of the loop can be shaped; the final passes then check every node against all of
        # its inputs.
        delayed = self.delayed_edges()
        progress = bool(delayed)  # without loops, one final pass in schedule order shapes everything
        while progress:
            progress = False
            for name in order:
                if name not in outs and name not in blocked and self._shape_node(name, in_edges[name], out_idx, outs, memo, final=False):
                    progress = True
        # A second final pass when loops exist: its delayed inputs then see their sources' final shapes.
        for _ in range(2 if delayed else 1):
            for name in order:
                if failures is None:
                    self._shape_node(name, in_edges[name], out_idx, outs, memo, final=True)
                else:
                    self._shape_or_record(name, in_edges[name], out_idx, outs, memo, blocked, failures)
        if failures is None:
            self.input_shapes = [outs[n][0] for n in self.input_names]
            self.output_shapes = [outs[n][0] for n in self.output_names]
        return outs

    def _shape_or_record(self, name: str, edge_ids: list[int], out_idx: list[int], outs: dict, memo: dict, blocked: set, failures: dict) -> None:
        """A final pass over one node that records a failure instead of raising (infer_shapes(failures=))."""
        shapes = []
        for i in edge_ids:
            src = self.edges[i][0]
            if name in blocked or src not in outs or out_idx[i] >= len(outs[src]):
                outs.pop(name, None)  # unjudged: an input is unknown (or failed upstream)
                return
            shapes.append(outs[src][out_idx[i]])
        node = self.nodes[name]
        try:
            result = self._node_shapes(name, shapes, memo)
        except GraphValidationError as exc:
            failures.setdefault(name, ([tuple(s) for s in shapes], exc))
            blocked.add(name)
            outs.pop(name, None)
            return
        node.input_shapes = [tuple(s) for s in shapes]
        node.output_shapes = [tuple(s) for s in result]
        outs[name] = [tuple(s) for s in result]

    def _shape_node(self, name: str, edge_ids: list[int], out_idx: list[int], outs: dict, memo: dict, *, final: bool) -> bool:
        node = self.nodes[name]
        shapes = []
        for i in edge_ids:
            src = self.edges[i][0]
            if src in outs:
                src_out = outs[src]
                k = out_idx[i]
                if k >= len(src_out):
                    raise GraphValidationError(f"edge {src!r} -> {name!r} takes output {k} of {src!r}, which has only {len(src_out)} outputs")
                shapes.append(src_out[k])
            elif final:
                raise GraphValidationError(f"cannot infer the shape of {name!r}: its input {src!r} has no shape")
        if not final and len(shapes) < len(edge_ids):
            # Provisional: shape the node from the inputs known so far (inside a loop, the others wait
            # on this very node); the final passes check it against all of its inputs.
            if not shapes:
                return False
            try:
                result = self._node_shapes(name, shapes, memo)
            except GraphValidationError:  # PrimitiveError, or a nested graph's: the final pass reports it
                return False
            outs[name] = [tuple(s) for s in result]
            return True
        try:
            result = self._node_shapes(name, shapes, memo)
        except PrimitiveError as exc:
            producers = ", ".join(repr(self.edges[i][0]) for i in edge_ids) or "no inputs"
            got = ", ".join(str(tuple(s)) for s in shapes) or "none"
            raise GraphValidationError(f"node {name!r} ({node.type_name}) fed by {producers} with shapes {got}: {exc}") from None
        if final:
            node.input_shapes = [tuple(s) for s in shapes]
            node.output_shapes = [tuple(s) for s in result]
        outs[name] = [tuple(s) for s in result]
        return True

    def _node_shapes(self, name: str, shapes: list, memo: dict) -> list:
        key = tuple(tuple(s) for s in shapes)
        hit = memo.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        result = self.nodes[name].infer_output_shapes(list(key))
        memo[name] = (key, result)
        return result

    # -- validation -------------------------------------------------------------------------------
    def validate(self, *, shapes: bool = True) -> "Graph":
        """Check names, edges, arity, cycles and (optionally) shapes; raise GraphValidationError.

        Returns the graph so calls chain. Nested graphs are validated too.
        """
        for name in self.nodes:
            check_name(name)
        for s, d in self.edges:
            for end in (s, d):
                if end not in self.nodes:
                    raise GraphValidationError(f"edge {s!r} -> {d!r} refers to unknown node {end!r}")
        if not self.input_names:
            raise GraphValidationError("graph has no Input node")
        if not self.output_names:
            raise GraphValidationError("graph has no Output node")
        index = self._edge_index()
        for name, node in self.nodes.items():
            n_in = len(index.in_ids.get(name, ()))
            if n_in < node.min_inputs or (node.max_inputs is not None and n_in > node.max_inputs):
                want = f"{node.min_inputs}" if node.max_inputs == node.min_inputs else f"{node.min_inputs}..{node.max_inputs or 'any'}"
                raise GraphValidationError(f"node {name!r} ({node.type_name}) has {n_in} inputs, expected {want}")
            if node.num_outputs > 1:
                n_out = len(index.out_ids.get(name, ()))
                if n_out != node.num_outputs:
                    raise GraphValidationError(f"node {name!r} ({node.type_name}) has {node.num_outputs} outputs but {n_out} outgoing edges")
            if isinstance(node, Graph):
                try:
                    node.validate(shapes=False)
                except GraphValidationError as exc:
                    raise GraphValidationError(f"in nested graph {name!r}: {exc}") from None
        self.topological_order()
        if shapes:
            self.infer_shapes()
        return self

    # -- derived graphs ---------------------------------------------------------------------------
    def subgraph(self, names: Iterable[str]) -> "Graph":
        """A deep copy holding only `names` (kept in graph order) and the edges between them."""
        keep = set(names)
        unknown = keep - set(self.nodes)
        if unknown:
            raise GraphValidationError(f"subgraph: unknown nodes {sorted(unknown)}")
        nodes = {n: copy.deepcopy(node) for n, node in self.nodes.items() if n in keep}
        edges = [(s, d) for s, d in self.edges if s in keep and d in keep]
        return Graph(nodes, edges, dt=self.dt, metadata=copy.deepcopy(self.metadata), extras=copy.deepcopy(self.extras))

    # -- comparison -------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return (
            list(self.nodes) == list(other.nodes)
            and all(self.nodes[n] == other.nodes[n] for n in self.nodes)
            and self.edges == other.edges
            and self.dt == other.dt
            and values_equal(self.metadata, other.metadata)
            and values_equal(self.extras, other.extras)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Graph({len(self.nodes)} nodes, {len(self.edges)} edges, dt={self.dt:g})"

    def _repr_html_(self) -> str:
        """Jupyter's rich display (talon.ir._display)."""
        from talon.ir._display import graph_html

        return graph_html(self)

    def __deepcopy__(self, memo: dict) -> "Graph":
        g = Graph.__new__(Graph)
        memo[id(self)] = g
        for k, v in self.__dict__.items():
            setattr(g, k, copy.deepcopy(v, memo))
        return g


def _shallow_copy(graph: Graph) -> Graph:
    """A Graph with copies of the node objects (arrays shared), so shape inference can write to them."""
    nodes: dict[str, Node] = {}
    for name, node in graph.nodes.items():
        if isinstance(node, Graph):
            nodes[name] = _shallow_copy(node)
        else:
            new = object.__new__(type(node))
            new.__dict__.update(node.__dict__)
            nodes[name] = new
    return Graph(nodes, graph.edges, dt=graph.dt)


#: Per primitive class: a getter of its type name and of every field a shape rule may read (all but dicts).
_SHAPE_FIELDS: dict[type, operator.attrgetter] = {}
#: Arrays up to this size enter the shape key by value too, not only by dtype and shape.
_SMALL_ARRAY = 16
_IMMUTABLE = frozenset((int, float, str, bool, tuple, type(None)))


def _node_shape_key(node: Node) -> tuple:
    """What a node's shape rule may read (the contract of `Node.infer_output_shapes`): its type and every
    field except dict fields (free-form metadata and hints), arrays by dtype and shape, small arrays by
    value too. Field values other than arrays are immutable (numbers, strings, tuples), so a change to
    them is a new value; an array changed in place keeps its dtype and shape, which is all a shape rule
    reads of it; replacing a node or a field changes its entry."""
    if isinstance(node, Graph):
        return (Graph, node._shape_key())
    cls = type(node)
    getter = _SHAPE_FIELDS.get(cls)
    if getter is None:
        names = [n for n, spec in cls.field_specs().items() if spec.kind != DICT]
        getter = _SHAPE_FIELDS[cls] = operator.attrgetter("type_name", *names)  # always a tuple
    return (cls, *[v if type(v) in _IMMUTABLE else _value_key(v) for v in getter(node)])


def _value_key(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return (value.dtype, value.shape, value.tobytes() if value.size <= _SMALL_ARRAY else None)
    return (type(value), copy.deepcopy(value))  # a mutable value set directly on the node (a list): a copy


register_node(Graph)
