"""Unit loads and the greedy fill: consecutive units per core, each run as long as the neuron, weight-memory
and fan-in budgets allow (the "greedy" partitioner, and the core count quoted when a graph does not fit).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from talon.mapping.hardware import HardwareSpec
from talon.mapping.neurons import NeuronGraph


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
