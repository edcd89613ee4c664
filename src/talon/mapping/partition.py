"""partition(): assign every unit of neurons to a core so that each core stays within its budgets.

Algorithms (all work on the NeuronGraph's units; a unit is a contiguous run of one layer's neurons,
and the unit graph's edges carry expected spike traffic: spikes per step from unit u's neurons that
must reach unit v, from the firing rates):

- "greedy": fill cores in layer (topological) order: each core takes consecutive units until the next
  would exceed its neurons, weight memory or fan-in. A layer bigger than a core spans several cores,
  small layers share one. This is what simple mappers do (and, placed row-major, the naive baseline).
- "metis": dual recursive bisection onto the mesh with METIS (pymetis) min-cut bisections: a block of
  the mesh and the units are split together, recursively, the units in proportion to each half's
  cores and sent to the half their outside traffic pulls them towards (as Scotch maps graphs onto
  target architectures). Up to KWAY_CORES cores, METIS k-way partitioning into the same number of
  cores is also tried, and the one whose best initial placement has less traffic x hops is kept (k-way
  wins on small, densely connected graphs; the bisection on large, locally connected ones).
- "spectral": the same dual recursive bisection, each split cutting the order of the Fiedler vector of
  the traffic graph (dense eigensolver for small pieces, LOBPCG for large ones).

The number of cores is the fewest that hold the neurons and the weights at `fill` occupancy; balance
uses one weight per unit (its share of a core's neurons plus its share of a core's weight memory). A
repair pass then moves units out of any core over budget (to the core with room they exchange most
traffic with); fan-in and fan-out limits, which are not additive, are checked on the result and
repaired the same way; if the budgets still fail, more cores are tried. When nothing fits,
partition() raises MappingError naming the resource, core and excess (see talon.mapping.budgets).

Partition and the mesh-region helpers live in talon.mapping.assignment, unit loads and the greedy fill in
talon.mapping.fill, the repair passes in talon.mapping.repair; the public names are re-exported here.
"""

from __future__ import annotations

import math
import time
from collections import deque

import numpy as np
import scipy.sparse as sp

from talon.errors import MappingError
from talon.ir import Graph
from talon.mapping._inputs import as_graph, check_hardware
from talon.mapping._spectral import fiedler, symmetric_traffic
from talon.mapping.adapter import RatesLike, from_graph
from talon.mapping.assignment import Partition, core_reach, halve_region, mesh_block, region_pull  # noqa: F401  (re-exported)
from talon.mapping.budgets import check_units_fit, raise_does_not_fit
from talon.mapping.capacity import check_capacity
from talon.mapping.fill import greedy_fill, min_cores, unit_loads
from talon.mapping.hardware import HardwareSpec
from talon.mapping.neurons import NeuronGraph
from talon.mapping.place import initial_placement
from talon.mapping.repair import over_budget, repair, repair_fan

ALGORITHMS = ("greedy", "metis", "spectral")
#: METIS k-way partitioning is tried beside the recursive bisection up to this many cores. Beyond, the
#: bisection won on every network measured, by more as the mesh grows (k-way's cut ignores the mesh, and
#: its cores must then be placed from scratch): 1.4-2.3x fewer packet-hops on the benchmark network from
#: 64 to 2,514 cores, 1.02-1.17x with 16-80x its random long-range links (docs/performance.md, "Third
#: pass"), while at 10,000 cores the k-way candidate cost about half of partitioning (its METIS call,
#: spectral placement, reach and repair: 25-30 CPU seconds).
KWAY_CORES = 1024


def partition(
    graph: Graph | NeuronGraph,
    hw: HardwareSpec,
    algorithm: str = "greedy",
    *,
    rates: RatesLike = None,
    default_rate: float = 1.0,
    group_size: int | None = None,
    cores: int | None = None,
    fill: float = 0.97,
    seed: int = 0,
) -> Partition:
    """Partition `graph` (an IR Graph or a NeuronGraph) onto the cores of `hw`.

    `cores`: use exactly this many cores (METIS/spectral; default: the fewest that hold the graph at
    `fill` occupancy, growing when the repair pass cannot meet a budget). `rates`, `default_rate` and
    `group_size` are passed to `from_graph` for IR graphs. Raises MappingError when it does not fit.
    """
    hw = check_hardware(hw, "partition")
    graph = as_graph(graph, "partition")
    if algorithm not in ALGORITHMS:
        raise MappingError(f"unknown partition algorithm {algorithm!r}; choose one of {list(ALGORITHMS)}")
    if not 0.1 <= fill <= 1.0:
        raise MappingError(f"fill must be between 0.1 and 1, got {fill}")
    t0 = time.perf_counter()
    check_capacity(graph, hw)  # totals first: a graph that cannot fit is refused before any partitioning
    ng = graph if isinstance(graph, NeuronGraph) else from_graph(graph, hw, rates=rates, default_rate=default_rate, group_size=group_size)
    check_units_fit(ng, hw)
    if algorithm == "greedy":
        unit_core = greedy_fill(ng, hw, np.arange(ng.num_units))
        k = int(unit_core.max()) + 1 if unit_core.size else 1
        part = Partition(ng, unit_core, k, hw, algorithm)
        if k > hw.num_cores:
            raise_does_not_fit(part, hw)
        part = repair_fan(part, hw)
    else:
        part = _balanced(ng, hw, algorithm, cores=cores, fill=fill, seed=seed)
    part.seconds = time.perf_counter() - t0
    return part


