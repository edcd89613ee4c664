"""Interval bounds on every activation, for lint's "neuron can never fire" check.

Starting from an assumed range for each graph input, every node maps elementwise lower and upper bounds
on its inputs to sound bounds on its outputs (sound: every value the node can produce over any number of
steps lies inside). Convolutions and pooling use per-channel bounds (looser, cheap). A node on a recurrent
edge, or whose rule makes no claim, yields None and everything downstream is left unjudged.

The rules form a registry keyed by primitive type (`register_bounds`); the built-in primitives register
theirs below through the same call. A spiking type without a rule still gets the bounds its spikes imply
(0 or its graded factor, no claim about firing). Any other type without a rule is not skipped silently:
`propagate` lists it in `unbounded` (lint reports it as NO_BOUNDS_RULE).

A rule is `rule(node, args, outs, dt, neurons, name) -> [(lo, hi) per output] or None`: `args` are the
(lo, hi) bounds of its inputs in edge order, `outs` its output shapes; a neuron that can prove some of its
neurons never fire records `neurons[name] = (never mask, max membrane, threshold)` (see `record_never`).

A leaky neuron started at v = 0 keeps its membrane inside the hull of 0 and its steady states
v_leak + r * I (beta in [0, 1)): with gain = dt*r/tau = r*(1 - beta) each step is the convex combination
v' = beta*v + (1 - beta)*(v_leak + r*I); resets only lower v (subtract) or follow a spike (zero). So it
can never fire when max(0, v_leak + max(r*I)) <= v_threshold.
"""

from __future__ import annotations

import functools
import operator
from typing import Callable

import numpy as np

from talon._registry import put
from talon.errors import TalonUsageError
from talon.ir import Graph, Node
from talon.sdk._graph import Shape, Topology

Bounds = tuple[np.ndarray, np.ndarray]
BoundsRule = Callable[..., "list[Bounds] | None"]
GELU_MIN = -0.1701  # min over x of x * Phi(x) is about -0.16997


