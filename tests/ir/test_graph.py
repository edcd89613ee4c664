"""Graph: validation messages, topological order, cycles and delays, shape inference, nesting, copies."""

from __future__ import annotations

import numpy as np
import pytest

import talon.ir as ir
from talon.errors import GraphValidationError
from talon.ir import Graph

from ._gen import f32


def affine(o, i):
    return ir.Affine(weight=f32(o, i), bias=f32(o))


def lif(n):
    return ir.LIF(tau=np.full(n, 2.0), r=np.full(n, 2.0), v_leak=np.zeros(n), v_threshold=np.ones(n))


def mlp() -> Graph:
    return Graph(
        {"input": ir.Input(shape=(4,)), "fc1": affine(8, 4), "lif1": lif(8), "fc2": affine(3, 8), "output": ir.Output()},
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "output")],
    )


def recurrent() -> Graph:
    """input -> fc_in -> lif <-> rec (lif -> rec -> lif), lif -> fc_out -> output."""
    return Graph(
        {"input": ir.Input(shape=(4,)), "fc_in": affine(6, 4), "lif": lif(6), "rec": affine(6, 6), "fc_out": affine(3, 6), "output": ir.Output()},
        [("input", "fc_in"), ("fc_in", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "fc_out"), ("fc_out", "output")],
    )


def raises(match_all, fn):
    with pytest.raises(GraphValidationError) as info:
        fn()
    for text in match_all:
        assert text in str(info.value), f"{text!r} not in {str(info.value)!r}"
    return info.value


# ----------------------------------------------------------------------------------------------------
# Construction and validate() messages
# ----------------------------------------------------------------------------------------------------


def test_valid_graph_validates_and_chains():
    g = mlp()
    assert g.validate() is g
    assert g.input_names == ["input"] and g.output_names == ["output"]
    assert g.input_nodes == g.input_names and g.output_nodes == g.output_names
    assert g.nodes["fc2"].input_shapes == [(8,)] and g.nodes["fc2"].output_shapes == [(3,)]
    assert g.input_shapes == [(4,)] and g.output_shapes == [(3,)]
    assert g.is_dag and g.cycles() == [] and g.delayed_edges() == []
    assert g.predecessors("fc2") == ["lif1"] and g.successors("fc1") == ["lif1"]
    assert g.in_edges("lif1") == [("fc1", "lif1")] and g.out_edges("lif1") == [("lif1", "fc2")]
    assert g.dt == 1.0 and g.metadata == {} and g.extras == {}


def test_dangling_edge_names_the_nodes():
    raises(["'ghost'", "'fc2'"], lambda: Graph(mlp().nodes, [("fc2", "ghost")]))
    g = mlp()
    raises(["'nowhere'"], lambda: g.add_edge("nowhere", "fc1"))
    g.edges.append(("fc2", "ghost"))  # bypassing add_edge: validate() must still catch it
    raises(["'fc2'", "'ghost'"], g.validate)


def test_unknown_node_in_subgraph():
    raises(["zzz"], lambda: mlp().subgraph(["fc1", "zzz"]))


def test_shape_mismatch_names_both_nodes():
    g = mlp()
    g.nodes["fc2"] = affine(3, 7)  # expects 7 features, lif1 gives 8
    e = raises(["'fc2'", "'lif1'", "(8,)"], g.validate)
    assert "Affine" in str(e)
    # Structure-only validation does not need shapes.
    assert g.validate(shapes=False) is g


def test_shape_mismatch_at_multi_input_node_names_all_producers():
    g = Graph({"input": ir.Input(shape=(4,)), "a": affine(4, 4), "b": affine(5, 4), "add": ir.Skip(), "output": ir.Output()},
              [("input", "a"), ("input", "b"), ("a", "add"), ("b", "add"), ("add", "output")])
    raises(["'add'", "'a'", "'b'", "(4,)", "(5,)"], g.validate)


def test_cycle_without_stateful_node_is_refused():
    g = Graph({"input": ir.Input(shape=(4,)), "add": ir.Skip(), "relu": ir.ReLU(), "output": ir.Output()},
              [("input", "add"), ("add", "relu"), ("relu", "add"), ("relu", "output")])
    assert g.cycles() == [["add", "relu"]] and g.delayed_edges() == []
    e = raises(["'add'", "'relu'", "cycle"], g.validate)
    assert "stateful" in str(e)
    raises(["'add'", "'relu'"], g.topological_order)
    # A stateless self-loop on a multi-input node too.
    g2 = Graph({"input": ir.Input(shape=(4,)), "add": ir.Skip(), "output": ir.Output()},
               [("input", "add"), ("add", "add"), ("add", "output")])
    assert g2.cycles() == [["add"]]
    raises(["'add'"], g2.validate)


