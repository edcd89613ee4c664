"""Fixed-point LIF and IF neurons over a whole chunk of steps in one fused loop: the bits of
FixedNeuron's step loop (NeuronRule.step around LIFRuntime.step, then the membrane's ceil rounding,
docs/fixed_point.md section 5) with fewer passes per step.

The step loop runs, per step, the runtime's ``u = beta*v; u += leak; u += gain*x_k; u -= R*thr;
s = u > thr`` and then ``v = clamp(ceil(u * 2^f), lo, hi) * 2^-f``. Here, with the same operands:

* the membrane is kept scaled by 2^f (the membrane format's fractional bits). Multiplying by a power of
  two is exact in binary floating point, so every op on scaled operands gives exactly the scaled result
  of the same op: ceil and clamp run on the state in place, and the two scalings per step go;
* the input terms (leak + gain*x_k, scaled) are summed for the whole chunk at once, and each step is
  ``V = beta*V + S_t`` in one op. The plan proved every product and sum of the update exact in float64
  (fixed_rules._check_exact_update: at most 53 significant bits), so any order gives the same value,
  signed zeros included (an exact sum is -0 only when every term is);
* subtraction's reset mask R of step t+1 is step t's spike: ``u > thr`` equals ``v > thr`` for the
  rounded v whenever thr lies on the membrane grid inside [lo, hi) (ceil to a grid point and clamping
  keep either side of a grid point), which is checked per call; otherwise the mask is computed again.

Float32 instead of float64 where the update is provably exact in 24 bits (float32_update_exact: the
bound of every partial sum below 2^24 units of its finest grid); with the default 24-bit membranes and
16-bit coefficients the product beta*v alone needs 42 bits, so that happens only for narrow datapaths.

The other reset modes (the IR's "zero", "zero_post" and "none"; delayed or not) run the runtime's own
reset ops (LIFRuntime._reset_and_fire) in its order, on the scaled state: only the integration
``beta*w + S_t`` is regrouped (exact, as above), every other op is the step loop's op on operands scaled
by 2^f, so it gives exactly the scaled result. The zero modes' keep mask ``v <= thr`` is taken from the
rounded state each step, as the step loop does (a zero reset to 0 with one beta folds ``v*keep`` into
the update: ``S_t + beta*v*keep`` in one op, every product exact, the sum exact as above). In float32 those ops must be exact too: a zero reset
gives v, +-0 or v_reset (on the membrane grid, inside the format, so beta*v_reset keeps the bound
below) and the undelayed zero reset v, +-0 or 2v, all exact; the undelayed subtraction's
``u - D*thr`` (D = spike - R in {-1, 0, 1}, D*thr exact) rounds once the exact value
``beta*v + leak + S - spike*thr``, which has the same bound as the delayed update with R = spike.

Inputs may come as float32 (values handed over by talon.backend.cpu.fixed_narrow): each is scaled into
S in float64 (the same exact products), or, for the delayed subtraction with one input and no gain or
leak, added per step in place (``V = beta*V; V += 2^f * x_t``: the same two exact terms and sum).
The spikes may be returned as float32 (spikes32, the same values); the loop then keeps each step's
spikes in float64 buffers first, since ops that mix dtypes take a slower path.

LIF and IF runtimes whose rule is NeuronRule's own step, without a state observer, take this path;
everything else keeps the step loop. ENABLED = False turns it off (benchmarks/fixed_point.py compares
both ways bit for bit).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from talon.backend.cpu import clip_watch
from talon.backend.cpu.fixed_format import Format, NodePlan
from talon.backend.cpu.fixed_rules import NeuronRule
from talon.bridge.modules import IFRuntime, LIFRuntime

#: Off: every fixed-point neuron runs the step loop (the reference the fused loop must equal).
ENABLED = True
#: The reset modes of LIFRuntime._reset_and_fire this module reproduces (delayed or not).
RESET_MODES = ("subtract", "zero", "zero_post", "none")
#: Exponent range where float32 scaling stays exact (its normal range is 2^-126 .. 2^127).
_FLOAT32_EXP = 100


def float32_update_exact(membrane: Format, in_formats: Sequence[Format], coef_frac: int) -> bool:
    """True when every value of the fused update ``beta*v + leak + sum_k gain*x_k - R*thr`` (and each of
    its partial sums) is an integer multiple of the finest grid 2^-(F+c) below 2^24 of them, so float32
    holds it exactly: coefficients are below 2 in magnitude (Q(c+2).c), the membrane, its leak and
    threshold within the membrane format, each input within its own format."""
    fm = membrane.frac
    fine = max([fm] + [f.frac for f in in_formats])
    if max(abs(fine + coef_frac - fm), abs(fm)) > _FLOAT32_EXP:  # the scaled state's finest unit, its scale
        return False
    # in units of 2^-(fine + c): beta*v < 2^(c+mb+fine-fm), leak and R*thr < 2^(c+mb-1+fine-fm) each,
    # gain*x_k < 2^(c+bk+fine-fk)
    units = (1 << (membrane.bits + 1 + fine - fm)) + sum(1 << (f.bits + fine - f.frac) for f in in_formats)
    return (units << coef_frac) <= (1 << 24)


def spikes_fit_float32(inner: Any) -> bool:
    """True when every spike the runtime emits (0, 1 or its graded factor) is a float32 value."""
    gsf = inner.graded_spikes_factor
    return gsf is None or float(np.float32(gsf)) == gsf


def fused_run_seq(inner: Any, plan: NodePlan, rule: Any) -> Callable[..., tuple[Tensor, Any]] | None:
    """The fused run_seq of a fixed-point neuron, or None where it does not apply (see the docstring).
    It takes (inputs, state, spikes32=False): spikes32 returns the spikes as float32 (the same values)."""
    if type(inner) not in (LIFRuntime, IFRuntime) or type(rule).step is not NeuronRule.step:
        return None
    if plan.current is not None or plan.membrane is None or inner.reset_mode not in RESET_MODES:
        return None
    coef_frac = plan.fracs.get("gain")  # every coefficient's fractional bits (Q(c+2).c)
    single = coef_frac is not None and float32_update_exact(plan.membrane, plan.in_formats, coef_frac)
    run = _run if inner.reset_mode == "subtract" and inner.reset_delay else _run_modes

    def fused(inputs: Sequence[Tensor], state: Any, spikes32: bool = False) -> tuple[Tensor, Any]:
        seen: list | None = [] if clip_watch.active() is not None else None
        out = run(inner, plan.membrane, single, inputs, state, spikes32, seen)
        if seen:  # the chunk's membrane extremes before saturation, scaled: integer units
            clip_watch.note_pair(plan.name, "membrane", plan.membrane, clip_watch.fold(seen))
        return out

    return fused


def _scaled_inputs(inner: Any, up: float, dtype: torch.dtype, inputs: Sequence[Tensor], wide: torch.dtype) -> Tensor:
    """S = leak + sum_k gain*x_k for every step, scaled, each term in one op as ``x_k * (gain * 2^f)``: the
    runtime's own product gain*x_k is exact in the state's dtype `wide` (the plan's bound), so scaling it
    by a power of two gives the same value as scaling gain first. An input narrower than `wide` (float32
    values handed over by talon.backend.cpu.fixed_narrow) is converted to `wide` first (exact)."""
    gain, leak = inner._op_gain, inner._op_leak
    factor = gain * up if gain is not None else up  # gain scaled by a power of two: exact
    s = None
    for x in inputs:
        term = torch.mul(x, factor) if x.dtype == wide else x.to(wide).mul_(factor)
        s = term if s is None else s.add_(term)
    if leak is not None:
        s.add_(leak * up)
    return s.to(dtype) if s.dtype != dtype else s


def _scaled(inner: Any, name: str, up: float, dtype: torch.dtype) -> Any:
    """A runtime constant (a Python float or its tensor operand ``_op_<name>``) scaled by `up`."""
    value = getattr(inner, name)
    return value * up if isinstance(value, float) else (getattr(inner, "_op_" + name) * up).to(dtype)


def _scaled_chunk(inner: Any, fmt: Format, single: bool, inputs: Sequence[Tensor], v0: Tensor) -> tuple[torch.dtype, float, float, Tensor, Tensor, Any]:
    """(dtype, 2^f, 2^-f, the chunk's input terms S, the membrane and the threshold) scaled by 2^f."""
    dtype = torch.float32 if single else v0.dtype
    up, down = math.ldexp(1.0, fmt.frac), math.ldexp(1.0, -fmt.frac)
    s = _scaled_inputs(inner, up, dtype, inputs, v0.dtype)
    return dtype, up, down, s, torch.mul(v0, up).to(dtype), _scaled(inner, "v_threshold", up, dtype)


def _raw_input(inner: Any, single: bool, inputs: Sequence[Tensor], v0: Tensor) -> Tensor | None:
    """The one input, when it is narrower than the state (float32 values handed over) and the update has
    no gain and no leak: each step then adds it scaled in place (``V = beta*V; V += 2^f * x_t``, both
    exact: the same two terms and the same sum as ``beta*V + S_t``), which costs less than converting
    and scaling the whole chunk into S first."""
    if single or len(inputs) != 1 or inputs[0].dtype == v0.dtype or inner._op_gain is not None or inner._op_leak is not None:
        return None
    return inputs[0]


def _run(inner: Any, fmt: Format, single: bool, inputs: Sequence[Tensor], state: Any, spikes32: bool = False,
         seen: list | None = None) -> tuple[Tensor, Any]:
    v0 = state[0]
    raw = _raw_input(inner, single, inputs, v0)
    if raw is not None:
        dtype, up, down = v0.dtype, math.ldexp(1.0, fmt.frac), math.ldexp(1.0, -fmt.frac)
        s, v, thr_s = raw, torch.mul(v0, up), _scaled(inner, "v_threshold", up, v0.dtype)
    else:
        dtype, up, down, s, v, thr_s = _scaled_chunk(inner, fmt, single, inputs, v0)
    lo, hi = fmt.lo, fmt.hi
    # the spike is the next step's reset mask when thr is on the grid, inside [lo, hi) (module docstring)
    thr_t = torch.as_tensor(thr_s, dtype=torch.float64)
    spike_is_mask = bool(((thr_t == thr_t.floor()) & (thr_t >= lo) & (thr_t < hi)).all())
    beta, beta_t = _betas(inner, dtype)
    out = torch.empty(s.shape, dtype=torch.float32 if spikes32 else dtype, device=s.device)
    reset = torch.gt(v, thr_s, out=torch.empty_like(v))
    spare = torch.empty_like(v) if not spike_is_mask else None
    # float32 spikes from a float64 state: each step's spikes in the state's dtype first (ops that mix
    # dtypes take a slower path), two buffers taking turns as this step's spikes and the last step's mask
    pair = (torch.empty_like(v), torch.empty_like(v)) if out.dtype != v.dtype else None
    for t, (s_t, o) in enumerate(zip(s.unbind(0), out.unbind(0))):
        if raw is None:
            _integrate(v, s_t, beta, beta_t)
        else:
            _integrate(v, None, beta, beta_t)
            v.add_(s_t, alpha=up)
        _subtract(v, reset, thr_s)
        spike = torch.gt(v, thr_s, out=o if pair is None else pair[t & 1])
        if pair is not None:
            o.copy_(spike)
        v.ceil_()
        if seen is not None:  # saturation watched (talon.backend.cpu.clip_watch)
            seen.append(torch.aminmax(v))
        v.clamp_(lo, hi)
        reset = spike if spike_is_mask else torch.gt(v, thr_s, out=spare)
    return _result(inner, out, v, v0, down, spikes32)


def _run_modes(inner: Any, fmt: Format, single: bool, inputs: Sequence[Tensor], state: Any, spikes32: bool = False,
               seen: list | None = None) -> tuple[Tensor, Any]:
    """The other reset modes: LIFRuntime._reset_and_fire's ops in its order on the scaled state, the
    integration regrouped as ``beta*w + S_t`` (module docstring)."""
    v0 = state[0]
    dtype, up, down, s, v, thr_s = _scaled_chunk(inner, fmt, single, inputs, v0)
    v_reset = inner.v_reset
    vr_s = None if v_reset is None else _scaled(inner, "v_reset", up, dtype)
    mode, delay, lo, hi = inner.reset_mode, inner.reset_delay, fmt.lo, fmt.hi
    beta, beta_t = _betas(inner, dtype)
    out = torch.empty(s.shape, dtype=torch.float32 if spikes32 else dtype, device=s.device)
    mask = torch.empty_like(v)  # keep (zero modes) or R (subtraction) of this step
    # zero reset to 0 with one beta (or none): beta*(v*keep) + S_t in one op, its products exact as the sum
    fold = mode == "zero" and vr_s is None and beta_t is None
    for s_t, o in zip(s.unbind(0), out.unbind(0)):
        if mode == "subtract":
            torch.gt(v, thr_s, out=mask)
        elif mode != "none":
            torch.le(v, thr_s, out=mask)
            if fold:
                torch.addcmul(s_t, v, mask, value=1.0 if beta is None else beta, out=v)
            elif mode == "zero":
                _zero(v, mask, vr_s)
        if not fold:  # a fold integrated above
            _integrate(v, s_t, beta, beta_t)
        if mode == "subtract":
            _subtract(v, mask, thr_s)
        elif mode == "zero_post":
            _zero(v, mask, vr_s)
        torch.gt(v, thr_s, out=o)
        if not delay and mode != "none":
            # the runtime's v - D*thr (subtraction) or v - D*v (zero modes), D = spike - R = spike - (1 - keep)
            d = torch.sub(o, mask) if mode == "subtract" else o - torch.rsub(mask, 1.0)
            v = v - d * (thr_s if mode == "subtract" else v)
        v.ceil_()
        if seen is not None:  # saturation watched (talon.backend.cpu.clip_watch)
            seen.append(torch.aminmax(v))
        v.clamp_(lo, hi)
    return _result(inner, out, v, v0, down, spikes32)


def _betas(inner: Any, dtype: torch.dtype) -> tuple[float | None, Tensor | None]:
    """(beta as a Python float, or None; else its per-neuron tensor operand in `dtype`, or None for IF)."""
    beta = inner.beta if isinstance(inner.beta, float) else None
    beta_t = None if inner._op_beta is None or beta is not None else inner._op_beta.to(dtype)
    return beta, beta_t


def _integrate(v: Tensor, s_t: Tensor | None, beta: float | None, beta_t: Tensor | None) -> None:
    """V = beta*V + S_t in place (exact in any order: module docstring); V = beta*V alone without S_t."""
    if s_t is None:
        if beta is not None:
            v.mul_(beta)
        elif beta_t is not None:
            v.mul_(beta_t)
    elif beta is not None:
        torch.add(s_t, v, alpha=beta, out=v)
    elif beta_t is not None:
        v.mul_(beta_t).add_(s_t)
    else:  # IF: no decay
        v.add_(s_t)


def _result(inner: Any, out: Tensor, v: Tensor, v0: Tensor, down: float, spikes32: bool = False) -> tuple[Tensor, Any]:
    """The chunk's spikes in the state's dtype, or float32 (spikes32), graded by the runtime's factor (a
    float32 value: exact either way), and the membrane unscaled."""
    if out.dtype != v0.dtype and not spikes32:
        out = out.to(v0.dtype)
    if inner.graded_spikes_factor is not None:
        out.mul_(inner.graded_spikes_factor)
    return out, (v.to(v0.dtype).mul_(down),)


def _zero(v: Tensor, keep: Tensor, v_reset: Any) -> None:
    """_SpikingNeuron._zero in place on the scaled state: v*keep, then + (1 - keep)*v_reset."""
    v.mul_(keep)
    if v_reset is not None:
        if isinstance(v_reset, float):
            v.add_(torch.rsub(keep, 1.0), alpha=v_reset)
        else:
            v.addcmul_(torch.rsub(keep, 1.0), v_reset)


def _subtract(v: Tensor, reset: Tensor, thr_s: Any) -> None:
    """modules._subtract_reset on the scaled state."""
    if isinstance(thr_s, float):
        v.sub_(reset, alpha=thr_s)
    else:
        v.addcmul_(reset, thr_s, value=-1.0)
