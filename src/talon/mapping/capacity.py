"""check_capacity(): the resources a graph needs whatever its partition, checked before any partitioning.

Each bound below holds for every partition, so a graph over one of them cannot fit and is refused at
once (MappingError naming the resource and the excess), instead of after partitioning:

- neurons: all placed elements (neurons + input elements) against the mesh's total;
- weight memory: all synapses charged to neuron layers x weight_bits / 8 against the mesh's total, and
  one neuron's share of its layer's synapses against one core's memory;
- fan-in: the distinct presynaptic neurons of single neurons (sampled: the first, middle and last neuron
  of every layer and the centre of its first channel, where a convolution's window is whole) against
  max_fan_in, and the neurons that send spikes at all (each needs an input axon on at least one core and
  an output axon for it) against the mesh's total of input and output axons.

For an IR graph the counts come from one pass of the connectivity rules at layer granularity (one
column per layer plus one per sampled neuron), which costs about as much as one pass over the
activations; the unit-level NeuronGraph (a column per unit) is only built when these checks pass.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from talon.errors import MappingError
from talon.ir import Graph
from talon.mapping._inputs import as_graph, check_hardware
from talon.mapping.hardware import HardwareSpec, smallest_mesh
from talon.mapping.neurons import NeuronGraph


def check_capacity(graph: Graph | NeuronGraph, hw: HardwareSpec) -> None:
    """Raise MappingError when `graph` cannot fit `hw`'s mesh under any partition (see the module docstring)."""
    hw = check_hardware(hw, "check_capacity")
    graph = as_graph(graph, "check_capacity")
    need = _needs_of_neuron_graph(graph, hw) if isinstance(graph, NeuronGraph) else _needs_of_ir_graph(graph)
    problems = _problems(need, hw)
    if problems:
        raise MappingError(_message(problems, need, hw))


def _needs_of_neuron_graph(ng: NeuronGraph, hw: HardwareSpec) -> dict:
    n = ng.unit_neurons
    per_neuron = ng.unit_synapses / np.maximum(n, 1)
    worst = int(np.argmax(per_neuron)) if n.size else 0
    return {
        "neurons": int(ng.num_neurons),
        "synapses": float(ng.unit_synapses.sum()),
        # a unit's synapses are its neurons' together; the worst single neuron holds at least the mean
        "neuron_synapses": (float(per_neuron[worst]) if n.size else 0.0, ng.layer_names[int(ng.unit_layer[worst])] if n.size else ""),
        "fan_in": (0, ""),  # single-neuron fan-in is not known below unit granularity (check_units_fit)
        "senders": int(np.count_nonzero(np.diff(ng.reach.indptr))),
    }


def _needs_of_ir_graph(graph: Graph) -> dict:
    from talon.mapping.adapter import charged_synapses, prepare, propagate

    g, costs, order, pops, pop_size, in_edges = prepare(graph)
    n_layers = len(pops)
    samples = [_sample(tuple(g.nodes[p].output_shapes[0])) for p in pops]
    n_cols = n_layers + sum(len(s) for s in samples)
    col_layer = np.concatenate([np.arange(n_layers)] + [np.full(len(s), i) for i, s in enumerate(samples)]).astype(np.int64)
    seeds, col = [], n_layers
    for i, p in enumerate(pops):
        size = pop_size[p]
        rows = np.concatenate([np.arange(size), samples[i]])
        cols = np.concatenate([np.full(size, i), np.arange(col, col + len(samples[i]))])
        col += len(samples[i])
        seeds.append(sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(size, n_cols)))
    reach, synaptic_reach = propagate(g, pops, seeds, in_edges, costs, order)
    layer_syn, _ = charged_synapses(g, pops, costs, synaptic_reach, col_layer)
    fan_in = np.zeros(n_cols, dtype=np.int64)
    senders = 0
    for p in pops:
        r = reach.get(p)
        if r is None:
            continue
        r = sp.csr_matrix(r)
        r.sum_duplicates()
        r.eliminate_zeros()
        fan_in += np.bincount(r.indices, minlength=n_cols)
        senders += int(np.count_nonzero(np.diff(r.indptr)))
    sampled = fan_in[n_layers:]
    worst_fan = int(np.argmax(sampled)) if sampled.size else 0
    # the synapses _build charges each layer (rounded per layer), spread evenly: some neuron holds at least the mean
    per_neuron = np.rint(layer_syn) / np.array([pop_size[p] for p in pops], dtype=np.float64)
    worst_syn = int(np.argmax(per_neuron))
    return {
        "neurons": int(sum(pop_size.values())),
        "synapses": float(np.rint(layer_syn).sum()),
        "neuron_synapses": (float(per_neuron[worst_syn]), pops[worst_syn]),
        "fan_in": (int(sampled[worst_fan]) if sampled.size else 0, pops[int(col_layer[n_layers + worst_fan])] if sampled.size else ""),
        "senders": senders,
    }


