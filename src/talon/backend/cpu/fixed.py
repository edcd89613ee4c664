"""Hardware (fixed-point) mode at run time: the rounding that the CPU simulator applies around the bridge's
runtime. docs/fixed_point.md is the specification; the FPGA kernels must agree with it bit for bit.

The plan (talon.backend.cpu.fixed_plan, numpy only) makes an on-grid graph whose runtime, run in float64,
computes the integer arithmetic exactly; this module adds only what is not arithmetic of any primitive:
saturation of accumulators, rounding of each node's output to its format, and each neuron's integer step
(its fixed-point rule's `step`, given these rounding functions). The plan's names are re-exported here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from talon.backend.cpu import clip_watch, exact_products, fixed_lif_seq
from talon.backend.cpu.fixed_format import (
    Calibration, FixedPointConfig, FixedPointPlan, Format, NodePlan, dequantize, quantize_array,
)
from talon.backend.cpu.fixed_plan import check_supported, plan_fixed_point
from talon.backend.cpu.fixed_registry import (
    FixedRule, NeuronFormats, PlanContext, Rounding, fixed_rule_for, fixed_rule_types, register_fixed_rule, unregister_fixed_rule,
)
from talon.backend.cpu.fixed_rules import r_for_gain, tau_and_r, tau_for_beta
from talon.bridge.modules import RUNTIME_BUILDERS, StatefulRuntime
from talon.ir import Node
from talon.sdk.fixed_point import frac_for_range

__all__ = [
    "Calibration", "FixedPointConfig", "FixedPointPlan", "FixedRule", "FixedNeuron", "FixedStateless", "Format", "NeuronFormats",
    "NodePlan", "PlanContext", "Rounding", "check_supported", "dequantize", "fixed_node_map", "fixed_rule_for", "fixed_rule_types",
    "frac_for_range", "plan_fixed_point", "quantize_array", "r_for_gain", "register_fixed_rule", "round_ceil", "round_half_up",
    "round_input", "saturate_accumulator", "synaptic_output", "tau_and_r", "tau_for_beta", "unregister_fixed_rule",
]  # fmt: skip


# -- rounding applied around the runtime (torch) ------------------------------------------------------


# Scaling by 2**frac is a multiplication by a Python float holding that power of two: exactly what
# torch.ldexp computes (x * 2**frac), without building an exponent tensor and a pow on every call. Each
# function allocates once and works in place on its own result (never on the caller's tensor).


def round_half_up(x: Any, fmt: Format) -> Any:
    """Activation rounding: saturate(floor(x * 2**frac + 1/2)) * 2**-frac (exact in float64)."""
    return _round_half_up_(torch.mul(x, math.ldexp(1.0, fmt.frac)), fmt)


def round_half_up_(x: Any, fmt: Format) -> Any:
    """round_half_up in place, on a tensor the caller owns (no second allocation of a large input)."""
    return _round_half_up_(x.mul_(math.ldexp(1.0, fmt.frac)), fmt)


def round_input(x: Any, fmt: Format, spikes: bool = False) -> Any:
    """A graph input in float64, rounded half up to its format (a new tensor; `x` is not changed).

    `spikes`: the caller knows every value is 0 or 1 (a rate encoder's output, a checked sequence).
    Where the format holds 1 exactly (2^frac within its range, frac >= 0), rounding then changes only
    -0.0, into +0.0 (floor(-0.0 + 1/2) = +0), which adding +0.0 does too: one pass instead of a copy and
    five passes."""
    if spikes and spikes_survive_rounding(fmt):
        out = torch.empty(x.shape, dtype=torch.float64, device=x.device)
        # a plain conversion (a third of the add's time) where no sign bit is set: no -0.0 to change
        return out.copy_(x) if _no_sign_bit(x) else torch.add(x, 0.0, out=out)
    return round_half_up_(x.to(torch.float64, copy=True), fmt)


def spike_input32(x: Any) -> Any:
    """A float32 graph input of spikes as its readers may take it in float32 (talon.backend.cpu.fixed_narrow's
    float32_inputs): round_input's values (0 and 1, -0.0 made +0.0), in float32. `x` itself where no sign
    bit is set (it is never modified)."""
    return x if _no_sign_bit(x) else torch.add(x, 0.0)


def spikes_survive_rounding(fmt: Format) -> bool:
    """True when rounding to `fmt` leaves 0 and 1 as they are (the format holds 1: 2^frac within its
    range, frac >= 0); -0.0 becomes +0.0."""
    return fmt.frac >= 0 and (1 << fmt.frac) <= fmt.hi


def _no_sign_bit(x: Any) -> bool:
    """True when no element of the CPU float tensor `x` has its sign bit set (one SIMD minimum over its
    bits as integers); False where that cannot be told cheaply."""
    bits = _SIGNED_BITS.get(x.dtype)
    if bits is None or x.device.type != "cpu" or x.is_neg() or not x.numel():
        return False
    return bool(x.detach().numpy().view(bits).min() >= 0)


_SIGNED_BITS = {torch.float64: np.int64, torch.float32: np.int32, torch.float16: np.int16}


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
    clip_watch.note_synaptic(plan, x)
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
            out[name] = lambda node, ctx, p=p: FixedStateless(default(node, ctx), lambda y, p=p: _requant(y, p))
        elif p.kind == "neuron":
            out[name] = lambda node, ctx, p=p: FixedNeuron(default(node, ctx), p, on_state, fixed_rule_for(p.type_name, p.name))
    return out


def _requant(y: Any, p: NodePlan) -> Any:
    """A requantising node's exact result rounded half up to its format (saturation watched)."""
    clip_watch.note_half_up(p.name, "output", y, p.out_format)
    return round_half_up(y, p.out_format)


def _synaptic_runtime(inner: nn.Module, p: NodePlan) -> nn.Module:
    """The synaptic module followed by saturation and rounding; its products in float32 and/or on the
    non-zero inputs only where that is provably exact (talon.backend.cpu.exact_products)."""
    post = lambda y, p=p: synaptic_output(y, p)  # noqa: E731
    if not exact_products.is_candidate(inner) or len(p.in_formats) != 1:
        return FixedStateless(inner, post)
    cache = p.__dict__.setdefault("_derived_weights", {})  # shared by every run of this plan
    if "float32" not in cache:  # the plan's integers never change: decide once per plan
        fin = p.in_formats[0]
        single = exact_products.float32_exact(p.ints, p.fracs, fin.bits, fin.frac, p.acc_frac)
        post32 = None
        if single:
            bound = exact_products.accumulator_bound(p.ints, p.fracs, fin.bits, p.acc_frac)
            post32 = exact_products.float32_post(bound, p.acc_bits, p.acc_frac, p.out_format.bits, p.out_format.frac)
        cache["float32"] = single, post32
    single, post32 = cache["float32"]
    mod = exact_products.ExactSynaptic(inner, post, single, cache, post32)
    mod.watch_plan = p  # its float32 rounding path reports saturation under the node's name
    return mod


class FixedStateless(nn.Module):
    """A stateless runtime module followed by a rounding function (saturation/requantisation)."""

    def __init__(self, inner: nn.Module, post: Any) -> None:
        super().__init__()
        self.inner, self.post = inner, post

    def forward(self, *inputs: Any) -> Any:
        return self.post(self.inner(*inputs))




#: what a neuron's fixed-point rule rounds its state with
ROUNDING = Rounding(half_up=round_half_up, ceil=round_ceil)


def _watched_rounding(name: str, rule: FixedRule) -> Rounding:
    """ROUNDING that also reports saturation of node `name`'s states (talon.backend.cpu.clip_watch): a
    state rounded up is its membrane, one rounded half up the rule's `half_up_state`."""
    what = getattr(rule, "half_up_state", "synaptic current")

    def half_up(x: Any, fmt: Format) -> Any:
        clip_watch.note_half_up(name, what, x, fmt)
        return round_half_up(x, fmt)

    def ceil(x: Any, fmt: Format) -> Any:
        clip_watch.note_ceil(name, "membrane", x, fmt)
        return round_ceil(x, fmt)

    return Rounding(half_up=half_up, ceil=ceil)


class FixedNeuron(StatefulRuntime):
    """A neuron runtime run by its fixed-point rule's integer step (for the built-in neurons: the stored
    membrane rounded up (ceil) to its format after every step, integrating neurons outputting it, and a
    synaptic current rounded half up before the membrane reads it; docs/fixed_point.md)."""

    def __init__(self, inner: nn.Module, plan: NodePlan, on_state: Any, rule: FixedRule | None = None) -> None:
        super().__init__()
        self.inner, self.plan, self.on_state = inner, plan, on_state
        self.rule = rule if rule is not None else fixed_rule_for(plan.type_name, plan.name)
        self.rounding = _watched_rounding(plan.name, self.rule)
        # whole chunks in one fused loop where that gives the step loop's bits (talon.backend.cpu.fixed_lif_seq)
        self._fused = fixed_lif_seq.fused_run_seq(inner, plan, self.rule) if on_state is None else None
        # Set by talon.backend.cpu.fixed_narrow: inputs may come as float32 (widened to float64 here where
        # the step loop runs; the fused loop takes them as they are), and the fused loop's spikes may be
        # returned as float32 (the same values) to exact readers.
        self.widen_inputs = False
        self.emit32 = False

    def _wide(self, inputs: Any) -> Any:
        if not self.widen_inputs:
            return inputs
        return [x.to(torch.float64) if x.dtype == torch.float32 else x for x in inputs]

    def init_state(self, inputs: Any) -> Any:
        return self.inner.init_state(self._wide(inputs))

    def step(self, inputs: Any, state: Any) -> Any:
        out, st = self.rule.step(self.inner, self._wide(inputs), state, self.plan, self.rounding if clip_watch.active() else ROUNDING)
        if self.on_state is not None:
            self.on_state(self.plan.name, st)
        return out, st

    def run_seq(self, inputs: Any, state: Any) -> Any:
        if self._fused is not None and fixed_lif_seq.ENABLED:
            return self._fused(inputs, state, self.emit32)
        return super().run_seq(self._wide(inputs), state)
