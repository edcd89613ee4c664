"""The mapping feeds the CPU backend: network-on-chip hop energy/latency in profiles, core assignment
and routes in descriptors."""

import math

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
    sim = cpu.simulate(g, n_steps=T, record=["input", "lif1", "lif2"])
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
    parts = (plain.mac_energy_uj, plain.spike_energy_uj, plain.neuron_energy_uj, plain.elementwise_energy_uj, plain.sram_energy_uj)
    assert plain.energy_estimate_uj == math.fsum(parts)


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
    # The parts add up; latency: each step waits at least for its longest active route (at most the
    # longest route), and here queueing on the busiest link dominates.
    assert prof.energy_estimate_uj == pytest.approx(plain.energy_estimate_uj + prof.noc_energy_uj)
    assert prof.total_latency_us == pytest.approx(plain.total_latency_us + prof.noc_latency_us)
    cg = prof.noc_congestion
    assert cg.route_latency_us <= mapping.metrics["max_hops"] * 2e-8 * T * 1e6 + 1e-12
    assert prof.noc_latency_us == pytest.approx(sum(cg.step_latency_us)) and prof.noc_latency_us >= cg.route_latency_us
    assert cg.exact and cg.link_packets.all().sum() == pytest.approx(prof.noc_packet_hops)
    assert sum(lp.noc_energy_uj for lp in prof.layers.values()) == pytest.approx(prof.noc_energy_uj)
    assert sum(lp.energy_uj for lp in prof.layers.values()) == pytest.approx(prof.energy_estimate_uj)
    assert prof.layers["input"].noc_energy_uj > 0 and prof.layers["fc1"].noc_energy_uj == 0
    assert "recorded spikes" in prof.derivation["noc"] and "pJ/hop" in prof.derivation["noc"]
    text = prof.summary()
    assert "NoC" in text and "packet-hops" in text


def test_profile_records_the_mapped_layers_itself(cpu, run):
    g, sim, mapping = run
    own = cpu.profile(g, n_steps=T, mapping=mapping)
    assert set(own.simulation.spikes) == {"input", "lif1", "lif2"}  # the Input's values as the runtime saw them
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


# -- link congestion, hand-computed -------------------------------------------------------------------------
#
# A 1x3 mesh, cores 0, 1, 2 at (0, 0), (0, 1), (0, 2). Layer a (4 neurons, core 0) and layer b (2 neurons,
# core 1) both have synapses onto layer c (2 neurons, core 2). XY routes: a -> c crosses (0,0)->(0,1) then
# (0,1)->(0,2) (2 hops); b -> c crosses (0,1)->(0,2) (1 hop): the two routes share (0,1)->(0,2).
# Queueing floor of each link (fewest hops before it + fewest after it + itself): (0,0)->(0,1): 0 + 1 + 1 = 2;
# (0,1)->(0,2): 0 (b starts there) + 0 + 1 = 1. With 10 ns per hop and per packet, a link carrying n packets
# in a step needs floor x 10 + (n - 1) x 10 ns.
#
# Spikes per step (a fired, b fired):  step 0: 4, 2   step 1: 1, 0   step 2: 0, 0   step 3: 0, 2
#   loads (0,0)->(0,1) / (0,1)->(0,2):  4 / 6           1 / 1          0 / 0          0 / 2
#   longest active route:               20 ns           20 ns          0              10 ns
#   queueing (max over links):          max(50, 60)=60  max(20, 10)=20 0              20 ns
#   step latency:                       60 (queueing)   20 (route)     0              20 (queueing)
# total 100 ns against 50 ns for the routes alone; packets per link 5 and 9 (= 5 a-spikes x 2 hops + 4
# b-spikes x 1 hop = 14 packet-hops).

