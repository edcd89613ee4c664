"""from_nir / to_nir: exact TALON -> NIR -> TALON round trips, NIR -> TALON mappings, refusals with reasons,
dt and batch-dimension handling, .nir files through talon.ir.read/write, and the optional dependency."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

nir = pytest.importorskip("nir")

import talon.ir as ir  # noqa: E402
from talon.errors import TalonFormatError  # noqa: E402
from talon.ir import Graph, from_nir, to_nir  # noqa: E402
from talon.ir.node import values_equal  # noqa: E402
from talon.ir.nir import NIRConversionError, NIRConversionWarning, is_nir_file, read_nir, write_nir  # noqa: E402

_rng = np.random.default_rng(42)


def f32(*shape):
    return _rng.standard_normal(shape).astype(np.float32)


def pos(*shape, dtype=np.float64):
    return _rng.uniform(2e-3, 2e-2, shape).astype(dtype)


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", NIRConversionWarning)  # a clean round trip warns about nothing
        return fn(*args, **kw)


def roundtrip(g: Graph, tmp_path=None, nir_type_check=True) -> Graph:
    back = quiet(from_nir, quiet(to_nir, g))
    assert_same(back, g)
    if tmp_path is not None:
        path = tmp_path / "model.nir"
        quiet(ir.write, path, g)
        assert_same(quiet(ir.read, path), g)
        if nir_type_check:
            nir.read(path)  # other tools read it with nir's type checking on
    return back


def assert_same(a: Graph, b: Graph) -> None:
    assert list(a.nodes) == list(b.nodes)
    for name in b.nodes:
        assert a.nodes[name] == b.nodes[name], f"node {name!r}: {a.nodes[name]!r} != {b.nodes[name]!r}"
        if isinstance(b.nodes[name], Graph):
            assert_same(a.nodes[name], b.nodes[name])
    assert a.edges == b.edges
    assert a.dt == b.dt and values_equal(a.metadata, b.metadata) and values_equal(a.extras, b.extras)
    assert a == b


def seq(*nodes, dt=1e-3, in_shape=(8,), **kw) -> Graph:
    names = ["input"] + [n for n, _ in nodes] + ["output"]
    all_nodes = {"input": ir.Input(shape=in_shape), **dict(nodes), "output": ir.Output()}
    return Graph(all_nodes, list(zip(names, names[1:])), dt=dt, **kw)


# ----------------------------------------------------------------------------------------------------
# TALON -> NIR -> TALON is exact
# ----------------------------------------------------------------------------------------------------


def test_mlp_with_every_dense_and_neuron_primitive_round_trips(tmp_path):
    n = 8
    g = seq(
        ("fc", ir.Affine(weight=f32(n, 8), bias=f32(n))),
        ("lif", ir.LIF(tau=pos(n), r=np.full(n, 1.5), v_leak=np.zeros(()), v_threshold=np.ones(1), v_reset=np.full(n, -0.1))),
        ("lin", ir.Linear(weight=f32(n, n))),
        ("cuba", ir.CubaLIF(tau_syn=pos(n, dtype=np.float32), tau_mem=np.array(5e-3), r=np.ones(n), v_leak=np.zeros(n),
                            v_threshold=np.full(n, 0.8), reset_mode="zero")),
        ("scale", ir.Scale(scale=np.float32(0.5))),
        ("if", ir.IF(v_threshold=np.ones(n), reset_mode="zero")),
        ("scale2", ir.Scale(scale=f32(n))),
        ("li", ir.LI(tau=pos(n), r=np.full(n, 2.0), v_leak=np.full(n, 0.1))),
        ("int", ir.Integrator(r=np.full((), 3.0))),
        ("thr", ir.Threshold(v_threshold=np.zeros(n))),
        ("delay", ir.Delay(delay=np.array([0, 1, 2, 3, 4, 5, 6, 7]))),
        ("delay1", ir.Delay(delay=np.array(2))),
        dt=1e-3,
    )
    back = roundtrip(g, tmp_path)
    assert back.dt == 1e-3
    lif = to_nir(g).nodes["lif"]
    assert isinstance(lif, nir.LIF) and lif.tau.shape == (n,) and np.all(lif.v_reset == -0.1)  # one value per neuron


def test_writing_for_another_time_unit_keeps_the_dynamics(tmp_path):
    """write_nir(..., dt=1e-4): the file is what a reader stepping by 1e-4 needs (snnTorch's importer):
    every neuron's per-step coefficients are the same, time constants scaled, delays still whole steps."""
    from talon.ir.primitives.neurons import coefficients

    n = 4
    g = seq(
        ("fc", ir.Affine(weight=f32(n, 8), bias=f32(n))),
        ("lif", ir.LIF(tau=np.array([2.0, 5.0, 10.0, 20.0]), r=np.full(n, 1.5), v_leak=np.zeros(()), v_threshold=np.ones(1))),
        ("cuba", ir.CubaLIF(tau_syn=np.full(n, 4.0, np.float32), tau_mem=np.array(5.0), r=np.ones(n), v_leak=np.zeros(n),
                            v_threshold=np.full(n, 0.8), reset_mode="zero")),
        ("if", ir.IF(v_threshold=np.ones(n), reset_mode="zero")),
        ("li", ir.LI(tau=np.full(n, 8.0), r=np.full(n, 2.0), v_leak=np.full(n, 0.1))),
        ("int", ir.Integrator(r=np.full((), 3.0))),
        ("delay", ir.Delay(delay=np.array(2))),
        dt=1.0,
    )
    path = tmp_path / "for_snntorch.nir"
    write_nir(path, g, dt=1e-4)
    raw = nir.read(str(path))
    assert float(raw.metadata["dt"]) == 1e-4
    assert np.allclose(raw.nodes["lif"].tau, g.nodes["lif"].tau * 1e-4)
    back = ir.read(path)
    assert back.dt == 1e-4 and np.array_equal(back.nodes["delay"].delay, g.nodes["delay"].delay)
    for name in ("lif", "cuba", "if", "li", "int"):
        want, got = coefficients(g.nodes[name], g.dt), coefficients(back.nodes[name], back.dt)
        for key in ("beta", "gain", "alpha", "gain_in", "leak"):
            a, b = getattr(want, key, None), getattr(got, key, None)
            assert (a is None) == (b is None), (name, key)
            if a is not None:
                np.testing.assert_allclose(np.broadcast_to(b, np.shape(a)) if np.ndim(b) < np.ndim(a) else b, a, rtol=1e-12, atol=1e-15, err_msg=f"{name}.{key}")
    with pytest.raises(NIRConversionError, match="dt must be a positive number"):
        to_nir(g, dt=0.0)


def test_conv_pool_flatten_round_trip(tmp_path):
    g = seq(
        ("conv", ir.Conv2d(weight=f32(4, 2, 3, 3), bias=f32(4), stride=(1, 2), padding=(1, 0), dilation=(1, 1))),
        ("gconv", ir.Conv2d(weight=f32(4, 2, 3, 3), bias=f32(4), padding=1, groups=2)),
        ("sconv", ir.SConv(weight=f32(4, 4, 1, 1), bias=f32(4))),
        ("sdconv", ir.SDConv(weight=f32(4, 1, 3, 3), bias=f32(4), padding=1, groups=4)),
        ("sum", ir.SumPool2d(kernel_size=(2, 1), stride=(2, 1), padding=(1, 0))),
        ("avg", ir.AvgPool2d(kernel_size=(2, 2), stride=(1, 1))),
        ("avg_nopad", ir.AvgPool2d(kernel_size=(1, 1), stride=(1, 1), count_include_pad=False)),
        ("sep", ir.SepConv2d(depthwise_weight=f32(4, 1, 3, 3), depthwise_bias=f32(4), pointwise_weight=f32(3, 4, 1, 1),
                             pointwise_bias=f32(3), padding=(1, 1))),
        ("lif", ir.LIF(tau=pos(3, 1, 1), r=np.ones(()), v_leak=np.zeros(()), v_threshold=np.ones(()), reset_mode="zero")),
        ("flat", ir.Flatten(start_dim=0)),
        ("fc", ir.Affine(weight=f32(5, 12), bias=f32(5))),
        in_shape=(2, 8, 5),
    )
    g.validate()
    # nir (<= 1.0.8) types grouped convolutions' inputs as C_in/groups, so its own reader's type check refuses them
    roundtrip(g, tmp_path, nir_type_check=False)
    ng = to_nir(g)
    assert isinstance(ng.nodes["sep"], nir.NIRGraph) and ng.nodes["lif"].tau.shape == (3, 4, 1)


def test_conv1d_round_trips(tmp_path):
    g = seq(("conv", ir.Conv1d(weight=f32(3, 2, 5), bias=f32(3), stride=2, padding=2, dilation=1)), ("flat", ir.Flatten()),
            in_shape=(2, 16))
    roundtrip(g, tmp_path)


@pytest.mark.parametrize("mode", ["none", "graded"])
@pytest.mark.parametrize("kind", ["LIF", "IF", "CubaLIF"])
def test_neurons_nir_lacks_round_trip_through_exact_compositions(kind, mode, tmp_path):
    n = 6
    extra = {"reset_mode": "none"} if mode == "none" else {"reset_mode": "zero", "graded_spikes_factor": 0.3}
    if kind == "LIF":
        node = ir.LIF(tau=pos(n), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.full(n, 0.25), **extra)
    elif kind == "IF":
        node = ir.IF(v_threshold=np.ones(n), r=np.full(n, 2.0), **extra)
    else:
        node = ir.CubaLIF(tau_syn=pos(n), tau_mem=pos(n), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                          w_in=np.full(n, 3.0), **extra)
    g = seq(("neuron", node), in_shape=(n,))
    roundtrip(g, tmp_path)
    sub = to_nir(g).nodes["neuron"]
    assert isinstance(sub, nir.NIRGraph)
    kinds = [type(v).__name__ for v in sub.nodes.values()]
    if mode == "none":
        assert kinds[2] == "Threshold" and kinds[1] == {"LIF": "LI", "IF": "I", "CubaLIF": "CubaLI"}[kind]
    else:
        assert kinds[1:3] == [kind, "Scale"]


def test_reset_delay_false_is_exported_when_it_changes_no_spike(tmp_path):
    node = ir.LIF(tau=pos(4), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4), reset_mode="zero", reset_delay=False)
    roundtrip(seq(("lif", node), in_shape=(4,)), tmp_path)
    bad = node.replace(v_reset=np.full(4, 0.5))
    with pytest.raises(NIRConversionError, match="reset_delay=False"):
        to_nir(seq(("lif", bad), in_shape=(4,)))


