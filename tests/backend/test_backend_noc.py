"""The mapping feeds the CPU backend: network-on-chip hop energy/latency in profiles, core assignment
and routes in descriptors."""

import numpy as np
import pytest

from talon import ir
from talon.backend import HardwareDescriptor, get_backend
from talon.mapping import HardwareSpec, MappingResult, map_graph
from tutorial_graphs import affine, lif

HW = HardwareSpec(mesh=(3, 3), neurons_per_core=12, weight_memory_bytes_per_core=4096, energy_per_hop=5e-12, latency_per_hop=2e-8)
T = 10


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


@pytest.fixture(scope="module")
def cpu():
    return get_backend("cpu")


@pytest.fixture(scope="module")
def run(cpu):
    """The graph, a recorded simulation, and a mapping computed at exactly the simulated per-neuron rates
    (the default stimulus is real-valued and non-zero everywhere: every input element sends every step)."""
    g = _mlp()
    sim = cpu.simulate(g, n_steps=T, record="spikes")
    rates = {n: (sim.spikes[n] != 0).float().mean(dim=(0, 1)).numpy().ravel() for n in ("lif1", "lif2")}
    rates["input"] = 1.0
    mapping = map_graph(g, HW, "greedy", rates=rates)
    return g, sim, mapping


def _hand_packet_hops(mapping, sim):
    """Per sample over the run, from the public routing tables: each spike of a neuron in an entry sends
    one packet to every other destination core, travelling |dr| + |dc| hops."""
    counts = {n: (sim.spikes[n] != 0).sum(dim=(0, 1)).numpy().ravel() for n in ("lif1", "lif2")}
    counts["input"] = np.full(16, float(T))  # every input element is non-zero on every step
    total = 0.0
    for r, c in zip(mapping.cores["row"], mapping.cores["col"]):
        for e in mapping.routing_table(int(r), int(c)):
            spikes = counts[e["layer"]][e["start"] : e["stop"]].sum()
            total += spikes * sum(abs(dr - r) + abs(dc - c) for dr, dc in e["destinations"])
    return total


def test_without_mapping_nothing_changes(cpu, run):
    g, sim, _ = run
    plain = cpu.profile(g, simulation=sim)
    assert plain.noc_energy_uj == 0.0 and plain.noc_latency_us == 0.0 and plain.noc_packets == 0.0
    assert plain.derivation["noc"].startswith("no mapping: NoC traffic not modelled")
    parts = plain.mac_energy_uj + plain.spike_energy_uj + plain.neuron_energy_uj + plain.elementwise_energy_uj + plain.sram_energy_uj
    assert plain.energy_estimate_uj == pytest.approx(parts)


def test_noc_energy_is_packet_hops_times_energy_per_hop(cpu, run):
    g, sim, mapping = run
    assert mapping.metrics["cores_used"] >= 2
    plain = cpu.profile(g, simulation=sim)
    prof = cpu.profile(g, simulation=sim, mapping=mapping)
    assert prof.noc_energy_uj > 0 and prof.noc_latency_us > 0
    # Hand check 1: the routing tables, walked by hand.
    hops = _hand_packet_hops(mapping, sim)
    assert prof.noc_packet_hops == pytest.approx(hops)
    assert prof.noc_energy_uj == pytest.approx(hops * 5e-12 * 1e6)
    # Hand check 2: the run fires at exactly the rates the mapping assumed, so it matches the mapping's
    # own packet-hops per step.
    assert prof.noc_packet_hops == pytest.approx(mapping.metrics["packet_hops_per_step"] * T)
    assert prof.noc_packets == pytest.approx(mapping.metrics["spike_packets_per_step"] * T)
    # The parts add up; latency: each step waits for its longest active route (at most the longest route).
    assert prof.energy_estimate_uj == pytest.approx(plain.energy_estimate_uj + prof.noc_energy_uj)
    assert prof.total_latency_us == pytest.approx(plain.total_latency_us + prof.noc_latency_us)
    assert prof.noc_latency_us <= mapping.metrics["max_hops"] * 2e-8 * T * 1e6 + 1e-12
    assert sum(lp.noc_energy_uj for lp in prof.layers.values()) == pytest.approx(prof.noc_energy_uj)
    assert sum(lp.energy_uj for lp in prof.layers.values()) == pytest.approx(prof.energy_estimate_uj)
    assert prof.layers["input"].noc_energy_uj > 0 and prof.layers["fc1"].noc_energy_uj == 0
    assert "recorded spikes" in prof.derivation["noc"] and "pJ/hop" in prof.derivation["noc"]
    text = prof.summary()
    assert "NoC" in text and "packet-hops" in text


