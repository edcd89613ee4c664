"""profile_graph: memory (weights, peak activations, neuron state), MAC and spike operations, and the
recommendations that follow from those numbers. All counts come from the cost table.

Definitions (per sample, per timestep; docs/cost_model.md has the worked example):

- weight_memory: bytes of every stored array (as stored), i.e. analyze_graph's total_bytes.
- activation_memory: the peak, over the graph's topological schedule, of the bytes of live activation
  buffers. A buffer is allocated when its node runs and freed after its last consumer has run; views
  (Flatten, Output, Dropout, ...) share their input's buffer; graph outputs and buffers read through a
  recurrent (delayed) edge stay live for the whole step. Elements are `activation_bytes` each.
- state_memory: neuron and delay state elements * `state_bytes`.
- total_memory = weight_memory + activation_memory + state_memory.
- quantized_weight_memory[b]: synaptic weight tensors packed at b bits plus one float32 scale per tensor,
  every other array as stored; quantized_total_memory[b] adds the same activation and state memory.
- mac_ops: every MAC of one dense evaluation of the graph (= analyze_graph's total_macs).
- spike_events: neurons of spiking layers, plus the elements of Inputs declared as spikes = most spikes
  one step can emit.
- spike_ops: synaptic operations triggered when every spiking neuron (and every element of an Input
  declared as spikes, `Input.spikes`) fires once in a step: the event MACs of every synaptic layer whose
  input is spikes (through views, max-pooling, delays, concatenation), which equals the sum over those
  spike sources of their fan-out. At firing rate r an event-driven core does
  r * spike_ops accumulates instead of those MACs.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field

from talon.ir import Graph
from talon.sdk._args import whole
from talon.sdk._graph import Topology, infer_shapes
from talon.sdk._load import GraphLike, as_graph
from talon.sdk.convert import BATCHNORMS, SPIKING_CONVERTIBLE
from talon.sdk.cost import NodeCost, graph_costs, node_cost, quantized_bytes


@dataclass(frozen=True)
class HardwareProfile:
    weight_memory: int
    activation_memory: int
    state_memory: int
    total_memory: int
    quantized_weight_memory: dict[int, int]
    quantized_total_memory: dict[int, int]
    mac_ops: int
    spike_ops: int
    spike_events: int
    largest_layer: str | None
    largest_layer_params: int
    peak_activation_node: str | None
    spike_driven_layers: list[str]
    recommendations: list[str] = field(default_factory=list)
    activation_bytes: int = 4
    state_bytes: int = 4
    #: Inputs that declare spikes (`Input.spikes`): the layers they feed are priced as event-driven
    spike_inputs: list[str] = field(default_factory=list)

    def summary(self) -> str:
        q = ", ".join(f"{b}-bit {m:,}" for b, m in self.quantized_weight_memory.items())
        lines = [
            f"weight memory     {self.weight_memory:>14,} bytes ({q})",
            f"activation memory {self.activation_memory:>14,} bytes (peak at {self.peak_activation_node})",
            f"state memory      {self.state_memory:>14,} bytes",
            f"total memory      {self.total_memory:>14,} bytes",
            f"MAC operations    {self.mac_ops:>14,}",
            f"spike operations  {self.spike_ops:>14,} (at most {self.spike_events:,} spikes per step)",
            f"largest layer     {self.largest_layer} ({self.largest_layer_params:,} params)",
        ]
        lines += [f"input {n!r} carries spikes (Input.spikes): the layers it feeds are event-driven, their cost follows its rate" for n in self.spike_inputs]
        lines += [f"- {r}" for r in self.recommendations]
        return "\n".join(lines)

    __str__ = summary

    def _repr_html_(self) -> str:
        """Jupyter's rich display (talon.sdk._display)."""
        from talon.sdk._display import hardware_profile_html

        return hardware_profile_html(self)


