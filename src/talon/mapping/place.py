"""place(): put the cores of a Partition on mesh positions so that traffic x hop distance is small.

Cost: C = sum over core pairs p != q of T[p, q] * hops(p, q), with T[p, q] the spike packets per step
from p to q and hops the Manhattan distance of their positions (what XY routing travels).

Heuristic ("auto", the default; docs/mapping.md has the details):

1. Initial placement: the cheapest of row-major order, snake (boustrophedon) order, recursive spectral
   bisection of the core traffic graph onto a near-square block of the mesh, and the slots the
   partitioner suggests (METIS and spectral partitioning bisect the mesh together with the graph;
   beside those slots the spectral bisection is tried only up to SPECTRAL_BESIDE_HINT cores).
   Starting from the cheapest, the result is never worse than row-major order.
2. Iterated linear assignment: with all other cores held in place, the cost of core p on slot j is
   sum_r S[p, r] * hops(j, slot(r)); every core moves at once to the optimal assignment of that cost
   matrix (scipy.optimize.linear_sum_assignment); repeat while the true cost falls.
   Only on meshes of up to LAP_SLOTS (1,024) slots: its cost matrix is dense (cores x slots).
3. Pairwise swaps (talon.mapping._swaps), with sparse traffic and no dense matrix: each core's candidate
   partners are every item on a small mesh, otherwise the cores and empty slots within 2 hops and around
   its ideal position (the traffic-weighted median of its partners' positions); each core's best swap
   is taken best first, the batch is applied and checked against the exact cost (halved until it
   improves); repeat until the last GAIN_WINDOW rounds gained less than MIN_GAIN of the cost per round
   on average (converged), no swap gains, or the time limit, which is read within a round too.
   Converging first, the result does not depend on the machine's speed; the time limit is a bound for
   slow or loaded machines.
"""

from __future__ import annotations

import numbers
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from talon.errors import MappingError
from talon.mapping._spectral import fiedler, symmetric_traffic
from talon.mapping._swaps import refine_swaps
from talon.mapping.assignment import Partition, halve_region, mesh_block, region_pull
from talon.mapping.budgets import raise_does_not_fit
from talon.mapping.hardware import HardwareSpec

METHODS = ("auto", "row-major", "snake", "spectral")
#: The spectral initial placement is also tried beside the partitioner's slots up to this many cores.
#: Those slots come from a recursive bisection of the mesh made together with the partition; a second
#: recursive bisection of the same cores (hundreds of eigenvectors, several CPU seconds at 10,000 cores)
#: lost to them on every network measured (docs/mapping.md), so large partitions with slots skip it.
SPECTRAL_BESIDE_HINT = 1024
#: Iterated linear assignment (a dense cores x slots cost matrix, 8 MB at most) up to this many mesh slots.
LAP_SLOTS = 1024
#: Swap refinement stops when the last GAIN_WINDOW rounds together lowered the cost by less than
#: GAIN_WINDOW x MIN_GAIN of it. Single rounds gain unevenly (0.03 % and then 0.38 % on the benchmark's
#: 1M network), hence the window. On the benchmark's 10M-neuron network (10,079 cores) this stops after
#: 27 of the 78 rounds that run to the end, 0.18 % above the end's cost, in a third of the time; on its
#: 1M network 0.05-0.13 % above; on --small and on the test suite's networks it runs to the end
#: (docs/performance.md, "Mapping at 10M neurons, third pass").
MIN_GAIN = 3e-4
GAIN_WINDOW = 10


def _now() -> float:
    """The clock the refinement deadline is read from (the tests replace it with a counting one)."""
    return time.perf_counter()


