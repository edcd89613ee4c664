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

