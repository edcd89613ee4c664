"""cpu.simulate declares its observer transient (talon.bridge.TransientStateObserver), so run() steps its
neurons in place across time chunks: its results are bit for bit those of the copying path (the observer
treated as one that keeps its states), float and fixed mode, on the tutorial's graphs."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from talon.bridge import GraphExecutor, TransientStateObserver, _carry, modules

from backend_graphs import build_hybrid, build_mlp
from tutorial_models import SimpleSNN  # the tutorial's section 1 model, as a user writes it

STEPS = 12


def _tutorial_mlp():
    from snntorch.export_talonir import export_to_ir

    torch.manual_seed(0)
    model = SimpleSNN()
    with torch.no_grad():  # larger weights: both layers fire within a few steps
        model.fc1.weight.mul_(8.0)
        model.fc2.weight.mul_(6.0)
    return export_to_ir(model, torch.randn(1, 784))


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a) if f.name != "wall_time_s")
    return a == b


@pytest.mark.parametrize("mode", ["float", "fixed"])
@pytest.mark.parametrize("record", [None, "spikes", True])
@pytest.mark.parametrize("build", [_tutorial_mlp, build_hybrid, build_mlp], ids=["tutorial_mlp", "hybrid", "mlp"])
def test_simulate_is_bit_identical_with_states_stepped_in_place(cpu, monkeypatch, build, mode, record):
    graph = build()
    x = torch.rand(STEPS, 2, *graph.nodes[graph.input_names[0]].shape, generator=torch.Generator().manual_seed(3))
    monkeypatch.setattr(GraphExecutor, "chunk_bytes", 1)  # one step per chunk: every chunk carries a state over

    owned = []  # how often a runtime was given back a state it owns (and stepped it in place)
    monkeypatch.setattr(modules, "owned_by", lambda state, owner: owned.append(_carry.owned_by(state, owner)) or owned[-1])

    def run():
        owned.clear()
        result = cpu.simulate(graph, x, mode=mode, record=record)
        return result, sum(owned)

    new, in_place = run()
    monkeypatch.setattr(TransientStateObserver, "keeps_state", True)  # the copying path of every other observer
    old, copied = run()
    assert sum(new.spike_counts.values()) > 0
    assert copied == 0
    if mode == "float" and record is not True:  # float LIF layers step in place unless probed for membranes
        assert in_place > 0
    assert _same(new, old)
