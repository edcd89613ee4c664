"""Graph algorithms stay linear: a long chain and a deep nesting are handled in one pass each, and the
cached edge index and structural results follow every change to the graph.

The long-chain test uses 10,000 nodes: quadratic code (an edge scan per node) takes tens of seconds there, so a
regression makes the suite visibly slow, while the linear code takes about a second. No timing is asserted.
benchmarks/graph_scale.py times 100,000 nodes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import talon.ir as ir
from talon.errors import GraphValidationError
from talon.ir import Graph


def chain(n: int) -> Graph:
    names = ["in", *(f"r{i}" for i in range(n)), "out"]
    nodes = {"in": ir.Input(shape=(4,)), **{nm: ir.ReLU() for nm in names[1:-1]}, "out": ir.Output()}
    return Graph(nodes, list(zip(names, names[1:])))


def nested(depth: int) -> Graph:
    g = Graph({"in": ir.Input(shape=(4,)), "r": ir.ReLU(), "out": ir.Output()}, [("in", "r"), ("r", "out")])
    for _ in range(depth):
        g = Graph({"in": ir.Input(shape=(4,)), "sub": g, "out": ir.Output()}, [("in", "sub"), ("sub", "out")])
    return g


def test_a_long_chain_validates_analyses_and_lints():
    from talon.sdk import analyze_graph
    from talon.sdk.lint import lint_graph

    n = 10_000
    g = chain(n)
    g.validate()
    stats = analyze_graph(g)
    assert stats.depth == n + 1 and stats.width == 1 and stats.num_nodes == n + 2
    assert not lint_graph(g).errors
    assert g.predecessors("r500") == ["r499"] and g.successors("r500") == ["r501"]


def test_deep_nesting_is_shaped_once_per_level(monkeypatch):
    """Shape inference of a nested graph used to run twice per level (2**depth calls)."""
    from talon.sdk import analyze_graph
    from talon.sdk.lint import lint_graph

    depth = 40
    g = nested(depth)
    calls = []
    real = Graph.infer_output_shapes

    def counting(self, shapes):
        calls.append(1)
        return real(self, shapes)

    monkeypatch.setattr(Graph, "infer_output_shapes", counting)
    g.validate()
    assert len(calls) == depth
    calls.clear()
    assert analyze_graph(g).output_shapes == {"out": (4,)}
    assert not lint_graph(g).errors


def test_recurrent_graph_keeps_its_provisional_passes():
    g = Graph({"in": ir.Input(shape=(3,)), "fc": ir.Linear(weight=np.ones((3, 3), np.float32)),
               "lif": ir.LIF(tau=np.float32(2), r=np.float32(2), v_leak=np.float32(0), v_threshold=np.float32(1)),
               "rec": ir.Linear(weight=np.ones((3, 3), np.float32)), "out": ir.Output()},
              [("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")])
    g.validate()
    assert g.nodes["rec"].output_shapes == [(3,)] and g.delayed_edges() == [2]
    assert g.topological_order() == ["in", "fc", "rec", "lif", "out"]  # rec reads last step's spikes


_OPS = st.lists(st.tuples(st.sampled_from(["append", "set", "del", "insert", "replace", "extend", "pop", "sort", "iadd"]),
                          st.integers(0, 5), st.integers(0, 5), st.integers(0, 20)), max_size=12)


@settings(max_examples=60, deadline=None)
@given(_OPS)
def test_the_edge_index_follows_every_change(ops):
    names = [f"n{i}" for i in range(6)]
    g = Graph({n: ir.ReLU() for n in names})
    for op, a, b, k in ops:
        e = (names[a], names[b])
        if op == "append":
            g.edges.append(e)
        elif op == "set" and g.edges:
            g.edges[k % len(g.edges)] = e
        elif op == "del" and g.edges:
            del g.edges[k % len(g.edges)]
        elif op == "insert":
            g.edges.insert(k, e)
        elif op == "replace":
            g.edges = [e, (names[b], names[a])]
        elif op == "extend":
            g.edges.extend([e, e])
        elif op == "pop" and g.edges:
            g.edges.pop()
        elif op == "sort":
            g.edges.sort(reverse=bool(k % 2))
        elif op == "iadd":
            g.edges += [e]
        for n in names:  # what the index answers equals a scan of the edges
            assert g.predecessors(n) == [s for s, d in g.edges if d == n]
            assert g.successors(n) == [d for s, d in g.edges if s == n]
            assert g.in_edges(n) == [x for x in g.edges if x[1] == n]
        brute_cycle = _has_cycle(names, g.edges)
        assert bool(g.cycles()) == brute_cycle
        if not brute_cycle:
            order = g.topological_order()
            pos = {n: i for i, n in enumerate(order)}
            assert all(pos[s] < pos[d] for s, d in g.edges)
        else:
            with pytest.raises(GraphValidationError):
                g.topological_order()


def _has_cycle(names, edges) -> bool:
    succ = {n: [d for s, d in edges if s == n] for n in names}
    state: dict[str, int] = {}

    def visit(v) -> bool:
        state[v] = 1
        for w in succ[v]:
            if state.get(w) == 1 or (w not in state and visit(w)):
                return True
        state[v] = 2
        return False

    return any(n not in state and visit(n) for n in names)


def test_copies_and_renamed_nodes_do_not_share_cached_results():
    g = chain(3)
    assert g.topological_order() == ["in", "r0", "r1", "r2", "out"]
    c = g.copy()
    c.edges.append(("r2", "r0"))
    with pytest.raises(GraphValidationError):
        c.topological_order()
    assert g.topological_order() == ["in", "r0", "r1", "r2", "out"]
    nodes = list(g.nodes.items())
    g.nodes = dict([nodes[0], ("zz", nodes[1][1]), *nodes[2:]])
    g.edges = [("in", "zz"), ("zz", "r1"), ("r1", "r2"), ("r2", "out")]
    assert g.topological_order() == ["in", "zz", "r1", "r2", "out"]


def test_shape_failures_are_collected_in_one_pass_and_lint_reports_each():
    """infer_shapes(failures=) records every node that cannot be shaped and leaves what is downstream of
    it unjudged; lint reports exactly those nodes (it uses the graph's inference, not a copy of it)."""
    from talon.sdk.lint import lint_graph

    w = lambda o, i: ir.Linear(weight=np.ones((o, i), np.float32))  # noqa: E731
    g = Graph({"in": ir.Input(shape=(4,)), "a1": w(3, 5), "a2": w(2, 3), "b1": w(3, 4), "b2": w(2, 7), "b3": ir.ReLU(),
               "cat": ir.Concat(dim=0), "out": ir.Output()},
              [("in", "a1"), ("a1", "a2"), ("in", "b1"), ("b1", "b2"), ("b2", "b3"), ("a2", "cat"), ("b3", "cat"), ("cat", "out")])
    with pytest.raises(GraphValidationError, match="a1"):
        g.copy().infer_shapes()
    failures: dict = {}
    outs = g.copy().infer_shapes(failures=failures)
    assert sorted(failures) == ["a1", "b2"] and failures["a1"][0] == [(4,)] and failures["b2"][0] == [(3,)]
    assert set(outs) == {"in", "b1"}
    issues = [i for i in lint_graph(g).issues if i.code == "SHAPE_MISMATCH"]
    assert [i.node for i in issues] == ["a1", "b2"] and "fed by 'in' with (4,)" in issues[0].message