A_FIRES = np.array([[1, 1, 1, 1], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32)
B_FIRES = np.array([[1, 1], [0, 0], [0, 0], [1, 1]], dtype=np.float32)


def _line_mapping(**hw_kw):
    import scipy.sparse as sp

    from talon.mapping import NeuronGraph, Partition, route
    from talon.mapping.allocate import allocate
    from talon.mapping.place import Placement
    from talon.mapping.result import result_from

    src = np.r_[np.repeat(np.arange(4), 2), np.repeat([4, 5], 2)]
    dst = np.r_[np.tile([6, 7], 4), np.tile([6, 7], 2)]
    adj = sp.csr_matrix((np.ones(src.size), (src, dst)), shape=(8, 8))
    ng = NeuronGraph.from_csr(adj, layer_sizes=[4, 2, 2], layer_names=["a", "b", "c"], group_size=2)
    hw = HardwareSpec(mesh=(1, 3), neurons_per_core=4, weight_memory_bytes_per_core=4096, latency_per_hop=1e-8, **hw_kw)
    placed = Placement(Partition(ng, np.array([0, 0, 1, 2]), 3, hw, "manual"), np.array([0, 1, 2]), "manual")
    mapping = result_from(route(placed, hw), allocate(placed, hw))
    assert mapping.routing_table(0, 0) == [{"layer": "a", "start": 0, "stop": 4, "destinations": [(0, 2)]}]
    assert mapping.routing_table(0, 1) == [{"layer": "b", "start": 0, "stop": 2, "destinations": [(0, 2)]}]
    return mapping


def _line_sim(a=A_FIRES, b=B_FIRES, *, recorded=True):
    from talon.backend.base import SimulationResult

    a, b = (np.asarray(x, dtype=np.float32) for x in (a, b))
    a, b = (x[:, None, :] if x.ndim == 2 else x for x in (a, b))  # (T, B, n)
    T, B = a.shape[:2]
    counts = {"a": int(a.sum()), "b": int(b.sum())}
    return SimulationResult(
        backend="cpu", mode="float", timesteps_run=T, batch_size=B, spike_counts=counts, firing_rates={},
        neurons={"a": 4, "b": 2}, input_events={}, outputs={}, outputs_valid=True,
        spikes={"a": a, "b": b} if recorded else {},
    )  # fmt: skip


def _congestion(mapping, sim):
    from talon.backend.cpu.profiler import noc_congestion, noc_traffic

    traffic = noc_traffic(ir.Graph(), sim, mapping)  # layers a, b, c exist only in the mapping
    return traffic, noc_congestion(traffic, mapping.hardware)[0]


def test_congestion_on_a_shared_link_follows_the_spikes_step_by_step():
    traffic, cg = _congestion(_line_mapping(), _line_sim())
    assert traffic["packet_hops"] == {"a": 10.0, "b": 4.0, "c": 0.0}
    assert cg.step_route_latency_us == pytest.approx((0.02, 0.02, 0.0, 0.01))
    assert cg.step_latency_us == pytest.approx((0.06, 0.02, 0.0, 0.02))
    assert cg.step_max_link_load == (6.0, 1.0, 0.0, 2.0)
    shared, first = ((0, 1), (0, 2)), ((0, 0), (0, 1))
    assert cg.step_busiest_link == (shared, first, None, shared)  # step 1: a tie, the lower-numbered link
    assert (cg.busiest_link, cg.max_link_load, cg.busiest_step) == (shared, 6.0, 0)
    assert cg.latency_us == pytest.approx(0.1) and cg.route_latency_us == pytest.approx(0.05)
    assert cg.congestion_latency_us == pytest.approx(0.05) and cg.congested_steps == 2
    assert cg.link_packets.link(*first) == 5 and cg.link_packets.link(*shared) == 9 and cg.link_packets.all().sum() == 14
    assert cg.peak_link_loads.link(*first) == 4 and cg.peak_link_loads.link(*shared) == 6
    assert cg.top_links(1) == [{"link": shared, "peak_load": 6.0, "packets": 9.0}]
    assert cg.exact and cg.over_bandwidth_steps is None
    # The brief's serialisation bound (busiest link's packets x time per packet) is met exactly here: 6 x 10 ns.
    assert cg.step_latency_us[0] == pytest.approx(6 * 0.01)


def test_congestion_does_not_dominate_with_fast_links():
    # 1 ns per packet: step 0 queues 2 x 10 + 3 x 1 = 23 ns on the first link and 1 x 10 + 5 x 1 = 15 ns on
    # the shared one against the 20 ns route; step 3: 10 + 1 = 11 against 10. Free links: the routes alone.
    _, cg = _congestion(_line_mapping(link_time_per_packet=1e-9), _line_sim())
    assert cg.packet_time_ns == pytest.approx(1.0)
    assert cg.step_latency_us == pytest.approx((0.023, 0.02, 0.0, 0.011))
    _, free = _congestion(_line_mapping(link_time_per_packet=0.0), _line_sim())
    assert free.step_latency_us == pytest.approx(free.step_route_latency_us)
    assert free.congestion_latency_us == 0 and free.congested_steps == 0 and free.max_link_load == 6.0


def test_congestion_per_sample_bandwidth_and_upper_bound():
    mapping = _line_mapping(link_bandwidth=3)
    # Two samples: the first as above, the second silent. Times are averaged over the batch, loads are the
    # worst sample's; only step 0 puts more than 3 packets on a link.
    a = np.stack([A_FIRES, np.zeros_like(A_FIRES)], axis=1)
    b = np.stack([B_FIRES, np.zeros_like(B_FIRES)], axis=1)
    _, cg = _congestion(mapping, _line_sim(a, b))
    assert cg.step_latency_us == pytest.approx((0.03, 0.01, 0.0, 0.01)) and cg.step_max_link_load == (6.0, 1.0, 0.0, 2.0)
    assert cg.over_bandwidth_steps == 1 and cg.link_packets.all().sum() == pytest.approx(7.0)  # per sample
    # Counts only (no recordings): every step is charged what the entries could send at most, min(neurons,
    # whole-batch count) = 4 for a and 2 for b over their longest routes: 60 ns on each of the 4 steps.
    _, bound = _congestion(mapping, _line_sim(recorded=False))
    assert not bound.exact and bound.step_latency_us == pytest.approx((0.06,) * 4)
    assert bound.latency_us >= _congestion(mapping, _line_sim())[1].latency_us
    assert bound.link_packets.all().sum() == pytest.approx(14.0)  # run totals stay the counted ones


def test_profile_reports_congestion_and_counts_input_packets_per_nonzero_value(cpu, run):
    g, _, mapping = run
    # Half the inputs are zero: they send nothing; the other half send one packet per step each.
    x = np.r_[np.zeros(8), np.full(8, 0.8)].astype(np.float32)[None]
    prof = cpu.profile(g, x, n_steps=T, mapping=mapping)
    counts = np.r_[np.zeros(8), np.full(8, float(T))]
    hand = 0
    for r, c in zip(mapping.cores["row"], mapping.cores["col"]):
        for e in mapping.routing_table(int(r), int(c)):
            if e["layer"] == "input":
                hand += counts[e["start"] : e["stop"]].sum() * sum((dr, dc) != (r, c) for dr, dc in e["destinations"])
    assert prof.layers["input"].noc_packets == hand
    assert "recorded non-zero input values: input" in prof.derivation["noc"]
    cg = prof.noc_congestion
    assert cg.exact and len(cg.step_latency_us) == T and prof.noc_latency_us == pytest.approx(cg.latency_us)
    assert "busiest link" in prof.derivation["noc"] and "NoC links" in prof.summary()
    from talon.report import energy_payload

    doc = energy_payload(prof)
    assert doc["energy_uj"]["noc"] == prof.noc_energy_uj
    noc = doc["noc"]
    assert noc["latency_us"] == prof.noc_latency_us and noc["busiest_link"] == {"from": list(cg.busiest_link[0]), "to": list(cg.busiest_link[1])}
    assert len(noc["steps"]) == T and noc["steps"][0]["max_link_load"] == cg.step_max_link_load[0]
    assert energy_payload(cpu.profile(g, simulation=cpu.simulate(g, n_steps=2)))["noc"] is None


def test_energy_command_reports_noc_congestion_of_a_mapped_file(run, tmp_path):
    import json

    from click.testing import CliRunner

    from talon.cli import cli

    g, _, mapping = run
    path = tmp_path / "mapped.t1c"
    ir.write(path, mapping.attach(_mlp()))
    res = CliRunner().invoke(cli, ["energy", str(path), "--steps", str(T), "--json"], catch_exceptions=False)
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    e, noc = doc["energy_uj"], doc["noc"]
    assert e["total"] == pytest.approx(e["mac"] + e["spike"] + e["neuron"] + e["elementwise"] + e["sram"] + e["noc"], rel=1e-9)
    assert noc["exact"] and len(noc["steps"]) == T and noc["latency_us"] == pytest.approx(sum(s["latency_us"] for s in noc["steps"]))
    assert noc["busiest_link"] is not None and noc["top_links"][0]["peak_load"] == noc["max_link_load"]
    text = CliRunner().invoke(cli, ["energy", str(path), "--steps", "2"], catch_exceptions=False).stdout
    assert "NoC links" in text and "busiest" in text