def profile_graph(
    graph: GraphLike,
    *,
    activation_bytes: int = 4,
    state_bytes: int = 4,
    quantized_bits: tuple[int, ...] = (8, 4),
    memory_budget: int | None = None,
) -> HardwareProfile:
    """Memory and operation profile of `graph` (a Graph or a .t1c path) for one sample and one step.

    `memory_budget` (bytes), if given, adds recommendations about fitting into it.
    """
    activation_bytes = whole(activation_bytes, "profile_graph: activation_bytes", minimum=1)
    state_bytes = whole(state_bytes, "profile_graph: state_bytes", minimum=1)
    quantized_bits = tuple(whole(b, "profile_graph: quantized_bits", minimum=1)
                           for b in ((quantized_bits,) if isinstance(quantized_bits, numbers.Real) else quantized_bits))
    if memory_budget is not None:
        memory_budget = whole(memory_budget, "profile_graph: memory_budget (bytes; e.g. 64 * 1024)", minimum=0)
    g = as_graph(graph)
    shapes = infer_shapes(g)
    costs = {name: node_cost(node, *shapes[name]) for name, node in g.nodes.items()}
    topo = Topology.of(g)
    order = g.topological_order()

    weight_memory = sum(c.param_bytes for c in costs.values())
    peak_elems, peak_node, freed_at_peak = _peak_activations(g, topo, order, costs)
    activation_memory = peak_elems * activation_bytes
    state_memory = sum(c.state_elements for c in costs.values()) * state_bytes
    total = weight_memory + activation_memory + state_memory
    qweights = {b: sum(quantized_bytes(node, b) for node in g.nodes.values()) for b in quantized_bits}
    qtotal = {b: m + activation_memory + state_memory for b, m in qweights.items()}

    driven = _driven(g, topo, order, costs)
    spike_ops = sum(costs[n].event_macs for n in driven)
    spike_events = sum(c.neurons for c in costs.values() if c.spiking) + sum(c.activation_elements for c in costs.values() if c.spike_source)
    mac_ops = sum(c.macs for c in costs.values())

    largest, largest_params = None, 0
    for name, c in costs.items():
        if c.params > largest_params:
            largest, largest_params = name, c.params

    prof = HardwareProfile(
        weight_memory=weight_memory,
        activation_memory=activation_memory,
        state_memory=state_memory,
        total_memory=total,
        quantized_weight_memory=qweights,
        quantized_total_memory=qtotal,
        mac_ops=mac_ops,
        spike_ops=spike_ops,
        spike_events=spike_events,
        largest_layer=largest,
        largest_layer_params=largest_params,
        peak_activation_node=peak_node,
        spike_driven_layers=driven,
        activation_bytes=activation_bytes,
        state_bytes=state_bytes,
        spike_inputs=[n for n, c in costs.items() if c.spike_source],
    )
    recs = _recommend(g, prof, costs, topo, freed_at_peak * activation_bytes, memory_budget)
    return dataclasses.replace(prof, recommendations=recs)


def _peak_activations(g: Graph, topo: Topology, order: list[str], costs: dict[str, NodeCost]) -> tuple[int, str | None, int]:
    """(peak live elements, the node running at the peak, elements an in-place version of it would save)."""
    pos = {n: i for i, n in enumerate(order)}
    end = len(order)
    buffer: dict[str, str] = {}
    for name in order:
        preds = topo.preds[name]
        buffer[name] = buffer.get(preds[0], preds[0]) if costs[name].view and preds else name
    last_use = {b: pos[b] for b in set(buffer.values())}
    persistent: set[str] = set()  # read through a recurrent edge: holds last step's value all step long
    for i, (s, d) in enumerate(g.edges):
        b = buffer[s]
        if i in topo.delayed:
            persistent.add(b)
        last_use[b] = end if b in persistent else max(last_use[b], pos[d])
    for name in g.output_names:
        last_use[buffer[name]] = end
    size = {b: costs[b].activation_elements for b in last_use}
    frees: dict[int, list[str]] = {}
    for b, t in last_use.items():
        frees.setdefault(t, []).append(b)
    live = sum(size[b] for b in persistent)
    allocated = set(persistent)
    peak, peak_node, saving = live, None, 0
    for i, name in enumerate(order):
        if buffer[name] == name and name not in allocated:
            live += size[name]
            allocated.add(name)
        if live > peak or peak_node is None:
            peak, peak_node = live, name
            # an elementwise node whose input buffer dies here could overwrite it instead
            src = topo.preds[name][0] if len(topo.preds[name]) == 1 else None
            can_inplace = costs[name].in_place and src is not None and last_use[buffer[src]] == i
            saving = size[name] if can_inplace else 0
        for b in frees.get(i, ()):
            live -= size[b]
    return peak, peak_node, saving


def spike_valued_nodes(graph: GraphLike, costs: dict[str, NodeCost] | None = None) -> dict[str, bool]:
    """Whether each node's output is spikes (see _spike_valued): the rule the backend's energy model uses."""
    g = as_graph(graph)
    costs = costs if costs is not None else graph_costs(g)
    return _spike_valued(g, Topology.of(g), g.topological_order(), costs)


def spike_driven_layers(graph: GraphLike, costs: dict[str, NodeCost] | None = None) -> list[str]:
    """profile_graph(graph).spike_driven_layers without the rest of the profile (the simulator asks for it
    on every call). `costs`: graph_costs(graph), when the caller has it already."""
    g = as_graph(graph)
    return _driven(g, Topology.of(g), g.topological_order(), costs if costs is not None else graph_costs(g))


