"""Graph.infer_shapes and Graph.shape_table are cached until the graph changes: every kind of change
(edges, nodes, node order, a node's fields, a nested graph's contents) gives the shapes a fresh pass
gives, and a cached call sets the same shapes on the nodes as a full pass."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import talon.ir as ir
from talon.errors import GraphValidationError, PrimitiveError
from talon.ir import Graph
from talon.ir.node import Node, array


def fresh(g: Graph) -> dict:
    """What an uncached pass gives: a deep copy carries no cached results."""
    return copy.deepcopy(g).infer_shapes()


def lin(o: int, i: int) -> ir.Linear:
    return ir.Linear(weight=np.ones((o, i), np.float32))


def mlp() -> Graph:
    g = Graph({"in": ir.Input(shape=(4,)), "a": lin(3, 4), "b": lin(2, 3), "out": ir.Output()})
    g.chain("in", "a", "b", "out")
    return g


def shapes_on_nodes(g: Graph) -> dict:
    return {n: (node.input_shapes, node.output_shapes) for n, node in g.nodes.items()}


def test_a_repeated_call_is_served_from_the_cache_and_equals_a_fresh_pass(monkeypatch):
    g = mlp()
    first = g.infer_shapes()
    calls = []
    monkeypatch.setattr(ir.Linear, "infer_output_shapes", lambda self, s: calls.append(1) or [(self.weight.shape[0],)])
    assert g.infer_shapes() == first == {"in": [(4,)], "a": [(3,)], "b": [(2,)], "out": [(2,)]}
    assert g.shape_table()["b"] == ([(3,)], [(2,)])
    assert calls == []  # no shape rule ran again


def test_field_changes_invalidate():
    g = mlp()
    g.infer_shapes()
    g.nodes["b"].weight = np.ones((5, 3), np.float32)  # a new array of another shape
    assert g.infer_shapes()["out"] == [(5,)] == fresh(g)["out"]
    g.nodes["in"].shape = (7,)  # an immutable field replaced
    with pytest.raises(GraphValidationError, match="'a'"):
        g.infer_shapes()
    g.nodes["a"] = lin(3, 7)  # a node replaced under its name
    assert g.infer_shapes() == fresh(g) and g.nodes["a"].input_shapes == [(7,)]
    g.nodes["in"].shape = [4]  # a list set directly: the key keeps its own copy
    g.nodes["a"] = lin(3, 4)
    assert g.infer_shapes()["in"] == [(4,)]
    g.nodes["in"].shape.append(2)  # changed in place
    with pytest.raises(GraphValidationError):
        g.infer_shapes()


def test_edge_and_node_changes_invalidate():
    g = mlp()
    g.infer_shapes()
    g.add_node("c", lin(6, 2))
    g.edges.remove(("b", "out"))
    g.add_edge("b", "c")
    g.add_edge("c", "out")
    assert g.infer_shapes()["out"] == [(6,)] == fresh(g)["out"]
    g.edges = [("in", "a"), ("a", "b"), ("b", "out")]
    del g.nodes["c"]
    assert g.infer_shapes()["out"] == [(2,)]
    g.edges[2] = ("a", "out")  # one edge replaced in place (b now feeds nothing)
    assert g.infer_shapes()["out"] == [(3,)] == fresh(g)["out"]


def test_node_order_changes_invalidate():
    g = Graph({"in": ir.Input(shape=(2,)), "x": ir.ReLU(), "y": ir.ReLU(), "cat": ir.Concat(dim=0), "out": ir.Output()},
              [("in", "x"), ("in", "y"), ("x", "cat"), ("y", "cat"), ("cat", "out")])
    assert list(g.infer_shapes()) == ["in", "x", "y", "cat", "out"]
    g.nodes = {n: g.nodes[n] for n in ["in", "y", "x", "cat", "out"]}
    assert list(g.infer_shapes()) == list(fresh(g)) == ["in", "y", "x", "cat", "out"]


def test_a_cached_call_sets_the_shapes_on_the_nodes_again():
    g = mlp()
    g.infer_shapes()
    expected = shapes_on_nodes(g)
    for node in g.nodes.values():
        node.input_shapes = node.output_shapes = None
    g.input_shapes = g.output_shapes = None
    out = g.infer_shapes()
    assert shapes_on_nodes(g) == expected and g.input_shapes == [(4,)] and g.output_shapes == [(2,)]
    out["a"].append((99,))  # the caller's copy: the cache is not changed through it
    g.nodes["a"].output_shapes.append((98,))
    assert g.infer_shapes()["a"] == [(3,)] and g.nodes["a"].output_shapes == [(3,)]


def test_shape_table_does_not_write_to_the_graph():
    g = mlp()
    table = g.shape_table()
    assert all(node.input_shapes is None and node.output_shapes is None for node in g.nodes.values())
    assert table == {n: (list(i), list(o)) for n, (i, o) in {"in": ([], [(4,)]), "a": ([(4,)], [(3,)]), "b": ([(3,)], [(2,)]), "out": ([(2,)], [(2,)])}.items()}
    table["a"][1].append((0,))
    assert g.shape_table()["a"] == ([(4,)], [(3,)])
    g.nodes["b"] = lin(8, 3)
    assert g.shape_table()["out"] == ([(8,)], [(8,)])
    assert g.infer_shapes()["out"] == [(8,)]  # the entry shape_table stored serves infer_shapes too
    assert g.nodes["out"].output_shapes == [(8,)]


def test_nested_graph_changes_invalidate_the_outer_graph():
    inner = mlp()
    outer = Graph({"x": ir.Input(shape=(4,)), "block": inner, "y": ir.Output()})
    outer.chain("x", "block", "y")
    assert outer.infer_shapes()["y"] == [(2,)]
    inner.nodes["b"].weight = np.ones((9, 3), np.float32)
    assert outer.infer_shapes()["y"] == [(9,)] == fresh(outer)["y"]
    for node in inner.nodes.values():
        node.output_shapes = None
    outer.infer_shapes()  # cached: the nested graph's nodes get their shapes again, as a full pass sets them
    assert inner.nodes["b"].output_shapes == [(9,)] and inner.output_shapes == [(9,)]


@dataclass(eq=False, repr=False)  # not registered: other tests enumerate the registered primitives
class _Repeat(Node):
    """A test primitive whose shape depends on a small array's value."""

    type_name = "TestShapeCacheRepeat"
    times: np.ndarray = array("int64")

    def output_shape_for(self, shape):
        return (int(shape[0]) * int(self.times[0]),)


