"""analyze_graph and profile_graph: hand-computed numbers for small graphs and the tutorial's hybrid."""

from __future__ import annotations

import numpy as np
import pytest

from talon import ir
from talon.errors import GraphValidationError, TalonError
from talon.sdk import analyze_graph, graph_costs, profile_graph
from talon.sdk.profile import spike_driven_layers

from sdk_graphs import affine, build_hybrid, build_mlp, lif

f32 = np.float32


def test_mlp_every_count():
    s = analyze_graph(build_mlp())
    # fc1 12+3, fc2 6+2; each LIF holds 4 arrays of equal values: 4 constants at the shape they vary over
    assert s.total_params == 31 and s.total_bytes == 124
    assert s.neuron_params == 4 + 4  # what torch's parameters() would leave out: 31 - 8 = fc1 15 + fc2 8
    assert "8 of them neuron constants" in s.summary()
    assert s.total_macs == 18 and s.total_synapses == 18
    # 2*12 + 6*3 + 2*6 + 6*2
    assert s.total_flops == 66
    assert (s.depth, s.width, s.num_nodes, s.num_edges) == (5, 1, 6, 5)
    assert s.type_counts == {"Input": 1, "Affine": 2, "LIF": 2, "Output": 1}
    assert s.input_shapes == {"inp": (4,)} and s.output_shapes == {"out": (2,)}
    assert (s.num_neurons, s.num_spiking_layers, s.num_stateful_layers) == (5, 2, 2)
    assert s.layers["fc2"].macs == 6 and s.layers["fc2"].input_shapes == [(3,)]
    assert s.layers["lif1"].state_elements == 3


def test_hybrid_matches_the_issue():
    s = analyze_graph(build_hybrid())
    assert s.total_macs == 314_240
    assert [s.layers[n].macs for n in ("conv1", "fc1", "fc2")] == [112_896, 200_704, 640]
    assert s.total_params == 160 + 200_768 + 4 + 650  # the LIF's four constants, equal over its 64 neurons
    assert s.total_bytes == 4 * s.total_params
    assert s.total_flops == 225_792 + 12_544 + 9_408 + 401_408 + 384 + 1_280
    assert s.depth == 8 and s.width == 1
    assert list(s.type_counts.items()) == [
        ("Input", 1), ("Conv2d", 1), ("ReLU", 1), ("MaxPool2d", 1), ("Flatten", 1), ("Affine", 2), ("LIF", 1), ("Output", 1)
    ]
    assert s.num_neurons == 64 and s.num_spiking_layers == 1
    assert "314,240 MACs" in s.summary()


def branching() -> ir.Graph:
    """input(10) -> a, b (Affine 20x10 each) -> residual add -> out."""
    rng = np.random.default_rng(1)
    g = ir.Graph({"input": ir.Input(shape=(10,)), "a": affine(20, 10, rng), "b": affine(20, 10, rng), "add": ir.Skip(), "out": ir.Output()})
    for e in [("input", "a"), ("input", "b"), ("a", "add"), ("b", "add"), ("add", "out")]:
        g.add_edge(*e)
    return g


def test_depth_and_width_of_a_branching_graph():
    s = analyze_graph(branching())
    assert (s.depth, s.width) == (3, 2)
    assert s.total_flops == 2 * 2 * 200 + 20


def test_analyze_raises_on_unshapeable_graph():
    g = build_mlp()
    g.nodes["fc2"] = ir.Affine(weight=np.zeros((2, 5), f32), bias=np.zeros(2, f32))
    with pytest.raises(GraphValidationError, match="fc2"):
        analyze_graph(g)


def test_rejects_other_arguments():
    with pytest.raises(TalonError, match="Graph or a path"):
        analyze_graph(42)  # type: ignore[arg-type]


# -- profile -------------------------------------------------------------------------------------
def test_hybrid_profile():
    p = profile_graph(build_hybrid())
    assert p.weight_memory == 806_328
    # peak: conv1 output and relu output live together, 2 * 12,544 float32
    assert p.activation_memory == 2 * 12_544 * 4 and p.peak_activation_node == "relu"
    assert p.state_memory == 64 * 4
    assert p.total_memory == p.weight_memory + p.activation_memory + p.state_memory
    assert p.mac_ops == 314_240
    assert p.spike_events == 64
    assert p.spike_ops == 640 and p.spike_driven_layers == ["fc2"]  # 64 spiking neurons x fan-out 10
    assert spike_driven_layers(build_hybrid()) == ["fc2"]  # the same list without the rest of the profile
    assert p.largest_layer == "fc1" and p.largest_layer_params == 200_768
    # 8-bit: weights packed 1 byte each + a 4-byte scale per tensor; biases as stored, the LIF's constants
    # at the shape they vary over (four float32 scalars)
    w8 = (144 + 4) + 64 + (200_704 + 4) + 256 + 16 + (640 + 4) + 40
    assert p.quantized_weight_memory[8] == w8
    assert p.quantized_weight_memory[4] == (72 + 4) + 64 + (100_352 + 4) + 256 + 16 + (320 + 4) + 40
    assert p.quantized_total_memory[8] == w8 + p.activation_memory + p.state_memory


