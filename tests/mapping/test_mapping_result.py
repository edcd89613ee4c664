"""map_graph(): assignments, metrics, .t1c round trip, NoC profile."""

import numpy as np
import pytest

from talon import ir
from talon.errors import MappingError
from talon.ir.node import values_equal
from talon.mapping import METADATA_KEY, MappingResult, map_graph, noc_profile, preset
from talon.mapping.synthetic import layered_small_world

from mapping_helpers import dense_net, hw_small


@pytest.fixture(scope="module")
def mapped():
    g = dense_net(100, 300, 50)
    hw = hw_small(mesh=(3, 3), neurons_per_core=128, link_bandwidth=50.0)
    return g, hw, map_graph(g, hw, "metis", rates={"inp": 0.2, "lif0": 0.1, "lif1": 0.05})


def test_assignments_cover_every_neuron_once(mapped):
    g, hw, res = mapped
    assert res.layers == ["inp", "lif0", "lif1"]
    for name, size in [("inp", 100), ("lif0", 300), ("lif1", 50)]:
        a = res.assignments[name]
        covered = np.zeros(size, dtype=int)
        for s, e in zip(a["start"], a["stop"]):
            covered[s:e] += 1
        assert (covered == 1).all()
        assert set(zip(a["row"].tolist(), a["col"].tolist())) <= set(zip(res.cores["row"].tolist(), res.cores["col"].tolist()))
        for (r, c), s, e in res.node_assignment(name):
            assert res.position_of(name, s) == (r, c)
    with pytest.raises(MappingError):
        res.node_assignment("fc0")


def test_metrics_are_consistent(mapped):
    _, hw, res = mapped
    m = res.metrics
    assert m["neurons"] == 450 and m["synapses"] == 100 * 300 + 300 * 50
    assert m["cores_used"] == int((res.cores["neurons"] > 0).sum())
    assert m["spike_packets_per_step"] == pytest.approx(res.flows["packets"].sum())
    assert m["packet_hops_per_step"] == pytest.approx(np.dot(res.flows["packets"], res.flows["hops"]))
    assert m["average_hops"] == pytest.approx(m["packet_hops_per_step"] / m["spike_packets_per_step"])
    assert m["max_hops"] == res.flows["hops"].max()
    assert m["spikes_per_step"] == pytest.approx(100 * 0.2 + 300 * 0.1 + 50 * 0.05)
    assert m["max_neuron_utilisation"] <= 1 and m["max_memory_utilisation"] <= 1
    assert m["max_link_load"] == pytest.approx(max(a.max() for a in res.links.values() if a.size))
    assert m["congestion"] == pytest.approx(m["max_link_load"] / 50.0)
    assert m["noc_energy_per_step"] == pytest.approx(m["packet_hops_per_step"] * hw.energy_per_hop)
    assert m["max_spike_latency"] == pytest.approx(m["max_hops"] * hw.latency_per_hop)
    # packets: each spiking neuron, once per destination core other than its own
    assert m["spike_packets_per_step"] + m["local_spikes_per_step"] <= 100 * 0.2 * m["cores_used"] + 300 * 0.1 * m["cores_used"]


def test_routing_table_view(mapped):
    _, _, res = mapped
    entries = [e for k in range(len(res.cores["row"])) for e in res.routing_table(int(res.cores["row"][k]), int(res.cores["col"][k]))]
    assert entries and all(e["layer"] in ("inp", "lif0") for e in entries)
    assert sum(e["stop"] - e["start"] for e in entries if e["layer"] == "inp") == 100
    with pytest.raises(MappingError, match="outside"):  # off the mesh is a mistake, not an empty core
        res.routing_table(99, 99)


def test_round_trip_through_a_t1c_file(mapped, tmp_path):
    g, _, res = mapped
    g2 = g.copy()
    res.attach(g2)
    path = tmp_path / "mapped.t1c"
    ir.write(path, g2)
    back = ir.read(path)
    again = MappingResult.from_graph(back)
    assert values_equal(again.to_metadata(), res.to_metadata())
    assert values_equal(back.metadata[METADATA_KEY], res.to_metadata())
    assert again.summary() == res.summary()
    assert noc_profile(back) == res.noc_profile()


def test_round_trip_of_a_single_core_mapping(tmp_path):
    g = dense_net(3, 2)
    res = map_graph(g, hw_small(mesh=(1, 1)), "greedy", attach=True)
    assert res.metrics["spike_packets_per_step"] == 0 and res.metrics["cores_used"] == 1
    ir.write(tmp_path / "one.t1c", g)
    back = MappingResult.from_graph(ir.read(tmp_path / "one.t1c"))
    assert values_equal(back.to_metadata(), res.to_metadata())


