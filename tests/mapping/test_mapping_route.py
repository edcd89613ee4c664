"""route(): XY routes hop by hop, link loads, multicast packet counting, routing tables."""

import numpy as np
import pytest
import scipy.sparse as sp

from talon.errors import MappingError
from talon.mapping import NeuronGraph, Partition, place, route, xy_route
from talon.mapping.place import Placement
from talon.mapping.route import LinkLoads, link_endpoints, link_loads, num_links, route_links

from mapping_helpers import hw_small


def test_xy_route_hop_by_hop():
    assert xy_route((0, 0), (2, 3)) == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 3), (2, 3)]
    assert xy_route((3, 2), (1, 0)) == [(3, 2), (3, 1), (3, 0), (2, 0), (1, 0)]
    assert xy_route((1, 1), (1, 1)) == [(1, 1)]
    assert xy_route((2, 1), (0, 1)) == [(2, 1), (1, 1), (0, 1)]
    for a, b in [((0, 0), (2, 3)), ((4, 1), (0, 3))]:
        assert len(xy_route(a, b)) - 1 == abs(a[0] - b[0]) + abs(a[1] - b[1])


@pytest.mark.parametrize("src, dst", [((0, 0), (2, 3)), ((3, 2), (1, 0)), ((1, 3), (1, 0)), ((0, 2), (3, 2)), ((2, 2), (2, 2))])
def test_link_loads_follow_the_xy_route(src, dst):
    loads = link_loads(4, 4, [src[0]], [src[1]], [dst[0]], [dst[1]], [2.5])
    path = xy_route(src, dst)
    on_path = {(a, b) for a, b in zip(path, path[1:])}
    for a, b in on_path:
        assert loads.link(a, b) == 2.5
    assert np.isclose(loads.all().sum(), 2.5 * len(on_path))


def test_route_links_are_the_xy_paths_and_link_loads_sum_them():
    rng = np.random.default_rng(3)
    rows, cols, F = 5, 7, 300
    r1, r2, c1, c2 = rng.integers(0, rows, F), rng.integers(0, rows, F), rng.integers(0, cols, F), rng.integers(0, cols, F)
    w = rng.random(F)
    hops = route_links(rows, cols, r1, c1, r2, c2)
    assert np.array_equal(hops.hops, np.abs(r1 - r2) + np.abs(c1 - c2)) and hops.link.size == hops.hops.sum()
    summed = np.bincount(hops.link, weights=w[hops.flow], minlength=num_links(rows, cols))
    assert np.allclose(summed, link_loads(rows, cols, r1, c1, r2, c2, w).all())
    fr, fc, tr, tc = link_endpoints(rows, cols, hops.link)
    for f in range(20):  # hop by hop, in order, as xy_route lists the routers
        sel = hops.flow == f
        assert list(hops.index[sel]) == list(range(int(hops.hops[f])))
        path = [(int(r1[f]), int(c1[f]))] + list(zip(tr[sel].tolist(), tc[sel].tolist()))
        assert path == xy_route((r1[f], c1[f]), (r2[f], c2[f]))
        assert list(zip(fr[sel].tolist(), fc[sel].tolist())) == path[:-1]


def test_link_numbers_name_the_linkloads_links():
    rows, cols = 3, 4
    n = num_links(rows, cols)
    assert n == 2 * 3 * 3 + 2 * 2 * 4
    fr, fc, tr, tc = link_endpoints(rows, cols, np.arange(n))
    for i in range(n):
        loads = LinkLoads.from_flat(rows, cols, np.eye(n)[i])
        assert loads.link((int(fr[i]), int(fc[i])), (int(tr[i]), int(tc[i]))) == 1.0 and loads.all()[i] == 1.0
    with pytest.raises(MappingError):
        link_endpoints(rows, cols, [n])
    with pytest.raises(MappingError):
        LinkLoads.from_flat(rows, cols, np.zeros(n + 1))


