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
  target architectures). METIS k-way partitioning into the same number of cores is also tried, and
  the one whose best initial placement has less traffic x hops is kept (k-way wins on small, densely
  connected graphs; the bisection on large, locally connected ones).
- "spectral": the same dual recursive bisection, each split cutting the order of the Fiedler vector of
  the traffic graph (dense eigensolver for small pieces, LOBPCG for large ones).

The number of cores is the fewest that hold the neurons and the weights at `fill` occupancy; balance
uses one weight per unit (its share of a core's neurons plus its share of a core's weight memory). A
repair pass then moves units out of any core over budget (to the core with room they exchange most
traffic with); fan-in and fan-out limits, which are not additive, are checked on the result and
repaired the same way; if the budgets still fail, more cores are tried. When nothing fits,
partition() raises MappingError naming the resource, core and excess (see talon.mapping.allocate).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from talon.errors import MappingError
from talon.ir import Graph
from talon.mapping._spectral import fiedler, symmetric_traffic
from talon.mapping.adapter import RatesLike, from_graph
from talon.mapping.hardware import HardwareSpec
from talon.mapping.neurons import NeuronGraph

ALGORITHMS = ("greedy", "metis", "spectral")


@dataclass
class Partition:
    """Units assigned to cores 0..num_cores-1 (core numbers, not yet mesh positions)."""

    neurons: NeuronGraph
    unit_core: np.ndarray
    num_cores: int
    hardware: HardwareSpec
    algorithm: str
    seconds: float = 0.0
    slots: np.ndarray | None = None  # suggested mesh slot of each core (from recursive bisection)
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.unit_core = np.ascontiguousarray(self.unit_core, dtype=np.int64)
        if self.unit_core.shape != (self.neurons.num_units,):
            raise MappingError(f"unit_core must assign all {self.neurons.num_units} units")
        if self.unit_core.size and (self.unit_core.min() < 0 or self.unit_core.max() >= self.num_cores):
            raise MappingError(f"unit_core values must lie in [0, {self.num_cores})")

    # -- per-core usage ---------------------------------------------------------------------------
    @property
    def neuron_core(self) -> np.ndarray:
        return np.repeat(self.unit_core, self.neurons.unit_neurons)

    def core_neurons(self) -> np.ndarray:
        return np.bincount(self.unit_core, weights=self.neurons.unit_neurons, minlength=self.num_cores).astype(np.int64)

    def core_synapses(self) -> np.ndarray:
        return np.bincount(self.unit_core, weights=self.neurons.unit_synapses, minlength=self.num_cores).astype(np.int64)

    def core_weight_bytes(self) -> np.ndarray:
        return self.hardware.weight_bytes(self.core_synapses())

    def core_reach(self) -> sp.csr_matrix:
        """(n neurons x cores) bool: neuron i sends spikes to core k (has a synapse onto a neuron there)."""
        if "core_reach" not in self._cache:
            self._cache["core_reach"] = core_reach(self.neurons.reach, self.unit_core, self.num_cores)
        return self._cache["core_reach"]

    def core_fan_in(self) -> np.ndarray:
        """Distinct presynaptic neurons (on any core, itself included) per core: its input axons."""
        rc = self.core_reach()
        return np.bincount(rc.indices, minlength=self.num_cores).astype(np.int64)

    def core_fan_out(self) -> np.ndarray:
        """(source neuron, destination core) pairs leaving each core (itself included): its output axons."""
        rc = self.core_reach()
        return np.bincount(self.neuron_core, weights=np.diff(rc.indptr), minlength=self.num_cores).astype(np.int64)

    def core_traffic(self) -> sp.csr_matrix:
        """(cores x cores) spike packets per step from core p to core q (diagonal: local deliveries)."""
        if "core_traffic" not in self._cache:
            rc = self.core_reach()
            rows = np.repeat(self.neuron_core, np.diff(rc.indptr))
            rates = np.repeat(self.neurons.rates, np.diff(rc.indptr))
            t = sp.csr_matrix((rates, (rows, rc.indices)), shape=(self.num_cores, self.num_cores))
            t.sum_duplicates()
            self._cache["core_traffic"] = t
        return self._cache["core_traffic"]

    def node_slices(self) -> dict[str, list[tuple[int, int, int]]]:
        """{layer name: [(core, start, stop), ...]}: runs of consecutive neurons of the layer on one core."""
        ng = self.neurons
        core = self.unit_core
        starts = ng.unit_start[:-1]
        layer = ng.unit_layer
        new = np.ones(len(core), dtype=bool)
        new[1:] = (core[1:] != core[:-1]) | (layer[1:] != layer[:-1])
        first = np.flatnonzero(new)
        last_stop = np.append(starts[first[1:]], ng.unit_start[-1])
        out: dict[str, list[tuple[int, int, int]]] = {name: [] for name in ng.layer_names}
        for f, stop in zip(first, last_stop):
            li = int(layer[f])
            base = int(ng.layer_start[li])
            out[ng.layer_names[li]].append((int(core[f]), int(starts[f]) - base, int(stop) - base))
        return out

    def summary(self) -> str:
        n = self.core_neurons()
        return (
            f"{self.algorithm} partition: {self.neurons.num_neurons:,} neurons on {self.num_cores} cores "
            f"(max {n.max() if n.size else 0} neurons/core, {self.seconds:.2f} s)"
        )


