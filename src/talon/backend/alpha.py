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
from typing import Any

import numpy as np
import torch

from talon.backend.cpu.fixed import Format, NodePlan, dequantize, quantize_array, round_ceil, round_half_up, tau_for_beta
from talon.backend.fpga.cgen import c_array
from talon.backend.fpga.emitters.context import NodeCode, NodeEstimate
from talon.backend.fpga.emitters.registry import Emitter, register_emitter
from talon.backend.fpga.model import LayerEstimate, align_passes, aligned_fraction, bram
from talon.backend.fpga.names import c_string
from talon.bridge.modules import StatefulRuntime
from talon.errors import BackendError
from talon.ir.primitives.alpha import Alpha, alpha_coefficients, membrane_bounds
from talon.sdk.fixed_point import frac_for_range, spike_frac

__all__ = ["plan_alpha", "FixedAlpha", "AlphaEmitter", "TAU_ALPHA_BITS"]

#: width of T, the membrane gain: 24 bits keep it exact in the runtime's float32 constants
TAU_ALPHA_BITS = 24
_MODES = {"none": 0, "subtract": 1, "zero": 2}


def _fail(name: str, what: str) -> BackendError:
    return BackendError(f"fixed-point mode: node {name!r} (Alpha): {what}")


def _max(a: Any) -> float:
    return float(np.max(np.abs(a))) if np.size(a) else 0.0


def plan_alpha(name: str, node: Alpha, in_fmts: list[Format], in_max: float, dt: float, config: Any,
               u_max: float | None = None, trace_max: float | None = None) -> tuple[NodePlan, Alpha]:
    """The NodePlan of an Alpha node and its on-grid copy.

    `in_max`: the largest |summed input| per step (calibrated). `u_max` / `trace_max`: calibrated ranges
    of U and of the traces, when known; otherwise the sound bounds of talon.ir.primitives.alpha (the
    traces: |E| <= (in_max + |Θ|)/(1 - alpha), |N| <= in_max/(1 - beta)), so that nothing saturates."""
    m, c, head = config.membrane_bits, config.coefficient_frac_bits, config.membrane_headroom_bits
    alpha, beta, tau_alpha = alpha_coefficients(node, dt)
    thr = np.asarray(node.v_threshold, np.float64)
    subtract = node.reset_mode == "subtract"
    if trace_max is None:
        with np.errstate(divide="ignore"):
            e = (in_max + (_max(thr) if subtract else 0.0)) / (1.0 - np.clip(alpha, 0.0, 1.0))
            trace_max = max(_max(e), _max(in_max / (1.0 - np.clip(beta, 0.0, 1.0))))
        if not math.isfinite(trace_max):
            raise _fail(name, "alpha is 1 (no decay), so its excitatory trace has no bound: calibrate the traces, or use tau_exc < inf")
    if u_max is None:
        lo, hi = membrane_bounds(node, dt, np.asarray(-in_max), np.asarray(in_max))
        u_max = max(_max(lo), _max(hi))
    f_i = frac_for_range(max(trace_max, _max(thr) if subtract else 0.0), m) - head
    f_v = frac_for_range(max(u_max, _max(thr)), m) - head
    trace, membrane = Format(m, f_i), Format(m, f_v)

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
        raise _fail(name, f"alpha and beta at {c} fractional bits are not 1 > alpha > beta (tau_inh too long or the "
                    "two decays too close): raise coefficient_frac_bits")
    # the threshold lies on the coarser grid, so that both formats hold it exactly
    f_t = min(f_i, f_v) if subtract else f_v
    theta = quantize_array(thr, Format(m, f_t))
    ints["v_threshold"] = theta * (1 << (f_v - f_t))
    ints["v_threshold_trace"] = theta * (1 << (f_i - f_t))
    if np.any(ints["v_threshold"] >= membrane.hi) or np.any(ints["v_threshold_trace"] >= trace.hi):
        raise _fail(name, f"the threshold does not fit the membrane format {membrane} and trace format {trace}")
    g = spike_frac(node.graded_spikes_factor, config.activation_bits)
    if g is None:
        raise _fail(name, f"graded_spikes_factor {node.graded_spikes_factor!r} has no exact {config.activation_bits}-bit value")
    gs = int(quantize_array(np.array([float(node.graded_spikes_factor)]), Format(config.activation_bits, g))[0])
    ints["graded_spikes_factor"] = np.array([gs])
    fracs = {"alpha": c, "beta": c, "tau_alpha": c, "v_threshold": f_v, "v_threshold_trace": f_i, "graded_spikes_factor": g}
    _check_exact(name, trace, membrane, in_fmts, c)
    plan = NodePlan(name, "Alpha", "neuron", Format(config.activation_bits, g), list(in_fmts), ints, fracs,
                    membrane=membrane, current=trace, attrs={"reset_mode": node.reset_mode})
    on_grid = node.replace(
        tau_exc=tau_for_beta(a_q, dt), tau_inh=tau_for_beta(b_q, dt), tau_alpha=dequantize(ints["tau_alpha"], c),
        v_threshold=dequantize(theta, f_t), graded_spikes_factor=math.ldexp(float(gs), -g),
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


class FixedAlpha(StatefulRuntime):
    """The bridge's AlphaRuntime (on the on-grid node, in float64) with the rounding of the rule: traces
    rounded half up (and saturated) between `traces` and `fire`, the membrane rounded up after."""

    def __init__(self, inner: Any, plan: NodePlan, on_state: Any = None) -> None:
        super().__init__()
        self.inner, self.plan, self.on_state = inner, plan, on_state
        t = plan.current
        self.trace_lo, self.trace_hi = math.ldexp(t.lo, -t.frac), math.ldexp(t.hi, -t.frac)

    def init_state(self, inputs: Any) -> Any:
        return self.inner.init_state(inputs)

    def step(self, inputs: Any, state: Any) -> Any:
        e, n = self.inner.traces(inputs, state)
        e, n = round_half_up(e, self.plan.current), round_half_up(n, self.plan.current)
        spike, (e, n, u) = self.inner.fire(e, n, state)
        st = (torch.clamp(e, self.trace_lo, self.trace_hi), n, round_ceil(u, self.plan.membrane))
        if self.on_state is not None:
            self.on_state(self.plan.name, st)
        return spike, st


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
        if align_passes(nd)[0] == 0:
            src = code.inputs[0]
        else:
            code.kernel("align")
            code.body.append(f"    static int64_t isum_{i}[{N}];")
            code.body.append(f"    for (int k = 0; k < {N}; ++k) isum_{i}[k] = 0;")
            for s, (_, f) in zip(code.inputs, nd["in_formats"]):
                code.body.append(f"    k_align_add<{N}, {Fm - int(f)}, {L}>({s}, isum_{i});")
            src = f"isum_{i}"
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
        cycles = math.ceil(N / lanes) + 6
        dsp = mults * lanes * math.ceil(mb / e.dsp_tile[0])
        lut = lanes * adders * mb + 100
        b1, l1 = bram(N * mb * (states + 1), lanes, mb * states)  # E, N, U and the membrane tap
        b2, l2 = bram(N * consts * 24, lanes, consts * 24)
        brams, lut = b1 + b2, lut + l1 + l2
        passes, word = align_passes(nd)
        if passes:
            b3, l3 = bram(N * word, lanes, word)
            cycles += passes * math.ceil(N / lanes)
            brams, lut = brams + b3, lut + passes * lanes * word + l3
        return LayerEstimate(e.name, nd["type"], N, lanes, cycles, dsp, brams, lut)


register_emitter("Alpha", AlphaEmitter())