@dataclass
class Placement:
    partition: Partition
    slots: np.ndarray  # (K,) mesh slot (row * cols + col) of each core
    method: str
    seconds: float = 0.0
    initial_cost: float = 0.0  # traffic x hops before refinement
    swaps: int = 0

    @property
    def hardware(self) -> HardwareSpec:
        return self.partition.hardware

    @property
    def positions(self) -> np.ndarray:
        """(K, 2) (row, col) of each core."""
        cols = self.hardware.cols
        return np.stack([self.slots // cols, self.slots % cols], axis=1)

    def cost(self) -> float:
        """Packet-hops per step: sum of T[p, q] * Manhattan(p, q)."""
        return traffic_hops(self.partition.core_traffic(), self.slots, self.hardware.cols)


def traffic_hops(t: sp.spmatrix, slots: np.ndarray, cols: int) -> float:
    t = sp.coo_matrix(t)
    r, c = slots // cols, slots % cols
    d = np.abs(r[t.row] - r[t.col]) + np.abs(c[t.row] - c[t.col])
    return float(np.dot(t.data, d))


def place(
    partition: Partition,
    hw: HardwareSpec | None = None,
    *,
    method: str = "auto",
    refine: bool | None = None,
    max_rounds: int = 200,
    time_limit: float = 20.0,
    min_gain: float = MIN_GAIN,
    seed: int = 0,
) -> Placement:
    """Mesh positions for the cores of `partition` (see the module docstring for the heuristic).

    method: "auto" (best initial placement, then swap refinement), "row-major" (the naive baseline, not
    refined unless refine=True), "snake" or "spectral" (that initial placement, refined by default).
    Swap refinement stops when its last GAIN_WINDOW rounds gained less than `min_gain` of the cost per
    round, or at `time_limit` seconds from the start (whichever comes first; min_gain=0 runs it until
    no swap gains).
    """
    t0 = _now()
    hw = hw or partition.hardware
    if isinstance(time_limit, bool) or not isinstance(time_limit, numbers.Real) or not time_limit >= 0:  # also NaN: a negative limit would silently skip the refinement
        raise MappingError(f"time_limit must be >= 0 seconds, got {time_limit!r}")
    if method not in METHODS:
        raise MappingError(f"unknown placement method {method!r}; choose one of {list(METHODS)}")
    k, m = partition.num_cores, hw.num_cores
    if k > m:
        raise_does_not_fit(partition, hw)
    if refine is None:
        refine = method != "row-major"
    slots, best, initial = initial_placement(partition, hw, method=method, seed=seed)
    s = symmetric_traffic(partition.core_traffic())
    swaps = 0
    if refine and k > 1 and s.nnz:
        deadline = t0 + time_limit
        slots = _lap_refine(s, slots, hw, max_rounds=max_rounds, deadline=t0 + 0.5 * time_limit)
        slots, swaps = _refine(s, slots, hw, max_rounds=max_rounds, deadline=deadline, min_gain=min_gain)
    label = method if method != "auto" else f"auto({best}{'+refined' if refine else ''})"
    return Placement(partition, slots, label, _now() - t0, initial_cost=initial, swaps=swaps)


# -- initial placements ------------------------------------------------------------------------------


def initial_placement(partition: Partition, hw: HardwareSpec, *, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str, float]:
    """(slots, name, traffic x hops) of the cheapest initial placement that `method` allows."""
    key = ("initial_placement", method, seed, hw)
    if key in partition._cache:
        return partition._cache[key]
    k = partition.num_cores
    s = symmetric_traffic(partition.core_traffic())
    candidates: dict[str, np.ndarray] = {}
    if method == "auto" and partition.slots is not None and len(partition.slots) == k:
        candidates["bisection"] = np.asarray(partition.slots, dtype=np.int64)
    if method in ("auto", "row-major"):
        candidates["row-major"] = np.arange(k, dtype=np.int64)
    if method in ("auto", "snake"):
        candidates["snake"] = _snake(hw.rows, hw.cols)[:k]
    if method == "spectral" or (method == "auto" and ("bisection" not in candidates or k <= SPECTRAL_BESIDE_HINT)):
        candidates["spectral"] = _bisection(s, hw.rows, hw.cols, seed)
    costs = {name: traffic_hops(s, sl, hw.cols) / 2 for name, sl in candidates.items()}
    best = min(costs, key=lambda n: (costs[n], list(candidates).index(n)))
    partition._cache[key] = (candidates[best], best, costs[best])
    return partition._cache[key]


def _snake(rows: int, cols: int) -> np.ndarray:
    grid = np.arange(rows * cols).reshape(rows, cols)
    grid[1::2] = grid[1::2, ::-1]
    return grid.ravel().astype(np.int64)


def _bisection(s: sp.csr_matrix, rows: int, cols: int, seed: int) -> np.ndarray:
    """Recursive spectral bisection of the cores onto a near-square block of the mesh."""
    k = s.shape[0]
    br, bc = mesh_block(k, rows, cols)
    slots = np.full(k, -1, dtype=np.int64)
    centre = np.tile(np.array([(br - 1) / 2.0, (bc - 1) / 2.0]), (k, 1))
    queue = deque([(np.arange(k), 0, br, 0, bc)])
    local = np.full(k, -1, dtype=np.int64)  # scratch for region_pull
    while queue:
        parts, r0, r1, c0, c1 = queue.popleft()
        m = len(parts)
        area = (r1 - r0) * (c1 - c0)
        if m == 0:
            continue
        if area == 1:
            slots[parts] = r0 * cols + c0
            continue
        axis, low, high, a1 = halve_region(r0, r1, c0, c1)
        m1 = int(round(m * a1 / area))
        m1 = min(max(m1, m - (area - a1)), a1, m)
        # Orient: cores pulled towards the low side (by traffic with cores outside this region) go low.
        split = (low[1] - 0.5) if axis == 0 else (low[3] - 0.5)
        pull, sub = region_pull(s, parts, centre[:, axis], split, local)
        f = fiedler(sub, seed=seed) if m > 2 else np.arange(m, dtype=np.float64)
        if np.dot(f - f.mean(), pull) > 0:
            f = -f
        order = parts[np.argsort(f, kind="stable")]
        first, second = order[:m1], order[m1:]
        centre[first] = [(low[0] + low[1] - 1) / 2.0, (low[2] + low[3] - 1) / 2.0]
        centre[second] = [(high[0] + high[1] - 1) / 2.0, (high[2] + high[3] - 1) / 2.0]
        queue.append((first, *low))
        queue.append((second, *high))
    return slots


# -- refinement ------------------------------------------------------------------------------------------


def _slot_distance(rows: int, cols: int, slots: np.ndarray | None = None) -> np.ndarray:
    idx = np.arange(rows * cols) if slots is None else slots
    r, c = idx // cols, idx % cols
    return (np.abs(r[:, None] - r[None, :]) + np.abs(c[:, None] - c[None, :])).astype(np.float64)


def _lap_refine(s: sp.csr_matrix, slots: np.ndarray, hw: HardwareSpec, *, max_rounds: int, deadline: float) -> np.ndarray:
    """Iterated linear assignment: with every other core held where it is, the cost of putting core p on
    slot j is sum_r S[p, r] * hops(j, slot(r)); move all cores at once to the assignment that minimises
    the sum (scipy's linear_sum_assignment), keep the best placement seen, stop when it stops improving."""
    from scipy.optimize import linear_sum_assignment

    m = hw.num_cores
    if m > LAP_SLOTS:
        return slots
    dslot = _slot_distance(hw.rows, hw.cols)
    best, best_cost = slots.copy(), traffic_hops(s, slots, hw.cols)
    cur = slots.copy()
    for _ in range(max_rounds):
        if _now() > deadline:
            break
        cost = np.asarray(s @ dslot[cur, :])
        rows, cols = linear_sum_assignment(cost)
        new = np.empty_like(cur)
        new[rows] = cols
        c = traffic_hops(s, new, hw.cols)
        if c < best_cost * (1 - 1e-4):
            best, best_cost = new.copy(), c
        elif np.array_equal(new, cur) or c >= best_cost:
            break
        cur = new
    return best


def _refine(s: sp.csr_matrix, slots: np.ndarray, hw: HardwareSpec, *, max_rounds: int, deadline: float,
            min_gain: float = MIN_GAIN) -> tuple[np.ndarray, int]:
    """Pairwise swaps with sparse traffic (talon.mapping._swaps); the deadline is read within rounds."""
    return refine_swaps(s, slots, hw.rows, hw.cols, max_rounds=max_rounds, deadline=deadline, min_gain=min_gain,
                        window=GAIN_WINDOW, now=_now)