def test_identity_types_and_residual_sums_round_trip(tmp_path):
    g = Graph(
        {"input": ir.Input(shape=(6,)), "a": ir.Affine(weight=f32(6, 6), bias=f32(6)), "b": ir.Linear(weight=f32(6, 6)),
         "add": ir.Skip(skip_type="residual"), "drop": ir.Dropout(p=0.2), "marker": ir.HybridRegion(mode="ann", name="x"),
         "pass": ir.Skip(skip_type="passthrough"), "spk": ir.SpikingAffine(weight=f32(3, 6), bias=f32(3), weight_bits=4,
                                                                          accumulator_bits=12, hardware_hints={"core": 3}),
         "output": ir.Output(shape=(3,))},
        [("input", "a"), ("input", "b"), ("a", "add"), ("b", "add"), ("add", "drop"), ("drop", "marker"),
         ("marker", "pass"), ("pass", "spk"), ("spk", "output")],
        dt=0.5,
    )
    roundtrip(g, tmp_path)
    ng = to_nir(g)
    assert isinstance(ng.nodes["add"], nir.Scale) and np.all(ng.nodes["add"].scale == 1)
    assert isinstance(ng.nodes["spk"], nir.Affine)


def test_recurrent_and_nested_graphs_round_trip(tmp_path):
    n = 5
    inner = Graph(
        {"input": ir.Input(shape=(n,)), "lif": ir.LIF(tau=pos(n), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n)),
         "w_rec": ir.Linear(weight=f32(n, n)), "output": ir.Output(shape=(n,))},
        [("input", "lif"), ("w_rec", "lif"), ("lif", "w_rec"), ("lif", "output")],
        dt=1.0, metadata={"block": "rleaky"},
    )
    g = Graph(
        {"input": ir.Input(shape=(3,)), "fc": ir.Affine(weight=f32(n, 3), bias=f32(n)), "rlif": inner,
         "rec": ir.Affine(weight=f32(n, n), bias=f32(n)), "lif2": ir.LIF(tau=pos(n), r=np.ones(n), v_leak=np.zeros(n),
                                                                          v_threshold=np.ones(n), metadata={"k": (1, 2.5)}),
         "output": ir.Output()},
        [("input", "fc"), ("fc", "rlif"), ("rlif", "lif2"), ("lif2", "rec"), ("rec", "lif2"), ("lif2", "output")],
        dt=2e-4, metadata={"stamp": {"by": "test", "arr": np.arange(3)}}, extras={"target_hardware": "xylo"},
    )
    roundtrip(g, tmp_path)


