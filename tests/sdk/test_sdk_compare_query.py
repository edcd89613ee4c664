"""compare_graphs / assert_graphs_equal and the queries: inspect_node, trace_path, find_pattern, extract_subgraph."""

from __future__ import annotations

import numpy as np
import pytest

from talon import ir
from talon.errors import GraphValidationError, TalonError, TalonUsageError
from talon.sdk import (
    analyze_graph,
    assert_graphs_equal,
    compare_graphs,
    extract_subgraph,
    find_pattern,
    fingerprint_graph,
    inspect_node,
    trace_path,
)

from sdk_graphs import build_hybrid, build_mlp

f32 = np.float32


def test_identical_graphs():
    d = compare_graphs(build_mlp(), build_mlp())
    assert d.identical and not d.nodes_modified and d.max_weight_diff == 0.0
    assert "identical" in str(d)
    assert_graphs_equal(build_hybrid(), build_hybrid())


def test_added_removed_modified_with_fields():
    a, b = build_mlp(), build_mlp()
    w = b.nodes["fc1"].weight.copy()
    w[0, 0] += 0.25
    b.nodes["fc1"] = b.nodes["fc1"].replace(weight=w)
    b.nodes["lif2"] = b.nodes["lif2"].replace(reset_mode="subtract")
    b.add_node("extra", ir.ReLU())
    del a.nodes["out"]
    a.edges = [e for e in a.edges if "out" not in e]
    d = compare_graphs(a, b)
    assert not d.identical
    assert d.nodes_added == ["out", "extra"] and d.nodes_removed == []
    assert set(d.nodes_modified) == {"fc1", "lif2"}
    assert d.nodes_modified["fc1"].fields == ["weight"] and d.nodes_modified["lif2"].fields == ["reset_mode"]
    assert d.edges_added == [("lif2", "out")]
    assert d.max_weight_diff == pytest.approx(0.25)
    text = d.summary()
    assert "~ node fc1" in text and "1 of 12 elements differ" in text and "'zero' -> 'subtract'" in text
    with pytest.raises(AssertionError, match="graphs differ"):
        assert_graphs_equal(a, b)


def test_tolerance():
    a, b = build_mlp(), build_mlp()
    w = b.nodes["fc2"].weight + f32(1e-4)
    b.nodes["fc2"] = b.nodes["fc2"].replace(weight=w)
    assert not compare_graphs(a, b).identical
    d = compare_graphs(a, b, tolerance=1e-3)
    assert d.identical and d.tolerance == 1e-3 and 0 < d.max_weight_diff < 1e-3
    assert_graphs_equal(a, b, tolerance=1e-3)


def test_type_dtype_shape_and_dt_changes():
    a, b = build_mlp(), build_mlp()
    b.nodes["fc2"] = ir.Linear(weight=b.nodes["fc2"].weight)
    b.nodes["lif1"] = b.nodes["lif1"].replace(tau=b.nodes["lif1"].tau.astype(np.float64))
    b.dt = 0.5
    d = compare_graphs(a, b)
    assert d.nodes_modified["fc2"].type_b == "Linear" and d.nodes_modified["fc2"].diffs[0].kind == "type"
    assert d.nodes_modified["lif1"].diffs[0].kind == "dtype"
    assert d.dt == (1.0, 0.5)


def test_edge_order_and_node_order():
    def cat(order):
        g = ir.Graph({"a": ir.Input(shape=(2,)), "b": ir.Input(shape=(2,)), "c": ir.Concat(), "y": ir.Output()})
        for s in order:
            g.add_edge(s, "c")
        g.add_edge("c", "y")
        return g

    d = compare_graphs(cat("ab"), cat("ba"))
    assert not d.identical and d.edge_order_changed and not d.edges_added
    g = build_mlp()
    rev = ir.Graph({n: g.nodes[n] for n in reversed(list(g.nodes))}, g.edges)
    d = compare_graphs(g, rev)
    assert d.identical and d.node_order_changed


def test_identical_agrees_with_fingerprint():
    a = build_mlp()
    for b in (build_mlp(), build_mlp(seed=1), a.copy()):
        b.metadata["note"] = "ignored by both"
        assert compare_graphs(a, b).identical == (fingerprint_graph(a) == fingerprint_graph(b))
        assert compare_graphs(a, b).metadata_changed


def test_negative_zero_counts_as_a_difference():
    a = build_mlp()
    b = build_mlp()
    w = a.nodes["fc1"].weight.copy()
    w[0, 0] = 0.0
    a.nodes["fc1"] = a.nodes["fc1"].replace(weight=w)
    w2 = w.copy()
    w2[0, 0] = -0.0
    b.nodes["fc1"] = b.nodes["fc1"].replace(weight=w2)
    assert not compare_graphs(a, b).identical and fingerprint_graph(a) != fingerprint_graph(b)


