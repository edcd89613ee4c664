"""analyze_graph: the model-level summary (size, arithmetic, depth, width, layer table) from the cost table."""

from __future__ import annotations

from dataclasses import dataclass, field

from talon.ir import Graph
from talon.sdk._graph import Shape, Topology, infer_shapes
from talon.sdk._load import GraphLike, as_graph
from talon.sdk.cost import NodeCost, node_cost


@dataclass(frozen=True)
class LayerStats:
    """One node's row in the layer table: its shapes and its NodeCost."""

    name: str
    type_name: str
    input_shapes: list[Shape]
    output_shapes: list[Shape]
    cost: NodeCost

    @property
    def params(self) -> int:
        return self.cost.params

    @property
    def param_bytes(self) -> int:
        return self.cost.param_bytes

    @property
    def macs(self) -> int:
        return self.cost.macs

    @property
    def flops(self) -> int:
        return self.cost.flops

    @property
    def neurons(self) -> int:
        return self.cost.neurons

    @property
    def state_elements(self) -> int:
        return self.cost.state_elements

    @property
    def activation_elements(self) -> int:
        return self.cost.activation_elements


@dataclass(frozen=True)
class GraphStats:
    """Totals are per sample and per timestep. See docs/cost_model.md for every definition."""

    total_params: int
    total_bytes: int
    total_macs: int
    total_flops: int
    total_synapses: int
    depth: int
    width: int
    num_nodes: int
    num_edges: int
    type_counts: dict[str, int]
    input_shapes: dict[str, Shape]
    output_shapes: dict[str, Shape]
    num_neurons: int
    num_spiking_layers: int
    num_stateful_layers: int
    dt: float
    layers: dict[str, LayerStats] = field(repr=False)
    #: the part of total_params held by neurons (time constants, thresholds, ...): a framework's
    #: parameter count (torch's `numel` over `parameters()`) leaves these out when they are not trained
    neuron_params: int = 0
    #: Inputs that declare spikes (`Input.spikes`): the MACs of the layers they feed are event-driven
    spike_inputs: tuple[str, ...] = ()

    def summary(self) -> str:
        rows = [f"{'name':<16} {'type':<14} {'output':<16} {'params':>10} {'MACs':>12} {'FLOPs':>12}"]
        for s in self.layers.values():
            out = ",".join(str(tuple(x)) for x in s.output_shapes)
            rows.append(f"{s.name:<16} {s.type_name:<14} {out:<16} {s.params:>10,} {s.macs:>12,} {s.flops:>12,}")
        rows.append(
            f"total: {self.total_params:,} params ({self.neuron_params:,} of them neuron constants; {self.total_bytes:,} bytes), {self.total_macs:,} MACs, "
            f"{self.total_flops:,} FLOPs, depth {self.depth}, width {self.width}, {self.num_neurons:,} neurons"
        )
        rows += [spike_input_note(n) for n in self.spike_inputs]
        return "\n".join(rows)

    __str__ = summary

    def _repr_html_(self) -> str:
        """Jupyter's rich display (talon.sdk._display)."""
        from talon.sdk._display import stats_html

        return stats_html(self)


def analyze_graph(graph: GraphLike) -> GraphStats:
    """Sizes and arithmetic of `graph` (a Graph or a .t1c path). Raises GraphValidationError when the
    graph's shapes cannot be inferred (run lint_graph for a full diagnosis)."""
    g = as_graph(graph)
    shapes = infer_shapes(g)
    layers: dict[str, LayerStats] = {}
    for name, node in g.nodes.items():
        ins, outs = shapes[name]
        layers[name] = LayerStats(name, node.type_name, ins, outs, node_cost(node, ins, outs))
    costs = [s.cost for s in layers.values()]
    type_counts: dict[str, int] = {}
    for node in g.nodes.values():
        type_counts[node.type_name] = type_counts.get(node.type_name, 0) + 1
    depth, width = depth_and_width(g)
    return GraphStats(
        total_params=sum(c.params for c in costs),
        total_bytes=sum(c.param_bytes for c in costs),
        total_macs=sum(c.macs for c in costs),
        total_flops=sum(c.flops for c in costs),
        total_synapses=sum(c.synapses for c in costs),
        depth=depth,
        width=width,
        num_nodes=len(g.nodes),
        num_edges=len(g.edges),
        type_counts=type_counts,
        input_shapes={n: shapes[n][1][0] for n in g.input_names},
        output_shapes={n: shapes[n][1][0] for n in g.output_names},
        num_neurons=sum(c.neurons for c in costs),
        num_spiking_layers=sum(1 for c in costs if c.spiking),
        num_stateful_layers=sum(1 for c in costs if c.stateful),
        dt=g.dt,
        layers=layers,
        neuron_params=sum(c.params for c in costs if c.neurons),
        spike_inputs=tuple(n for n, s in layers.items() if s.cost.spike_source),
    )


def spike_input_note(name: str) -> str:
    """What analyze says about an Input that declares spikes."""
    return (f"input {name!r} carries spikes (Input.spikes): the MACs of the layers it feeds are accumulates triggered by its "
            f"spikes, so their cost follows its rate (talon profile: spike operations)")


def depth_and_width(graph: Graph) -> tuple[int, int]:
    """depth: edges on the longest path (recurrent edges removed); width: most nodes sharing a level,
    a node's level being the length of the longest path reaching it."""
    if not graph.nodes:
        return 0, 0
    topo = Topology.of(graph)
    level = {n: 0 for n in graph.nodes}
    for name in graph.topological_order():
        for i in topo.in_edge_ids[name]:
            if i not in topo.delayed:
                level[name] = max(level[name], level[graph.edges[i][0]] + 1)
    per_level: dict[int, int] = {}
    for lv in level.values():
        per_level[lv] = per_level.get(lv, 0) + 1
    return max(level.values()), max(per_level.values())