def test_nir_graphs_from_other_tools_come_back_equivalent():
    """NIR -> TALON -> NIR gives the same primitives and parameters (names, edges and values)."""
    n = 4
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 6, 6])}),
        "conv": nir.Conv2d(input_shape=(6, 6), weight=f32(3, 2, 3, 3), stride=1, padding="same", dilation=1, groups=1, bias=f32(3)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([3, 3, 3])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=f32(n, 27), bias=f32(n)),
        "lif": nir.LIF(tau=pos(n), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n)),
        "cuba": nir.CubaLIF(tau_syn=pos(n), tau_mem=pos(n), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), w_in=2.0),
        "if": nir.IF(r=np.ones(n), v_threshold=np.ones(n)),
        "li": nir.LI(tau=pos(n), r=np.ones(n), v_leak=np.zeros(n)),
        "i": nir.I(r=np.ones(n)),
        "thr": nir.Threshold(threshold=np.zeros(n)),
        "delay": nir.Delay(delay=np.array([0.0, 1e-3, 2e-3, 3e-3])),
        "scale": nir.Scale(scale=f32(n)),
        "lin": nir.Linear(weight=f32(n, n)),
        "output": nir.Output(output_type={"output": np.array([n])}),
    }
    names = list(nodes)
    ng = nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])))
    g = from_nir(ng, dt=1e-3)
    assert [g.nodes[k].type_name for k in names] == ["Input", "Conv2d", "SumPool2d", "Flatten", "Affine", "LIF", "CubaLIF",
                                                     "IF", "LI", "Integrator", "Threshold", "Delay", "Scale", "Linear", "Output"]
    assert g.nodes["conv"].padding == (1, 1) and g.nodes["lif"].reset_mode == "zero" and g.nodes["delay"].delay.tolist() == [0, 1, 2, 3]
    assert g.nodes["output"].shape == (n,)
    back = to_nir(g)
    for name in names:
        a, b = ng.nodes[name], back.nodes[name]
        assert type(a) is type(b), name
        for field in ("weight", "bias", "tau", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in",
                      "threshold", "delay", "scale"):
            if hasattr(a, field):
                np.testing.assert_array_equal(np.asarray(getattr(b, field)), np.asarray(getattr(a, field)), err_msg=f"{name}.{field}")
    assert back.edges == ng.edges


