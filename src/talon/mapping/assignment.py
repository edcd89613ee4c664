"""Partition (units of neurons assigned to cores: per-core use, reach and traffic) and the mesh-region
helpers that partitioning and placement share (halving a region, a near-square block of the mesh).

Below talon.mapping.partition, .place and .budgets, which all use it; talon.mapping.partition re-exports
its names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from talon.errors import MappingError
from talon.mapping.hardware import HardwareSpec
from talon.mapping.neurons import NeuronGraph


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
            self._cache["core_traffic"] = core_traffic(self.core_reach(), self.neuron_core, self.neurons.rates, self.num_cores)
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

def core_traffic(rc: sp.csr_matrix, neuron_core: np.ndarray, rates: np.ndarray, num_cores: int) -> sp.csr_matrix:
    """T[p, q] = sum of the rates of the neurons on core p that reach core q: the product P @ rc with
    P[p, i] = rates[i] for each neuron i on core p (a sparse product, one pass over rc's entries,
    instead of expanding rc to one (row, column, rate) triple per entry and sorting them)."""
    n = rc.shape[0]
    p = sp.csr_matrix((np.asarray(rates, dtype=np.float64), (neuron_core, np.arange(n))), shape=(num_cores, n))
    reach = sp.csr_matrix((np.ones(rc.nnz, dtype=np.float64), rc.indices, rc.indptr), shape=rc.shape)
    t = sp.csr_matrix(p @ reach)
    t.sum_duplicates()  # canonical: sorted indices, no duplicates
    return t


#: Regions of up to this many vertices are cut out of the matrix entry by entry (region_pull).
SMALL_REGION = 256


def region_pull(s: sp.csr_matrix, units: np.ndarray, position: np.ndarray, split: float, local: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix]:
    """(pull, sub) for the vertices `units` of a region (distinct indices) of the symmetric matrix `s`:

    pull[i] = sum over j outside the region of s[units[i], j] * (position[j] - split), exactly what
    `s[units] @ where(inside, 0, position - split)` gives, and sub = s[units][:, units], entry for entry
    what scipy's indexing gives (the same order, so every sum over it rounds the same).

    Recursive bisection asks this of every region (tens of thousands on a large mesh); most are small,
    and for them scipy's fancy indexing and a vector over every vertex cost far more than the region's
    own entries: small regions are cut out of the selected rows' entries alone. `local` is scratch: an
    int array of -1 with one entry per vertex, returned as it came.
    """
    m = len(units)
    local[units] = np.arange(m)
    try:
        if m > SMALL_REGION:
            rows = s[units]
            pull = rows @ np.where(local >= 0, 0.0, position - split)
            return pull, rows[:, units]
        indptr = s.indptr
        starts = indptr[units]
        lens = indptr[units + 1] - starts
        pos = np.arange(int(lens.sum()), dtype=np.int64) + np.repeat((starts - (np.cumsum(lens) - lens)).astype(np.int64), lens)
        cols, vals = s.indices[pos], s.data[pos]
        row = np.repeat(np.arange(m), lens)
        loc = local[cols]
    finally:
        local[units] = -1
    inside = loc >= 0
    pull = np.bincount(row, weights=vals * np.where(inside, 0.0, position[cols] - split), minlength=m).astype(np.float64, copy=False)
    sub_ptr = np.zeros(m + 1, dtype=indptr.dtype)
    np.cumsum(np.bincount(row[inside], minlength=m), out=sub_ptr[1:])
    sub = sp.csr_matrix((vals[inside], loc[inside].astype(s.indices.dtype), sub_ptr), shape=(m, m))
    return pull, sub


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

