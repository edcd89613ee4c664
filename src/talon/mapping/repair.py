"""Repair passes on a Partition: move units out of cores over their neuron or weight-memory budget
(repair), then out of cores over their fan-in or fan-out limit (repair_fan), each unit to the core with
room that it exchanges most traffic with (a new core when none has room and the mesh has one to spare).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from talon.mapping._spectral import symmetric_traffic
from talon.mapping.assignment import Partition
from talon.mapping.fill import unit_loads
from talon.mapping.hardware import HardwareSpec


def over_budget(part: Partition, hw: HardwareSpec) -> bool:
    if part.num_cores > hw.num_cores:
        return True
    if np.any(part.core_neurons() > hw.neurons_per_core) or np.any(part.core_weight_bytes() > hw.weight_memory_bytes_per_core):
        return True
    if hw.max_fan_in is not None and np.any(part.core_fan_in() > hw.max_fan_in):
        return True
    if hw.max_fan_out is not None and np.any(part.core_fan_out() > hw.max_fan_out):
        return True
    return False


def repair(part: Partition, hw: HardwareSpec, s: sp.csr_matrix, *, max_cores: int) -> Partition:
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
    return repair_fan(out, hw, s=s, max_cores=max_cores)


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


def repair_fan(part: Partition, hw: HardwareSpec, *, s: sp.csr_matrix | None = None, max_cores: int | None = None, rounds: int = 8) -> Partition:
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
