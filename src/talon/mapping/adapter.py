"""From a talon.ir.Graph to a NeuronGraph: which neurons exist, how they are grouped, who reaches whom.

- Neuron layers are the nodes the cost table counts neurons for (`talon.sdk.cost`: LIF, IF, CubaLIF, LI,
  Integrator, Threshold), plus every Input node, whose elements are spike sources placed on cores too.
  Layer sizes come from `NodeCost.neurons` (Input: `NodeCost.activation_elements`).
- Between two neuron layers sit synaptic nodes (those with `NodeCost.synapses` > 0: dense and
  convolutional layers) and structural ones (views, pooling, concatenation, elementwise functions). Who
  reaches whom is propagated backwards from each layer's units through those nodes with the rules in
  `talon.mapping.connectivity`, so dense layers are never expanded synapse by synapse.
- Weights live with the postsynaptic layer: a synaptic node's `NodeCost.synapses` are charged to every
  neuron layer its outputs reach, in proportion to the share of its outputs that reach it, spread
  evenly over that layer's neurons. Synaptic nodes that reach no neuron layer (a readout Affine feeding
  the Output) are listed in `NeuronGraph.unmapped`: they run off the neuromorphic cores.
"""

from __future__ import annotations

import numbers
import os
from collections import defaultdict
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from talon.errors import GraphValidationError, MappingError, TalonError
from talon.ir import Graph, Node
from talon.mapping._inputs import as_graph, check_index, check_rate
from talon.mapping.connectivity import binarize, connectivity_rule, numel
from talon.mapping.hardware import HardwareSpec
from talon.mapping.neurons import NeuronGraph, rates_array
from talon.sdk import cost as cost_table

#: A unit holds at most neurons_per_core / UNITS_PER_CORE neurons (and that share of the weight memory).
UNITS_PER_CORE = 16
DEFAULT_GROUP_SIZE = 64

RatesLike = Mapping[str, Any] | float | None


def _shaped_copy(graph: Graph) -> Graph:
    """Shape inference on a copy of the node objects (arrays shared), so the caller's graph is untouched."""
    nodes: dict[str, Node] = {}
    for name, node in graph.nodes.items():
        if isinstance(node, Graph):
            raise MappingError(
                f"node {name!r} is a nested Graph: talon.mapping maps flat graphs; inline the block's nodes first"
            )
        new = object.__new__(type(node))
        new.__dict__.update(node.__dict__)
        nodes[name] = new
    g = Graph(nodes, graph.edges, dt=graph.dt)
    try:
        g.infer_shapes()
    except GraphValidationError as exc:
        raise MappingError(f"cannot map a graph whose shapes do not infer: {exc}") from exc
    return g