# -- METIS and spectral: dual recursive bisection onto the mesh ----------------------------------------


def _balanced(ng: NeuronGraph, hw: HardwareSpec, algorithm: str, *, cores: int | None, fill: float, seed: int) -> Partition:
    s = symmetric_traffic(ng.unit_traffic())
    _, _, load = unit_loads(ng, hw)
    if cores is not None:
        k = int(cores)
        if k < 1:
            raise MappingError(f"cores must be >= 1, got {cores}")
        if k > hw.num_cores:
            raise MappingError(f"cores={k} is more than the {hw.num_cores} cores of a {hw.rows}x{hw.cols} mesh")
        attempts = [k]
    else:
        k = max(1, min(hw.num_cores, ng.num_units, min_cores(ng, hw, fill)))
        attempts = []
        while True:
            attempts.append(k)
            if k >= hw.num_cores:
                break
            k = min(hw.num_cores, max(k + 1, math.ceil(k * 1.15)))
    last = None
    for k in attempts:
        max_cores = hw.num_cores if cores is None else k
        candidates = []
        unit_slot = recursive_bisection(s, load, hw, k, algorithm, seed)
        slots, unit_core = np.unique(unit_slot, return_inverse=True)
        part = Partition(ng, unit_core.astype(np.int64), len(slots), hw, algorithm, slots=slots.astype(np.int64))
        candidates.append(repair(part, hw, s, max_cores=max_cores))
        if algorithm == "metis" and 1 < k <= KWAY_CORES:
            # k-way METIS (min cut, no geometry) is better on small, densely connected graphs
            labels = _compact(_metis_kway(ng, hw, s, k, seed))
            kway = Partition(ng, labels, int(labels.max()) + 1, hw, algorithm)
            candidates.append(repair(kway, hw, s, max_cores=max_cores))
        feasible = [c for c in candidates if not over_budget(c, hw)]
        if feasible:
            return min(feasible, key=lambda c: _hint_cost(c, hw, seed))
        last = candidates[0]
    raise_does_not_fit(last, hw)
    raise AssertionError("unreachable")


def _hint_cost(part: Partition, hw: HardwareSpec, seed: int) -> float:
    """Traffic x hops of the partition's best initial placement (which becomes its slots hint)."""
    slots, _, cost = initial_placement(part, hw, seed=seed)
    part.slots = slots
    return cost


def _compact(unit_core: np.ndarray) -> np.ndarray:
    """Renumber cores 0..k-1 in order of first use (empty parts dropped)."""
    labels, first = np.unique(unit_core, return_index=True)
    remap = np.empty(int(unit_core.max()) + 1, dtype=np.int64)
    remap[labels[np.argsort(first)]] = np.arange(len(labels))
    return remap[unit_core]


def _metis_kway(ng: NeuronGraph, hw: HardwareSpec, s: sp.csr_matrix, k: int, seed: int) -> np.ndarray:
    """METIS k-way on the unit graph: edge weight = spike traffic (scaled to integers), vertex weight =
    the unit's balance weight (see unit_loads)."""
    import pymetis

    idx = pymetis.zero_copy_dtype()
    _, _, load = unit_loads(ng, hw)
    vw = np.maximum(1, np.rint(load / max(load.max(), 1e-12) * 10_000)).astype(idx)
    opts = pymetis.Options()
    opts.seed = int(seed)
    # the slack between the average part and a full core, as METIS's allowed imbalance (per mille)
    slack = k / max(min_cores(ng, hw, 1.0), 1) - 1.0
    opts.ufactor = int(np.clip(np.floor(slack * 1000), 1, 30))
    ew = (1 + np.rint(s.data / s.data.max() * 10_000)).astype(idx) if s.nnz else None
    res = pymetis.part_graph(k, pymetis.CSRAdjacency(s.indptr.astype(idx), s.indices.astype(idx)), vweights=vw, eweights=ew, options=opts)
    return np.asarray(res[1], dtype=np.int64)


