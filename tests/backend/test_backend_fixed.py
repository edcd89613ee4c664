"""Fixed-point mode: bit-exact against the integer specification, deterministic, agreement reported."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talon import ir
from talon.backend.compile import build_descriptor
from talon.backend.cpu import FixedPointConfig
from talon.backend.cpu import fixed as fx
from talon.errors import BackendError

import backend_int_reference as ref
from backend_graphs import (
    CUBA_RESETS, RESAMPLE_TAPS, build_cuba_mlp, build_hybrid, build_mixed_conv, build_mlp, build_odd_resample_net, build_resample_net,
    build_skip_concat_rounding, build_threshold_residual, lif, recurrent_cases,
)  # fmt: skip


def _check_bit_exact(cpu, g, x, **kw):
    """simulate(mode="fixed") == the integer reference driven only by the descriptor."""
    sim = cpu.simulate(g, x, mode="fixed", record=True, **kw)
    desc = build_descriptor(g, sim.fixed_point)
    mems: dict = {}
    outs = ref.run(desc, {g.input_names[0]: x.numpy()}, mems)
    nodes = desc.nodes
    for n in sim.spike_counts:
        frac = nodes[n]["out_format"][1]
        want = np.ldexp(np.stack(outs[n]).astype(np.float64), -frac)
        assert np.array_equal(sim.spikes[n].numpy(), want), n
        assert int(np.count_nonzero(want)) == sim.spike_counts[n]
    assert set(sim.membranes) == set(mems)
    for n, mem in sim.membranes.items():
        want = np.ldexp(np.stack(mems[n]).astype(np.float64), -nodes[n]["membrane"][1])
        assert np.array_equal(mem.numpy(), want), n
    for n in g.output_names:
        frac = nodes[n]["out_format"][1]
        want = np.ldexp(np.stack(outs[n]).astype(np.float64), -frac)
        assert np.array_equal(sim.outputs[n].numpy(), want), n
    return sim, desc


def test_hybrid_is_bit_exact_and_agrees_with_float(cpu, hybrid):
    x = torch.rand((8, 2, 1, 28, 28), generator=torch.Generator().manual_seed(1)) * 2
    sim, desc = _check_bit_exact(cpu, hybrid, x)
    assert sim.mode == "fixed" and sim.outputs_valid
    assert set(sim.agreement) == {"lif"} and 0.9 <= sim.agreement["lif"] <= 1.0
    assert desc.array("fc1", "weight").dtype == np.int8
    assert "agreement" in sim.summary()


def _variants():
    tau = np.full(3, 4.0)
    yield "subtract", lif(3, reset_mode="subtract"), None
    yield "zero", lif(3, reset_mode="zero"), None
    yield "zero_post", lif(3, reset_mode="zero_post"), None
    yield "none", lif(3, reset_mode="none"), None
    yield "subtract_no_delay", lif(3, reset_mode="subtract", reset_delay=False), None
    yield "zero_no_delay", lif(3, reset_mode="zero", reset_delay=False), None
    yield "leak_reset_gain", ir.LIF(tau=tau, r=np.array([2.0, 3.0, 5.0]), v_leak=np.full(3, 0.3), v_threshold=np.array([0.8, 1.0, 1.3]),
                                   v_reset=np.full(3, -0.2), reset_mode="zero"), None  # fmt: skip
    yield "graded", lif(3, graded_spikes_factor=0.5), None
    yield "if", ir.IF(v_threshold=np.ones(3), r=np.full(3, 0.75), reset_mode="subtract"), None
    yield "li_out", lif(3), ir.LI(tau=np.full(2, 5.0), r=np.full(2, 5.0), v_leak=np.zeros(2))
    yield "integrator_out", lif(3), ir.Integrator(r=np.full(2, 0.5))


@pytest.mark.parametrize("case", list(_variants()), ids=lambda c: c[0])
def test_neuron_variants_are_bit_exact(cpu, case):
    _, n1, n2 = case
    g = build_mlp(seed=2, neuron=n1, neuron2=n2)
    x = torch.rand((25, 3, 4), generator=torch.Generator().manual_seed(4)) * 2 - 0.5
    sim, desc = _check_bit_exact(cpu, g, x)
    assert sum(sim.spike_counts.values()) > 0


def test_dt_and_config_variants_are_bit_exact(cpu):
    g = build_mlp(seed=3)
    g.dt = 0.5
    x = torch.rand((20, 2, 4), generator=torch.Generator().manual_seed(7)) * 3
    _check_bit_exact(cpu, g, x)
    cfg = FixedPointConfig(weight_bits=4, activation_bits=12, accumulator_bits=16, membrane_bits=16, coefficient_frac_bits=10)
    sim, desc = _check_bit_exact(cpu, g, x, fixed_config=cfg)
    assert desc.meta["fixed_point"]["weight_bits"] == 4
    w = desc.array("fc1", "weight")
    assert -8 <= int(w.min()) and int(w.max()) <= 7


def test_more_node_types_are_bit_exact(cpu):
    """Leaky ReLU, AvgPool2d, SpikingAffine (its own bit widths), Threshold and a residual Skip."""
    rng = np.random.default_rng(5)
    ga = build_mixed_conv(rng)
    x = torch.rand((12, 2, 1, 6, 6), generator=torch.Generator().manual_seed(8)) * 2 - 0.3
    sim, desc = _check_bit_exact(cpu, ga, x)
    w = desc.array("sfc", "weight")
    assert -8 <= int(w.min()) and int(w.max()) <= 7 and desc.nodes["sfc"]["acc_bits"] == 16
    assert sim.spike_counts["lif"] > 0
    gb = build_threshold_residual(rng)
    x = torch.rand((10, 3, 4), generator=torch.Generator().manual_seed(9)) * 2 - 1
    sim, _ = _check_bit_exact(cpu, gb, x)
    assert sim.spike_counts["thr"] > 0 and sim.input_events["fc2"] == sim.spike_counts["thr"]


def test_fixed_point_is_deterministic(cpu, hybrid):
    a = cpu.simulate(hybrid, n_steps=6, mode="fixed", record=True)
    b = cpu.simulate(hybrid, n_steps=6, mode="fixed", record=True)
    assert torch.equal(a.output, b.output) and torch.equal(a.spikes["lif"], b.spikes["lif"])
    assert torch.equal(a.membranes["lif"], b.membranes["lif"])
    assert a.agreement == b.agreement
    stepped = cpu.simulate(hybrid, n_steps=6, mode="fixed", record=True, batch_time=False, chunk_steps=4)
    assert torch.equal(a.output, stepped.output) and torch.equal(a.membranes["lif"], stepped.membranes["lif"])
    assert build_descriptor(hybrid, a.fixed_point) == build_descriptor(hybrid, b.fixed_point)
    # outputs lie on their grid
    frac = a.fixed_point.format_of("output").frac
    scaled = torch.ldexp(a.output, torch.tensor(frac, dtype=torch.float64))
    assert torch.equal(scaled, scaled.round())


def test_membranes_round_up_and_saturate():
    fmt = fx.Format(8, 4)
    x = torch.tensor([0.01, -0.01, 0.0625, 100.0, -100.0], dtype=torch.float64)
    assert fx.round_ceil(x, fmt).tolist() == [0.0625, 0.0, 0.0625, 127 / 16, -8.0]
    assert fx.round_half_up(torch.tensor([0.03125, -0.03125, 0.09375], dtype=torch.float64), fmt).tolist() == [0.0625, 0.0, 0.125]
    assert fx.frac_for_range(1.0, 8) == 6 and fx.frac_for_range(0.75, 8) == 7 and fx.frac_for_range(0.0, 8) == 7


def test_unsupported_graphs_raise_backend_error(cpu):
    g = build_mlp()
    sig = ir.Graph({**{n: g.nodes[n] for n in ("inp", "fc1")}, "s": ir.Sigmoid(), "out": ir.Output()})
    sig.chain("inp", "fc1", "s", "out")
    with pytest.raises(BackendError, match="Sigmoid.*lookup-table"):
        cpu.simulate(sig, n_steps=2, mode="fixed")
    assert cpu.simulate(sig, n_steps=2).outputs_valid  # float mode runs it
    cuba_mlp = build_mlp(neuron=ir.CubaLIF(tau_syn=np.full(3, 5.0), tau_mem=np.full(3, 10.0), r=np.full(3, 10.0), v_leak=np.zeros(3), v_threshold=np.ones(3)))
    assert cpu.compile(cuba_mlp).nodes["n1"]["current"][0] == 24  # CubaLIF is specified now (section 3)
    with pytest.raises(BackendError, match="weight_bits"):
        FixedPointConfig(weight_bits=40)
    with pytest.raises(BackendError):
        FixedPointConfig(membrane_bits=True)


def test_non_finite_constants_are_refused_by_name(cpu):
    g = build_mlp()
    bias = g.nodes["fc2"].bias.copy()
    bias[1] = np.nan
    g.nodes["fc2"] = g.nodes["fc2"].replace(bias=bias)
    with pytest.raises(BackendError, match="'fc2' bias holds NaN or Inf"):
        cpu.simulate(g, n_steps=2, mode="fixed")
    g = build_mlp(neuron=lif(3).replace(v_threshold=np.array([1.0, np.inf, 1.0])))
    with pytest.raises(BackendError, match="'n1' v_threshold holds NaN or Inf"):
        cpu.simulate(g, n_steps=2, mode="fixed")
    # An infinite time constant has finite coefficients (beta = 1, gain 0): it meets the plan's own rule.
    g = build_mlp(neuron=lif(3).replace(tau=np.full(3, np.inf)))
    with pytest.raises(BackendError, match="beta == 1 after quantisation"):
        cpu.simulate(g, n_steps=2, mode="fixed")


def test_constants_outside_their_formats_are_refused_not_saturated(cpu):
    # graded spikes: exact values only (255/128 needs 9 bits at g = 7); a large factor uses g < 0 exactly
    g = build_mlp(neuron=lif(3).replace(graded_spikes_factor=255 / 128))
    with pytest.raises(BackendError, match=r"'n1' graded_spikes_factor 1.9921875 has no exact 8-bit value \(a spike would change size; the nearest is 1.984375\)"):
        cpu.simulate(g, n_steps=2, mode="fixed")
    g = build_mlp(neuron=lif(3).replace(graded_spikes_factor=200.0))
    desc = cpu.compile(g)
    assert desc.arrays["n1/graded_spikes_factor"][0] * 2.0 ** -desc.nodes["n1"]["fracs"]["graded_spikes_factor"] == 200.0
    g = build_mlp(neuron=lif(3).replace(graded_spikes_factor=np.inf))
    with pytest.raises(BackendError, match="'n1' graded_spikes_factor holds NaN or Inf"):
        cpu.simulate(g, n_steps=2, mode="fixed")
    # coefficients are Q(c+2).c: a gain of 10 used to saturate to 1.99998 silently
    g = build_mlp(neuron=ir.IF(r=np.full(3, 10.0), v_threshold=np.ones(3)))
    with pytest.raises(BackendError, match="'n1' coefficient gain reaches 10, outside the coefficient range"):
        cpu.simulate(g, n_steps=2, mode="fixed")
    # a CubaLIF whose current does not decay names alpha and tau_syn, not beta and tau
    cuba = ir.CubaLIF(tau_syn=np.full(3, np.inf), tau_mem=np.full(3, 10.0), r=np.full(3, 10.0), v_leak=np.zeros(3),
                      v_threshold=np.ones(3), w_in=np.full(3, 1.0))
    with pytest.raises(BackendError, match="alpha == 1 after quantisation \\(tau_syn = inf\\)"):
        cpu.simulate(build_mlp(neuron=cuba), n_steps=2, mode="fixed")


def test_compile_matches_the_simulated_plan(cpu):
    g = build_hybrid(seed=1)
    x = torch.rand((5, 1, 1, 28, 28), generator=torch.Generator().manual_seed(2))
    sim = cpu.simulate(g, x, mode="fixed")
    desc = cpu.compile(g, calibration_inputs=x)
    assert desc == build_descriptor(g, sim.fixed_point)
    assert desc.layer_order == g.topological_order()
    assert desc.meta["mapping"] == {"core_assignment": None, "routes": None}
    conv = desc.nodes["conv1"]
    assert conv["params"]["padding"] == [1, 1] and conv["output_shape"] == [16, 28, 28]
    assert desc.nodes["lif"]["attrs"] == {"reset_mode": "zero", "reset_delay": True}
    assert set(desc.nodes["lif"]["arrays"]) == {"beta", "gain", "v_threshold", "leak", "graded_spikes_factor"}
    assert int(desc.array("lif", "beta")[0]) == round(0.9 * 2**16)


# -- CubaLIF ------------------------------------------------------------------------------------------


def _cuba_inputs(T=100, B=3, seed=4):
    return torch.rand((T, B, 4), generator=torch.Generator().manual_seed(seed)) * 2 - 0.5


def test_cubalif_every_reset_mode_is_bit_exact_and_agrees_with_float(cpu):
    g = build_cuba_mlp()
    sim, desc = _check_bit_exact(cpu, g, _cuba_inputs())
    for label, mode, delay in CUBA_RESETS:
        nd = desc.nodes[f"c1_{label}"]
        assert nd["attrs"] == {"reset_mode": mode, "reset_delay": delay}
        assert {"alpha", "gain_in", "beta", "gain", "v_threshold", "leak"} <= set(nd["arrays"])
        # the synaptic layer delivers at the precision of the state it feeds: the current, not the membrane
        assert desc.nodes[f"fc1_{label}"]["out_format"] == nd["current"]
        assert sim.spike_counts[f"c1_{label}"] > 0 and sim.spike_counts[f"c2_{label}"] > 0, label
    assert int(desc.array("c1_zero", "alpha")[0]) == round(0.8 * 2**16) and int(desc.array("c1_zero", "gain_in")[0]) == 2**16
    assert int(desc.array("c1_gains", "gain_in")[0]) == 2**16  # w_in None: unit gain, stored all the same
    assert int(desc.array("c1_gains", "gain")[0]) == round(2.0 / 5.0 * 2**16)  # dt*r/tau_mem
    # spikes agree with the float simulation except where quantisation moves a membrane across the threshold
    assert min(sim.agreement.values()) >= 0.75 and np.mean(list(sim.agreement.values())) >= 0.95, sim.agreement


def test_cubalif_differs_from_float_only_by_the_documented_rounding(cpu):
    """Fed the same on-grid input, the float runtime on the plan's on-grid graph and fixed mode differ only
    by the rounding of fc1's output (<= 1/2 LSB), of the current (rhu, <= 1/2 LSB) and of the membrane
    (ceil, < 1 LSB) at every step, propagated through the decays: |dI| <= (Gi*dx + lsb_i/2) / (1 - alpha),
    |dV| <= (G*|dI| + lsb_v) / (1 - beta). Reset mode "none" keeps the spikes out of the membrane."""
    g = build_cuba_mlp()
    x = _cuba_inputs()
    sim = cpu.simulate(g, x, mode="fixed", record=["c1_none"], compare=False)
    plan = sim.fixed_point
    xq = fx.round_half_up(x.to(torch.float64), plan.format_of("inp")).to(torch.float32)  # exact in float32
    ref = cpu.simulate(plan.graph, xq, record=["c1_none"])
    p, c = plan.nodes["c1_none"], plan.config.coefficient_frac_bits
    coef = {k: float(np.max(v)) / 2**c for k, v in p.ints.items() if k in ("alpha", "gain_in", "beta", "gain")}
    dx = plan.format_of("fc1_none").lsb / 2
    d_i = (coef["gain_in"] * dx + p.current.lsb / 2) / (1 - coef["alpha"])
    d_v = (coef["gain"] * d_i + p.membrane.lsb) / (1 - coef["beta"])
    err = (sim.membranes["c1_none"] - ref.membranes["c1_none"].to(torch.float64)).abs().max().item()
    assert 0 < err <= d_v + 1e-5, (err, d_v)
    assert d_v < 0.01 * float(np.max(g.nodes["c1_none"].v_threshold))


# -- recurrent graphs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(recurrent_cases()), ids=lambda c: c[0])
def test_recurrent_graphs_are_bit_exact_and_agree_with_float(cpu, case):
    label, g, x = case
    sim, desc = _check_bit_exact(cpu, g, x[:60])
    assert desc.nodes["rl.recurrent"]["delayed_inputs"] == [0]  # reads rl's spikes of the previous step
    assert desc.nodes["rl"]["delayed_inputs"] == []
    if "feedback" in label:  # every edge leaving a neuron inside the loop is delayed, fc2's too
        assert desc.nodes["fc2"]["delayed_inputs"] == [0] and desc.nodes["fb"]["delayed_inputs"] == [0]
    assert sim.spike_counts["rl"] > 0 and sim.spike_counts["n2"] > 0
    assert min(sim.agreement.values()) >= 0.85, sim.agreement


def test_a_loop_through_a_delay_raises_backend_error(cpu):
    nodes = {"inp": ir.Input(shape=(3,)), "res": ir.Skip(skip_type="residual"), "d": ir.Delay(delay=np.array([1])), "out": ir.Output()}
    g = ir.Graph(nodes, [("inp", "res"), ("d", "res"), ("res", "d"), ("res", "out")])
    assert cpu.simulate(g, n_steps=3).outputs_valid  # float mode runs it
    with pytest.raises(BackendError, match="carried by 'd' \\(Delay\\).*neuron"):
        cpu.simulate(g, n_steps=3, mode="fixed")


def test_snntorch_recurrent_exports_are_bit_exact():
    """What to_ir makes of snnTorch Synaptic, RLeaky and RSynaptic (linear and one-to-one recurrences)
    runs in fixed point."""
    pytest.importorskip("snntorch")
    import snntorch as snn
    from torch import nn

    from talon.backend import get_backend
    from talon.bridge import to_ir

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), snn.Synaptic(alpha=0.8, beta=0.6, reset_mechanism="zero", init_hidden=True),
                          nn.Linear(6, 6), snn.RLeaky(beta=0.9, linear_features=6, reset_mechanism="zero", init_hidden=True),
                          nn.Linear(6, 6), snn.RSynaptic(alpha=0.9, beta=0.5, linear_features=6, init_hidden=True),
                          nn.Linear(6, 6), snn.RLeaky(beta=0.8, all_to_all=False, V=torch.rand(6) - 0.3, init_hidden=True))  # fmt: skip
    g = to_ir(model, torch.randn(1, 4))
    x = torch.rand((60, 3, 4), generator=torch.Generator().manual_seed(4)) * 3
    sim, desc = _check_bit_exact(get_backend("cpu"), g, x)
    assert desc.nodes["3.recurrent"]["delayed_inputs"] == [0] and desc.nodes["5"]["type"] == "CubaLIF"
    assert desc.nodes["7.recurrent"]["type"] == "Scale" and desc.nodes["7.recurrent"]["kind"] == "synaptic"
    assert all(v > 0 for v in sim.spike_counts.values()) and min(sim.agreement.values()) >= 0.9


# -- resampling and joining: SumPool2d, Upsample, Concat, Skip(concatenate) ----------------------------

#: (graph builder, input shape, input offset, {node: input positions whose format is finer than the node's
#: output, i.e. that the node must round half up rather than only shift left})
RESAMPLE_CASES = [
    (build_resample_net, (1, 8, 8), 0.0, {"cat2": [1]}),
    (build_odd_resample_net, (2, 5, 5), -0.3, {"sum": [0]}),
    (build_skip_concat_rounding, (1, 4, 4), -1.0, {"cat": [0], "sum": [0]}),
]


@pytest.mark.parametrize("case", RESAMPLE_CASES, ids=lambda c: c[0].__name__)
def test_resampling_and_joining_are_bit_exact(cpu, case):
    """Each of SumPool2d, Upsample, Concat and Skip(concatenate) also feeds an Output of its own, so the
    fixed simulator's words of every one of them are compared with the integer reference, not only the
    spikes downstream."""
    build, shape, offset, rounds = case
    g = build(taps=True)
    x = torch.rand((40, 2, *shape), generator=torch.Generator().manual_seed(3)) * 2 + offset
    sim, desc = _check_bit_exact(cpu, g, x)
    assert {f"o_{n}" for n in RESAMPLE_TAPS} <= set(sim.outputs)
    for node, positions in rounds.items():  # the rounding path of the rule is exercised, not only shifts
        nd = desc.nodes[node]
        assert [k for k, (_, f) in enumerate(nd["in_formats"]) if f > nd["out_format"][1]] == positions, node
    for n in RESAMPLE_TAPS:
        assert desc.nodes[n]["kind"] == ("pass" if n == "up" else "requant"), n
        assert int(torch.count_nonzero(sim.outputs[f"o_{n}"])) > 0, n
    if offset < 0:  # signed inputs reach the joins: negative values round too
        assert float(sim.outputs["o_cat2"].min()) < 0
    assert all(v > 0 for v in sim.spike_counts.values()), sim.spike_counts


def test_reference_nearest_index_is_torchs_rule():
    """The reference's Upsample index rule equals F.interpolate(mode="nearest") on float32 images for every
    size pair up to 24 -> 60 and for fractional factors. torch evaluates the rule in float64 for float64
    tensors (2x2 -> 82x82 reads row 1 at output row 41, float32 row 0); the runtime, which fixed mode runs
    in float64, applies the float32 map at every dtype, and so agrees with the reference there too."""
    import torch.nn.functional as F

    def torch_map(hw: tuple[int, int], dtype: torch.dtype, **kw) -> np.ndarray:
        """The flat input pixel (h * W + w) each output pixel reads: the runtime run on pixel indices."""
        idx = torch.arange(hw[0] * hw[1], dtype=dtype).reshape(1, 1, *hw)
        return F.interpolate(idx, mode="nearest", **kw)[0, 0].long().numpy()

    def ref_map(hw: tuple[int, int], out: tuple[int, int], factor: float | None) -> np.ndarray:
        rows, cols = ref.nearest_index(out[0], hw[0], factor), ref.nearest_index(out[1], hw[1], factor)
        return rows[:, None] * hw[1] + cols[None, :]

    for n_in in range(1, 25):
        for n_out in range(1, 61):
            assert np.array_equal(ref_map((n_in, 1), (n_out, 1), None), torch_map((n_in, 1), torch.float32, size=(n_out, 1))), (n_in, n_out)
        for factor in (1.5, 2.5, 3.0, 1 / 3, 0.7):
            if int(n_in * factor):
                want = torch_map((n_in, n_in), torch.float32, scale_factor=factor)
                assert np.array_equal(ref_map((n_in, n_in), want.shape, factor), want), (n_in, factor)
    assert ref_map((2, 2), (82, 82), None)[41, 0] == 0 and torch_map((2, 2), torch.float64, size=(82, 82))[41, 0] == 2
    from talon.bridge.modules import RuntimeContext, build_runtime

    up = build_runtime(ir.Upsample(size=(82, 82)), RuntimeContext("up"))
    for dtype in (torch.float32, torch.float64):
        image = torch.arange(4, dtype=dtype).reshape(1, 1, 2, 2)
        assert np.array_equal(up(image)[0, 0].long().numpy(), ref_map((2, 2), (82, 82), None)), dtype
    # the runtime maps rows and columns separately: the same pixels as F.interpolate's 2-D float32 rule
    for h, w in ((7, 5), (3, 11), (1, 4)):
        x = torch.randn(2, 2, h, w)
        kws = [{"size": (ho, wo)} for ho in range(1, 25, 3) for wo in range(1, 30, 4)]
        for kw in kws + [{"scale_factor": f} for f in (2, 2.5, 3.0, 1 / 3, 0.7, 1.5)]:
            if "scale_factor" in kw and min(int(h * kw["scale_factor"]), int(w * kw["scale_factor"])) < 1:
                continue
            node = ir.Upsample(**kw)
            assert torch.equal(build_runtime(node, RuntimeContext("up"))(x), F.interpolate(x, mode="nearest", **kw)), (h, w, kw)
    for hw, kw in (((3, 3), {"size": (5, 4)}), ((4, 4), {"scale_factor": 3.0}), ((4, 4), {"scale_factor": 2.0})):
        want = torch_map(hw, torch.float64, **kw)
        assert np.array_equal(ref_map(hw, want.shape, kw.get("scale_factor")), want), kw


# peaks on both sides of every boundary of the power-of-two rule: exact powers of two, just below one
# (max|w| * 2**frac in (2**(b-1) - 1, 2**(b-1)), where the sdk's old rule chose a coarser scale), tiny,
# large, and an all-zero tensor
RULE_PEAKS = (1.0, 0.75, 127.4 / 128, 127.6 / 128, 0.9999, 2.0**-20, 3000.0, 0.5 + 2.0**-12, 0.0)


@pytest.mark.parametrize("bits", [2, 3, 4, 8, 12, 16])
def test_quantize_weights_power_of_two_is_the_planners_rule(bits):
    """sdk.quantize_weights(power_of_two=True) and the fixed-point plan give identical scales and
    integers for the same ranges and bit widths (one rule: talon.sdk.fixed_point)."""
    from talon.sdk import quantize_weights

    rng = np.random.default_rng(bits)
    for peak in RULE_PEAKS:
        for sign in (1.0, -1.0):
            w = (rng.uniform(-1, 1, (3, 5)) * peak * 0.9).astype(np.float64)
            w[1, 2] = sign * peak  # the tensor's max |w|, of either sign
            g = ir.Graph({"inp": ir.Input(shape=(5,)), "fc": ir.Affine(weight=w, bias=np.zeros(3)), "out": ir.Output()})
            g.chain("inp", "fc", "out")
            plan = fx.plan_fixed_point(g, fx.Calibration({}, {}), FixedPointConfig(weight_bits=bits))
            q, rep = quantize_weights(g, bits, power_of_two=True, return_report=True)
            frac = plan.nodes["fc"].fracs["weight"]
            assert rep.tensors[0].scale == 2.0**-frac, (bits, peak, sign)
            ints = np.ldexp(q.nodes["fc"].weight, frac)
            assert np.array_equal(ints, plan.nodes["fc"].ints["weight"]), (bits, peak, sign)
            # so a quantized graph is already on the hardware grid: planning it changes no integer
            assert np.array_equal(plan.graph.nodes["fc"].weight.astype(np.float64), q.nodes["fc"].weight)
            replanned = fx.plan_fixed_point(q, fx.Calibration({}, {}), FixedPointConfig(weight_bits=bits))
            assert replanned.nodes["fc"].fracs["weight"] == frac, (bits, peak, sign)
            assert np.array_equal(replanned.nodes["fc"].ints["weight"], plan.nodes["fc"].ints["weight"]), (bits, peak, sign)
            # per channel: each channel gets the planner's scale for that channel's range
            _, per = quantize_weights(g, bits, power_of_two=True, per_channel=True, return_report=True)
            for row, scale in zip(w, per.tensors[0].scale):
                one = ir.Graph({"inp": ir.Input(shape=(5,)), "fc": ir.Affine(weight=row[None], bias=np.zeros(1)), "out": ir.Output()})
                one.chain("inp", "fc", "out")
                p1 = fx.plan_fixed_point(one, fx.Calibration({}, {}), FixedPointConfig(weight_bits=bits))
                assert scale == 2.0 ** -p1.nodes["fc"].fracs["weight"]


@pytest.mark.parametrize("weight_bits", [4, 8, 12])
@pytest.mark.parametrize("fed_by", ["spikes", "input"])
def test_lint_accumulator_range_is_what_the_simulator_adds(weight_bits, fed_by):
    """lint's ACCUMULATOR_OVERFLOW figure (sdk.convert.accumulator_ranges) is the largest sum of the
    integers the fixed-point plan adds for a SpikingAffine: weights and bias as the plan loads them, inputs
    at their format's largest word (a spike is 1; an 8-bit input word saturates at 127). For real-valued
    inputs it holds for every calibration that sees at least half of the input's range."""
    from talon.sdk.convert import accumulator_ranges

    rng = np.random.default_rng(weight_bits)
    for peak in RULE_PEAKS:
        w = rng.uniform(-1, 1, (6, 40)) * peak
        b = rng.uniform(-1, 1, 6) * peak * 3
        sa = ir.SpikingAffine(weight=w.astype(np.float32), bias=b.astype(np.float32), weight_bits=weight_bits, accumulator_bits=24)
        if fed_by == "spikes":
            lif = ir.LIF(tau=np.full(40, 5.0, np.float32), r=np.full(40, 5.0, np.float32), v_leak=np.zeros(40, np.float32),
                         v_threshold=np.ones(40, np.float32))
            g = ir.Graph({"inp": ir.Input(shape=(40,)), "lif": lif, "fc": sa, "out": ir.Output()})
            g.chain("inp", "lif", "fc", "out")
        else:
            g = ir.Graph({"inp": ir.Input(shape=(40,)), "fc": sa, "out": ir.Output()})
            g.chain("inp", "fc", "out")
        acc = accumulator_ranges(g, input_range=(0.0, 1.0))["fc"]
        assert acc.limit == 2**23 - 1
        # any calibration that sees at least half of the input range [0, 1]
        for observed in (1.0, 0.75, 0.5):
            plan = fx.plan_fixed_point(g, fx.Calibration({"inp": observed}, {}), FixedPointConfig())
            p = plan.nodes["fc"]
            x_word = {"spikes": 1, "input": 127}[fed_by]  # a spike is 1; an 8-bit input word saturates at 127
            assert p.in_formats[0].frac == {"spikes": 0, "input": 6 if observed == 1.0 else 7}[fed_by]
            assert p.fracs["bias"] == p.fracs["weight"] + p.in_formats[0].frac  # the bias is at the accumulator's precision
            worst = int(np.max(np.abs(p.ints["weight"]).sum(axis=1) * x_word + np.abs(p.ints["bias"])))
            if fed_by == "spikes" or observed < 1.0:
                assert acc.worst == worst, (peak, observed)  # exact: spikes; or the finest format assumed (Q8.7)
            else:
                assert acc.worst >= worst, (peak, observed)