# -- queries --------------------------------------------------------------------------------------
def test_inspect_node():
    info = inspect_node(build_hybrid(), "fc1")
    assert info.type_name == "Affine" and info.inputs == ["flatten"] and info.outputs == ["lif"]
    assert info.input_shapes == [(3136,)] and info.output_shapes == [(64,)]
    assert info.arrays["weight"].shape == (64, 3136) and info.arrays["weight"].dtype == "float32"
    assert info.cost.macs == 200_704
    lif_info = inspect_node(build_hybrid(), "lif")
    assert lif_info.stateful and lif_info.spiking and lif_info.fields["reset_mode"] == "zero"
    assert "fc1: Affine" in str(info)
    with pytest.raises(TalonUsageError, match="no node named 'nope'"):
        inspect_node(build_hybrid(), "nope")


def test_trace_path():
    g = build_hybrid()
    assert trace_path(g, "conv1", "lif") == ["conv1", "relu", "pool", "flatten", "fc1", "lif"]
    assert trace_path(g, "fc1", "fc1") == ["fc1"]
    assert trace_path(g, "lif", "conv1") == []


def test_find_pattern():
    g = build_hybrid()
    assert find_pattern(g, "Conv2d->ReLU->MaxPool2d") == [("conv1", "relu", "pool")]
    assert find_pattern(g, "Affine -> LIF") == [("fc1", "lif")]
    assert find_pattern(g, "Affine") == [("fc1",), ("fc2",)]
    assert find_pattern(g, "*->Output") == [("fc2", "output")]
    assert find_pattern(g, "LIF|ReLU->*") == [("relu", "pool"), ("lif", "fc2")]
    assert find_pattern(g, "Conv2d->LIF") == []
    with pytest.raises(TalonUsageError, match="unknown node type"):
        find_pattern(g, "Conv2D->LIF")
    with pytest.raises(TalonUsageError, match="malformed"):
        find_pattern(g, "Conv2d->")


def test_extract_subgraph_by_names_and_by_endpoints():
    g = build_hybrid()
    sub = extract_subgraph(g, ["fc1", "lif"])
    assert list(sub.nodes) == ["flatten_input", "fc1", "lif", "lif_output"]
    assert sub.nodes["flatten_input"].shape == (3136,)
    sub.validate()
    assert analyze_graph(sub).total_macs == 200_704
    same = extract_subgraph(g, start="fc1", end="lif")
    assert fingerprint_graph(same) == fingerprint_graph(sub)
    bare = extract_subgraph(g, ["conv1", "relu"], add_io=False)
    assert list(bare.nodes) == ["conv1", "relu"] and bare.edges == [("conv1", "relu")]
    assert g.nodes["fc1"] is not sub.nodes["fc1"]  # a copy
    with pytest.raises(TalonUsageError, match="no path"):
        extract_subgraph(g, start="lif", end="conv1")


def test_extract_subgraph_keeps_input_order_and_fresh_names():
    g = ir.Graph({"a": ir.Input(shape=(2,)), "b": ir.Input(shape=(3,)), "c": ir.Concat(), "r": ir.ReLU(), "y": ir.Output()})
    for e in [("b", "c"), ("a", "c"), ("c", "r"), ("r", "y")]:
        g.add_edge(*e)
    sub = extract_subgraph(g, ["c"])
    assert sub.edges[:2] == [("b", "c"), ("a", "c")]  # original Inputs keep their names
    assert analyze_graph(sub).output_shapes == {"c_output": (5,)}
    sub = extract_subgraph(g, ["r"])
    assert list(sub.nodes) == ["c_input", "r", "r_output"] and sub.nodes["c_input"].shape == (5,)
    g.add_node("c_input", ir.Input(shape=(1,)))  # a name already taken gets a suffix
    assert "c_input2" in extract_subgraph(g, ["r"]).nodes


def test_argument_errors_are_usage_errors_not_graph_errors():
    """A wrong argument is TalonUsageError (a TalonError and a ValueError); GraphValidationError is kept
    for graphs that are invalid, so `except GraphValidationError` no longer hides a caller's typo."""
    from talon.sdk import compare_graphs, lint_graph, quantize_weights, register_cost, stamp_graph
    from talon.sdk.cost import Counts

    g = build_hybrid()
    calls = [
        lambda: trace_path(g, "nope", "lif"),
        lambda: inspect_node(g, "nope"),
        lambda: find_pattern(g, "Conv2D->LIF"),
        lambda: find_pattern(g, "->"),
        lambda: extract_subgraph(g, ["fc1"], start="fc1", end="lif"),
        lambda: extract_subgraph(g, start="fc1"),
        lambda: extract_subgraph(g, start="lif", end="conv1"),
        lambda: extract_subgraph(g, ["fc1", "nope"]),
        lambda: lint_graph(g, ignore=["NOPE"]),
        lambda: quantize_weights(g, 1),
        lambda: quantize_weights(g, nodes=["nope"]),
        lambda: compare_graphs(g, g, tolerance=-1.0),
        lambda: stamp_graph(g, metadata={"k": [1, 2]}, git=False),
        lambda: register_cost("Affine", lambda node, ins, outs: Counts()),
        lambda: analyze_graph(42),
    ]
    for call in calls:
        with pytest.raises(TalonUsageError) as info:
            call()
        assert not isinstance(info.value, GraphValidationError), info.value
        assert isinstance(info.value, TalonError) and isinstance(info.value, ValueError)
