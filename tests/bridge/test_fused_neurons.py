"""The fused neuron paths (LIFRuntime.run_seq, the spelled-out subtract step) are bit for bit the generic
step (_reset_and_fire around _membrane), for every reset mode, field shape and dtype."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings, strategies as st

from talon import ir
from talon.bridge.modules import IFRuntime, LIFRuntime, StatefulRuntime



def _field(draw: st.DrawFn, n: int, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    if draw(st.booleans()):  # one value for every neuron (a scalar operand) or one per neuron (a buffer)
        return np.full(n, draw(st.floats(lo, hi)))
    return rng.uniform(lo, hi, n)


@st.composite
def neurons(draw: st.DrawFn) -> tuple[torch.nn.Module, int]:
    n = draw(st.integers(1, 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    common = dict(
        v_threshold=_field(draw, n, 0.2, 1.5, rng),
        v_reset=draw(st.sampled_from([None, _field(draw, n, -0.3, 0.3, rng)])),
        reset_mode=draw(st.sampled_from(["subtract", "zero", "zero_post", "none"])),
        reset_delay=draw(st.booleans()),
        graded_spikes_factor=draw(st.sampled_from([1.0, 0.5, 3.0])),
    )
    if draw(st.booleans()):
        node = ir.IF(r=draw(st.sampled_from([None, _field(draw, n, 0.3, 2.0, rng)])), **common)
        return IFRuntime(node, 1.0), n
    tau = _field(draw, n, 1.5, 30.0, rng)
    node = ir.LIF(tau=tau, r=draw(st.sampled_from([tau, _field(draw, n, 0.5, 20.0, rng)])),
                  v_leak=draw(st.sampled_from([np.zeros(n), _field(draw, n, -0.5, 0.5, rng)])), **common)
    return LIFRuntime(node, 1.0), n


@settings(max_examples=60, deadline=None)
@given(neurons(), st.integers(1, 2), st.sampled_from([torch.float32, torch.float64]), st.integers(0, 2**16))
def test_fused_run_seq_equals_step_loop(neuron, n_inputs, dtype, seed):
    module, n = neuron
    module = module.to(dtype)
    g = torch.Generator().manual_seed(seed)
    xs = [(torch.rand(9, 3, n, generator=g) * 1.2).to(dtype) for _ in range(n_inputs)]
    state = module.init_state([x[0] for x in xs])
    state = (torch.randn(3, n, generator=g).to(dtype),)  # resume from a non-zero state
    kept = state[0].clone()
    fused, (v_fused,) = module.run_seq(xs, state)
    loop, (v_loop,) = StatefulRuntime.run_seq(module, xs, state)
    ref, v_ref = [], state[0]
    for t in range(xs[0].shape[0]):  # the generic step, written out
        s, v_ref = module._reset_and_fire(v_ref, lambda u, t=t: module._membrane(u, [x[t] for x in xs]))
        ref.append(s)
    ref = torch.stack(ref)
    for got, v in ((fused, v_fused), (loop, v_loop)):
        assert torch.equal(got, ref)
        assert torch.equal(v, v_ref)
    assert torch.equal(state[0], kept)  # the caller's state is never modified
