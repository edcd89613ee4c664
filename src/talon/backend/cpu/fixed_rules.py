"""The fixed-point rules of the built-in primitives (docs/fixed_point.md, per node type), registered
through `register_fixed_rule` like a user's. numpy only: the runtime's rounding is talon.backend.cpu.fixed.

A rule quantises a node's constants and returns the on-grid node whose runtime, run in float64,
computes exactly the integer arithmetic of the specification. Neuron coefficients are reproduced through
the runtime's own float64 formulas (beta = 1 - dt/tau, gain = dt*r/tau): the rules choose tau and r so
that those expressions give exactly the quantised coefficients.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from talon.backend.cpu.fixed_format import FixedPointConfig, Format, NodePlan, dequantize, quantize_array
from talon.backend.cpu.fixed_registry import (
    FixedRule, NeuronFormats, PlanContext, Rounding, check_finite, register_fixed_rule,
)
from talon.errors import BackendError
from talon.ir import Node, get_node_class
from talon.ir.primitives.neurons import coefficients
from talon.sdk.cost import cost_entry
from talon.sdk.fixed_point import (
    MIN_WEIGHT_BITS_FOR_BIAS, bias_to_ints, exact_sum_bits, frac_for_range, quantize_to_ints, saturation, saturation_message, spike_frac,
    weight_frac_holding_bias,
)

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
    input_state: dict[str, Format], config: FixedPointConfig, fan_in: float, own_bits: bool,
) -> tuple[NodePlan, Node]:
    t = node.type_name
    wbits = getattr(node, "weight_bits", config.weight_bits) if own_bits else config.weight_bits
    abits = getattr(node, "accumulator_bits", config.accumulator_bits) if own_bits else config.accumulator_bits
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
    fields: "NeuronRule",
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
        if fields.membrane_tau is None:
            raise BackendError(f"fixed-point mode: {name!r} ({t}) has a leak but its rule names no membrane time constant field")
        tau_q, changes["r"] = tau_and_r(beta_q, gain_q, dt, tau_name=fields.membrane_tau)
        changes[fields.membrane_tau] = tau_q
    else:
        changes["r"] = r_for_gain(gain_q, None, dt)
    if fields.synaptic_tau is not None:
        # The current's decay alpha = 1 - dt/tau_syn and input gain dt*w_in/tau_syn, reproduced exactly
        # through the same float64 formulas as beta and gain. w_in None means a gain of exactly 1.
        if co.alpha is None or fields.synaptic_gain is None:
            raise BackendError(f"fixed-point mode: {name!r} ({t}): a synaptic-current rule needs the class's coefficients to give "
                               "alpha and the rule to name the current's input-weight field (synaptic_gain)")
        ai = quantize_array(co.alpha, coef_fmt)
        ints["alpha"], fracs["alpha"] = ai, c
        gain_in = np.ones(np.shape(co.alpha)) if co.gain_in is None else co.gain_in
        gii = quantize_array(gain_in, coef_fmt)
        ints["gain_in"], fracs["gain_in"] = gii, c
        syn_tau, syn_gain = fields.synaptic_tau, fields.synaptic_gain
        if getattr(node, syn_gain) is not None:
            changes[syn_tau], changes[syn_gain] = tau_and_r(dequantize(ai, c), dequantize(gii, c), dt, decay="alpha", tau_name=syn_tau)
        else:
            changes[syn_tau] = tau_for_beta(dequantize(ai, c), dt)
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
    if node.spiking:
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



# -- the rules ------------------------------------------------------------------------------------------


class InputRule(FixedRule):
    """A graph input: rounded half up to its calibrated activation format."""

    def plan(self, name: str, node: Node, in_fmts: list[Format], act_fmt: Format, ctx: PlanContext) -> tuple[NodePlan, Node]:
        return NodePlan(name, node.type_name, "input", act_fmt), node


class SynapticRule(FixedRule):
    """A weighted sum: weights on a power-of-two grid, an exact accumulator saturated to its width, the
    output rounded to the format of what it feeds (docs/fixed_point.md, "Synaptic layers").

    weight_fields: the weight tensors, applied in order (default: the cost table's `weight_fields`);
    own_bits: the node's own `weight_bits` and `accumulator_bits` fields replace the configuration's."""

    def __init__(self, weight_fields: tuple[str, ...] | None = None, own_bits: bool = False) -> None:
        self.weight_fields, self.own_bits = weight_fields, own_bits

    def plan(self, name: str, node: Node, in_fmts: list[Format], act_fmt: Format, ctx: PlanContext) -> tuple[NodePlan, Node]:
        entry = cost_entry(node.type_name)
        weight_fields = self.weight_fields or (entry.weight_fields if entry else ())
        if not weight_fields:
            raise BackendError(f"fixed-point mode: node {name!r} ({node.type_name}) has a synaptic rule but names no weight fields: "
                               "pass SynapticRule(weight_fields=...) or register_cost(..., weight_fields=...)")
        input_state = {n: f.input_state for n, f in ctx.neurons.items()}
        return _plan_synaptic(name, node, weight_fields, in_fmts[0], act_fmt, ctx.consumers[name], input_state, ctx.config,
                              ctx.costs[name].fan_in, self.own_bits)


class NeuronRule(FixedRule):
    """A neuron of the LIF family (its class's `coefficients(dt)`: beta, leak, gain and, with a synaptic
    current, alpha and gain_in). Its membrane (and current) formats come from its constants and the
    calibration; coefficients are Q(c+2).c words; the membrane is rounded up (ceil) after each step, the
    current half up before the membrane reads it (docs/fixed_point.md section 5).

    membrane_tau: the field holding the membrane time constant (None: no leak, as IF); synaptic_tau and
    synaptic_gain: the current's time constant and input-weight fields (None: no synaptic current).

    What it reads of a class, besides `coefficients(dt)`: the fields `r`, `v_leak`, `v_threshold`,
    `v_reset` where present; a spiking class also `graded_spikes_factor`, `reset_mode` and `reset_delay`;
    the traits `spiking` and `has_current`. Its runtime's state is (membrane,) or (current, membrane), with
    `integrate_current` and `fire` halves when it has a current (as CubaLIFRuntime)."""

    carries_loops = True

    def __init__(self, membrane_tau: str | None = "tau", synaptic_tau: str | None = None, synaptic_gain: str | None = None) -> None:
        self.membrane_tau, self.synaptic_tau, self.synaptic_gain = membrane_tau, synaptic_tau, synaptic_gain

    def check(self, name: str, node: Node, dt: float) -> None:
        # checked on the derived coefficients, where an infinite tau is meaningful (beta = 1) and quantises fine
        c = coefficients(node, dt)
        values: dict[str, Any] = {k: getattr(c, k) for k in ("beta", "leak", "gain", "alpha", "gain_in")}
        values.update({k: getattr(node, k, None) for k in ("v_threshold", "v_reset", "graded_spikes_factor")})
        check_finite(name, values)

    def formats(self, name: str, node: Node, config: FixedPointConfig, calibration: Any) -> NeuronFormats:
        cal = calibration
        rng = [cal.max_abs_state.get(name, 0.0), 0.0 if node.spiking else cal.max_abs_output.get(name, 0.0)]
        for fld in ("v_threshold", "v_reset", "v_leak"):
            v = getattr(node, fld, None)
            if v is not None and np.size(v):
                rng.append(float(np.max(np.abs(v))))
        membrane = Format(config.membrane_bits, frac_for_range(max(rng), config.membrane_bits) - config.membrane_headroom_bits)
        current = None
        if node.has_current:
            ri = cal.max_abs_current.get(name, 0.0)
            current = Format(config.membrane_bits, frac_for_range(ri, config.membrane_bits) - config.membrane_headroom_bits)
        out = _spike_format(name, node, config) if node.spiking else membrane
        return NeuronFormats(membrane, out, current)

    def plan(self, name: str, node: Node, in_fmts: list[Format], act_fmt: Format, ctx: PlanContext) -> tuple[NodePlan, Node]:
        f = ctx.neurons[name]
        try:
            return _plan_neuron(name, node, in_fmts, f.membrane, f.current, ctx.coef_fmt, ctx.dt, ctx.config, self)
        except BackendError as exc:
            if repr(name) in str(exc):
                raise
            # the coefficient helpers do not know the node: name it
            raise BackendError(f"fixed-point mode: node {name!r} ({node.type_name}): {exc}") from None

    def step(self, inner: Any, inputs: Any, state: Any, plan: NodePlan, rnd: Rounding) -> tuple[Any, Any]:
        if plan.current is not None:
            # the runtime's own two halves (integrate_current / fire), rounding the current between them
            current = rnd.half_up(inner.integrate_current(inputs, state[0]), plan.current)
            out, v = inner.fire(current, state[1])
            st = (current, v)
        else:
            out, st = inner.step(inputs, state)
        if plan.membrane is None:  # pragma: no cover - NeuronRule.plan always sets it
            raise BackendError(f"fixed-point mode: {plan.name!r} was planned without a membrane format")
        v = rnd.ceil(st[-1], plan.membrane)
        st = (*st[:-1], v)
        cls = get_node_class(plan.type_name)
        if cls is None or not cls.spiking:  # integrating neurons output their rounded membrane
            out = v
        return out, st


class ThresholdRule(FixedRule):
    """A stateless comparison: the threshold on its input's grid, in a word one bit wider."""

    def plan(self, name: str, node: Node, in_fmts: list[Format], act_fmt: Format, ctx: PlanContext) -> tuple[NodePlan, Node]:
        fin = in_fmts[0]
        msg = saturation_message(name, "v_threshold", node.v_threshold, fin.bits + 1, fin.frac, f"the comparison word, twice the input format {fin},")
        if msg:
            raise BackendError(f"fixed-point mode: {msg}; the threshold exceeds every input the calibration saw: calibrate on inputs that reach it")
        thr_i = quantize_array(node.v_threshold, Format(fin.bits + 1, fin.frac))
        plan = NodePlan(name, node.type_name, "threshold", Format(2, 0), in_fmts, {"v_threshold": thr_i}, {"v_threshold": fin.frac})
        return plan, node.replace(v_threshold=dequantize(thr_i, fin.frac, np.float32))


class PassRule(FixedRule):
    """Grid-preserving: the output keeps its (single) input's format. `record` names integer array fields
    hardware needs (a Delay's per-element delays), carried in the plan's integers with 0 fractional bits."""

    def __init__(self, record: tuple[str, ...] = ()) -> None:
        self.record = record

    def plan(self, name: str, node: Node, in_fmts: list[Format], act_fmt: Format, ctx: PlanContext) -> tuple[NodePlan, Node]:
        plan = NodePlan(name, node.type_name, "pass", in_fmts[0], in_fmts)
        for fld in self.record:
            plan.ints[fld], plan.fracs[fld] = np.asarray(getattr(node, fld), np.int64), 0
        return plan, node


class RequantRule(FixedRule):
    """The output re-rounded (half up) to its own calibrated activation format."""

    def plan(self, name: str, node: Node, in_fmts: list[Format], act_fmt: Format, ctx: PlanContext) -> tuple[NodePlan, Node]:
        return NodePlan(name, node.type_name, "requant", act_fmt, in_fmts), node


class UpsampleRule(PassRule):
    """Nearest-neighbour upsampling copies values; bilinear interpolation has no fixed-point specification."""

    def check(self, name: str, node: Node, dt: float) -> None:
        if node.mode != "nearest":
            raise BackendError(f"fixed-point mode: Upsample {name!r} must use mode 'nearest' (bilinear interpolation is not specified)")
        super().check(name, node, dt)


class ReLURule(FixedRule):
    """ReLU keeps its input's grid; a leaky ReLU's slope is a coefficient and its output is re-rounded."""

    def plan(self, name: str, node: Node, in_fmts: list[Format], act_fmt: Format, ctx: PlanContext) -> tuple[NodePlan, Node]:
        if node.negative_slope == 0.0:
            return PassRule().plan(name, node, in_fmts, act_fmt, ctx)
        c = ctx.coef_fmt.frac
        _check_coefficient(name, "negative_slope", node.negative_slope, c)
        s_i = int(quantize_array(np.array([node.negative_slope]), ctx.coef_fmt)[0])
        plan = NodePlan(name, node.type_name, "requant", act_fmt, in_fmts, {"negative_slope": np.array([s_i])}, {"negative_slope": c})
        return plan, node.replace(negative_slope=math.ldexp(float(s_i), -c))


class SkipRule(FixedRule):
    """A passthrough skip keeps its input's grid; residual sums and concatenations are re-rounded."""

    def plan(self, name: str, node: Node, in_fmts: list[Format], act_fmt: Format, ctx: PlanContext) -> tuple[NodePlan, Node]:
        rule = PassRule() if node.skip_type == "passthrough" else RequantRule()
        return rule.plan(name, node, in_fmts, act_fmt, ctx)


class Unsupported(FixedRule):
    """A primitive hardware mode refuses, with the reason and a way forward."""

    def __init__(self, why: str) -> None:
        self.why = why

    def check(self, name: str, node: Node, dt: float) -> None:
        raise BackendError(f"fixed-point mode does not support node {name!r} ({node.type_name}): {self.why}; simulate it with mode='float'")

    def plan(self, name: str, node: Node, in_fmts: list[Format], act_fmt: Format, ctx: PlanContext) -> tuple[NodePlan, Node]:
        self.check(name, node, ctx.dt)
        raise AssertionError("unreachable")  # pragma: no cover


# -- the built-in primitives' registrations ---------------------------------------------------------------

register_fixed_rule("Input", InputRule())
for _t in ("Affine", "Linear", "Conv1d", "Conv2d", "SConv", "SDConv", "SepConv2d"):
    register_fixed_rule(_t, SynapticRule())
register_fixed_rule("SpikingAffine", SynapticRule(own_bits=True))
# an elementwise product y = x * scale whose factor is quantised like a synaptic weight (fan-in 1): the cost
# table counts it as elementwise, so it names no weight fields for it (snnTorch's one-to-one recurrence)
register_fixed_rule("Scale", SynapticRule(weight_fields=("scale",)))
for _t in ("LIF", "LI"):
    register_fixed_rule(_t, NeuronRule("tau"))
for _t in ("IF", "Integrator"):
    register_fixed_rule(_t, NeuronRule(membrane_tau=None))
register_fixed_rule("CubaLIF", NeuronRule("tau_mem", synaptic_tau="tau_syn", synaptic_gain="w_in"))
register_fixed_rule("Threshold", ThresholdRule())
for _t in ("Output", "Flatten", "Dropout", "HybridRegion", "ChannelSplit", "MaxPool2d"):
    register_fixed_rule(_t, PassRule())
# not a rule, a record: hardware needs the per-element delays (whole steps)
register_fixed_rule("Delay", PassRule(record=("delay",)))
register_fixed_rule("Upsample", UpsampleRule())
register_fixed_rule("ReLU", ReLURule())
register_fixed_rule("Skip", SkipRule())
for _t in ("AvgPool2d", "SumPool2d", "Concat"):
    register_fixed_rule(_t, RequantRule())
for _t in ("Sigmoid", "Tanh", "Softmax", "GELU", "ELU"):
    register_fixed_rule(_t, Unsupported("transcendental functions need a lookup-table specification"))
register_fixed_rule("PReLU", Unsupported("per-channel slopes are not specified in fixed point yet"))
for _t in ("BatchNorm1d", "BatchNorm2d"):
    register_fixed_rule(_t, Unsupported("fold batch norm into the preceding layer first (sdk fold_batchnorm)"))
register_fixed_rule("LayerNorm", Unsupported("normalisation needs a division/square-root specification"))
