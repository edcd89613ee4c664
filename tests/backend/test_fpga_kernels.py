"""fpga backend, issue 9 (remaining parts): SumPool2d, Upsample, Concat and Skip(concatenate) kernels proven
bit-exact against get_backend("cpu").simulate(mode="fixed"); unroll/partition pragmas that follow the reuse
factor (and the estimates that claim them); the hls4ml path for channels-first conv parts."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch

from talon import ir
from talon.backend import get_backend
from talon.errors import BackendError

from backend_graphs import build_delay_split_net, build_odd_resample_net, build_resample_net, build_sepconv_split_net, chained
from fpga_helpers import assert_hls4ml_output_is_the_simulators, assert_same_words, hls4ml_build, kernel_calls, needs_gxx, top_source


def _x(shape, T=100, B=2, seed=3, scale=1.5):
    return torch.rand((T, B, *shape), generator=torch.Generator().manual_seed(seed)) * scale


# -- the new kernels, bit-exact ----------------------------------------------------------------------


@needs_gxx
def test_sumpool_upsample_concat_network_is_bit_exact_over_100_steps(fpga, tmp_path):
    rep = fpga.verify(build_resample_net(), _x((1, 8, 8)), n_steps=100, work_dir=tmp_path / "prj")
    assert rep.ok, rep.summary()
    assert rep.n_steps == 100 and set(rep.compared) >= {"spikes/lif1", "spikes/lif2", "membranes/lif2", "outputs/out"}
    assert int(rep.csim.spikes["lif1"].sum()) > 0 and int(rep.csim.spikes["lif2"].sum()) > 0
    kernels = {f for f in os.listdir(tmp_path / "prj" / "firmware" / "kernels")}
    assert {"sumpool2d.h", "upsample.h", "concat.h"} <= kernels
    # the joined inputs really come in different formats, so the concat kernel rounds (requantises)
    d = rep.simulation.fixed_point.nodes
    assert len({d[p].out_format.frac for p in ("up", "lif1", "inp")}) > 1


@needs_gxx
def test_padded_sumpool_sized_upsample_and_inner_concat_are_bit_exact(fpga, tmp_path):
    g = build_odd_resample_net()
    x = _x((2, 5, 5), seed=7, scale=2.0) - 0.3
    rep = fpga.verify(g, x, n_steps=100, work_dir=tmp_path)
    assert rep.ok, rep.summary()
    assert int(rep.csim.spikes["lif1"].sum()) > 0 and int(rep.csim.spikes["lif2"].sum()) > 0
    top = top_source(tmp_path)
    # dim 2: (10, 4) and (10, 5) rows side by side in (10, 9); dim -2: (2, 45) twice in (2, 90)
    for call in ("k_concat<10, 4, 9, 0, ", "k_concat<10, 5, 9, 4, ", "k_concat<2, 45, 90, 0, ", "k_concat<2, 45, 90, 45, "):
        assert call in top, call
    sp = rep.simulation.fixed_point.nodes["sum"]
    assert sp.in_formats[0].frac > sp.out_format.frac  # the window sum is rounded half-up to a coarser grid


def test_upsample_index_map_is_the_runtimes(fpga, tmp_path):
    """The generated source-pixel table equals what torch's nearest rule reads (float32 scales included)."""
    prj = fpga.compile(build_odd_resample_net(), tmp_path, n_steps=5)
    header = open(os.path.join(prj.path, "firmware", "weights", "n_up.h")).read()
    got = np.array([int(v) for v in re.findall(r"-?\d+", header.split("=", 1)[1])])
    idx = torch.arange(9, dtype=torch.float64).reshape(1, 1, 3, 3)
    want = torch.nn.functional.interpolate(idx, size=(5, 4), mode="nearest").reshape(-1).long().numpy()
    assert np.array_equal(got, want)


def test_bilinear_upsample_is_refused(fpga, tmp_path):
    g = chained({"inp": ir.Input(shape=(1, 4, 4)), "up": ir.Upsample(scale_factor=2, mode="bilinear"), "out": ir.Output()})
    with pytest.raises(BackendError, match="nearest"):
        fpga.compile(g, tmp_path)