def _sample(shape: tuple[int, ...]) -> np.ndarray:
    """Flat indices of a few neurons of a layer: first, middle, last, and the centre of channel 0."""
    n = math.prod(shape)
    centre = 0
    if len(shape) >= 2:
        centre = int(np.ravel_multi_index((0, *(d // 2 for d in shape[1:])), shape))
    return np.unique(np.array([0, n // 2, n - 1, centre], dtype=np.int64))


def _problems(need: dict, hw: HardwareSpec) -> list[tuple[str, float, float, str, str]]:
    """(resource, needed, available, what, hint) for every bound that is broken."""
    out = []
    cores = hw.num_cores
    cap_n = cores * hw.neurons_per_core
    if need["neurons"] > cap_n:
        out.append(("neurons", need["neurons"], cap_n, "placed elements (neurons + input elements) on the whole mesh", ""))
    need_b = need["synapses"] * hw.weight_bits / 8
    cap_b = cores * hw.weight_memory_bytes_per_core
    if need_b > cap_b:
        out.append(("weight memory", need_b, cap_b, "bytes of weights on the whole mesh", ""))
    per, layer = need["neuron_synapses"]
    per_b = per * hw.weight_bits / 8
    if per_b > hw.weight_memory_bytes_per_core:
        out.append(("weight memory", per_b, hw.weight_memory_bytes_per_core,
                    f"bytes of weights for one neuron of layer {layer!r} ({per:,.0f} synapses at {hw.weight_bits} bits) on one core",
                    "no mesh fits; use fewer weight bits or a smaller fan-in"))
    if hw.max_fan_in is not None:
        f, layer = need["fan_in"]
        if f > hw.max_fan_in:
            out.append(("fan-in", f, hw.max_fan_in, f"distinct presynaptic neurons of one neuron of layer {layer!r} on one core",
                        "no mesh fits; reduce the layer's fan-in"))
        if need["senders"] > cores * hw.max_fan_in:
            out.append(("fan-in", need["senders"], cores * hw.max_fan_in, "neurons that send spikes (each an input axon on some core) against the mesh's input axons", ""))
    if hw.max_fan_out is not None and need["senders"] > cores * hw.max_fan_out:
        out.append(("fan-out", need["senders"], cores * hw.max_fan_out, "neurons that send spikes (each an output axon) against the mesh's output axons", ""))
    return out


def _message(problems: list, need: dict, hw: HardwareSpec) -> str:
    head = f"the graph does not fit the {hw.rows}x{hw.cols} mesh of {hw.name!r} ({hw.num_cores} cores) under any partition"
    lines = []
    for resource, used, budget, what, hint in problems:
        pct = f", {100 * (used - budget) / budget:.0f}%" if budget else ""
        lines.append(f"{resource}: {used:,.0f} {what} > {budget:,.0f} (over by {used - budget:,.0f}{pct})" + (f": {hint}" if hint else ""))
    need_b = math.ceil(need["synapses"] * hw.weight_bits / 8)
    tail = (f"; in total it has {need['neurons']:,} neurons (mesh: {hw.num_cores * hw.neurons_per_core:,}) and "
            f"{need_b:,} bytes of weights (mesh: {hw.num_cores * hw.weight_memory_bytes_per_core:,})")
    if not any(hint for *_, hint in problems):
        k = math.ceil(need["neurons"] / hw.neurons_per_core)
        if hw.weight_memory_bytes_per_core:
            k = max(k, math.ceil(need_b / hw.weight_memory_bytes_per_core))
        for cap in (hw.max_fan_in, hw.max_fan_out):
            if cap is not None:
                k = max(k, math.ceil(need["senders"] / cap))
        r, c = smallest_mesh(k)
        tail += f"; it needs at least {k:,} cores: the smallest mesh that could fit it is {r}x{c}"
    return head + ": " + "; ".join(lines) + tail