def test_cubali_becomes_two_leaky_integrators():
    n = 3
    ng = nir.NIRGraph.from_list(nir.CubaLI(tau_syn=pos(n), tau_mem=pos(n), r=np.ones(n), v_leak=np.zeros(n), w_in=np.full(n, 2.0)))
    g = from_nir(ng, dt=1e-3)
    sub = g.nodes["cubali"]
    assert isinstance(sub, Graph) and [v.type_name for v in sub.nodes.values()] == ["Input", "LI", "LI", "Output"]
    assert np.array_equal(sub.nodes["synapse"].r, np.full(n, 2.0)) and sub.dt == 1e-3


def test_a_single_nir_node_is_wrapped_into_a_graph():
    g = from_nir(nir.LIF(tau=pos(3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)), dt=1e-3)
    assert [n.type_name for n in g.nodes.values()] == ["Input", "LIF", "Output"]


# ----------------------------------------------------------------------------------------------------
# What cannot convert exactly raises, naming the node and the reason
# ----------------------------------------------------------------------------------------------------


def _lif(n, **kw):
    return ir.LIF(tau=pos(n), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), **kw)


@pytest.mark.parametrize("node, in_shape, match", [
    (_lif(4, reset_mode="subtract"), (4,), "'lif'.*subtract"),
    (_lif(4, reset_mode="zero_post"), (4,), "zero_post"),
    (ir.CubaLIF(tau_syn=pos(4), tau_mem=pos(4), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4)), (4,), "zero_post"),
    (ir.MaxPool2d(kernel_size=2, stride=2), (1, 4, 4), "max pooling"),
    (ir.AvgPool2d(kernel_size=2, stride=2, ceil_mode=True), (1, 5, 5), "ceil_mode"),
    (ir.AvgPool2d(kernel_size=2, stride=2, padding=1, count_include_pad=False), (1, 4, 4), "count_include_pad"),
    (ir.ReLU(), (4,), "activation"),
    (ir.BatchNorm1d(num_features=4, weight=np.ones(4), bias=np.zeros(4), running_mean=np.zeros(4), running_var=np.ones(4)), (4,), "fold"),
    (ir.Affine(weight=f32(3, 4), bias=f32(3)), (2, 4), "rank-1"),
    (ir.Upsample(scale_factor=2), (1, 2, 2), "upsampling"),
], ids=lambda v: getattr(v, "type_name", None) if not isinstance(v, (tuple, str)) else None)
def test_to_nir_refuses_what_nir_cannot_express(node, in_shape, match):
    name = "lif"
    with pytest.raises(NIRConversionError, match=match):
        to_nir(seq((name, node), in_shape=in_shape))