def test_estimates_of_the_new_node_types(fpga):
    e = fpga.estimate(build_resample_net(), "zynq7020", reuse_factor=4)
    by = {x.name: x for x in e.layers}
    assert by["sum"].work == 3 * 4 * 4 * 4 and by["sum"].cycles == 4 + 3  # pooling: N x kh x kw
    assert by["up"].work == 3 * 8 * 8 and by["up"].lanes == 48
    # Concat runs one loop per input part: (192 + 192) / 96 lanes, then (384 + 64) / 112 lanes
    assert by["cat"].lanes == 96 and by["cat"].cycles == 2 + 2 + 2
    assert by["cat2"].lanes == 112 and by["cat2"].cycles == 4 + 1 + 2


# -- pragmas follow the reuse factor -----------------------------------------------------------------


def test_pragmas_follow_the_reuse_factor(fpga, tmp_path):
    from talon.backend.fpga.hls import partition_pragmas

    desc = fpga.descriptor(build_resample_net(), n_steps=20)
    prjs, ests = {}, {}
    for R in (1, 8, 64, 1 << 20):
        prjs[R] = fpga.compile(desc, tmp_path / f"r{R}", reuse_factor=R)
        ests[R] = prjs[R].estimates
        assert ests[R].reuse_factor == R
        top = top_source(prjs[R].path)
        lanes = {x.name: x.lanes for x in ests[R].layers}
        ids = prjs[R].manifest["identifiers"]
        calls = {ident: [lanes for _, lanes in c] for ident, c in kernel_calls(top).items()}
        for name, ident in ids.items():
            if name == "inp":
                continue
            # every kernel of the layer runs the estimate's lanes (its UNROLL factor)
            assert calls[ident] and set(calls[ident]) == {lanes[name]}, (R, name, calls[ident], lanes[name])
            assert f"{lanes[name]} lanes" in top
        # arrays are partitioned for exactly those lanes (weights of fc: (5, 448), read 448-wise per output)
        for line in partition_pragmas("w_n_fc", (5, 448), lanes["fc"]):
            assert line in top
        md = open(os.path.join(prjs[R].path, "estimates.md")).read()
        assert "UNROLL factor=<lanes>" in md and f"| fc | Affine | 2,240 | {lanes['fc']:,} |" in md
    assert ests[1].layers[-3].lanes == 2240 and ests[1 << 20].layers[-3].lanes == 1
    # R >= work: one lane, nothing partitioned; R = 1: the fc weights split completely
    top_big = top_source(prjs[1 << 20].path)
    assert "ARRAY_PARTITION" not in top_big
    top_1 = top_source(prjs[1].path)
    assert "#pragma HLS ARRAY_PARTITION variable=w_n_fc complete dim=2" in top_1
    assert "#pragma HLS ARRAY_PARTITION variable=w_n_fc complete dim=1" in top_1
    top_8 = top_source(prjs[8].path)
    assert "#pragma HLS ARRAY_PARTITION variable=w_n_fc cyclic factor=280 dim=2" in top_8  # ceil(2240 / 8)
    # estimates move consistently: fewer lanes, fewer resources, more cycles
    for a, b in ((1, 8), (8, 64), (64, 1 << 20)):
        assert ests[a].latency_cycles < ests[b].latency_cycles and ests[a].lut > ests[b].lut
        assert all(x.lanes >= y.lanes and x.cycles <= y.cycles for x, y in zip(ests[a].layers, ests[b].layers))
    # every kernel loop carries the pipeline/unroll pragmas
    for k in os.listdir(os.path.join(prjs[8].path, "firmware", "kernels")):
        text = open(os.path.join(prjs[8].path, "firmware", "kernels", k)).read()
        assert text.count("for (") == text.count("#pragma HLS PIPELINE II = 1") == text.count("#pragma HLS UNROLL factor=LANES"), k
    # determinism: the reuse factor changes only the top, the estimates and the files that list them
    again = fpga.compile(desc, tmp_path / "again", reuse_factor=8)
    for f in again.files:
        a = open(os.path.join(again.path, f), "rb").read()
        assert a == open(os.path.join(prjs[8].path, f), "rb").read(), f
        if a != open(os.path.join(prjs[64].path, f), "rb").read():
            assert f in ("firmware/talon_top.cpp", "estimates.md", "README.md", "talon_project.json"), f