def core_reach(reach: sp.csr_matrix, unit_core: np.ndarray, num_cores: int) -> sp.csr_matrix:
    """Which cores each neuron sends spikes to: reach (n x U) with every unit replaced by its core,
    duplicates merged (bool, sorted indices; int32 indices, no float copy of reach)."""
    cores = np.asarray(unit_core, dtype=np.int32 if num_cores < 2**31 else np.int64)[reach.indices]
    # sum_duplicates works in place: the indptr must be our own
    rc = sp.csr_matrix((np.ones(cores.size, dtype=np.bool_), cores, reach.indptr.copy()), shape=(reach.shape[0], num_cores))
    rc.sum_duplicates()
    return rc


# ---------------------------------------------------------------------------------------------------


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
    if not isinstance(hw, HardwareSpec):
        raise MappingError(f"hw must be a HardwareSpec, got {type(hw).__name__}")
    if algorithm not in ALGORITHMS:
        raise MappingError(f"unknown partition algorithm {algorithm!r}; choose one of {list(ALGORITHMS)}")
    if not 0.1 <= fill <= 1.0:
        raise MappingError(f"fill must be between 0.1 and 1, got {fill}")
    t0 = time.perf_counter()
    from talon.mapping.capacity import check_capacity

    check_capacity(graph, hw)  # totals first: a graph that cannot fit is refused before any partitioning
    ng = graph if isinstance(graph, NeuronGraph) else from_graph(graph, hw, rates=rates, default_rate=default_rate, group_size=group_size)
    from talon.mapping.allocate import check_units_fit, raise_does_not_fit

    check_units_fit(ng, hw)
    if algorithm == "greedy":
        unit_core = greedy_fill(ng, hw, np.arange(ng.num_units))
        k = int(unit_core.max()) + 1 if unit_core.size else 1
        part = Partition(ng, unit_core, k, hw, algorithm)
        if k > hw.num_cores:
            raise_does_not_fit(part, hw)
        part = _repair_fan(part, hw)
    else:
        part = _balanced(ng, hw, algorithm, cores=cores, fill=fill, seed=seed)
    part.seconds = time.perf_counter() - t0
    return part