@pytest.mark.parametrize("bad", ["a/b", "", "/", ".", "..", "x\x00y", 3, None])
def test_invalid_names(bad):
    with pytest.raises(GraphValidationError) as info:
        Graph({bad: ir.ReLU()})
    assert repr(bad) in str(info.value)
    g = mlp()
    g.nodes[bad] = ir.ReLU()  # bypassing add_node
    with pytest.raises(GraphValidationError) as info:
        g.validate()
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("good", ["features.0", "layer 1", "ünï", "🧠", "...", "a.b.c", "-", "type", "nodes"])
def test_unusual_valid_names(good):
    g = Graph({"input": ir.Input(shape=(2,)), good: ir.ReLU(), "output": ir.Output()}, [("input", good), (good, "output")])
    assert g.validate().nodes[good].output_shape == (2,)


def test_duplicate_names_and_non_nodes():
    g = mlp()
    raises(["'fc1'"], lambda: g.add_node("fc1", ir.ReLU()))
    raises(["'x'"], lambda: g.add_node("x", object()))


def test_wrong_arity():
    g = mlp()
    g.add_edge("input", "fc1")  # fc1 now has 2 inputs
    raises(["'fc1'", "Affine", "2 inputs"], g.validate)
    g = Graph({"input": ir.Input(shape=(4,)), "i2": ir.Input(shape=(4,)), "output": ir.Output()}, [("input", "i2"), ("i2", "output")])
    raises(["'i2'", "Input", "1 inputs"], g.validate)
    g = Graph({"input": ir.Input(shape=(4,)), "relu": ir.ReLU(), "output": ir.Output()}, [("input", "output")])
    raises(["'relu'", "0 inputs"], g.validate)
    g = Graph({"input": ir.Input(shape=(4,)), "output": ir.Output()}, [])
    raises(["'output'"], g.validate)
    raises(["no Input"], Graph({"output": ir.Output()}).validate)
    raises(["no Output"], Graph({"input": ir.Input(shape=(2,))}).validate)
    # A Concat whose declared arity differs from its edges: a shape-time error naming it.
    g = Graph({"input": ir.Input(shape=(4,)), "cat": ir.Concat(num_inputs=3), "output": ir.Output()},
              [("input", "cat"), ("input", "cat"), ("cat", "output")])
    raises(["'cat'", "Concat"], g.validate)


def test_channel_split_out_edge_count():
    def build(n_consumers):
        nodes = {"input": ir.Input(shape=(8,)), "split": ir.ChannelSplit(split_sections=(3, 5))}
        edges = [("input", "split")]
        for k in range(n_consumers):
            nodes[f"r{k}"] = ir.ReLU()
            edges.append(("split", f"r{k}"))
        nodes["output"] = ir.Output()
        edges.append(("r0", "output"))
        return Graph(nodes, edges)

    for n in (1, 3):
        raises(["'split'", "ChannelSplit", "2 outputs", f"{n} outgoing"], build(n).validate)
    g = build(2).validate()
    # Chunk k goes along the k-th outgoing edge.
    assert g.nodes["r0"].output_shape == (3,) and g.nodes["r1"].output_shape == (5,)
    assert g.edge_output_index() == [0, 0, 1, 0]


def test_channel_split_chunks_follow_edge_order():
    nodes = {"input": ir.Input(shape=(8,)), "split": ir.ChannelSplit(split_sections=(3, 5)), "a": affine(2, 5), "b": affine(2, 3),
             "add": ir.Skip(), "output": ir.Output()}
    # The first out-edge of split goes to b (3 channels), the second to a (5 channels).
    g = Graph(nodes, [("input", "split"), ("split", "b"), ("split", "a"), ("a", "add"), ("b", "add"), ("add", "output")]).validate()
    assert g.nodes["b"].input_shapes == [(3,)] and g.nodes["a"].input_shapes == [(5,)]
    swapped = Graph(nodes, [("input", "split"), ("split", "a"), ("split", "b"), ("a", "add"), ("b", "add"), ("add", "output")])
    raises(["'a'", "'split'"], swapped.validate)


