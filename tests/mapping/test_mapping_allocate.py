"""allocate()/check_fit(): per-core budgets, and what MappingError says when a graph does not fit."""

import numpy as np
import pytest

from talon.errors import MappingError
from talon.mapping import Partition, allocate, check_fit, from_graph, map_graph, partition

from mapping_helpers import dense_net, hw_small


def test_graph_that_does_not_fit_says_what_where_and_by_how_much():
    hw = hw_small(mesh=(2, 2), neurons_per_core=256)
    g = dense_net(10, 2000)  # 2,010 neurons: 8 cores of 256, the mesh has 4: refused before partitioning
    for algorithm in ("greedy", "metis", "spectral"):
        with pytest.raises(MappingError) as info:
            check_fit(g, hw, algorithm)
        msg = str(info.value)
        assert "does not fit the 2x2 mesh" in msg and "under any partition" in msg, msg
        assert "neurons: 2,010 placed elements (neurons + input elements) on the whole mesh > 1,024 (over by 986, 96%)" in msg, msg
        assert "at least 8 cores: the smallest mesh that could fit it is 2x4" in msg, msg
        assert "in total it has 2,010 neurons (mesh: 1,024)" in msg, msg
    # 1,020 placed elements fit the mesh's 1,024 in total, but not as greedy packs them
    with pytest.raises(MappingError) as info:
        check_fit(dense_net(10, 1010), hw, "greedy")
    msg = str(info.value)
    assert "cores on the mesh: 5 cores > budget 4 (over by 1" in msg
    # greedy fills core 0 with the 10 inputs and 15 units of 16 lif neurons (250), cores 1-2 with 256
    # each; the remaining 258 would have to share core 3
    assert "neurons on core 3 at (1, 1): 258 placed elements (neurons + input elements) > budget 256 (over by 2" in msg
    assert "smallest mesh that fits is 2x3 (5 cores needed by the greedy partitioner)" in msg


def test_weight_memory_that_no_mesh_can_hold():
    hw = hw_small(weight_memory_bytes_per_core=50)
    with pytest.raises(MappingError, match=r"weight memory: 100 bytes of weights for one neuron of layer 'lif0' .* > 50 \(over by 50, 100%\): no mesh fits"):
        check_fit(dense_net(100, 4), hw)


def test_a_fitting_graph_reports_its_allocation():
    hw = hw_small()
    alloc = check_fit(dense_net(256, 1000), hw)
    assert alloc.fits and alloc.num_cores == 5
    assert alloc.neurons.tolist() == [256, 256, 256, 256, 232]
    assert alloc.synapses.sum() == 256 * 1000
    assert alloc.weight_bytes.tolist() == [0, 256 * 256, 256 * 256, 256 * 256, 232 * 256]
    assert np.allclose(alloc.neuron_utilisation, alloc.neurons / 256)
    assert alloc.fan_in.tolist() == [0, 256, 256, 256, 256]
    assert alloc.fan_out.tolist() == [256 * 4, 0, 0, 0, 0]  # each input neuron -> 4 destination cores
    assert alloc.position.tolist() == [[0, 0], [0, 1], [0, 2], [0, 3], [1, 0]]
    assert "5 cores" in alloc.summary()


def test_allocate_strict_names_each_broken_budget():
    hw = hw_small(neurons_per_core=256, max_fan_in=100)
    ng = from_graph(dense_net(256, 300), hw)
    everything_on_one_core = Partition(ng, np.zeros(ng.num_units, dtype=np.int64), 1, hw, "manual")
    alloc = allocate(everything_on_one_core, strict=False)
    kinds = {v.resource for v in alloc.violations()}
    assert kinds == {"neurons", "fan_in"}
    with pytest.raises(MappingError, match=r"neurons on core 0 at \(0, 0\): 556 placed elements \(neurons \+ input elements\) > budget 256 \(over by 300"):
        allocate(everything_on_one_core)


def test_fan_limits_in_the_allocation():
    hw = hw_small(neurons_per_core=64, max_fan_in=300, max_fan_out=600)
    res = map_graph(dense_net(256, 200), hw, "greedy")
    assert res.cores["fan_in"].max() <= 300 and res.cores["fan_out"].max() <= 600


def test_partition_raises_when_the_mesh_is_too_small():
    with pytest.raises(MappingError, match="smallest mesh"):
        partition(dense_net(10, 600), hw_small(mesh=(1, 2)), "metis")
