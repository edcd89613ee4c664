"""The cost table: hand-computed counts for every modelled primitive, the registry and unknown types."""

from __future__ import annotations

import numpy as np
import pytest

from talon import ir
from talon.errors import GraphValidationError, TalonError
from talon.ir.node import Node, array, primitive
from talon.sdk import cost
from talon.sdk.cost import Counts, NodeCost, graph_costs, node_cost, register_cost

from sdk_graphs import build_hybrid, build_mlp, lif

f32 = np.float32


def z(*shape):
    return np.zeros(shape, f32)


def test_affine_counts_params_macs_flops_fan():
    c = node_cost(ir.Affine(weight=z(3, 4), bias=z(3)), [(4,)])
    assert (c.params, c.param_bytes, c.weight_elements) == (15, 60, 12)
    assert (c.macs, c.event_macs, c.flops, c.synapses) == (12, 12, 24, 12)
    assert (c.input_elements, c.activation_elements, c.fan_in, c.fan_out) == (4, 3, 4.0, 3.0)
    assert c.modelled and not c.view and not c.spiking


def test_dense_on_leading_positions():
    # Linear on a (5, 4) sample: 5 positions, no bias
    c = node_cost(ir.Linear(weight=z(3, 4)), [(5, 4)])
    assert (c.params, c.macs, c.flops, c.activation_elements) == (12, 60, 120, 15)


def test_conv2d_padding_stride_groups():
    conv = ir.Conv2d(weight=z(16, 1, 3, 3), bias=z(16), padding=(1, 1))
    c = node_cost(conv, [(1, 28, 28)])
    assert (c.params, c.macs, c.flops, c.activation_elements) == (160, 112_896, 225_792, 12_544)
    # groups=2, stride 2: out (4, 4, 4), each output sees 2 channels * 9 taps
    grouped = ir.Conv2d(weight=z(4, 2, 3, 3), bias=z(4), stride=(2, 2), padding=(1, 1), groups=2)
    c = node_cost(grouped, [(4, 8, 8)])
    assert c.activation_elements == 64 and c.macs == 64 * 18 and c.fan_in == 18.0
    assert c.fan_out == pytest.approx(64 * 18 / 256)


def test_conv1d_and_sepconv():
    c = node_cost(ir.Conv1d(weight=z(8, 2, 5), bias=z(8)), [(2, 20)])
    assert c.activation_elements == 8 * 16 and c.macs == 8 * 16 * 10
    sep = ir.SepConv2d(depthwise_weight=z(3, 1, 3, 3), depthwise_bias=z(3), pointwise_weight=z(6, 3, 1, 1), pointwise_bias=z(6))
    c = node_cost(sep, [(3, 10, 10)])
    dw, pw = 3 * 8 * 8 * 9, 6 * 8 * 8 * 3
    assert (c.macs, c.event_macs, c.flops, c.weight_elements) == (dw + pw, dw, 2 * (dw + pw), 27 + 18)
    assert c.fan_out == dw / 300


@pytest.mark.parametrize(
    "node, shape, flops",
    [
        (ir.ReLU(), (2, 3), 6),
        (ir.ReLU(negative_slope=0.1), (2, 3), 12),
        (ir.Sigmoid(), (5,), 20),
        (ir.Tanh(), (5,), 20),
        (ir.ELU(), (5,), 20),
        (ir.GELU(), (5,), 40),
        (ir.Softmax(), (5,), 25),
        (ir.PReLU(weight=z(1)), (5,), 10),
        (ir.Scale(scale=z(5)), (5,), 5),
        (ir.Threshold(v_threshold=z(1)), (5,), 5),
    ],
)
def test_elementwise_flops(node, shape, flops):
    c = node_cost(node, [shape])
    assert c.flops == flops and c.macs == 0 and c.activation_elements == int(np.prod(shape))