def test_dt_must_be_positive():
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(GraphValidationError, match="dt"):
            Graph(dt=bad)
    assert Graph(dt=0.25).dt == 0.25 and type(Graph(dt=1).dt) is float


def test_dt_must_be_finite():
    # dt = inf passes construction but can never be simulated, and the file reader refuses it
    # (so such a graph writes but cannot be read back): it must be rejected up front.
    with pytest.raises(GraphValidationError, match="dt"):
        Graph(dt=float("inf"))


# ----------------------------------------------------------------------------------------------------
# Topological order
# ----------------------------------------------------------------------------------------------------


def test_topological_order_ties_keep_insertion_order():
    # Two independent branches; every ready node is released in insertion order.
    nodes = {"input": ir.Input(shape=(4,)), "z": ir.ReLU(), "a": ir.Tanh(), "m": ir.Sigmoid(), "b": ir.GELU(), "add": ir.Skip(), "output": ir.Output()}
    edges = [("input", "a"), ("input", "z"), ("z", "m"), ("a", "b"), ("m", "add"), ("b", "add"), ("add", "output")]
    assert Graph(nodes, edges).topological_order() == ["input", "z", "a", "m", "b", "add", "output"]
    # Reversing the insertion order of the branches reverses the ties, not the dependencies.
    nodes2 = {k: nodes[k] for k in ["input", "b", "m", "a", "z", "add", "output"]}
    assert Graph(nodes2, edges).topological_order() == ["input", "a", "b", "z", "m", "add", "output"]
    # Nodes inserted before their producers still come after them.
    nodes3 = {k: nodes[k] for k in ["output", "add", "b", "a", "m", "z", "input"]}
    order = Graph(nodes3, edges).topological_order()
    assert order == ["input", "a", "b", "z", "m", "add", "output"]
    # Isolated nodes keep their place among the ready ones.
    g = Graph({"x": ir.ReLU(), "input": ir.Input(shape=(1,)), "y": ir.ReLU(), "output": ir.Output()}, [("input", "output")])
    assert g.topological_order() == ["x", "input", "y", "output"]


def test_topological_order_is_valid_on_a_wide_random_dag():
    rng = np.random.default_rng(0)
    n = 300
    names = [f"n{i}" for i in range(n)]
    perm = list(rng.permutation(n))
    nodes = {"input": ir.Input(shape=(2,))}
    nodes.update({names[i]: ir.Skip() for i in perm})
    edges = [("input", names[0])]
    for i in range(1, n):
        for j in set(rng.integers(0, i, size=2).tolist()):
            edges.append((names[j], names[i]))
    g = Graph(nodes, edges)
    order = g.topological_order()
    pos = {name: k for k, name in enumerate(order)}
    assert sorted(order) == sorted(g.nodes)
    assert all(pos[s] < pos[d] for s, d in edges)


# ----------------------------------------------------------------------------------------------------
# Cycles, strongly connected components, delayed edges
# ----------------------------------------------------------------------------------------------------


def test_recurrent_graph_components_and_delays():
    g = recurrent()
    sccs = g.strongly_connected_components()
    assert sorted(map(sorted, sccs)) == [["fc_in"], ["fc_out"], ["input"], ["lif", "rec"], ["output"]]
    assert ["lif", "rec"] in sccs  # members in graph order
    # Reverse topological order of the condensation: a component comes before those that feed it.
    idx = {n: i for i, comp in enumerate(sccs) for n in comp}
    assert idx["output"] < idx["fc_out"] < idx["lif"] < idx["fc_in"] < idx["input"]
    assert g.cycles() == [["lif", "rec"]]
    assert not g.is_dag
    # The edge leaving the stateful node inside the loop carries last step's value.
    assert g.delayed_edges() == [g.edges.index(("lif", "rec"))] == [2]
    order = g.topological_order()
    pos = {n: i for i, n in enumerate(order)}
    for i, (s, d) in enumerate(g.edges):
        if i not in g.delayed_edges():
            assert pos[s] < pos[d], (s, d)
    assert order[0] == "input"
    assert g.validate() is g


def test_self_loop_on_a_neuron_is_a_delayed_cycle():
    g = Graph({"input": ir.Input(shape=(4,)), "l": lif(4), "output": ir.Output()}, [("input", "l"), ("l", "l"), ("l", "output")])
    assert g.cycles() == [["l"]] and g.delayed_edges() == [1]
    g.validate()
    assert g.nodes["l"].input_shapes == [(4,), (4,)]


