"""from_graph: neuron layers, units, reach (checked against brute force) and synapse counts from the cost table."""

import numpy as np
import pytest

from talon import ir
from talon.errors import MappingError
from talon.mapping import from_graph
from talon.sdk import cost

from mapping_helpers import affine, chain, dense_net, hw_small, lif


def dependency(graph, group_size=1):
    """(input elements x lif elements) bool reach of a two-layer graph built with group_size=1."""
    ng = from_graph(graph, group_size=group_size)
    n_in = int(ng.layer_start[1])
    return ng, ng.reach.toarray()[:n_in, n_in:]


def conv_pattern(c_in, h, w, c_out, k, stride=1, pad=0, dil=1, groups=1):
    ho = (h + 2 * pad - dil * (k - 1) - 1) // stride + 1
    wo = (w + 2 * pad - dil * (k - 1) - 1) // stride + 1
    dep = np.zeros((c_in * h * w, c_out * ho * wo), dtype=bool)
    per_in, per_out = c_in // groups, c_out // groups
    for co in range(c_out):
        g = co // per_out
        for oy in range(ho):
            for ox in range(wo):
                for ci in range(g * per_in, (g + 1) * per_in):
                    for ky in range(k):
                        for kx in range(k):
                            iy, ix = oy * stride + ky * dil - pad, ox * stride + kx * dil - pad
                            if 0 <= iy < h and 0 <= ix < w:
                                dep[(ci * h + iy) * w + ix, (co * ho + oy) * wo + ox] = True
    return dep, (c_out, ho, wo)


