"""Hardware (fixed-point) numerics: the plan that turns a float graph into integers, and the rounding
that the CPU simulator applies around the bridge's runtime. docs/fixed_point.md is the specification;
this module implements it and the FPGA kernels must agree with it bit for bit.

How the simulator stays a single implementation of the maths: `plan_fixed_point` builds a *fixed-point
graph*, an ordinary talon.ir Graph whose every constant (weights, biases, thresholds, leak and gain
factors) lies exactly on its power-of-two grid. The bridge runtime runs that graph in float64, where
every product and sum of such values is exact (the plan checks the bit budget, < 53 bits), so the
runtime computes exactly the integer arithmetic of the specification scaled by powers of two. This
module adds only what is not arithmetic of any primitive: saturation of accumulators, rounding of each
node's output to its format, and rounding of neuron state between steps (CubaLIF: of its current too,
between the runtime's two public halves of the step, `integrate_current` and `fire`).

Recurrent graphs need nothing here beyond formats: the bridge's CyclicGraphExecutor already feeds each
delayed edge the source's previous output, which lies on the source's grid. Only neurons may carry a
loop (their output format does not depend on their inputs, so every format in the loop is known
before the loop is planned).

"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from talon.backend.cpu import exact_products
from talon.bridge.modules import RUNTIME_BUILDERS, StatefulRuntime
from talon.errors import BackendError
from talon.ir import Graph, Node
from talon.sdk.cost import cost_entry, graph_costs
from talon.sdk.fixed_point import (
    DEFAULT_BITS, GRID_PRESERVING, MIN_WEIGHT_BITS_FOR_BIAS, bias_to_ints, exact_sum_bits, frac_for_range, quantize_to_ints, saturation,
    saturation_message, spike_frac, weight_frac_holding_bias,
)
from talon.ir.primitives.neurons import coefficients

# The version of these rules is talon.backend.descriptor.FIXED_POINT_VERSION (every descriptor records
# it, whatever backend wrote it): bump it with any change here or in talon.sdk.fixed_point.

NEURON_TYPES = ("LIF", "IF", "CubaLIF", "LI", "Integrator")
SPIKING_NEURONS = ("LIF", "IF", "CubaLIF")
#: Nodes whose output is re-rounded to their own calibrated activation format.
REQUANTIZING = ("AvgPool2d", "SumPool2d", "Skip", "Concat", "ReLU")
#: Elementwise products y = x * factor whose factor tensor is quantised like a synaptic weight (fan-in 1).
#: The cost table counts them as elementwise operations, so it names no weight fields for them. Scale is
#: snnTorch's one-to-one recurrence (RLeaky/RSynaptic with all_to_all=False).
ELEMENTWISE_WEIGHTS = {"Scale": ("scale",)}
UNSUPPORTED_WHY = {
    "Sigmoid": "transcendental functions need a lookup-table specification",
    "Tanh": "transcendental functions need a lookup-table specification",
    "Softmax": "transcendental functions need a lookup-table specification",
    "GELU": "transcendental functions need a lookup-table specification",
    "ELU": "transcendental functions need a lookup-table specification",
    "PReLU": "per-channel slopes are not specified in fixed point yet",
    "BatchNorm1d": "fold batch norm into the preceding layer first (sdk fold_batchnorm)",
    "BatchNorm2d": "fold batch norm into the preceding layer first (sdk fold_batchnorm)",
    "LayerNorm": "normalisation needs a division/square-root specification",
}


@dataclass(frozen=True)
class FixedPointConfig:
    """Bit widths of the hardware datapath (docs/fixed_point.md, section "Formats").

    SpikingAffine nodes use their own `weight_bits` and `accumulator_bits` fields instead of the
    defaults here. Limits keep the float64 emulation exact: weights <= 16 bits, activations and
    membranes <= 24 bits, accumulators <= 48 bits, coefficients <= 20 fractional bits.
    """

    weight_bits: int = DEFAULT_BITS["weight_bits"]
    activation_bits: int = DEFAULT_BITS["activation_bits"]
    accumulator_bits: int = DEFAULT_BITS["accumulator_bits"]
    bias_bits: int = DEFAULT_BITS["bias_bits"]
    membrane_bits: int = DEFAULT_BITS["membrane_bits"]
    coefficient_frac_bits: int = DEFAULT_BITS["coefficient_frac_bits"]
    membrane_headroom_bits: int = 1

    def __post_init__(self) -> None:
        limits = {
            "weight_bits": (2, 16),
            "activation_bits": (2, 24),
            "accumulator_bits": (4, 48),
            "bias_bits": (2, 24),
            "membrane_bits": (4, 24),
            "coefficient_frac_bits": (1, 20),
            "membrane_headroom_bits": (0, 8),
        }
        for name, (lo, hi) in limits.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise BackendError(f"FixedPointConfig.{name} must be an integer in [{lo}, {hi}], got {v!r}")

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Format:
    """A signed two's-complement fixed-point format: integers of `bits` bits, value = int * 2**-frac."""

    bits: int
    frac: int

    @property
    def lo(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def hi(self) -> int:
        return (1 << (self.bits - 1)) - 1

    @property
    def lsb(self) -> float:
        return math.ldexp(1.0, -self.frac)

    def to_list(self) -> list[int]:
        return [self.bits, self.frac]

    def __str__(self) -> str:
        return f"Q{self.bits}.{self.frac}"


def quantize_array(x: np.ndarray, fmt: Format) -> np.ndarray:
    """Offline constants: int64 = saturate(round_half_even(x * 2**frac)) (talon.sdk.fixed_point's rule,
    shared with quantize_weights)."""
    return quantize_to_ints(x, fmt.bits, fmt.frac)


def dequantize(ints: np.ndarray, frac: int, dtype: Any = np.float64) -> np.ndarray:
    return np.ldexp(np.asarray(ints, dtype=np.float64), -frac).astype(dtype)


# -- neuron coefficient reproduction ------------------------------------------------------------------
# The runtime derives beta = 1 - dt/tau and gain = dt*r/tau in float64 (docs/runtime.md). We choose
# tau and r so that those expressions give exactly the quantised coefficients.


def _nudge(target: np.ndarray, start: np.ndarray, fn: Any, what: str) -> np.ndarray:
    """Find x near `start` with fn(x) == target exactly, moving x one ulp at a time (vectorised)."""
    x = start.astype(np.float64).copy()
    for direction in (None, np.inf, -np.inf):
        bad = fn(x) != target
        if not bad.any():
            return x
        if direction is None:
            continue
        trial = start.astype(np.float64).copy()
        for _ in range(256):
            trial[bad] = np.nextafter(trial[bad], direction)
            ok = bad & (fn(trial) == target)
            x[ok] = trial[ok]
            bad &= ~ok
            if not bad.any():
                return x
    raise BackendError(f"cannot represent the quantised {what} exactly through the runtime's float64 formula")


def tau_for_beta(beta_q: np.ndarray, dt: float) -> np.ndarray:
    """tau with float64(1 - dt/tau) == beta_q exactly (beta_q == 1 gives tau = inf)."""
    one_minus = 1.0 - beta_q
    with np.errstate(divide="ignore"):
        start = np.where(one_minus == 0, np.inf, dt / np.where(one_minus == 0, 1.0, one_minus))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _nudge(beta_q, start, lambda t: 1.0 - dt / t, "leak factor beta")


def r_for_gain(gain_q: np.ndarray, tau: np.ndarray | None, dt: float, decay: str = "beta", tau_name: str = "tau") -> np.ndarray:
    """r with float64(dt*r/tau) == gain_q (or dt*r == gain_q when the neuron has no tau). `decay` and
    `tau_name` name the coefficient and field in errors (CubaLIF's current: alpha, tau_syn)."""
    if tau is None:
        return _nudge(gain_q, gain_q / dt, lambda r: dt * r, "input gain")
    finite = np.isfinite(tau)
    if not finite.all():
        raise BackendError(f"a neuron with {decay} == 1 after quantisation ({tau_name} = inf) cannot carry a finite input gain; "
                           f"use IF/Integrator or a smaller {tau_name}")
    with np.errstate(over="ignore"):
        return _nudge(gain_q, gain_q * tau / dt, lambda r: dt * r / tau, "input gain")


def _exact_r(gain_q: np.ndarray, tau: np.ndarray, dt: float, tries: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(r, found): r within `tries` ulps of gain_q * tau / dt with float64(dt*r/tau) == gain_q, where one is."""
    start = gain_q * tau / dt
    out, found = start.copy(), np.zeros(start.shape, bool)
    for direction in (np.inf, -np.inf):
        trial = start.copy()
        for _ in range(tries):
            hit = ~found & (dt * trial / tau == gain_q)
            out[hit], found = trial[hit], found | hit
            trial = np.nextafter(trial, direction)
    return out, found


def tau_and_r(beta_q: np.ndarray, gain_q: np.ndarray, dt: float, decay: str = "beta", tau_name: str = "tau", search: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(tau, r) with float64(1 - dt/tau) == beta_q and float64(dt*r/tau) == gain_q exactly.

    tau_for_beta's tau usually admits such an r. When it does not (the products dt*r step past the value
    the division needs: NIR graphs with dt = 1e-4 hit this), many tau give the same beta, since 1 - dt/tau
    rounds: the search walks them, nearest first, for one that admits an exact r."""
    tau = tau_for_beta(beta_q, dt)
    try:
        return tau, r_for_gain(gain_q, tau, dt, decay, tau_name)
    except BackendError:
        if not np.all(np.isfinite(tau)):
            raise
    tau, gain_q, beta_q = (np.array(a, dtype=np.float64) for a in np.broadcast_arrays(tau, gain_q, beta_q))
    r, todo = _exact_r(gain_q, tau, dt)
    todo = ~todo
    for direction in (np.inf, -np.inf):
        trial, alive = tau.copy(), todo.copy()
        for _ in range(search):
            if not alive.any():
                break
            trial = np.nextafter(trial, direction)
            alive &= 1.0 - dt / trial == beta_q  # past the tau that give beta_q: this direction is done
            r_try, ok = _exact_r(gain_q, trial, dt, tries=2)
            hit = alive & ok
            tau[hit], r[hit] = trial[hit], r_try[hit]
            todo &= ~hit
            alive &= ~hit
    if todo.any():
        raise BackendError(f"cannot represent the quantised {decay} and its input gain exactly through the runtime's float64 formulas "
                           f"(1 - dt/{tau_name}, dt*r/{tau_name}) for {int(todo.sum())} neuron(s); try another dt (a power of two is exact)")
    return tau, r


# -- the plan -----------------------------------------------------------------------------------------


@dataclass
class NodePlan:
    """Everything hardware needs for one node in fixed point (docs/fixed_point.md, per node type)."""

    name: str
    type_name: str
    kind: str  # input | synaptic | neuron | threshold | pass | requant
    out_format: Format
    in_formats: list[Format] = field(default_factory=list)
    #: integer tensors (weights, biases, thresholds, leak and gain factors, ...)
    ints: dict[str, np.ndarray] = field(default_factory=dict)
    #: fractional bits of each integer tensor in `ints`
    fracs: dict[str, int] = field(default_factory=dict)
    acc_bits: int | None = None
    acc_frac: int | None = None
    membrane: Format | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    #: CubaLIF: the format of its synaptic current (the state its inputs are integrated into)
    current: Format | None = None
    #: positions (in edge order) of the inputs that carry their source's output of the previous step
    delayed_inputs: list[int] = field(default_factory=list)

    @property
    def input_state(self) -> Format | None:
        """The state a neuron integrates its inputs into: the current (CubaLIF) or the membrane."""
        return self.current if self.current is not None else self.membrane

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type_name,
            "kind": self.kind,
            "out_format": self.out_format.to_list(),
            "in_formats": [f.to_list() for f in self.in_formats],
            "fracs": dict(self.fracs),
            "acc_bits": self.acc_bits,
            "acc_frac": self.acc_frac,
            "membrane": self.membrane.to_list() if self.membrane else None,
            "current": self.current.to_list() if self.current else None,
            "attrs": dict(self.attrs),
            "delayed_inputs": list(self.delayed_inputs),
        }


@dataclass
class Calibration:
    """Ranges observed in a float simulation: max |output| per node, max |membrane| per neuron and
    max |synaptic current| per CubaLIF."""

    max_abs_output: dict[str, float]
    max_abs_state: dict[str, float]
    description: str = ""
    max_abs_current: dict[str, float] = field(default_factory=dict)


@dataclass
class FixedPointPlan:
    """The fixed-point realisation of a graph: formats and integers per node, and the on-grid Graph
    that the runtime executes in float64 (`graph`)."""

    config: FixedPointConfig
    nodes: dict[str, NodePlan]
    order: list[str]
    graph: Graph
    calibration: Calibration

    def format_of(self, name: str) -> Format:
        return self.nodes[name].out_format

    def summary(self) -> str:
        rows = []
        for name in self.order:
            p = self.nodes[name]
            extra = f" acc Q{p.acc_bits}.{p.acc_frac}" if p.acc_bits else ""
            extra += f" membrane {p.membrane}" if p.membrane else ""
            extra += f" current {p.current}" if p.current else ""
            rows.append(f"{name:<16} {p.type_name:<12} {p.kind:<9} out {p.out_format}{extra}")
        return "\n".join(rows)


def _check_finite(name: str, node: Node, dt: float) -> None:
    """Every constant that becomes an integer must be finite. Neurons are checked on their derived
    coefficients, where an infinite tau is meaningful (beta = 1) and quantises fine."""
    if node.type_name in NEURON_TYPES:
        c = coefficients(node, dt)
        values = {k: getattr(c, k) for k in ("beta", "leak", "gain", "alpha", "gain_in")}
        values.update({k: getattr(node, k, None) for k in ("v_threshold", "v_reset", "graded_spikes_factor")})
    else:
        values = node.field_values()
    for key, value in values.items():
        if isinstance(value, (float, np.floating, np.ndarray)) and not isinstance(value, bool):
            arr = np.asarray(value)
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise BackendError(f"fixed-point mode: node {name!r} {key} holds NaN or Inf, which has no fixed-point value; "
                                   "give it finite values (or simulate with mode='float')")


def check_supported(graph: Graph) -> None:
    for name, node in graph.nodes.items():
        t = node.type_name
        if isinstance(node, Graph):
            raise BackendError(f"fixed-point mode: node {name!r} is a nested graph; flatten it first")
        if t in UNSUPPORTED_WHY:
            raise BackendError(f"fixed-point mode does not support node {name!r} ({t}): {UNSUPPORTED_WHY[t]}; simulate it with mode='float'")
        entry = cost_entry(t)
        known = t in NEURON_TYPES or t in GRID_PRESERVING or t in REQUANTIZING or t in ELEMENTWISE_WEIGHTS or t in ("Input", "Threshold")
        if not known and not (entry and entry.weight_fields):
            raise BackendError(f"fixed-point mode does not support node {name!r} ({t}); simulate it with mode='float'")
        if t == "Upsample" and node.mode != "nearest":
            raise BackendError(f"fixed-point mode: Upsample {name!r} must use mode 'nearest' (bilinear interpolation is not specified)")
        _check_finite(name, node, float(graph.dt))
    for i in graph.delayed_edges():
        src, dst = graph.edges[i]
        t = graph.nodes[src].type_name
        if t not in NEURON_TYPES:
            # A Delay (the only other stateful node) keeps its input's format, which inside a loop would
            # depend on its own output: no format could be fixed before the loop runs.
            raise BackendError(
                f"fixed-point mode: the recurrent loop {src!r} -> {dst!r} is carried by {src!r} ({t}); in fixed point only a "
                f"neuron ({', '.join(NEURON_TYPES)}) may carry a loop: put the neuron at the point where the loop closes, "
                f"or simulate it with mode='float'"
            )


def _spike_format(name: str, node: Node, config: FixedPointConfig) -> Format:
    """A spike's format Q(activation_bits).g (talon.sdk.fixed_point.spike_frac; spikes of factor 1 are the integer 1)."""
    g = spike_frac(node.graded_spikes_factor, config.activation_bits)
    if g is None:
        gsf = float(node.graded_spikes_factor)
        g_near = frac_for_range(abs(gsf), config.activation_bits)
        nearest = math.ldexp(float(quantize_to_ints(np.array([gsf]), config.activation_bits, g_near)[0]), -g_near)
        raise BackendError(f"fixed-point mode: node {name!r} graded_spikes_factor {gsf!r} has no exact "
                           f"{config.activation_bits}-bit value (a spike would change size; the nearest is {nearest!r}); use a factor with "
                           "fewer significant bits or raise activation_bits")
    return Format(config.activation_bits, g)


def _check_coefficient(name: str, key: str, value: Any, c: int) -> None:
    """Coefficients are Q(c+2).c words, [-2, 2): saturating a larger one would change the neuron."""
    if value is not None and np.size(value) and float(np.max(np.abs(value))) >= 2.0:
        worst = float(np.asarray(value, np.float64).ravel()[int(np.argmax(np.abs(value)))])
        nearest = math.copysign(math.ldexp((1 << (c + 1)) - 1, -c), worst)
        raise BackendError(f"fixed-point mode: node {name!r} coefficient {key} reaches {abs(worst):g}, outside the "
                           f"coefficient range [-2, 2) (docs/fixed_point.md section 5), where the nearest representable value is {nearest:.6g}; "
                           "move the gain into the preceding layer's weights")


def _check_exact_update(name: str, state: Format, in_fmts: list[Format], c: int, what: str) -> None:
    """The float64 update of a neuron state (coefficient of c+2 bits times the state or an input, summed)
    must stay below 53 significant bits for the runtime to compute it exactly (section 7)."""
    widest_int = max([state.bits - state.frac] + [f.bits - f.frac for f in in_fmts])
    finest = max([state.frac] + [f.frac for f in in_fmts])
    need = widest_int + finest + c + 3 + max(0, len(in_fmts) - 1)
    if need > 53:
        raise BackendError(
            f"fixed-point mode: {name!r} needs {need} bits for an exact {what} update (> 53): its input formats "
            f"{[str(f) for f in in_fmts]} are too far from its {what} format {state}; lower membrane_bits or coefficient_frac_bits"
        )


def plan_fixed_point(graph: Graph, calibration: Calibration, config: FixedPointConfig | None = None) -> FixedPointPlan:
    """Assign formats and quantise every constant of `graph` (docs/fixed_point.md, "Plan")."""
    config = config or FixedPointConfig()
    check_supported(graph)
    costs = graph_costs(graph)
    order = graph.topological_order()
    dt = float(graph.dt)
    c = config.coefficient_frac_bits
    coef_fmt = Format(c + 2, c)  # coefficients in [-2, 2)
    cal = calibration
    succ: dict[str, list[str]] = {n: [] for n in graph.nodes}
    in_edges: dict[str, list[int]] = {n: [] for n in graph.nodes}
    for i, (s, d) in enumerate(graph.edges):
        succ[s].append(d)
        in_edges[d].append(i)
    delayed = set(graph.delayed_edges())

    # 1. neuron state formats and output formats (they depend only on parameters and calibration, so
    #    the formats of every value carried around a recurrent loop are known before it is planned)
    membranes: dict[str, Format] = {}
    currents: dict[str, Format] = {}
    neuron_out: dict[str, Format] = {}
    for name, node in graph.nodes.items():
        if node.type_name not in NEURON_TYPES:
            continue
        rng = [cal.max_abs_state.get(name, 0.0), cal.max_abs_output.get(name, 0.0) if node.type_name in ("LI", "Integrator") else 0.0]
        for fld in ("v_threshold", "v_reset", "v_leak"):
            v = getattr(node, fld, None)
            if v is not None and np.size(v):
                rng.append(float(np.max(np.abs(v))))
        r = max(rng)
        membranes[name] = Format(config.membrane_bits, frac_for_range(r, config.membrane_bits) - config.membrane_headroom_bits)
        if node.type_name == "CubaLIF":
            ri = cal.max_abs_current.get(name, 0.0)
            currents[name] = Format(config.membrane_bits, frac_for_range(ri, config.membrane_bits) - config.membrane_headroom_bits)
        neuron_out[name] = _spike_format(name, node, config) if node.type_name in SPIKING_NEURONS else membranes[name]
    # what a synaptic layer feeding this neuron delivers into: the current (CubaLIF) or the membrane
    input_state = {n: currents.get(n, membranes[n]) for n in membranes}

    plans: dict[str, NodePlan] = {}
    new_nodes: dict[str, Node] = {}
    for name in order:
        node = graph.nodes[name]
        t = node.type_name
        srcs = [graph.edges[i][0] for i in in_edges[name]]
        late = [k for k, i in enumerate(in_edges[name]) if i in delayed]
        # a delayed input comes from a neuron planned later in the order: its format is known from step 1
        in_fmts = [plans[s].out_format if s in plans else neuron_out[s] for s in srcs]
        observed = cal.max_abs_output.get(name, 0.0)
        act_fmt = Format(config.activation_bits, frac_for_range(observed, config.activation_bits))
        entry = cost_entry(t)
        weight_fields = ELEMENTWISE_WEIGHTS.get(t) or (entry.weight_fields if entry else ())

        if t == "Input":
            plans[name] = NodePlan(name, t, "input", act_fmt)
            new_nodes[name] = node
        elif weight_fields:
            plans[name], new_nodes[name] = _plan_synaptic(name, node, weight_fields, in_fmts[0], act_fmt, succ[name], input_state, config, costs[name].fan_in)
        elif t in NEURON_TYPES:
            try:
                plans[name], new_nodes[name] = _plan_neuron(name, node, in_fmts, membranes[name], currents.get(name), coef_fmt, dt, config)
            except BackendError as exc:
                if repr(name) in str(exc):
                    raise
                # the coefficient helpers do not know the node: name it
                raise BackendError(f"fixed-point mode: node {name!r} ({t}): {exc}") from None
            if plans[name].out_format != neuron_out[name]:  # pragma: no cover - both come from _spike_format
                raise BackendError(f"fixed-point mode: internal error: {name!r} changed its output format while planned")
        elif t == "Threshold":
            fin = in_fmts[0]
            msg = saturation_message(name, "v_threshold", node.v_threshold, fin.bits + 1, fin.frac, f"the comparison word, twice the input format {fin},")
            if msg:
                raise BackendError(f"fixed-point mode: {msg}; the threshold exceeds every input the calibration saw: calibrate on inputs that reach it")
            thr_i = quantize_array(node.v_threshold, Format(fin.bits + 1, fin.frac))
            plans[name] = NodePlan(name, t, "threshold", Format(2, 0), in_fmts, {"v_threshold": thr_i}, {"v_threshold": fin.frac})
            new_nodes[name] = node.replace(v_threshold=dequantize(thr_i, fin.frac, np.float32))
        elif t in GRID_PRESERVING or (t == "ReLU" and node.negative_slope == 0.0) or (t == "Skip" and node.skip_type == "passthrough"):
            fmt = in_fmts[0]
            plans[name] = NodePlan(name, t, "pass", fmt, in_fmts)
            if t == "Delay":
                # not a rule, a record: hardware needs the per-element delays (whole steps, an integer array
                # field that the descriptor carries only through the plan's integers)
                plans[name].ints["delay"], plans[name].fracs["delay"] = np.asarray(node.delay, np.int64), 0
            new_nodes[name] = node
        elif t in REQUANTIZING:
            ints, fracs, changes = {}, {}, {}
            if t == "ReLU":  # leaky ReLU: the slope is a coefficient
                _check_coefficient(name, "negative_slope", node.negative_slope, c)
                s_i = int(quantize_array(np.array([node.negative_slope]), coef_fmt)[0])
                ints["negative_slope"], fracs["negative_slope"] = np.array([s_i]), c
                changes["negative_slope"] = math.ldexp(float(s_i), -c)
            plans[name] = NodePlan(name, t, "requant", act_fmt, in_fmts, ints, fracs)
            new_nodes[name] = node.replace(**changes) if changes else node
        else:  # pragma: no cover - check_supported covers every type
            raise BackendError(f"fixed-point mode does not support node {name!r} ({t})")
        plans[name].delayed_inputs = late

    qgraph = Graph({n: new_nodes[n] for n in graph.nodes}, list(graph.edges), dt=graph.dt, metadata={**graph.metadata, "fixed_point": config.to_dict()})
    return FixedPointPlan(config, plans, order, qgraph, cal)


def _refuse_bias(name: str, field_name: str, b: Any, acc_bits: int, acc_frac: int) -> None:
    """BackendError for a bias that no weight grid lets the accumulator hold (talon.sdk.fixed_point)."""
    why = (f"its {acc_bits}-bit accumulator, whose step 2^-{acc_frac} is set by the input format and the weights' "
           f"({acc_frac} fractional bits),")
    msg = saturation_message(name, field_name, b, acc_bits, acc_frac, why)
    raise BackendError(f"fixed-point mode: {msg}; a coarser weight grid would leave the largest weight fewer than "
                       f"{MIN_WEIGHT_BITS_FOR_BIAS} significant bits: raise accumulator_bits")


def _bias_ints(name: str, field_name: str, b: Any, unit_frac: int, bias_bits: int, acc_bits: int) -> tuple[np.ndarray, int]:
    """A bias in the accumulator's units (talon.sdk.fixed_point.bias_to_ints: never saturated to
    `bias_bits`, only rounded; the weights' grid was chosen so that the accumulator holds it)."""
    if saturation(b, acc_bits, unit_frac) is not None:  # pragma: no cover - weight_frac_holding_bias chose unit_frac
        _refuse_bias(name, field_name, b, acc_bits, unit_frac)
    return bias_to_ints(b, unit_frac, bias_bits, acc_bits)


def _plan_synaptic(
    name: str, node: Node, weight_fields: tuple[str, ...], fin: Format, act_fmt: Format, consumers: list[str],
    input_state: dict[str, Format], config: FixedPointConfig, fan_in: float,
) -> tuple[NodePlan, Node]:
    t = node.type_name
    wbits = getattr(node, "weight_bits", config.weight_bits) if t == "SpikingAffine" else config.weight_bits
    abits = getattr(node, "accumulator_bits", config.accumulator_bits) if t == "SpikingAffine" else config.accumulator_bits
    if wbits > 16 or abits > 48:
        raise BackendError(
            f"fixed-point mode: {name!r} has weight_bits={wbits}, accumulator_bits={abits}; the simulator supports "
            f"at most 16 and 48 (docs/fixed_point.md, section 7)"
        )
    ints: dict[str, np.ndarray] = {}
    fracs: dict[str, int] = {}
    changes: dict[str, Any] = {}
    frac_in = fin.frac
    bias_width = 0  # bits of the widest bias integer: the exact sum must hold it too
    grids: dict[str, int] = {}  # each bias's grid 2^-f_b (its integers are in the accumulator's units)
    bias_for = {"weight": "bias", "depthwise_weight": "depthwise_bias", "pointwise_weight": "pointwise_bias"}
    for wf in weight_fields:  # SepConv2d: depthwise then pointwise; the second stage reads the exact first
        w = np.asarray(getattr(node, wf), np.float64)
        bf = bias_for.get(wf)
        b = getattr(node, bf, None) if bf else None
        w_max = float(np.max(np.abs(w))) if w.size else 0.0
        b_max = float(np.max(np.abs(b))) if b is not None and np.size(b) else 0.0
        f_w, ok = weight_frac_holding_bias(w_max, b_max, wbits, abits, frac_in)
        if not ok:
            _refuse_bias(name, bf, b, abits, frac_in + frac_for_range(w_max, wbits))
        wfmt = Format(wbits, f_w)
        wi = quantize_array(w, wfmt)
        ints[wf], fracs[wf] = wi, wfmt.frac
        changes[wf] = dequantize(wi, wfmt.frac, np.float32)
        frac_in = frac_in + wfmt.frac
        if b is not None:
            bi, grids[f"{bf}_grid_frac"] = _bias_ints(name, bf, b, frac_in, min(config.bias_bits, abits), abits)
            ints[bf], fracs[bf] = bi, frac_in
            changes[bf] = dequantize(bi, frac_in, np.float32)
            bias_width = max(bias_width, int(np.max(np.abs(bi), initial=0)).bit_length() + 1)
    acc_frac = frac_in
    # exactness of the float64 sums before saturation
    need = max(exact_sum_bits(fin.bits, wbits * len(weight_fields), fan_in), bias_width + 1)
    if need > 53:
        raise BackendError(f"fixed-point mode: {name!r} needs {need} bits of exact accumulation (> 53); reduce activation or weight bits")
    neuron_consumers = [d for d in consumers if d in input_state]
    if consumers and len(neuron_consumers) == len(consumers):
        # delivered at the precision of the state it is integrated into (membrane, or CubaLIF's current)
        out = Format(config.membrane_bits, min(input_state[d].frac for d in neuron_consumers))
    else:
        out = act_fmt
    plan = NodePlan(name, t, "synaptic", out, [fin], ints, fracs, acc_bits=abits, acc_frac=acc_frac, attrs={"weight_bits": wbits, **grids})
    return plan, node.replace(**changes)


def _plan_neuron(
    name: str, node: Node, in_fmts: list[Format], mfmt: Format, cfmt: Format | None, coef_fmt: Format, dt: float, config: FixedPointConfig,
) -> tuple[NodePlan, Node]:
    """Quantise a neuron's coefficients and constants (docs/fixed_point.md section 5, rule 4) and choose
    the on-grid node whose runtime coefficients are exactly those integers times 2^-c."""
    t = node.type_name
    c = coef_fmt.frac
    co = coefficients(node, dt)  # the one derivation of beta, gain (and CubaLIF's alpha, gain_in)
    ints: dict[str, np.ndarray] = {}
    fracs: dict[str, int] = {}
    changes: dict[str, Any] = {}
    for key in ("beta", "gain", "alpha", "gain_in"):
        _check_coefficient(name, key, getattr(co, key), c)
    if co.beta is not None:
        bi = quantize_array(co.beta, coef_fmt)
        beta_q = dequantize(bi, c)
        ints["beta"], fracs["beta"] = bi, c
    gi = quantize_array(co.gain, coef_fmt)
    gain_q = dequantize(gi, c)
    ints["gain"], fracs["gain"] = gi, c
    if co.beta is not None:
        tau_q, changes["r"] = tau_and_r(beta_q, gain_q, dt, tau_name="tau_mem" if t == "CubaLIF" else "tau")
        changes["tau_mem" if t == "CubaLIF" else "tau"] = tau_q
    else:
        changes["r"] = r_for_gain(gain_q, None, dt)
    if t == "CubaLIF":
        # The current's decay alpha = 1 - dt/tau_syn and input gain dt*w_in/tau_syn, reproduced exactly
        # through the same float64 formulas as beta and gain. w_in None means a gain of exactly 1.
        ai = quantize_array(co.alpha, coef_fmt)
        ints["alpha"], fracs["alpha"] = ai, c
        gain_in = np.ones(np.shape(co.alpha)) if co.gain_in is None else co.gain_in
        gii = quantize_array(gain_in, coef_fmt)
        ints["gain_in"], fracs["gain_in"] = gii, c
        if node.w_in is not None:
            changes["tau_syn"], changes["w_in"] = tau_and_r(dequantize(ai, c), dequantize(gii, c), dt, decay="alpha", tau_name="tau_syn")
        else:
            changes["tau_syn"] = tau_for_beta(dequantize(ai, c), dt)
    if getattr(node, "v_leak", None) is not None:
        # The leak enters as one constant per neuron, L = (1 - beta) * v_leak, in the membrane format;
        # v_leak is chosen so that the runtime's float64 (1 - beta_q) * v_leak gives L exactly.
        one_minus, v_leak = np.broadcast_arrays(1.0 - dequantize(ints["beta"], c), np.asarray(node.v_leak, np.float64))
        msg = saturation_message(name, "leak (1 - beta) * v_leak", one_minus * v_leak, mfmt.bits, mfmt.frac, f"the membrane format {mfmt}")
        if msg:
            raise BackendError(f"fixed-point mode: {msg}; raise membrane_bits or membrane_headroom_bits")
        li = quantize_array(one_minus * v_leak, mfmt)
        lq = dequantize(li, mfmt.frac)
        ints["leak"], fracs["leak"] = li, mfmt.frac
        if np.any((one_minus == 0) & (lq != 0)):
            raise BackendError(f"fixed-point mode: {name!r} has beta == 1 after quantisation but a non-zero leak")
        safe = np.where(one_minus == 0, 1.0, one_minus)
        found = _nudge(lq, lq / safe, lambda v: one_minus * v, "leak term")
        changes["v_leak"] = np.where(one_minus == 0, 0.0, found)
    for fld in ("v_threshold", "v_reset"):
        v = getattr(node, fld, None)
        if v is None:
            continue
        vi = quantize_array(v, mfmt)
        ints[fld], fracs[fld] = vi, mfmt.frac
        changes[fld] = dequantize(vi, mfmt.frac)
    attrs: dict[str, Any] = {}
    out = mfmt
    if t in SPIKING_NEURONS:
        gfmt = _spike_format(name, node, config)
        gq = int(quantize_array(np.array([float(node.graded_spikes_factor)]), gfmt)[0])
        ints["graded_spikes_factor"], fracs["graded_spikes_factor"] = np.array([gq]), gfmt.frac
        changes["graded_spikes_factor"] = math.ldexp(float(gq), -gfmt.frac)
        out = gfmt
        attrs = {"reset_mode": node.reset_mode, "reset_delay": bool(node.reset_delay)}
        thr = ints.get("v_threshold")
        if thr is not None and np.any(thr >= mfmt.hi):
            raise BackendError(f"fixed-point mode: {name!r}: the threshold does not fit the membrane format {mfmt}")
    if cfmt is not None:
        # two exact updates: the current from the inputs, then the membrane from the rounded current
        _check_exact_update(name, cfmt, in_fmts, c, "current")
        _check_exact_update(name, mfmt, [cfmt], c, "membrane")
    else:
        _check_exact_update(name, mfmt, in_fmts, c, "membrane")
    plan = NodePlan(name, t, "neuron", out, list(in_fmts), ints, fracs, membrane=mfmt, attrs=attrs, current=cfmt)
    return plan, node.replace(**changes)


# -- rounding applied around the runtime (torch) ------------------------------------------------------


# Scaling by 2**frac is a multiplication by a Python float holding that power of two: exactly what
# torch.ldexp computes (x * 2**frac), without building an exponent tensor and a pow on every call. Each
# function allocates once and works in place on its own result (never on the caller's tensor).


def round_half_up(x: Any, fmt: Format) -> Any:
    """Activation rounding: saturate(floor(x * 2**frac + 1/2)) * 2**-frac (exact in float64)."""
    return _round_half_up_(torch.mul(x, math.ldexp(1.0, fmt.frac)), fmt)


def _round_half_up_(scaled: Any, fmt: Format) -> Any:
    """round_half_up in place on a tensor already multiplied by 2**frac."""
    return scaled.add_(0.5).floor_().clamp_(fmt.lo, fmt.hi).mul_(math.ldexp(1.0, -fmt.frac))


def round_ceil(x: Any, fmt: Format) -> Any:
    """Membrane rounding: saturate(ceil(x * 2**frac)) * 2**-frac (exact in float64)."""
    y = torch.mul(x, math.ldexp(1.0, fmt.frac)).ceil_()
    return y.clamp_(fmt.lo, fmt.hi).mul_(math.ldexp(1.0, -fmt.frac))


def saturate_accumulator(x: Any, frac: int, bits: int) -> Any:
    """Clamp an exact accumulator value (a multiple of 2**-frac) to `bits` signed bits."""
    lim = math.ldexp(1.0, bits - 1 - frac)
    return x.clamp(-lim, lim - math.ldexp(1.0, -frac))


def synaptic_output(x: Any, plan: NodePlan) -> Any:
    """Accumulator saturation then rounding to the output format (docs: "Synaptic layers")."""
    lim = math.ldexp(1.0, plan.acc_bits - 1 - plan.acc_frac)
    fmt = plan.out_format
    # clamp allocates; scaling and rounding then run in place on that fresh tensor
    y = x.clamp(-lim, lim - math.ldexp(1.0, -plan.acc_frac)).mul_(math.ldexp(1.0, fmt.frac))
    return _round_half_up_(y, fmt)


# -- runtime wrappers (fixed mode) --------------------------------------------------------------------
# Built through the executor's node_map: each wraps the module the bridge builds for the on-grid graph
# and applies only saturation/rounding to what that module returns.


def fixed_node_map(plan: FixedPointPlan, on_state: Any = None) -> dict[str, Any]:
    """node_map for talon.bridge.executor.ir_to_torch that realises `plan` around the bridge's modules.

    `on_state(name, state)` (optional) is called with every neuron's rounded state after each step.
    """
    def default(node: Node, ctx: Any) -> Any:
        return RUNTIME_BUILDERS[node.type_name](node, ctx)

    out: dict[str, Any] = {}
    for name, p in plan.nodes.items():
        if p.kind == "synaptic":
            out[name] = lambda node, ctx, p=p: _synaptic_runtime(default(node, ctx), p)
        elif p.kind == "requant":
            out[name] = lambda node, ctx, p=p: FixedStateless(default(node, ctx), lambda y, f=p.out_format: round_half_up(y, f))
        elif p.kind == "neuron":
            out[name] = lambda node, ctx, p=p: FixedNeuron(default(node, ctx), p, on_state)
    return out


def _synaptic_runtime(inner: nn.Module, p: NodePlan) -> nn.Module:
    """The synaptic module followed by saturation and rounding; its products in float32 and/or on the
    non-zero inputs only where that is provably exact (talon.backend.cpu.exact_products)."""
    post = lambda y, p=p: synaptic_output(y, p)  # noqa: E731
    if not exact_products.is_candidate(inner) or len(p.in_formats) != 1:
        return FixedStateless(inner, post)
    fin = p.in_formats[0]
    single = exact_products.float32_exact(p.ints, p.fracs, fin.bits, fin.frac, p.acc_frac)
    cache = p.__dict__.setdefault("_derived_weights", {})  # shared by every run of this plan
    return exact_products.ExactSynaptic(inner, post, single, cache)


class FixedStateless(nn.Module):
    """A stateless runtime module followed by a rounding function (saturation/requantisation)."""

    def __init__(self, inner: nn.Module, post: Any) -> None:
        super().__init__()
        self.inner, self.post = inner, post

    def forward(self, *inputs: Any) -> Any:
        return self.post(self.inner(*inputs))


class FixedNeuron(StatefulRuntime):
    """A neuron runtime whose stored membrane is rounded up (ceil) to its format after every step;
    integrating neurons (LI, Integrator) output that rounded membrane. A CubaLIF's new current is
    rounded half up to its format before the membrane reads it (docs/fixed_point.md, CubaLIF)."""

    def __init__(self, inner: nn.Module, plan: NodePlan, on_state: Any) -> None:
        super().__init__()
        self.inner, self.plan, self.on_state = inner, plan, on_state
        self.spiking = plan.type_name in SPIKING_NEURONS

    def init_state(self, inputs: Any) -> Any:
        return self.inner.init_state(inputs)

    def step(self, inputs: Any, state: Any) -> Any:
        if self.plan.current is not None:
            # the runtime's own two halves (CubaLIFRuntime.integrate_current / fire), rounding between
            current = round_half_up(self.inner.integrate_current(inputs, state[0]), self.plan.current)
            out, v = self.inner.fire(current, state[1])
            st = (current, v)
        else:
            out, st = self.inner.step(inputs, state)
        v = round_ceil(st[-1], self.plan.membrane)
        st = (*st[:-1], v)
        if not self.spiking:
            out = v
        if self.on_state is not None:
            self.on_state(self.plan.name, st)
        return out, st