def test_cycles_through_several_stateful_nodes_are_refused_both_ways():
    g = Graph({"input": ir.Input(shape=(3,)), "a": _lif(3), "b": ir.LI(tau=pos(3), r=np.ones(3), v_leak=np.zeros(3)),
               "output": ir.Output()}, [("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")])
    with pytest.raises(NIRConversionError, match="2 stateful nodes"):
        to_nir(g)
    ng = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                             "a": nir.LIF(tau=pos(3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)),
                             "b": nir.LI(tau=pos(3), r=np.ones(3), v_leak=np.zeros(3)),
                             "output": nir.Output(output_type={"output": np.array([3])})},
                      edges=[("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")], type_check=False)
    with pytest.raises(NIRConversionError, match="2 stateful nodes"):
        from_nir(ng, dt=1e-3)
    stateless = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}), "a": nir.Linear(weight=f32(3, 3)),
                                    "b": nir.Linear(weight=f32(3, 3)), "output": nir.Output(output_type={"output": np.array([3])})},
                             edges=[("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")], type_check=False)
    with pytest.raises(NIRConversionError, match="no stateful node"):
        from_nir(stateless, dt=1e-3)


def test_from_nir_refuses_what_talon_cannot_run_exactly():
    def one(node, shape=(4,)):
        return nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array(shape)}), "x": node,
                                   "output": nir.Output(output_type={"output": np.array(shape)})},
                            edges=[("input", "x"), ("x", "output")], type_check=False)

    with pytest.raises(NIRConversionError, match="whole number of steps"):
        from_nir(one(nir.Delay(delay=np.full(4, 1.5e-3))), dt=1e-3)
    conv = nir.Conv2d(input_shape=(4, 4), weight=f32(1, 1, 2, 2), stride=1, padding="same", dilation=1, groups=1, bias=f32(1))
    with pytest.raises(NIRConversionError, match="asymmetric"):
        from_nir(one(conv, (1, 4, 4)), dt=1e-3)
    from nir.ir.graph import Identity

    with pytest.raises(NIRConversionError, match="'Identity' has no TALON equivalent"):
        from_nir(one(Identity(input_type={"input": np.array([4])})), dt=1e-3)
    dup = one(nir.Scale(scale=np.ones(4)))
    dup.edges.append(("input", "x"))
    with pytest.raises(NIRConversionError, match="duplicate edge"):
        from_nir(dup, dt=1e-3)


