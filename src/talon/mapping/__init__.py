"""talon.mapping: partition, place and route a graph on a mesh of neuromorphic cores.

    hw = talon.mapping.preset("loihi-like")
    result = talon.mapping.map_graph(graph, hw, algorithm="metis")   # MappingError if it does not fit
    print(result.summary()); result.attach(graph); talon.ir.write("model.t1c", graph)

Steps, each usable on its own: `from_graph` (IR graph -> NeuronGraph, counts from talon.sdk.cost),
`partition` (greedy / metis / spectral), `place` (cores onto mesh positions), `route` (XY routes, link
loads, routing tables; `route_links` lists every route's links hop by hop), `allocate` / `check_fit`
(budgets; MappingError says what does not fit, where and by how much), `check_capacity` (totals that
no partition can beat, checked before partitioning). Never imports torch. docs/mapping.md has the definitions.
"""

from talon.errors import MappingError
from talon.mapping.adapter import from_graph
from talon.mapping.allocate import Allocation, Violation, allocate, check_fit
from talon.mapping.capacity import check_capacity
from talon.mapping.connectivity import register_connectivity
from talon.mapping.hardware import PRESETS, HardwareSpec, HardwareSpecError, preset, smallest_mesh
from talon.mapping.neurons import NeuronGraph
from talon.mapping.partition import ALGORITHMS, Partition, partition
from talon.mapping.place import Placement, place
from talon.mapping.result import METADATA_KEY, MappingResult, map_graph, noc_profile
from talon.mapping.route import LinkLoads, RouteHops, Routing, RoutingTables, link_endpoints, num_links, route, route_links, xy_route

__all__ = [
    "MappingError", "HardwareSpec", "HardwareSpecError", "PRESETS", "preset", "smallest_mesh", "NeuronGraph",
    "from_graph", "register_connectivity", "partition", "Partition", "ALGORITHMS", "place", "Placement", "route",
    "Routing", "RoutingTables", "LinkLoads", "xy_route", "route_links", "RouteHops", "link_endpoints", "num_links", "allocate", "check_fit", "check_capacity", "Allocation", "Violation",
    "map_graph", "MappingResult", "METADATA_KEY", "noc_profile",
]
