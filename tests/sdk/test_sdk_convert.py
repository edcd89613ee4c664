"""Transforms: convert_to_spiking, quantize_weights, fold_batchnorm, remove_dropout, prune_disconnected."""

from __future__ import annotations

import numpy as np
import pytest

from talon import ir
from talon.errors import GraphValidationError, TalonUsageError
from talon.sdk import (
    analyze_graph,
    compare_graphs,
    convert_to_spiking,
    fingerprint_graph,
    fold_batchnorm,
    lint_graph,
    prune_disconnected,
    quantize_weights,
    remove_dropout,
)

from sdk_graphs import affine, build_hybrid, build_mlp

f32 = np.float32


def unchanged(fn, g):
    before = fingerprint_graph(g), dict(g.metadata), list(g.nodes), list(g.edges)
    out = fn(g)
    assert (fingerprint_graph(g), dict(g.metadata), list(g.nodes), list(g.edges)) == before
    return out


def test_convert_to_spiking():
    g = build_hybrid()
    s = unchanged(lambda x: convert_to_spiking(x, weight_bits=6), g)
    assert [type(n).__name__ for n in s.nodes.values()].count("SpikingAffine") == 2
    for name in ("fc1", "fc2"):
        sa = s.nodes[name]
        assert sa.weight_bits == 6 and np.array_equal(sa.weight, g.nodes[name].weight) and np.array_equal(sa.bias, g.nodes[name].bias)
    # accumulator chosen per layer so binary spike inputs cannot overflow: fc2 (64 inputs) fits 16 bits
    assert s.nodes["fc2"].accumulator_bits == 16
    assert s.nodes["fc1"].accumulator_bits in (16, 24)
    assert "ACCUMULATOR_OVERFLOW" not in lint_graph(s).codes
    assert analyze_graph(s).total_macs == 314_240 and s.edges == g.edges and list(s.nodes) == list(g.nodes)


def test_convert_selected_nodes_and_linear():
    g = build_mlp()
    g.nodes["fc2"] = ir.Linear(weight=g.nodes["fc2"].weight)
    s = convert_to_spiking(g, nodes=["fc2"], accumulator_bits=32)
    assert s.nodes["fc1"].type_name == "Affine"
    assert s.nodes["fc2"].type_name == "SpikingAffine" and s.nodes["fc2"].accumulator_bits == 32
    assert np.all(s.nodes["fc2"].bias == 0)
    with pytest.raises(TalonUsageError, match="LIF"):
        convert_to_spiking(g, nodes=["lif1"])
    with pytest.raises(TalonUsageError, match="no node named"):
        convert_to_spiking(g, nodes=["zz"])


def test_quantize_per_tensor_reports_error_and_snaps_to_grid():
    g = build_hybrid()
    q, rep = unchanged(lambda x: quantize_weights(x, 8, return_report=True), g)
    assert [(t.node, t.field) for t in rep.tensors] == [("conv1", "weight"), ("fc1", "weight"), ("fc2", "weight")]
    for t in rep.tensors:
        w0, w1 = g.nodes[t.node].weight, q.nodes[t.node].weight
        assert t.scale == pytest.approx(np.abs(w0).max() / 127)
        assert np.allclose(w1 / t.scale, np.round(w1 / t.scale), atol=1e-3)  # on the grid
        assert t.max_abs_error <= t.scale / 2 + 1e-7
        assert t.max_abs_error == pytest.approx(np.abs(w1.astype(np.float64) - w0).max())
        assert 0 < t.relative_error < 0.02 and w1.dtype == w0.dtype
    assert np.array_equal(q.nodes["fc1"].bias, g.nodes["fc1"].bias)
    assert rep.max_abs_error == max(t.max_abs_error for t in rep.tensors)
    assert "8-bit symmetric per-tensor" in str(rep)
    assert isinstance(quantize_weights(g, 4), ir.Graph)