def test_hybrid_recommendations_follow_from_the_numbers():
    recs = profile_graph(build_hybrid()).recommendations
    text = "\n".join(recs)
    assert "'fc1' holds 100% of the parameters" in text
    assert "806,328 to 201,876 bytes" in text
    assert "in place would save 50,176 bytes" in text
    assert "0.2% of MACs (640 of 314,240)" in text
    assert "'fc2'" in text and "convert_to_spiking" in text


def test_mlp_profile():
    p = profile_graph(build_mlp())
    assert p.activation_memory == 7 * 4  # input (4) and fc1 output (3) at fc1
    assert (p.state_memory, p.mac_ops, p.spike_ops, p.spike_events) == (20, 18, 6, 5)


def test_activation_peak_is_not_a_sum():
    p = profile_graph(branching())
    # at 'add': a, b and add's output are live (input already freed): 60 elements
    assert p.activation_memory == 60 * 4 and p.peak_activation_node == "add"
    total_activations = 10 + 20 + 20 + 20
    assert p.activation_memory < total_activations * 4
    assert profile_graph(branching(), activation_bytes=1).activation_memory == 60


def recurrent() -> ir.Graph:
    """input(3) -> fc -> lif -> out, and lif -> rec -> lif (the recurrent loop; lif sums both inputs)."""
    rng = np.random.default_rng(2)
    g = ir.Graph({"input": ir.Input(shape=(3,)), "fc": affine(3, 3, rng), "lif": lif(3), "rec": affine(3, 3, rng), "out": ir.Output()})
    for e in [("input", "fc"), ("fc", "lif"), ("rec", "lif"), ("lif", "out"), ("lif", "rec")]:
        g.add_edge(*e)
    return g


def test_recurrent_graph_profile():
    g = recurrent()
    assert g.delayed_edges() == [4]
    assert g.topological_order() == ["input", "fc", "rec", "lif", "out"]
    p = profile_graph(g)
    # lif's output is read next step through the delayed edge, so it is live all step (3 elements);
    # at 'fc': that, the input and fc's output
    assert p.activation_memory == 9 * 4 and p.peak_activation_node == "fc"
    assert p.spike_ops == 9 and p.spike_driven_layers == ["rec"]
    assert spike_driven_layers(g) == spike_driven_layers(g, graph_costs(g)) == ["rec"]
    assert p.state_memory == 12
    s = analyze_graph(g)
    assert (s.depth, s.width) == (3, 2)  # the delayed edge is not followed; input and rec share level 0


def test_budget_recommendations():
    g = build_hybrid()
    over = profile_graph(g, memory_budget=500_000).recommendations[-1]
    assert "exceeds the budget of 500,000" in over and "fits with 8-bit weights" in over
    never = profile_graph(g, memory_budget=100_000).recommendations[-1]
    assert "do not make it fit" in never
    fits = profile_graph(g, memory_budget=10_000_000).recommendations[-1]
    assert "fits the budget" in fits


def test_non_spiking_graph_recommendation_and_dropout_bn():
    rng = np.random.default_rng(0)
    g = ir.Graph({
        "x": ir.Input(shape=(4,)), "fc": affine(4, 4, rng), "drop": ir.Dropout(),
        "bn": ir.BatchNorm1d(num_features=4, weight=np.ones(4, f32), bias=np.zeros(4, f32), running_mean=np.zeros(4, f32), running_var=np.ones(4, f32)),
        "y": ir.Output(),
    })
    g.chain(*g.nodes)
    text = "\n".join(profile_graph(g).recommendations)
    assert "no spiking layers" in text and "fold_batchnorm" in text and "remove 'drop'" in text


def test_path_arguments(tmp_path):
    path = tmp_path / "hybrid.t1c"
    ir.write(str(path), build_hybrid())
    assert analyze_graph(path).total_macs == 314_240
    assert profile_graph(str(path)).spike_ops == 640


def test_every_function_accepts_a_path(tmp_path):
    from talon import sdk

    path = tmp_path / "mlp.t1c"
    ir.write(str(path), build_mlp())
    g = build_mlp()
    assert sdk.lint_graph(path).codes == sdk.lint_graph(g).codes
    assert sdk.fingerprint_graph(str(path)) == sdk.fingerprint_graph(g)
    assert sdk.compare_graphs(path, g).identical
    assert sdk.inspect_node(path, "fc1").cost.macs == 12
    assert sdk.trace_path(path, "inp", "out")[-1] == "out"
    assert sdk.find_pattern(path, "Affine->LIF") == [("fc1", "lif1"), ("fc2", "lif2")]
    assert list(sdk.extract_subgraph(path, ["fc2"]).nodes) == ["lif1_input", "fc2", "fc2_output"]
    for transform in (sdk.convert_to_spiking, sdk.quantize_weights, sdk.fold_batchnorm, sdk.remove_dropout, sdk.prune_disconnected):
        assert isinstance(transform(path), ir.Graph)
    assert sdk.cost.graph_costs(path)["fc1"].macs == 12