def test_partition_pragmas():
    from talon.backend.fpga.hls import partition_pragmas

    assert partition_pragmas("a", (10,), 1) == []
    assert partition_pragmas("a", (10,), 4) == ["#pragma HLS ARRAY_PARTITION variable=a cyclic factor=4 dim=1"]
    assert partition_pragmas("a", (10,), 10) == ["#pragma HLS ARRAY_PARTITION variable=a complete dim=1"]
    # conv weights (O, C, kh, kw): 8 lanes cover one 3x3 window row by row
    assert partition_pragmas("w", (4, 1, 3, 3), 8) == [
        "#pragma HLS ARRAY_PARTITION variable=w complete dim=4",
        "#pragma HLS ARRAY_PARTITION variable=w complete dim=3",
    ]
    assert partition_pragmas("w", (4, 2, 3, 3), 36) == [
        "#pragma HLS ARRAY_PARTITION variable=w complete dim=4",
        "#pragma HLS ARRAY_PARTITION variable=w complete dim=3",
        "#pragma HLS ARRAY_PARTITION variable=w complete dim=2",
        "#pragma HLS ARRAY_PARTITION variable=w cyclic factor=2 dim=1",
    ]


@needs_gxx
def test_pragmas_do_not_change_the_c_simulation(fpga, tmp_path):
    """The same descriptor at R = 1 (everything unrolled) and R >= work (one lane) gives the same words as
    the fixed-point simulator."""
    g = build_odd_resample_net()
    x = _x((2, 5, 5), T=30, seed=11, scale=2.0) - 0.3
    sim = get_backend("cpu").simulate(g, x, mode="fixed", record=True, compare=False)
    from talon.backend.compile import build_descriptor

    desc = build_descriptor(g, sim.fixed_point)
    res = [fpga.csim(fpga.compile(desc, tmp_path / f"r{R}", reuse_factor=R), x, use_ap_types=False) for R in (1, 1 << 20)]
    assert_same_words(res[0], res[1])
    want = sim.spikes["lif2"].detach().numpy()
    assert np.array_equal(res[0].value("spikes", "lif2"), want) and want.sum() > 0


# -- hls4ml: channels-first conv parts ---------------------------------------------------------------


def _conv_ann(seed: int = 0) -> ir.Graph:
    """Conv2d -> ReLU -> MaxPool2d -> Conv2d -> ReLU -> AvgPool2d -> Flatten of a (4, 3, 2) tensor -> Affine:
    a Flatten whose channels-first and channels-last orders differ."""
    rng = np.random.default_rng(seed)
    nodes = {
        "inp": ir.Input(shape=(2, 8, 6)),
        "conv": ir.Conv2d(weight=rng.normal(0, 0.5, (3, 2, 3, 3)).astype(np.float32), bias=rng.normal(0, 0.2, 3).astype(np.float32), padding=(1, 1)),
        "relu": ir.ReLU(),
        "pool": ir.MaxPool2d(kernel_size=(2, 2), stride=(2, 2)),  # (3, 4, 3)
        "conv2": ir.Conv2d(weight=rng.normal(0, 0.5, (4, 3, 3, 2)).astype(np.float32), bias=rng.normal(0, 0.2, 4).astype(np.float32),
                           padding=(1, 0)),  # (4, 4, 2)  # fmt: skip
        "relu2": ir.ReLU(),
        "avg": ir.AvgPool2d(kernel_size=(2, 1), stride=(1, 1)),  # (4, 3, 2)
        "flat": ir.Flatten(),
        "fc": ir.Affine(weight=rng.normal(0, 0.5, (5, 24)).astype(np.float32), bias=rng.normal(0, 0.2, 5).astype(np.float32)),
        "out": ir.Output(),
    }
    return chained(nodes)


