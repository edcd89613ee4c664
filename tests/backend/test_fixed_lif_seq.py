"""Fixed mode's fused LIF/IF loop (talon.backend.cpu.fixed_lif_seq) gives the step loop's bits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from talon import ir
from talon.backend import get_backend
from talon.backend.cpu import fixed as fx
from talon.backend.cpu import fixed_lif_seq as fl
from talon.backend.cpu.fixed_rules import NeuronRule
from talon.bridge.modules import LIFRuntime

from backend_graphs import dense


def _graph(seed: int, n_in: int, width: int, reset: str, per_neuron: bool, gsf: float, leak: bool, two_inputs: bool, neuron: str,
           delay: bool = True, v_reset: bool = False) -> ir.Graph:
    rng = np.random.default_rng(seed)
    tau = rng.choice([1.6, 2.0, 4.0, 8.0], width) if per_neuron else np.full(width, 4.0)  # betas any coefficient grid holds
    thr = rng.uniform(0.2, 1.0, width) if per_neuron else np.full(width, 0.5)
    common = {"v_threshold": thr, "reset_mode": reset, "graded_spikes_factor": gsf, "reset_delay": delay,
              "v_reset": rng.uniform(-0.4, 0.3, width) if v_reset else None}
    if neuron == "IF":
        n1 = ir.IF(r=np.full(width, 0.75), **common)
    else:
        n1 = ir.LIF(tau=tau, r=tau * (0.75 if per_neuron else 1.0), v_leak=rng.normal(0, 0.3, width) if leak else np.zeros(width), **common)
    nodes = {"inp": ir.Input(shape=(n_in,)), "fc1": dense(width, n_in, rng, 1.5), "n1": n1,
             "fc2": dense(3, width, rng, 1.0), "n2": ir.LIF(tau=np.full(3, 3.0), r=np.full(3, 3.0), v_leak=np.zeros(3),
                                                           v_threshold=np.full(3, 0.4), reset_mode="subtract"),
             "out": ir.Output()}
    g = ir.Graph(nodes)
    g.chain("inp", "fc1", "n1", "fc2", "n2", "out")
    if two_inputs:  # a second synaptic input into n1, summed in edge order
        g.nodes["fc1b"] = dense(width, n_in, rng, 0.7)
        g.add_edge("inp", "fc1b")
        g.add_edge("fc1b", "n1")
    return g


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from(["subtract", "zero", "zero_post", "none"]), st.booleans(), st.sampled_from([1.0, 0.5, 2.0]),
       st.booleans(), st.booleans(), st.sampled_from(["LIF", "IF"]), st.sampled_from([None, (10, 8), (16, 10), (24, 16)]),
       st.sampled_from([None, 3]), st.booleans(), st.booleans())
def test_fused_loop_equals_step_loop(seed, reset, per_neuron, gsf, leak, two_inputs, neuron, bits, chunk, delay, v_reset):
    """Every reset mode, delayed or not, with and without v_reset: spikes and outputs (membranes carried
    across chunks of 3 steps)."""
    g = _graph(seed, 6, 5, reset, per_neuron, gsf, leak, two_inputs, neuron, delay, v_reset)
    x = torch.from_numpy(np.random.default_rng(seed + 1).normal(0.4, 0.8, (11, 4, 6)).astype(np.float32))
    cfg = fx.FixedPointConfig() if bits is None else fx.FixedPointConfig(membrane_bits=bits[0], coefficient_frac_bits=bits[1])
    cpu = get_backend("cpu")
    fused, stepped = _both(lambda: cpu.simulate(g, x, mode="fixed", record="spikes", compare=False, fixed_config=cfg, chunk_steps=chunk))
    for n in ("n1", "n2"):
        assert torch.equal(fused.spikes[n], stepped.spikes[n]), n
    assert torch.equal(fused.outputs["out"], stepped.outputs["out"])
    assert fused.spike_counts == stepped.spike_counts


def _both(fn):
    saved = fl.ENABLED
    try:
        fl.ENABLED = True
        a = fn()
        fl.ENABLED = False
        return a, fn()
    finally:
        fl.ENABLED = saved


def _neuron(width: int, beta_i: np.ndarray, c: int, thr: np.ndarray, mfmt: fx.Format, in_fmt: fx.Format, gain_i: np.ndarray | None = None,
            **reset):
    """A LIF runtime whose float64 beta (and gain) are exactly beta_i * 2^-c (the plan's own reproduction)."""
    beta_q = np.ldexp(beta_i.astype(np.float64), -c)
    gain_q = np.ones(width) if gain_i is None else np.ldexp(gain_i.astype(np.float64), -c)
    tau, r = fx.tau_and_r(beta_q, gain_q, 1.0)
    node = ir.LIF(tau=tau, r=r, v_leak=np.zeros(width), v_threshold=thr, **({"reset_mode": "subtract"} | reset))
    inner = LIFRuntime(node, 1.0).double()
    plan = fx.NodePlan("n", "LIF", "neuron", fx.Format(2, 0), [in_fmt], {"gain": np.zeros(width, np.int64)}, {"gain": c}, membrane=mfmt)
    return fx.FixedNeuron(inner, plan, None, NeuronRule("tau")), plan


@pytest.mark.parametrize("thr_on_grid", [True, False])
@pytest.mark.parametrize("per_neuron", [True, False])
@pytest.mark.parametrize("c, mfmt", [(12, fx.Format(16, 8)), (8, fx.Format(10, 4))])
def test_fused_loop_saturates_and_resets_like_the_steps(thr_on_grid, per_neuron, c, mfmt):
    """Inputs that drive the membrane into both ends of its format (clamped every step), thresholds on
    and off the membrane grid (the spike is then no longer the next reset mask), uniform and per-neuron
    beta, in float64 and (the narrow datapath) in float32."""
    rng = np.random.default_rng(7)
    width = 9
    assert fl.float32_update_exact(mfmt, [mfmt], c) == (mfmt.bits == 10)
    beta_i = rng.integers(1 << (c - 2), 1 << c, width) if per_neuron else np.full(width, 3 << (c - 2))
    thr = np.full(width, 3.0 + (0.0 if thr_on_grid else math.ldexp(1.0, -mfmt.frac - 3)))
    if per_neuron:
        thr = thr + rng.integers(-8, 8, width) * math.ldexp(1.0, -mfmt.frac)
    mod, plan = _neuron(width, beta_i, c, thr, mfmt, mfmt)
    assert mod._fused is not None
    xi = rng.integers(mfmt.lo, mfmt.hi + 1, (40, 3, width)) * (rng.random((40, 3, width)) < 0.5)
    x = torch.from_numpy(np.ldexp(xi.astype(np.float64), -mfmt.frac))
    v0 = torch.from_numpy(np.ldexp(rng.integers(mfmt.lo, mfmt.hi + 1, (3, width)).astype(np.float64), -mfmt.frac))
    fused, stepped = _both(lambda: mod.run_seq([x], (v0.clone(),)))
    assert torch.equal(fused[0], stepped[0]) and torch.equal(fused[1][0], stepped[1][0])
    assert float(stepped[1][0].abs().max()) * 2**mfmt.frac >= mfmt.hi  # the clamp was reached


def _bits(t: torch.Tensor) -> torch.Tensor:
    """The float64 bit patterns (torch.equal takes -0 for +0)."""
    return t.to(torch.float64).contiguous().view(torch.int64)


@pytest.mark.parametrize("single", [False, True])
@pytest.mark.parametrize("one_beta", [False, True])
@pytest.mark.parametrize("v_reset", [None, "uniform", "per neuron"])
@pytest.mark.parametrize("delay", [True, False])
@pytest.mark.parametrize("mode", ["subtract", "zero", "zero_post", "none"])
def test_every_reset_mode_gives_the_step_loops_bits(mode, delay, v_reset, one_beta, single):
    """Each reset mode, delayed or not, with v_reset on the grid or 0, thresholds on and off the grid,
    membranes driven into both ends of the format: spikes and final membranes bit for bit (signed zeros
    included), in float64 and on the narrow datapath (float32)."""
    c, mfmt = (8, fx.Format(10, 4)) if single else (12, fx.Format(16, 8))
    rng = np.random.default_rng(5)
    width = 12
    assert fl.float32_update_exact(mfmt, [mfmt], c) == single
    beta_i = np.full(width, 3 << (c - 2)) if one_beta else rng.integers(1 << (c - 2), 1 << c, width)
    thr = 2.0 + rng.integers(-8, 8, width) * math.ldexp(1.0, -mfmt.frac) + (np.arange(width) % 2) * math.ldexp(1.0, -mfmt.frac - 2)
    vr = None if v_reset is None else np.ldexp(rng.integers(-40, 20, 1 if v_reset == "uniform" else width).astype(np.float64), -mfmt.frac)
    vr = np.full(width, vr[0]) if v_reset == "uniform" else vr
    mod, plan = _neuron(width, beta_i, c, thr, mfmt, mfmt, reset_mode=mode, reset_delay=delay, v_reset=vr)
    assert mod._fused is not None and isinstance(mod.inner.beta, float) == one_beta
    xi = rng.integers(mfmt.lo, mfmt.hi + 1, (40, 3, width)) * (rng.random((40, 3, width)) < 0.3)
    x = torch.from_numpy(np.ldexp(xi.astype(np.float64), -mfmt.frac))
    v0 = torch.from_numpy(np.ldexp(rng.integers(mfmt.lo, mfmt.hi + 1, (3, width)).astype(np.float64), -mfmt.frac))
    fused, stepped = _both(lambda: mod.run_seq([x], (v0.clone(),)))
    assert torch.equal(_bits(fused[0]), _bits(stepped[0]))
    assert torch.equal(_bits(fused[1][0]), _bits(stepped[1][0]))
    if mode != "none":
        assert 0 < float(stepped[0].mean()) < 1  # some spikes, some resets


def test_float32_update_bound():
    m = fx.Format(10, 6)
    # beta*v, leak, R*thr: 2^(mb+1) units of 2^-(f+c); an input in the membrane format: 2^mb more
    assert fl.float32_update_exact(m, [m], 12) is True  # (2^11 + 2^10) * 2^12 <= 2^24
    assert fl.float32_update_exact(m, [m], 13) is False
    # a finer input grid costs its extra fractional bits
    assert fl.float32_update_exact(m, [fx.Format(8, 10)], 8) is True  # (2^15 + 2^8) * 2^8 <= 2^24
    assert fl.float32_update_exact(m, [fx.Format(8, 10)], 9) is False
    assert fl.float32_update_exact(fx.Format(24, 10), [fx.Format(24, 10)], 16) is False  # the default datapath


def test_other_resets_and_observers_keep_the_step_loop():
    width, c, mfmt = 3, 8, fx.Format(16, 8)
    mod, plan = _neuron(width, np.full(width, 200), c, np.full(width, 1.0), mfmt, mfmt)
    assert mod._fused is not None
    assert fx.FixedNeuron(mod.inner, plan, lambda *a: None, NeuronRule("tau"))._fused is None  # membranes are recorded per step
    mod.inner.reset_mode = "my_mode"  # a mode the fused loop does not know
    assert fl.fused_run_seq(mod.inner, plan, NeuronRule("tau")) is None
    mod.inner.reset_mode = "subtract"

    class MyRule(NeuronRule):
        def step(self, inner, inputs, state, plan, rnd):
            return super().step(inner, inputs, state, plan, rnd)

    assert fl.fused_run_seq(mod.inner, plan, MyRule("tau")) is None  # a user's own step is never bypassed


@pytest.mark.parametrize("single", [False, True])
def test_threshold_off_the_grid_resets_from_the_rounded_membrane(single):
    """A threshold between two grid points: a membrane just under it spikes not, yet rounds up past it, so
    the next reset mask is not the spike. The inputs hold the membrane near the threshold so that this
    happens (checked), and the fused loop must still give the step loop's bits."""
    c, mfmt = (8, fx.Format(10, 4)) if single else (12, fx.Format(16, 8))
    rng = np.random.default_rng(11)
    width, beta_i = 64, rng.integers(1 << (c - 1), 1 << c, 64)
    thr = 3.0 + math.ldexp(1.0, -mfmt.frac - 1)
    mod, _ = _neuron(width, beta_i, c, np.full(width, thr), mfmt, mfmt)
    hold = np.round((1.0 - np.ldexp(beta_i.astype(np.float64), -c)) * 3.0 * 2**mfmt.frac)  # keeps v near 3
    xi = hold + rng.integers(-2, 3, (60, 2, width))
    x = torch.from_numpy(np.ldexp(xi, -mfmt.frac))
    v0 = torch.full((2, width), 3.0, dtype=torch.float64)
    fused, stepped = _both(lambda: mod.run_seq([x], (v0.clone(),)))
    assert torch.equal(fused[0], stepped[0]) and torch.equal(fused[1][0], stepped[1][0])
    v, differs = (v0.clone(),), 0
    for t in range(x.shape[0]):
        s, v = mod.step([x[t]], v)
        differs += int((torch.gt(v[0], thr) != (s != 0)).sum())
    assert differs > 0


@pytest.mark.parametrize("gain", [True, False])
@pytest.mark.parametrize("gsf", [None, 0.5])
@pytest.mark.parametrize("delay", [True, False])
@pytest.mark.parametrize("mode", ["subtract", "zero", "zero_post", "none"])
def test_float32_inputs_and_spikes_give_the_float64_bits(mode, delay, gsf, gain):
    """Inputs handed over as float32 (talon.backend.cpu.fixed_narrow) with a 16-bit gain, whose products
    need up to 40 bits (a product taken in float32 would round), or without a gain (the delayed
    subtraction then adds each step's input in place): the fused loop (spikes returned as float32) and
    the step loop (inputs widened) give the bits of the step loop on float64 inputs."""
    c, mfmt, in_fmt = 16, fx.Format(24, 10), fx.Format(24, 12)
    rng = np.random.default_rng(13)
    width = 10
    beta_i = np.full(width, 3 << (c - 2))
    # odd 16-bit gains (every bit counts) that tau_and_r reproduces exactly with beta 0.75
    gain_i = np.array([48273, 49539, 57513, 63913, 33911, 37491, 59735, 63853, 40935, 42987])
    thr = np.full(width, 200.0) + rng.integers(-8, 8, width)
    mod, _ = _neuron(width, beta_i, c, thr, mfmt, in_fmt, gain_i if gain else None, reset_mode=mode, reset_delay=delay)
    assert (mod.inner._op_gain is None) == (not gain)
    if gsf is not None:
        mod.inner.graded_spikes_factor = gsf
    assert mod._fused is not None and fl.spikes_fit_float32(mod.inner)
    xi = rng.integers(-(1 << 20), 1 << 20, (30, 3, width)) * (rng.random((30, 3, width)) < 0.5)
    x64 = torch.from_numpy(np.ldexp(xi.astype(np.float64), -in_fmt.frac))
    x32 = x64.float()
    assert torch.equal(x32.double(), x64)  # the values float32 carries
    if gain:
        assert not torch.equal((x32 * mod.inner._op_gain.float()).double(), x64 * mod.inner._op_gain)  # float32 products would round
    v0 = torch.from_numpy(np.ldexp(rng.integers(-(1 << 18), 1 << 18, (3, width)).astype(np.float64), -mfmt.frac))
    _, want = _both(lambda: mod.run_seq([x64], (v0.clone(),)))
    mod.widen_inputs = mod.emit32 = True
    fused, stepped = _both(lambda: mod.run_seq([x32], (v0.clone(),)))
    assert fused[0].dtype == torch.float32 and stepped[0].dtype == torch.float64
    for got in (fused, stepped):
        assert torch.equal(_bits(got[0]), _bits(want[0]))
        assert got[1][0].dtype == torch.float64 and torch.equal(_bits(got[1][0]), _bits(want[1][0]))
    assert torch.equal(_bits(mod.init_state([x32[0]])[0]), _bits(torch.zeros(3, width, dtype=torch.float64)))
    if mode != "none":
        assert 0 < float(want[0].ne(0).double().mean()) < 1
