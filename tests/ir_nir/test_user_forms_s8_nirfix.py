"""A SepConv2d written to .nir is a file the `nir` package's own reader accepts (type checks on, nested graph
included), that means the same convolution by NIR's Conv2d equation (written here in numpy), and that TALON
reads back as the same SepConv2d, running identically. Files in the older form (a groups=C depthwise Conv2d,
as TALON wrote before and other tools write) still read as SepConv2d; a dense stage that is not depthwise
does not."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")

import talon.ir as ir  # noqa: E402
from talon.bridge import ir_to_torch  # noqa: E402
from talon.ir import from_nir, to_nir  # noqa: E402
from talon.ir.nir import NIRConversionWarning  # noqa: E402

RNG = np.random.default_rng(8)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def sep_graph(c=3, o=4, hw=(6, 5), stride=(1, 2), padding=(1, 1), dilation=(1, 1)):
    sep = ir.SepConv2d(depthwise_weight=f32(c, 1, 3, 3), depthwise_bias=f32(c), pointwise_weight=f32(o, c, 1, 1),
                       pointwise_bias=f32(o), stride=stride, padding=padding, dilation=dilation)
    nodes = {"input": ir.Input(shape=(c, *hw)), "sep": sep, "output": ir.Output()}
    g = ir.Graph(nodes, [("input", "sep"), ("sep", "output")])
    g.validate()
    return g


def nir_conv2d(x, conv):
    """NIR's Conv2d: y[o] = b[o] + sum_{c in o's group, i, j} W[o, c, i, j] x_pad[c, s*y + d*i, s*x + d*j]."""
    w, b = np.asarray(conv.weight, np.float64), np.asarray(conv.bias, np.float64)
    (sh, sw), (ph, pw), (dh, dw), g = conv.stride, conv.padding, conv.dilation, int(conv.groups)
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
    kh, kw = w.shape[2:]
    oh, ow = (xp.shape[1] - dh * (kh - 1) - 1) // sh + 1, (xp.shape[2] - dw * (kw - 1) - 1) // sw + 1
    per_in, per_out = x.shape[0] // g, w.shape[0] // g
    y = np.zeros((w.shape[0], oh, ow))
    for o in range(w.shape[0]):
        lo = (o // per_out) * per_in
        for i in range(kh):
            for j in range(kw):
                patch = xp[lo:lo + per_in, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                y[o] += np.tensordot(w[o, :, i, j], patch, axes=1)
        y[o] += b[o]
    return y


def talon_run(g, x):
    with torch.inference_mode():
        return ir_to_torch(g)(torch.from_numpy(x[None].astype(np.float32))).numpy()[0].astype(np.float64)


@pytest.mark.parametrize("kw", [{}, {"c": 1, "o": 2}, {"stride": (2, 1), "padding": (0, 2), "dilation": (2, 1)}])
def test_sepconv_nir_file_reads_in_nir_and_back_in_talon_unchanged(kw, tmp_path):
    g = sep_graph(**kw)
    p = tmp_path / "sep.nir"
    ir.write(p, g)
    ng = nir.read(p)  # the reference reader, type checks on (nested graphs are checked whatever it says)
    inner = ng.nodes["sep"]
    dw, pw = inner.nodes["depthwise"], inner.nodes["pointwise"]
    sep = g.nodes["sep"]
    # the depthwise stage means, by NIR's equation, the depthwise convolution itself
    x = RNG.standard_normal(g.nodes["input"].shape)
    want_dw = nir_conv2d(x, type("DW", (), {"weight": sep.depthwise_weight, "bias": sep.depthwise_bias, "stride": tuple(sep.stride),
                                            "padding": tuple(sep.padding), "dilation": tuple(sep.dilation),
                                            "groups": sep.depthwise_weight.shape[0]})())
    got_dw = nir_conv2d(x, dw)
    np.testing.assert_array_equal(got_dw, want_dw)
    np.testing.assert_array_equal(np.asarray(dw.output_type["output"]), want_dw.shape)
    reference = nir_conv2d(got_dw, pw)
    # TALON reads the file back as the same SepConv2d, and runs it as NIR's equations do
    back = ir.read(p)
    assert back == g and type(back.nodes["sep"]).__name__ == "SepConv2d"
    np.testing.assert_array_equal(talon_run(back, x), talon_run(g, x))
    np.testing.assert_allclose(talon_run(back, x), reference, rtol=1e-5, atol=1e-5)


def test_sepconv_in_the_older_grouped_form_still_reads_as_sepconv(tmp_path):
    g = sep_graph()
    ng = to_nir(g)
    inner = ng.nodes["sep"]
    sep, old = g.nodes["sep"], inner.nodes["depthwise"]
    c = sep.depthwise_weight.shape[0]
    inner.nodes["depthwise"] = nir.Conv2d(input_shape=tuple(g.nodes["input"].shape[1:]), weight=sep.depthwise_weight.copy(),
                                          stride=old.stride, padding=old.padding, dilation=old.dilation, groups=c,
                                          bias=sep.depthwise_bias.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("error", NIRConversionWarning)  # the hint is used: no fallback
        back = from_nir(ng)
    assert back == g


def test_a_dense_stage_that_is_not_depthwise_is_not_read_as_sepconv():
    g = sep_graph()
    ng = to_nir(g)
    dw = ng.nodes["sep"].nodes["depthwise"]
    dw.weight = dw.weight.copy()
    dw.weight[0, 1, 0, 0] = 0.5  # a cross-channel term: a full convolution, not a depthwise one
    with pytest.warns(NIRConversionWarning, match="structure of an exported SepConv2d"):
        back = from_nir(ng)
    assert type(back.nodes["sep"]).__name__ != "SepConv2d"
    x = RNG.standard_normal(g.nodes["input"].shape)
    assert not np.array_equal(talon_run(back, x), talon_run(g, x))