def test_malformed_metadata():
    with pytest.raises(MappingError, match="no mapping"):
        MappingResult.from_graph(dense_net(2, 2))
    good = map_graph(dense_net(4, 3), hw_small(), "greedy").to_metadata()
    with pytest.raises(MappingError, match="version"):
        MappingResult.from_metadata({**good, "version": 99})
    with pytest.raises(MappingError, match="malformed"):
        MappingResult.from_metadata({k: v for k, v in good.items() if k != "cores"})
    with pytest.raises(MappingError, match="mapping metadata"):
        MappingResult.from_metadata({**good, "hardware": {**good["hardware"], "neurons_per_core": 0}})
    with pytest.raises(MappingError):
        noc_profile(42)


def test_neuron_graph_input_and_placement_methods():
    ng = layered_small_world(3, 20, 20, group_size=16)
    hw = hw_small(mesh=(3, 3), neurons_per_core=256)
    auto = map_graph(ng, hw, "spectral")
    naive = map_graph(ng, hw, "greedy", placement="row-major")
    assert naive.placement_method == "row-major"
    assert auto.metrics["neurons"] == 1200
    with pytest.raises(MappingError, match="attach"):
        map_graph(ng, hw, attach=True)


def test_presets_map_a_small_model():
    res = map_graph(dense_net(64, 32, 10), preset("loihi-like"))
    assert res.metrics["cores_used"] == 1 and res.hardware.name == "loihi-like"
    assert "loihi-like" in res.summary()


def test_per_core_utilisation_is_defined_once(mapped):
    """MappingResult exposes per-core use with the same definition as Allocation (one function); the
    mesh grids lay the same numbers on (rows, cols)."""
    from talon.mapping.allocate import memory_utilisation, neuron_utilisation

    _, hw, res = mapped
    assert np.array_equal(res.neuron_utilisation, res.cores["neurons"] / hw.neurons_per_core)
    assert np.array_equal(res.memory_utilisation, res.cores["weight_bytes"] / hw.weight_memory_bytes_per_core)
    assert np.array_equal(res.neuron_utilisation, neuron_utilisation(res.cores["neurons"], hw))
    used = res.cores["neurons"] > 0
    assert res.metrics["max_neuron_utilisation"] == pytest.approx(res.neuron_utilisation[used].max())
    assert res.metrics["mean_memory_utilisation"] == pytest.approx(res.memory_utilisation[used].mean())
    grids = res.utilisation_grids()
    assert set(grids) == {"neurons", "weight memory"} and grids["neurons"].shape == hw.mesh
    for k in range(len(res.cores["row"])):
        r, c = int(res.cores["row"][k]), int(res.cores["col"][k])
        assert grids["neurons"][r, c] == pytest.approx(res.neuron_utilisation[k])
    # no weight memory at all: nothing of nothing is 0, weights that cannot fit are inf
    bare = hw_small(weight_memory_bytes_per_core=0)
    assert memory_utilisation(np.array([0, 5]), bare).tolist() == [0.0, np.inf]


def test_auto_keeps_the_mapping_with_the_least_traffic():
    """The default tries each partitioner and keeps the fewest packet-hops per step; on this small graph
    METIS's balanced cut spreads a layer over every core and loses to another split."""
    g = dense_net(100, 300, 50)
    hw = hw_small(mesh=(3, 3), neurons_per_core=128, link_bandwidth=50.0)
    hops = {a: map_graph(g, hw, a).metrics["packet_hops_per_step"] for a in ("metis", "spectral", "greedy")}
    best = map_graph(g, hw)
    assert best.metrics["packet_hops_per_step"] == min(hops.values())
    assert best.algorithm == min(hops, key=lambda a: (hops[a], ("metis", "spectral", "greedy").index(a)))
    with pytest.raises(MappingError, match="'auto'"):
        map_graph(g, hw, "fastest")


def test_map_graph_reports_its_steps():
    steps: list = []
    map_graph(dense_net(20, 30), hw_small(), "auto", progress=steps.append)
    assert steps[0] == "checking capacity and building the neuron graph"
    for algorithm in ("metis", "spectral", "greedy"):
        i = steps.index(f"{algorithm}: partitioning")
        assert steps[i + 1].startswith(f"{algorithm}: placing") and steps[i + 2] == f"{algorithm}: routing"