def test_nested_graphs_with_several_inputs_are_refused():
    inner = Graph({"a": ir.Input(shape=(2,)), "b": ir.Input(shape=(2,)), "add": ir.Skip(), "out": ir.Output()},
                  [("a", "add"), ("b", "add"), ("add", "out")])
    g = Graph({"input": ir.Input(shape=(2,)), "sub": inner, "output": ir.Output()},
              [("input", "sub"), ("input", "sub"), ("sub", "output")])
    with pytest.raises(NIRConversionError, match="one Input and one"):
        to_nir(g)


# ----------------------------------------------------------------------------------------------------
# dt, batch dimensions, hints
# ----------------------------------------------------------------------------------------------------


def _lif_nir(n=3, tau=None):
    tau = pos(n) if tau is None else tau
    return nir.NIRGraph.from_list(nir.LIF(tau=tau, r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n)))


def test_dt_comes_from_the_argument_the_metadata_or_the_snntorch_default():
    ng = _lif_nir()
    with pytest.warns(NIRConversionWarning, match="dt=0.0001"):
        assert from_nir(ng).dt == 1e-4
    assert quiet(from_nir, ng, dt=5e-4).dt == 5e-4
    ng.metadata = {"dt": np.float64(2e-3)}
    assert quiet(from_nir, ng).dt == 2e-3
    assert quiet(from_nir, ng, dt=1e-3).dt == 1e-3
    with pytest.raises(NIRConversionError, match="positive"):
        from_nir(ng, dt=0.0)
    with pytest.warns(NIRConversionWarning, match="exceeds tau"):
        from_nir(_lif_nir(tau=np.full(3, 1e-3)), dt=2e-3)


def test_a_batch_dimension_leaked_into_input_types_is_dropped_with_a_warning():
    ng = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1, 4])}), "fc": nir.Affine(weight=f32(3, 4), bias=f32(3)),
                             "output": nir.Output(output_type={"output": np.array([1, 3])})},
                      edges=[("input", "fc"), ("fc", "output")], type_check=False)
    with pytest.warns(NIRConversionWarning, match="batch dimension"):
        g = from_nir(ng, dt=1e-3)
    assert g.nodes["input"].shape == (4,) and g.nodes["output"].shape == (3,)
    kept = quiet(from_nir, ng, dt=1e-3, strip_batch=False)
    assert kept.nodes["input"].shape == (1, 4) and kept.nodes["output"].shape == (1, 3)
    conv = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1, 2, 5, 5])}),
                               "conv": nir.Conv2d(input_shape=None, weight=f32(3, 2, 3, 3), stride=1, padding=0, dilation=1, groups=1, bias=f32(3)),
                               "output": nir.Output(output_type={"output": np.array([1, 3, 3, 3])})},
                        edges=[("input", "conv"), ("conv", "output")], type_check=False)
    with pytest.warns(NIRConversionWarning, match="batch dimension"):
        assert from_nir(conv, dt=1e-3).nodes["input"].shape == (2, 5, 5)


