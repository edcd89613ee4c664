"""partition(): hand-checked splits, budgets always respected, fan-in/fan-out limits, algorithms."""

import importlib

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talon.errors import MappingError
from talon.mapping import ALGORITHMS, NeuronGraph, allocate, partition
from talon.mapping.synthetic import layered_small_world

from mapping_helpers import csr_graph, dense_net, hw_small


def test_large_layer_is_split_over_exactly_the_expected_cores():
    # Input(256) fills core 0; the 1000-neuron layer needs ceil(1000 / 256) = 4 more cores.
    part = partition(dense_net(256, 1000), hw_small(), "greedy")
    assert part.num_cores == 5
    assert part.node_slices() == {
        "inp": [(0, 0, 256)],
        "lif0": [(1, 0, 256), (2, 256, 512), (3, 512, 768), (4, 768, 1000)],
    }
    assert list(part.core_neurons()) == [256, 256, 256, 256, 232]


def test_small_layers_share_a_core():
    part = partition(dense_net(4, 3, 2), hw_small(), "greedy")
    assert part.num_cores == 1
    assert part.node_slices() == {"inp": [(0, 0, 4)], "lif0": [(0, 0, 3)], "lif1": [(0, 0, 2)]}


def test_weight_memory_limits_the_split():
    # each lif neuron has 100 synapses (100 bytes at 8 bits); a core holds 300 bytes -> 3 neurons
    hw = hw_small(weight_memory_bytes_per_core=300)
    part = partition(dense_net(100, 10), hw, "greedy")
    assert part.node_slices() == {"inp": [(0, 0, 100)], "lif0": [(0, 0, 3), (1, 3, 6), (2, 6, 9), (3, 9, 10)]}
    assert list(part.core_weight_bytes()) == [300, 300, 300, 100]
    hw4 = hw_small(weight_memory_bytes_per_core=300, weight_bits=4)  # 50 bytes per neuron -> 6 per core
    assert partition(dense_net(100, 10), hw4, "greedy").node_slices()["lif0"] == [(0, 0, 6), (1, 6, 10)]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_budgets_hold_for_every_algorithm(algorithm):
    ng = layered_small_world(4, 24, 24, group_size=16, seed=1)
    hw = hw_small(mesh=(4, 4), neurons_per_core=256, weight_memory_bytes_per_core=6000)
    part = partition(ng, hw, algorithm)
    alloc = allocate(part)  # strict: raises if any budget is broken
    assert alloc.neurons.sum() == ng.num_neurons
    assert (alloc.neurons <= 256).all() and (alloc.weight_bytes <= 6000).all()
    assert part.num_cores <= hw.num_cores
    sizes = {name: sum(e - s for _, s, e in runs) for name, runs in part.node_slices().items()}
    assert sizes == {name: 24 * 24 for name in ng.layer_names}


def packets(part):
    t = part.core_traffic()
    return float(t.sum() - t.diagonal().sum())


def test_metis_and_spectral_cut_less_traffic_than_greedy():
    ng = layered_small_world(4, 32, 32, group_size=16, seed=2, long_range=0.1)
    hw = hw_small(mesh=(4, 4), neurons_per_core=256, weight_memory_bytes_per_core=1 << 16)
    greedy = packets(partition(ng, hw, "greedy"))
    assert packets(partition(ng, hw, "metis")) < greedy
    assert packets(partition(ng, hw, "spectral")) < greedy


@pytest.mark.parametrize("kway_cores", [0, 1024])
def test_metis_tries_k_way_only_up_to_kway_cores(kway_cores, monkeypatch):
    """Beside the recursive bisection, k-way METIS is a candidate only up to KWAY_CORES cores; the
    partition keeps every budget either way."""
    part_mod = importlib.import_module("talon.mapping.partition")
    monkeypatch.setattr(part_mod, "KWAY_CORES", kway_cores)
    calls = []
    real = part_mod._metis_kway
    monkeypatch.setattr(part_mod, "_metis_kway", lambda *a: calls.append(a[3]) or real(*a))
    ng = layered_small_world(4, 32, 32, group_size=16, seed=2, long_range=0.1)
    hw = hw_small(mesh=(4, 4), neurons_per_core=256, weight_memory_bytes_per_core=1 << 16)
    part = partition(ng, hw, "metis")
    assert calls == ([] if kway_cores == 0 else [part.num_cores])
    assert part.core_neurons().max() <= hw.neurons_per_core and part.num_cores <= hw.num_cores