def test_cubalif_currents_are_bit_identical_to_the_integer_reference(cpu):
    """The current itself, not only through the membranes and spikes it drives: the fixed runtime's own
    on_state hook (st = (current, membrane), both rounded) replayed on the simulator's plan, against the
    integer reference's `currents=`, word for word at every step of every CubaLIF."""
    from talon.bridge.executor import ir_to_torch

    g, x = build_cuba_mlp(), _cuba_inputs()
    sim = cpu.simulate(g, x, mode="fixed", record=True)
    plan = sim.fixed_point
    cur: dict[str, list] = {}
    mem: dict[str, list] = {}

    def on_state(name: str, st) -> None:
        if plan.nodes[name].current is not None:
            cur.setdefault(name, []).append(st[0].clone())
            mem.setdefault(name, []).append(st[-1].clone())

    ex = ir_to_torch(plan.graph, return_state=True, node_map=fx.fixed_node_map(plan, on_state)).double()
    with torch.inference_mode():
        ex.run(fx.round_half_up(x.to(torch.float64), plan.format_of("inp")), state=None, batch_time=False)
    want: dict[str, list] = {}
    ref.run(build_descriptor(g, plan), {"inp": x.numpy()}, currents=want)
    assert set(cur) == set(want) == {n for n, nd in g.nodes.items() if nd.type_name == "CubaLIF"} and len(want) >= 2 * len(CUBA_RESETS)
    for n, words in want.items():
        # the replay is the simulator's run: same membranes as it recorded
        assert np.array_equal(torch.stack(mem[n]).numpy(), sim.membranes[n].numpy()), n
        got = torch.stack(cur[n]).numpy()
        assert np.array_equal(got, np.ldexp(np.stack(words).astype(np.float64), -plan.nodes[n].current.frac)), n
        assert np.count_nonzero(got) > got.size // 2, n  # a live current, not a trivially equal zero