def test_link_loads_add_up():
    loads = link_loads(3, 3, [0, 0], [0, 0], [0, 2], [2, 2], [1.0, 2.0])
    assert loads.link((0, 0), (0, 1)) == 3.0 and loads.link((0, 1), (0, 2)) == 3.0
    assert loads.link((0, 2), (1, 2)) == 2.0 and loads.link((1, 2), (2, 2)) == 2.0
    assert loads.max == 3.0
    with pytest.raises(MappingError):
        loads.link((0, 0), (1, 1))


def fan_out_mapping(rate=1.0):
    """4 source neurons, each with synapses onto all 8 target neurons (32 synapses); 4 neurons per core:
    sources on core 0, targets on cores 1 and 2, placed at (0, 0), (0, 1) and (1, 2)."""
    src = np.repeat(np.arange(4), 8)
    dst = np.tile(np.arange(4, 12), 4)
    adj = sp.csr_matrix((np.ones(32), (src, dst)), shape=(12, 12))
    ng = NeuronGraph.from_csr(adj, rates=rate, layer_sizes=[4, 8], layer_names=["a", "b"], group_size=4)
    hw = hw_small(mesh=(2, 3), neurons_per_core=4)
    part = Partition(ng, np.array([0, 1, 2]), 3, hw, "manual")
    return Placement(part, np.array([0, 1, 5]), "manual")


def test_multicast_counts_one_packet_per_destination_core():
    rt = route(fan_out_mapping(rate=0.5))
    # 32 synapses, but each spike goes once to each of the 2 destination cores
    assert rt.packets_per_step == pytest.approx(4 * 2 * 0.5)
    flows = dict(zip(zip(rt.src.tolist(), rt.dst.tolist()), zip(rt.packets.tolist(), rt.hops.tolist())))
    assert flows == {(0, 1): (2.0, 1), (0, 2): (2.0, 3)}
    assert rt.packet_hops == pytest.approx(2.0 * 1 + 2.0 * 3)
    assert rt.local_spikes == 0
    # XY: core 0 (0,0) -> core 2 (1,2): east twice along row 0, then south at column 2
    assert rt.path(0, 2) == [(0, 0), (0, 1), (0, 2), (1, 2)]
    assert rt.links.link((0, 0), (0, 1)) == 4.0  # both flows share the first hop
    assert rt.links.link((0, 1), (0, 2)) == 2.0 and rt.links.link((0, 2), (1, 2)) == 2.0


def test_routing_tables_merge_runs_with_the_same_destinations():
    rt = route(fan_out_mapping())
    t = rt.tables
    assert t.num_entries == 1
    assert t.for_core(0) == [(0, 0, 4, [1, 2])]
    assert t.for_core(1) == [] and list(t.entries_per_core(3)) == [1, 0, 0]


def test_routing_tables_split_where_destinations_differ():
    # neurons 0,1 -> neuron 4 (core 1); neurons 2,3 -> neuron 8 (core 2); neuron 4 -> neuron 0 (core 0)
    adj = sp.csr_matrix((np.ones(5), ([0, 1, 2, 3, 4], [4, 4, 8, 8, 0])), shape=(12, 12))
    ng = NeuronGraph.from_csr(adj, layer_sizes=[4, 8], group_size=4)
    hw = hw_small(mesh=(1, 3), neurons_per_core=4)
    part = Partition(ng, np.array([0, 1, 2]), 3, hw, "manual")
    rt = route(place(part, hw, method="row-major"))
    assert rt.tables.for_core(0) == [(0, 0, 2, [1]), (0, 2, 4, [2])]
    assert rt.tables.for_core(1) == [(1, 0, 1, [0])]
    assert rt.packets_per_step == 5


def test_local_deliveries_are_not_packets():
    adj = sp.csr_matrix((np.ones(2), ([0, 0], [1, 2])), shape=(3, 3))
    ng = NeuronGraph.from_csr(adj, layer_sizes=[1, 2], group_size=1)
    hw = hw_small(mesh=(1, 2), neurons_per_core=2)
    part = Partition(ng, np.array([0, 0, 1]), 2, hw, "manual")
    rt = route(place(part, hw, method="row-major"))
    assert rt.local_spikes == 1.0 and rt.packets_per_step == 1.0 and rt.packet_hops == 1.0
