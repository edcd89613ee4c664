"""The synthetic benchmark network and NeuronGraph.from_csr."""

import numpy as np
import pytest
import scipy.sparse as sp

from talon.errors import MappingError
from talon.mapping import NeuronGraph
from talon.mapping.synthetic import layered_small_world, layered_small_world_csr


def test_layered_small_world_counts():
    adj, rates, sizes = layered_small_world_csr(3, 10, 12, feedforward=4, lateral=2, long_range=0.0, radius=1, seed=0)
    assert adj.shape == (360, 360) and list(sizes) == [120] * 3
    assert adj.data.sum() == 2 * 120 * 4 + 3 * 120 * 2  # draws with replacement merge into counts
    rows, cols = adj.nonzero()
    layer_src, layer_dst = rows // 120, cols // 120
    assert set(np.unique(layer_dst - layer_src)) <= {0, 1}
    (r1, c1), (r2, c2) = np.divmod(rows % 120, 12), np.divmod(cols % 120, 12)
    assert np.abs(r1 - r2).max() <= 1 and np.abs(c1 - c2).max() <= 1
    assert rates.shape == (360,) and (rates > 0).all() and abs(rates.mean() - 0.05) < 0.01


def test_long_range_links_and_neuron_graph():
    ng = layered_small_world(2, 8, 8, group_size=16, long_range=2.0, seed=1)
    assert ng.num_neurons == 128 and ng.num_units == 8 and ng.num_layers == 2
    assert ng.synapses > 64 * 15 + 128 * 6
    assert ng.reach.shape == (128, 8)


def test_from_csr_units_and_validation():
    adj = sp.csr_matrix((np.array([1, 3]), ([0, 1], [5, 6])), shape=(7, 7))
    ng = NeuronGraph.from_csr(adj, layer_sizes=[3, 4], group_size=2)
    assert ng.unit_start.tolist() == [0, 2, 3, 5, 7]  # units never span a layer boundary
    assert ng.unit_synapses.tolist() == [0, 0, 0, 4]
    assert ng.reach.toarray().astype(int).tolist()[:2] == [[0, 0, 0, 1], [0, 0, 0, 1]]
    # units cut where their incoming synapses would exceed max_group_synapses
    ng2 = NeuronGraph.from_csr(adj, layer_sizes=[3, 4], group_size=4, max_group_synapses=2)
    assert ng2.unit_start.tolist() == [0, 3, 5, 6, 7]
    with pytest.raises(MappingError, match="sum to 7"):
        NeuronGraph.from_csr(adj, layer_sizes=[3, 3])
    with pytest.raises(MappingError, match="square"):
        NeuronGraph.from_csr(sp.csr_matrix((3, 4)))
    with pytest.raises(MappingError, match="rates"):
        NeuronGraph.from_csr(adj, rates=-1.0)
    with pytest.raises(MappingError, match="group_size"):
        NeuronGraph.from_csr(adj, group_size=0)