def test_profile_records_the_mapped_layers_itself(cpu, run):
    g, sim, mapping = run
    own = cpu.profile(g, n_steps=T, mapping=mapping)
    assert set(own.simulation.spikes) == {"lif1", "lif2"}
    assert own.noc_energy_uj == pytest.approx(cpu.profile(g, simulation=sim, mapping=mapping).noc_energy_uj)
    # Without recorded spikes a layer's count is spread evenly: same layer totals, an upper-bound latency.
    unrecorded = cpu.simulate(g, n_steps=T)
    spread = cpu.profile(g, simulation=unrecorded, mapping=mapping)
    assert spread.noc_energy_uj > 0 and "spread evenly" in spread.derivation["noc"]
    assert spread.noc_latency_us >= own.noc_latency_us


def test_noc_energy_falls_with_activity(cpu, run):
    g, _, mapping = run
    busy = cpu.profile(g, n_steps=T, mapping=mapping)  # default stimulus
    quiet = cpu.profile(g, np.full((1, 16), 0.3, dtype=np.float32), n_steps=T, mapping=mapping)
    for layer in ("lif1", "lif2"):
        assert quiet.simulation.spike_counts[layer] < busy.simulation.spike_counts[layer]
    assert 0 < quiet.noc_energy_uj < busy.noc_energy_uj
    assert quiet.layers["lif1"].noc_packets < busy.layers["lif1"].noc_packets


def test_mapping_read_back_from_t1c_gives_the_same_profile(cpu, run, tmp_path):
    g, sim, mapping = run
    prof = cpu.profile(g, simulation=sim, mapping=mapping)
    path = tmp_path / "mapped.t1c"
    ir.write(path, mapping.attach(_mlp()))
    back = ir.read(path)
    stored = MappingResult.from_graph(back)
    assert stored.metrics == mapping.metrics and np.array_equal(stored.layer_rates, mapping.layer_rates)
    again = cpu.profile(back, simulation=sim)
    assert again.noc_energy_uj == prof.noc_energy_uj and again.noc_latency_us == prof.noc_latency_us
    assert again.energy_estimate_uj == prof.energy_estimate_uj and again.derivation["noc"] == prof.derivation["noc"]


def test_descriptor_carries_core_assignment_and_routes(cpu, run, tmp_path):
    g, _, mapping = run
    g = _mlp()
    assert cpu.compile(g).meta["mapping"] == {"core_assignment": None, "routes": None}
    desc = cpu.compile(g, mapping=mapping)
    assign = desc.meta["mapping"]["core_assignment"]
    assert set(assign) == set(mapping.layers) == {"input", "lif1", "lif2"}
    for layer in mapping.layers:
        a = assign[layer]
        got = [((r, c), s, e) for r, c, s, e in zip(a["row"], a["col"], a["start"], a["stop"])]
        assert got == mapping.node_assignment(layer)
        assert a["core"] == [int(k) for k in mapping.assignments[layer]["core"]]
    covered = sorted((s, e) for s, e in zip(assign["lif1"]["start"], assign["lif1"]["stop"]))
    assert covered[0][0] == 0 and covered[-1][1] == 32 and len({tuple(x) for x in zip(assign["lif1"]["row"], assign["lif1"]["col"])}) >= 2
    routes = desc.meta["mapping"]["routes"]
    assert routes["layers"] == mapping.layers and routes["hardware"]["mesh"] == [3, 3]
    for key in routes["routing_tables"] + routes["cores"] + routes["flows"]:
        assert key in desc.arrays
    for k in ("core", "layer", "start", "stop", "dest_indptr", "dest"):
        assert np.array_equal(desc.arrays[f"mapping/routing/{k}"], mapping.routing[k])
    assert np.array_equal(desc.arrays["mapping/cores/row"], mapping.cores["row"])
    assert np.array_equal(desc.arrays["mapping/flows/packets"], mapping.flows["packets"])
    for fmt, name in (("json", "d.json"), ("binary", "d.thd")):
        back = HardwareDescriptor.load(desc.save(tmp_path / name, format=fmt))
        assert back == desc and back.meta["mapping"] == desc.meta["mapping"]
    # A mapping stored in the graph (and read back from a .t1c) is picked up the same way.
    path = tmp_path / "m.t1c"
    ir.write(path, mapping.attach(_mlp()))
    assert cpu.compile(ir.read(path)) == desc
