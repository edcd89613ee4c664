"""run_pipeline calibrates once: hardware.json's formats and the fixed-point simulation it reports come from
the same float run, of `n_steps` steps, also when the calibration input is a constant (which a separate
simulate call used to calibrate on its default 10 steps while the descriptor took `n_steps`)."""

from __future__ import annotations

import json

import torch

from talon import ir
from talon.backend import get_backend
from talon.mapping import HardwareSpec
from talon.pipeline import run_pipeline
from tests.lif_mlp import mlp_graph


def test_descriptor_and_fixed_simulation_share_one_calibration(tmp_path):
    torch.manual_seed(0)
    x, cal = torch.rand(3, 8) * 2, torch.rand(3, 8) * 4
    summary = run_pipeline(mlp_graph(), tmp_path, name="m", inputs=x, n_steps=37, calibration_inputs=cal, weight_bits=8,
                           hardware=HardwareSpec(mesh=(2, 2), neurons_per_core=64), plots=False, html=False, log=lambda m: None)
    descriptor = json.loads((tmp_path / "hardware.json").read_text())
    assert descriptor["calibration"] == summary["simulation"]["calibration"]
    assert descriptor["calibration"].startswith("float run, 37 steps")
    # the reported fixed-point run is the one of the descriptor's calibration, spike for spike
    be = get_backend("cpu")
    hw = ir.read(tmp_path / "m_int8.t1c")
    kept = be.simulate(hw, x, 37, mode="fixed", calibration=be.calibrate(hw, cal, 37))
    assert summary["simulation"]["firing_rates_fixed"] == dict(kept.firing_rates)
    formats = {n["name"]: n["out_format"] for n in descriptor["nodes"]}
    assert formats == {n: [p.out_format.bits, p.out_format.frac] for n, p in kept.fixed_point.nodes.items()}


def test_simulate_calibrates_a_constant_input_for_its_own_steps_as_compile_does():
    torch.manual_seed(1)
    be, g = get_backend("cpu"), mlp_graph(seed=3)
    x, cal = torch.rand(2, 8) * 2, torch.rand(2, 8) * 4
    sim = be.simulate(g, x, 23, mode="fixed", calibration_inputs=cal, compare=False)
    descriptor = be.compile(g, calibration_inputs=cal, n_steps=23)
    assert sim.fixed_point.calibration.description.startswith("float run, 23 steps")
    assert descriptor.meta["calibration"] == sim.fixed_point.calibration.description
    assert {n["name"]: n["out_format"] for n in descriptor.meta["nodes"]} == {
        n: [p.out_format.bits, p.out_format.frac] for n, p in sim.fixed_point.nodes.items()}
    # a calibration sequence keeps its own length whatever the simulation's
    seq = torch.rand(5, 2, 8)
    assert be.simulate(g, x, 23, mode="fixed", calibration_inputs=seq, compare=False).fixed_point.calibration.description.startswith("float run, 5 steps")