def test_hls4ml_conv_config_structure(fpga):
    from talon.backend.fpga import ir_to_hls4ml_config, ir_to_torch_ann
    from talon.backend.fpga.hls4ml_config import hls4ml_layout

    desc = fpga.descriptor(_conv_ann(), n_steps=5)
    cfg = ir_to_hls4ml_config(desc, reuse_factor=2)
    assert cfg["InputShape"] == (2, 8, 6) and cfg["Model"]["ChannelsLastConversion"] == "full"
    L = cfg["LayerName"]
    assert set(L) == {"x", "transpose_input_for_x", "n_conv", "n_relu", "n_pool", "n_conv2", "n_relu2", "n_avg",
                      "transpose_input_for_n_flat", "n_flat", "n_fc"}  # fmt: skip
    nd = desc.nodes["conv2"]
    fw, (ib, _) = nd["fracs"]["weight"], nd["in_formats"][0]
    assert L["n_conv2"]["Precision"]["weight"] == f"ap_fixed<8,{8 - fw}>" and L["n_conv2"]["ReuseFactor"] == 2
    wide = ib + 8 + int(np.ceil(np.log2(3 * 3 * 2 + 1))) + 2
    assert L["n_conv2"]["Precision"]["accum"] == f"ap_fixed<{max(32, wide)},{max(32, wide) - nd['acc_frac']}>"
    b, f = desc.nodes["pool"]["out_format"]
    assert desc.nodes["pool"]["out_format"] == desc.nodes["relu"]["out_format"]  # grid-preserving
    assert L["n_pool"]["Precision"]["result"] == f"ap_fixed<{b},{b - f}>"
    (bi, fi), (bo, fo) = desc.nodes["avg"]["in_formats"][0], desc.nodes["avg"]["out_format"]
    frac = max(fi, fo) + 1 + 2
    assert L["n_avg"]["Precision"] == {"accum": f"ap_fixed<{bi - fi + 2 + frac},{bi - fi + 2}>", "result": f"ap_fixed<{bo},{bo - fo},AP_RND,AP_SAT>"}
    lay = hls4ml_layout(desc)
    assert any("(kh, kw, C, O) = (3, 2, 3, 4)" in s for s in lay) and any("(3, 2, 4) transposed back to (4, 3, 2)" in s for s in lay)
    # the torch module computes the plan's on-grid conv
    m = ir_to_torch_ann(desc)
    assert [n for n, _ in m.named_children()] == ["n_conv", "n_relu", "n_pool", "n_conv2", "n_relu2", "n_avg", "n_flat", "n_fc"]
    w = m.n_conv2.weight.detach().double().numpy()
    assert np.array_equal(np.ldexp(w, fw), desc.arrays["conv2/weight"].astype(np.float64))
    assert tuple(m(torch.zeros(3, 2, 8, 6)).shape) == (3, 5)
    # what hls4ml cannot realise is refused by name
    rng = np.random.default_rng(0)
    nodes = {"inp": ir.Input(shape=(2, 6, 6)), "c": ir.Conv2d(weight=rng.normal(0, 1, (2, 1, 3, 3)).astype(np.float32), bias=np.zeros(2, np.float32), groups=2),
             "flat": ir.Flatten(), "out": ir.Output()}  # fmt: skip
    g = chained(nodes)
    with pytest.raises(BackendError, match="'c'.*groups=1"):
        ir_to_hls4ml_config(g, n_steps=3)
    with pytest.raises(BackendError, match="reuse_factor"):
        ir_to_hls4ml_config(desc, reuse_factor=0)


@needs_gxx
def test_hls4ml_conv_build_matches_the_fixed_point_simulator(fpga, tmp_path):
    """hls4ml 1.3 (g++ C simulation, about 6 s) on the channels-first conv chain equals simulate(mode='fixed')."""
    x = torch.rand((1, 96, 2, 8, 6), generator=torch.Generator().manual_seed(0)) * 2.5 - 1.2
    model, sim, desc = hls4ml_build(_conv_ann(), x, tmp_path / "hls4ml")
    # hls4ml stored the conv weights channels-last, as (kh, kw, cin, cout)
    conv2 = next(layer for layer in model.get_layers() if layer.name == "n_conv2")
    w = conv2.get_weights("weight").data
    assert w.shape == (3, 2, 3, 4)
    y = model.predict(x[0].numpy().astype(np.float64).reshape(96, -1))  # TALON's (C, H, W) order in
    want = assert_hls4ml_output_is_the_simulators(y, sim, desc)
    assert len(np.unique(want)) > 10


# -- Delay, HybridRegion, ChannelSplit, Conv1d, SepConv2d ------------------------------------------


@needs_gxx
def test_delay_hybrid_split_and_conv1d_are_bit_exact_over_100_steps(fpga, tmp_path):
    rep = fpga.verify(build_delay_split_net(), _x((2, 12)), n_steps=100, work_dir=tmp_path)
    assert rep.ok, rep.summary()
    assert rep.n_steps == 100 and {"spikes/la", "spikes/lb", "spikes/lc", "outputs/oa", "outputs/ob"} <= set(rep.compared)
    for n in ("lif1", "la", "lb", "lc"):
        assert int(rep.csim.spikes[n].sum()) > 0, n
    assert {"delay.h", "split.h", "conv2d.h", "copy.h"} <= set(os.listdir(tmp_path / "firmware" / "kernels"))
    top = top_source(tmp_path)
    # the ring holds max(delay) + 1 = 6 inputs of the 4 x 12 field, cleared on reset (sample 2 starts clean)
    assert "static int64_t dl_n_dly[6][48];" in top and "dl_n_dly[s][k] = 0;" in top
    assert "k_split<1, 12, 48, 0, " in top and "k_split<1, 36, 48, 12, " in top
    # the delays matter: without them (all 0) lb, fed by channels 1, 3 and 5 steps late, spikes otherwise
    g0 = build_delay_split_net()
    g0.nodes["dly"] = ir.Delay(delay=np.zeros((4, 1), np.int64))
    sim0 = get_backend("cpu").simulate(g0, _x((2, 12)), n_steps=100, mode="fixed", record=True)
    assert not np.array_equal(sim0.spikes["lb"].numpy(), rep.csim.spikes["lb"])