def _driven(g: Graph, topo: Topology, order: list[str], costs: dict[str, NodeCost]) -> list[str]:
    """Layers with event-driven MACs whose inputs are all spikes."""
    spike_valued = _spike_valued(g, topo, order, costs)
    return [n for n, c in costs.items() if c.event_macs and topo.preds[n] and all(spike_valued[p] for p in topo.preds[n])]


def _spike_valued(g: Graph, topo: Topology, order: list[str], costs: dict[str, NodeCost]) -> dict[str, bool]:
    """Whether each node's output is spikes: spiking nodes, Inputs declared as spikes, and spike-preserving
    nodes fed only by spikes."""
    out: dict[str, bool] = {}
    for name in order:
        c = costs[name]
        preds = [p for p in topo.preds[name] if p in out]
        out[name] = c.spiking or c.spike_source or (c.passes_spikes and bool(preds) and all(out[p] for p in preds))
    return out


def _recommend(
    g: Graph,
    p: HardwareProfile,
    costs: dict[str, NodeCost],
    topo: Topology,
    inplace_saving: int,
    budget: int | None,
) -> list[str]:
    recs: list[str] = []
    total_params = sum(c.params for c in costs.values())
    if p.largest_layer and total_params and p.largest_layer_params / total_params > 0.5 and len(costs) > 1:
        share = 100 * p.largest_layer_params / total_params
        recs.append(
            f"'{p.largest_layer}' holds {share:.0f}% of the parameters ({p.largest_layer_params:,}): it sets the "
            f"weight memory; prune it or shrink its input (e.g. pool further before it)"
        )
    weights = sum(c.weight_elements for c in costs.values())
    if weights and 8 in p.quantized_weight_memory:
        q8 = p.quantized_weight_memory[8]
        if q8 < p.weight_memory:
            extra = f", 4-bit to {p.quantized_weight_memory[4]:,}" if 4 in p.quantized_weight_memory else ""
            recs.append(
                f"8-bit weights would cut weight memory from {p.weight_memory:,} to {q8:,} bytes "
                f"({p.weight_memory / q8:.1f}x smaller){extra} (quantize_weights)"
            )
    if p.activation_memory > p.weight_memory:
        recs.append(
            f"activations dominate memory (peak {p.activation_memory:,} bytes at '{p.peak_activation_node}'): "
            f"reduce feature maps earlier (stride or pooling)"
        )
    if inplace_saving:
        recs.append(
            f"the activation peak is at '{p.peak_activation_node}', which keeps its input and output alive: "
            f"computing it in place would save {inplace_saving:,} bytes"
        )
    if p.spike_events == 0:
        recs.append("the graph has no spiking layers: every operation is a dense MAC (convert layers to spiking neurons to exploit sparsity)")
    elif p.mac_ops and p.spike_ops / p.mac_ops < 0.1:
        recs.append(
            f"only {100 * p.spike_ops / p.mac_ops:.1f}% of MACs ({p.spike_ops:,} of {p.mac_ops:,}) are driven by spikes; "
            f"the rest run on real-valued activations and gain nothing from spike sparsity"
        )
    dense_on_spikes = [n for n in p.spike_driven_layers if g.nodes[n].type_name in SPIKING_CONVERTIBLE]
    if dense_on_spikes:
        verb = "receives" if len(dense_on_spikes) == 1 else "receive"
        recs.append(
            f"{', '.join(repr(n) for n in dense_on_spikes)} {verb} spikes: convert_to_spiking(graph, nodes=[...]) "
            f"makes {'it' if len(dense_on_spikes) == 1 else 'them'} SpikingAffine with fixed-point weights"
        )
    folds = [n for n, node in g.nodes.items() if node.type_name in BATCHNORMS]
    if folds:
        recs.append(f"fold_batchnorm can remove {len(folds)} batch norm layer(s) ({', '.join(map(repr, folds))})")
    drops = [n for n, node in g.nodes.items() if node.type_name == "Dropout"]
    if drops:
        recs.append(f"Dropout is the identity at inference: remove {', '.join(map(repr, drops))} (remove_dropout)")
    if budget is not None:
        if p.total_memory > budget:
            msg = f"total memory {p.total_memory:,} bytes exceeds the budget of {budget:,} by {p.total_memory - budget:,}"
            fitting = [b for b, m in sorted(p.quantized_total_memory.items(), reverse=True) if m <= budget]
            msg += f"; it fits with {fitting[0]}-bit weights" if fitting else "; quantized weights alone do not make it fit"
            recs.append(msg)
        else:
            recs.append(f"total memory {p.total_memory:,} bytes fits the budget of {budget:,} ({100 * p.total_memory / budget:.0f}% used)")
    return recs