def propagate(
    graph: Graph,
    shapes: dict[str, tuple[list[Shape], list[Shape]]],
    input_range: tuple[float, float] | dict[str, tuple[float, float]],
    only_for: list[str] | None = None,
    unbounded: dict[str, str] | None = None,
) -> tuple[dict[str, list[Bounds] | None], dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Returns ({node: output bounds or None}, {neuron node: (never-fires mask, max membrane, threshold)}).

    only_for: the nodes whose bounds are wanted; only they and the nodes upstream of them are bounded
    (default: every node). unbounded: filled with {node: type} for every node reached whose type has no
    bounds rule."""
    topo = Topology.of(graph)
    bounds: dict[str, list[Bounds] | None] = {}
    neurons: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    out_idx = graph.edge_output_index()
    wanted = None if only_for is None else topo.reachable(list(only_for), forward=False)
    with np.errstate(all="ignore"):  # overflow to inf is a valid (loose) bound
        for name in graph.topological_order():
            if wanted is None or name in wanted:
                _step(graph, name, shapes, input_range, topo, out_idx, bounds, neurons, unbounded)
    return bounds, neurons


def _step(graph, name, shapes, input_range, topo, out_idx, bounds, neurons, unbounded) -> None:
    """Bounds of one node's outputs from its producers' (None: not judged)."""
    node = graph.nodes[name]
    ins, outs = shapes[name]
    if node.type_name == "Input":
        lo, hi = input_range[name] if isinstance(input_range, dict) else input_range
        shape = outs[0]
        bounds[name] = [(np.full(shape, float(lo)), np.full(shape, float(hi)))]
        return
    args: list[Bounds] = []
    for i in topo.in_edge_ids[name]:
        src = graph.edges[i][0]
        b = None if i in topo.delayed else bounds.get(src)
        if b is None:
            args = []  # an input without bounds: none for this node either
            break
        args.append(b[out_idx[i]])
    rule = bounds_rule(node)
    if rule is None and unbounded is not None:
        unbounded[name] = node.type_name
    if not args:
        bounds[name] = None
        return
    try:
        result = rule(node, args, outs, graph.dt, neurons, name) if rule else None
        if result is not None:
            result = [(np.broadcast_to(lo, s), np.broadcast_to(hi, s)) for (lo, hi), s in zip(result, outs)]
    except (ValueError, FloatingPointError, OverflowError, MemoryError):
        result = None  # e.g. a shape too large for an array (padding 10**9): left unjudged
    bounds[name] = result


def _view(node, args, outs, dt, neurons, name):
    lo, hi = args[0]
    return [(lo.reshape(outs[0]), hi.reshape(outs[0]))]


def _dense(node, args, outs, dt, neurons, name):
    lo, hi = args[0]
    w = node.weight.astype(np.float64)
    wp, wn = np.maximum(w, 0), np.minimum(w, 0)
    b = getattr(node, "bias", None)
    b = 0.0 if b is None else b.astype(np.float64)
    return [(lo @ wp.T + hi @ wn.T + b, hi @ wp.T + lo @ wn.T + b)]


def _channel_bounds(lo: np.ndarray, hi: np.ndarray, zero: bool) -> Bounds:
    c = lo.shape[0]
    clo, chi = lo.reshape(c, -1).min(axis=1), hi.reshape(c, -1).max(axis=1)
    if zero:  # zero padding contributes zeros to windows
        clo, chi = np.minimum(clo, 0.0), np.maximum(chi, 0.0)
    return clo, chi


def _per_channel(values: np.ndarray, rank: int) -> np.ndarray:
    return values.reshape((-1,) + (1,) * (rank - 1))


def _conv_channels(weight: np.ndarray, bias: np.ndarray, groups: int, clo: np.ndarray, chi: np.ndarray) -> Bounds:
    w = weight.astype(np.float64).reshape(weight.shape[0], weight.shape[1], -1)
    wp, wn = np.maximum(w, 0).sum(axis=2), np.minimum(w, 0).sum(axis=2)  # (O, C/groups)
    o, cg = wp.shape
    group = np.arange(o) // (o // groups)
    glo, ghi = clo.reshape(groups, cg)[group], chi.reshape(groups, cg)[group]
    b = bias.astype(np.float64)
    return b + (wp * glo).sum(1) + (wn * ghi).sum(1), b + (wp * ghi).sum(1) + (wn * glo).sum(1)


def _conv(node, args, outs, dt, neurons, name):
    lo, hi = args[0]
    padding = node.padding if isinstance(node.padding, tuple) else (node.padding,)
    clo, chi = _channel_bounds(lo, hi, any(padding))
    olo, ohi = _conv_channels(node.weight, node.bias, node.groups, clo, chi)
    rank = len(outs[0])
    return [(_per_channel(olo, rank), _per_channel(ohi, rank))]


def _sepconv(node, args, outs, dt, neurons, name):
    lo, hi = args[0]
    clo, chi = _channel_bounds(lo, hi, any(node.padding))
    c = node.depthwise_weight.shape[0]
    dlo, dhi = _conv_channels(node.depthwise_weight, node.depthwise_bias, c, clo, chi)
    olo, ohi = _conv_channels(node.pointwise_weight, node.pointwise_bias, 1, dlo, dhi)
    return [(_per_channel(olo, 3), _per_channel(ohi, 3))]


def _monotone(fn: Callable[[np.ndarray], np.ndarray]):
    def rule(node, args, outs, dt, neurons, name):
        lo, hi = args[0]
        return [(fn(lo), fn(hi))]

    return rule


def _relu(node, args, outs, dt, neurons, name):
    s = node.negative_slope
    if s < 0:
        return None
    return _monotone(lambda x: np.maximum(x, 0) + s * np.minimum(x, 0))(node, args, outs, dt, neurons, name)


def _elu(node, args, outs, dt, neurons, name):
    a = node.alpha
    if a < 0:
        return None
    return _monotone(lambda x: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))))(node, args, outs, dt, neurons, name)


def _gelu(node, args, outs, dt, neurons, name):
    lo, hi = args[0]
    return [(np.where(lo >= 0, 0.0, GELU_MIN), np.maximum(hi, 0.0))]


def _softmax(node, args, outs, dt, neurons, name):
    return [(np.zeros(outs[0]), np.ones(outs[0]))]


def _prelu(node, args, outs, dt, neurons, name):
    w = node.weight.astype(np.float64)
    if np.any(w < 0):
        return None
    w = w if w.size == 1 else _per_channel(w, len(outs[0]))
    return _monotone(lambda x: np.maximum(x, 0) + w * np.minimum(x, 0))(node, args, outs, dt, neurons, name)


def _scale_interval(a: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> Bounds:
    x, y = a * lo, a * hi
    return np.minimum(x, y), np.maximum(x, y)


def _scale(node, args, outs, dt, neurons, name):
    lo, hi = args[0]
    return [_scale_interval(node.scale.astype(np.float64), lo, hi)]


def _batchnorm(node, args, outs, dt, neurons, name):
    lo, hi = args[0]
    rank = len(outs[0])
    a = node.weight.astype(np.float64) / np.sqrt(node.running_var.astype(np.float64) + node.eps)
    shift = node.bias.astype(np.float64) - a * node.running_mean.astype(np.float64)
    slo, shi = _scale_interval(_per_channel(a, rank), lo, hi)
    return [(slo + _per_channel(shift, rank), shi + _per_channel(shift, rank))]


def _pool(kind: str):
    def rule(node, args, outs, dt, neurons, name):
        lo, hi = args[0]
        pad = kind != "max" and any(getattr(node, "padding", (0, 0)))
        if kind == "avg":
            pad = pad and node.count_include_pad
        clo, chi = _channel_bounds(lo, hi, pad)
        if kind == "sum":  # kh*kw terms, each inside [clo, chi]
            kk = node.kernel_size[0] * node.kernel_size[1]
            clo, chi = kk * clo, kk * chi
        return [(_per_channel(clo, 3), _per_channel(chi, 3))]

    return rule


def _upsample(node, args, outs, dt, neurons, name):
    lo, hi = args[0]
    clo, chi = _channel_bounds(lo, hi, False)
    return [(_per_channel(clo, 3), _per_channel(chi, 3))]


def _skip(node, args, outs, dt, neurons, name):
    if node.skip_type == "passthrough":
        return _view(node, args, outs, dt, neurons, name)
    if node.skip_type == "residual":
        return [(sum(a[0] for a in args), sum(a[1] for a in args))]
    return [(np.concatenate([a[0] for a in args], 0), np.concatenate([a[1] for a in args], 0))]


def _concat(node, args, outs, dt, neurons, name):
    d = node.dim % len(outs[0])
    return [(np.concatenate([a[0] for a in args], d), np.concatenate([a[1] for a in args], d))]


def _split(node, args, outs, dt, neurons, name):
    lo, hi = args[0]
    d = node.dim % lo.ndim
    cuts = np.cumsum(node.split_sections)[:-1]
    return list(zip(np.split(lo, cuts, axis=d), np.split(hi, cuts, axis=d)))


def _delay(node, args, outs, dt, neurons, name):
    lo, hi = args[0]
    return [(np.minimum(lo, 0), np.maximum(hi, 0))]


def _summed(args: list[Bounds]) -> Bounds:
    return functools.reduce(operator.add, (a[0] for a in args)), functools.reduce(operator.add, (a[1] for a in args))


def _arr(value, shape, default: float = 0.0) -> np.ndarray:
    return np.broadcast_to(np.asarray(default if value is None else value, dtype=np.float64), shape)


def _spikes(node, never: np.ndarray, shape) -> list[Bounds]:
    g = float(getattr(node, "graded_spikes_factor", 1.0))
    return [(np.where(never, 0.0, min(0.0, g)), np.where(never, 0.0, max(0.0, g)))]


def record_never(neurons: dict, name: str, vmax: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """Record which neurons of `name` can never fire (max membrane `vmax` at or below threshold `thr`)."""
    # tolerance for float32 rounding of a membrane that approaches its bound
    never = vmax + 1e-6 * (np.abs(vmax) + np.abs(thr)) <= thr
    neurons[name] = (never, vmax, thr)
    return never


def _leaky_steady(r, v_leak, lo, hi) -> Bounds:
    rlo, rhi = _scale_interval(r, lo, hi)
    return np.minimum(0.0, v_leak + rlo), np.maximum(0.0, v_leak + rhi)


def _lif(node, args, outs, dt, neurons, name):
    shape = outs[0]
    lo, hi = _summed(args)
    tau = _arr(node.tau, shape)
    _, vmax = _leaky_steady(_arr(node.r, shape), _arr(node.v_leak, shape), lo, hi)
    thr = _arr(node.v_threshold, shape)
    # beta < 0 (tau < dt) oscillates: no claim about those neurons
    never = record_never(neurons, name, np.where(tau >= dt, vmax, np.inf), thr)
    return _spikes(node, never, shape)


def _if(node, args, outs, dt, neurons, name):
    shape = outs[0]
    lo, hi = _summed(args)
    _, rhi = _scale_interval(_arr(node.r, shape, 1.0) * dt, lo, hi)
    thr = _arr(node.v_threshold, shape)
    vmax = np.where(rhi <= 0, 0.0, np.inf)  # any positive drive accumulates without bound
    return _spikes(node, record_never(neurons, name, vmax, thr), shape)


def _cubalif(node, args, outs, dt, neurons, name):
    shape = outs[0]
    lo, hi = _summed(args)
    tau_syn = _arr(node.tau_syn, shape)
    w_in = tau_syn / dt if node.w_in is None else _arr(node.w_in, shape)
    ilo, ihi = _leaky_steady(w_in, np.zeros(shape), lo, hi)
    _, vmax = _leaky_steady(_arr(node.r, shape), _arr(node.v_leak, shape), ilo, ihi)
    ok = (tau_syn >= dt) & (_arr(node.tau_mem, shape) >= dt)
    never = record_never(neurons, name, np.where(ok, vmax, np.inf), _arr(node.v_threshold, shape))
    return _spikes(node, never, shape)


def _li(node, args, outs, dt, neurons, name):
    shape = outs[0]
    if np.any(_arr(node.tau, shape) < dt):
        return None
    lo, hi = _summed(args)
    return [_leaky_steady(_arr(node.r, shape), _arr(node.v_leak, shape), lo, hi)]


def _alif(node, args, outs, dt, neurons, name):
    """ALIF (docs/neurons/alif.md): u stays in the hull of 0 and x / current_decay, v in the hull of 0 and
    u / voltage_decay; with threshold >= 0 and threshold_step >= 0, th >= threshold and r >= 0, so a neuron
    whose largest voltage stays below its threshold never fires (s = v >= th + r: equality fires)."""
    shape = outs[0]
    _, hi = _summed(args)
    du, dv = _arr(node.current_decay, shape), _arr(node.voltage_decay, shape)
    th0, step = _arr(node.threshold, shape), _arr(node.threshold_step, shape)
    umax = np.where(hi <= 0, 0.0, np.where(du > 0, hi / np.where(du > 0, du, 1.0), np.inf))
    vmax = np.where(umax <= 0, 0.0, np.where(dv > 0, umax / np.where(dv > 0, dv, 1.0), np.inf))
    vmax = np.where((th0 >= 0) & (step >= 0), vmax, np.inf)
    # record_never's tolerance, with a strict comparison: a voltage reaching the threshold fires
    never = vmax + 1e-6 * (np.abs(vmax) + np.abs(th0)) < th0
    neurons[name] = (never, vmax, th0)
    return _spikes(node, never, shape)


def _integrator(node, args, outs, dt, neurons, name):
    # v starts at 0 and adds dt*r*I each step: bounded on a side only where no step can push it that way
    shape = outs[0]
    lo, hi = _summed(args)
    rlo, rhi = _scale_interval(_arr(node.r, shape) * dt, lo, hi)
    return [(np.where(rlo >= 0, 0.0, -np.inf), np.where(rhi <= 0, 0.0, np.inf))]


def _threshold(node, args, outs, dt, neurons, name):
    shape = outs[0]
    _, hi = args[0]
    never = hi <= _arr(node.v_threshold, shape)
    return [(np.zeros(shape), np.where(never, 0.0, 1.0))]


_RULES: dict[str, BoundsRule] = {}


def register_bounds(type_name: str, rule: BoundsRule, *, replace: bool = False) -> BoundsRule:
    """Give `type_name` its value-bounds rule (module docstring: the contract); returns the rule."""
    if not callable(rule):
        raise TalonUsageError(f"register_bounds({type_name!r}, ...) needs a callable rule, got {type(rule).__name__}")
    return put(_RULES, type_name, rule, what="a bounds rule", replace=replace)


def bounds_types() -> list[str]:
    """The types with a registered bounds rule, in registration order."""
    return list(_RULES)


def _spikes_only(node, args, outs, dt, neurons, name):
    """A spiking node's outputs are 0 or its graded factor, whatever it computes (no claim about firing)."""
    g = float(getattr(node, "graded_spikes_factor", 1.0))
    return [(np.full(s, min(0.0, g)), np.full(s, max(0.0, g))) for s in outs]


def _own_membrane_bounds(node, args, outs, dt, neurons, name):
    """A spiking neuron whose class bounds its own membrane: `membrane_bounds(dt, lo, hi) -> (lo, hi)` of
    its membrane given each step's summed input in [lo, hi]; it never fires where that maximum stays at or
    below its v_threshold."""
    shape = outs[0]
    lo, hi = _summed(args)
    _, vmax = node.membrane_bounds(dt, lo, hi)
    return _spikes(node, record_never(neurons, name, np.broadcast_to(vmax, shape), _arr(node.v_threshold, shape)), shape)


def bounds_rule(node: Node) -> BoundsRule | None:
    """The rule bounding `node`'s outputs: its type's registered rule; else, for a spiking type, its class's
    own `membrane_bounds` (with a `v_threshold`) when it defines one, or the bounds its spikes imply; else
    None (a nested graph or a type without a rule)."""
    rule = _RULES.get(node.type_name)
    if rule is None and node.spiking and not isinstance(node, Graph):
        if callable(getattr(type(node), "membrane_bounds", None)) and hasattr(node, "v_threshold"):
            return _own_membrane_bounds
        return _spikes_only
    return rule


register_bounds("Output", _view)
register_bounds("Flatten", _view)
register_bounds("Dropout", _view)
register_bounds("HybridRegion", _view)
register_bounds("Affine", _dense)
register_bounds("Linear", _dense)
register_bounds("SpikingAffine", _dense)
register_bounds("Conv1d", _conv)
register_bounds("Conv2d", _conv)
register_bounds("SConv", _conv)
register_bounds("SDConv", _conv)
register_bounds("SepConv2d", _sepconv)
register_bounds("ReLU", _relu)
register_bounds("Sigmoid", _monotone(lambda x: 1.0 / (1.0 + np.exp(-x))))
register_bounds("Tanh", _monotone(np.tanh))
register_bounds("ELU", _elu)
register_bounds("GELU", _gelu)
register_bounds("Softmax", _softmax)
register_bounds("PReLU", _prelu)
register_bounds("Scale", _scale)
register_bounds("BatchNorm1d", _batchnorm)
register_bounds("BatchNorm2d", _batchnorm)
register_bounds("MaxPool2d", _pool("max"))
register_bounds("AvgPool2d", _pool("avg"))
register_bounds("SumPool2d", _pool("sum"))
register_bounds("Upsample", _upsample)
register_bounds("Skip", _skip)
register_bounds("Concat", _concat)
register_bounds("ChannelSplit", _split)
register_bounds("Delay", _delay)
register_bounds("LIF", _lif)
register_bounds("IF", _if)
register_bounds("CubaLIF", _cubalif)
register_bounds("LI", _li)
register_bounds("ALIF", _alif)
register_bounds("Integrator", _integrator)
register_bounds("Threshold", _threshold)
