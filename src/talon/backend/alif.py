"""The ALIF neuron in hardware: its fixed-point rule (plan and runtime) and its HLS emitter.

Fixed point reproduces Lava-DL's integer ALIF (lava-dl slayer `_li_dynamics_fwd` and `_ath_dynamics_fwd`,
the arithmetic Loihi runs): the four states (u, th, r, v) share one format Q(membrane_bits).f, f chosen
from the calibrated range like a LIF membrane's; each decay becomes the 12-bit integer D = round(4096 * d)
and a state S decays to rstz(S * (4096 - D)) with rstz(P) = P / 4096 rounded towards zero; threshold and
threshold_step are quantised to the state grid. Lava-DL's state scale s_scale is 2^f here (its default,
scale = 64, is f = 12). The summed input is rounded half up to the state grid (exact for inputs already
on it, as spikes through weights on the grid are) and every state saturates to membrane_bits (Loihi's
24-bit states), which Lava-DL's int64 emulation never does. templates/kernels/alif.h is the same rule in
C++; `fixed_step` runs talon.bridge.alif's one update with these roundings; `ALIFRule` registers it. The
value-bounds rule (lint) registers here too; cost and mapping follow from the class's traits.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from talon.backend.cpu.fixed_format import Calibration, FixedPointConfig, Format, NodePlan, dequantize, quantize_array
from talon.backend.cpu.fixed_registry import FixedRule, NeuronFormats, PlanContext, Rounding, register_fixed_rule
from talon.backend.fpga.cgen import c_array
from talon.backend.fpga.emitters.context import NodeCode, NodeEstimate
from talon.backend.fpga.emitters.registry import Emitter, register_emitter
from talon.backend.fpga.model import LayerEstimate, align_passes, aligned_fraction, bram
from talon.backend.fpga.names import c_string
from talon.errors import BackendError
from talon.ir.primitives.neurons import ALIF, DECAYS
from talon.sdk import register_bounds
from talon.sdk.fixed_point import frac_for_range, saturation_message

if TYPE_CHECKING:  # the runtime is torch's; this module only calls methods of what it is handed
    from torch import Tensor

    from talon.bridge.alif import ALIFRuntime

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
               half_up: Callable[[Any, Format], Any]) -> tuple["Tensor", Any]:
    """The fixed-point step: talon.bridge.alif's one update (`inner`, built for the on-grid node, run in
    float64) on the input sum rounded half up to the state grid (`half_up`, the simulator's rounding),
    with Lava-DL's decay rstz(S * (4096 - D)) and saturation to the state format. Every value is an integer
    times 2^-f and every product is exact."""
    up, down = math.ldexp(1.0, fmt.frac), math.ldexp(1.0, -fmt.frac)
    lo, hi = fmt.lo * down, fmt.hi * down

    def decay(s: "Tensor", keep: Any) -> "Tensor":
        return s.mul(keep).mul_(up).trunc_().mul_(down)  # S*K/4096 towards zero, on the grid

    def sat(s: "Tensor") -> "Tensor":
        return s.clamp(lo, hi)

    return inner.advance(half_up(inner.sum_inputs(inputs), fmt), state, decay=decay, sat=sat)


class ALIFRule(FixedRule):
    """The fixed-point rule of ALIF (talon.backend.cpu.fixed_registry's contract)."""

    carries_loops = True  # its formats follow from its parameters and the calibration alone

    def formats(self, name: str, node: ALIF, config: FixedPointConfig, calibration: Calibration) -> NeuronFormats:
        sfmt = state_format(name, node, calibration.max_abs_state.get(name, 0.0), calibration.max_abs_current.get(name, 0.0), config)
        return NeuronFormats(sfmt, Format(config.activation_bits, 0))  # a spike is the integer 1

    def plan(self, name: str, node: ALIF, in_fmts: list[Format], act_fmt: Format, ctx: PlanContext) -> tuple[NodePlan, ALIF]:
        return plan_alif(name, node, in_fmts, ctx.neurons[name].membrane, ctx.config)

    def step(self, inner: Any, inputs: Any, state: Any, plan: NodePlan, rnd: Rounding) -> tuple[Any, Any]:
        return fixed_step(inner, inputs, state, plan.membrane, rnd.half_up)


register_fixed_rule("ALIF", ALIFRule())


def alif_bounds(node: ALIF, args: list, outs: list, dt: float, neurons: dict, name: str) -> list:
    """Value bounds (lint's NEURON_NEVER_FIRES): u stays in the hull of 0 and x / current_decay, v in the
    hull of 0 and u / voltage_decay; with threshold >= 0 and threshold_step >= 0, th >= threshold and r >= 0,
    so a neuron whose largest voltage stays below its threshold never fires. Output: spikes in [0, 1]."""
    shape = outs[0]
    hi = sum(a[1] for a in args)
    full = lambda v: np.broadcast_to(np.asarray(v, np.float64), shape)  # noqa: E731
    du, dv, th0, step = full(node.current_decay), full(node.voltage_decay), full(node.threshold), full(node.threshold_step)
    with np.errstate(divide="ignore", invalid="ignore"):
        umax = np.where(hi <= 0, 0.0, np.where(du > 0, hi / du, np.inf))
        vmax = np.where(umax <= 0, 0.0, np.where(dv > 0, umax / dv, np.inf))
    vmax = np.where((th0 >= 0) & (step >= 0), vmax, np.inf)
    # s = v >= th fires at equality, so unlike record_never's LIF rule (v > th) silence needs vmax < th,
    # with record_never's tolerance for float32 rounding of a voltage that approaches its bound
    never = vmax + 1e-6 * (np.abs(vmax) + np.abs(th0)) < th0
    neurons[name] = (never, vmax, th0)
    return [(np.zeros(shape), np.where(never, 0.0, 1.0))]


register_bounds("ALIF", alif_bounds)


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
        if align_passes(nd)[0] == 0:
            src = code.inputs[0]
        else:
            code.kernel("align")
            code.body.append(f"    static int64_t isum_{i}[{N}];")
            code.body.append(f"    for (int k = 0; k < {N}; ++k) isum_{i}[k] = 0;")
            for s, (_, f) in zip(code.inputs, nd["in_formats"]):
                code.body.append(f"    k_align_add<{N}, {Fm - int(f)}, {L}>({s}, isum_{i});")
            src = f"isum_{i}"
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
        cycles = math.ceil(N / lanes) + 6
        dsp = mults * lanes * math.ceil(mb / e.dsp_tile[0])
        lut = lanes * adders * mb + 100
        b1, l1 = bram(N * mb * states, lanes, mb * states)
        b2, l2 = bram(N * consts * mb, lanes, consts * mb)
        brams, lut = b1 + b2, lut + l1 + l2
        passes, word = align_passes(nd)
        if passes:
            b3, l3 = bram(N * word, lanes, word)
            cycles += passes * math.ceil(N / lanes)
            brams, lut = brams + b3, lut + passes * lanes * word + l3
        return LayerEstimate(e.name, nd["type"], N, lanes, cycles, dsp, brams, lut)


register_emitter("ALIF", ALIFEmitter())
