"""Inputs that carry spikes (`Input.spikes`): which they are, and marking them.

A spiking Input's values are 0 or 1 (e.g. rate-coded pixels). The cost table treats its output as spikes
like a spiking neuron's, so every consumer (profile, energy, FPGA estimate, mapping) prices the layers it
feeds as event-driven. Those who know an input is spikes mark it here: the exporter when told
(`to_ir(..., spiking_input=True)`), the simulator when the stimulus is binary, the user directly.
"""

from __future__ import annotations

from typing import Iterable

from talon.errors import TalonUsageError
from talon.ir.graph import Graph


def spike_inputs(graph: Graph) -> list[str]:
    """Names of the graph's (top-level) Input nodes that declare spikes, in graph order."""
    return [n for n, node in graph.nodes.items() if node.type_name == "Input" and bool(getattr(node, "spikes", False))]


def with_spike_inputs(graph: Graph, names: Iterable[str] | None = None) -> Graph:
    """A graph equal to `graph` except that the Inputs `names` (default: every Input) declare spikes.

    Other nodes are shared with `graph`, which is left unchanged; the graph itself is returned when
    nothing changes. A name that is not an Input node raises TalonUsageError."""
    inputs = [n for n, node in graph.nodes.items() if node.type_name == "Input"]
    chosen = list(inputs if names is None else names)
    wrong = [n for n in chosen if n not in inputs]
    if wrong:
        raise TalonUsageError(f"{wrong} are not Input nodes of the graph (its Inputs: {inputs}): only an Input can declare spikes")
    todo = [n for n in chosen if not graph.nodes[n].spikes]
    if not todo:
        return graph
    nodes = {n: (node.replace(spikes=True) if n in todo else node) for n, node in graph.nodes.items()}
    return Graph(nodes, graph.edges, dt=graph.dt, metadata=graph.metadata, extras=graph.extras)