def test_quantize_per_channel_beats_per_tensor_with_uneven_rows():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.01, (4, 16)).astype(f32)
    w[0] *= 100  # one loud output channel
    g = ir.Graph({"x": ir.Input(shape=(16,)), "fc": ir.Affine(weight=w, bias=np.zeros(4, f32)), "y": ir.Output()})
    g.chain("x", "fc", "y")
    qt, tensor = quantize_weights(g, 4, return_report=True)
    qc, channel = quantize_weights(g, 4, per_channel=True, return_report=True)
    assert channel.tensors[0].scale.shape == (4,) and channel.tensors[0].per_channel
    assert channel.tensors[0].rms_error <= tensor.tensors[0].rms_error
    assert np.all(qt.nodes["fc"].weight[1:] == 0)  # one scale for all: the quiet rows vanish
    quiet_err = np.abs(qc.nodes["fc"].weight[1:] - w[1:]).max()
    assert quiet_err <= channel.tensors[0].scale[1:].max() / 2 + 1e-9


def test_quantize_power_of_two_scales_and_spiking_affine_bits():
    g = convert_to_spiking(build_mlp(), weight_bits=8)
    q, rep = quantize_weights(g, 4, power_of_two=True, return_report=True)
    for t in rep.tensors:
        assert np.log2(t.scale) == int(np.log2(t.scale))
    assert q.nodes["fc1"].weight_bits == 4 and g.nodes["fc1"].weight_bits == 8
    with pytest.raises(TalonUsageError, match="bits"):
        quantize_weights(g, 1)


def test_quantize_power_of_two_follows_the_fixed_point_rule():
    """power_of_two uses docs/fixed_point.md's rule (talon.sdk.fixed_point), integers included."""
    from talon.sdk.fixed_point import frac_for_range, quantize_to_ints

    peak = 127.6 / 128  # * 2**7 lies in (127, 128): the old "round the linear scale up" rule took 2**-6
    w = np.array([[peak, 0.25, 0.0], [-peak, 0.1, 0.0], [0.0, 0.0, 0.0]], f32)
    g = ir.Graph({"x": ir.Input(shape=(3,)), "fc": ir.Affine(weight=w, bias=np.zeros(3, f32)), "y": ir.Output()})
    g.chain("x", "fc", "y")
    q, rep = quantize_weights(g, 8, power_of_two=True, return_report=True)
    assert rep.tensors[0].scale == 2.0**-7 == 2.0 ** -frac_for_range(peak, 8)
    ints = np.ldexp(q.nodes["fc"].weight.astype(np.float64), 7)
    assert ints[0, 0] == 127 and ints[1, 0] == -127  # symmetric saturation: the grid stays 2**-7
    again, rep2 = quantize_weights(q, 8, power_of_two=True, return_report=True)
    assert rep2.tensors[0].scale == 2.0**-7 and np.array_equal(again.nodes["fc"].weight, q.nodes["fc"].weight)
    assert np.array_equal(ints, quantize_to_ints(w, 8, 7))
    _, per = quantize_weights(g, 8, power_of_two=True, per_channel=True, return_report=True)
    assert per.tensors[0].scale.tolist() == [2.0**-7, 2.0**-7, 2.0**-7]  # an all-zero channel: frac = bits - 1
    peaks = np.array([0.0, 1.0, 0.75, peak, 3000.0, np.inf, np.nan])
    assert frac_for_range(peaks, 8).tolist() == [frac_for_range(float(p), 8) for p in peaks] == [7, 6, 7, 7, -5, 7, 7]


def test_quantize_refuses_nan():
    g = build_mlp()
    w = g.nodes["fc1"].weight.copy()
    w[0, 0] = np.nan
    g.nodes["fc1"] = g.nodes["fc1"].replace(weight=w)
    with pytest.raises(GraphValidationError, match="NaN"):
        quantize_weights(g)


def bn(n, rng):
    return dict(
        num_features=n,
        weight=rng.uniform(0.5, 2, n).astype(f32),
        bias=rng.normal(size=n).astype(f32),
        running_mean=rng.normal(size=n).astype(f32),
        running_var=rng.uniform(0.1, 3, n).astype(f32),
    )


