"""Energy presets, the hand-checked energy of a tiny graph, and energy against spike activity."""

from __future__ import annotations

import pytest
import torch

from talon.backend import EnergyPreset, Figure, get_energy_preset, list_energy_presets, register_energy_preset
from talon.backend import energy as en
from talon.backend.cpu import LatencyModel
from talon.errors import BackendError

from backend_graphs import build_tiny


def test_45nm_preset_has_horowitz_numbers_with_sources():
    p = get_energy_preset("45nm_cmos")
    assert "45nm_cmos" in list_energy_presets()
    expected = {"int8_add": 0.03, "int8_mult": 0.2, "int32_add": 0.1, "int32_mult": 3.1, "fp32_add": 0.9, "fp32_mult": 3.7,
                "sram_read_64b_8kb": 10, "sram_read_64b_32kb": 20, "sram_read_64b_1mb": 100, "dram_access_64b": 1300}  # fmt: skip
    for key, pj in expected.items():
        assert p.pj(key) == pytest.approx(pj)
    for key, fig in p.figures.items():
        assert "Horowitz" in fig.source and "ISSCC 2014" in fig.source, key
    assert "| fp32_mult | 3.7 |" in p.table()


def test_derived_operation_costs():
    p = get_energy_preset("45nm_cmos")
    f = en.op_costs(p, "float")
    assert (f.mac, f.ac, f.add, f.mult) == pytest.approx((4.6, 0.9, 0.9, 3.7))  # the Spikformer E_MAC / E_AC
    q = en.op_costs(p, "fixed", weight_bits=8, activation_bits=8)
    assert (q.mac, q.ac) == pytest.approx((0.3, 0.1)) and q.derivation["mac"] == "int8_mult + int32_add"
    assert en.op_costs(p, "fixed", weight_bits=8, activation_bits=16).mac == pytest.approx(3.2)
    with pytest.raises(BackendError):
        en.op_costs(p, "bogus")
    assert p.sram_read_pj(8 * 1024) == (10.0, "sram_read_64b_8kb")
    assert p.sram_read_pj(8 * 1024 + 1)[1] == "sram_read_64b_32kb"
    assert p.sram_read_pj(2 * 1024 * 1024)[1] == "dram_access_64b"


def test_user_presets_are_validated_and_selectable():
    base = get_energy_preset("45nm_cmos")
    mine = base.with_figures("test_cheap_sram", sram_read_64b_8kb=Figure(1.0, "assumption: test"))
    assert mine.pj("sram_read_64b_8kb") == 1.0 and mine.pj("fp32_add") == 0.9
    register_energy_preset(mine)
    assert get_energy_preset("test_cheap_sram") is mine
    with pytest.raises(BackendError, match="already exists"):
        register_energy_preset(base.with_figures("test_cheap_sram"))
    with pytest.raises(BackendError, match="lacks the figures"):
        EnergyPreset("x", "", {"fp32_add": Figure(0.9, "s")})
    with pytest.raises(BackendError, match="source"):
        Figure(1.0, "")
    with pytest.raises(BackendError):
        Figure(-1.0, "s")
    with pytest.raises(BackendError, match="unknown energy preset"):
        get_energy_preset("7nm_magic")


