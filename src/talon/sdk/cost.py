"""THE cost table: for each primitive type, what one node costs given its input shapes.

Every count in TALON (analyze, profile, the backends' energy model, mapping, FPGA resource estimates)
comes from here, one entry per primitive type. Counts are per sample and per timestep. The formulas are
written out in docs/cost_model.md; each entry also carries a one-line `formula` for reference.

Definitions (n = output elements of the node, k = number of inputs):

- params / param_bytes: elements / bytes of every array field the node stores (weights, biases, neuron
  constants, batch-norm statistics), as a .t1c file stores them: at their dtype, or as the integers of
  their integer form (talon.ir._compact: quantized weights on a power-of-two grid, 1 byte each at 8
  bits). Neuron constants count at the shape they vary over (`counted_arrays`), so a per-neuron array of
  equal values costs what its scalar costs: every number is the same for every form of the same model
  (exported, hand-built, read from a file, imported from NIR). Scalars (stride, reset mode) are free.
- weight_elements: elements of the synaptic weight tensors (`CostEntry.weight_fields`): what weight
  quantization applies to.
- macs: multiply-accumulates against stored synaptic weights (dense and convolutional layers only),
  counting padded positions like PyTorch. event_macs: those whose operand is the node's *input* (all of
  them, except in SepConv2d whose pointwise stage reads the depthwise output); when the input is spikes
  these become accumulates triggered by spikes.
- flops: 2 * macs (a multiply and an add each; the bias add is the last add of an n-term dot product)
  plus the elementwise operations listed per entry.
- activation_elements: output elements; input_elements: input elements (all inputs).
- state_elements: values a stateful node carries from one step to the next.
- neurons: output elements of neuron primitives. synapses: weighted connections used per step (= macs).
- fan_in = macs / activation_elements; fan_out = event_macs / input_elements (averages over the layer).
- view: the output is the input re-labelled (no new buffer). passes_spikes: spike inputs give spike outputs.
- spike_source: the output is spikes though the node is no neuron: an Input declared as spikes
  (`Input.spikes`). Its spikes drive the layers it feeds like a spiking layer's (sdk.profile's rule).
- in_place: one input, output of the same shape, each output element computed from the input element at
  the same position only: the node may overwrite its input buffer (what profile's in-place advice needs).

Types without an entry get a documented zero-compute cost (`modelled=False`: params and activations
counted, nothing else); lint reports them as UNMODELLED_COST. Register an entry for a user primitive
with `register_cost`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, overload

import numpy as np

from talon.errors import GraphValidationError, TalonUsageError
from talon.ir import Graph, Node, get_node_class, list_primitives
from talon.ir._compact import smallest_broadcast, stored_nbytes
from talon.sdk._graph import Shape, infer_shapes, numel
from talon.sdk._load import GraphLike, as_graph


@dataclass(frozen=True)
class Counts:
    """What a cost rule computes from a node and its shapes; the table adds the generic counts."""

    macs: int = 0
    flops: int = 0
    state_elements: int = 0
    neurons: int = 0
    event_macs: int | None = None  # None: equal to macs
    view: bool = False
    passes_spikes: bool = False
    in_place: bool = False
    spike_source: bool = False


Rule = Callable[[Node, list[Shape], list[Shape]], Counts]


@dataclass(frozen=True)
class CostEntry:
    type_name: str
    rule: Rule
    weight_fields: tuple[str, ...] = ()
    formula: str = ""


@dataclass(frozen=True)
class NodeCost:
    """The cost of one node for one sample and one timestep (see the module docstring)."""

    type_name: str
    params: int = 0
    param_bytes: int = 0
    weight_elements: int = 0
    macs: int = 0
    event_macs: int = 0
    flops: int = 0
    input_elements: int = 0
    activation_elements: int = 0
    state_elements: int = 0
    neurons: int = 0
    synapses: int = 0
    fan_in: float = 0.0
    fan_out: float = 0.0
    view: bool = False
    spiking: bool = False
    passes_spikes: bool = False
    in_place: bool = False
    spike_source: bool = False
    stateful: bool = False
    weight_fields: tuple[str, ...] = ()
    modelled: bool = True


_TABLE: dict[str, CostEntry] = {}


@overload
def register_cost(type_name: str, rule: Rule, *, weight_fields: Iterable[str] = (), formula: str = "", replace: bool = False) -> Rule: ...
@overload
def register_cost(type_name: str, rule: None = None, *, weight_fields: Iterable[str] = (), formula: str = "", replace: bool = False) -> Callable[[Rule], Rule]: ...
def register_cost(
    type_name: str,
    rule: Rule | None = None,
    *,
    weight_fields: Iterable[str] = (),
    formula: str = "",
    replace: bool = False,
) -> Callable[[Rule], Rule] | Rule:
    """Add the cost entry for `type_name` (usable as a decorator on the rule).

    `rule(node, input_shapes, output_shapes) -> Counts`; shapes exclude the batch dimension.
    `weight_fields` names the synaptic weight arrays (quantized by `quantize_weights`).
    """

    def add(fn: Rule) -> Rule:
        if type_name in _TABLE and not replace:
            raise TalonUsageError(f"a cost entry for {type_name!r} is already registered (pass replace=True)")
        _TABLE[type_name] = CostEntry(type_name, fn, tuple(weight_fields), formula)
        return fn

    return add(rule) if rule is not None else add


def cost_entry(type_name: str) -> CostEntry | None:
    """The registered entry of `type_name`, else the one its class's neuron traits define, else None."""
    entry = _TABLE.get(type_name)
    return entry if entry is not None else _neuron_entry(type_name)


