"""simulate's observer is shown only the nodes it reads, counts small spike tensors when the chunk's
executor run returns (large ones at once) and takes the outputs from what executor.run returns
(docs/performance.md, "simulate against the bare executor"): its counts are those of the recorded spikes
and inputs, its outputs the bare executor's, whatever the chunking, recording, deferral threshold or
time batching, bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from talon import ir
from talon.backend.cpu import simulator
from talon.bridge import GraphExecutor, ir_to_torch

from backend_graphs import build_conv_snn, build_hybrid, build_mlp
from test_simulate_transient_observer import _same


def _conv_snn(seed: int) -> ir.Graph:
    """The conv SNN with a second reader of the flattened spikes and two Outputs: spike chunks of both
    sizes, a spike tensor read by two layers, an Output on a neuron."""
    rng = np.random.default_rng(seed + 1000)
    g = build_conv_snn(seed, side=8, n_out=6, conv_scale=1.0, fc_scale=0.5)
    g.add_node("fc_b", ir.Affine(weight=rng.normal(0, 0.5, (3, 64)).astype(np.float32), bias=np.zeros(3, np.float32)))
    g.add_node("yb", ir.Output())
    g.add_edge("flat", "fc_b")
    g.add_edge("fc_b", "yb")
    return g


BUILDERS = {"conv": _conv_snn, "mlp": build_mlp, "hybrid": build_hybrid}


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(BUILDERS)), st.integers(0, 2**16), st.integers(1, 40), st.integers(1, 3),
       st.sampled_from([None, 1, 4]), st.sampled_from([None, 1, 3 << 10]), st.sampled_from([0, 1 << 14, 1 << 30]),
       st.booleans())
def test_counts_and_outputs_whatever_the_chunking(cpu, kind, seed, steps, batch, chunk_steps, executor_bytes, defer_below, batch_time):
    g = BUILDERS[kind](seed % 5)
    shape = g.nodes[g.input_names[0]].shape
    x = torch.rand(steps, batch, *shape, generator=torch.Generator().manual_seed(seed)) * 2
    counts: dict = {}

    def observe(name, node, args, out, st):  # the reference: a plain observer of every node, counting with torch
        if name in plain.spike_counts:
            counts[name] = counts.get(name, 0) + int(torch.count_nonzero(out))
        if name in plain.input_events:
            counts["events", name] = counts.get(("events", name), 0) + sum(int(torch.count_nonzero(a)) for a in args)

    with pytest.MonkeyPatch.context() as mp:  # executor chunks of the same size for the reference run
        if executor_bytes is not None:
            mp.setattr(GraphExecutor, "chunk_bytes", executor_bytes)
        mp.setattr(simulator, "DEFER_COUNT_BELOW", defer_below)
        plain = cpu.simulate(g, x, chunk_steps=chunk_steps, batch_time=batch_time)
        rec = cpu.simulate(g, x, record="spikes", chunk_steps=chunk_steps, batch_time=batch_time)
        ex = ir_to_torch(g, return_state=True, observer=observe)
        with torch.inference_mode():
            if chunk_steps is None:
                want, _ = ex.run(x, state=None, batch_time=batch_time)
            else:  # simulate's own chunks of steps, the state carried over
                state, pieces = None, []
                for t0 in range(0, steps, chunk_steps):
                    out, state = ex.run(x[t0 : t0 + chunk_steps], state=state, batch_time=batch_time)
                    pieces.append(out if isinstance(out, tuple) else (out,))
                want = tuple(torch.cat(p) for p in zip(*pieces))
    # recording shows the observer more nodes: nothing else changes
    assert _same(plain.spike_counts, rec.spike_counts) and _same(plain.input_events, rec.input_events)
    assert _same(plain.outputs, rec.outputs) and plain.outputs_valid == rec.outputs_valid
    for name, spikes in rec.spikes.items():
        assert rec.spike_counts[name] == int(torch.count_nonzero(spikes))
    assert plain.spike_counts == {n: counts[n] for n in plain.spike_counts}
    assert plain.input_events == {n: counts["events", n] for n in plain.input_events}
    want = want if isinstance(want, tuple) else (want,)
    assert list(plain.outputs) == g.output_names
    assert all(torch.equal(plain.outputs[n], w) for n, w in zip(g.output_names, want))


def test_the_observer_is_shown_only_what_simulate_reads(cpu, monkeypatch):
    shown: list = []
    real = simulator.TransientStateObserver

    def spy(fn, nodes=None):
        shown.append(nodes)
        return real(fn, nodes)

    monkeypatch.setattr(simulator, "TransientStateObserver", spy)
    g = _conv_snn(0)
    cpu.simulate(g, n_steps=3)
    assert shown[-1] == {"l1", "l2", "fc", "fc_b"}  # spiking nodes and the layers they feed
    cpu.simulate(g, n_steps=3, record=["pool"])
    assert shown[-1] == {"l1", "l2", "fc", "fc_b"}  # pool is no spiking node: recorded as nothing
    cpu.simulate(g, n_steps=3, mode="fixed")
    assert shown[-2] is None  # the calibration run reads every node's range
    assert shown[-1] == {"l1", "l2", "fc", "fc_b"}  # the fixed run: counts and agreement


VALUES = [0.0, -0.0, 1.0, -2.5, 6e4, -6e4, 3e38, -3e38, 1e308, float("nan"), float("inf"), -float("inf")]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(VALUES), max_size=24), st.sampled_from([torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int32, torch.bool]))
def test_one_read_finite_check_is_the_element_wise_check(values, dtype):
    """The finite sum decides only where it is finite; an overflowing sum (float16 6e4 + 6e4) falls back."""
    x = torch.tensor(values, dtype=torch.float64)
    if not dtype.is_floating_point:
        x = x.nan_to_num(0.0, 0.0, 0.0).clamp(-100, 100)
    x = x.to(dtype)
    for v in (x, x.reshape(-1, 1).expand(-1, 2), x[::2]):
        assert simulator._all_finite(v) == bool(torch.isfinite(v).all())


def test_outputs_invalid_when_not_finite(cpu):
    g = ir.Graph({"x": ir.Input(shape=(2,)), "fc": ir.Affine(weight=np.array([[3e38, 3e38], [1, 1]], np.float32), bias=np.zeros(2, np.float32)), "y": ir.Output()})
    g.chain("x", "fc", "y")
    assert cpu.simulate(g, torch.full((3, 1, 2), 0.5)).outputs_valid  # 3e38: finite
    sim = cpu.simulate(g, torch.full((3, 1, 2), 5.0))  # 3e39: inf in float32
    assert not sim.outputs_valid and not math.isfinite(float(sim.outputs["y"][0, 0, 0]))