def test_hand_checked_energy_of_a_tiny_graph(cpu):
    """docs/energy.md, "Worked example": every term computed by hand.

    Input [2, 0.5] for T = 2 steps. fc1 (Affine 3x2, bias) is dense; LIF neuron 0 spikes at both steps
    (v = 2, then 0.5*2 + 2 - 1 = 2), so fc2 (Linear 2x3, fed by spikes) sees 2 input events, fan-out 2.
    Float mode: MAC 4.6 pJ, AC 0.9, add 0.9, mult 3.7; every memory is <= 8 KB: 10 pJ per 8 bytes.
    """
    prof = cpu.profile(build_tiny(), torch.tensor([2.0, 0.5]), n_steps=2, energy_preset="45nm_cmos")
    assert prof.simulation.spike_counts == {"lif": 2}
    assert prof.simulation.input_events == {"fc2": 2}
    pj = 1e-6  # uJ per pJ
    mac = 2 * 6 * 4.6  # fc1: 6 MACs per step
    ac = 2 * 2 * 0.9  # fc2: 2 spikes x fan-out 2
    neuron = 2 * (3 * 3.7 + (18 - 3) * 0.9)  # 3 neurons x 6 cost-table ops: 1 multiply + 5 adds each
    sram_bytes = {
        "inp": 2 * (2 * 4),  # input written, 2 float32 per step
        "fc1": 2 * (6 * 4 + 3 * 4 + 3 * 4 + 2 * 4),  # weights, bias, output written, input read
        "lif": 2 * (4 * 4 + 2 * 3 * 4 + 3 / 8 + 3 * 4),  # tau/r/v_leak/v_threshold (one value each), state r+w, spike bits out, current in
        "fc2": 4 * 4 + 2 * (2 * 4 + 3 / 8),  # one weight per accumulate; output written, spike bits read
    }
    sram = sum(sram_bytes.values()) * 10 / 8
    assert sram == pytest.approx(331.875)
    assert prof.mac_energy_uj == pytest.approx(mac * pj)
    assert prof.spike_energy_uj == pytest.approx(ac * pj)
    assert prof.neuron_energy_uj == pytest.approx(neuron * pj)
    assert prof.elementwise_energy_uj == 0
    assert prof.sram_energy_uj == pytest.approx(sram * pj)
    assert prof.energy_estimate_uj == pytest.approx((mac + ac + neuron + sram) * pj)
    assert prof.energy_estimate_uj == pytest.approx(439.875e-6)
    for name, b in sram_bytes.items():
        assert prof.layers[name].sram_bytes == round(b)
    # latency: per step per layer max(compute, ceil(bytes/32)) + 8 cycles, at 100 MHz
    assert prof.layers["fc1"].cycles == 2 * (max(1, 2) + 8)
    assert prof.layers["lif"].cycles == 2 * (max(1, 2) + 8)
    assert prof.layers["fc2"].cycles == 2 * (max(1, 1) + 8)
    assert prof.total_cycles == 58 and prof.total_latency_us == pytest.approx(0.58)
    fast = cpu.profile(build_tiny(), torch.tensor([2.0, 0.5]), n_steps=2, latency=LatencyModel(clock_mhz=200.0))
    assert fast.total_latency_us == pytest.approx(0.29)


def test_energy_falls_with_spike_activity(cpu, hybrid):
    """Same graph and steps; weaker input -> fewer spikes -> less AC energy and less total energy."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand((1, 1, 28, 28), generator=g)
    profiles = [cpu.profile(hybrid, x * s, n_steps=20) for s in (2.0, 1.0, 0.3, 0.0)]
    spikes = [p.simulation.spike_counts["lif"] for p in profiles]
    assert spikes[0] > spikes[1] > spikes[2] >= spikes[3]
    spike_e = [p.spike_energy_uj for p in profiles]
    total = [p.energy_estimate_uj for p in profiles]
    assert spike_e[0] > spike_e[1] > spike_e[2] >= spike_e[3]
    assert total[0] > total[1] > total[2] >= total[3]
    # the dense part (conv1, fc1 MACs) does not depend on activity
    assert len({round(p.mac_energy_uj, 12) for p in profiles}) == 1
    # spike energy is exactly events x fan-out x E_AC
    fc2 = profiles[0].layers["fc2"]
    assert fc2.event_driven and fc2.accumulates == profiles[0].simulation.input_events["fc2"] * 10
    assert fc2.spike_energy_uj == pytest.approx(fc2.accumulates * 0.9e-6)
    if spikes[3] == 0:
        assert profiles[3].spike_energy_uj == 0


def test_fixed_point_profile_is_cheaper_and_smaller(cpu, hybrid):
    f = cpu.profile(hybrid, n_steps=5)
    q = cpu.profile(hybrid, n_steps=5, mode="fixed")
    assert q.mode == "fixed" and q.op_costs_pj["mac"] == pytest.approx(0.3)
    assert q.mac_energy_uj < f.mac_energy_uj / 10
    assert q.sram_energy_uj < f.sram_energy_uj
    assert q.peak_memory_bytes < f.peak_memory_bytes
