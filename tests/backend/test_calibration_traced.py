"""The fixed-point calibration run (and a float run recording membranes) steps LIF and IF neurons through
their fused chunk loop, the membrane of every step traced into one (T, B, ...) tensor
(`LIFRuntime.run_seq(..., trace=)`), instead of one step at a time: the calibration (every range, bit for
bit, zeros' signs included), the plan's formats, the recorded membranes and every fixed-point result are
those of the step-by-step probes, on the tutorial's MLP (exported from snnTorch), the hybrid, a conv SNN
and every LIF reset mode."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from talon import ir
from talon.backend.cpu import simulator
from talon.backend.stimulus import make_stimulus
from talon.bridge import GraphExecutor, modules

from backend_graphs import build_conv_snn, build_cuba_mlp, build_hybrid, build_mlp, lif
from test_simulate_transient_observer import _same, _tutorial_mlp


def _mlp_mode(mode: str, delay: bool = True, gsf: float = 1.0, v_reset: float | None = None, neuron: str = "LIF"):
    def build():
        if neuron == "IF":
            n1 = ir.IF(r=np.float64(1.0), v_threshold=np.full(3, 0.5, np.float32), reset_mode=mode, reset_delay=delay, graded_spikes_factor=gsf, v_reset=v_reset)
        else:
            n1 = lif(3, threshold=0.5, reset_mode=mode, reset_delay=delay, graded_spikes_factor=gsf, v_reset=v_reset)
        return build_mlp(seed=4, neuron=n1)

    return build


BUILDS = {
    "tutorial_mlp": _tutorial_mlp,
    "hybrid": build_hybrid,
    "conv": build_conv_snn,
    "subtract": _mlp_mode("subtract"),
    "zero": _mlp_mode("zero"),
    "zero_post": _mlp_mode("zero_post", v_reset=0.125),
    "none": _mlp_mode("none"),
    "no_delay": _mlp_mode("subtract", delay=False),
    "graded": _mlp_mode("subtract", gsf=2.5),
    "if_zero": _mlp_mode("zero", neuron="IF"),
}


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _same_ranges(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(_bits(a[k]) == _bits(b[k]) for k in a)


def _input(graph: ir.Graph, steps: int, batch: int, seed: int) -> torch.Tensor:
    shape = graph.nodes[graph.input_names[0]].shape
    x = torch.rand(steps, batch, *shape, generator=torch.Generator().manual_seed(seed))
    return x * 8 - 2 if shape == (784,) else x * 3 - 0.5


@pytest.mark.parametrize("executor_steps", [None, 1, 3])
@pytest.mark.parametrize("name", sorted(BUILDS))
def test_traced_calibration_and_fixed_results_are_the_stepped_ones(cpu, monkeypatch, name, executor_steps):
    graph = BUILDS[name]()
    x = _input(graph, 14, 2, 11)
    if executor_steps is not None:  # several chunks per run: the membrane carried between traced chunks
        monkeypatch.setattr(GraphExecutor, "chunk_bytes", 1)
    stim = make_stimulus(x, {n: tuple(graph.nodes[n].shape) for n in graph.input_names}, None)
    neurons = [n for n, node in graph.nodes.items() if node.state_fields]

    def runs():
        calib = simulator.run_instrumented(graph, stim, calibrate=True, record_membranes=neurons, chunk_steps=executor_steps)
        floats = cpu.simulate(graph, x, record=True, chunk_steps=executor_steps)
        fixed = cpu.simulate(graph, x, mode="fixed", record=True, chunk_steps=executor_steps)
        return calib, floats, fixed

    traced = runs()
    monkeypatch.setattr(modules.LIFRuntime, "traces_membrane", False)  # the probes step every neuron
    stepped = runs()
    for a, b in zip(traced, stepped):
        assert _same(a, b)
    (calib, floats, fixed), (calib_s, _, fixed_s) = traced, stepped
    for field in ("max_abs_output", "max_abs_state", "max_abs_current"):
        assert _same_ranges(getattr(calib, field), getattr(calib_s, field)), field
    cal, cal_s = fixed.fixed_point.calibration, fixed_s.fixed_point.calibration
    assert _same_ranges(cal.max_abs_state, cal_s.max_abs_state) and _same_ranges(cal.max_abs_output, cal_s.max_abs_output)
    assert {n: p.out_format for n, p in fixed.fixed_point.nodes.items()} == {n: p.out_format for n, p in fixed_s.fixed_point.nodes.items()}
    for n in neurons:  # the traced membranes are every step's state
        assert calib.max_abs_state[n] == float(calib.membranes[n].abs().max())
        assert torch.equal(calib.membranes[n], floats.membranes[n])


def test_the_calibration_traces_lif_and_steps_other_neurons(monkeypatch):
    """The hybrid's LIF runs through run_seq with a trace; a CubaLIF (whose current is calibrated too) is
    stepped."""
    calls = []
    real = modules.LIFRuntime.run_seq
    monkeypatch.setattr(modules.LIFRuntime, "run_seq", lambda self, inputs, state, trace=None: calls.append(trace is not None) or real(self, inputs, state, trace))
    graph = build_hybrid()
    stim = make_stimulus(_input(graph, 6, 1, 0), {"input": (1, 28, 28)}, None)
    simulator.run_instrumented(graph, stim, calibrate=True)
    assert calls == [True]
    g = build_cuba_mlp(seed=1)
    steps: list = []
    monkeypatch.setattr(simulator._StateProbe, "step", lambda self, i, s: _probe_step(self, i, s, steps))
    run = simulator.run_instrumented(g, make_stimulus(torch.rand(5, 2, 4), {"inp": (4,)}, None), calibrate=True)
    cuba = [n for n, node in g.nodes.items() if node.has_current]
    assert cuba and all(steps.count(n) == 5 for n in cuba) and set(run.max_abs_current) == set(cuba)


def _probe_step(self, inputs, state, seen):
    seen.append(self.name)
    out, st = self.inner.step(inputs, state)
    self.sink(self.name, st)
    return out, st


VALUES = [0.0, -0.0, 1.5, -2.25, 3e38, -1e-45, float("nan"), float("inf"), -float("inf")]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.sampled_from(VALUES[:2]) | st.sampled_from(VALUES), min_size=1, max_size=6), min_size=1, max_size=12),
       st.integers(1, 5), st.sampled_from([torch.float32, torch.float64]), st.booleans())
def test_chunk_ranges_reduce_to_the_per_step_ranges_bit_for_bit(rows, chunk, dtype, zeros_only):
    """Per chunk one (min, max) pair, unless the chunk is all zeros or holds a NaN: the reduced largest
    magnitude is the per-step pairs' bit for bit (a zero's sign and a NaN included)."""
    width = len(rows[0])
    rows = [(r * width)[:width] for r in rows]
    if zeros_only:
        rows = [[v if v == 0 else 0.0 for v in r] for r in rows]
    vs = torch.tensor(rows, dtype=dtype)
    per_step = [torch.aminmax(v) for v in vs]
    chunked = [p for t0 in range(0, len(rows), chunk) for p in simulator._chunk_ranges(vs[t0 : t0 + chunk])]
    a, b = simulator._max_abs(per_step), simulator._max_abs(chunked)
    assert (math.isnan(a) and math.isnan(b)) or _bits(a) == _bits(b)
