"""The fpga backend: HLS project generation (deterministic, sanitised), estimates, TCL/README, and the
g++ C simulation proven bit-exact against get_backend("cpu").simulate(mode="fixed")."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import torch

from talon import ir
from talon.backend import get_backend
from talon.errors import BackendError

from backend_graphs import (
    CUBA_RESETS, affine, build_cuba_mlp, build_mixed_conv, build_mlp, build_threshold_residual, chained, cuba, lif, lif_field, recurrent_cases,
)  # fmt: skip
from branches import side_by_side
from fpga_helpers import (
    HAS_GXX, assert_hls4ml_output_is_the_simulators, assert_same_words, fpga_mod, hls4ml_build, kernel_calls, needs_gxx, top_source,
)  # fmt: skip


def build_conv_snn(seed: int = 1) -> ir.Graph:
    """Input(1,8,8) -> Conv2d(4,3x3,pad 1) -> LIF -> MaxPool2d(2) -> Conv2d(4,3x3,stride 2,pad 1) -> LIF
    -> Flatten -> Affine(5) -> LIF -> Output: three reset modes, two conv shapes."""
    rng = np.random.default_rng(seed)
    nodes = {
        "inp": ir.Input(shape=(1, 8, 8)),
        "conv": ir.Conv2d(weight=rng.normal(0, 0.6, (4, 1, 3, 3)).astype(np.float32), bias=rng.normal(0, 0.1, 4).astype(np.float32), padding=(1, 1)),
        "lif1": lif_field((4, 8, 8), reset_mode="subtract"),
        "pool": ir.MaxPool2d(kernel_size=(2, 2), stride=(2, 2)),
        "conv2": ir.Conv2d(weight=rng.normal(0, 0.6, (4, 4, 3, 3)).astype(np.float32), bias=rng.normal(0, 0.1, 4).astype(np.float32),
                           stride=(2, 2), padding=(1, 1)),  # fmt: skip
        "lif2": lif_field((4, 2, 2), reset_mode="zero"),
        "flat": ir.Flatten(),
        "fc": ir.Affine(weight=rng.normal(0, 0.5, (5, 16)).astype(np.float32), bias=rng.normal(0, 0.1, 5).astype(np.float32)),
        "lif3": lif_field((5,), reset_mode="zero_post"),
        "out": ir.Output(),
    }
    return chained(nodes)


def _mlp_inputs(T=120, B=3, seed=4):
    return torch.rand((T, B, 4), generator=torch.Generator().manual_seed(seed)) * 2 - 0.5


# -- bit-exact C simulation --------------------------------------------------------------------------


@needs_gxx
def test_mlp_snn_is_bit_exact_over_120_steps(fpga, tmp_path, monkeypatch):
    monkeypatch.delenv("CXX", raising=False)  # the plain g++ build, not the suite's caching wrapper (tests/conftest.py)
    g = build_mlp(seed=2)
    rep = fpga.verify(g, _mlp_inputs(), n_steps=120, work_dir=tmp_path / "prj")
    assert rep.ok, rep.summary()
    assert rep.n_steps == 120 and rep.batch_size == 3
    assert set(rep.compared) == {"spikes/n1", "spikes/n2", "membranes/n1", "membranes/n2", "outputs/out"}
    assert all(v == 0 for v in rep.mismatches.values())
    assert int(rep.csim.spikes["n1"].sum()) > 0 and int(rep.csim.spikes["n2"].sum()) > 0
    assert "BIT-EXACT" in str(rep)


@needs_gxx
def test_conv_snn_is_bit_exact_over_120_steps(fpga, tmp_path):
    g = build_conv_snn()
    x = torch.rand((120, 2, 1, 8, 8), generator=torch.Generator().manual_seed(3)) * 1.5
    rep = fpga.verify(g, x, n_steps=120, work_dir=tmp_path / "prj")
    assert rep.ok, rep.summary()
    assert len(rep.compared) == 7
    for n in ("lif1", "lif2", "lif3"):
        assert int(rep.csim.spikes[n].sum()) > 0, n


def _variants():
    yield "subtract", lif(3, reset_mode="subtract"), None
    yield "zero", lif(3, reset_mode="zero"), None
    yield "zero_post", lif(3, reset_mode="zero_post"), None
    yield "none", lif(3, reset_mode="none"), None
    yield "subtract_no_delay", lif(3, reset_mode="subtract", reset_delay=False), None
    yield "zero_no_delay", lif(3, reset_mode="zero", reset_delay=False), None
    yield "zero_post_no_delay", lif(3, reset_mode="zero_post", reset_delay=False), None
    yield "leak_reset_gain", ir.LIF(tau=np.full(3, 4.0), r=np.array([2.0, 3.0, 5.0]), v_leak=np.full(3, 0.3), v_threshold=np.array([0.8, 1.0, 1.3]),
                                   v_reset=np.full(3, -0.2), reset_mode="zero"), None  # fmt: skip
    yield "graded", lif(3, graded_spikes_factor=0.5), None
    yield "if", ir.IF(v_threshold=np.ones(3), r=np.full(3, 0.75), reset_mode="subtract"), None
    yield "li_out", lif(3), ir.LI(tau=np.full(2, 5.0), r=np.full(2, 5.0), v_leak=np.zeros(2))
    yield "integrator_out", lif(3), ir.Integrator(r=np.full(2, 0.5))


def _variants_graph() -> ir.Graph:
    """Every case of _variants() as a branch of one graph (tests/backend/branches.py): one C simulation build
    covers them all; branch <label> is build_mlp(seed=2, neuron=n1, neuron2=n2)."""
    return side_by_side({label: build_mlp(seed=2, neuron=n1, neuron2=n2) for label, n1, n2 in _variants()}, "inp")


@needs_gxx
def test_neuron_variants_are_bit_exact(fpga, tmp_path):
    rep = fpga.verify(_variants_graph(), _mlp_inputs(T=100, seed=5), n_steps=100, work_dir=tmp_path)
    assert rep.ok, rep.summary()
    for label, _, _ in _variants():  # every branch was compared, its output and its first neuron's spikes
        assert {f"outputs/out_{label}", f"spikes/n1_{label}"} <= set(rep.compared), label


@needs_gxx
def test_more_node_types_are_bit_exact(fpga, tmp_path):
    """Leaky ReLU, AvgPool2d, SpikingAffine (own bit widths), Threshold, residual Skip, custom config."""
    from talon.backend.cpu import FixedPointConfig

    rng = np.random.default_rng(5)
    ga = build_mixed_conv(rng)
    x = torch.rand((100, 2, 1, 6, 6), generator=torch.Generator().manual_seed(8)) * 2 - 0.3
    rep = fpga.verify(ga, x, work_dir=tmp_path / "a")
    assert rep.ok, rep.summary()
    gb = build_threshold_residual(rng, relu=True)
    x = torch.rand((100, 3, 4), generator=torch.Generator().manual_seed(9)) * 2 - 1
    rep = fpga.verify(gb, x, work_dir=tmp_path / "b")
    assert rep.ok and "spikes/thr" in rep.compared, rep.summary()
    cfg = FixedPointConfig(weight_bits=4, activation_bits=12, accumulator_bits=16, membrane_bits=16, coefficient_frac_bits=10)
    rep = fpga.verify(build_mlp(seed=3), _mlp_inputs(T=100), fixed_config=cfg, work_dir=tmp_path / "c")
    assert rep.ok, rep.summary()


@needs_gxx
def test_grouped_dilated_conv_and_padded_maxpool_are_bit_exact(fpga, tmp_path):
    rng = np.random.default_rng(3)
    nodes = {
        "inp": ir.Input(shape=(2, 9, 9)),
        "conv": ir.Conv2d(weight=rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32), bias=rng.normal(0, 0.1, 4).astype(np.float32),
                          padding=(2, 2), dilation=(2, 2), groups=2),  # fmt: skip
        "pool": ir.MaxPool2d(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1)),
        "flat": ir.Flatten(),
        "fc": ir.Affine(weight=rng.normal(0, 0.3, (5, 100)).astype(np.float32), bias=np.zeros(5, np.float32)),
        "if": ir.IF(v_threshold=np.ones(5), r=np.full(5, 0.5), reset_mode="zero"),
        "out": ir.Output(),
    }
    g = chained(nodes)
    x = torch.rand((100, 2, 2, 9, 9), generator=torch.Generator().manual_seed(2)) * 2 - 0.5
    rep = fpga.verify(g, x, work_dir=tmp_path)
    assert rep.ok and int(rep.csim.spikes["if"].sum()) > 0, rep.summary()


@needs_gxx
def test_plain_cpp_and_ap_types_paths_agree(fpga, tmp_path):
    prj = fpga.compile(build_mlp(seed=2), tmp_path / "prj", calibration_inputs=_mlp_inputs(T=30), n_steps=30)
    x = _mlp_inputs(T=30)
    plain = fpga.csim(prj, x, use_ap_types=False)
    assert not plain.ap_types
    auto = fpga.csim(prj.path, x)  # a project folder works too
    assert auto.ap_types == (fpga_mod.find_ap_types() is not None)
    assert_same_words(plain, auto)
    # csim straight from a graph (calibrated on these inputs) equals the project's own result
    direct = fpga.csim(build_mlp(seed=2), x, n_steps=30, work_dir=tmp_path / "direct")
    assert np.array_equal(direct.membranes["n1"], plain.membranes["n1"])
    assert plain.value("membranes", "n1").dtype == np.float64


@needs_gxx
def test_missing_ap_types_gives_a_clear_message(fpga, tmp_path, monkeypatch):
    from talon.backend.fpga import csim as csim_mod

    prj = fpga.compile(build_mlp(), tmp_path / "prj")
    monkeypatch.setattr(csim_mod, "find_ap_types", lambda: None)
    with pytest.raises(BackendError, match="hls4ml"):
        fpga.csim(prj, n_steps=3, use_ap_types=True)
    assert not fpga.csim(prj, n_steps=3).ap_types  # "auto" falls back to plain C++


def test_csim_without_gxx_raises_backend_error(fpga, tmp_path, monkeypatch):
    from talon.backend.fpga import csim as csim_mod

    prj = fpga.compile(build_mlp(), tmp_path / "prj")
    monkeypatch.setattr(csim_mod, "find_compiler", lambda: None)
    with pytest.raises(BackendError, match="g\\+\\+"):
        fpga.csim(prj, n_steps=3)


# -- CubaLIF and recurrent graphs ---------------------------------------------------------------------
# Every sample of a batch starts with reset=true after the previous sample ran, so bit-exactness over
# B > 1 samples also proves that reset clears currents and the previous-step values of the loops.


@needs_gxx
def test_cubalif_every_reset_mode_is_bit_exact_over_120_steps(fpga, tmp_path):
    rep = fpga.verify(build_cuba_mlp(), _mlp_inputs(T=120), n_steps=120, work_dir=tmp_path)
    assert rep.ok, rep.summary()
    assert rep.n_steps == 120 and rep.batch_size == 3 and len(rep.compared) == 8 * 5
    for label, _, _ in CUBA_RESETS + [("gains", None, None)]:
        for layer in ("c1", "c2"):
            assert int(np.count_nonzero(rep.csim.spikes[f"{layer}_{label}"])) > 0, (layer, label)
    top = top_source(rep.project)
    assert "k_current<" in top and "cur_n_c1_zero[k] = 0;" in top  # the current is state, cleared on reset


def _recurrent_groups():
    """recurrent_cases() as branches of one graph per input shape (tests/backend/branches.py: one C simulation
    build per graph): (group, graph, inputs, labels of its cases)."""
    groups: dict = {}
    for label, g, x in recurrent_cases():
        cases, x0 = groups.setdefault(tuple(x.shape), ({}, x))
        assert torch.equal(x, x0)  # the cases of a group are fed the same inputs
        cases[label] = g
    for cases, x in groups.values():
        yield "+".join(cases), side_by_side(cases, "inp"), x, list(cases)


@needs_gxx
@pytest.mark.parametrize("group", list(_recurrent_groups()), ids=lambda c: c[0])
def test_recurrent_graphs_are_bit_exact_over_120_steps(fpga, group, tmp_path):
    _, g, x, labels = group
    rep = fpga.verify(g, x, n_steps=120, work_dir=tmp_path)
    assert rep.ok and rep.n_steps == 120, rep.summary()
    top = top_source(rep.project)
    for label in labels:
        assert int(rep.csim.spikes[f"rl_{label}"].sum()) > 0 and int(rep.csim.spikes[f"n2_{label}"].sum()) > 0, label
        # the recurrence reads rl's output of the previous step from a static buffer, cleared on reset
        rl = f"n_rl_{label}"
        assert f"(b_p_{rl}, w_n_rl_recurrent_{label}" in top and f"b_p_{rl}[k] = 0;" in top and f"b_p_{rl}[k] = b_{rl}[k];" in top, label


@needs_gxx
def test_snntorch_recurrent_export_is_bit_exact(fpga, tmp_path):
    pytest.importorskip("snntorch")
    import snntorch as snn
    from torch import nn

    from talon.bridge import to_ir

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), snn.RLeaky(beta=0.9, linear_features=6, reset_mechanism="zero", init_hidden=True),
                          nn.Linear(6, 6), snn.RSynaptic(alpha=0.9, beta=0.5, linear_features=6, init_hidden=True),
                          nn.Linear(6, 6), snn.RLeaky(beta=0.8, all_to_all=False, V=torch.rand(6) - 0.3, init_hidden=True))  # fmt: skip
    x = torch.rand((100, 2, 4), generator=torch.Generator().manual_seed(4)) * 3
    rep = fpga.verify(to_ir(model, torch.randn(1, 4)), x, work_dir=tmp_path)
    assert rep.ok and rep.n_steps == 100, rep.summary()
    assert all(int(v.sum()) > 0 for v in rep.csim.spikes.values())


def test_cubalif_estimate_counts_its_current(fpga):
    """A CubaLIF lane multiplies twice more than a LIF lane (alpha*I, gain_in*x) and keeps two states."""
    est = {t: fpga.estimate(build_mlp(neuron=n), reuse_factor=1) for t, n in (("lif", lif(3)), ("cuba", cuba(3)))}
    n1 = {t: next(x for x in e.layers if x.name == "n1") for t, e in est.items()}
    assert n1["cuba"].type == "CubaLIF" and n1["cuba"].dsp == 2 * n1["lif"].dsp and n1["cuba"].lut > n1["lif"].lut
    # two loops of N = 3 (current, then membrane) at 3 lanes (R = 1): one loop pass more than a LIF
    assert n1["cuba"].lanes == n1["lif"].lanes == 3 and n1["cuba"].cycles == n1["lif"].cycles + 1
    # CubaLIF spikes are binary: the next layer needs no multiplier
    assert next(x for x in est["cuba"].layers if x.name == "fc2").dsp == 0


# -- the generated project ---------------------------------------------------------------------------


def _tree(root) -> dict[str, bytes]:
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            if not rel.startswith("build" + os.sep):
                out[rel] = open(p, "rb").read()
    return out


def test_project_layout_and_determinism(fpga, tmp_path):
    g = build_conv_snn()
    a = fpga.compile(g, tmp_path / "a", part="zu9eg")
    b = fpga.compile(build_conv_snn(), tmp_path / "b", part="zu9eg")
    ta, tb = _tree(a.path), _tree(b.path)
    assert ta == tb  # byte-identical
    assert sorted(ta) == sorted(a.files)
    for f in ("README.md", "build_prj.tcl", "estimates.md", "talon_project.json", "descriptor.json", "tb/talon_tb.cpp",
              "firmware/talon_top.cpp", "firmware/talon_top.h", "firmware/talon_fixed.h", "firmware/talon_types.h"):  # fmt: skip
        assert f in ta, f
    # one kernel per primitive family used, nothing else
    kernels = {f for f in ta if f.startswith("firmware/kernels/")}
    assert kernels == {f"firmware/kernels/{k}.h" for k in ("conv2d", "neuron", "maxpool2d", "copy", "affine")}
    # weights come from the descriptor's integers
    w = a.descriptor.array("conv", "weight")
    header = ta["firmware/weights/n_conv.h"].decode()
    assert f"w_n_conv[{w.shape[0]}][{w.shape[1]}][{w.shape[2]}][{w.shape[3]}]" in header
    assert ", ".join(str(int(v)) for v in w.reshape(-1)[:4]) in header
    types = ta["firmware/talon_types.h"].decode()
    assert "#ifdef TALON_USE_AP_TYPES" in types and "ap_int<bits>" in types and "ap_fixed<" in types
    tcl = ta["build_prj.tcl"].decode()
    assert 'set part "xczu9eg-ffvb1156-2-e"' in tcl and "csim_design" in tcl and "csynth_design" in tcl and "set_top talon_top" in tcl
    assert "create_clock -period 5.0" in tcl
    readme = ta["README.md"].decode()
    assert "vitis_hls -f build_prj.tcl" in readme and "g++" in readme and "estimate" in readme.lower()
    man = json.loads(ta["talon_project.json"])
    assert man["part"]["key"] == "zu9eg" and [p["name"] for p in man["spikes"]] == ["lif1", "lif2", "lif3"]
    # a different graph in the same folder leaves no stale headers behind
    c = fpga.compile(build_mlp(), tmp_path / "c")
    fpga.compile(g, c.path, part="zu9eg")
    assert _tree(c.path) == ta
    # regenerating in place rewrites nothing
    before = {f: os.stat(os.path.join(a.path, f)).st_mtime_ns for f in a.files}
    fpga.compile(g, a.path, part="zu9eg")
    assert before == {f: os.stat(os.path.join(a.path, f)).st_mtime_ns for f in a.files}


def test_part_presets(fpga, tmp_path):
    from talon.backend.fpga import PARTS
    from talon.backend.fpga.parts import resolve_part

    assert resolve_part("zynq7020").part == "xc7z020clg400-1" and resolve_part("ZCU102").key == "zu9eg"
    assert resolve_part("xczu9eg-ffvb1156-2-e") is PARTS["zu9eg"]
    with pytest.raises(BackendError, match="unknown FPGA part"):
        resolve_part("virtex-9000")
    prj = fpga.compile(build_mlp(), tmp_path, part="zynq7020")
    assert 'set part "xc7z020clg400-1"' in open(os.path.join(prj.path, "build_prj.tcl")).read()
    with pytest.raises(BackendError, match="out_dir"):
        fpga.compile(build_mlp())


NASTY = ["../../etc/passwd", "int", "a b", "a_b", "a-b", "x*/ #define y", "名前", "1st", "n" * 200]


def test_names_are_sanitised(fpga, tmp_path):
    from talon.backend.fpga.names import c_identifiers

    ids = c_identifiers(NASTY)
    assert len(set(ids.values())) == len(NASTY)
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,80}", i) for i in ids.values())
    assert ids == c_identifiers(NASTY)
    # a graph whose node names are hostile still yields a project confined to its folder
    rng = np.random.default_rng(0)
    names = ["..in\\..\\x", "fc 1 * int", "lif\"1", "out\n#include <evil>"]
    nodes = {
        names[0]: ir.Input(shape=(4,)),
        names[1]: ir.Affine(weight=rng.normal(0, 1, (3, 4)).astype(np.float32), bias=np.zeros(3, np.float32)),
        names[2]: lif(3),
        names[3]: ir.Output(),
    }
    g = chained(nodes)
    root = tmp_path / "prj"
    prj = fpga.compile(g, root)
    for f in prj.files:
        full = os.path.realpath(os.path.join(prj.path, f))
        assert full.startswith(os.path.realpath(root) + os.sep)
    src = open(os.path.join(prj.path, "firmware", "talon_top.cpp"), encoding="utf-8").read()
    assert src.isascii()
    for f in prj.files:
        if f.endswith((".h", ".cpp", ".tcl", ".md")):
            text = open(os.path.join(prj.path, f), encoding="utf-8").read()
            assert "<evil>" not in text and "\\" not in text.replace("\\n", ""), f
            assert all(line.startswith('#include "') or line.startswith("#include <") and line[10:-1] in ("stdint.h", "math.h", "cstdio", "cstdlib", "string", "vector")
                       for line in text.splitlines() if line.startswith("#include")), f  # fmt: skip
    if HAS_GXX:
        rep = fpga.verify(g, torch.rand((100, 2, 4), generator=torch.Generator().manual_seed(0)) * 2, work_dir=tmp_path / "v")
        assert rep.ok, rep.summary()


def test_unsupported_nodes_raise_backend_error(fpga, tmp_path):
    g = ir.Graph({"inp": ir.Input(shape=(4,)), "sig": ir.Sigmoid(), "out": ir.Output()})
    g.chain("inp", "sig", "out")
    with pytest.raises(BackendError):
        fpga.compile(g, tmp_path)


# -- estimates ---------------------------------------------------------------------------------------


def test_estimates_follow_the_documented_model(fpga, tmp_path):
    g = build_conv_snn()
    e1 = fpga.estimate(g, "zynq7020", reuse_factor=1)
    e8 = fpga.estimate(g, "zynq7020", reuse_factor=8)
    assert e1.label == "estimate" and "talon-fpga-estimate" in e1.model
    conv1 = next(x for x in e1.layers if x.name == "conv")
    assert conv1.work == 4 * 8 * 8 * 9 and conv1.lanes == conv1.work and conv1.cycles == 1 + 5
    conv8 = next(x for x in e8.layers if x.name == "conv")
    assert conv8.lanes == -(-conv8.work // 8) and conv8.cycles == 8 + 5
    assert e8.latency_cycles == sum(x.cycles for x in e8.layers) and e8.interval_cycles_dataflow == max(x.cycles for x in e8.layers)
    assert e8.dsp < e1.dsp and e8.latency_cycles > e1.latency_cycles
    # layers fed by spikes need no multipliers
    assert next(x for x in e1.layers if x.name == "conv2").dsp == 0 and next(x for x in e1.layers if x.name == "fc").dsp == 0
    auto = fpga.estimate(g, "zynq7020")
    assert auto.dsp <= 0.8 * 220 and auto.lut <= 0.8 * 53200
    big = fpga.estimate(g, "zu9eg")
    assert big.reuse_factor <= auto.reuse_factor and big.clock_mhz == 200.0
    assert abs(e1.latency_us - e1.latency_cycles / 100.0) < 1e-6
    prj = fpga.compile(g, tmp_path, part="zynq7020", reuse_factor=8)
    md = open(os.path.join(prj.path, "estimates.md")).read()
    assert "not synthesis results" in md and f"{e8.latency_cycles:,} cycles per timestep" in md
    assert prj.manifest["estimates"]["latency_cycles"] == e8.latency_cycles
    with pytest.raises(BackendError):
        fpga.estimate(g, reuse_factor=0)


def _two_format_mlp(second_input: bool) -> ir.Graph:
    """build_mlp's shape with 3 inputs; second_input=True also wires the input straight into n1, so n1
    sums fc's current (the membrane's Q24 format) and the raw input (Q8.7): two inputs, two formats."""
    rng = np.random.default_rng(0)
    nodes = {"inp": ir.Input(shape=(3,)), "fc": affine(3, 3, rng, 1.0), "n1": lif(3, threshold=0.5), "fc2": affine(2, 3, rng, 1.0), "n2": lif(2),
             "out": ir.Output()}  # fmt: skip
    edges = [("inp", "fc"), ("fc", "n1"), ("n1", "fc2"), ("fc2", "n2"), ("n2", "out")] + ([("inp", "n1")] if second_input else [])
    return ir.Graph(nodes, edges)


def test_estimates_count_the_neuron_input_alignment(fpga, tmp_path):
    """A neuron whose inputs come in different formats runs one k_align_add pass per input before its
    update (hls.py): the estimate adds those passes' cycles, adders and sum buffer, and claims exactly the
    passes and lanes the generated top contains."""
    from talon.backend.fpga.estimate import align_passes

    one, two = fpga.descriptor(_two_format_mlp(False), n_steps=5), fpga.descriptor(_two_format_mlp(True), n_steps=5)
    n1 = two.nodes["n1"]
    assert n1["in_formats"] == [n1["membrane"], two.nodes["inp"]["out_format"]] and n1["in_formats"][0][1] > n1["in_formats"][1][1]
    (mb, fv), (ib, fi) = n1["membrane"], n1["in_formats"][1]
    word = max(mb, ib + fv - fi) + 1  # the input shifted up to the membrane's fraction, plus one carry
    assert align_passes(one.nodes["n1"]) == (0, 0) and align_passes(n1) == (2, word) and word == 25
    for R, lanes in ((1, 3), (2, 2), (4, 1)):
        e1, e2 = ({x.name: x for x in fpga.estimate(d, reuse_factor=R).layers}["n1"] for d in (one, two))
        assert e1.lanes == e2.lanes == lanes and e1.work == e2.work == 3
        assert e1.cycles == -(-3 // lanes) + 6 and e2.cycles == e1.cycles + 2 * -(-3 // lanes)
        # two passes of `lanes` adders of the aligned word, and the 3-word sum buffer in LUTRAM (75 bits / 64)
        assert e2.lut - e1.lut == 2 * lanes * word + 2 and e2.dsp == e1.dsp and e2.bram_18k == e1.bram_18k == 0
    # the estimate and the generated top agree, for this graph, for neurons (LIF, CubaLIF) with one input at
    # the state's fraction, and for recurrent neurons with two or three inputs of one format: a project's
    # estimate counts the passes it generates, each at the layer's lanes
    cases = {"two": _two_format_mlp(True), "mlp": build_mlp(), "cuba": build_cuba_mlp()}
    cases.update((label, g) for label, g, _ in recurrent_cases() if label in ("rleaky", "rsynaptic_subtract_feedback"))
    seen = set()
    for label, g in cases.items():
        prj = fpga.compile(g, tmp_path / label, n_steps=5, reuse_factor=2)
        calls, est = kernel_calls(top_source(prj.path)), {x.name: x for x in prj.estimates.layers}
        for name, ident in prj.manifest["identifiers"].items():
            nd = prj.descriptor.nodes[name]
            if nd["kind"] == "neuron":
                passes = align_passes(nd)[0]
                assert [lanes for k, lanes in calls[ident] if k == "k_align_add"] == [est[name].lanes] * passes, (label, name)
                loops = 1 + passes + ("k_current" in [k for k, _ in calls[ident]])  # CubaLIF: current, then membrane
                assert est[name].cycles == loops * -(-est[name].work // est[name].lanes) + 6, (label, name)
                seen.add(passes)
    assert seen == {0, 2, 3}  # rsynaptic_subtract_feedback: rl sums fc, its recurrence and the feedback


def test_registered_lazily():
    from talon.backend import list_backends

    assert "fpga" in list_backends()
    b = get_backend("fpga")
    assert b.capabilities.compile and "LIF" in b.capabilities.primitives


@needs_gxx
def test_tutorial_hybrid_graph_is_bit_exact(fpga, tmp_path):
    from backend_graphs import build_hybrid

    x = torch.rand((100, 1, 1, 28, 28), generator=torch.Generator().manual_seed(1)) * 2
    rep = fpga.verify(build_hybrid(), x, work_dir=tmp_path)
    assert rep.ok and rep.n_steps == 100, rep.summary()
    assert int(rep.csim.spikes["lif"].sum()) > 0


# -- hls4ml (ANN-only parts) -------------------------------------------------------------------------


def _ann() -> ir.Graph:
    rng = np.random.default_rng(0)
    nodes = {
        "inp": ir.Input(shape=(6,)),
        "fc1": ir.Affine(weight=rng.normal(0, 0.5, (8, 6)).astype(np.float32), bias=rng.normal(0, 0.2, 8).astype(np.float32)),
        "relu": ir.ReLU(),
        "fc2": ir.Affine(weight=rng.normal(0, 0.5, (4, 8)).astype(np.float32), bias=rng.normal(0, 0.2, 4).astype(np.float32)),
        "out": ir.Output(),
    }
    return chained(nodes)


def test_hls4ml_config_from_the_plan(fpga):
    from talon.backend.fpga import ir_to_hls4ml_config

    desc = fpga.descriptor(_ann())
    cfg = ir_to_hls4ml_config(desc, reuse_factor=2)
    assert set(cfg["LayerName"]) == {"x", "n_fc1", "n_relu", "n_fc2"} and cfg["InputShape"] == (6,)
    fw = desc.nodes["fc1"]["fracs"]["weight"]
    assert cfg["LayerName"]["n_fc1"]["Precision"]["weight"] == f"ap_fixed<8,{8 - fw}>"
    b, f = desc.nodes["fc2"]["out_format"]
    assert cfg["LayerName"]["n_fc2"]["Precision"]["result"] == f"ap_fixed<{b},{b - f},AP_RND,AP_SAT>"
    assert cfg["LayerName"]["n_fc1"]["ReuseFactor"] == 2 and cfg == ir_to_hls4ml_config(desc, reuse_factor=2)
    with pytest.raises(BackendError, match="ANN-only"):
        ir_to_hls4ml_config(build_mlp())


@needs_gxx
def test_hls4ml_build_matches_the_fixed_point_simulator(fpga, tmp_path):
    x = torch.rand((1, 128, 6), generator=torch.Generator().manual_seed(0)) * 2.5 - 1.2
    model, sim, desc = hls4ml_build(_ann(), x, tmp_path / "hls4ml")
    assert_hls4ml_output_is_the_simulators(model.predict(x[0].numpy().astype(np.float64)), sim, desc)
