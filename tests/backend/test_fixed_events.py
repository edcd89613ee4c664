"""Event-driven products fed spikes by construction (talon.backend.cpu.fixed_events) and their 8-bit weight
rows (exact_products.ByteRows) give the bits of the checked float32 path and of the dense products."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from talon import ir
from talon.backend import get_backend
from talon.backend.cpu import exact_products as xp
from talon.backend.cpu import fixed as fx
from talon.backend.cpu import fixed_events, simulator
from talon.backend.stimulus import RateEncoder
from talon.bridge.modules import AffineRuntime

needs_kernel = pytest.mark.skipif(not xp._has_byte_kernel(), reason="this torch build has no 8-bit embedding bag")


def _bags(rng, n_in, rows, density):
    x = (rng.random((rows, n_in)) < density).astype(np.float32)
    x[0] = 0.0  # an empty bag
    x[-1] = 1.0  # every row of the weights
    idx = np.flatnonzero(x)
    offsets = np.searchsorted(idx, np.arange(0, rows * n_in, n_in))
    return torch.from_numpy(x), torch.from_numpy(idx % n_in), torch.from_numpy(offsets)


@needs_kernel
@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 60), st.integers(1, 40), st.integers(-30, 20), st.sampled_from([0.0, 0.1, 0.6]), st.booleans())
def test_byte_rows_sum_like_float32_rows(seed, n_in, n_out, exp, density, extremes):
    rng = np.random.default_rng(seed)
    q = rng.integers(-128, 128, (n_in, n_out))
    if extremes:  # -128 and 127 both present, and a row of zeros
        q[0, 0], q[-1, -1], q[n_in // 2] = -128, 127, 0
    w = torch.from_numpy(np.ldexp(q.astype(np.float64), exp).astype(np.float32))
    rows = xp.ByteRows.of(w)
    assert rows is not None
    _, cols, offsets = _bags(rng, n_in, 9, density)
    want = F.embedding_bag(cols, w, offsets, mode="sum")
    got = rows.bags(cols, offsets)
    assert got.dtype == torch.float32 and torch.equal(got, want)
    assert not torch.signbit(got[0]).any()  # the empty bag is +0.0 as embedding_bag's


def test_byte_rows_refuse_weights_off_8_bits():
    ok = torch.tensor([[1.0, -2.0], [0.25, 0.0]])
    assert xp.ByteRows.of(ok) is not None or not xp._has_byte_kernel()
    assert xp.ByteRows.of(torch.tensor([[1.0, 2.0**-8]])) is None  # needs 9 bits
    assert xp.ByteRows.of(torch.tensor([[-0.0, 1.0]])) is None  # a float32 sum could be -0.0
    assert xp.ByteRows.of(ok.double()) is None and xp.ByteRows.of(torch.zeros(0, 3)) is None


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.sampled_from([1, 12, 70]), st.sampled_from([0.0, 0.05, 0.4]), st.booleans(), st.booleans())
def test_spike_sums_equal_checked_and_dense_products(seed, n_in, n_out, density, zero_bias, near_bound):
    """sparse_linear told its input is spikes (no value check, byte rows, no zero bias) gives the bits of the
    checked event-driven sum and of the dense float64 product."""
    rng = np.random.default_rng(seed)
    w_max = max(1, (2**24 - 1 - 1000) // (n_in * 128)) if near_bound else 127
    w = rng.integers(-w_max, w_max + 1, (n_out, n_in))
    b = np.zeros(n_out, np.int64) if zero_bias else rng.integers(-1000, 1001, n_out)
    inner = AffineRuntime(np.ldexp(w.astype(np.float64), -7), np.ldexp(b.astype(np.float64), -7)).double()
    x, _, _ = _bags(rng, n_in, 11, density)
    x = x.double()
    x[1] = torch.from_numpy((w[0] > 0).astype(np.float64))  # row 0's largest sum
    want = F.linear(x, inner.weight, inner.bias)
    wt = inner.weight.float().t().contiguous()
    bias = inner.bias.float()
    checked = xp.sparse_linear(x, wt, bias)
    rows = xp.ByteRows.of(wt)
    free = xp.unsigned_zero_sums(wt) and xp.zero_bias(bias)
    assert free == zero_bias
    fast = xp.sparse_linear(x, wt, None if free else bias, spikes=True, rows=rows)
    assert torch.equal(fast, checked) and torch.equal(fast.double(), want)
    assert torch.equal(torch.signbit(fast), torch.signbit(checked))


def test_round_input_of_spikes_without_negative_zero_is_a_plain_conversion():
    x = (torch.rand(5, 3, 7) < 0.3).float()
    got = fx.round_input(x, fx.Format(8, 6), spikes=True)
    assert got.dtype == torch.float64 and torch.equal(got, fx.round_half_up(x.double(), fx.Format(8, 6)))
    x[0, 0, 0] = -0.0
    assert not torch.signbit(fx.round_input(x, fx.Format(8, 6), spikes=True)).any()
    assert fx.spikes_survive_rounding(fx.Format(8, 6)) and not fx.spikes_survive_rounding(fx.Format(8, 7))
    assert not fx.spikes_survive_rounding(fx.Format(8, -1))


def _chain(graded: float, reset: str, seed: int = 0) -> ir.Graph:
    rng = np.random.default_rng(seed)
    sizes = [40, 30, 20]
    nodes: dict[str, ir.Node] = {"input": ir.Input(shape=(40,))}
    for k, (a, b) in enumerate(zip(sizes, sizes[1:]), 1):
        # fc1's excitatory weights make sums of several hundred weight units: times lif1's 16-bit gain, more
        # than float32's 24 bits (a product taken in float32 would round)
        mean = 1.0 / np.sqrt(a) if k == 1 else 0.0
        nodes[f"fc{k}"] = ir.Affine(weight=rng.normal(mean, 2.0 / np.sqrt(a), (b, a)).astype(np.float32), bias=np.zeros(b, np.float32))
        # lif1 with a gain (dt*r/tau = 0.825, 16 bits once quantised), lif2 without (r = tau)
        nodes[f"lif{k}"] = ir.LIF(tau=np.full(b, 4.0), r=np.full(b, 3.3 if k == 1 else 4.0), v_leak=np.zeros(b), v_threshold=np.full(b, 0.4),
                                   reset_mode=reset, graded_spikes_factor=graded if k == 1 else 1.0)
    nodes["output"] = ir.Output()
    g = ir.Graph(nodes)
    g.chain(*nodes)
    return g


def _run(graph, stim, plan, events: bool, membranes: bool = False):
    """The fixed run with the event shortcuts (spike marks) on or off; events forced event-driven; with
    `membranes` recorded, every neuron steps one step at a time."""
    saved_mark, saved_below = simulator.mark_spike_inputs, xp.SPARSE_BELOW
    xp.SPARSE_BELOW = 2.0
    if not events:
        simulator.mark_spike_inputs = lambda *a, **k: []
    try:
        return simulator.run_instrumented(graph, stim, plan=plan, record_spikes=["lif1", "lif2"], chunk_steps=3,
                                          record_membranes=["lif1", "lif2"] if membranes else ())
    finally:
        simulator.mark_spike_inputs, xp.SPARSE_BELOW = saved_mark, saved_below


@pytest.mark.parametrize("membranes", [False, True])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("graded", [1.0, 0.5])
@pytest.mark.parametrize("batch", [1, 3])
def test_spike_marked_runs_change_no_bit(reset, graded, batch, membranes):
    from talon.backend.stimulus import make_stimulus

    g = _chain(graded, reset)
    res = get_backend("cpu").simulate(g, inputs=RateEncoder(torch.full((batch, 40), 0.3), seed=2), n_steps=8, mode="fixed")
    plan = res.fixed_point
    stim = make_stimulus(RateEncoder(torch.full((batch, 40), 0.3), seed=2), {"input": (40,)}, 8)
    marked = []
    saved = simulator.mark_spike_inputs
    simulator.mark_spike_inputs = lambda *a: marked.extend(saved(*a)) or marked
    try:
        fast = _run(g, stim, plan, events=True, membranes=membranes)
    finally:
        simulator.mark_spike_inputs = saved
    # the rate-coded input's layer always; lif1's reader only where lif1's spikes are 0/1 (stepped or fused)
    assert marked == (["fc1", "fc2"] if graded == 1.0 else ["fc1"])
    slow = _run(g, stim, plan, events=False, membranes=membranes)
    for n in ("lif1", "lif2"):
        assert torch.equal(fast.spikes[n], slow.spikes[n])
        if membranes:
            assert torch.equal(fast.membranes[n], slow.membranes[n])
    assert torch.equal(fast.outputs["output"], slow.outputs["output"])
    assert fast.spike_counts == slow.spike_counts and fast.input_events == slow.input_events


def test_a_neuron_outside_the_built_in_rule_is_not_a_spike_source():
    assert not fixed_events.zero_one_neuron(None)
    assert not fixed_events.zero_one_neuron(torch.nn.Identity())


def _reference(graph, stim, plan, **kw):
    """The run on the reference arithmetic: float64 products between every layer, no event shortcuts, the
    step-by-step neurons."""
    from talon.backend.cpu import fixed_lif_seq

    saved = simulator.mark_spike_inputs, simulator.narrow_float32, simulator.float32_inputs, xp.SPARSE_BELOW, xp.float32_exact
    simulator.mark_spike_inputs = simulator.narrow_float32 = simulator.float32_inputs = lambda *a, **k: []
    xp.SPARSE_BELOW, xp.float32_exact = 0.0, (lambda *a, **k: False)
    fixed_lif_seq.ENABLED = False
    reference = fx.FixedPointPlan(plan.config, {n: _fresh(p) for n, p in plan.nodes.items()}, plan.order, plan.graph, plan.calibration)
    try:
        return simulator.run_instrumented(graph, stim, plan=reference, **kw)
    finally:
        simulator.mark_spike_inputs, simulator.narrow_float32, simulator.float32_inputs, xp.SPARSE_BELOW, xp.float32_exact = saved
        fixed_lif_seq.ENABLED = True


def _fresh(p):
    import copy

    q = copy.copy(p)
    q.__dict__ = {k: v for k, v in p.__dict__.items() if k != "_derived_weights"}  # no cached float32 decisions
    return q


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from(["subtract", "zero", "zero_post", "none"]), st.sampled_from([1.0, 0.5]),
       st.sampled_from([1, 4]), st.sampled_from([None, 2, 5]), st.sampled_from([0.05, 0.4]), st.booleans())
def test_float32_chain_and_spike_marks_change_no_bit(seed, reset, graded, batch, chunk, rate, delay):
    """Products -> fused neuron -> products in float32, spikes by construction unchecked, 8-bit rows: the
    spikes (through the agreement count), outputs and counts of the reference arithmetic, bit for bit."""
    from talon.backend.stimulus import make_stimulus

    g = _chain(graded, reset, seed)
    for n in ("lif1", "lif2"):
        g.nodes[n] = g.nodes[n].replace(reset_delay=delay)
    enc = lambda: RateEncoder(torch.full((batch, 40), rate), seed=seed)  # noqa: E731
    plan = get_backend("cpu").simulate(g, inputs=enc(), n_steps=9, mode="fixed").fixed_point
    stim = make_stimulus(enc(), {"input": (40,)}, 9)
    slow = _reference(g, stim, plan, record_spikes=["lif1", "lif2"], chunk_steps=chunk)
    saved = xp.SPARSE_BELOW
    xp.SPARSE_BELOW = 2.0  # every layer event-driven
    try:
        fast = simulator.run_instrumented(g, stim, plan=plan, chunk_steps=chunk, agree_with=slow.spikes)
    finally:
        xp.SPARSE_BELOW = saved
    assert fast.mismatches == {"lif1": 0, "lif2": 0}
    assert torch.equal(fast.outputs["output"], slow.outputs["output"])
    assert fast.outputs["output"].dtype == torch.float64
    assert fast.spike_counts == slow.spike_counts and fast.input_events == slow.input_events


@pytest.mark.parametrize("negative_zero", [False, True])
def test_spike_sequences_reach_their_products_in_float32_with_the_same_bits(negative_zero, monkeypatch):
    """A binary sequence read only by synaptic layers goes to them as float32 (no float64 copy), -0.0
    made +0.0 as round_input does; a recorded input stays float64."""
    from talon.backend.stimulus import make_stimulus

    g = _chain(1.0, "subtract", 4)
    seq = (torch.rand((9, 2, 40), generator=torch.Generator().manual_seed(4)) < 0.3).float()
    if negative_zero:
        seq[seq == 0] = -0.0
    kept = seq.clone()
    plan = get_backend("cpu").simulate(g, inputs=seq, n_steps=None, mode="fixed").fixed_point
    stim = make_stimulus(seq, {"input": (40,)}, None)
    assert stim.binary["input"] is True
    seen: list[torch.Tensor] = []
    forward = xp.ExactSynaptic.forward

    def spy(self, x):
        if self.inner.weight.shape[1] == 40:
            seen.append(x)
        return forward(self, x)

    monkeypatch.setattr(xp.ExactSynaptic, "forward", spy)
    fast = simulator.run_instrumented(g, stim, plan=plan, chunk_steps=4)
    assert seen and all(x.dtype == torch.float32 and not torch.signbit(x).any() for x in seen)
    recorded = simulator.run_instrumented(g, stim, plan=plan, chunk_steps=4, record_spikes=["input"])
    assert recorded.spikes["input"].dtype == torch.float64 and seen[-1].dtype == torch.float64
    slow = _reference(g, stim, plan, chunk_steps=4)
    for run in (fast, recorded):
        assert torch.equal(run.outputs["output"], slow.outputs["output"])
        assert run.spike_counts == slow.spike_counts and run.input_events == slow.input_events
    assert torch.equal(seq, kept) and torch.equal(torch.signbit(seq), torch.signbit(kept))  # the caller's tensor is untouched
