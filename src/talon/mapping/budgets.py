"""Per-core resource use against the hardware budgets (Allocation, Violation), and what to say when a graph
does not fit: the resource, the core (its mesh position) and the excess, plus the smallest mesh on which the
greedy partitioner fits it.

Per core: neurons (<= neurons_per_core), weight memory = synapses into its neurons x weight_bits / 8,
rounded up to a byte (<= weight_memory_bytes_per_core), fan-in = distinct presynaptic neurons whose
spikes it receives (<= max_fan_in), fan-out = (source neuron, destination core) pairs it emits
(<= max_fan_out). Below talon.mapping.partition and .place, which both raise its does-not-fit errors;
talon.mapping.allocate re-exports its names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from talon.errors import MappingError
from talon.mapping.assignment import Partition
from talon.mapping.fill import greedy_fill
from talon.mapping.hardware import MAX_CORES, HardwareSpec, smallest_mesh
from talon.mapping.neurons import NeuronGraph
from talon.mapping.repair import repair_fan


def neuron_utilisation(neurons: np.ndarray, hw: HardwareSpec) -> np.ndarray:
    """Per core: neurons held / neurons_per_core (the one definition; Allocation and MappingResult use it)."""
    return np.asarray(neurons, dtype=np.float64) / hw.neurons_per_core


def memory_utilisation(weight_bytes: np.ndarray, hw: HardwareSpec) -> np.ndarray:
    """Per core: weight bytes / weight_memory_bytes_per_core. With no weight memory a core holding no
    weights is 0 (nothing of nothing used) and one holding weights inf (it cannot fit)."""
    b = np.asarray(weight_bytes, dtype=np.float64)
    m = hw.weight_memory_bytes_per_core
    return b / m if m else np.where(b > 0, np.inf, 0.0)


@dataclass(frozen=True)
class Violation:
    resource: str  # "neurons", "weight_memory", "fan_in", "fan_out", "cores"
    core: int  # core number (-1 for the mesh as a whole)
    position: tuple[int, int] | None
    used: float
    budget: float

    @property
    def excess(self) -> float:
        return self.used - self.budget

    def __str__(self) -> str:
        unit = {"neurons": "placed elements (neurons + input elements)", "weight_memory": "bytes", "fan_in": "presynaptic neurons", "fan_out": "(neuron, core) pairs", "cores": "cores"}[self.resource]
        where = f"core {self.core} at {self.position}" if self.position is not None else "the mesh"
        pct = f", {100 * self.excess / self.budget:.0f}%" if self.budget else ""
        return f"{self.resource.replace('_', ' ')} on {where}: {self.used:,.0f} {unit} > budget {self.budget:,.0f} (over by {self.excess:,.0f}{pct})"


@dataclass
class Allocation:
    """Resource use per core (arrays indexed by core number) on `hardware`."""

    hardware: HardwareSpec
    position: np.ndarray  # (K, 2) mesh (row, col) of each core
    neurons: np.ndarray
    synapses: np.ndarray
    weight_bytes: np.ndarray
    fan_in: np.ndarray
    fan_out: np.ndarray

    @property
    def num_cores(self) -> int:
        return int(self.neurons.shape[0])

    @property
    def neuron_utilisation(self) -> np.ndarray:
        return neuron_utilisation(self.neurons, self.hardware)

    @property
    def memory_utilisation(self) -> np.ndarray:
        return memory_utilisation(self.weight_bytes, self.hardware)

    def violations(self) -> list[Violation]:
        hw = self.hardware
        out: list[Violation] = []
        if self.num_cores > hw.num_cores:
            out.append(Violation("cores", -1, None, self.num_cores, hw.num_cores))
        checks: list[tuple[str, np.ndarray, Any]] = [
            ("neurons", self.neurons, hw.neurons_per_core),
            ("weight_memory", self.weight_bytes, hw.weight_memory_bytes_per_core),
            ("fan_in", self.fan_in, hw.max_fan_in),
            ("fan_out", self.fan_out, hw.max_fan_out),
        ]
        for name, used, budget in checks:
            if budget is None:
                continue
            for c in np.flatnonzero(used > budget):
                pos = tuple(int(v) for v in self.position[c]) if c < len(self.position) else None
                out.append(Violation(name, int(c), pos, float(used[c]), float(budget)))
        out.sort(key=lambda v: -(v.excess / v.budget if v.budget else np.inf))
        return out

    @property
    def fits(self) -> bool:
        return not self.violations()

    def check(self) -> "Allocation":
        v = self.violations()
        if v:
            raise MappingError(does_not_fit_message(v, self.hardware, None))
        return self

    def summary(self) -> str:
        hw = self.hardware
        return (
            f"{self.num_cores} cores: neurons {self.neurons.max()}/{hw.neurons_per_core} max, "
            f"weights {self.weight_bytes.max():,}/{hw.weight_memory_bytes_per_core:,} B max, "
            f"fan-in {self.fan_in.max():,}, fan-out {self.fan_out.max():,}"
        )


def row_major_positions(num_cores: int, cols: int) -> np.ndarray:
    """(num_cores, 2) mesh (row, col) of cores numbered row-major on a mesh `cols` wide."""
    idx = np.arange(num_cores)
    return np.stack([idx // cols, idx % cols], axis=1)


def allocate_partition(part: Partition, hw: HardwareSpec, position: np.ndarray, *, strict: bool = True) -> Allocation:
    """Per-core resource use of `part` with its cores at `position` on `hw`; with `strict`, MappingError
    when any budget is exceeded (resource, core, position, excess, and the smallest mesh that fits)."""
    alloc = Allocation(
        hardware=hw,
        position=np.asarray(position, dtype=np.int64),
        neurons=part.core_neurons(),
        synapses=part.core_synapses(),
        weight_bytes=hw.weight_bytes(part.core_synapses()),
        fan_in=part.core_fan_in(),
        fan_out=part.core_fan_out(),
    )
    if strict:
        v = alloc.violations()
        if v:
            raise MappingError(does_not_fit_message(v, hw, part.neurons))
    return alloc


# -- messages -------------------------------------------------------------------------------------------


def required_cores(ng: NeuronGraph, hw: HardwareSpec) -> int:
    """Cores the greedy partitioner needs for `ng` with `hw`'s cores (on a mesh as large as needed)."""
    unit_core = greedy_fill(ng, hw, np.arange(ng.num_units))
    k = int(unit_core.max()) + 1 if unit_core.size else 1
    if hw.max_fan_out is not None and k <= MAX_CORES:
        side = min(1024, max(1, int(np.ceil(np.sqrt(min(MAX_CORES, 2 * k + 4))))))
        big = hw.with_mesh(side, side)
        part = repair_fan(Partition(ng, unit_core, k, big, "greedy"), big, max_cores=big.num_cores)
        k = part.num_cores
    return k