def test_metis_on_a_dense_graph_uses_the_fewest_cores():
    # 848 neurons, 64 memory-heavy ones (784 bytes each, 13 per core): memory needs 5 cores
    g = dense_net(784, 64)
    hw = hw_small(weight_memory_bytes_per_core=784 * 13 + 100)
    part = partition(g, hw, "metis", fill=1.0)
    assert part.num_cores == 5
    # every input neuron reaches all 5 cores (the layer is dense): 4 packets each, 1 delivery local
    assert packets(part) == 784 * 4
    assert partition(g, hw, "greedy").num_cores == 8  # input first (4 cores), then the memory-bound layer


def test_explicit_core_count():
    ng = layered_small_world(2, 16, 16, group_size=16)
    part = partition(ng, hw_small(), "metis", cores=6)
    assert part.num_cores == 6
    with pytest.raises(MappingError, match="cores"):
        partition(ng, hw_small(), "metis", cores=17)


def test_rates_weight_the_partition():
    # two pairs of neurons, each pair chatty only when its rates say so; one core holds two neurons
    edges = [(0, 2), (1, 3)]
    hw = hw_small(mesh=(1, 2), neurons_per_core=2)
    ng = csr_graph(edges + [(0, 3), (1, 2)], 4, layer_sizes=[2, 2], rates=[1.0, 1.0, 0.0, 0.0])
    part = partition(ng, hw, "metis")
    assert part.num_cores == 2 and (part.core_neurons() == 2).all()


def test_fan_in_limit():
    # 12 sources all-to-all onto 12 targets: every target neuron has fan-in 12
    n = 24
    edges = [(i, j) for i in range(12) for j in range(12, 24)]
    ng = csr_graph(edges, n, layer_sizes=[12, 12], group_size=1)
    hw = hw_small(neurons_per_core=16, max_fan_in=12)
    for algorithm in ALGORITHMS:
        part = partition(ng, hw, algorithm)
        assert (part.core_fan_in() <= 12).all(), algorithm
    with pytest.raises(MappingError, match="distinct neurons.*no mesh fits"):
        partition(ng, hw_small(neurons_per_core=16, max_fan_in=8), "greedy")


def test_fan_out_limit():
    # every source neuron talks to all 16 targets; 4 targets per core -> 4 destination cores each
    edges = [(i, j) for i in range(8) for j in range(8, 24)]
    ng = csr_graph(edges, 24, layer_sizes=[8, 16])
    hw = hw_small(neurons_per_core=4, max_fan_out=16)
    for algorithm in ALGORITHMS:
        part = partition(ng, hw, algorithm)
        assert (part.core_fan_out() <= 16).all(), algorithm
        assert (part.core_neurons() <= 4).all()


def test_bad_arguments():
    g = dense_net(4, 3)
    with pytest.raises(MappingError, match="unknown partition algorithm"):
        partition(g, hw_small(), "annealing")
    with pytest.raises(MappingError, match="HardwareSpec"):
        partition(g, {"mesh": (2, 2)})
    with pytest.raises(MappingError, match="fill"):
        partition(g, hw_small(), "metis", fill=1.5)


@st.composite
def random_network(draw):
    layers = draw(st.lists(st.integers(1, 40), min_size=1, max_size=4))
    n = sum(layers)
    m = draw(st.integers(0, 4 * n))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    src, dst = rng.integers(0, n, m), rng.integers(0, n, m)
    adj = sp.csr_matrix((rng.integers(1, 4, m), (src, dst)), shape=(n, n))
    rates = rng.random(n)
    gs = draw(st.integers(1, 8))
    return NeuronGraph.from_csr(adj, rates=rates, layer_sizes=layers, group_size=gs)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ng=random_network(), npc=st.integers(8, 48), mem=st.integers(20, 400), algorithm=st.sampled_from(ALGORITHMS))
def test_partition_fits_or_says_why(ng, npc, mem, algorithm):
    hw = hw_small(mesh=(3, 3), neurons_per_core=npc, weight_memory_bytes_per_core=mem)
    try:
        part = partition(ng, hw, algorithm)
    except MappingError as exc:
        assert "does not fit" in str(exc)
        return
    alloc = allocate(part)
    assert alloc.neurons.sum() == ng.num_neurons
    assert (alloc.neurons <= npc).all() and (alloc.weight_bytes <= mem).all()
    assert part.num_cores <= 9
    covered = np.zeros(ng.num_neurons, dtype=int)
    for li, runs in enumerate(part.node_slices().values()):
        for _, s, e in runs:
            covered[ng.layer_start[li] + s : ng.layer_start[li] + e] += 1
    assert (covered == 1).all()
