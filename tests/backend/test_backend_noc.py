"""The mapping feeds the CPU profile: network-on-chip hop energy and latency."""

import numpy as np
import pytest

from talon import ir
from talon.backend import get_backend
from talon.mapping import HardwareSpec, MappingResult, map_graph
from tutorial_graphs import affine, lif


def _mlp():
    g = ir.Graph()
    g.add_node("input", ir.Input(shape=(16,)))
    g.add_node("fc1", affine(32, 16, np.random.default_rng(1), scale=2.0))
    g.add_node("lif1", lif(32))
    g.add_node("fc2", affine(8, 32, np.random.default_rng(2), scale=2.0))
    g.add_node("lif2", lif(8))
    g.add_node("output", ir.Output())
    g.chain("input", "fc1", "lif1", "fc2", "lif2", "output")
    return g


HW = HardwareSpec(mesh=(3, 3), neurons_per_core=12, weight_memory_bytes_per_core=4096, energy_per_hop=5e-12, latency_per_hop=2e-8)


def test_noc_energy_and_latency_follow_the_mapping(tmp_path):
    g = _mlp()
    cpu = get_backend("cpu")
    plain = cpu.profile(g, n_steps=10)
    assert plain.noc_energy_uj == 0.0 and plain.noc_latency_us == 0.0 and "no mapping" in plain.derivation["noc"]

    mapping = map_graph(g, HW, "greedy")
    assert mapping.metrics["cores_used"] >= 2
    noc = mapping.noc_profile()
    prof = cpu.profile(g, n_steps=10, mapping=mapping, simulation=plain.simulation)
    # Hand check: packet-hops per step x energy per hop x steps; a step waits for its longest route.
    assert prof.noc_energy_uj == pytest.approx(noc["packet_hops_per_step"] * 5e-12 * 10 * 1e6)
    assert prof.noc_latency_us == pytest.approx(noc["max_hops"] * 2e-8 * 10 * 1e6)
    assert prof.noc_energy_uj > 0
    assert prof.energy_estimate_uj == pytest.approx(plain.energy_estimate_uj + prof.noc_energy_uj)
    assert prof.total_latency_us == pytest.approx(plain.total_latency_us + prof.noc_latency_us)
    assert "NoC" in prof.summary()

    # The mapping stored in the file gives the same profile.
    path = tmp_path / "mapped.t1c"
    ir.write(path, mapping.attach(g))
    back = ir.read(path)
    assert MappingResult.from_graph(back).metrics == mapping.metrics
    again = cpu.profile(back, n_steps=10, simulation=plain.simulation)
    assert again.noc_energy_uj == pytest.approx(prof.noc_energy_uj) and again.noc_latency_us == pytest.approx(prof.noc_latency_us)


def test_noc_energy_falls_with_the_mapped_activity():
    g = _mlp()
    busy = map_graph(g, HW, "greedy", default_rate=1.0)
    quiet = map_graph(g, HW, "greedy", default_rate=0.1)
    cpu = get_backend("cpu")
    sim = cpu.simulate(g, n_steps=5)
    e_busy = cpu.profile(g, n_steps=5, mapping=busy, simulation=sim).noc_energy_uj
    e_quiet = cpu.profile(g, n_steps=5, mapping=quiet, simulation=sim).noc_energy_uj
    assert 0 < e_quiet < e_busy


def test_descriptor_carries_core_assignment_and_routes(tmp_path):
    from talon.backend import HardwareDescriptor

    g = _mlp()
    cpu = get_backend("cpu")
    assert cpu.compile(g).meta["mapping"] == {"core_assignment": None, "routes": None}
    mapping = map_graph(g, HW, "greedy")
    desc = cpu.compile(g, mapping=mapping)
    assign = desc.meta["mapping"]["core_assignment"]
    assert set(assign) == set(mapping.layers)
    for layer in mapping.layers:
        assert assign[layer]["core"] == [int(c) for c in mapping.assignments[layer]["core"]]
    routes = desc.meta["mapping"]["routes"]
    assert routes["routing_tables"] and all(key in desc.arrays for key in routes["routing_tables"])
    for fmt, name in (("json", "d.json"), ("binary", "d.thd")):
        path = desc.save(tmp_path / name, format=fmt)
        assert HardwareDescriptor.load(path) == desc
    # A mapping stored in the graph is picked up the same way.
    assert cpu.compile(mapping.attach(g)) == desc
