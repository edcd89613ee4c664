"""allocate() and check_fit(): per-core resource use of a Partition or a Placement against the hardware
budgets, and whether a graph fits.

The budgets, Allocation, Violation and the does-not-fit messages live in talon.mapping.budgets (below the
partitioner and the placer, which raise them too); their names are re-exported here.
"""

from __future__ import annotations

from typing import Any

from talon.mapping.assignment import Partition
from talon.mapping.budgets import (  # noqa: F401  (re-exported)
    Allocation,
    Violation,
    allocate_partition,
    check_units_fit,
    does_not_fit_message,
    memory_utilisation,
    neuron_utilisation,
    raise_does_not_fit,
    required_cores,
    row_major_positions,
)
from talon.mapping.hardware import HardwareSpec
from talon.mapping.partition import partition
from talon.mapping.place import Placement


def allocate(mapping: Partition | Placement, hw: HardwareSpec | None = None, *, strict: bool = True) -> Allocation:
    """Per-core resource use of a Partition (cores numbered row-major) or a Placement (placed cores).

    With `strict`, raises MappingError when any budget is exceeded (resource, core, position, excess,
    and the smallest mesh that fits)."""
    if isinstance(mapping, Placement):
        part, position = mapping.partition, mapping.positions
    else:
        part = mapping
        position = row_major_positions(part.num_cores, (hw or part.hardware).cols)
    return allocate_partition(part, hw or part.hardware, position, strict=strict)


def check_fit(graph: Any, hw: HardwareSpec, algorithm: str = "greedy", **kwargs: Any) -> Allocation:
    """Partition `graph` (IR Graph or NeuronGraph) on `hw` and return its Allocation; MappingError if it
    does not fit (which resource, on which core, by how much, and the smallest mesh that would fit)."""
    return allocate(partition(graph, hw, algorithm, **kwargs), hw)
