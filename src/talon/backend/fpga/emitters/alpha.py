"""The Alpha neuron in hardware: its fixed-point rule (formats, integers, the rounding around the bridge's
runtime) and its FPGA emitter (kernel `alpha`, templates/kernels/alpha.h). docs/neurons/alpha.md has the
integer specification; the simulator and the kernel both compute it, bit for bit.

Traces E and N share one format Q(m).f_i, the membrane U has Q(m).f_v (m = membrane_bits). Integers:
A, B (alpha, beta; Q(c+2).c), T (tau_alpha; Q24.c: exact in float32, so at most 2^(23-c)), Θ (the
threshold, on the coarser of the two grids, stored in both formats), Gs (graded spike factor). Per step,
with the inputs summed exactly:

    R  = U > Θ
    E_b = sat(rhu(A*E + sum x)),  N_b = sat(rhu(B*N - sum x))           to f_i, round half up
    W  = T*(E_b + N_b)                                                  exact
    subtract: W += R*N;  E = sat(E_b - R*Θ);  N = R ? 0 : N_b           zero: W, E, N = 0 where R
    S  = W > Θ;   U = sat(ceil(W))                                      to f_v: the spike is the stored U's

The simulator runs the bridge's AlphaRuntime in float64 on the on-grid node (every constant exactly its
integer times a power of two) and rounds between its two halves, `traces` and `fire`: the float64
arithmetic is exact (checked below 53 bits), so it computes these integers scaled by powers of two.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from talon.backend.cpu.fixed_format import FixedPointConfig, Format, NodePlan, dequantize, quantize_array
from talon.backend.cpu.fixed_registry import FixedRule, NeuronFormats, PlanContext, Rounding, check_finite, register_fixed_rule
from talon.backend.cpu.fixed_rules import tau_for_beta
from talon.backend.fpga.cgen import c_array
from talon.backend.fpga.emitters.registry import Emitter, register_emitter
from talon.backend.fpga.model import LayerEstimate, aligned_fraction
from talon.backend.fpga.names import c_string
from talon.errors import BackendError
from talon.ir import Node
from talon.ir.primitives.alpha import Alpha, alpha_coefficients
from talon.sdk.fixed_point import frac_for_range, spike_frac

if TYPE_CHECKING:
    from talon.backend.fpga.emitters.context import NodeCode, NodeEstimate

__all__ = ["AlphaRule", "AlphaEmitter", "alpha_formats", "plan_alpha", "TAU_ALPHA_BITS"]

#: width of T, the membrane gain: 24 bits keep it exact in the runtime's float32 constants
TAU_ALPHA_BITS = 24
_MODES = {"none": 0, "subtract": 1, "zero": 2}


def _fail(name: str, what: str) -> BackendError:
    return BackendError(f"fixed-point mode: node {name!r} (Alpha): {what}")


def _max(a: Any) -> float:
    return float(np.max(np.abs(a))) if np.size(a) else 0.0


def alpha_formats(name: str, node: Alpha, config: FixedPointConfig, u_max: float, e_max: float) -> NeuronFormats:
    """The membrane, trace and spike formats from the calibrated max|U| and max|E|.

    The inhibitory trace is not calibrated on its own: where no reset intervenes N = U/tau_alpha - E with
    tau_alpha >= 1, so |N| <= |U| + |E|; the traces' range is that (plus |Θ| with a subtract reset, which
    moves E by Θ), with one bit more headroom than the membrane's for the pre-reset traces of reset steps,
    which the calibration never stores."""
    m, head = config.membrane_bits, config.membrane_headroom_bits
    thr = _max(node.v_threshold)
    membrane = Format(m, frac_for_range(max(u_max, thr), m) - head)
    traces = u_max + e_max + (thr if node.reset_mode == "subtract" else 0.0)
    trace = Format(m, frac_for_range(max(traces, thr if node.reset_mode == "subtract" else 0.0), m) - head - 1)
    g = spike_frac(node.graded_spikes_factor, config.activation_bits)
    if g is None:
        raise _fail(name, f"graded_spikes_factor {node.graded_spikes_factor!r} has no exact {config.activation_bits}-bit value "
                    "(a spike would change size): use a factor with fewer significant bits or raise activation_bits")
    return NeuronFormats(membrane, Format(config.activation_bits, g), trace)


def plan_alpha(name: str, node: Alpha, in_fmts: list[Format], formats: NeuronFormats, dt: float, config: FixedPointConfig) -> tuple[NodePlan, Alpha]:
    """The NodePlan of an Alpha node (its integers) and its on-grid copy, for the given formats."""
    c = config.coefficient_frac_bits
    membrane, trace, out = formats.membrane, formats.current, formats.out
    alpha, beta, tau_alpha = alpha_coefficients(node, dt)
    subtract = node.reset_mode == "subtract"
    coef = Format(c + 2, c)
    for key, v in (("alpha", alpha), ("beta", beta)):
        if _max(v) >= 2.0:
            raise _fail(name, f"coefficient {key} reaches {_max(v):g}, outside [-2, 2)")
    if _max(tau_alpha) >= 2.0 ** (TAU_ALPHA_BITS - 1 - c):
        raise _fail(name, f"tau_alpha reaches {_max(tau_alpha):g}; with {c} fractional bits it must stay below "
                    f"{2.0 ** (TAU_ALPHA_BITS - 1 - c):g} (alpha and beta too close): lower coefficient_frac_bits")
    ints = {"alpha": quantize_array(alpha, coef), "beta": quantize_array(beta, coef),
            "tau_alpha": quantize_array(tau_alpha, Format(TAU_ALPHA_BITS, c))}
    a_q, b_q = dequantize(ints["alpha"], c), dequantize(ints["beta"], c)
    if np.any(b_q >= 1.0) or np.any(a_q <= b_q):
        raise _fail(name, f"alpha and beta at {c} fractional bits are not 1 >= alpha > beta (tau_inh too long or the "
                    "two decays too close): raise coefficient_frac_bits")
    # with a subtract reset the threshold moves E too: it lies on the coarser grid, so both formats hold it
    f_t = min(trace.frac, membrane.frac) if subtract else membrane.frac
    theta = quantize_array(node.v_threshold, Format(membrane.bits, f_t))
    ints["v_threshold"] = theta * (1 << (membrane.frac - f_t))
    ints["v_threshold_trace"] = theta * (1 << max(0, trace.frac - f_t)) if subtract else np.zeros_like(theta)
    if np.any(np.abs(ints["v_threshold"]) >= membrane.hi) or np.any(np.abs(ints["v_threshold_trace"]) >= trace.hi):
        raise _fail(name, f"the threshold does not fit the membrane format {membrane} and trace format {trace}")
    gs = int(quantize_array(np.array([float(node.graded_spikes_factor)]), out)[0])
    ints["graded_spikes_factor"] = np.array([gs])
    fracs = {"alpha": c, "beta": c, "tau_alpha": c, "v_threshold": membrane.frac, "v_threshold_trace": trace.frac,
             "graded_spikes_factor": out.frac}
    _check_exact(name, trace, membrane, in_fmts, c)
    plan = NodePlan(name, "Alpha", "neuron", out, list(in_fmts), ints, fracs, membrane=membrane, current=trace,
                    attrs={"reset_mode": node.reset_mode})
    on_grid = node.replace(
        tau_exc=tau_for_beta(a_q, dt), tau_inh=tau_for_beta(b_q, dt), tau_alpha=dequantize(ints["tau_alpha"], c),
        v_threshold=dequantize(theta, f_t), graded_spikes_factor=math.ldexp(float(gs), -out.frac),
    )
    return plan, on_grid


def _check_exact(name: str, trace: Format, membrane: Format, in_fmts: list[Format], c: int) -> None:
    """Every intermediate below 53 significant bits: the float64 runtime is then exact (and int64 cannot wrap)."""
    fm = max([trace.frac] + [f.frac for f in in_fmts])
    widest = max([trace.bits - trace.frac] + [f.bits - f.frac for f in in_fmts])
    traces = widest + fm + c + 3 + max(0, len(in_fmts) - 1)  # A*E + sum x at fraction c + Fm
    fw = max(c + trace.frac, membrane.frac)
    w = (trace.bits + 1 + TAU_ALPHA_BITS) + (fw - c - trace.frac) + 1  # T*(E+N) (+ N), at fraction Fw
    need = max(traces, w)
    if need > 53:
        raise _fail(name, f"needs {need} bits for an exact update (> 53): its input formats {[str(f) for f in in_fmts]}, traces "
                    f"{trace} and membrane {membrane} are too far apart; lower membrane_bits or coefficient_frac_bits")


class AlphaRule(FixedRule):
    """Alpha's fixed-point rule (module docstring): formats from the calibration, integers and the on-grid
    node, and the step: the bridge's AlphaRuntime with the traces rounded half up (and saturated) between
    its halves `traces` and `fire`, the membrane rounded up after."""

    half_up_state = "trace"

    carries_loops = True

    def check(self, name: str, node: Node, dt: float) -> None:
        # on the derived coefficients: tau_exc = inf (alpha = 1) is meaningful and quantises fine
        alpha, beta, tau_alpha = alpha_coefficients(node, dt)
        check_finite(name, {"alpha": alpha, "beta": beta, "tau_alpha": tau_alpha, "v_threshold": node.v_threshold,
                            "graded_spikes_factor": node.graded_spikes_factor})

    def formats(self, name: str, node: Node, config: FixedPointConfig, calibration: Any) -> NeuronFormats:
        return alpha_formats(name, node, config, calibration.max_abs_state.get(name, 0.0), calibration.max_abs_current.get(name, 0.0))

    def plan(self, name: str, node: Node, in_fmts: list[Format], act_fmt: Format, ctx: PlanContext) -> tuple[NodePlan, Node]:
        return plan_alpha(name, node, in_fmts, ctx.neurons[name], ctx.dt, ctx.config)

    def step(self, inner: Any, inputs: Any, state: Any, plan: NodePlan, rnd: Rounding) -> tuple[Any, Any]:
        e, n = inner.traces(inputs, state)
        e, n = rnd.half_up(e, plan.current), rnd.half_up(n, plan.current)
        spike, (e, n, u) = inner.fire(e, n, state)
        t = plan.current
        from talon.backend.cpu import clip_watch  # torch-side: only a simulation steps a rule

        clip_watch.note_ceil(plan.name, "trace", e, t)  # on the grid already: reports exactly the clamped values
        e = e.clamp(math.ldexp(t.lo, -t.frac), math.ldexp(t.hi, -t.frac))  # E - R*Θ may leave the range
        return spike, (e, n, rnd.ceil(u, plan.membrane))


class AlphaEmitter(Emitter):
    """Input alignment (k_align_add, as for every neuron) when needed, then one k_alpha loop."""

    def emit(self, code: NodeCode) -> None:
        nd, n, i = code.nd, code.name, code.ident
        if nd["kind"] != "neuron" or nd.get("current") is None:
            raise BackendError(f"the fpga backend cannot realise node {n!r} (Alpha, kind {nd['kind']}) without its trace format")
        mode = nd.get("attrs", {}).get("reset_mode")
        if mode not in _MODES:
            raise BackendError(f"node {n!r}: Alpha reset mode {mode!r} is not in the fixed-point contract")
        code.kernel("alpha")
        N, L, c, shape, buf = code.N, code.lanes, code.coef_frac, code.shape, code.buf
        mb, fv = (int(v) for v in nd["membrane"])
        ib, fi = (int(v) for v in nd["current"])
        Fm = aligned_fraction(nd)
        Fw = max(c + fi, fv)

        def full(key: str) -> np.ndarray:
            a = np.asarray(code.arr(key), np.int64)
            return np.broadcast_to(a, shape).reshape(-1)

        for key, cname in (("alpha", "alpha"), ("beta", "beta"), ("tau_alpha", "talpha"), ("v_threshold", "thr"), ("v_threshold_trace", "thre")):
            code.consts.append(c_array(f"{cname}_{i}", full(key)))
        gs = int(np.asarray(code.arr("graded_spikes_factor")).reshape(-1)[0])
        src = code.aligned_input(Fm)
        for st, what in (("e", f"excitatory trace, Q{ib}.{fi}"), ("nn", f"inhibitory trace, Q{ib}.{fi}"), ("u", f"membrane, Q{mb}.{fv}")):
            code.state.append(f"    static int64_t {st}_{i}[{N}];  // {what} of {c_string(n)}")
            code.reset.append(f"        for (int k = 0; k < {N}; ++k) {st}_{i}[k] = 0;")
        code.body.append(f"    static int64_t m_{i}[{N}];")
        code.body.append(
            f"    k_alpha<{N}, {_MODES[mode]}, {ib}, {mb}, {Fm - fi}, {c}, {c + Fm - fi}, {Fw - c - fi}, {Fw - fi}, {Fw - fv}, {L}>"
            f"({src}, e_{i}, nn_{i}, u_{i}, alpha_{i}, beta_{i}, talpha_{i}, thr_{i}, thre_{i}, (int64_t){gs}, {buf}, m_{i});")
        code.membrane_tap((mb, fv), f"m_{i}")
        code.spike_tap()

    def estimate(self, e: NodeEstimate) -> LayerEstimate:
        """One loop of N: three multiplies (A*E, B*N, T*(E+N)), nine adders, three states, five constants."""
        nd, N = e.nd, e.N
        mb = int(nd["membrane"][0])
        mults, adders, states, consts = 3, 9, 3, 5
        lanes = max(1, math.ceil(N / e.R))
        # E, N, U and the membrane tap; the constants at 24 bits
        return e.neuron_layer(lanes, math.ceil(N / lanes) + 6, mults=mults, adders=adders, state_bits=mb * (states + 1),
                              state_width=mb * states, const_bits=consts * 24, const_width=consts * 24)


register_fixed_rule("Alpha", AlphaRule())
register_emitter("Alpha", AlphaEmitter())