def check_units_fit(ng: NeuronGraph, hw: HardwareSpec) -> None:
    """Raise when some unit (or single neuron) cannot fit on any core, however large the mesh."""
    n = ng.unit_neurons
    b = ng.unit_weight_bytes(hw.weight_bits)
    layer = ng.unit_layer
    problems = []
    bad = np.flatnonzero(n > hw.neurons_per_core)
    if bad.size:
        u = int(bad[0])
        problems.append(
            f"unit {u} of layer {ng.layer_names[layer[u]]!r} has {n[u]} neurons but a core holds {hw.neurons_per_core}: "
            "rebuild the NeuronGraph with a group_size of at most neurons_per_core"
        )
    per_neuron = b / np.maximum(n, 1)
    bad = np.flatnonzero(b > hw.weight_memory_bytes_per_core)
    if bad.size:
        u = int(bad[np.argmax(per_neuron[bad])])
        if per_neuron[u] > hw.weight_memory_bytes_per_core:
            problems.append(
                f"a neuron of layer {ng.layer_names[layer[u]]!r} needs {per_neuron[u]:,.0f} bytes of weights "
                f"({ng.unit_synapses[u] / n[u]:,.0f} synapses at {hw.weight_bits} bits) but a core has "
                f"{hw.weight_memory_bytes_per_core:,} bytes (over by {per_neuron[u] - hw.weight_memory_bytes_per_core:,.0f}): "
                "no mesh fits; use fewer weight bits or a smaller fan-in"
            )
        else:
            problems.append(
                f"unit {u} of layer {ng.layer_names[layer[u]]!r} needs {b[u]:,} bytes of weights but a core has "
                f"{hw.weight_memory_bytes_per_core:,}: rebuild with a smaller group_size"
            )
    if hw.max_fan_in is not None:
        unit_fan_in = np.bincount(ng.reach.indices, minlength=ng.num_units)
        bad = np.flatnonzero(unit_fan_in > hw.max_fan_in)
        if bad.size:
            u = int(bad[np.argmax(unit_fan_in[bad])])
            what = "a neuron" if n[u] == 1 else f"unit {u} ({n[u]} neurons)"
            hint = (
                "no mesh fits; reduce the layer's fan-in"
                if n[u] == 1
                else "if single neurons of the layer have that fan-in no mesh fits (reduce it, e.g. split the layer), "
                "otherwise rebuild with a smaller group_size"
            )
            problems.append(
                f"{what} of layer {ng.layer_names[layer[u]]!r} receives spikes from {unit_fan_in[u]:,} distinct neurons "
                f"but a core accepts {hw.max_fan_in:,} (over by {unit_fan_in[u] - hw.max_fan_in:,}): {hint}"
            )
    if problems:
        raise MappingError(f"the graph does not fit {hw.name} cores: " + "; ".join(problems))