def test_pooling_and_upsample():
    assert node_cost(ir.MaxPool2d(kernel_size=2, stride=2), [(16, 28, 28)]).flops == 3136 * 3
    assert node_cost(ir.AvgPool2d(kernel_size=3, stride=1), [(1, 5, 5)]).flops == 9 * 9
    assert node_cost(ir.SumPool2d(kernel_size=2, stride=2), [(2, 4, 4)]).flops == 8 * 3
    assert node_cost(ir.Upsample(scale_factor=2), [(2, 3, 3)]).flops == 0
    assert node_cost(ir.Upsample(size=(6, 6), mode="bilinear"), [(2, 3, 3)]).flops == 7 * 72
    assert node_cost(ir.MaxPool2d(kernel_size=2, stride=2), [(1, 4, 4)]).passes_spikes


def test_norms():
    bn = ir.BatchNorm2d(num_features=4, weight=z(4), bias=z(4), running_mean=z(4), running_var=np.ones(4, f32))
    c = node_cost(bn, [(4, 5, 5)])
    assert (c.params, c.flops) == (16, 200)
    ln = ir.LayerNorm(normalized_shape=(6,), weight=z(6), bias=z(6))
    assert node_cost(ln, [(2, 6)]).flops == 7 * 12


def test_views_and_structure():
    for node, shape in [(ir.Flatten(), (2, 3)), (ir.Output(), (3,)), (ir.Dropout(), (3,)), (ir.HybridRegion(), (3,))]:
        c = node_cost(node, [shape])
        assert c.view and c.flops == 0 and c.passes_spikes
    assert node_cost(ir.Skip(skip_type="passthrough"), [(3,)]).view
    res = node_cost(ir.Skip(), [(3,), (3,), (3,)])
    assert res.flops == 6 and not res.view
    cat = node_cost(ir.Concat(num_inputs=2), [(3,), (2,)])
    assert cat.activation_elements == 5 and cat.input_elements == 5 and cat.flops == 0
    split = node_cost(ir.ChannelSplit(split_sections=(2, 1)), [(3,)])
    assert split.activation_elements == 3 and split.view
    inp = node_cost(ir.Input(shape=(3, 2)))
    assert inp.activation_elements == 6 and not inp.view


def test_neurons():
    c = node_cost(lif(64), [(64,)])
    # four constants, each equal over the 64 neurons: counted at the shape they vary over (a scalar each)
    assert (c.neurons, c.state_elements, c.flops, c.params, c.param_bytes) == (64, 64, 384, 4, 16)
    assert c.spiking and c.stateful
    # two inputs add one add per neuron; reset_mode none drops the reset op
    c = node_cost(lif(4, reset_mode="none"), [(4,), (4,)])
    assert c.flops == 4 * 5 + 4
    f64 = lambda n: np.ones(n)  # noqa: E731  (float64 constants count 8 bytes)
    iff = ir.IF(v_threshold=f64(3))
    c = node_cost(iff, [(3,)])
    assert (c.neurons, c.state_elements, c.flops, c.param_bytes) == (3, 3, 12, 8)  # one float64 threshold
    cuba = ir.CubaLIF(tau_syn=f64(2), tau_mem=f64(2), r=f64(2), v_leak=f64(2), v_threshold=f64(2))
    c = node_cost(cuba, [(2,)])
    assert (c.neurons, c.state_elements, c.flops) == (2, 4, 18)
    li = ir.LI(tau=f64(1), r=f64(1), v_leak=f64(1))
    assert (node_cost(li, [(5,)]).state_elements, node_cost(li, [(5,)]).flops) == (5, 20)
    integ = ir.Integrator(r=f64(1))
    assert node_cost(integ, [(5,)]).flops == 10
    thr = node_cost(ir.Threshold(v_threshold=z(1)), [(5,)])
    assert thr.neurons == 5 and thr.state_elements == 0 and thr.spiking


def test_delay_state_is_a_ring_buffer_per_element():
    d = ir.Delay(delay=np.array([1, 2, 3]))
    c = node_cost(d, [(3,)])
    assert c.state_elements == 6 and c.stateful and c.params == 3 and c.param_bytes == 24