def test_two_loops_and_nested_cycles():
    # A loop through a stateless chain broken by one neuron, plus a second independent loop.
    nodes = {"input": ir.Input(shape=(3,)), "l1": lif(3), "a": ir.ReLU(), "b": affine(3, 3), "l2": lif(3), "c": affine(3, 3),
             "join": ir.Skip(), "output": ir.Output()}
    edges = [("input", "l1"), ("l1", "a"), ("a", "b"), ("b", "l1"), ("input", "l2"), ("l2", "c"), ("c", "l2"),
             ("l1", "join"), ("l2", "join"), ("join", "output")]
    g = Graph(nodes, edges).validate()
    assert sorted(map(sorted, g.cycles())) == [["a", "b", "l1"], ["c", "l2"]]
    assert [g.edges[i] for i in g.delayed_edges()] == [("l1", "a"), ("l2", "c")]
    assert g.nodes["join"].output_shape == (3,)


def test_back_edges_cut_each_cycle_where_the_walk_from_the_roots_closes_it():
    from talon.ir.graph import back_edges

    succ = {"input": ["a"], "a": ["b"], "b": ["a", "c"], "c": ["c", "d"], "d": []}
    assert back_edges(succ, ["input", *succ]) == {("b", "a"), ("c", "c")}
    # The same cycle entered from b instead of input is cut at the other edge.
    assert back_edges(succ, ["b", *succ]) == {("a", "b"), ("c", "c")}
    assert back_edges({"x": ["y"], "y": []}, ["x", "y"]) == set()


def test_shape_inference_through_a_recurrent_loop():
    # The LIF's parameters are scalars, so its shape must come from its feed-forward input; the
    # recurrent Affine is shaped from the LIF, and the LIF is then checked against both inputs.
    g = Graph({"input": ir.Input(shape=(2, 6)), "rec": affine(6, 6), "lif": ir.LIF(tau=2.0, r=2.0, v_leak=0.0, v_threshold=1.0),
               "fc_out": affine(3, 6), "output": ir.Output()},
              [("rec", "lif"), ("input", "lif"), ("lif", "rec"), ("lif", "fc_out"), ("fc_out", "output")])
    shapes = g.validate().infer_shapes()
    assert shapes["lif"] == [(2, 6)] and shapes["rec"] == [(2, 6)] and shapes["output"] == [(2, 3)]
    assert g.nodes["lif"].input_shapes == [(2, 6), (2, 6)]  # in edge order: rec first, then input
    # A recurrent Affine of the wrong size is reported at the loop.
    bad = g.copy()
    bad.nodes["rec"] = affine(5, 6)
    raises(["'lif'", "'rec'"], bad.validate)
    # So is the compat sample layout: lif -> fc_rec -> lif.
    g2 = recurrent().validate()
    assert g2.nodes["lif"].input_shapes == [(6,), (6,)] and g2.nodes["rec"].output_shapes == [(6,)]
    assert g2.nodes["output"].output_shapes == [(3,)]


def test_loop_whose_only_entry_is_the_delayed_edge():
    # A neuron fed only by the loop cannot be shaped: error, not a hang or a crash.
    g = Graph({"input": ir.Input(shape=(4,)), "l": ir.LIF(tau=2.0, r=2.0, v_leak=0.0, v_threshold=1.0), "a": affine(4, 4),
               "output": ir.Output()}, [("l", "a"), ("a", "l"), ("input", "output")])
    with pytest.raises(GraphValidationError):
        g.validate()


# ----------------------------------------------------------------------------------------------------
# Nested graphs, subgraphs, copies
# ----------------------------------------------------------------------------------------------------


def block(n_in, n_out) -> Graph:
    return Graph({"in": ir.Input(shape=(n_in,)), "fc": affine(n_out, n_in), "lif": lif(n_out), "out": ir.Output()},
                 [("in", "fc"), ("fc", "lif"), ("lif", "out")])


def test_nested_graph_as_a_node():
    outer = Graph({"input": ir.Input(shape=(4,)), "b1": block(4, 6), "b2": block(6, 2), "output": ir.Output()},
                  [("input", "b1"), ("b1", "b2"), ("b2", "output")])
    shapes = outer.validate().infer_shapes()
    assert shapes["b1"] == [(6,)] and shapes["b2"] == [(2,)] and shapes["output"] == [(2,)]
    assert outer.nodes["b2"].input_shapes == [(6,)] and outer.nodes["b2"].output_shapes == [(2,)]
    # The inner graph's own nodes are shaped too.
    assert outer.nodes["b1"].nodes["fc"].output_shapes == [(6,)]
    assert outer.nodes["b1"].stateful and not Graph({"i": ir.Input(shape=(1,))}).stateful
    assert outer.nodes["b1"].type_name == "Graph" and ir.get_node_class("Graph") is Graph