def raise_does_not_fit(part: Partition, hw: HardwareSpec) -> None:
    """Raise MappingError for a partition that needs more cores than the mesh has, or breaks a budget."""
    k_mesh = hw.num_cores
    unit_core = np.minimum(part.unit_core, k_mesh - 1)  # squeeze the overflow into the last core
    forced = Partition(part.neurons, unit_core, min(part.num_cores, k_mesh), hw, part.algorithm)
    alloc = allocate_partition(forced, hw, row_major_positions(forced.num_cores, hw.cols), strict=False)
    v = alloc.violations()
    if part.num_cores > k_mesh:
        v.insert(0, Violation("cores", -1, None, part.num_cores, k_mesh))
    raise MappingError(does_not_fit_message(v, hw, part.neurons))


def does_not_fit_message(v: list[Violation], hw: HardwareSpec, ng: NeuronGraph | None) -> str:
    head = f"the graph does not fit the {hw.rows}x{hw.cols} mesh of {hw.name!r} ({hw.num_cores} cores)"
    lines = [str(x) for x in v[:5]]
    if len(v) > 5:
        lines.append(f"... and {len(v) - 5} more")
    tail = ""
    if ng is not None:
        need_n = ng.num_neurons
        cap_n = hw.num_cores * hw.neurons_per_core
        need_b = int(ng.unit_weight_bytes(hw.weight_bits).sum())
        cap_b = hw.num_cores * hw.weight_memory_bytes_per_core
        tail = f"; in total it has {need_n:,} neurons (mesh: {cap_n:,}) and {need_b:,} bytes of weights (mesh: {cap_b:,})"
        try:
            k = required_cores(ng, hw)
            r, c = smallest_mesh(k)
            tail += f"; the smallest mesh that fits is {r}x{c} ({k} cores needed by the greedy partitioner)"
        except MappingError:
            pass
    return head + ": " + "; ".join(lines) + tail