def registered_cost(type_name: str) -> CostEntry | None:
    """The entry `register_cost` holds for `type_name` (None where none is registered; a neuron class's
    traits may still define one, see `cost_entry`): the same object until it is replaced."""
    return _TABLE.get(type_name)


def cost_table() -> dict[str, CostEntry]:
    """A copy of the table, in registration order, then the entries neuron classes' traits define."""
    table = dict(_TABLE)
    for t in list_primitives():
        if t not in table and (entry := _neuron_entry(t)) is not None:
            table[t] = entry
    return table


def node_cost(node: Node, input_shapes: list[Shape] | None = None, output_shapes: list[Shape] | None = None) -> NodeCost:
    """Cost of `node` for the given input shapes (default: the shapes `Graph.infer_shapes()` set on it)."""
    if input_shapes is None:
        input_shapes = node.input_shapes
        if input_shapes is None:
            if node.max_inputs == 0:
                input_shapes = []
            else:
                raise GraphValidationError(
                    f"{node.type_name} node has no inferred shapes: pass input_shapes or call graph.infer_shapes() first"
                )
    input_shapes = [tuple(int(d) for d in s) for s in input_shapes]
    if output_shapes is None:
        output_shapes = node.infer_output_shapes(input_shapes)
    output_shapes = [tuple(int(d) for d in s) for s in output_shapes]

    entry = cost_entry(node.type_name)
    if isinstance(node, Graph):
        return _graph_cost(node, input_shapes, output_shapes)
    counts = entry.rule(node, input_shapes, output_shapes) if entry else Counts()
    weight_fields = entry.weight_fields if entry else ()

    params = param_bytes = weight_elements = 0
    for name, arr in counted_arrays(node, weight_fields):
        params += int(arr.size)
        param_bytes += stored_nbytes(arr)
        if name in weight_fields:
            weight_elements += int(arr.size)
    n_in = sum(numel(s) for s in input_shapes)
    n_out = sum(numel(s) for s in output_shapes)
    event = counts.macs if counts.event_macs is None else counts.event_macs
    return NodeCost(
        type_name=node.type_name,
        params=params,
        param_bytes=param_bytes,
        weight_elements=weight_elements,
        macs=int(counts.macs),
        event_macs=int(event),
        flops=int(counts.flops),
        input_elements=n_in,
        activation_elements=n_out,
        state_elements=int(counts.state_elements),
        neurons=int(counts.neurons),
        synapses=int(counts.macs),
        fan_in=counts.macs / n_out if counts.macs and n_out else 0.0,
        fan_out=event / n_in if event and n_in else 0.0,
        view=counts.view,
        spiking=bool(node.spiking),
        passes_spikes=counts.passes_spikes or counts.view,
        in_place=counts.in_place,
        spike_source=counts.spike_source,
        stateful=bool(node.stateful),
        weight_fields=weight_fields,
        modelled=entry is not None,
    )


def counted_arrays(node: Node, weight_fields: Iterable[str] = ()) -> Iterator[tuple[str, np.ndarray]]:
    """The node's array fields as the cost table counts them: a neuron constant (an array of a stateful or
    spiking node that is no synaptic weight) at the shape it varies over (`smallest_broadcast`), so a
    per-neuron array of equal values costs what its scalar costs, whichever form a graph, a file or an
    importer holds; every other array as it is."""
    neuron = bool(node.stateful or node.spiking)
    for name, arr in node.arrays():
        yield name, (smallest_broadcast(arr) if neuron and name not in weight_fields else arr)


def graph_costs(graph: GraphLike) -> dict[str, NodeCost]:
    """{node name: NodeCost} in graph order for a Graph or .t1c path. Infers shapes (on a copy); raises
    GraphValidationError when they cannot be inferred."""
    graph = as_graph(graph)
    shapes = infer_shapes(graph)
    return {name: node_cost(node, *shapes[name]) for name, node in graph.nodes.items()}