def recursive_bisection(s: sp.csr_matrix, load: np.ndarray, hw: HardwareSpec, k: int, algorithm: str, seed: int = 0) -> np.ndarray:
    """Dual recursive bisection (as Scotch maps graphs onto target architectures): split a block of the
    mesh with at least k cores along its longer side and the units into two sets of proportional load
    (METIS min-cut bisection, or a cut of the Fiedler-vector order), send each set to the half that the
    traffic it exchanges with units already sent elsewhere pulls it towards, and recurse until every
    region is one core. Returns each unit's mesh slot. One loop step per region (about 2k in all)."""
    n_units = s.shape[0]
    br, bc = mesh_block(k, hw.rows, hw.cols)
    unit_slot = np.full(n_units, -1, dtype=np.int64)
    centre = np.tile(np.array([(br - 1) / 2.0, (bc - 1) / 2.0]), (n_units, 1))
    queue = deque([(np.arange(n_units), k, 0, br, 0, bc)])
    local = np.full(n_units, -1, dtype=np.int64)  # scratch for region_pull
    while queue:
        units, count, r0, r1, c0, c1 = queue.popleft()
        area = (r1 - r0) * (c1 - c0)
        if len(units) == 0:
            continue
        if area == 1 or count <= 1:
            # one core for this region: its slot nearest the region's centre
            unit_slot[units] = ((r0 + r1 - 1) // 2) * hw.cols + (c0 + c1 - 1) // 2
            continue
        axis, low, high, a1 = halve_region(r0, r1, c0, c1)
        n1 = min(max(int(round(count * a1 / area)), count - (area - a1)), a1, count)
        frac = n1 / count
        # pull < 0: the unit's traffic partners outside this region lie on the low side
        split = (low[1] if axis == 0 else low[3]) - 0.5
        pull, sub = region_pull(s, units, centre[:, axis], split, local)
        first = _bisect(sub, load[units], pull, frac, algorithm, seed) if 0 < n1 < count else np.full(len(units), n1 == count)
        a, b = units[first], units[~first]
        centre[a] = [(low[0] + low[1] - 1) / 2.0, (low[2] + low[3] - 1) / 2.0]
        centre[b] = [(high[0] + high[1] - 1) / 2.0, (high[2] + high[3] - 1) / 2.0]
        queue.append((a, n1, *low))
        queue.append((b, count - n1, *high))
    return unit_slot


def _bisect(sub: sp.csr_matrix, load: np.ndarray, pull: np.ndarray, frac: float, algorithm: str, seed: int) -> np.ndarray:
    """Boolean mask of the units that go to the low half (which takes `frac` of the load)."""
    m = len(load)
    if m == 1:
        return np.array([pull[0] < 0 or (pull[0] == 0 and frac >= 0.5)])
    if algorithm == "metis" and sub.nnz:
        side = _metis_bisect(sub, load, frac, seed)
        low = side == 0
        if np.sum(pull[low]) > np.sum(pull[~low]):  # the low set is pulled higher than the other one
            if abs(frac - 0.5) < 1e-12:
                low = ~low
            else:
                low = _metis_bisect(sub, load, 1.0 - frac, seed) == 1
        return low
    f = fiedler(sub, seed=seed) if sub.nnz else np.zeros(m)
    if not np.any(f != f[0]):
        f = pull.astype(np.float64) + 1e-9 * np.arange(m)  # no internal structure: follow the pull
    elif np.dot(f - f.mean(), pull) < 0:
        f = -f  # low Fiedler values go low: orient them so that they are the units pulled low
    order = np.argsort(f, kind="stable")
    cum = np.cumsum(load[order])
    cut = int(np.searchsorted(cum, cum[-1] * frac))
    if cut < m and cut > 0 and abs(cum[cut] - cum[-1] * frac) < abs(cum[cut - 1] - cum[-1] * frac):
        cut += 1
    cut = min(max(cut, 1 if frac > 0 else 0), m - 1 if frac < 1 else m)
    low = np.zeros(m, dtype=bool)
    low[order[:cut]] = True
    return low


def _metis_bisect(sub: sp.csr_matrix, load: np.ndarray, frac: float, seed: int) -> np.ndarray:
    import pymetis

    idx = pymetis.zero_copy_dtype()
    vw = np.maximum(1, np.rint(load / max(load.max(), 1e-12) * 1000)).astype(idx)
    ew = (1 + np.rint(sub.data / sub.data.max() * 10_000)).astype(idx)
    opts = pymetis.Options()
    opts.seed = int(seed)
    opts.ufactor = 5
    res = pymetis.part_graph(
        2, pymetis.CSRAdjacency(sub.indptr.astype(idx), sub.indices.astype(idx)), vweights=vw, eweights=ew,
        tpwgts=[frac, 1.0 - frac], options=opts, recursive=True,
    )
    return np.asarray(res[1], dtype=np.int64)