def conv_graph(c_in, h, w, c_out, k, stride=1, pad=0, dil=1, groups=1):
    rng = np.random.default_rng(0)
    conv = ir.Conv2d(
        weight=rng.normal(size=(c_out, c_in // groups, k, k)).astype(np.float32), bias=np.zeros(c_out, np.float32),
        stride=(stride, stride), padding=(pad, pad), dilation=(dil, dil), groups=groups,
    )
    _, out_shape = conv_pattern(c_in, h, w, c_out, k, stride, pad, dil, groups)
    return chain({"inp": ir.Input(shape=(c_in, h, w)), "conv": conv, "lif": lif(out_shape), "out": ir.Output()})


def test_dense_layers_sizes_synapses_and_reach():
    g = dense_net(4, 3, 2)
    ng = from_graph(g, group_size=1)
    assert ng.layer_names == ["inp", "lif0", "lif1"]
    assert list(np.diff(ng.layer_start)) == [4, 3, 2]
    # weights live with the postsynaptic layer; counts come from the cost table
    costs = cost.graph_costs(g)
    syn = np.add.reduceat(ng.unit_synapses, [0, 4, 7])
    assert list(syn) == [0, costs["fc0"].synapses, costs["fc1"].synapses] == [0, 12, 6]
    r = ng.reach.toarray()
    assert r[:4, 4:7].all() and not r[:4, 7:].any()
    assert r[4:7, 7:].all() and not r[4:7, :7].any()
    assert not r[7:].any()
    assert ng.unmapped == []
    assert g.nodes["lif0"].output_shapes is None  # the caller's graph is not touched


@pytest.mark.parametrize(
    "args",
    [
        (1, 5, 5, 2, 3, 1, 1, 1, 1),
        (2, 6, 5, 4, 3, 2, 0, 1, 2),
        (2, 7, 7, 2, 3, 1, 2, 2, 1),
        (3, 4, 4, 3, 1, 1, 0, 1, 3),
    ],
)
def test_conv2d_reach_matches_brute_force(args):
    _, dep = dependency(conv_graph(*args))
    want, _ = conv_pattern(*args)
    assert np.array_equal(dep, want)


def test_conv_pool_flatten_dense_chain():
    rng = np.random.default_rng(1)
    g = chain({
        "inp": ir.Input(shape=(1, 4, 4)),
        "conv": ir.Conv2d(weight=rng.normal(size=(2, 1, 3, 3)).astype(np.float32), bias=np.zeros(2, np.float32), padding=(1, 1)),
        "pool": ir.MaxPool2d(kernel_size=(2, 2), stride=(2, 2)),
        "lif": lif((2, 2, 2)),
        "out": ir.Output(),
    })
    _, dep = dependency(g)
    conv, _ = conv_pattern(1, 4, 4, 2, 3, 1, 1)
    pool = np.zeros((2 * 16, 2 * 4), dtype=bool)
    for c in range(2):
        for y in range(4):
            for x in range(4):
                pool[c * 16 + y * 4 + x, c * 4 + (y // 2) * 2 + x // 2] = True
    assert np.array_equal(dep, (conv.astype(int) @ pool.astype(int)) > 0)


def test_dense_with_leading_positions():
    g = chain({"inp": ir.Input(shape=(3, 4)), "fc": affine(5, 4), "lif": lif((3, 5)), "out": ir.Output()})
    _, dep = dependency(g)
    want = np.kron(np.eye(3, dtype=bool), np.ones((4, 5), dtype=bool))
    assert np.array_equal(dep, want)


def test_upsample_nearest():
    g = chain({"inp": ir.Input(shape=(1, 2, 2)), "up": ir.Upsample(scale_factor=2), "lif": lif((1, 4, 4)), "out": ir.Output()})
    _, dep = dependency(g)
    for y in range(4):
        for x in range(4):
            assert np.flatnonzero(dep[:, y * 4 + x]).tolist() == [(y // 2) * 2 + x // 2]


def test_concat_and_channel_split():
    g = ir.Graph({
        "a": ir.Input(shape=(2,)), "b": ir.Input(shape=(3,)), "cat": ir.Concat(num_inputs=2, dim=0),
        "fc": affine(6, 5), "split": ir.ChannelSplit(split_sections=(2, 4)),
        "la": lif(2), "lb": lif(4), "oa": ir.Output(), "ob": ir.Output(),
    }, [("a", "cat"), ("b", "cat"), ("cat", "fc"), ("fc", "split"), ("split", "la"), ("split", "lb"), ("la", "oa"), ("lb", "ob")])
    ng = from_graph(g, group_size=1)
    assert ng.layer_names == ["a", "b", "la", "lb"]
    r = ng.reach.toarray()
    assert r[:5, 5:].all()  # the dense layer mixes a and b into every output
    syn = np.add.reduceat(ng.unit_synapses, ng.layer_start[:-1])
    assert list(syn) == [0, 0, 10, 20]  # fc's 30 synapses split 2:4 between the two branches

    g2 = ir.Graph({
        "a": ir.Input(shape=(2,)), "b": ir.Input(shape=(3,)), "cat": ir.Concat(num_inputs=2, dim=0),
        "l": lif(5), "o": ir.Output(),
    }, [("a", "cat"), ("b", "cat"), ("cat", "l"), ("l", "o")])
    r2 = from_graph(g2, group_size=1).reach.toarray()
    assert np.array_equal(r2[:2, 5:], np.eye(5, dtype=bool)[:2]) and np.array_equal(r2[2:5, 5:], np.eye(5, dtype=bool)[2:])


def test_recurrent_layer_reaches_itself():
    g = ir.Graph({"inp": ir.Input(shape=(3,)), "fc_in": affine(4, 3), "l": lif(4), "fc_rec": affine(4, 4, seed=1), "out": ir.Output()},
                 [("inp", "fc_in"), ("fc_in", "l"), ("l", "fc_rec"), ("fc_rec", "l"), ("l", "out")])
    ng = from_graph(g, group_size=1)
    r = ng.reach.toarray()
    assert r[3:, 3:].all()
    assert int(ng.unit_synapses[3:].sum()) == 12 + 16


def test_readout_without_neurons_is_unmapped():
    g = dense_net(6, 4)
    g.nodes["fc_out"] = affine(2, 4, seed=5)
    g.edges = [e for e in g.edges if e != ("lif0", "out")] + [("lif0", "fc_out"), ("fc_out", "out")]
    ng = from_graph(g)
    assert ng.unmapped == ["fc_out"]
    assert ng.synapses == 24


def test_default_and_memory_limited_group_sizes():
    ng = from_graph(dense_net(40, 1000), hw_small())  # 256 neurons per core -> units of 16
    assert ng.unit_neurons.max() == 16
    # each lif neuron has 40 synapses = 40 bytes; 1/16 of a 320-byte core is 20 bytes -> 1 neuron per unit
    ng = from_graph(dense_net(40, 10), hw_small(weight_memory_bytes_per_core=320))
    assert list(ng.unit_neurons[-10:]) == [1] * 10


def test_units_shrink_to_meet_a_fan_in_limit():
    # a 3x3 convolution: one neuron reads 9 pixels, a unit of one 16-pixel row reads 3 rows (up to 48)
    g = conv_graph(1, 16, 16, 4, 3, 1, 1)
    assert from_graph(g, hw_small()).unit_neurons.max() == 16
    ng = from_graph(g, hw_small(max_fan_in=20))
    fan_in = np.bincount(ng.reach.indices, minlength=ng.num_units)
    assert fan_in.max() <= 20 and ng.unit_neurons.max() > 1
    # a dense layer: every neuron has the full fan-in; one halving shows it does not help, then it stops
    ng = from_graph(dense_net(64, 32), hw_small(max_fan_in=32))
    assert ng.unit_neurons[-4:].tolist() == [8, 8, 8, 8]


def test_rates():
    g = dense_net(4, 3)
    ng = from_graph(g, rates={"inp": 0.5, "lif0": np.array([0.1, 0.2, 0.3])})
    assert np.allclose(ng.rates, [0.5] * 4 + [0.1, 0.2, 0.3])
    assert np.allclose(from_graph(g).rates, 1.0)
    assert np.allclose(from_graph(g, rates=0.25).rates, 0.25)
    assert np.allclose(from_graph(g, rates={"lif0": 0.2}, default_rate=0.0).rates, [0] * 4 + [0.2] * 3)
    with pytest.raises(MappingError, match="not neuron layers"):
        from_graph(g, rates={"fc0": 1.0})
    with pytest.raises(MappingError, match="lif0"):
        from_graph(g, rates={"lif0": np.ones(5)})
    with pytest.raises(MappingError, match="rates"):
        from_graph(g, rates={"lif0": -1.0})


def test_unmappable_graphs():
    inner = dense_net(2, 2)
    outer = ir.Graph({"inp": ir.Input(shape=(2,)), "block": inner, "out": ir.Output()})
    outer.chain("inp", "block", "out")
    with pytest.raises(MappingError, match="nested Graph"):
        from_graph(outer)
    with pytest.raises(MappingError, match="no neuron layers|Input"):
        from_graph(ir.Graph())
    with pytest.raises(MappingError, match="Graph"):
        from_graph(42)  # a path is read (test_user_forms_s8_map.py); other objects are refused
