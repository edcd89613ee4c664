"""Emitters of the neurons (LIF, IF, LI, Integrator, CubaLIF): input alignment, CubaLIF's current, then the
membrane (docs/fixed_point.md section 3); membrane and spike taps. And ALIF's whole hardware side: its
fixed-point rule beside its emitter (the fixed-point planner imports this package), so that the kernel
and the rule it must match bit for bit sit together (docs/neurons/alif.md)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from talon.backend.cpu.fixed_format import Calibration, FixedPointConfig, Format, NodePlan, dequantize, quantize_array
from talon.backend.cpu.fixed_registry import FixedRule, NeuronFormats, PlanContext, Rounding, register_fixed_rule
from talon.backend.fpga.cgen import c_array
from talon.backend.fpga.emitters.context import NodeCode, NodeEstimate
from talon.backend.fpga.emitters.registry import Emitter, register_emitter
from talon.backend.fpga.model import LayerEstimate, aligned_fraction
from talon.backend.fpga.names import c_string
from talon.errors import BackendError
from talon.ir.node import get_node_class
from talon.ir.primitives.neurons import ALIF, DECAYS
from talon.sdk.fixed_point import frac_for_range, saturation_message

if TYPE_CHECKING:  # the runtime is torch's; ALIF's rule only calls methods of what it is handed
    from torch import Tensor

    from talon.bridge.modules import ALIFRuntime

_MODES = {"none": 0, "subtract": 1, "zero": 2, "zero_post": 3}


class NeuronEmitter(Emitter):
    """k_align_add passes when the inputs need aligning, k_current for a CubaLIF, then k_neuron."""

    def emit(self, code: NodeCode) -> None:
        nd, n, i, t = code.nd, code.name, code.ident, code.nd["type"]
        if nd["kind"] != "neuron":
            raise BackendError(f"the fpga backend cannot realise node {n!r} ({t}, kind {nd['kind']})")
        code.kernel("neuron")
        N, L, c, shape, buf = code.N, code.lanes, code.coef_frac, code.shape, code.buf
        mb, fv = nd["membrane"]
        # CubaLIF: the inputs drive its current (format Qib.fi), the current drives the membrane
        cuba = nd.get("current") is not None
        ib, fi = nd["current"] if cuba else (mb, fv)
        Fm = aligned_fraction(nd)
        spiking = get_node_class(t).spiking
        attrs = nd.get("attrs", {})
        mode = attrs.get("reset_mode", "none") if spiking else "none"
        if mode not in _MODES:
            raise BackendError(f"node {n!r}: reset mode {mode!r} is not in the fixed-point contract")
        delay = bool(attrs.get("reset_delay", True))

        def full(key: str, default: int) -> np.ndarray:
            a = code.arr(key)
            a = np.asarray(default if a is None else a, np.int64)
            return np.broadcast_to(a.reshape(a.shape) if a.ndim else a, shape).reshape(-1)

        code.consts.append(c_array(f"beta_{i}", full("beta", 1 << c)))
        code.consts.append(c_array(f"gain_{i}", full("gain", 0)))
        code.consts.append(c_array(f"leak_{i}", full("leak", 0)))
        code.consts.append(c_array(f"thr_{i}", full("v_threshold", 0)))
        code.consts.append(c_array(f"vreset_{i}", full("v_reset", 0)))
        gsa = code.arr("graded_spikes_factor")
        gs = int(np.asarray(gsa).reshape(-1)[0]) if gsa is not None else 1
        src = code.aligned_input(Fm)
        if cuba:
            code.kernel("current")
            code.consts.append(c_array(f"alpha_{i}", full("alpha", 0)))
            code.consts.append(c_array(f"gin_{i}", full("gain_in", 1 << c)))
            Fv = max(fv, fi)  # the membrane stage reads the current aligned to this fraction
            code.state.append(f"    static int64_t cur_{i}[{N}];  // synaptic current of {c_string(n)}, Q{ib}.{fi}")
            code.reset.append(f"        for (int k = 0; k < {N}; ++k) cur_{i}[k] = 0;")
            code.body.append(f"    static int64_t y_{i}[{N}];")
            code.body.append(f"    k_current<{N}, {ib}, {Fm - fi}, {c + Fm - fi}, {Fv - fi}, {L}>({src}, cur_{i}, alpha_{i}, gin_{i}, y_{i});")
            src, Fm = f"y_{i}", Fv
        code.state.append(f"    static int64_t v_{i}[{N}];  // membrane of {c_string(n)}, Q{mb}.{fv}")
        code.reset.append(f"        for (int k = 0; k < {N}; ++k) v_{i}[k] = 0;")
        code.body.append(f"    static int64_t m_{i}[{N}];")
        code.body.append(f"    k_neuron<{N}, {_MODES[mode]}, {str(delay).lower()}, {str(spiking).lower()}, {mb}, {Fm - fv}, {Fm + c - fv}, {L}>"
                         f"({src}, v_{i}, beta_{i}, gain_{i}, leak_{i}, thr_{i}, vreset_{i}, (int64_t){gs}, {buf}, m_{i});")  # fmt: skip
        code.membrane_tap((mb, fv), f"m_{i}")
        if spiking:
            code.spike_tap()

    def estimate(self, e: NodeEstimate) -> LayerEstimate:
        nd, N = e.nd, e.N
        mb = int(nd["membrane"][0])
        # CubaLIF adds its current: a second state, alpha*I and gain_in*x, two more constants
        cuba = nd.get("current") is not None
        mults, adders, states, consts = (4, 6, 2, 7) if cuba else (2, 4, 1, 5)
        lanes = max(1, math.ceil(N / e.R))
        # CubaLIF runs two loops of N (k_current, then k_neuron) with the new current in between
        loops = 2 if cuba else 1
        # the membrane (and the current, with its y buffer); beta, gain, leak, threshold, reset (alpha, gain_in)
        return e.neuron_layer(lanes, loops * math.ceil(N / lanes) + 6, mults=mults, adders=adders, state_bits=mb * (states + loops - 1),
                              state_width=mb * states, const_bits=consts * 24, const_width=consts * 24)


for _t in ("LIF", "IF", "LI", "Integrator", "CubaLIF"):
    register_emitter(_t, NeuronEmitter())


# -- ALIF --------------------------------------------------------------------------------------------
# The ALIF neuron in hardware: its fixed-point rule (plan and runtime) and its HLS emitter.
#
# Fixed point reproduces Lava-DL's integer ALIF (lava-dl slayer `_li_dynamics_fwd` and `_ath_dynamics_fwd`,
# the arithmetic Loihi runs): the four states (u, th, r, v) share one format Q(membrane_bits).f, f chosen
# from the calibrated range like a LIF membrane's; each decay becomes the 12-bit integer D = round(4096 * d)
# and a state S decays to rstz(S * (4096 - D)) with rstz(P) = P / 4096 rounded towards zero; threshold and
# threshold_step are quantised to the state grid. Lava-DL's state scale s_scale is 2^f here (its default,
# scale = 64, is f = 12). The summed input is rounded half up to the state grid (exact for inputs already
# on it, as spikes through weights on the grid are) and every state saturates to membrane_bits (Loihi's
# 24-bit states), which Lava-DL's int64 emulation never does. templates/kernels/alif.h is the same rule in
# C++; `fixed_step` runs talon.bridge.modules' ALIF one update with these roundings; `ALIFRule` registers it. Cost
# and mapping follow from the class's traits; its lint bounds live with the others in talon/sdk/_bounds.py.

#: Lava-DL's and Loihi's decay precision: decays are integers of 12 bits, D / 4096.
DECAY_FRAC = 12


def state_format(name: str, node: ALIF, max_abs_voltage: float, max_abs_current: float, config: FixedPointConfig) -> Format:
    """The one format of u, th, r and v, from the calibrated voltage and current ranges.

    The threshold and the refractory state are not calibrated, they are bounded: with threshold >= 0 and
    threshold_step >= 0, th >= threshold >= 0 and r >= 0, and a spike needs v >= th + r, so th only rises
    (by the step) while th <= v, and r only rises (by 2 th) while r <= v - th. Hence th <= max(threshold,
    V + step) and r <= V + max th, with V the largest voltage."""
    th0 = np.asarray(node.threshold, np.float64)
    step = np.asarray(node.threshold_step, np.float64)
    if np.any(th0 < 0) or np.any(step < 0):
        raise BackendError(f"fixed-point mode: ALIF {name!r} has a negative threshold or threshold_step; its fixed-point state range "
                           "is bounded only for threshold >= 0 and threshold_step >= 0 (simulate it with mode='float')")
    v = float(max_abs_voltage)
    th_max = max(float(np.max(th0, initial=0.0)), v + float(np.max(step, initial=0.0)))
    r = max(v, float(max_abs_current), th_max, v + th_max)
    return Format(config.membrane_bits, frac_for_range(r, config.membrane_bits) - config.membrane_headroom_bits)


def plan_alif(name: str, node: ALIF, in_fmts: list[Format], sfmt: Format, config: FixedPointConfig) -> tuple[NodePlan, ALIF]:
    """The integers of an ALIF and the on-grid node whose runtime arithmetic is exactly theirs.

    ints: the four decays D (12 fractional bits), threshold and threshold_step (state format)."""
    ints: dict[str, np.ndarray] = {}
    fracs: dict[str, int] = {}
    changes: dict[str, Any] = {}
    for key in DECAYS:
        d = np.rint(np.ldexp(np.asarray(getattr(node, key), np.float64), DECAY_FRAC)).astype(np.int64)  # Lava-DL: torch.round
        ints[key], fracs[key] = d, DECAY_FRAC
        changes[key] = dequantize(d, DECAY_FRAC)
    for key in ("threshold", "threshold_step"):
        value = np.asarray(getattr(node, key), np.float64)
        msg = saturation_message(name, key, value, sfmt.bits, sfmt.frac, f"the ALIF state format {sfmt}")
        if msg:
            raise BackendError(f"fixed-point mode: {msg}; raise membrane_bits")
        ints[key], fracs[key] = quantize_array(value, sfmt), sfmt.frac
        changes[key] = dequantize(ints[key], sfmt.frac)
    # exactness of the float64 emulation: a state times a 13-bit multiplier, and the aligned input sum
    finest = max([sfmt.frac] + [f.frac for f in in_fmts])
    widest = max([sfmt.bits - sfmt.frac] + [f.bits - f.frac for f in in_fmts])
    need = max(sfmt.bits + DECAY_FRAC + 1, widest + finest + math.ceil(math.log2(max(1, len(in_fmts)))) + 1)
    if need > 53:
        raise BackendError(f"fixed-point mode: ALIF {name!r} needs {need} bits for an exact update (> 53): its input formats "
                           f"{[str(f) for f in in_fmts]} are too far from its state format {sfmt}; lower membrane_bits")
    out = Format(config.activation_bits, 0)  # spikes are the integer 1
    plan = NodePlan(name, "ALIF", "neuron", out, list(in_fmts), ints, fracs, membrane=sfmt, attrs={"decay_frac": DECAY_FRAC})
    return plan, node.replace(**changes)


def fixed_step(inner: "ALIFRuntime", inputs: Sequence["Tensor"], state: Any, fmt: Format,
               half_up: Callable[[Any, Format], Any], name: str | None = None) -> tuple["Tensor", Any]:
    """The fixed-point step: talon.bridge.modules' ALIF one update (`inner`, built for the on-grid node, run in
    float64) on the input sum rounded half up to the state grid (`half_up`, the simulator's rounding),
    with Lava-DL's decay rstz(S * (4096 - D)) and saturation to the state format. Every value is an integer
    times 2^-f and every product is exact. `name`: the node whose saturated states are reported
    (talon.backend.cpu.clip_watch)."""
    from talon.backend.cpu import clip_watch  # torch-side: only a simulation steps a rule

    up, down = math.ldexp(1.0, fmt.frac), math.ldexp(1.0, -fmt.frac)
    lo, hi = fmt.lo * down, fmt.hi * down

    def decay(s: "Tensor", keep: Any) -> "Tensor":
        return s.mul(keep).mul_(up).trunc_().mul_(down)  # S*K/4096 towards zero, on the grid

    def sat(s: "Tensor") -> "Tensor":
        if name is not None:  # on the grid already: reports exactly the clamped values
            clip_watch.note_ceil(name, "state", s, fmt)
        return s.clamp(lo, hi)

    return inner.advance(half_up(inner.sum_inputs(inputs), fmt), state, decay=decay, sat=sat)


class ALIFRule(FixedRule):
    """The fixed-point rule of ALIF (talon.backend.cpu.fixed_registry's contract)."""

    carries_loops = True  # its formats follow from its parameters and the calibration alone
    half_up_state = "input sum"

    def formats(self, name: str, node: ALIF, config: FixedPointConfig, calibration: Calibration) -> NeuronFormats:
        sfmt = state_format(name, node, calibration.max_abs_state.get(name, 0.0), calibration.max_abs_current.get(name, 0.0), config)
        return NeuronFormats(sfmt, Format(config.activation_bits, 0))  # a spike is the integer 1

    def plan(self, name: str, node: ALIF, in_fmts: list[Format], act_fmt: Format, ctx: PlanContext) -> tuple[NodePlan, ALIF]:
        return plan_alif(name, node, in_fmts, ctx.neurons[name].membrane, ctx.config)

    def step(self, inner: Any, inputs: Any, state: Any, plan: NodePlan, rnd: Rounding) -> tuple[Any, Any]:
        return fixed_step(inner, inputs, state, plan.membrane, rnd.half_up, plan.name)


register_fixed_rule("ALIF", ALIFRule())


# -- the HLS emitter ------------------------------------------------------------------------------------


class ALIFEmitter(Emitter):
    """k_align_add passes when the inputs need aligning, then k_alif (templates/kernels/alif.h)."""

    def emit(self, code: NodeCode) -> None:
        nd, n, i = code.nd, code.name, code.ident
        if nd["kind"] != "neuron" or nd.get("membrane") is None:
            raise BackendError(f"the fpga backend cannot realise ALIF node {n!r}: its descriptor entry is not a planned neuron")
        code.kernel("alif")
        N, L, shape, buf = code.N, code.lanes, code.shape, code.buf
        mb, fv = (int(x) for x in nd["membrane"])
        Fm = aligned_fraction(nd)

        def full(key: str) -> np.ndarray:
            a = code.arr(key)
            if a is None:
                raise BackendError(f"ALIF node {n!r}: the descriptor has no {key!r} integers")
            return np.broadcast_to(np.asarray(a, np.int64), shape).reshape(-1)

        for key, c in zip(DECAYS, ("ku", "kv", "kth", "kr")):
            code.consts.append(c_array(f"{c}_{i}", (1 << DECAY_FRAC) - full(key)))
        code.consts.append(c_array(f"th0_{i}", full("threshold")))
        code.consts.append(c_array(f"thstep_{i}", full("threshold_step")))
        src = code.aligned_input(Fm)
        for st, what in (("u", "current"), ("th", "threshold"), ("rf", "refractory state"), ("v", "voltage")):
            code.state.append(f"    static int64_t {st}_{i}[{N}];  // {what} of {c_string(n)}, Q{mb}.{fv}")
        code.reset.append(f"        for (int k = 0; k < {N}; ++k) {{ u_{i}[k] = 0; v_{i}[k] = 0; rf_{i}[k] = 0; th_{i}[k] = th0_{i}[k]; }}")
        code.body.append(f"    static int64_t m_{i}[{N}];")
        code.body.append(f"    k_alif<{N}, {mb}, {Fm - fv}, {L}>({src}, u_{i}, th_{i}, rf_{i}, v_{i}, ku_{i}, kv_{i}, kth_{i}, kr_{i}, "
                         f"th0_{i}, thstep_{i}, {buf}, m_{i});")
        code.membrane_tap((mb, fv), f"m_{i}")
        code.spike_tap()

    def estimate(self, e: NodeEstimate) -> LayerEstimate:
        nd, N = e.nd, e.N
        mb = int(nd["membrane"][0])
        lanes = max(1, math.ceil(N / e.R))
        # four decay multiplies (state x 13-bit multiplier); 2*T*S and STEP*S are selects, not multiplies
        mults, adders, states, consts = 4, 8, 4, 6
        return e.neuron_layer(lanes, math.ceil(N / lanes) + 6, mults=mults, adders=adders, state_bits=mb * states, state_width=mb * states,
                              const_bits=consts * mb, const_width=consts * mb)


register_emitter("ALIF", ALIFEmitter())