def test_node_cost_uses_inferred_shapes_and_complains_without():
    g = build_mlp()
    with pytest.raises(GraphValidationError, match="no inferred shapes"):
        node_cost(g.nodes["fc1"])
    g2 = g.copy()
    g2.infer_shapes()
    assert node_cost(g2.nodes["fc1"]).macs == 12


def test_graph_costs_do_not_touch_the_graph():
    g = build_hybrid()
    costs = graph_costs(g)
    assert list(costs) == list(g.nodes)
    assert sum(c.macs for c in costs.values()) == 314_240
    assert all(n.input_shapes is None for n in g.nodes.values())


def test_nested_graph_costs_the_sum_of_its_nodes():
    inner = build_mlp()
    outer = ir.Graph({"x": ir.Input(shape=(4,)), "block": inner, "y": ir.Output()})
    outer.chain("x", "block", "y")
    c = graph_costs(outer)["block"]
    assert (c.params, c.macs, c.neurons, c.state_elements) == (31, 18, 5, 5)
    assert c.activation_elements == 2 and c.modelled


def test_unknown_type_gets_documented_zero_compute_entry(registries):
    @primitive(name="SdkTestMystery")
    class Mystery(Node):
        gain: np.ndarray = array()

    c = node_cost(Mystery(gain=z(7)), [(7,)])
    assert not c.modelled and c.params == 7 and c.activation_elements == 7 and c.macs == 0 and c.flops == 0


def test_register_cost_for_a_user_primitive(registries):
    @primitive(name="SdkTestDoubler")
    class Doubler(Node):
        gain: np.ndarray = array()

    @register_cost("SdkTestDoubler", weight_fields=("gain",), formula="flops = n")
    def _rule(node, ins, outs):
        return Counts(flops=int(np.prod(outs[0])))

    c = node_cost(Doubler(gain=z(3)), [(3,)])
    assert c.modelled and c.flops == 3 and c.weight_elements == 3
    with pytest.raises(TalonError, match="already registered"):
        register_cost("SdkTestDoubler", _rule)
    register_cost("SdkTestDoubler", _rule, replace=True)
    assert cost.cost_entry("SdkTestDoubler").formula == ""


def test_every_builtin_primitive_with_a_shape_rule_has_an_entry():
    storage_only = {"SGhostConv", "SGhostEncoderLite", "GhostBasicBlock1", "GhostBasicBlock2", "SDDetect", "DFLDecode", "Dist2BBox", "NMS", "Graph"}
    # Built-in primitives only: other test modules register user-defined primitives of their own.
    from talon.ir.primitives import __all__ as builtin

    missing = [t for t in builtin if t != "RESET_MODES" and t not in storage_only and cost.cost_entry(t) is None]
    assert missing == []


def test_quantized_bytes():
    a = ir.Affine(weight=z(3, 5), bias=z(3))
    assert cost.quantized_bytes(a, 8) == 15 + 4 + 12
    assert cost.quantized_bytes(a, 4) == 8 + 4 + 12  # 60 bits -> 8 bytes


def test_nodecost_is_frozen():
    c = NodeCost("X")
    with pytest.raises(Exception):
        c.macs = 3  # type: ignore[misc]


def test_every_entry_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "cost_model.md").read_text()
    for type_name in cost.cost_table():
        cls = ir.get_node_class(type_name)  # the built-ins (other tests register user types, some costed by traits)
        if not type_name.startswith("Sdk") and cls is not None and cls.__module__.startswith("talon."):
            assert f"`{type_name}`" in doc, type_name


def test_in_place_flag():
    """Elementwise nodes may overwrite their input (profile's in-place advice reads this, not a type list)."""
    for node in (ir.ReLU(), ir.Sigmoid(), ir.Scale(scale=np.ones(4, np.float32)), ir.Threshold(v_threshold=np.ones(4, np.float32))):
        assert node_cost(node, [(4,)]).in_place, node.type_name
    for node in (ir.Softmax(), ir.Flatten(), ir.Affine(weight=z(4, 4), bias=z(4))):
        assert not node_cost(node, [(4,)]).in_place, node.type_name
