"""The bookkeeping of a fixed-point simulate() call: the agreement counted while the fixed run runs, and the
calibration ranges collected as (min, max) pairs, equal what recorded runs give."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talon.backend import get_backend
from talon.backend.cpu import simulator
from talon.backend.stimulus import make_stimulus

from backend_graphs import build_cuba_mlp, build_mlp


@pytest.mark.parametrize("batch_time", [True, False])
@pytest.mark.parametrize("chunk_steps", [None, 3])
def test_agreement_is_the_recorded_runs_fraction(batch_time, chunk_steps):
    cpu = get_backend("cpu")
    g = build_mlp(seed=4)
    x = torch.rand((20, 5, 4), generator=torch.Generator().manual_seed(3)) * 3
    fixed = cpu.simulate(g, x, mode="fixed", record="spikes", chunk_steps=chunk_steps, batch_time=batch_time)
    flt = cpu.simulate(g, x, record="spikes", chunk_steps=chunk_steps, batch_time=batch_time)
    assert list(fixed.agreement) == [n for n, node in g.nodes.items() if node.spiking]
    for n, got in fixed.agreement.items():
        a, b = flt.spikes[n] != 0, fixed.spikes[n] != 0
        assert got == int((a == b).sum()) / a.numel(), n
    assert min(fixed.agreement.values()) < 1.0  # a difference to count, not a trivially equal pair of runs
    assert cpu.simulate(g, x, mode="fixed", compare=False).agreement is None


@pytest.mark.parametrize("batch_time", [True, False])
def test_calibration_ranges_are_the_largest_magnitudes(batch_time):
    g = build_cuba_mlp(seed=2)
    x = torch.rand((12, 3, 4), generator=torch.Generator().manual_seed(5)) * 4 - 1
    stim = make_stimulus(x, {"inp": (4,)}, None)
    neurons = [n for n, node in g.nodes.items() if node.state_fields]
    run = simulator.run_instrumented(g, stim, calibrate=True, record_membranes=neurons, chunk_steps=5, batch_time=batch_time)
    assert set(run.max_abs_state) == set(neurons)
    for n in neurons:
        assert run.max_abs_state[n] == float(run.membranes[n].abs().max()), n
    for n in g.output_names:
        assert run.max_abs_output[n] == float(run.outputs[n].abs().max()), n
    assert run.max_abs_output["inp"] == float(x.abs().max())
    currents = {n for n, node in g.nodes.items() if node.has_current}
    assert set(run.max_abs_current) == currents and all(np.isfinite(v) and v > 0 for v in run.max_abs_current.values())
    assert run.spike_counts and not simulator.run_instrumented(g, stim, calibrate=True, count_spikes=False).spike_counts
