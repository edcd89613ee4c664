"""talon.mapping used the way a user does after exporting their own snnTorch model (audit s8).

Models are written in snnTorch as its tutorials write them (a CSNN with Conv2d/MaxPool2d, a recurrent
RLeaky, a skip connection, a hybrid ANN-SNN with BatchNorm and ReLU, a batch of 4 in the sample) and
exported with talon.bridge. Every count is computed here independently, from the layers' definitions
(convolution and pooling windows written out in numpy), never read back from TALON: neurons, synapses,
weight bytes at weight_bits, per-core fan-in / fan-out, packets and packet-hops at given rates and from a
simulation's recorded spikes, and NoC energy = packet-hops x energy_per_hop. Hardware descriptions are
written by hand and as JSON the way users write them. Each user form TALON refused with a bare Python
exception or silently truncated before this audit has a test here.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from talon import ir
from talon.errors import MappingError
import talon.mapping as tm

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
nn = torch.nn


# --------------------------------------------------------------------------------------------------
# The user's models, exported once per module.
# --------------------------------------------------------------------------------------------------
def _export(model, sample):
    from talon.bridge import export_to_ir

    return export_to_ir(model, sample)


@pytest.fixture(scope="module")
def csnn():
    torch.manual_seed(0)
    sg = snn.surrogate.fast_sigmoid(slope=25)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), snn.Leaky(beta=0.5, spike_grad=sg, init_hidden=True),
        nn.Conv2d(4, 8, 3), nn.MaxPool2d(2), snn.Leaky(beta=0.5, spike_grad=sg, init_hidden=True),
        nn.Flatten(), nn.Linear(8, 10), snn.Leaky(beta=0.5, spike_grad=sg, init_hidden=True, output=True),
    )
    return _export(net, torch.rand(1, 1, 12, 12))


class _Skip(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.l1 = nn.Linear(8, 8), snn.Leaky(beta=0.9, init_hidden=True)
        self.fc2, self.l2 = nn.Linear(8, 8), snn.Leaky(beta=0.9, init_hidden=True)

    def forward(self, x):
        a = self.l1(self.fc1(x))
        return self.l2(self.fc2(a) + a)


class _Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 12)
        self.rl = snn.RLeaky(beta=0.9, linear_features=12, init_hidden=True)
        self.out, self.lif = nn.Linear(12, 3), snn.Leaky(beta=0.8, init_hidden=True)

    def forward(self, x):
        return self.lif(self.out(self.rl(self.fc(x))))


class _Hybrid(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.bn, self.relu = nn.Linear(12, 16), nn.BatchNorm1d(16), nn.ReLU()
        self.fc2, self.lif = nn.Linear(16, 8), snn.Leaky(beta=0.9, init_hidden=True)

    def forward(self, x):
        return self.lif(self.fc2(self.relu(self.bn(self.fc1(x)))))


@pytest.fixture(scope="module")
def skip():
    torch.manual_seed(1)
    return _export(_Skip(), torch.rand(4, 8))  # a batch of 4 in the sample: the graph is per sample


@pytest.fixture(scope="module")
def recurrent():
    torch.manual_seed(2)
    return _export(_Recurrent(), torch.rand(1, 10))


@pytest.fixture(scope="module")
def hybrid():
    torch.manual_seed(3)
    return _export(_Hybrid().eval(), torch.rand(2, 12))


# --------------------------------------------------------------------------------------------------
# Independent connectivity: which presynaptic element reaches which postsynaptic one.
# --------------------------------------------------------------------------------------------------
def _conv_reach(c_in, h, w, c_out, k):
    """(c_in*h*w) x (c_out*ho*wo) bool: a valid, stride-1 convolution with a k x k window."""
    ho, wo = h - k + 1, w - k + 1
    m = np.zeros((c_in, h, w, c_out, ho, wo), bool)
    for y in range(ho):
        for x in range(wo):
            m[:, y : y + k, x : x + k, :, y, x] = True
    return m.reshape(c_in * h * w, c_out * ho * wo)


def _pool_reach(c, h, w, k):
    """(c*h*w) x (c*(h//k)*(w//k)) bool: max pooling, stride k, the remainder rows/columns dropped."""
    m = np.zeros((c, h, w, c, h // k, w // k), bool)
    for ch in range(c):
        for y in range(h // k):
            for x in range(w // k):
                m[ch, y * k : (y + 1) * k, x * k : (x + 1) * k, ch, y, x] = True
    return m.reshape(c * h * w, c * (h // k) * (w // k))


def _then(a, b):
    return (a.astype(np.int64) @ b.astype(np.int64)) > 0


def _csnn_reach():
    """{(source layer, target layer): bool matrix} of the CSNN, and each target layer's synapses."""
    conv1 = _conv_reach(1, 12, 12, 4, 3)  # -> (4, 10, 10)
    in_to_2 = _then(conv1, _pool_reach(4, 10, 10, 2))  # -> (4, 5, 5)
    conv2 = _conv_reach(4, 5, 5, 8, 3)  # -> (8, 3, 3)
    l2_to_5 = _then(conv2, _pool_reach(8, 3, 3, 2))  # -> (8, 1, 1): row/column 2 of conv2 is dropped
    l5_to_8 = np.ones((8, 10), bool)
    # Weights live with the postsynaptic neurons: a conv's synapses are its output elements x its window,
    # charged to the layer for the outputs that reach it (conv2's outputs at row or column 2 reach nothing).
    synapses = {"2": 4 * 10 * 10 * 1 * 9, "5": 8 * 2 * 2 * 4 * 9, "8": 8 * 10}
    return {("input", "2"): in_to_2, ("2", "5"): l2_to_5, ("5", "8"): l5_to_8}, synapses


def _neuron_cores(result, sizes):
    """{layer: array of (row, col) per neuron} from the result's assignment."""
    out = {}
    for name, n in sizes.items():
        pos = np.full((n, 2), -1)
        for (r, c), s, e in result.node_assignment(name):
            pos[s:e] = (r, c)
        assert (pos >= 0).all(), name
        out[name] = pos
    return out


def _hand_traffic(reach, pos, rates):
    """Packets and packet-hops per step: a spike of neuron i is one packet to every other core holding a
    neuron it has a synapse onto, travelling |dr| + |dc| hops (XY)."""
    dests: dict[tuple[str, int], set] = {}
    for (src, dst), m in reach.items():
        for i, j in zip(*np.nonzero(m)):
            dests.setdefault((src, int(i)), set()).add(tuple(pos[dst][j]))
    packets = hops = local = 0.0
    for (src, i), cores in dests.items():
        own = tuple(pos[src][i])
        others = cores - {own}
        packets += rates[src][i] * len(others)
        hops += rates[src][i] * sum(abs(r - own[0]) + abs(c - own[1]) for r, c in others)
        local += rates[src][i] * (own in cores)
    return packets, hops, local


HW = tm.HardwareSpec(mesh=(3, 3), neurons_per_core=48, weight_memory_bytes_per_core=4096, weight_bits=5,
                     energy_per_hop=2e-12, latency_per_hop=1e-8)
SIZES = {"input": 144, "2": 100, "5": 8, "8": 10}


# --------------------------------------------------------------------------------------------------
# Counts against hand counts.
# --------------------------------------------------------------------------------------------------
def test_csnn_from_snntorch_per_core_counts_match_hand_counts(csnn):
    reach, synapses = _csnn_reach()
    rng = np.random.default_rng(0)
    rates = {"input": rng.uniform(0, 1, (1, 12, 12)), "2": rng.uniform(0, 0.3, (4, 5, 5)), "5": 0.25}
    res = tm.map_graph(csnn, HW, "greedy", rates=rates)
    assert res.layers == list(SIZES)
    pos = _neuron_cores(res, SIZES)
    # neurons and weight memory per core (5-bit weights: ceil(synapses * 5 / 8) bytes)
    cores = {(int(r), int(c)): k for k, (r, c) in enumerate(zip(res.cores["row"], res.cores["col"]))}
    neurons = np.zeros(len(cores), int)
    syn = np.zeros(len(cores))
    for name, n in SIZES.items():
        for r, c in pos[name]:
            neurons[cores[(r, c)]] += 1
            syn[cores[(r, c)]] += synapses.get(name, 0) / n
    assert neurons.tolist() == res.cores["neurons"].tolist() and neurons.max() <= 48
    assert np.allclose(syn, res.cores["synapses"])
    assert res.cores["weight_bytes"].tolist() == [math.ceil(s * 5 / 8) for s in np.rint(syn)]
    # fan-in: distinct presynaptic neurons with a synapse onto the core; fan-out: (neuron, core) pairs
    fan_in = {k: set() for k in cores}
    fan_out = np.zeros(len(cores), int)
    for (src, dst), m in reach.items():
        for i in range(m.shape[0]):
            targets = {tuple(p) for p in pos[dst][m[i]]}
            for t in targets:
                fan_in[t].add((src, i))
            fan_out[cores[tuple(pos[src][i])]] += len(targets)
    assert [len(fan_in[k]) for k in cores] == res.cores["fan_in"].tolist()
    assert fan_out.tolist() == res.cores["fan_out"].tolist()
    # traffic at the given rates
    per_neuron = {"input": rates["input"].ravel(), "2": rates["2"].ravel(), "5": np.full(8, 0.25), "8": np.ones(10)}
    packets, hops, local = _hand_traffic(reach, pos, per_neuron)
    m = res.metrics
    assert m["spike_packets_per_step"] == pytest.approx(packets)
    assert m["packet_hops_per_step"] == pytest.approx(hops)
    assert m["local_spikes_per_step"] == pytest.approx(local)
    assert m["spikes_per_step"] == pytest.approx(sum(v.sum() for v in per_neuron.values()))
    assert m["noc_energy_per_step"] == pytest.approx(hops * 2e-12)
    assert res.unmapped == []


def test_csnn_noc_energy_from_a_batched_simulation_matches_hand_count(csnn):
    """Packets from the recorded spikes of a batch of 3 (per sample), routed on the mapping by hand."""
    from talon.backend import get_backend

    cpu = get_backend("cpu")
    T, B = 6, 3
    x = (np.random.default_rng(4).uniform(0, 1, (T, B, 1, 12, 12)) < 0.5).astype(np.float32)
    sim = cpu.simulate(csnn, inputs={"input": x}, n_steps=T, record=["input", "2", "5", "8"])
    res = tm.map_graph(csnn, HW, "greedy")
    prof = cpu.profile(csnn, simulation=sim, mapping=res)
    reach, _ = _csnn_reach()
    pos = _neuron_cores(res, SIZES)
    counts = {n: (sim.spikes[n].numpy() != 0).reshape(T, B, -1).sum(axis=(0, 1)) / B for n in SIZES}
    assert counts["input"].sum() == pytest.approx((x != 0).sum() / B)
    packets, hops, _ = _hand_traffic(reach, pos, counts)
    assert prof.noc_packets == pytest.approx(packets)
    assert prof.noc_packet_hops == pytest.approx(hops)
    assert prof.noc_energy_uj == pytest.approx(hops * 2e-12 * 1e6)


def test_skip_recurrent_and_hybrid_models_from_snntorch(skip, recurrent, hybrid):
    hw = tm.HardwareSpec(mesh=(2, 2), neurons_per_core=8, weight_memory_bytes_per_core=1024)
    # skip: l1 reaches l2 through fc2 and through the identity; weights: fc1 -> l1, fc2 -> l2 (8 x 8 each)
    r = tm.map_graph(skip, hw, "greedy")
    assert r.layers == ["input", "l1", "l2"] and r.cores["neurons"].sum() == 24
    assert r.cores["synapses"].sum() == 128 and r.cores["weight_bytes"].sum() == 128
    # each core holds one whole layer of 8: every core receives from the 8 neurons before it
    assert sorted(r.cores["fan_in"].tolist()) == [0, 8, 8]
    # recurrent: rl reaches itself through its recurrent weights (12 x 12) besides fc (10 x 12)
    r = tm.map_graph(recurrent, tm.HardwareSpec(mesh=(1, 1), neurons_per_core=25), "greedy")
    assert r.layers == ["input", "rl", "lif"] and r.cores["neurons"].tolist() == [25]
    assert r.cores["synapses"].tolist() == [10 * 12 + 12 * 12 + 12 * 3]
    assert r.cores["fan_in"].tolist() == [10 + 12]  # input and rl (rl feeds both itself and lif)
    # hybrid: no neuron between fc1 and fc2: both are charged to lif; BatchNorm and ReLU place nothing
    r = tm.map_graph(hybrid, tm.HardwareSpec(mesh=(1, 1), neurons_per_core=20), "greedy")
    assert r.layers == ["input", "lif"] and r.cores["neurons"].tolist() == [20]
    assert r.cores["synapses"].tolist() == [12 * 16 + 16 * 8]


def test_exact_fit_and_one_neuron_too_many(skip):
    hw = tm.HardwareSpec(mesh=(1, 1), neurons_per_core=24)
    assert tm.map_graph(skip, hw).cores["neurons"].tolist() == [24]
    with pytest.raises(MappingError, match=r"24 placed elements .* > 23 \(over by 1"):
        tm.map_graph(skip, tm.HardwareSpec(mesh=(1, 1), neurons_per_core=23))
    # weight memory: 64 synapses into a layer at 8 bits; a unit of 8 neurons is 64 bytes
    ok = tm.HardwareSpec(mesh=(3, 1), neurons_per_core=8, weight_memory_bytes_per_core=64)
    assert tm.map_graph(skip, ok, "greedy").cores["weight_bytes"].tolist() == [0, 64, 64]
    with pytest.raises(MappingError, match="weight memory"):
        tm.map_graph(skip, tm.HardwareSpec(mesh=(3, 1), neurons_per_core=8, weight_memory_bytes_per_core=63), "greedy")


def test_input_feeding_two_layers_and_an_unconnected_node():
    w = np.eye(4, dtype=np.float32)
    lif = lambda: ir.LIF(tau=np.full(4, 2.0, np.float32), r=np.full(4, 2.0, np.float32),  # noqa: E731
                         v_leak=np.zeros(4, np.float32), v_threshold=np.ones(4, np.float32))
    g = ir.Graph({"x": ir.Input(shape=(4,)), "a": ir.Affine(weight=w, bias=np.zeros(4, np.float32)), "la": lif(),
                  "b": ir.Affine(weight=np.ones((4, 4), np.float32), bias=np.zeros(4, np.float32)), "lb": lif(),
                  "ya": ir.Output(), "yb": ir.Output()},
                 [("x", "a"), ("a", "la"), ("la", "ya"), ("x", "b"), ("b", "lb"), ("lb", "yb")])
    hw = tm.HardwareSpec(mesh=(1, 3), neurons_per_core=4)
    r = tm.map_graph(g, hw, "greedy", rates={"x": [1.0, 0.0, 0.5, 0.0]})
    pos = {n: r.position_of(n, 0) for n in ("x", "la", "lb")}
    assert len(set(pos.values())) == 3
    # x[i] reaches la[i] (identity weights: eye gives 1 synapse each, 4 in all) and every lb neuron
    hops = {n: abs(pos[n][0] - pos["x"][0]) + abs(pos[n][1] - pos["x"][1]) for n in ("la", "lb")}
    assert r.metrics["spike_packets_per_step"] == pytest.approx(1.5 * 2)
    assert r.metrics["packet_hops_per_step"] == pytest.approx(1.5 * (hops["la"] + hops["lb"]))
    assert r.cores["synapses"].tolist() == [0, 16, 16]  # the Affine's synapses are its weight's elements
    # an Input that feeds nothing (an unused forward argument) sends nothing: it takes no core slot, and is
    # listed off the cores; before, its 5 elements were placed and could make the graph "not fit"
    g3 = g.copy()
    g3.add_node("unused", ir.Input(shape=(5,)))
    r3 = tm.map_graph(g3, tm.HardwareSpec(mesh=(1, 3), neurons_per_core=4), "greedy")
    assert r3.layers == ["x", "la", "lb"] and r3.unmapped == ["unused"] and r3.metrics["neurons"] == 12
    assert "inputs feeding nothing): ['unused']" in r3.summary()
    # a node fed by nothing is a graph error that names it, not a crash deep inside mapping
    g2 = g.copy()
    g2.add_node("lost", lif())
    with pytest.raises(MappingError, match="lost"):
        tm.map_graph(g2, hw, "greedy")


# --------------------------------------------------------------------------------------------------
# Hardware descriptions written by users.
# --------------------------------------------------------------------------------------------------
def test_hardware_json_as_users_write_it(tmp_path):
    text = '{"mesh": [2.0, 3.0], "neurons_per_core": 256.0, "weight_bits": 4, "energy_per_hop": 1e-12}'
    hw = tm.HardwareSpec.from_dict(json.loads(text))
    assert hw.mesh == (2, 3) and hw.neurons_per_core == 256 and hw.weight_bits == 4
    assert hw.weight_memory_bytes_per_core == tm.HardwareSpec().weight_memory_bytes_per_core  # omitted: default
    assert tm.HardwareSpec.from_dict(json.loads(json.dumps(hw.to_dict()))) == hw
    assert tm.HardwareSpec(mesh=[2, 3]) == tm.HardwareSpec(mesh=(2, 3)) == tm.HardwareSpec(mesh=np.array([2, 3]))


@pytest.mark.parametrize(
    "mesh, match",
    [([2.5, 2], r"mesh\[0\] must be an integer, got 2.5"), ([2, True], r"mesh\[1\] must be an integer, got True"), ("4x4", r"\[rows, cols\]"),
     (4, r"\[rows, cols\]"), (None, r"\[rows, cols\]"), ({"rows": 2, "cols": 2}, r"\[rows, cols\]")],
)
def test_hardware_dict_mesh_is_refused_not_truncated(mesh, match):
    with pytest.raises(tm.HardwareSpecError, match=match):
        tm.HardwareSpec.from_dict({"mesh": mesh})


def test_preset_overrides_name_the_unknown_field():
    assert tm.preset("loihi-like", mesh=[2, 2], max_fan_in=64.0).max_fan_in == 64
    with pytest.raises(tm.HardwareSpecError, match=r"\['rows'\] overriding preset 'small' \(the mesh is one field"):
        tm.preset("small", rows=2)
    with pytest.raises(tm.HardwareSpecError, match=r"unknown HardwareSpec fields \['cores'\].*the fields are"):
        tm.HardwareSpec.from_dict({"mesh": [2, 2], "cores": 4})
    with pytest.raises(tm.HardwareSpecError, match="unknown hardware preset"):
        tm.preset(["small"])


def test_hardware_given_as_a_name_or_dict_says_how_to_build_one(skip):
    with pytest.raises(MappingError, match=r"preset\('small'\)"):
        tm.map_graph(skip, "small")
    with pytest.raises(MappingError, match=r"HardwareSpec.from_dict"):
        tm.map_graph(skip, {"mesh": [2, 2]})
    with pytest.raises(MappingError, match="HardwareSpec"):
        tm.check_capacity(skip, None)


# --------------------------------------------------------------------------------------------------
# Rates, paths and indices.
# --------------------------------------------------------------------------------------------------
def test_rates_as_users_give_them(skip):
    hw = tm.HardwareSpec(mesh=(2, 2), neurons_per_core=8)
    spikes = lambda r: tm.map_graph(skip, hw, "greedy", rates=r).metrics["spikes_per_step"]  # noqa: E731
    assert spikes(0.5) == 12.0 and spikes(np.float32(0.25)) == 6.0 and spikes(1) == 24.0
    assert spikes({"l1": [0.5]}) == 8 + 4 + 8  # one value broadcast over the layer, others at 1.0
    assert spikes({"l1": np.full((1, 8), 0.5)}) == 20  # a batch of one, as spk.mean(0) gives
    assert spikes({"l1": None}) == 24  # None: the default, like rates=None
    assert spikes({"l1": torch.full((8,), 0.5)}) == 20
    with pytest.raises(MappingError, match=r"got Tensor .*detach\(\)"):  # straight from a training loop
        spikes({"l1": torch.full((8,), 0.5, requires_grad=True)})


@pytest.mark.parametrize(
    "rates, match",
    [(-0.5, r"\[0, 1\]"), (float("nan"), r"\[0, 1\]"), (3.0, "divide by T"), ({"l1": 2.0}, "divide by T"),
     ({"l1": "x"}, r"rates\['l1'\] must be a number or an array"), ({"l1": np.full((4, 8), 0.5)}, "average them over the batch"),
     ({"l1": np.full((2, 4), 0.5)}, r"shape \(2, 4\), layer 'l1' has 8 neurons"), ({"fc1": 0.5}, "not neuron layers"),
     ([0.5] * 24, "a number or a dict")],
)
def test_rates_refused_by_name(skip, rates, match):
    with pytest.raises(MappingError, match=match):
        tm.map_graph(skip, tm.HardwareSpec(mesh=(2, 2)), "greedy", rates=rates)


@pytest.mark.parametrize(
    "kw, match",
    [({"default_rate": "1"}, "default_rate must be a number"), ({"default_rate": None}, "default_rate"),
     ({"group_size": 2.5}, "group_size must be an integer"), ({"time_limit": -1}, "time_limit must be >= 0")],
)
def test_options_refused_by_name(skip, kw, match):
    with pytest.raises(MappingError, match=match):
        tm.map_graph(skip, tm.HardwareSpec(mesh=(2, 2)), "greedy", **kw)


def test_a_t1c_path_is_read_like_every_sdk_function(skip, tmp_path):
    path = tmp_path / "skip.t1c"
    ir.write(path, skip)
    hw = tm.HardwareSpec(mesh=(2, 2), neurons_per_core=8)
    by_path = tm.map_graph(str(path), hw, "greedy")
    by_graph = tm.map_graph(skip, hw, "greedy")
    assert by_path.metrics == by_graph.metrics and by_path.layers == by_graph.layers
    assert all(np.array_equal(by_path.cores[k], by_graph.cores[k]) for k in by_graph.cores)
    assert tm.from_graph(path, hw).num_neurons == 24
    tm.check_capacity(path, hw)
    assert tm.partition(path, hw).num_cores == 3
    with pytest.raises(MappingError, match="attach=True needs an IR Graph.*talon.ir.read"):
        tm.map_graph(path, hw, attach=True)


def test_result_indices_off_the_model_are_refused(skip):
    r = tm.map_graph(skip, tm.HardwareSpec(mesh=(2, 2), neurons_per_core=8), "greedy")
    assert r.position_of("l1", np.int64(3)) == r.position_of("l1", 3.0)
    with pytest.raises(MappingError, match="neuron index must be an integer, got 1.5"):
        r.position_of("l1", 1.5)
    with pytest.raises(MappingError, match=r"\(2, 0\) is outside the 2x2 mesh"):
        r.routing_table(2, 0)
    unused = {(0, 0), (0, 1), (1, 0), (1, 1)} - set(zip(r.cores["row"].tolist(), r.cores["col"].tolist()))
    assert all(r.routing_table(*p) == [] for p in unused)  # a core on the mesh holding nothing


# --------------------------------------------------------------------------------------------------
# talon.sdk on the same exported models.
# --------------------------------------------------------------------------------------------------
def test_analyze_and_profile_of_the_csnn_against_the_torch_model_and_hand_counts(csnn):
    from talon import sdk

    st = sdk.analyze_graph(csnn)
    # snnTorch's own parameter count is the synaptic part (beta and threshold are not learnable here)
    torch_params = (4 * 9 + 4) + (8 * 4 * 9 + 8) + (8 * 10 + 10)
    assert st.total_params - st.neuron_params == torch_params
    assert st.total_macs == st.total_synapses == 3600 + 8 * 3 * 3 * 4 * 9 + 80  # conv2 computes all 3x3 outputs
    assert st.num_neurons == 100 + 8 + 10 and st.num_spiking_layers == 3
    prof = sdk.profile_graph(csnn, quantized_bits=8)  # one width given as a number
    # 8-bit weights: one byte per weight plus a float32 scale per tensor; the rest as stored
    assert prof.quantized_weight_memory == {8: (36 + 4) + (288 + 4) + (80 + 4) + 4 * (4 + 8 + 10) + (st.total_bytes - 4 * (torch_params))}
    assert prof.weight_memory == st.total_bytes
    assert sdk.profile_graph(csnn, activation_bytes=2.0).activation_memory == prof.activation_memory // 2


def test_fold_batchnorm_of_an_snntorch_model_keeps_its_spikes():
    """Conv2d -> BatchNorm2d -> Leaky and Linear -> BatchNorm1d -> Leaky in eval mode with trained-looking
    statistics: the folded graph spikes as snnTorch does, step for step."""
    from talon import sdk
    from talon.backend import get_backend

    torch.manual_seed(5)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), snn.Leaky(beta=0.8, init_hidden=True),
                        nn.Flatten(), nn.Linear(3 * 4 * 4, 5), nn.BatchNorm1d(5), snn.Leaky(beta=0.8, init_hidden=True))
    for bn in (net[1], net[5]):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.4)
    net.eval()
    g = _export(net, torch.rand(2, 1, 6, 6))
    assert [i.code for i in sdk.lint_graph(g).issues].count("FOLDABLE_BATCHNORM") == 2
    folded = sdk.fold_batchnorm(g)
    assert not any(n.type_name.startswith("BatchNorm") for n in folded.nodes.values())
    assert "FOLDABLE_BATCHNORM" not in [i.code for i in sdk.lint_graph(folded).issues]
    T, B = 6, 2
    x = torch.rand(T, B, 1, 6, 6) * 3
    with torch.no_grad():
        from snntorch import utils

        utils.reset(net)
        ref = torch.stack([net(x[t]) for t in range(T)])
    sim = get_backend("cpu").simulate(folded, inputs={"input": x.numpy()}, n_steps=T)
    out = torch.as_tensor(np.asarray(next(iter(sim.outputs.values()))))
    assert ref.sum() > 0 and torch.equal(out.float(), ref.float())


def test_sdk_arguments_as_users_pass_them(hybrid):
    from talon import sdk
    from talon.errors import TalonUsageError

    # one name where a list is expected is that name, not its characters
    assert sdk.convert_to_spiking(hybrid, nodes="fc2").nodes["fc2"].type_name == "SpikingAffine"
    assert sdk.convert_to_spiking(hybrid, nodes="fc2").nodes["fc1"].type_name == "Affine"
    assert [i.code for i in sdk.lint_graph(hybrid, ignore="FOLDABLE_BATCHNORM").issues] == []
    q = sdk.quantize_weights(hybrid, bits=np.int64(4), nodes="fc1")  # a numpy int, as from a sweep's grid
    assert np.array_equal(q.nodes["fc2"].weight, hybrid.nodes["fc2"].weight) and not np.array_equal(q.nodes["fc1"].weight, hybrid.nodes["fc1"].weight)
    assert list(sdk.extract_subgraph(hybrid, nodes="fc1", add_io=False).nodes) == ["fc1"]
    assert sdk.compare_graphs(hybrid, hybrid, tolerance=np.float32(0.5)).identical
    assert sdk.compare_graphs(hybrid, sdk.fold_batchnorm(hybrid), tolerance=float("inf")).nodes_removed == ["bn"]
    for call, match in [
        (lambda: sdk.compare_graphs(hybrid, hybrid, tolerance="0.1"), "tolerance must be a number >= 0, got '0.1'"),
        (lambda: sdk.profile_graph(hybrid, memory_budget="1KB"), r"memory_budget \(bytes; e.g. 64 \* 1024\) must be a whole number"),
        (lambda: sdk.profile_graph(hybrid, memory_budget=-1), "memory_budget"),
        (lambda: sdk.profile_graph(hybrid, activation_bytes=2.5), "activation_bytes must be a whole number >= 1, got 2.5"),
        (lambda: sdk.profile_graph(hybrid, state_bytes=0), "state_bytes must be a whole number >= 1"),
        (lambda: sdk.convert_to_spiking(hybrid, nodes=5), "nodes must be a name or a list of names"),
    ]:
        with pytest.raises(TalonUsageError, match=match):
            call()


def test_a_t1c_file_named_nir_says_so(skip, tmp_path):
    from talon.errors import TalonFormatError

    ir.write(tmp_path / "model.t1c", skip)
    (tmp_path / "model.nir").write_bytes((tmp_path / "model.t1c").read_bytes())
    with pytest.raises(TalonFormatError, match=r"model.nir: it holds a TALON graph .* name it .t1c"):
        ir.read(tmp_path / "model.nir")


def test_patterns_in_snntorch_spelling_name_every_unknown_type_and_the_way_forward(csnn):
    from talon import sdk
    from talon.errors import TalonUsageError

    assert sdk.find_pattern(csnn, "Conv2d -> MaxPool2d -> LIF") == [("0", "1", "2"), ("3", "4", "5")]
    with pytest.raises(TalonUsageError, match=r"\['Leaky', 'conv2d'\].*'conv2d' -> 'Conv2d'.*'talon primitives' lists"):
        sdk.find_pattern(csnn, "conv2d -> MaxPool2d -> Leaky")
    with pytest.raises(TalonUsageError, match="'talon primitives' lists"):
        sdk.find_pattern(csnn, "Conv2d -> Spiky")


def test_rates_from_a_simulation_as_users_take_them(skip):
    from talon.backend import get_backend

    sim = get_backend("cpu").simulate(skip, n_steps=4)
    hw = tm.HardwareSpec(mesh=(2, 2), neurons_per_core=8)
    r = tm.map_graph(skip, hw, "greedy", rates=sim.firing_rates)  # {layer: mean rate}; the input at 1.0
    assert r.metrics["spikes_per_step"] == pytest.approx(8 + 8 * sim.firing_rates["l1"] + 8 * sim.firing_rates["l2"])
    with pytest.raises(MappingError, match=r"rates=sim.firing_rates"):
        tm.map_graph(skip, hw, "greedy", rates=sim)