def test_scalar_parameters_with_empty_declared_types_import():
    """snnTorch's export with a scalar beta gives 0-d parameters, hence empty NIR types."""
    ng = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([4])}), "fc": nir.Affine(weight=f32(3, 4), bias=f32(3)),
                             "lif": nir.LIF(tau=np.array(2e-3), r=np.array(20.0), v_leak=np.array(0.0), v_threshold=np.array(1.0)),
                             "output": nir.Output(output_type={"output": np.array([])})},
                      edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False)
    g = quiet(from_nir, ng, dt=1e-4)
    assert g.nodes["output"].shape == (3,) and g.nodes["lif"].tau.size == 1


def test_a_hint_that_no_longer_matches_is_ignored_with_a_warning():
    g = seq(("lif", _lif(4, reset_mode="zero", reset_delay=False)), in_shape=(4,))
    ng = to_nir(g)
    ng.nodes["lif"].v_reset = np.full(4, 0.5, dtype=np.float64)  # edited elsewhere: reset_delay=False no longer exact
    with pytest.warns(NIRConversionWarning, match="hint"):
        back = from_nir(ng)
    assert back.nodes["lif"].reset_delay is True and np.all(back.nodes["lif"].v_reset == 0.5)


def test_foreign_metadata_is_kept_both_ways():
    ng = _lif_nir()
    ng.nodes["lif"].metadata = {"source": "norse", "version": np.int64(3)}
    ng.metadata = {"dt": 1e-3, "author": "x"}
    g = quiet(from_nir, ng)
    assert g.nodes["lif"].metadata == {"nir_metadata": {"source": "norse", "version": 3}}
    assert g.metadata["nir_metadata"]["author"] == "x"
    back = to_nir(g)
    assert back.nodes["lif"].metadata["source"] == "norse" and back.metadata["author"] == "x"


# ----------------------------------------------------------------------------------------------------
# Files and the optional dependency
# ----------------------------------------------------------------------------------------------------


def test_nir_files_written_by_nir_read_by_extension_or_content(tmp_path):
    ng = _lif_nir(4)
    nir.write(tmp_path / "m.nir", ng)
    (tmp_path / "m.nir").rename(tmp_path / "m.h5")
    assert is_nir_file(tmp_path / "m.h5") and not is_nir_file(tmp_path / "missing.h5")
    with pytest.warns(NIRConversionWarning, match="dt="):
        g = ir.read(tmp_path / "m.h5")
    assert [n.type_name for n in g.nodes.values()] == ["Input", "LIF", "Output"]  # HDF5 sorts names; order is rebuilt
    assert quiet(read_nir, tmp_path / "m.h5", dt=1e-3).dt == 1e-3


def test_talon_write_of_a_nir_path_is_a_nir_file(tmp_path):
    g = seq(("fc", ir.Affine(weight=f32(3, 8), bias=f32(3))), in_shape=(8,))
    ir.write(tmp_path / "m.nir", g)
    import h5py

    with h5py.File(tmp_path / "m.nir") as f:
        assert "node" in f and "graph" not in f
    assert isinstance(nir.read(tmp_path / "m.nir"), nir.NIRGraph)
    ir.write(tmp_path / "m.t1c", ir.read(tmp_path / "m.nir"))  # what `talon convert model.nir -o model.t1c` does
    assert ir.read(tmp_path / "m.t1c") == g
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temporary file


def test_bad_nir_files_raise_format_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_nir(tmp_path / "nope.nir")
    (tmp_path / "junk.nir").write_bytes(b"not hdf5")
    with pytest.raises(TalonFormatError, match="junk.nir"):
        ir.read(tmp_path / "junk.nir")
    with pytest.raises(NIRConversionError, match="MaxPool2d"):
        write_nir(tmp_path / "x.nir", seq(("pool", ir.MaxPool2d(kernel_size=2, stride=2)), in_shape=(1, 4, 4)))
    assert not (tmp_path / "x.nir").exists()