def _graph_cost(graph: Graph, input_shapes: list[Shape], output_shapes: list[Shape]) -> NodeCost:
    """A nested graph costs the sum of its nodes; its activations are its outputs."""
    inner = graph_costs(graph).values()
    total = lambda attr: sum(getattr(c, attr) for c in inner)  # noqa: E731
    n_in = sum(numel(s) for s in input_shapes)
    n_out = sum(numel(s) for s in output_shapes)
    macs = total("macs")
    return NodeCost(
        type_name="Graph",
        params=total("params"),
        param_bytes=total("param_bytes"),
        weight_elements=total("weight_elements"),
        macs=macs,
        event_macs=0,  # what the nested inputs drive depends on the inner wiring; not attributed
        flops=total("flops"),
        input_elements=n_in,
        activation_elements=n_out,
        state_elements=total("state_elements"),
        neurons=total("neurons"),
        synapses=total("synapses"),
        fan_in=macs / n_out if macs and n_out else 0.0,
        fan_out=0.0,
        stateful=graph.stateful,
        modelled=all(c.modelled for c in inner),
    )


# ---------------------------------------------------------------------------------------------------
# The entries. n = output elements, k = number of inputs.


def _n(shapes: list[Shape]) -> int:
    return sum(numel(s) for s in shapes)


def _free(view: bool = False, passes_spikes: bool = False) -> Rule:
    return lambda node, ins, outs: Counts(view=view, passes_spikes=passes_spikes)


register_cost(
    "Input",
    lambda node, ins, outs: Counts(spike_source=bool(node.spikes)),
    formula="0 (allocates its n elements); spike_source when it declares spikes",
)
register_cost("Output", _free(view=True), formula="0, view")
register_cost("Flatten", _free(view=True), formula="0, view")
register_cost("Dropout", _free(view=True), formula="0, view (identity at inference)")
register_cost("HybridRegion", _free(view=True), formula="0, view (marker)")
register_cost("ChannelSplit", _free(view=True), formula="0, view (slices of the input)")
register_cost("Concat", _free(passes_spikes=True), formula="0 (copy)")


def _dense(node: Node, ins: list[Shape], outs: list[Shape]) -> Counts:
    out = outs[0]
    positions = numel(out[:-1])
    macs = positions * node.out_features * node.in_features
    return Counts(macs=macs, flops=2 * macs)


for _t in ("Affine", "Linear", "SpikingAffine"):
    register_cost(_t, _dense, weight_fields=("weight",), formula="macs = P*out*in (P = leading positions); flops = 2*macs")


def _conv(node: Node, ins: list[Shape], outs: list[Shape]) -> Counts:
    w = node.weight  # (out, in/groups, *kernel)
    macs = numel(outs[0]) * numel(w.shape[1:])
    return Counts(macs=macs, flops=2 * macs)


for _t in ("Conv1d", "Conv2d", "SConv", "SDConv"):
    register_cost(_t, _conv, weight_fields=("weight",), formula="macs = n*(C/groups)*prod(kernel); flops = 2*macs")


@register_cost("SepConv2d", weight_fields=("depthwise_weight", "pointwise_weight"), formula="macs = C*Ho*Wo*kh*kw + O*Ho*Wo*C; event_macs = depthwise part")
def _sepconv(node: Node, ins: list[Shape], outs: list[Shape]) -> Counts:
    dw, pw = node.depthwise_weight, node.pointwise_weight
    _, ho, wo = outs[0]
    depthwise = dw.shape[0] * ho * wo * dw.shape[2] * dw.shape[3]
    pointwise = pw.shape[0] * ho * wo * pw.shape[1]
    return Counts(macs=depthwise + pointwise, flops=2 * (depthwise + pointwise), event_macs=depthwise)


# Elementwise activations: nominal operations per element (a transcendental function counts as one).
def _elementwise(per: int, in_place: bool = True) -> Rule:
    return lambda node, ins, outs: Counts(flops=per * _n(outs), in_place=in_place)


for _t, _per in (("Sigmoid", 4), ("Tanh", 4), ("ELU", 4), ("GELU", 8), ("PReLU", 2), ("Scale", 1)):
    register_cost(_t, _elementwise(_per), formula=f"flops = {_per}*n")
# Softmax normalises over a whole dimension: every output reads every input of its row, so not in place
register_cost("Softmax", _elementwise(5, in_place=False), formula="flops = 5*n")


@register_cost("ReLU", formula="flops = n (2*n when negative_slope != 0)")
def _relu(node: Node, ins: list[Shape], outs: list[Shape]) -> Counts:
    return Counts(flops=(2 if node.negative_slope else 1) * _n(outs), in_place=True)