@needs_gxx
def test_sepconv2d_and_strided_split_are_bit_exact_over_100_steps(fpga, tmp_path):
    x = _x((2, 6, 6), seed=5, scale=2.0) - 0.4
    rep = fpga.verify(build_sepconv_split_net(), x, n_steps=100, work_dir=tmp_path)
    assert rep.ok, rep.summary()
    for n in ("lif1", "la", "lb"):
        assert int(rep.csim.spikes[n].sum()) > 0, n
    top = top_source(tmp_path)
    # dim -1 of (3, 6, 6): rows of 6, columns [0, 2) and [2, 6)
    assert "k_split<18, 2, 6, 0, " in top and "k_split<18, 4, 6, 2, " in top
    assert "static int64_t z_n_sep2[9];" in top  # C x Ho x Wo = 3 x 3 x 1 exact depthwise words of the strided, dilated stage
    # one saturation and rounding at the end: the depthwise stage is never rounded (acc_frac = f_in + f_dw + f_pw)
    p = rep.simulation.fixed_point.nodes["sep1"]
    assert p.acc_frac == p.in_formats[0].frac + p.fracs["depthwise_weight"] + p.fracs["pointwise_weight"]


def test_estimates_of_delay_split_and_sepconv_follow_the_kernels(fpga, tmp_path):
    g = build_sepconv_split_net()
    e = fpga.estimate(g, "zynq7020", reuse_factor=4)
    by = {x.name: x for x in e.layers}
    # SepConv2d: C*Ho*Wo*kh*kw depthwise + O*Ho*Wo*C pointwise MACs, two loops at the same lanes
    dw, pw = 2 * 36 * 9, 3 * 36 * 2
    assert by["sep1"].work == dw + pw and by["sep1"].lanes == (dw + pw) // 4
    assert by["sep1"].cycles == -(-dw // by["sep1"].lanes) + -(-pw // by["sep1"].lanes) + 5
    # ChannelSplit copies its whole (3, 6, 6) input, one loop per chunk (36 and 72 elements)
    assert by["split"].work == 108 and by["split"].lanes == 27 and by["split"].cycles == 2 + 3 + 2
    e2 = fpga.estimate(build_delay_split_net(), "zynq7020", reuse_factor=4)
    d = {x.name: x for x in e2.layers}["dly"]
    # ring 6 x 48 x 8 bits and 48 3-bit delays as LUTRAM, on top of the element-wise lanes
    assert d.work == 48 and d.lanes == 12 and d.lut == 12 * 8 + 100 + 6 * 48 * 8 // 64 + -(-48 * 3 // 64)
    # the generated kernels run exactly the estimate's lanes
    prj = fpga.compile(g, tmp_path, n_steps=5, reuse_factor=4)
    calls = kernel_calls(top_source(prj.path))
    lanes = {x.name: x.lanes for x in prj.estimates.layers}
    for n in ("sep1", "split", "sep2"):
        assert calls[prj.manifest["identifiers"][n]] and all(k == lanes[n] for _, k in calls[prj.manifest["identifiers"][n]]), n


def test_a_loop_carried_by_a_delay_stays_refused(fpga, tmp_path):
    """Fixed mode refuses it (the Delay's format would be its own input's), so there is nothing to verify against."""
    g = ir.Graph({"inp": ir.Input(shape=(3,)), "res": ir.Skip(skip_type="residual"), "d": ir.Delay(delay=np.array([1])), "out": ir.Output()},
                 [("inp", "res"), ("res", "d"), ("d", "res"), ("d", "out")])  # fmt: skip
    with pytest.raises(BackendError, match="carried by 'd' \\(Delay\\)"):
        fpga.compile(g, tmp_path, n_steps=3)
