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
    assert d.arrays_compared == 12 and d.arrays_not_compared == []  # 2 x (weight, bias) + 2 x (tau, r, v_leak, v_threshold)
    assert "identical" in str(d) and "max weight difference 0 over 12 compared arrays" in str(d)
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


def test_type_change_still_compares_shared_arrays():
    """Affine -> SpikingAffine (convert_to_spiking + quantize_weights): weight and bias are compared across
    the type change, and the reported max difference is the one two SpikingAffine versions give."""
    from talon.sdk import convert_to_spiking, quantize_weights

    a = build_mlp()
    spiking = convert_to_spiking(a)
    quantized = quantize_weights(spiking)
    across = compare_graphs(a, quantized)
    same_type = compare_graphs(spiking, quantized)
    assert same_type.max_weight_diff > 0
    assert across.max_weight_diff == same_type.max_weight_diff
    assert across.arrays_compared == same_type.arrays_compared == 12  # 2 x (weight, bias) + 2 x (tau, r, v_leak, v_threshold)
    fc1 = across.nodes_modified["fc1"]
    assert (fc1.type_a, fc1.type_b) == ("Affine", "SpikingAffine")
    assert fc1.fields == ["<type>", "weight"]
    kinds = {d.field: d for d in fc1.diffs}
    assert kinds["weight"].kind == "values" and kinds["weight"].max_abs_diff == pytest.approx(
        float(np.abs(a.nodes["fc1"].weight.astype(np.float64) - quantized.nodes["fc1"].weight).max())
    )
    assert "shared arrays compared: weight, bias" in kinds["<type>"].detail
    assert "only in SpikingAffine: weight_bits, accumulator_bits, spike_mode" in kinds["<type>"].detail
    text = across.summary()
    assert f"max weight difference {across.max_weight_diff:.3g} over 12 compared arrays (tolerance 0)" in text
    assert "max weight difference 0 " not in text
    # within a tolerance above the quantisation error, only the type change remains
    loose = compare_graphs(a, quantized, tolerance=1.0)
    assert loose.nodes_modified["fc1"].fields == ["<type>"] and not loose.identical


def test_arrays_not_compared_are_named_never_reported_as_zero():
    a = build_mlp()
    b = build_mlp()
    b.nodes["fc2"] = ir.Linear(weight=np.ascontiguousarray(b.nodes["fc2"].weight.T))  # shape (2, 3) -> (3, 2)
    d = compare_graphs(a, b)
    assert d.arrays_not_compared == ["fc2.weight (shape (2, 3) -> (3, 2))", "fc2.bias (only in Affine)"]
    fc2 = d.nodes_modified["fc2"]
    assert [x.kind for x in fc2.diffs] == ["type", "shape"]
    assert "no shared array compared" in fc2.diffs[0].detail
    assert "not compared: fc2.weight (shape (2, 3) -> (3, 2)), fc2.bias (only in Affine)" in d.summary()

    def io_only():
        g = ir.Graph({"i": ir.Input(shape=(2,)), "o": ir.Output()})
        g.chain("i", "o")
        return g

    d = compare_graphs(io_only(), io_only())
    assert d.identical and d.arrays_compared == 0 and d.max_weight_diff is None
    assert "no arrays compared" in d.summary() and "difference 0" not in d.summary()


def test_nested_graphs_count_their_arrays():
    def outer(inner):
        g = ir.Graph({"i": ir.Input(shape=(4,)), "blk": inner, "o": ir.Output()})
        g.chain("i", "blk", "o")
        return g

    a, b = build_mlp(), build_mlp()
    b.nodes["fc1"] = b.nodes["fc1"].replace(weight=b.nodes["fc1"].weight + f32(0.5))
    d = compare_graphs(outer(a), outer(b))
    assert d.arrays_compared == 12 and d.max_weight_diff == pytest.approx(0.5)
    assert d.nodes_modified["blk"].diffs[0].kind == "graph"
    flat = outer(ir.Affine(weight=np.ones((2, 4), f32), bias=np.zeros(2, f32)))
    d = compare_graphs(outer(a), flat)
    assert d.arrays_compared == 0 and d.max_weight_diff is None
    assert d.arrays_not_compared == ["blk.weight (only in B: Graph -> Affine)", "blk.bias (only in B: Graph -> Affine)"]
    assert "nothing compared" in d.nodes_modified["blk"].diffs[0].detail


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