def group_size_for(hw: HardwareSpec | None, group_size: int | None = None) -> int:
    if group_size is not None:
        size = check_index(group_size, "group_size")
        if size < 1:
            raise MappingError(f"group_size must be >= 1, got {group_size}")
        return size
    if hw is None:
        return DEFAULT_GROUP_SIZE
    return max(1, hw.neurons_per_core // UNITS_PER_CORE)


def from_graph(
    graph: Graph,
    hw: HardwareSpec | None = None,
    *,
    rates: RatesLike = None,
    default_rate: float = 1.0,
    group_size: int | None = None,
) -> NeuronGraph:
    """The NeuronGraph of an IR graph.

    `rates`: expected spikes per neuron per step, as one number for every layer or a dict
    {layer node name: number or array of the layer's shape} (e.g. measured by a simulation); layers
    left out get `default_rate` (1.0: every neuron spikes every step, an upper bound).
    `group_size`: neurons per unit (default: hw.neurons_per_core // 16, smaller for layers whose
    neurons carry many synapses so that a unit uses at most 1/16 of a core's weight memory).
    """
    if isinstance(graph, (str, os.PathLike)):
        graph = as_graph(graph, "from_graph")
    if not isinstance(graph, Graph):
        raise MappingError(f"from_graph expects a talon.ir.Graph or the path of a .t1c file, got {type(graph).__name__}")
    g, costs, order, pops, pop_size, in_edges = prepare(graph)
    is_pop = set(pops)

    # Pre-pass: an upper bound of each layer's synapses per neuron, to size its units.
    base = group_size_for(hw, group_size)
    sizes = {}
    for b in pops:
        upstream = _upstream_synaptic(b, in_edges, is_pop, costs)
        syn_per_neuron = sum(costs[s].synapses for s in upstream) / max(pop_size[b], 1)
        gs = base
        if hw is not None and group_size is None and syn_per_neuron > 0:
            budget = hw.weight_memory_bytes_per_core / UNITS_PER_CORE
            gs = int(min(base, max(1, budget // max(hw.weight_bytes_per_synapse * syn_per_neuron, 1e-9))))
        sizes[b] = gs

    rate_arr = _rates(rates, pops, pop_size, g, default_rate)
    previous: dict[int, int] = {}
    while True:
        ng = _build(g, pops, pop_size, sizes, in_edges, is_pop, costs, order, rate_arr)
        if hw is None or hw.max_fan_in is None or group_size is not None:
            return ng
        # A unit's fan-in is the union over its neurons: halve the units of layers where it is over the
        # limit, while that helps (in a dense layer every neuron has the full fan-in; single neurons
        # over the limit are reported by partition as not fitting any mesh).
        unit_fan_in = np.bincount(ng.reach.indices, minlength=ng.num_units)
        over = (unit_fan_in > hw.max_fan_in) & (ng.unit_neurons > 1)
        worst = {int(i): int(unit_fan_in[over & (ng.unit_layer == i)].max()) for i in np.unique(ng.unit_layer[over])}
        shrink = [i for i, f in worst.items() if f < previous.get(i, np.inf)]
        if not shrink:
            return ng
        for i in shrink:
            previous[i] = worst[i]
            sizes[pops[i]] = max(1, sizes[pops[i]] // 2)


def prepare(graph: Graph) -> tuple[Graph, dict, list[str], list[str], dict, dict]:
    """(shaped copy, cost per node, topological order, neuron layers and inputs, their sizes, in-edges)."""
    g = _shaped_copy(graph)
    costs = {}
    for name, node in g.nodes.items():
        try:
            costs[name] = cost_table.node_cost(node, node.input_shapes, node.output_shapes)
        except TalonError as exc:
            raise MappingError(f"node {name!r} ({node.type_name}): {exc}") from exc
    for name, node in g.nodes.items():
        _check_neurons_counted(name, node, costs[name])
    order = g.topological_order()
    idle = set(idle_inputs(g))  # they send nothing: nothing of them is placed (NeuronGraph.unmapped lists them)
    pops = [n for n in order if (g.nodes[n].type_name == "Input" and n not in idle) or costs[n].neurons > 0]
    if not pops:
        raise MappingError("the graph has no neuron layers and no inputs to map")
    pop_size = {n: (costs[n].activation_elements if g.nodes[n].type_name == "Input" else costs[n].neurons) for n in pops}
    for n in pops:
        if pop_size[n] != numel(g.nodes[n].output_shapes[0]):
            raise MappingError(f"layer {n!r}: the cost table counts {pop_size[n]} neurons but its output has {numel(g.nodes[n].output_shapes[0])} elements")
    in_edges: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for (s, d), k in zip(g.edges, g.edge_output_index()):
        in_edges[d].append((s, k))
    return g, costs, order, pops, pop_size, in_edges


def idle_inputs(g: Graph) -> list[str]:
    """Input nodes that feed no node (e.g. an unused argument of the exported forward)."""
    feeding = {s for s, _ in g.edges}
    return [n for n, node in g.nodes.items() if node.type_name == "Input" and n not in feeding]


def _check_neurons_counted(name: str, node: Node, cost: Any) -> None:
    """Mapping places the neurons the cost table counts: a node that is a neuron by its traits (it declares
    neurons_per_element, or is a stateful or spiking primitive) but is counted none would silently get no
    place, so it is refused by name."""
    if cost.neurons > 0 or not (node.neurons_per_element > 0 or node.stateful or node.spiking):
        return
    traits = (("stateful", node.stateful), ("spiking", node.spiking), (f"{node.neurons_per_element}-neuron-per-element", node.neurons_per_element > 0))
    kind = " and ".join(t for t, on in traits if on)
    if not cost.modelled:
        raise MappingError(
            f"node {name!r} ({node.type_name}) is a {kind} primitive with no cost rule, so mapping cannot tell how many neurons "
            f"it holds and would place none: register one with talon.sdk.cost.register_cost({node.type_name!r}, rule), the "
            f"rule returning Counts(neurons=...) (and, for a node between neuron layers, a connectivity rule with "
            f"talon.mapping.register_connectivity) (docs/mapping.md, 'User primitives')")
    if node.neurons_per_element > 0 or (node.stateful and node.spiking):
        raise MappingError(
            f"node {name!r} ({node.type_name}) is a {kind} primitive, but its cost rule counts no neurons, so mapping "
            f"would place none: make the rule registered with talon.sdk.cost.register_cost({node.type_name!r}, ...) return "
            "Counts(neurons=...) (docs/mapping.md, 'User primitives')")


def propagate(g: Graph, pops: list[str], seeds: list[sp.csr_matrix], in_edges, costs: dict, order: list[str]) -> tuple[dict, dict]:
    """Push each layer's seed (its neurons x columns) backwards through the nodes between layers.

    Returns ({layer: (its neurons x columns) reach}, {synaptic node: (its outputs x columns) reach}):
    neuron i of a layer reaches column u when it has a synapse onto a neuron whose seed row marks u."""
    is_pop = set(pops)
    pending: dict[str, dict[int, sp.csr_matrix]] = defaultdict(dict)
    reach: dict[str, sp.csr_matrix] = {}

    def push(src: str, k: int, y: sp.csr_matrix) -> None:
        if src in is_pop:
            reach[src] = y if src not in reach else reach[src] + y
        else:
            cur = pending[src].get(k)
            pending[src][k] = y if cur is None else cur + y

    for b, seed in zip(pops, seeds):
        for s, k in in_edges[b]:
            push(s, k, seed)

    synaptic_reach: dict[str, sp.csr_matrix] = {}
    max_passes = len(g.nodes) + 2
    for _ in range(max_passes):
        if not any(pending.values()):
            break
        for name in reversed(order):
            if name in is_pop or not pending.get(name):
                continue
            node = g.nodes[name]
            outs = pending.pop(name)
            rule = connectivity_rule(node.type_name)
            if rule is None:
                raise MappingError(
                    f"node {name!r}: no connectivity rule for primitive {node.type_name!r} between neuron layers; "
                    "register one with talon.mapping.register_connectivity"
                )
            for k, y in outs.items():
                y = binarize(y)
                if costs[name].synapses > 0:
                    prev = synaptic_reach.get(name)
                    synaptic_reach[name] = y if prev is None else binarize(prev + y)
                ins = rule(node, list(node.input_shapes), list(node.output_shapes), k, y)
                for (s, sk), y_in in zip(in_edges[name], ins):
                    push(s, sk, y_in)
    else:
        if any(pending.values()):
            stuck = [n for n, v in pending.items() if v]
            raise MappingError(f"a cycle through {stuck} contains no neuron layer: mapping needs a neuron on every loop")
    return reach, synaptic_reach


def _build(g: Graph, pops: list[str], pop_size: dict, sizes: dict, in_edges, is_pop: set, costs: dict, order: list[str], rate_arr: np.ndarray) -> NeuronGraph:
    """The NeuronGraph for the given unit size per layer (see from_graph)."""
    layer_start = np.concatenate([[0], np.cumsum([pop_size[n] for n in pops])]).astype(np.int64)
    unit_bounds = []
    for i, n in enumerate(pops):
        unit_bounds.append(np.arange(0, pop_size[n], sizes[n], dtype=np.int64) + layer_start[i])
    unit_start = np.concatenate(unit_bounds + [[layer_start[-1]]]).astype(np.int64)
    num_units = len(unit_start) - 1
    layer_units = np.searchsorted(unit_start, layer_start)  # unit range of each layer
    neuron_unit = np.repeat(np.arange(num_units, dtype=np.int64), np.diff(unit_start))

    # Seeds: each layer's input is "reaches my own unit".
    seeds = []
    for i in range(len(pops)):
        lo, hi = layer_start[i], layer_start[i + 1]
        seeds.append(sp.csr_matrix((np.ones(hi - lo, np.float32), neuron_unit[lo:hi], np.arange(hi - lo + 1)), shape=(hi - lo, num_units)))
    reach, synaptic_reach = propagate(g, pops, seeds, in_edges, costs, order)

    blocks = []
    for i, n in enumerate(pops):
        size = pop_size[n]
        r = reach.get(n)
        blocks.append(binarize(r) if r is not None else sp.csr_matrix((size, num_units), dtype=np.float32))
    reach_all = sp.vstack(blocks, format="csr").astype(np.bool_)

    unit_layer = np.searchsorted(layer_start, unit_start[:-1], side="right") - 1
    layer_syn, unmapped = charged_synapses(g, pops, costs, synaptic_reach, unit_layer)
    unmapped = idle_inputs(g) + unmapped
    unit_syn = np.zeros(num_units, dtype=np.int64)
    for i, n in enumerate(pops):
        lo, hi = layer_units[i], layer_units[i + 1]
        per = layer_syn[i] / pop_size[n]
        cum = np.rint((unit_start[lo : hi + 1] - layer_start[i]) * per).astype(np.int64)
        unit_syn[lo:hi] = np.diff(cum)

    return NeuronGraph(
        reach_all,
        rate_arr,
        unit_start,
        unit_syn,
        layer_start,
        list(pops),
        layer_shapes=[tuple(g.nodes[n].output_shapes[0]) for n in pops],
        unmapped=unmapped,
    )


def charged_synapses(g: Graph, pops: list[str], costs: dict, synaptic_reach: dict, col_layer: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Synapses (weights) charged to each layer by the synaptic nodes that reach it (in proportion to the
    share of the node's outputs that reach the layer), and the synaptic nodes that reach no layer.
    `col_layer`: the layer of each column of the reach matrices."""
    is_pop = set(pops)
    layer_syn = np.zeros(len(pops), dtype=np.float64)
    unmapped = []
    for name, node in g.nodes.items():
        c = costs[name]
        if c.synapses <= 0 or name in is_pop:
            continue
        y = synaptic_reach.get(name)
        if y is None:
            unmapped.append(name)
            continue
        rows = np.repeat(np.arange(y.shape[0]), np.diff(y.indptr))
        pairs = np.unique(rows * len(pops) + col_layer[y.indices])
        frac = np.bincount(pairs % len(pops), minlength=len(pops)) / max(y.shape[0], 1)
        layer_syn += c.synapses * frac
    return layer_syn, unmapped


def _upstream_synaptic(pop: str, in_edges, is_pop, costs) -> set[str]:
    seen, found = set(), set()
    stack = [s for s, _ in in_edges[pop]]
    while stack:
        n = stack.pop()
        if n in seen or n in is_pop:
            continue
        seen.add(n)
        if costs[n].synapses > 0:
            found.add(n)
        stack.extend(s for s, _ in in_edges[n])
    return found


def _rates(rates: RatesLike, pops: list[str], pop_size: dict, g: Graph, default_rate: float) -> np.ndarray:
    default_rate = check_rate(default_rate, "default_rate")
    if rates is None or isinstance(rates, numbers.Real):
        value = default_rate if rates is None else check_rate(rates, "rates")
        return rates_array(value, sum(pop_size.values()))
    if not isinstance(rates, Mapping):
        hint = " (a simulation's: rates=sim.firing_rates)" if hasattr(rates, "firing_rates") else ""
        raise MappingError(
            f"rates must be a number or a dict {{layer name: number or array of the layer's shape}}{hint}, got "
            f"{type(rates).__name__}; layers: {pops}"
        )
    unknown = set(rates) - set(pops)
    if unknown:
        raise MappingError(f"rates given for {sorted(unknown, key=str)}, which are not neuron layers or inputs (layers: {pops})")
    # a layer left out, or given None (as rates=None for the whole graph), gets default_rate
    parts = [_layer_rates(rates[n], n, pop_size[n], g.nodes[n].output_shapes[0]) if rates.get(n) is not None
             else rates_array(default_rate, pop_size[n]) for n in pops]
    return np.concatenate(parts)


def _layer_rates(value: Any, name: str, size: int, shape: tuple) -> np.ndarray:
    """One layer's rates: a number, `size` flat per-neuron values, or an array that broadcasts to the
    layer's shape (leading axes of length 1, e.g. a batch of one, are dropped). Other shapes are refused,
    not reinterpreted: a (4, 4) array for a 16-neuron layer does not say which value is which neuron's."""
    if isinstance(value, numbers.Real):
        return rates_array(check_rate(value, f"rates[{name!r}]"), size)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError) as exc:  # RuntimeError: a torch tensor that requires grad
        shown = repr(value) if isinstance(value, str) else type(value).__name__
        raise MappingError(
            f"rates[{name!r}] must be a number or an array of the layer's shape {shape}, got {shown} ({exc}); "
            "a torch tensor: pass tensor.detach().cpu().numpy()"
        ) from None
    if arr.ndim == 0:
        return rates_array(check_rate(float(arr), f"rates[{name!r}]"), size)
    if not (arr.ndim == 1 and arr.size == size):
        while arr.ndim > len(shape) and arr.shape[0] == 1:
            arr = arr[0]
        try:
            arr = np.broadcast_to(arr, shape)
        except ValueError:
            batch = " (rates of a batch: average them over the batch axis first)" if arr.ndim > len(shape) else ""
            raise MappingError(
                f"rates[{name!r}] has shape {np.shape(value)}, layer {name!r} has {size} neurons (shape {shape}): "
                f"give a number, {size} values in the layer's order, or an array of shape {shape}{batch}"
            ) from None
    if not (np.all(np.isfinite(arr)) and np.all((arr >= 0) & (arr <= 1))):
        raise MappingError(
            f"rates[{name!r}] must be in [0, 1] spikes per neuron per step (a neuron sends at most one spike a "
            f"step), got values from {np.nanmin(arr):g} to {np.nanmax(arr):g}; for spike counts over T steps, divide by T"
        )
    return rates_array(arr, size)