def test_nested_graph_shape_errors():
    outer = Graph({"input": ir.Input(shape=(5,)), "b1": block(4, 6), "output": ir.Output()}, [("input", "b1"), ("b1", "output")])
    raises(["'b1'", "(5,)"], outer.validate)
    broken = block(4, 6)
    broken.edges.append(("fc", "nowhere"))
    outer = Graph({"input": ir.Input(shape=(4,)), "b1": broken, "output": ir.Output()}, [("input", "b1"), ("b1", "output")])
    raises(["'b1'", "'nowhere'"], outer.validate)


def test_nested_graph_with_two_outputs_routes_by_edge_order():
    inner = Graph({"in": ir.Input(shape=(4,)), "fa": affine(2, 4), "fb": affine(3, 4), "oa": ir.Output(), "ob": ir.Output()},
                  [("in", "fa"), ("in", "fb"), ("fa", "oa"), ("fb", "ob")])
    outer = Graph({"input": ir.Input(shape=(4,)), "blk": inner, "x": ir.ReLU(), "y": ir.Tanh(), "output": ir.Output(), "o2": ir.Output()},
                  [("input", "blk"), ("blk", "x"), ("blk", "y"), ("x", "output"), ("y", "o2")]).validate()
    assert inner.num_outputs == 2
    assert outer.nodes["x"].output_shape == (2,) and outer.nodes["y"].output_shape == (3,)


def test_subgraph_is_an_independent_copy():
    g = recurrent()
    g.metadata["k"] = {"v": [1]}
    sub = g.subgraph(["rec", "lif", "fc_in"])
    assert list(sub.nodes) == ["fc_in", "lif", "rec"]  # graph order, not argument order
    assert sub.edges == [("fc_in", "lif"), ("lif", "rec"), ("rec", "lif")]
    assert sub.dt == g.dt and sub.metadata == g.metadata
    assert sub.nodes["rec"] == g.nodes["rec"] and sub.nodes["rec"] is not g.nodes["rec"]
    sub.nodes["rec"].weight[0, 0] += 1
    sub.metadata["k"]["v"].append(2)
    assert g.nodes["rec"] != sub.nodes["rec"] and g.metadata["k"]["v"] == [1]
    assert sub.cycles() == [["lif", "rec"]]


def test_copy_is_independent():
    g = recurrent()
    g.metadata.update(a={"b": [1, 2]}, arr=np.arange(3))
    g.extras["cyclic_config"] = {"max_iterations": 5}
    c = g.copy()
    assert c == g and c is not g
    c.nodes["fc_in"].weight[0, 0] = 99.0
    c.metadata["a"]["b"].append(3)
    c.metadata["arr"][0] = 7
    c.extras["cyclic_config"]["max_iterations"] = 6
    c.add_node("extra", ir.ReLU())
    c.add_edge("fc_out", "extra")
    assert g.nodes["fc_in"].weight[0, 0] != 99.0
    assert g.metadata["a"]["b"] == [1, 2] and g.metadata["arr"][0] == 0
    assert g.extras["cyclic_config"]["max_iterations"] == 5
    assert "extra" not in g.nodes and len(g.edges) == 6
    assert c != g
    # Nested graphs are copied deeply too.
    outer = Graph({"input": ir.Input(shape=(4,)), "b": block(4, 2), "output": ir.Output()}, [("input", "b"), ("b", "output")])
    oc = outer.copy()
    oc.nodes["b"].nodes["fc"].bias[:] = 0
    assert outer.nodes["b"].nodes["fc"].bias.any() and oc != outer


def test_graph_equality():
    a, b = mlp(), mlp()
    assert a != b  # different random weights
    c = a.copy()
    assert a == c
    c.edges.reverse()
    assert a != c
    c = a.copy()
    c.dt = 0.5
    assert a != c
    c = a.copy()
    c.metadata["x"] = 1
    assert a != c
    # Node order matters.
    c = Graph({k: a.nodes[k] for k in reversed(list(a.nodes))}, a.edges)
    assert a != c
    assert a != "graph"
    with pytest.raises(TypeError):
        hash(a)