def conv2d(x, w, b, pad):
    """Reference convolution (cross-correlation) for a (C, H, W) input."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    o, c, kh, kw = w.shape
    h, wd = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    out = np.zeros((o, h, wd))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("oc,chw->ohw", w[:, :, i, j], x[:, i : i + h, j : j + wd])
    return out + b[:, None, None]


def test_fold_batchnorm_conv_is_numerically_equivalent():
    rng = np.random.default_rng(0)
    conv = ir.Conv2d(weight=rng.normal(size=(3, 2, 3, 3)).astype(f32), bias=rng.normal(size=3).astype(f32), padding=(1, 1))
    norm = ir.BatchNorm2d(**bn(3, rng))
    g = ir.Graph({"x": ir.Input(shape=(2, 5, 5)), "conv": conv, "bn": norm, "act": ir.ReLU(), "y": ir.Output()})
    g.chain(*g.nodes)
    f = unchanged(fold_batchnorm, g)
    assert list(f.nodes) == ["x", "conv", "act", "y"] and f.edges == [("x", "conv"), ("conv", "act"), ("act", "y")]
    x = rng.normal(size=(2, 5, 5))
    ref = conv2d(x, conv.weight, conv.bias, 1)
    a = norm.weight / np.sqrt(norm.running_var.astype(np.float64) + norm.eps)
    ref = a[:, None, None] * (ref - norm.running_mean[:, None, None]) + norm.bias[:, None, None]
    got = conv2d(x, f.nodes["conv"].weight, f.nodes["conv"].bias, 1)
    assert np.allclose(got, ref, atol=1e-4)
    assert "FOLDABLE_BATCHNORM" not in lint_graph(f).codes


def test_fold_batchnorm_into_affine_and_linear():
    rng = np.random.default_rng(1)
    for layer in (affine(4, 3, rng, 1.0), ir.Linear(weight=rng.normal(size=(4, 3)).astype(f32))):
        norm = ir.BatchNorm1d(**bn(4, rng))
        g = ir.Graph({"x": ir.Input(shape=(3,)), "fc": layer, "bn": norm, "y": ir.Output()})
        g.chain(*g.nodes)
        f = fold_batchnorm(g)
        assert f.nodes["fc"].type_name == "Affine" and "bn" not in f.nodes
        x = rng.normal(size=3)
        b = getattr(layer, "bias", np.zeros(4))
        a = norm.weight / np.sqrt(norm.running_var.astype(np.float64) + norm.eps)
        ref = a * (layer.weight @ x + b - norm.running_mean) + norm.bias
        assert np.allclose(f.nodes["fc"].weight @ x + f.nodes["fc"].bias, ref, atol=1e-5)


def test_fold_leaves_unfoldable_batchnorm():
    rng = np.random.default_rng(2)
    norm = ir.BatchNorm1d(**bn(3, rng))
    g = ir.Graph({"x": ir.Input(shape=(3,)), "act": ir.ReLU(), "bn": norm, "y": ir.Output()})
    g.chain(*g.nodes)
    assert compare_graphs(fold_batchnorm(g), g).identical


def test_remove_dropout_keeps_input_order():
    rng = np.random.default_rng(0)
    g = ir.Graph({"x": ir.Input(shape=(2,)), "fc": affine(2, 2, rng), "drop": ir.Dropout(), "other": ir.Input(shape=(2,)), "cat": ir.Concat(), "y": ir.Output()})
    for e in [("x", "fc"), ("other", "cat"), ("fc", "drop"), ("drop", "cat"), ("cat", "y")]:
        g.add_edge(*e)
    r = unchanged(remove_dropout, g)
    assert "drop" not in r.nodes and r.edges == [("x", "fc"), ("other", "cat"), ("fc", "cat"), ("cat", "y")]
    assert analyze_graph(r).output_shapes == {"y": (4,)}


def test_prune_disconnected():
    g = build_mlp()
    g.add_node("lonely", ir.ReLU())
    g.add_node("dead", ir.ReLU())
    g.add_edge("fc1", "dead")
    g.add_node("unused_in", ir.Input(shape=(1,)))
    p = unchanged(prune_disconnected, g)
    assert list(p.nodes) == ["inp", "fc1", "lif1", "fc2", "lif2", "out", "unused_in"]
    assert ("fc1", "dead") not in p.edges
    p.validate()
    assert compare_graphs(prune_disconnected(build_mlp()), build_mlp()).identical


def test_convert_argument_errors_are_usage_errors():
    g = build_mlp()
    for call in (lambda: convert_to_spiking(g, nodes=["lif1"]), lambda: convert_to_spiking(g, nodes=["zz"])):
        with pytest.raises(TalonUsageError) as info:
            call()
        assert not isinstance(info.value, GraphValidationError)
