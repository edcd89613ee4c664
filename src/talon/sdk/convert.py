"""Graph transforms: convert_to_spiking, quantize_weights, fold_batchnorm, remove_dropout, prune_disconnected.

Every transform returns a new Graph and leaves its argument untouched. Node names, node order, edge
order (and so the input order of multi-input nodes), dt and metadata are kept except where the transform
says otherwise. The helpers that decide what can be folded or fused are shared with lint.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from talon.errors import GraphValidationError, TalonUsageError
from talon.ir import Affine, Graph, SpikingAffine
from talon.sdk import _args, _bounds
from talon.sdk._graph import Shape, Topology, infer_shapes
from talon.sdk._load import GraphLike, as_graph
from talon.sdk.cost import cost_entry
from talon.sdk.fixed_point import frac_for_range, quantize_to_ints, spike_frac

_ACCUMULATOR_WIDTHS = (16, 24, 32, 48, 64)
# The layer types each transform knows how to rewrite. What it does to each is written out per type
# below (weight layout, bias handling), so these are the transforms' own scope, not node properties
# that a class flag could carry.
_AFFINE = ("Affine", "Linear")  # float affine maps y = W x (+ b): fused, folded into, made spiking
#: The batch norms fold_batchnorm folds (profile_graph counts them for its advice).
BATCHNORMS = ("BatchNorm1d", "BatchNorm2d")
_FOLD_INTO = ("Conv1d", "Conv2d", "SepConv2d", *_AFFINE)
#: The layers convert_to_spiking replaces by SpikingAffine (profile_graph suggests converting them).
SPIKING_CONVERTIBLE = _AFFINE


# -- shared helpers -------------------------------------------------------------------------------
def symmetric_scale(max_abs: float, bits: int) -> float:
    """Linear scale s so that [-max_abs, max_abs] maps onto the integers [-(2^(bits-1)-1), 2^(bits-1)-1]."""
    qmax = 2 ** (bits - 1) - 1
    if not max_abs > 0 or qmax < 1:
        return 1.0
    return max_abs / qmax


def _peaks(w64: np.ndarray, per_channel: bool) -> np.ndarray:
    """max|w| per output channel (dimension 0), or of the whole tensor as a 0-d array."""
    if per_channel and w64.ndim >= 2:
        return np.abs(w64).reshape(w64.shape[0], -1).max(axis=1)
    return np.asarray(np.abs(w64).max() if w64.size else 0.0)


def _quantize_array(w: np.ndarray, bits: int, per_channel: bool, power_of_two: bool) -> tuple[np.ndarray, np.ndarray | float]:
    """(dequantized array in w's dtype, scale: a float, or one per output channel)."""
    w64 = w.astype(np.float64)
    peaks = _peaks(w64, per_channel)
    if power_of_two:
        # The hardware rule itself (talon.sdk.fixed_point, docs/fixed_point.md section 5), so that a
        # per-tensor result is exactly the grid and the integers the fixed-point plan would choose.
        frac = frac_for_range(peaks, bits)
        f = frac if np.ndim(frac) == 0 else np.reshape(frac, (-1,) + (1,) * (w.ndim - 1))
        wq = np.ldexp(quantize_to_ints(w64, bits, f).astype(np.float64), -f)
        scale_pow2 = np.ldexp(1.0, -frac)
        return wq.astype(w.dtype), float(scale_pow2) if np.ndim(frac) == 0 else scale_pow2
    qmax = 2 ** (bits - 1) - 1
    if peaks.ndim == 0:
        scale: np.ndarray | float = symmetric_scale(float(peaks), bits)
        s = scale
    else:
        scale = np.array([symmetric_scale(float(m), bits) for m in peaks])
        s = scale.reshape((-1,) + (1,) * (w.ndim - 1))
    q = np.clip(np.rint(w64 / s), -qmax, qmax)
    return (q * s).astype(w.dtype), scale


@dataclass(frozen=True)
class AccumulatorRange:
    """The largest sum a SpikingAffine's accumulator must hold, in the accumulator's integer units."""

    worst: int
    #: the accumulator's largest magnitude, 2^(accumulator_bits - 1) - 1
    limit: int
    #: what the layer's inputs were taken to be, for messages
    inputs: str

    @property
    def overflows(self) -> bool:
        return self.worst > self.limit

    @property
    def bits_needed(self) -> int:
        return accumulator_bits_for(self.worst)


def accumulator_ranges(
    graph: Graph, input_range: tuple[float, float] | dict[str, tuple[float, float]] | None = (0.0, 1.0), activation_bits: int = 8,
) -> dict[str, AccumulatorRange]:
    """{SpikingAffine node: AccumulatorRange}: the integers the fixed-point simulator adds (docs/fixed_point.md).

    The weights are quantised per tensor to `weight_bits` on the power-of-two grid of their largest
    magnitude (talon.sdk.fixed_point). Each input arrives as an integer in its own format:
      - a spike (from a spiking neuron, possibly through nodes that keep its grid) is the integer 1, or its
        graded factor's integer (spike_frac): exact;
      - anything else (a graph input, a pooled or summed activation) is an `activation_bits` word whose
        format the calibration fits to the range it observes. Words saturate, so the largest is
        2^(activation_bits-1) - 1 whatever the calibration: that is what is counted.
    The bias is added at the accumulator's precision (input frac + weight frac). For a non-spike input
    that frac is the one a calibration observing at least half of the input's bound gives (the bound
    `input_range` implies, talon.sdk._bounds; |x| <= 1 where none is known, `input_range=None`): a
    calibration that sees less makes the format finer and the bias's integer larger. The bias is
    saturated at the accumulator's width (a bias wider than that makes the plan coarsen the layer's weight
    grid instead, fixed-point version 3, docs/fixed_point.md section 5 rule 2; lint's CONSTANT_SATURATES reports
    the biases no grid can hold).
    Non-finite values count as zero.
    """
    names = [n for n, node in graph.nodes.items() if node.type_name == "SpikingAffine"]
    if not names:
        return {}
    topo = Topology.of(graph)
    bounds: dict = {}
    if input_range is not None:
        try:
            feeding = [s for n in names for s in topo.preds[n]]
            bounds = _bounds.propagate(graph, infer_shapes(graph), input_range, only_for=feeding)[0]
        except GraphValidationError:
            pass  # shapes cannot be inferred: no bounds, so full-scale inputs
    out_idx = graph.edge_output_index()
    word = (1 << (activation_bits - 1)) - 1
    ranges = {}
    for name in names:
        node = graph.nodes[name]
        x_int, x_max, inputs = word, 1.0, f"{activation_bits}-bit input words (range unknown, |x| <= 1 assumed for the bias)"
        spike_g = None
        if topo.in_edge_ids[name]:
            edge = topo.in_edge_ids[name][0]
            src = graph.edges[edge][0]
            producer = src
            while graph.nodes[producer].grid_preserving and len(topo.preds[producer]) == 1:
                producer = topo.preds[producer][0]
            pnode = graph.nodes[producer]
            gsf = float(getattr(pnode, "graded_spikes_factor", 1.0))
            spike_g = spike_frac(gsf, activation_bits) if pnode.spiking else None
            b = bounds.get(src)
            if spike_g is not None:
                x_int = int(abs(math.ldexp(gsf, spike_g)))
                inputs = f"binary spikes from {producer!r}"
            elif b is not None:
                lo, hi = b[out_idx[edge]]
                bound = float(max(np.max(np.abs(lo), initial=0.0), np.max(np.abs(hi), initial=0.0)))
                if math.isfinite(bound):
                    x_max = bound
                    inputs = f"{activation_bits}-bit input words (|x| <= {bound:.4g})"
        # a spike's format is exact; any other input's is the one a calibration seeing >= half its bound gives
        f_in = spike_g if spike_g is not None else frac_for_range(x_max, activation_bits) + 1
        w = node.weight.astype(np.float64)
        finite = np.isfinite(w)
        frac = frac_for_range(float(np.abs(w[finite]).max()) if finite.any() else 0.0, node.weight_bits)
        q = quantize_to_ints(np.where(finite, w, 0.0), node.weight_bits, frac)
        bias = node.bias.astype(np.float64)
        # saturated at the accumulator's width (at most 62 bits: int64 words, exact in the clip)
        bias_q = quantize_to_ints(np.where(np.isfinite(bias), bias, 0.0), min(node.accumulator_bits, 62), frac + f_in)
        worst = int(np.max(np.abs(q).sum(axis=1) * x_int + np.abs(bias_q))) if q.size else 0
        ranges[name] = AccumulatorRange(worst, (1 << (node.accumulator_bits - 1)) - 1, inputs)
    return ranges


def accumulator_bits_for(worst: int) -> int:
    """Signed bits needed to hold integers of magnitude up to `worst`."""
    return max(2, math.ceil(math.log2(worst + 1)) + 1)


def foldable_batchnorms(graph: Graph, shapes: dict[str, tuple[list[Shape], list[Shape]]] | None = None) -> list[tuple[str, str]]:
    """(batch norm, layer it folds into) pairs: the BN's only input is a conv/affine layer whose only consumer
    is the BN. An Affine/Linear qualifies only when its output is a vector (known shapes), because a batch
    norm normalises dimension 0 while the affine map acts on the last one."""
    out = []
    for name, node in graph.nodes.items():
        if node.type_name not in BATCHNORMS:
            continue
        preds = graph.predecessors(name)
        if len(preds) != 1 or preds[0] not in graph.nodes:
            continue
        prev = preds[0]
        p = graph.nodes[prev]
        if p.type_name not in _FOLD_INTO or graph.successors(prev) != [name]:
            continue
        if p.type_name in _AFFINE and (shapes is None or len(shapes[prev][1][0]) != 1):
            continue
        out.append((name, prev))
    return out


def fusable_affine_pairs(graph: Graph) -> list[tuple[str, str]]:
    """(first, second) Affine/Linear pairs joined by an edge that is the only way out of the first and in to
    the second (no activation between them)."""
    pairs = []
    for a, node in graph.nodes.items():
        if node.type_name not in _AFFINE:
            continue
        succs = graph.successors(a)
        if len(succs) == 1 and succs[0] in graph.nodes:
            b = succs[0]
            if b != a and graph.nodes[b].type_name in _AFFINE and graph.predecessors(b) == [a]:
                pairs.append((a, b))
    return pairs


def _bypass(graph: Graph, name: str) -> None:
    """Remove single-input node `name`, giving its outgoing edges (in place) to its producer."""
    (src,) = [s for s, d in graph.edges if d == name]
    edges = []
    for s, d in graph.edges:
        if d == name:
            continue
        edges.append((src, d) if s == name else (s, d))
    del graph.nodes[name]
    graph.edges[:] = edges


def _check_names(graph: Graph, names: Iterable[str] | None, allowed: tuple[str, ...], what: str) -> list[str]:
    if names is None:
        return [n for n, node in graph.nodes.items() if node.type_name in allowed]
    names = _args.names(names, f"{what}: nodes")
    for n in names:
        if n not in graph.nodes:
            raise TalonUsageError(f"{what}: no node named {n!r}")
        if graph.nodes[n].type_name not in allowed:
            raise TalonUsageError(f"{what}: {n!r} is a {graph.nodes[n].type_name}, expected one of {list(allowed)}")
    return names


# -- convert_to_spiking ---------------------------------------------------------------------------
def convert_to_spiking(
    graph: GraphLike,
    weight_bits: int = 8,
    accumulator_bits: int | None = None,
    *,
    nodes: Iterable[str] | None = None,
    input_range: tuple[float, float] | dict[str, tuple[float, float]] = (0.0, 1.0),
) -> Graph:
    """Replace Affine/Linear layers (all, or `nodes`) by SpikingAffine with `weight_bits`-bit weights.

    The float weights are kept (the map is unchanged in float mode; use quantize_weights to snap them to
    the grid). `accumulator_bits=None` picks, per layer, the narrowest of 16, 24, 32, 48, 64 bits that
    cannot overflow in the fixed-point simulator (accumulator_ranges: spikes are the integer 1, other
    inputs 8-bit words fitted to the bound `input_range` implies, as lint assumes); 64 if none suffices,
    and lint then reports ACCUMULATOR_OVERFLOW.
    """
    g = as_graph(graph).copy()
    converted = _check_names(g, nodes, _AFFINE, "convert_to_spiking")
    for name in converted:
        old = g.nodes[name]
        bias = old.bias if old.type_name == "Affine" else np.zeros(old.out_features, old.weight.dtype)
        g.nodes[name] = SpikingAffine(weight=old.weight, bias=bias, weight_bits=weight_bits,
                                      accumulator_bits=accumulator_bits or 64, metadata=old.metadata)
    if accumulator_bits is None:
        ranges = accumulator_ranges(g, input_range)
        for name in converted:
            need = max(ranges[name].bits_needed, weight_bits)
            g.nodes[name] = g.nodes[name].replace(accumulator_bits=next((b for b in _ACCUMULATOR_WIDTHS if b >= need), 64))
    return g


# -- quantize_weights -----------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorQuantization:
    """What quantizing one weight tensor did. Errors are of the dequantized weights against the originals."""

    node: str
    field: str
    bits: int
    per_channel: bool
    scale: float | np.ndarray
    max_abs_error: float
    rms_error: float
    relative_error: float  # ||w_q - w|| / ||w||


@dataclass(frozen=True)
class QuantizationReport:
    bits: int
    per_channel: bool
    tensors: list[TensorQuantization] = field(default_factory=list)

    @property
    def max_abs_error(self) -> float:
        return max((t.max_abs_error for t in self.tensors), default=0.0)

    @property
    def worst_relative_error(self) -> float:
        return max((t.relative_error for t in self.tensors), default=0.0)

    def __str__(self) -> str:
        rows = [f"{t.node}.{t.field}: max |err| {t.max_abs_error:.3g}, rms {t.rms_error:.3g}, relative {t.relative_error:.3%}" for t in self.tensors]
        return "\n".join([f"{self.bits}-bit symmetric {'per-channel' if self.per_channel else 'per-tensor'} quantization", *rows])


def quantize_weights(
    graph: GraphLike,
    bits: int = 8,
    *,
    per_channel: bool = False,
    power_of_two: bool = False,
    nodes: Iterable[str] | None = None,
    return_report: bool = False,
) -> Graph | tuple[Graph, QuantizationReport]:
    """Snap every synaptic weight tensor (the cost table's weight fields) to a symmetric `bits`-bit grid.

    Per tensor, or per output channel (dimension 0) with `per_channel`. The scale is linear,
    max|w| / (2^(bits-1) - 1), with integers in [-(2^(bits-1)-1), 2^(bits-1)-1]; with `power_of_two` it is
    the fixed-point planner's power-of-two rule instead (talon.sdk.fixed_point, docs/fixed_point.md
    section 5), so a per-tensor result is exactly what `compile` / mode="fixed" would load. Weights stay
    float arrays holding the dequantized values q * scale; biases and neuron constants are unchanged;
    SpikingAffine.weight_bits is set to `bits`.
    Nested graphs are quantized too ("outer/inner" in the report). With `return_report`, returns
    (graph, QuantizationReport) giving each tensor's scale and error.
    """
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or not 2 <= bits <= 32:  # numpy ints too
        raise TalonUsageError(f"quantize_weights: bits must be an integer from 2 to 32, got {bits!r}")
    bits = int(bits)
    g = as_graph(graph).copy()
    report = QuantizationReport(bits, per_channel)
    selected = None if nodes is None else set(_args.names(nodes, "quantize_weights: nodes"))
    if selected is not None:
        missing = selected - set(g.nodes)
        if missing:
            raise TalonUsageError(f"quantize_weights: no nodes named {sorted(missing)}")
    _quantize_into(g, "", bits, per_channel, power_of_two, selected, report.tensors)
    return (g, report) if return_report else g


def _quantize_into(g: Graph, prefix: str, bits: int, per_channel: bool, pow2: bool, selected: set | None, out: list) -> None:
    for name, node in list(g.nodes.items()):
        if selected is not None and name not in selected:
            continue
        if isinstance(node, Graph):
            _quantize_into(node, f"{prefix}{name}/", bits, per_channel, pow2, None, out)
            continue
        entry = cost_entry(node.type_name)
        if entry is None or not entry.weight_fields:
            continue
        changes: dict[str, Any] = {}
        for fname in entry.weight_fields:
            w = getattr(node, fname)
            if not np.all(np.isfinite(w)):
                raise GraphValidationError(f"quantize_weights: {prefix}{name}.{fname} holds NaN or Inf")
            wq, scale = _quantize_array(w, bits, per_channel, pow2)
            err = wq.astype(np.float64) - w.astype(np.float64)
            norm = float(np.linalg.norm(w.astype(np.float64)))
            out.append(
                TensorQuantization(
                    node=prefix + name,
                    field=fname,
                    bits=bits,
                    per_channel=per_channel and w.ndim >= 2,
                    scale=scale,
                    max_abs_error=float(np.abs(err).max()) if err.size else 0.0,
                    rms_error=float(np.sqrt(np.mean(err**2))) if err.size else 0.0,
                    relative_error=float(np.linalg.norm(err)) / norm if norm else 0.0,
                )
            )
            changes[fname] = wq
        if node.type_name == "SpikingAffine":
            changes["weight_bits"] = bits
            changes["accumulator_bits"] = max(node.accumulator_bits, bits)
        g.nodes[name] = node.replace(**changes)


# -- fold_batchnorm -------------------------------------------------------------------------------
def fold_batchnorm(graph: GraphLike) -> Graph:
    """Fold every batch norm that directly follows a Conv1d/Conv2d/SepConv2d/Affine/Linear (its only
    consumer) into that layer's weights and bias, and remove it.

    With a = weight / sqrt(running_var + eps): W' = a * W (per output channel), b' = a * (b - mean) + bias.
    A folded Linear becomes an Affine. Arithmetic is float64, stored back in the layer's dtype.
    """
    src = as_graph(graph)
    try:
        shapes = infer_shapes(src)
    except GraphValidationError:
        shapes = None  # conv folds need no shapes; affine folds are skipped
    g = src.copy()
    for bn_name, prev in foldable_batchnorms(g, shapes):
        bn, layer = g.nodes[bn_name], g.nodes[prev]
        a = bn.weight.astype(np.float64) / np.sqrt(bn.running_var.astype(np.float64) + bn.eps)
        mean, beta = bn.running_mean.astype(np.float64), bn.bias.astype(np.float64)
        if layer.type_name == "SepConv2d":
            w, b = layer.pointwise_weight, layer.pointwise_bias
        else:
            w = layer.weight
            b = getattr(layer, "bias", None)
        b64 = np.zeros(w.shape[0]) if b is None else b.astype(np.float64)
        if a.shape[0] != w.shape[0]:
            raise GraphValidationError(f"fold_batchnorm: {bn_name!r} has {a.shape[0]} channels but {prev!r} produces {w.shape[0]}")
        w_new = (w.astype(np.float64) * a.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
        b_new = (a * (b64 - mean) + beta).astype(w.dtype if b is None else b.dtype)
        if layer.type_name == "SepConv2d":
            g.nodes[prev] = layer.replace(pointwise_weight=w_new, pointwise_bias=b_new)
        elif layer.type_name == "Linear":
            g.nodes[prev] = Affine(weight=w_new, bias=b_new, metadata=layer.metadata)
        else:
            g.nodes[prev] = layer.replace(weight=w_new, bias=b_new)
        _bypass(g, bn_name)
    return g


# -- remove_dropout / prune_disconnected ----------------------------------------------------------
def remove_dropout(graph: GraphLike) -> Graph:
    """Remove every Dropout (the identity at inference), connecting its producer to its consumers.

    A Dropout fed by a multi-output node (ChannelSplit) is kept: that node sends one edge per output.
    """
    g = as_graph(graph).copy()
    for name in [n for n, node in g.nodes.items() if node.type_name == "Dropout"]:
        preds = [s for s, d in g.edges if d == name]
        if len(preds) == 1 and g.nodes[preds[0]].num_outputs == 1:
            _bypass(g, name)
    return g


def prune_disconnected(graph: GraphLike) -> Graph:
    """Keep the Input nodes and every node on a path from an Input to an Output; drop the rest.

    Successors of a kept multi-output node are kept too (it needs one edge per output).
    """
    g = as_graph(graph)
    topo = Topology.of(g, with_delays=False)
    keep = topo.reachable(g.input_names) & topo.reachable(g.output_names, forward=False)
    keep |= set(g.input_names)
    for name in list(keep):
        if g.nodes[name].num_outputs > 1:
            keep |= set(topo.succs[name])
    return g.subgraph([n for n in g.nodes if n in keep])
