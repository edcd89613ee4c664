"""Every constant the fixed-point plan must represent is held, or refused by name (issue 15): biases,
leak terms, thresholds; more bits never make the plan coarser."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from talon import ir
from talon.backend.compile import build_descriptor
from talon.backend.cpu import FixedPointConfig
from talon.backend.cpu import fixed as fx
from talon.errors import BackendError
from talon.ir.primitives.neurons import coefficients
from talon.sdk import lint_graph
from talon.sdk.fixed_point import bias_to_ints, saturation

import backend_int_reference as ref
from backend_graphs import build_bias_example, build_braille_like, build_mlp, chained, lif


def _bias_inputs(T: int = 100) -> torch.Tensor:
    return torch.rand((T, 1, 4), generator=torch.Generator().manual_seed(0)) * 0.01


def _events(T: int = 120, B: int = 2, n: int = 12) -> torch.Tensor:
    return (torch.rand((T, B, n), generator=torch.Generator().manual_seed(0)) < 0.1).float()


def _bit_exact(g: ir.Graph, x: torch.Tensor, sim) -> None:
    """The simulation equals the integer reference driven only by the descriptor."""
    desc = build_descriptor(g, sim.fixed_point)
    outs = ref.run(desc, {g.input_names[0]: x.numpy()}, {})
    for n in g.output_names:
        want = np.ldexp(np.stack(outs[n]).astype(np.float64), -desc.nodes[n]["out_format"][1])
        assert np.array_equal(sim.outputs[n].numpy(), want), n


def test_the_issue_bias_example_keeps_its_bias(cpu):
    g, x = build_bias_example(), _bias_inputs()
    ref_sim = cpu.simulate(g, x, mode="float")
    sim = cpu.simulate(g, x, mode="fixed")
    # fixed-point version 2 saturated the bias 0.5 to 0.125: 48 spikes against 320, agreement 0.60
    assert sim.spike_counts["lif"] == ref_sim.spike_counts["lif"] > 0
    assert sim.agreement["lif"] == 1.0
    desc = cpu.compile(g, calibration_inputs=x)
    bias = np.ldexp(desc.array("fc", "bias").astype(np.float64), -desc.nodes["fc"]["fracs"]["bias"])
    assert np.array_equal(bias, np.full(8, 0.5))
    _bit_exact(g, x, sim)


def test_braille_like_recurrent_cubalif_does_not_lose_agreement_with_more_activation_bits(cpu):
    g, x = build_braille_like(), _events()
    agree = {}
    for bits in (8, 16):
        sim = cpu.simulate(g, x, mode="fixed", fixed_config=FixedPointConfig(activation_bits=bits))
        agree[bits] = sim.agreement
        p = sim.fixed_point.nodes["fc1"]
        held = np.ldexp(p.ints["bias"].astype(np.float64), -p.fracs["bias"])
        # rounded to its grid (the accumulator's step, or 24 significant bits when coarser), never saturated
        assert np.max(np.abs(held - g.nodes["fc1"].bias)) <= 2.0 ** -(p.attrs["bias_grid_frac"] + 1)
        assert p.attrs["bias_grid_frac"] == min(p.acc_frac, 24)
        _bit_exact(g, x, sim)
    # version 2: lif1 0.98 -> 0.93 with 16-bit activations (the input layer's bias saturated)
    for n in ("lif1", "lif2"):
        assert agree[16][n] >= agree[8][n] - 0.005, (n, agree)
    assert agree[16]["lif1"] >= 0.97


def _braille_nir(dt: float, seed: int = 0, n_in: int = 12, n_h: int = 38, n_out: int = 7):
    """build_braille_like written the way snnTorch's NIR export writes an RSynaptic network: a nir.NIRGraph
    with time constants in seconds (dt = 1e-4), r = tau_mem / dt, w_in = tau_syn / dt, and the recurrence
    as an edge lif1 -> w_rec -> lif1."""
    nir = pytest.importorskip("nir")
    rng = np.random.default_rng(seed)

    def cuba(n: int):
        alpha, beta = rng.uniform(0.7, 0.9, n), rng.uniform(0.9, 0.97, n)
        tau_syn, tau_mem = dt / (1 - alpha), dt / (1 - beta)
        return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, w_in=tau_syn / dt, v_leak=np.zeros(n), v_threshold=np.ones(n))

    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "fc1": nir.Affine(weight=rng.normal(0, 0.01, (n_h, n_in)).astype(np.float32), bias=rng.uniform(0.15, 0.3, n_h).astype(np.float32)),
        "lif1": cuba(n_h),
        "w_rec": nir.Linear(weight=rng.normal(0, 0.002, (n_h, n_h)).astype(np.float32)),
        "fc2": nir.Linear(weight=rng.normal(0, 0.1, (n_out, n_h)).astype(np.float32)),
        "lif2": cuba(n_out),
        "output": nir.Output(output_type={"output": np.array([n_out])}),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "w_rec"), ("w_rec", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def test_a_nir_recurrent_cubalif_network_runs_in_fixed_point(cpu):
    """NIR's time unit (dt = 1e-4 s) left no float64 w_in for which dt*w_in/tau_syn is exactly the
    quantised gain 1 ("cannot represent the quantised input gain exactly"): the plan now also moves
    tau_syn among the values that give the same alpha."""
    import warnings

    from talon.ir import from_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NIR metadata notes
        g = from_nir(_braille_nir(1e-4), dt=1e-4)
    x = _events(T=60)
    agree = {}
    for bits in (8, 16):
        sim = cpu.simulate(g, x, mode="fixed", record=True, fixed_config=FixedPointConfig(activation_bits=bits))
        _bit_exact(g, x, sim)
        agree[bits] = sim.agreement
        qg = sim.fixed_point.graph
        co = coefficients(qg.nodes["lif1"], 1e-4)  # what the runtime derives from the on-grid graph
        p = sim.fixed_point.nodes["lif1"]
        assert np.array_equal(co.gain_in, np.ldexp(p.ints["gain_in"].astype(np.float64), -p.fracs["gain_in"]))
        assert np.array_equal(co.alpha, np.ldexp(p.ints["alpha"].astype(np.float64), -p.fracs["alpha"]))
    assert all(agree[16][n] >= agree[8][n] - 0.005 for n in agree[8]) and agree[8]["lif1"] >= 0.99


def _spiking_affine_graph(bias: float, accumulator_bits: int = 8) -> ir.Graph:
    """Spikes -> SpikingAffine, weights 0.01 (13 fractional bits at 8 bits)."""
    nodes = {
        "inp": ir.Input(shape=(3,)),
        "fc0": ir.Affine(weight=np.eye(3, dtype=np.float32), bias=np.zeros(3, np.float32)),
        "n0": lif(3, threshold=0.5),
        "sfc": ir.SpikingAffine(weight=np.full((2, 3), 0.01, np.float32), bias=np.array([bias, 0.1], np.float32), weight_bits=8,
                                accumulator_bits=accumulator_bits),
        "n1": lif(2),
        "out": ir.Output(),
    }  # fmt: skip
    return chained(nodes)


def test_the_weight_grid_coarsens_so_that_the_accumulator_holds_the_bias(cpu):
    # a 16-bit accumulator at the weights' own grid (2^-13) holds +-4: the plan takes the grid 2^-12
    g = _spiking_affine_graph(bias=5.0, accumulator_bits=16)
    desc = cpu.compile(g)
    assert desc.nodes["sfc"]["fracs"] == {"weight": 12, "bias": 12}
    assert desc.array("sfc", "bias")[0] == 5 * 2**12 and desc.array("sfc", "weight")[0, 0] == round(0.01 * 2**12)
    assert "CONSTANT_SATURATES" not in lint_graph(g).codes


def test_a_bias_no_weight_grid_can_hold_is_refused_by_node_field_value_and_nearest(cpu):
    g = _spiking_affine_graph(bias=5.0, accumulator_bits=8)
    with pytest.raises(BackendError) as exc:
        cpu.simulate(g, n_steps=3, mode="fixed")
    msg = str(exc.value)
    assert "node 'sfc' bias 5 saturates in hardware" in msg
    assert "8-bit accumulator" in msg and "nearest representable value is 0.0155029" in msg and "raise accumulator_bits" in msg
    with pytest.raises(BackendError, match="node 'sfc' bias 5 saturates"):
        cpu.compile(g)
    # lint says the same before anything runs (spikes feed the layer: its accumulator step is known)
    issues = [i for i in lint_graph(g) if i.code == "CONSTANT_SATURATES"]
    assert [i.node for i in issues] == ["sfc"]
    assert msg.endswith(issues[0].message)


def test_lint_reports_the_issue_example_only_when_it_would_saturate():
    # the issue's example is held now: lint, told the real input range, stays silent
    assert "CONSTANT_SATURATES" not in lint_graph(build_bias_example(), input_range=(0.0, 0.01)).codes
    # a neuron gain outside the coefficient range is the planner's error too
    g = build_mlp(neuron=ir.IF(r=np.full(3, 10.0), v_threshold=np.ones(3)))
    issues = [i for i in lint_graph(g) if i.code == "CONSTANT_SATURATES"]
    assert [i.node for i in issues] == ["n1"] and "gain 10" in issues[0].message


def test_a_coefficient_outside_its_word_names_the_nearest_value(cpu):
    g = build_mlp(neuron=ir.IF(r=np.full(3, 10.0), v_threshold=np.ones(3)))
    with pytest.raises(BackendError, match="'n1' coefficient gain reaches 10, .* nearest representable value is 1.99998"):
        cpu.simulate(g, n_steps=2, mode="fixed")


def test_bias_to_ints_shifts_a_wide_bias_instead_of_saturating():
    b = np.array([0.5, -0.3, 1e-9])
    ints, f_b = bias_to_ints(b, unit_frac=26, bias_bits=8, acc_bits=32)
    assert f_b == 7  # 0.5 needs 8 signed bits at 2^-7
    held = np.ldexp(ints.astype(np.float64), -26)
    assert np.all(np.abs(held - b) <= 2.0 ** -8)
    assert np.all(ints % (1 << (26 - 7)) == 0)
    # a bias that fits bias_bits at the accumulator's fraction is the old rule: round(b * 2^unit)
    ints, f_b = bias_to_ints(np.array([0.1, -0.2]), unit_frac=10, bias_bits=24, acc_bits=32)
    assert f_b == 10 and list(ints) == [102, -205]
    assert saturation(np.array([0.99]), 8, 7) is None  # 126.7 steps: rounding, not saturation
    assert saturation(np.array([-2.0]), 8, 7) == (-2.0, -127 / 128)


# -- more bits never make the plan coarser -----------------------------------------------------------

_WIDTHS = {"weight_bits": (2, 16), "activation_bits": (2, 16), "accumulator_bits": (16, 48), "bias_bits": (4, 24), "membrane_bits": (8, 24)}


def _grids(plan: fx.FixedPointPlan) -> dict[tuple[str, str], int]:
    """Fractional bits of every format and constant grid of a plan (biases: their significant grid)."""
    out: dict[tuple[str, str], int] = {}
    for name, p in plan.nodes.items():
        out[(name, "out")] = p.out_format.frac
        if p.membrane is not None:
            out[(name, "membrane")] = p.membrane.frac
        if p.acc_frac is not None:
            out[(name, "accumulator")] = p.acc_frac
        for k, f in p.fracs.items():
            out[(name, k)] = f
        for k, f in p.attrs.items():
            if k.endswith("_grid_frac"):  # a wide bias's grid is coarser than its units
                out[(name, k)] = f
    return out


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16), bias_scale=st.sampled_from([0.01, 0.5, 4.0]), field=st.sampled_from(sorted(_WIDTHS)), data=st.data(),
)  # fmt: skip
def test_raising_a_bit_width_never_coarsens_any_grid(seed, bias_scale, field, data):
    """Formats are chosen by frac_for_range, which grows with the width: the plan's every format and
    constant grid is at least as fine with more bits (weights excepted when activation_bits rises). (Spike agreement itself is not monotone in
    general: docs/fixed_point.md section 8 says why.)"""
    rng = np.random.default_rng(seed)
    g = build_mlp(seed=seed)
    g.nodes["fc1"] = g.nodes["fc1"].replace(bias=(rng.normal(0, bias_scale, 3)).astype(np.float32))
    lo, hi = _WIDTHS[field]
    a = data.draw(st.integers(lo, hi - 1))
    b = data.draw(st.integers(a + 1, hi))
    cal = fx.Calibration({"inp": 1.0, "fc1": 2.0, "n1": 1.0, "fc2": 2.0, "n2": 1.0, "out": 1.0}, {"n1": 1.5, "n2": 1.5})
    base = FixedPointConfig()
    try:
        coarse = fx.plan_fixed_point(g, cal, FixedPointConfig(**{**base.to_dict(), field: a}))
    except BackendError:
        return  # too narrow to hold a constant: refused, not saturated
    fine = fx.plan_fixed_point(g, cal, FixedPointConfig(**{**base.to_dict(), field: b}))
    gc, gf = _grids(coarse), _grids(fine)
    # one trade: a finer input step makes the accumulator's step finer, which (rule 2) may make the weights'
    # grid coarser so that the accumulator still holds the bias; their product's grid (the accumulator) is finer
    keys = [k for k in gc if not (field == "activation_bits" and k[1].endswith("weight"))]
    assert all(gf[k] >= gc[k] for k in keys), {k: (gc[k], gf[k]) for k in keys if gf[k] < gc[k]}


@pytest.mark.parametrize("field,widths", [("weight_bits", (4, 8, 12, 16)), ("activation_bits", (8, 12, 16)), ("accumulator_bits", (24, 32, 48))])
def test_more_bits_do_not_lower_agreement_on_the_issue_models(cpu, field, widths):
    cases = [(build_bias_example(), _bias_inputs(60)), (build_braille_like(), _events(T=80))]
    for g, x in cases:
        prev = None
        for w in widths:
            sim = cpu.simulate(g, x, mode="fixed", fixed_config=FixedPointConfig(**{field: w}))
            mean = float(np.mean(list(sim.agreement.values())))
            if prev is not None:
                assert mean >= prev - 0.01, (field, w, mean, prev)
            prev = mean


def test_the_fpga_kernels_reproduce_wide_biases_and_coarsened_weights_bit_for_bit(tmp_path):
    """Version 3's biases (wider than bias_bits, in the accumulator's units) and weight grids coarsened to
    hold them go through the generated C++ unchanged: the C simulation equals the CPU simulator."""
    import fpga_helpers as helpers

    if not helpers.HAS_GXX:
        pytest.skip("g++ not found: the C simulation cannot run")
    from talon.backend import get_backend

    fpga = get_backend("fpga")
    rep = fpga.verify(build_bias_example(), _bias_inputs(40), n_steps=40, work_dir=tmp_path / "bias")
    assert rep.ok, rep.summary()
    spikes = (torch.rand((40, 2, 3), generator=torch.Generator().manual_seed(2)) < 0.5).float()
    rep = fpga.verify(_spiking_affine_graph(bias=5.0, accumulator_bits=16), spikes, n_steps=40, work_dir=tmp_path / "capped")
    assert rep.ok, rep.summary()
    assert int(rep.csim.spikes["n1"].sum()) > 0


def test_the_fixed_point_docs_examples_run(capsys):
    import pathlib
    import re

    doc = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "fixed_point.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "docs/fixed_point.md", "exec"), {})
    out = capsys.readouterr().out
    assert "CONSTANT_SATURATES (fc): node 'fc' bias 5 saturates in hardware" in out
    assert "fixed-point mode: node 'fc' bias 5 saturates in hardware" in out
    assert "kept calibration: float run, 20 steps:" in out
    assert "node 'n' membrane reached -65, outside its format Q24.17" in out
