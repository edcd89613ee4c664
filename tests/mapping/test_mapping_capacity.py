"""check_capacity(): a graph that cannot fit under any partition is refused before partitioning."""

import numpy as np
import pytest

from talon import ir
from talon.errors import MappingError
from talon.mapping import check_capacity, map_graph, partition, preset
from talon.mapping.synthetic import layered_small_world

from mapping_helpers import dense_net, hw_small, lif


def spiking_vgg_block(channels=(16, 64), side=16, classifier=True) -> ir.Graph:
    """Input(3, side, side) -> [Conv2d 3x3 pad 1 -> LIF -> MaxPool2d 2]* -> Flatten -> Affine -> LIF -> Output,
    as an snnTorch convolutional SNN exports."""
    nodes = {"input": ir.Input(shape=(3, side, side))}
    c, h = 3, side
    for i, v in enumerate(channels):
        nodes[f"conv{i}"] = ir.Conv2d(weight=np.zeros((v, c, 3, 3), np.float32), bias=np.zeros(v, np.float32), padding=(1, 1))
        nodes[f"lif{i}"] = lif((v, h, h))
        nodes[f"pool{i}"] = ir.MaxPool2d(kernel_size=(2, 2), stride=(2, 2))
        c, h = v, h // 2
    if classifier:
        nodes["flatten"] = ir.Flatten(start_dim=0)
        nodes["fc"] = ir.Affine(weight=np.zeros((10, c * h * h), np.float32), bias=np.zeros(10, np.float32))
        nodes["out_lif"] = lif(10)
    nodes["output"] = ir.Output()
    g = ir.Graph(nodes)
    g.chain(*nodes)
    return g


@pytest.fixture
def no_partitioning(monkeypatch):
    """Fail the test if any partitioner (or the unit-level NeuronGraph build) runs."""
    import sys

    adapter, part = sys.modules["talon.mapping.adapter"], sys.modules["talon.mapping.partition"]

    def boom(*a, **k):
        raise AssertionError("partitioning ran before the capacity check")

    for mod, name in ((part, "greedy_fill"), (part, "_balanced"), (adapter, "_build")):
        monkeypatch.setattr(mod, name, boom)


@pytest.mark.parametrize("algorithm", ["auto", "metis", "greedy"])
def test_vgg_like_graph_on_loihi_like_is_refused_before_partitioning(no_partitioning, algorithm):
    hw = preset("loihi-like", mesh=(2, 2), max_fan_in=500)
    with pytest.raises(MappingError) as info:
        map_graph(spiking_vgg_block(), hw, algorithm)
    msg = str(info.value)
    assert "under any partition" in msg
    # 3x16x16 inputs + 16x16x16 + 64x8x8 + 10 neurons; 4 cores of 1,024
    assert "neurons: 8,970 placed elements (neurons + input elements) on the whole mesh > 4,096 (over by 4,874, 119%)" in msg
    # conv0: 4,096 outputs x 27, conv1: 4,096 x 144, fc: 10 x 1,024 synapses at 8 bits; 4 cores of 128 KiB
    assert "weight memory: 710,656 bytes of weights on the whole mesh > 524,288 (over by 186,368, 36%)" in msg
    # the classifier neuron reads all 64x8x8 lif1 neurons (through the pool and the flatten)
    assert "fan-in: 4,096 distinct presynaptic neurons of one neuron of layer 'out_lif' on one core > 500 (over by 3,596, 719%): no mesh fits" in msg
    assert "fan-in: 8,960 neurons that send spikes" in msg


def test_sampled_fan_in_is_the_largest_single_neuron_fan_in():
    g = spiking_vgg_block(classifier=False)
    ng = partition(g, hw_small(mesh=(8, 8), neurons_per_core=1024, weight_memory_bytes_per_core=1 << 22), "greedy", group_size=1).neurons
    true_max = int(np.bincount(ng.reach.indices, minlength=ng.num_units).max())  # units of one neuron
    assert true_max == 16 * 3 * 3 * 4  # lif1: 16 channels x a 3x3 window x the 2x2 max-pool window
    hw = hw_small(mesh=(8, 8), neurons_per_core=1024, weight_memory_bytes_per_core=1 << 22, max_fan_in=true_max - 1)
    with pytest.raises(MappingError, match=f"fan-in: {true_max} distinct presynaptic neurons"):
        check_capacity(g, hw)
    check_capacity(g, hw_small(mesh=(8, 8), neurons_per_core=1024, weight_memory_bytes_per_core=1 << 22, max_fan_in=true_max))


def test_total_weight_memory_is_checked_with_its_excess():
    g = dense_net(100, 200, 200)  # 100*200 + 200*200 = 60,000 synapses at 8 bits
    with pytest.raises(MappingError) as info:
        check_capacity(g, hw_small(mesh=(2, 2), weight_memory_bytes_per_core=10_000))
    msg = str(info.value)
    assert "weight memory: 60,000 bytes of weights on the whole mesh > 40,000 (over by 20,000, 50%)" in msg
    assert "at least 6 cores" in msg


def test_neuron_graph_totals(no_partitioning):
    ng = layered_small_world(2, 32, 32, group_size=16)  # 2,048 neurons
    with pytest.raises(MappingError, match=r"neurons: 2,048 placed elements .* > 1,024 \(over by 1,024, 100%\)"):
        partition(ng, hw_small(mesh=(2, 2)), "metis")


def test_axons_in_total():
    # 200 inputs that each send spikes need 200 input axons somewhere; 4 cores x 40 = 160
    g = dense_net(200, 10)
    hw = hw_small(mesh=(2, 2), max_fan_in=250, max_fan_out=40)
    with pytest.raises(MappingError, match=r"fan-out: 200 neurons that send spikes .* > 160 \(over by 40, 25%\)"):
        check_capacity(g, hw)


@pytest.mark.parametrize("mesh", [(1, 1), (1, 2), (2, 2), (2, 3), (3, 3)])
@pytest.mark.parametrize("algorithm", ["greedy", "metis"])
def test_the_check_never_refuses_a_graph_that_maps(mesh, algorithm):
    hw = hw_small(mesh=mesh, neurons_per_core=256, weight_memory_bytes_per_core=40_000, max_fan_in=600, max_fan_out=2000)
    for g in (dense_net(10, 300, 200), spiking_vgg_block((4, 8), side=8), dense_net(500, 500)):
        try:
            map_graph(g, hw, algorithm)
        except MappingError:
            continue
        check_capacity(g, hw)  # it mapped, so the capacity check must pass
