"""run() steps a neuron's membrane in place from one time chunk to the next (talon.bridge._carry): the
results stay bit for bit those of per-step calls, and no state that leaves run() (the result, the kept
state, an observer's view, a nested graph's state) is ever modified afterwards or carries ownership."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings, strategies as st

from talon import ir
from talon.bridge import ir_to_torch
from talon.bridge._carry import Carried

B, N_IN, N = 3, 6, 8


def _graph(mode: str, reset_delay: bool, gsf: float, seed: int, nested: bool = False) -> ir.Graph:
    rng = np.random.default_rng(seed)
    neuron = ir.LIF(tau=np.float64(5.0), r=np.float64(5.0), v_leak=0.0, v_threshold=0.7, reset_mode=mode,
                    reset_delay=reset_delay, graded_spikes_factor=gsf)
    fc = ir.Affine(weight=rng.normal(0, 1.5, (N, N_IN)).astype(np.float32), bias=rng.normal(0, 0.2, N).astype(np.float32))
    fc2 = ir.Affine(weight=rng.normal(0, 1.5, (N, N)).astype(np.float32), bias=np.zeros(N, np.float32))
    lif2 = ir.LIF(tau=np.float64(3.0), r=np.float64(3.0), v_leak=0.0, v_threshold=0.5, reset_mode="subtract")
    if nested:
        inner = ir.Graph({"i": ir.Input(shape=(N,)), "lif": neuron, "o": ir.Output()})
        inner.chain("i", "lif", "o")
        nodes = {"x": ir.Input(shape=(N_IN,)), "fc": fc, "block": inner, "fc2": fc2, "lif2": lif2, "y": ir.Output()}
    else:
        nodes = {"x": ir.Input(shape=(N_IN,)), "fc": fc, "lif": neuron, "fc2": fc2, "lif2": lif2, "y": ir.Output()}
    g = ir.Graph(nodes)
    g.chain(*nodes)
    return g


def _tensors(state):
    if isinstance(state, dict):
        return [t for v in state.values() for t in _tensors(v)]
    return list(state)


def _no_carried(state) -> bool:
    if isinstance(state, dict):
        return all(_no_carried(v) for v in state.values())
    return type(state) is tuple


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["subtract", "zero", "zero_post", "none"]), st.booleans(), st.sampled_from([1.0, 2.5]),
       st.integers(0, 2**16), st.integers(1, 4), st.booleans())
def test_chunked_run_is_per_step_and_leaves_no_owned_state(mode, reset_delay, gsf, seed, steps_per_chunk, nested):
    g = _graph(mode, reset_delay, gsf, seed, nested)
    ex = ir_to_torch(g, return_state=True)
    ex.chunk_bytes = steps_per_chunk * B * ex._step_bytes
    xs = torch.rand(11, B, N_IN, generator=torch.Generator().manual_seed(seed)) * 2
    with torch.inference_mode():
        state, want = None, []
        for x in xs[:5]:
            out, state = ex(x, state)
            want.append(out)
        mid = state
        kept = [t.clone() for t in _tensors(mid)]
        for x in xs[5:]:
            out, state = ex(x, state)
            want.append(out)
        got, final = ex.run(xs[5:], mid)
        again, final2 = ex.run(xs[5:], mid)  # resumable: the same state, the same result
        tail, _ = ex.run(xs[8:], ex.run(xs[5:8], mid)[1])  # a run()'s final state resumes exactly
    want = torch.stack(want)
    assert torch.equal(got, want[5:]) and torch.equal(again, want[5:]) and torch.equal(tail, want[8:])
    assert all(torch.equal(a, b) for a, b in zip(_tensors(final), _tensors(state)))
    assert all(torch.equal(a, b) for a, b in zip(_tensors(mid), kept))  # the caller's state untouched
    assert _no_carried(final) and _no_carried(final2)


def test_kept_state_and_observer_views_are_never_stepped_in_place():
    g = _graph("subtract", True, 1.0, 3)
    seen = []
    ex = ir_to_torch(g, observer=lambda name, node, args, out, st: seen.append((name, st, [t.clone() for t in st])) if st else None)
    ex.chunk_bytes = 2 * B * ex._step_bytes
    xs = torch.rand(9, B, N_IN, generator=torch.Generator().manual_seed(1)) * 2
    with torch.inference_mode():
        ex.run(xs)
        kept = ex.state
        snapshot = [t.clone() for t in _tensors(kept)]
        ex.run(xs)
    assert len(seen) == 2 * 2 * 5  # two runs, two neurons, five chunks
    assert all(torch.equal(a, b) for _, st, copy in seen for a, b in zip(st, copy))
    assert all(torch.equal(a, b) for a, b in zip(_tensors(kept), snapshot))
    assert _no_carried(ex.state) and not any(type(st) is Carried for _, st, _ in seen)
