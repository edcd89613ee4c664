"""LIFRuntime.run_seq(..., trace=) writes each step's membrane, the state `step` returns, into the trace
(every reset mode, delayed or not, graded spikes, LIF and IF, across chunks whose state is carried in
place); its spikes and final state are those of the run without a trace."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings, strategies as st

from talon import ir
from talon.bridge import modules
from talon.bridge._carry import disown


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["subtract", "zero", "zero_post", "none"]), st.booleans(), st.sampled_from([1.0, 2.5]),
       st.sampled_from([None, 0.25]), st.booleans(), st.integers(0, 2**16), st.integers(1, 5))
def test_trace_is_every_steps_state(mode, delay, gsf, v_reset, integrate_and_fire, seed, chunk):
    n = 6
    common = dict(v_threshold=np.full(n, 0.5, np.float32), reset_mode=mode, reset_delay=delay, graded_spikes_factor=gsf,
                  v_reset=None if v_reset is None else np.full(n, v_reset, np.float32))
    node = ir.IF(r=np.float32(1.5), **common) if integrate_and_fire else ir.LIF(tau=np.float32(4.0), r=np.float32(4.0), v_leak=np.float32(0.1), **common)
    rt = modules.RUNTIME_BUILDERS[node.type_name](node, modules.RuntimeContext(name="n"))
    xs = torch.rand(11, 2, n, generator=torch.Generator().manual_seed(seed)) * 2 - 0.5
    with torch.inference_mode():
        state, want_spikes, want_states = rt.init_state([xs[0]]), [], []
        for x in xs:
            s, state = rt.step([x], state)
            want_spikes.append(s)
            want_states.append(state[0])
        state, plain_state = rt.init_state([xs[0]]), rt.init_state([xs[0]])
        spikes, traces, plain = [], [], []
        for t0 in range(0, len(xs), chunk):
            part = xs[t0 : t0 + chunk]
            trace = torch.full_like(part, float("nan"))
            out, state = rt.run_seq([part], state, trace=trace)
            p_out, plain_state = rt.run_seq([part], plain_state)
            spikes.append(out.clone())
            plain.append(p_out.clone())
            traces.append(trace)
    assert torch.equal(torch.cat(spikes), torch.stack(want_spikes)) and torch.equal(torch.cat(plain), torch.cat(spikes))
    assert torch.equal(torch.cat(traces), torch.stack(want_states))
    assert torch.equal(disown(state)[0], disown(plain_state)[0])