def unit_loads(ng: NeuronGraph, hw: HardwareSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(neurons, weight bytes, balance weight) per unit. The balance weight is the unit's share of a
    core's neurons plus its share of a core's weight memory: parts of equal weight that mix the units
    of neuron-heavy and memory-heavy layers fill both budgets evenly."""
    n = ng.unit_neurons.astype(np.float64)
    b = ng.unit_weight_bytes(hw.weight_bits).astype(np.float64)
    mem = hw.weight_memory_bytes_per_core
    w = n / hw.neurons_per_core + (b / mem if mem > 0 else np.where(b > 0, np.inf, 0.0))
    return n, b, w


def min_cores(ng: NeuronGraph, hw: HardwareSpec, fill: float = 1.0) -> int:
    """A lower bound on the cores needed (each resource on its own), at `fill` occupancy."""
    n, b, _ = unit_loads(ng, hw)
    need = n.sum() / hw.neurons_per_core
    if hw.weight_memory_bytes_per_core > 0:
        need = max(need, b.sum() / hw.weight_memory_bytes_per_core)
    return max(1, math.ceil(need / fill - 1e-9))


# -- greedy ------------------------------------------------------------------------------------------


def greedy_fill(ng: NeuronGraph, hw: HardwareSpec, order: np.ndarray, *, fan_in: bool = True) -> np.ndarray:
    """Cut `order` (a sequence of units) into consecutive runs, one per core, each as long as the neuron,
    weight-memory and (if limited) fan-in budgets allow. Returns unit -> core. One loop step per core."""
    n, b, _ = unit_loads(ng, hw)
    cn = np.concatenate([[0.0], np.cumsum(n[order])])
    cb = np.concatenate([[0.0], np.cumsum(b[order])])
    total = len(order)
    unit_core = np.empty(ng.num_units, dtype=np.int64)
    reach_csc = ng.reach.tocsc() if (fan_in and hw.max_fan_in is not None) else None
    start, core = 0, 0
    while start < total:
        end_n = np.searchsorted(cn, cn[start] + hw.neurons_per_core, side="right") - 1
        end_b = np.searchsorted(cb, cb[start] + hw.weight_memory_bytes_per_core, side="right") - 1
        end = max(start + 1, min(end_n, end_b))  # an oversized unit was reported by check_units_fit
        if reach_csc is not None and _fan_in_of(reach_csc, order[start:end]) > hw.max_fan_in:
            lo, hi = start + 1, end  # largest end with fan-in within budget (at least one unit)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if _fan_in_of(reach_csc, order[start:mid]) <= hw.max_fan_in:
                    lo = mid
                else:
                    hi = mid - 1
            end = lo
        unit_core[order[start:end]] = core
        start, core = end, core + 1
    return unit_core


def _fan_in_of(reach_csc: sp.csc_matrix, units: np.ndarray) -> int:
    rows = reach_csc[:, units].indices
    return int(np.unique(rows).size)


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
        candidates.append(_repair(part, hw, s, max_cores=max_cores))
        if algorithm == "metis" and k > 1:
            # k-way METIS (min cut, no geometry) is better on small, densely connected graphs
            labels = _compact(_metis_kway(ng, hw, s, k, seed))
            kway = Partition(ng, labels, int(labels.max()) + 1, hw, algorithm)
            candidates.append(_repair(kway, hw, s, max_cores=max_cores))
        feasible = [c for c in candidates if not _violations(c, hw)]
        if feasible:
            return min(feasible, key=lambda c: _hint_cost(c, hw, seed))
        last = candidates[0]
    from talon.mapping.allocate import raise_does_not_fit

    raise_does_not_fit(last, hw)
    raise AssertionError("unreachable")


def _hint_cost(part: Partition, hw: HardwareSpec, seed: int) -> float:
    """Traffic x hops of the partition's best initial placement (which becomes its slots hint)."""
    from talon.mapping.place import initial_placement

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


def halve_region(r0: int, r1: int, c0: int, c1: int) -> tuple[int, tuple[int, int, int, int], tuple[int, int, int, int], int]:
    """Split mesh rows [r0, r1) x cols [c0, c1) across its longer side (axis 0: rows, 1: cols).

    Returns (axis, low, high, cores in low).
    """
    axis = 0 if (r1 - r0) >= (c1 - c0) else 1
    if axis == 0:
        mid = r0 + (r1 - r0) // 2
        low, high = (r0, mid, c0, c1), (mid, r1, c0, c1)
    else:
        mid = c0 + (c1 - c0) // 2
        low, high = (r0, r1, c0, mid), (r0, r1, mid, c1)
    return axis, low, high, (low[1] - low[0]) * (low[3] - low[2])


def mesh_block(k: int, rows: int, cols: int) -> tuple[int, int]:
    """A near-square block of at least k slots that fits the mesh."""
    r = min(rows, max(1, math.isqrt(k - 1) + 1 if k > 1 else 1))
    c = min(cols, -(-k // r))
    r = min(rows, -(-k // c))
    return r, c


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
    inside = np.zeros(n_units, dtype=bool)
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
        rows = s[units]
        inside[units] = True
        offset = centre[:, axis] - split
        pull = rows @ np.where(inside, 0.0, offset)
        inside[units] = False
        sub = rows[:, units]
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


# -- repair -------------------------------------------------------------------------------------------


def _violations(part: Partition, hw: HardwareSpec) -> bool:
    if part.num_cores > hw.num_cores:
        return True
    if np.any(part.core_neurons() > hw.neurons_per_core) or np.any(part.core_weight_bytes() > hw.weight_memory_bytes_per_core):
        return True
    if hw.max_fan_in is not None and np.any(part.core_fan_in() > hw.max_fan_in):
        return True
    if hw.max_fan_out is not None and np.any(part.core_fan_out() > hw.max_fan_out):
        return True
    return False


def _repair(part: Partition, hw: HardwareSpec, s: sp.csr_matrix, *, max_cores: int) -> Partition:
    """Move units out of cores over their neuron or memory budget, then fix fan-in/fan-out.

    Loops over the cores that are over budget and the units moved (a small fraction); each move picks,
    among the cores with room, the one the unit exchanges most traffic with (a new core when none has
    room and the mesh has one to spare)."""
    ng = part.neurons
    n, b, _ = unit_loads(ng, hw)
    unit_core = part.unit_core.copy()
    k = part.num_cores
    cap_n, cap_b = hw.neurons_per_core, hw.weight_memory_bytes_per_core
    load_n = np.bincount(unit_core, weights=n, minlength=k)
    load_b = np.bincount(unit_core, weights=b, minlength=k)
    over = np.flatnonzero((load_n > cap_n) | (load_b > cap_b))
    if over.size:
        members = _members(unit_core, k)
        for c in over:
            units = members[c]
            # the units least attached to this core leave first
            internal = _affinity(s, units, unit_core, c)
            for u in units[np.argsort(internal, kind="stable")]:
                if load_n[c] <= cap_n and load_b[c] <= cap_b:
                    break
                target = _target(s, u, unit_core, n[u], b[u], load_n, load_b, cap_n, cap_b, exclude=c)
                _, load_n, load_b, k = _move_unit(u, c, target, unit_core, n, b, load_n, load_b, k, max_cores)
    out = _with_cores(part, unit_core, k, s)
    return _repair_fan(out, hw, s=s, max_cores=max_cores)


def _move_unit(u, c, target, unit_core, n, b, load_n, load_b, k, max_cores):
    """Move unit u off core c onto `target` (a new core when None and one is left); update the loads.

    Returns (moved, load_n, load_b, k): the load arrays grow when a core is opened.
    """
    if target is None:
        if k >= max_cores:
            return False, load_n, load_b, k
        load_n = np.append(load_n, 0.0)
        load_b = np.append(load_b, 0.0)
        target, k = k, k + 1
    unit_core[u] = target
    load_n[c] -= n[u]
    load_b[c] -= b[u]
    load_n[target] += n[u]
    load_b[target] += b[u]
    return True, load_n, load_b, k


def _repair_fan(part: Partition, hw: HardwareSpec, *, s: sp.csr_matrix | None = None, max_cores: int | None = None, rounds: int = 8) -> Partition:
    """Cores over their fan-in or fan-out limit shed units (least attached first) onto other cores."""
    if hw.max_fan_in is None and hw.max_fan_out is None:
        return part
    max_cores = hw.num_cores if max_cores is None else max_cores
    if s is None:
        s = symmetric_traffic(part.neurons.unit_traffic())
    n, b, _ = unit_loads(part.neurons, hw)
    for _ in range(rounds):
        excess = np.zeros(part.num_cores)
        if hw.max_fan_in is not None:
            excess = np.maximum(excess, part.core_fan_in() / hw.max_fan_in)
        if hw.max_fan_out is not None:
            excess = np.maximum(excess, part.core_fan_out() / hw.max_fan_out)
        bad = np.flatnonzero(excess > 1.0)
        if bad.size == 0:
            return part
        unit_core = part.unit_core.copy()
        k = part.num_cores
        load_n = np.bincount(unit_core, weights=n, minlength=k)
        load_b = np.bincount(unit_core, weights=b, minlength=k)
        members = _members(unit_core, k)
        moved = False
        for c in bad:
            units = members[c]
            if len(units) <= 1:
                continue
            shed = min(len(units) - 1, max(1, math.ceil(len(units) * (1 - 1 / excess[c]))))
            internal = _affinity(s, units, unit_core, c)
            for u in units[np.argsort(internal, kind="stable")][:shed]:
                target = _target(s, u, unit_core, n[u], b[u], load_n, load_b, hw.neurons_per_core, hw.weight_memory_bytes_per_core, exclude=c, prefer_empty=True)
                done, load_n, load_b, k = _move_unit(u, c, target, unit_core, n, b, load_n, load_b, k, max_cores)
                moved = moved or done
        if not moved:
            return part
        part = _with_cores(part, unit_core, k, s)
    return part


def _with_cores(part: Partition, unit_core: np.ndarray, k: int, s: sp.csr_matrix) -> Partition:
    """A repaired Partition: empty cores dropped, suggested slots kept (new cores get the free slot
    nearest to the traffic-weighted centre of the cores their units talk to)."""
    hw = part.hardware
    slots = None
    if part.slots is not None:
        slots = np.concatenate([part.slots, np.full(k - len(part.slots), -1, dtype=np.int64)])
        used = np.zeros(hw.num_cores, dtype=bool)
        used[slots[slots >= 0]] = True
        all_r, all_c = np.divmod(np.arange(hw.num_cores), hw.cols)
        for c in range(len(part.slots), k):  # one step per new core
            units = np.flatnonzero(unit_core == c)
            row = s[units]
            partner = unit_core[row.indices]
            w = row.data * (slots[partner] >= 0)
            ps = slots[np.where(slots[partner] >= 0, partner, 0)]
            if w.sum() > 0:
                cr, cc = np.dot(w, ps // hw.cols) / w.sum(), np.dot(w, ps % hw.cols) / w.sum()
            else:
                cr, cc = (hw.rows - 1) / 2, (hw.cols - 1) / 2
            d = np.abs(all_r - cr) + np.abs(all_c - cc) + np.where(used, np.inf, 0.0)
            slots[c] = int(np.argmin(d))
            used[slots[c]] = True
    present = np.bincount(unit_core, minlength=k) > 0
    if not present.all():
        remap = np.cumsum(present) - 1
        unit_core = remap[unit_core]
        if slots is not None:
            slots = slots[present]
        k = int(present.sum())
    return Partition(part.neurons, unit_core, k, hw, part.algorithm, slots=slots)


def _members(unit_core: np.ndarray, k: int) -> list[np.ndarray]:
    order = np.argsort(unit_core, kind="stable")
    bounds = np.searchsorted(unit_core[order], np.arange(k + 1))
    return [order[bounds[c] : bounds[c + 1]] for c in range(k)]


def _affinity(s: sp.csr_matrix, units: np.ndarray, unit_core: np.ndarray, core: int) -> np.ndarray:
    sub = s[units]
    inside = unit_core[sub.indices] == core
    rows = np.repeat(np.arange(len(units)), np.diff(sub.indptr))
    return np.bincount(rows, weights=sub.data * inside, minlength=len(units))


def _target(s, u, unit_core, nu, bu, load_n, load_b, cap_n, cap_b, *, exclude: int, prefer_empty: bool = False) -> int | None:
    room = (load_n + nu <= cap_n) & (load_b + bu <= cap_b)
    room[exclude] = False
    if not room.any():
        return None
    row = s[u]
    aff = np.bincount(unit_core[row.indices], weights=row.data, minlength=len(load_n))
    if prefer_empty:
        # for fan limits, a lightly loaded core is the safer destination
        score = np.where(room, aff - 1e-9 * (load_n / max(cap_n, 1)), -np.inf)
    else:
        score = np.where(room, aff + 1e-12 * (cap_n - load_n), -np.inf)
    return int(np.argmax(score))