@register_cost("MaxPool2d", formula="flops = n*(kh*kw - 1) comparisons")
def _maxpool(node: Node, ins: list[Shape], outs: list[Shape]) -> Counts:
    kh, kw = node.kernel_size
    return Counts(flops=_n(outs) * (kh * kw - 1), passes_spikes=True)


@register_cost("AvgPool2d", formula="flops = n*kh*kw (kh*kw - 1 adds and a divide)")
def _avgpool(node: Node, ins: list[Shape], outs: list[Shape]) -> Counts:
    kh, kw = node.kernel_size
    return Counts(flops=_n(outs) * kh * kw)


@register_cost("SumPool2d", formula="flops = n*(kh*kw - 1) adds")
def _sumpool(node: Node, ins: list[Shape], outs: list[Shape]) -> Counts:
    kh, kw = node.kernel_size
    return Counts(flops=_n(outs) * (kh * kw - 1))


@register_cost("Upsample", formula="nearest: 0; bilinear: flops = 7*n (4 multiplies, 3 adds)")
def _upsample(node: Node, ins: list[Shape], outs: list[Shape]) -> Counts:
    return Counts(flops=7 * _n(outs) if node.mode == "bilinear" else 0, passes_spikes=node.mode == "nearest")


for _t in ("BatchNorm1d", "BatchNorm2d"):
    register_cost(_t, _elementwise(2), formula="flops = 2*n (folded scale and shift)")
register_cost("LayerNorm", _elementwise(7, in_place=False), formula="flops = 7*n (mean, variance, normalise, scale, shift)")


@register_cost("Skip", formula="residual: flops = (k-1)*n; passthrough: view; concatenate: 0 (copy)")
def _skip(node: Node, ins: list[Shape], outs: list[Shape]) -> Counts:
    if node.skip_type == "passthrough":
        return Counts(view=True)
    if node.skip_type == "residual":
        return Counts(flops=(len(ins) - 1) * _n(outs))
    return Counts(passes_spikes=True)


# Neurons: their cost comes from their class's traits (ops_per_step, state_fields, neurons_per_element),
# so a neuron needs no entry of its own: `cost_entry` derives one for any class that declares neuron state.


def neuron_rule(cls: type[Node]) -> Rule:
    """Operations per neuron per step (one less with reset_mode "none"), plus (k-1) adds to sum k inputs."""
    per, state, count = int(cls.ops_per_step), len(cls.state_fields), int(cls.neurons_per_element)

    def rule(node: Node, ins: list[Shape], outs: list[Shape]) -> Counts:
        n = _n(outs)
        ops = per - (1 if getattr(node, "reset_mode", None) == "none" else 0)
        return Counts(flops=ops * n + (len(ins) - 1) * n, state_elements=state * n, neurons=count * n)

    return rule


def _neuron_entry(type_name: str) -> CostEntry | None:
    """The cost entry a neuron class's traits define (None for a class without neuron state)."""
    cls = get_node_class(type_name)
    if cls is None or not cls.state_fields:
        return None
    # the neurons that can switch their reset off, read from their class's fields
    reset = " (one less with reset_mode none)" if "reset_mode" in cls.field_specs() else ""
    per_neuron = "" if cls.neurons_per_element == 1 else f"{cls.neurons_per_element}*"
    formula = f"neurons = {per_neuron}n; state = {len(cls.state_fields)}*n; flops = {cls.ops_per_step}*n{reset} + (k-1)*n"
    return CostEntry(type_name, neuron_rule(cls), (), formula)


@register_cost("Threshold", formula="neurons = n; flops = n comparisons")
def _threshold(node: Node, ins: list[Shape], outs: list[Shape]) -> Counts:
    return Counts(flops=_n(outs), neurons=_n(outs), in_place=True)


@register_cost("Delay", formula="state = sum of delay over the n elements (a ring buffer per element)")
def _delay(node: Node, ins: list[Shape], outs: list[Shape]) -> Counts:
    state = int(np.broadcast_to(node.delay, outs[0]).sum()) if outs else 0
    return Counts(state_elements=state, passes_spikes=True)


def quantized_bytes(node: Node, bits: int) -> int:
    """Bytes to store `node` with its synaptic weight tensors at `bits` bits (packed, plus one float32
    scale per tensor) and every other array as stored. Nested graphs sum their nodes."""
    if isinstance(node, Graph):
        return sum(quantized_bytes(n, bits) for n in node.nodes.values())
    entry = cost_entry(node.type_name)
    weight_fields = entry.weight_fields if entry else ()
    total = 0
    for name, arr in counted_arrays(node, weight_fields):
        if name in weight_fields:
            total += -(-int(arr.size) * bits // 8) + 4
        else:
            total += stored_nbytes(arr)
    return total