def test_small_arrays_changed_in_place_invalidate():
    g = Graph({"in": ir.Input(shape=(3,)), "r": _Repeat(times=np.array([2])), "out": ir.Output()})
    g.chain("in", "r", "out")
    assert g.infer_shapes()["out"] == [(6,)]
    g.nodes["r"].times[0] = 5
    assert g.infer_shapes()["out"] == [(15,)] == fresh(g)["out"]


def test_large_arrays_changed_in_place_keep_the_cache():
    """Shape rules read large arrays by dtype and shape only (Node.infer_output_shapes): in-place value
    changes do not change shapes, and the cache is kept."""
    g = mlp()
    before = g.infer_shapes()
    g.nodes["a"].weight[:] = 3.0
    assert g.infer_shapes() == before == fresh(g)


def test_a_failed_pass_caches_nothing():
    g = mlp()
    g.nodes["b"] = lin(2, 5)
    for _ in range(2):
        with pytest.raises(GraphValidationError, match="'b'"):
            g.infer_shapes()
        with pytest.raises(GraphValidationError, match="'b'"):
            g.shape_table()
    with pytest.raises(PrimitiveError):
        lin(2, 3).infer_output_shapes([(5,)])


_OPS = st.lists(st.tuples(st.sampled_from(["width", "input", "replace", "insert", "drop", "relink", "reorder"]),
                          st.integers(0, 5), st.integers(1, 6)), max_size=8)


@settings(max_examples=60, deadline=None)
@given(_OPS)
def test_any_sequence_of_changes_gives_what_a_fresh_pass_gives(ops):
    g = mlp()
    for step, (op, k, w) in enumerate(ops):
        names = list(g.nodes)
        inner = [n for n in names if n not in ("in", "out")]
        if op == "width" and inner:
            node = g.nodes[inner[k % len(inner)]]
            node.weight = np.ones((w, node.weight.shape[1]), np.float32)
        elif op == "input":
            g.nodes["in"].shape = (w,)
        elif op == "replace" and inner:
            n = inner[k % len(inner)]
            g.nodes[n] = lin(w, g.nodes[n].weight.shape[1])
        elif op == "insert":
            name = f"n{step}"
            src, dst = g.edges[k % len(g.edges)]
            g.add_node(name, lin(w, w))
            g.edges[k % len(g.edges)] = (src, name)
            g.edges.append((name, dst))
        elif op == "drop" and inner:
            n = inner[k % len(inner)]
            (src,), (dst,) = g.predecessors(n), g.successors(n)
            g.edges = [e for e in g.edges if n not in e] + [(src, dst)]
            del g.nodes[n]
        elif op == "relink":
            g.edges.sort(key=lambda e: (e[0] == names[k % len(names)], e))
        elif op == "reorder":
            g.nodes = dict(sorted(g.nodes.items(), key=lambda kv: (kv[0] != "in", kv[0])))
        try:
            expected = fresh(g)
        except GraphValidationError:
            with pytest.raises(GraphValidationError):
                g.infer_shapes()
            with pytest.raises(GraphValidationError):
                g.shape_table()
            continue
        assert g.infer_shapes() == expected
        assert g.shape_table() == {n: (node.input_shapes, node.output_shapes) for n, node in g.nodes.items()}
