"""snnTorch neuron converters: Leaky, Synaptic, RLeaky, RSynaptic, Lapicque (Alpha's: talon.bridge.primitives.alpha).

The only module of talon.bridge that imports snntorch. Every mapping here is exact: the IR runtime
(float32, coefficients derived in float64 and rounded once) reproduces snnTorch 1.0.0 spike for spike
and bit for bit. docs/bridge.md derives each equation from the snnTorch source; docs/neurons.md has the
bit-level facts this relies on (clamping, state_function binding, float grouping).

Export units: the graph's dt is 1.0 and a decay b becomes tau = dt / (1 - float64(b)), with the input
gain r = tau / dt, so the runtime's float64 `1 - dt/tau` rounds back to b and `dt*r/tau` to exactly 1.
Constants are stored at the shape they vary over (a scalar for snnTorch's usual scalar beta), in float32
where a float32 value does the same (tau: a float32 whose float64 `1 - dt/tau` still rounds to b).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import snntorch as snn
import torch
import torch.nn as nn

from talon.bridge.converters import (
    MODULE_CONVERTERS, ConverterResult, ExportContext, converter_for, output_names, register_converter, registered_type,
)
from talon.ir import IF, LI, LIF, CubaLIF, Graph, Input, Integrator, Node, Output, Scale, Threshold
from talon.ir._compact import float32_if_exact, smallest_broadcast

__all__ = ["CONVERTERS", "is_neuron", "is_snntorch_layer", "no_converter_hint", "state_index", "memoryless", "membrane_readout", "convert_leaky", "convert_synaptic", "convert_rleaky", "convert_rsynaptic",
           "convert_lapicque"]

Shape = tuple[int, ...]

# snnTorch binds the integration once in __init__ (state_function); reset_mechanism_val is what its
# reset_delay=False branch reads at run time. The IR reset mode follows the bound function.
_STATE_FUNCTIONS = {"_base_sub": (0, "subtract"), "_base_zero": (1, "zero"), "_base_int": (2, "none")}


def is_neuron(module: nn.Module) -> bool:
    return isinstance(module, snn.SpikingNeuron)


def is_snntorch_layer(module: nn.Module) -> bool:
    """A module of snnTorch's neuron package, SpikingNeuron or not (LeakyParallel wraps an nn.RNN): a leaf of the
    trace, so an unconverted one is refused by its own path and type, not by the torch layer inside it."""
    return is_neuron(module) or type(module).__module__.startswith("snntorch._neurons")


def no_converter_hint(module: nn.Module) -> str | None:
    """For an snnTorch neuron without a converter: the neurons that have one, as the way forward."""
    if not is_snntorch_layer(module) or converter_for(module) is not None:
        return None
    known = sorted(t.__name__ for t in MODULE_CONVERTERS if t.__module__.startswith("snntorch."))
    return (f"snnTorch's {type(module).__name__} has no IR equivalent; the snnTorch neurons to_ir converts are "
            f"{', '.join(known)} (stepped one time step per call): build the layer from one of them")


# What each neuron's forward returns, by name: a state argument `mem` is carried over when it is output `mem`.
# A neuron registered elsewhere declares its names with register_converter(..., outputs=...).
_OUTPUTS: dict[type, tuple[str, ...]] = {
    snn.Leaky: ("spk", "mem"), snn.Lapicque: ("spk", "mem"), snn.Synaptic: ("spk", "syn", "mem"),
    snn.RLeaky: ("spk", "mem"), snn.RSynaptic: ("spk", "syn", "mem"),
}


def state_index(module: nn.Module, param: str) -> int | None:
    """The index in the neuron's output tuple of the state that its forward argument `param` takes back."""
    names = _OUTPUTS.get(type(module)) or output_names(type(module)) or ()
    return names.index(param) if param in names else None


def memoryless(m: nn.Module, ctx: ExportContext) -> ConverterResult:
    """What a neuron computes when forward restarts it from zero on every call: with U[t-1] = 0 (and no
    previous spike, as θ >= 0), Leaky's and Synaptic's membrane is exactly the input, so S = (x > θ)*gsf:
    a Threshold (and a Scale for gsf != 1). Anything else is refused with the reason."""
    mechanism, gsf = _check_common(m, ctx)
    fix = ("loop over time inside forward, take the state as a forward argument (forward(self, x, mem=None)), or "
           "use init_hidden=True, so that the membrane carries over from step to step")
    if type(m) not in (snn.Leaky, snn.Synaptic):
        raise ctx.unsupported(m, f"forward restarts it from its initial state on every call, so it is memoryless, and a "
                              f"memoryless {type(m).__name__} is not a threshold the IR can express; {fix}")
    threshold = _param(m, ctx, "threshold", m.threshold, ctx.output_shape)
    if np.any(threshold < 0):
        raise ctx.unsupported(m, f"forward restarts it on every call and a negative threshold resets it at once; {fix}")
    node = Threshold(v_threshold=threshold.astype(np.float32))
    if np.float32(gsf) == 1.0:
        return node
    shape = ctx.output_shape
    return Graph({"input": Input(shape=shape), "threshold": node,
                  "gsf": Scale(scale=np.asarray(gsf, dtype=np.float32)), "output": Output(shape=shape)},
                 [("input", "threshold"), ("threshold", "gsf"), ("gsf", "output")])


def membrane_readout(m: nn.Module, ctx: ExportContext, index: int) -> Node:
    """The neuron whose output `index` (a state) forward returns, when it can be that output exactly: a
    reset-free Leaky's membrane U = β*U[t-1] + x is an LI (an Integrator when β = 1)."""
    names = _OUTPUTS.get(type(m)) or output_names(type(m)) or ()
    what = names[index] if index < len(names) else f"output {index}"
    if type(m) is not snn.Leaky or what != "mem":
        raise ctx.unsupported(m, f"forward returns its state {what!r}; only the membrane of a Leaky with "
                              "reset_mechanism='none' has an IR equivalent (LI): return the spikes, or use that readout",
                              converter_hint=False)
    mechanism, _ = _check_common(m, ctx)
    if mechanism != "none":
        raise ctx.unsupported(m, f"forward returns its membrane, which its {mechanism!r} reset changes on every spike; the "
                              "IR's readout (LI) has no reset: use snn.Leaky(..., reset_mechanism='none') as the readout "
                              "layer, or return the spikes", converter_hint=False)
    shape = ctx.output_shape
    beta = _decay(m, ctx, "beta", m.beta, shape)
    if np.all(beta == 1.0):
        return Integrator(r=np.ones(shape))
    if np.any(beta == 1.0):
        raise ctx.unsupported(m, "beta is 1 for some neurons and below 1 for others: an LI cannot hold tau = infinity",
                              converter_hint=False)
    tau = _tau(beta, ctx.dt)
    return LI(tau=tau, r=tau / ctx.dt, v_leak=np.zeros(shape))


def _param(m: nn.Module, ctx: ExportContext, name: str, value: Any, shape: Shape) -> np.ndarray:
    """A neuron parameter as float32 at the shape it varies over (talon.ir smallest_broadcast: a scalar, one
    per channel, or one per neuron), broadcasting to the neuron shape.

    snnTorch computes with the float32 value: 0-dim parameters of any dtype take the membrane's dtype,
    ints promote to float32. A per-neuron float64 tensor would promote the membrane to float64, which a
    float32 runtime cannot reproduce.
    """
    t = torch.as_tensor(value).detach().cpu()
    if t.dim() > 0 and t.dtype == torch.float64:
        raise ctx.unsupported(m, f"per-neuron {name} is float64, which makes snnTorch integrate in float64; use float32 parameters")
    arr = t.to(torch.float32).numpy()
    while arr.ndim > len(shape) and arr.shape[0] == 1:  # a leading batch-like 1 broadcasts away
        arr = arr[0]
    try:
        np.broadcast_to(arr, shape)
    except ValueError:
        raise ctx.unsupported(m, f"{name} has shape {tuple(t.shape)}, which does not broadcast to the neuron shape {shape}") from None
    return smallest_broadcast(arr).astype(np.float32)


def _decay(m: nn.Module, ctx: ExportContext, name: str, value: Any, shape: Shape) -> np.ndarray:
    """A decay factor clamped to [0, 1] as snnTorch does on every use (the stored value may drift)."""
    return np.clip(_param(m, ctx, name, value, shape), 0.0, 1.0)


def _tau(b: np.ndarray, dt: float) -> np.ndarray:
    """tau = dt / (1 - b) such that the runtime's float64 1 - dt/tau rounds back to the float32 b: in float32
    when a float32 tau per neuron does (the nearest, or a neighbour of it), else the float64 quotient."""
    target = np.asarray(b, dtype=np.float32)
    with np.errstate(divide="ignore"):
        tau = dt / (1.0 - np.asarray(b, dtype=np.float64))
        t32 = tau.astype(np.float32)
        chosen, done = t32.copy(), np.zeros(t32.shape, dtype=bool)
        for cand in (t32, np.nextafter(t32, np.float32(np.inf)), np.nextafter(t32, np.float32(-np.inf))):
            ok = ~done & ((1.0 - dt / cand.astype(np.float64)).astype(np.float32) == target)
            chosen = np.where(ok, cand, chosen)
            done |= ok
    return chosen.astype(np.float32) if np.all(done) else tau


def _per_dt(tau: np.ndarray, dt: float) -> np.ndarray:
    """tau / dt in float64 (the input gains r and w_in), stored as float32 where that is exact."""
    return float32_if_exact(np.asarray(tau, dtype=np.float64) / dt)


#: Membranes minus threshold at and around the step: every snnTorch surrogate's forward is (x > 0).float() on them.
_STEP_PROBE = torch.tensor([[-float("inf"), -3.0e38, -1.0, -1e-3, -1e-45, -0.0, 0.0, 1e-45, 1e-3, 1.0, 3.0e38,
                             float("inf")]], dtype=torch.float32)


def _check_spike_function(m: nn.Module, ctx: ExportContext) -> None:
    """snnTorch fires and resets through `spike_grad(mem - threshold)`; the IR neurons through the step x > 0, which
    is the forward of every snntorch.surrogate function. A spike_grad of the user's own must compute that step too."""
    fn = getattr(m, "spike_grad", None)
    if fn is None or getattr(m, "surrogate_disable", False):
        return
    owner = getattr(fn, "__self__", None)  # MySpike.apply of a torch.autograd.Function
    name = f"{owner.__qualname__}.{fn.__name__}" if isinstance(owner, type) else getattr(fn, "__qualname__", type(fn).__qualname__)
    fix = ("TALON's neurons fire when the membrane exceeds the threshold (the step x > 0, the forward pass of every "
           "snntorch.surrogate function); use one of those, or give spike_grad a forward that returns (x > 0).float()")
    try:
        with torch.no_grad():
            got = fn(_STEP_PROBE.clone())
    except Exception as exc:  # noqa: BLE001 - the user's function: say that it could not be checked, and why
        raise ctx.unsupported(m, f"its spike_grad {name} could not be checked on a probe of membranes ({exc}); {fix}") from exc
    want = (_STEP_PROBE > 0).float()
    if not isinstance(got, torch.Tensor) or got.shape != want.shape or not torch.equal(got.float(), want):
        shown = got.flatten().tolist() if isinstance(got, torch.Tensor) and got.numel() == want.numel() else got
        raise ctx.unsupported(m, f"its spike_grad {name} computes, in the forward pass, {shown} for mem - threshold = "
                              f"{_STEP_PROBE.flatten().tolist()} where snnTorch's step gives {want.flatten().tolist()}; {fix}")


def _check_common(m: nn.Module, ctx: ExportContext) -> tuple[str, float]:
    """Refuse options with no IR equivalent; return (snnTorch reset mechanism, graded spike factor)."""
    _check_spike_function(m, ctx)
    if getattr(m, "inhibition", False):
        raise ctx.unsupported(m, "inhibition=True (only the neuron with the largest membrane per sample fires) has no IR equivalent")
    if getattr(m, "state_quant", False):
        raise ctx.unsupported(m, "state_quant quantizes the membrane to a fixed level set, which the IR neurons do not model")
    fn = getattr(getattr(m, "state_function", None), "__name__", None)
    if fn not in _STATE_FUNCTIONS:
        raise ctx.unsupported(m, f"unknown integration function {fn!r}")
    val, mechanism = _STATE_FUNCTIONS[fn]
    if int(m.reset_mechanism_val) != val:
        raise ctx.unsupported(
            m, f"reset_mechanism was changed after construction: snnTorch still integrates with {mechanism!r} reset but "
            f"its reset_delay branch uses {list(snn.SpikingNeuron.reset_dict)[int(m.reset_mechanism_val)]!r}"
        )
    gsf = torch.as_tensor(m.graded_spikes_factor).detach()
    if gsf.numel() != 1:
        raise ctx.unsupported(m, "a per-neuron graded_spikes_factor has no IR equivalent (the IR field is one number)")
    return mechanism, float(gsf.to(torch.float32).item())


def _lif_or_if(m: nn.Module, ctx: ExportContext, reset_mode: str, reset_delay: bool, gsf: float) -> Node:
    """A Leaky-style membrane: LIF, or IF when beta is 1 everywhere (no decay)."""
    shape = ctx.output_shape
    beta = _decay(m, ctx, "beta", m.beta, shape)
    threshold = _param(m, ctx, "threshold", m.threshold, shape)
    common = dict(v_threshold=threshold, reset_mode=reset_mode, reset_delay=reset_delay, graded_spikes_factor=gsf)
    if np.all(beta == 1.0):
        return IF(**common)
    if np.any(beta == 1.0):
        raise ctx.unsupported(m, "beta is 1 for some neurons and below 1 for others: an LIF cannot hold tau = infinity, an IF layer cannot leak")
    tau = _tau(beta, ctx.dt)
    return LIF(tau=tau, r=_per_dt(tau, ctx.dt), v_leak=np.zeros((), np.float32), **common)


def _cuba(m: nn.Module, ctx: ExportContext, reset_mode: str, reset_delay: bool, gsf: float) -> Node:
    shape = ctx.output_shape
    alpha = _decay(m, ctx, "alpha", m.alpha, shape)
    beta = _decay(m, ctx, "beta", m.beta, shape)
    for name, v in (("alpha", alpha), ("beta", beta)):
        if np.any(v == 1.0):
            raise ctx.unsupported(m, f"{name} is 1 (no decay): the IR CubaLIF would need an infinite time constant")
    tau_syn, tau_mem = _tau(alpha, ctx.dt), _tau(beta, ctx.dt)
    return CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=_per_dt(tau_mem, ctx.dt), w_in=_per_dt(tau_syn, ctx.dt), v_leak=np.zeros((), np.float32),
                   v_threshold=_param(m, ctx, "threshold", m.threshold, shape), reset_mode=reset_mode,
                   reset_delay=reset_delay, graded_spikes_factor=gsf)


def _recurrent(m: nn.Module, ctx: ExportContext) -> Node:
    """The recurrent connection of RLeaky/RSynaptic: Affine (linear), Conv2d, or Scale (one-to-one V)."""
    rec = m.recurrent
    rec_ctx = ExportContext(path=f"{ctx.path}.recurrent", input_shapes=(ctx.output_shape,), output_shape=ctx.output_shape, dt=ctx.dt)
    if registered_type(rec) in (nn.Linear, nn.Conv2d):  # a weight_norm'd (parametrized) one too
        convert = converter_for(rec)
        assert convert is not None
        node = convert(rec, rec_ctx)
        assert isinstance(node, Node)
        return node
    if type(rec).__name__ == "RecurrentOneToOne":
        # The forward multiplies by rec.V (which can differ from m.V after .to(): see docs/neurons.md).
        v = _param(m, ctx, "V", rec.V, ctx.output_shape)
        return Scale(scale=v.astype(np.float32))
    raise ctx.unsupported(m, f"recurrent connection of type {type(rec).__name__}")


def convert_leaky(m: snn.Leaky, ctx: ExportContext) -> ConverterResult:
    mechanism, gsf = _check_common(m, ctx)
    # Leaky's zero reset clears the previous membrane before integrating: IR "zero".
    return _lif_or_if(m, ctx, mechanism, bool(m.reset_delay), gsf)


def convert_synaptic(m: snn.Synaptic, ctx: ExportContext) -> ConverterResult:
    mechanism, gsf = _check_common(m, ctx)
    # Synaptic's zero reset clears the new membrane (input included) and keeps the current: IR "zero_post".
    return _cuba(m, ctx, "zero_post" if mechanism == "zero" else mechanism, bool(m.reset_delay), gsf)


def convert_rleaky(m: snn.RLeaky, ctx: ExportContext) -> ConverterResult:
    mechanism, gsf = _check_common(m, ctx)
    neuron = _lif_or_if(m, ctx, "zero_post" if mechanism == "zero" else mechanism, bool(m.reset_delay), gsf)
    return neuron, _recurrent(m, ctx)


def convert_rsynaptic(m: snn.RSynaptic, ctx: ExportContext) -> ConverterResult:
    mechanism, gsf = _check_common(m, ctx)
    # snnTorch 1.0.0's reset_delay=False branch only rebinds a local variable (or raises): the state it keeps
    # is always the reset_delay=True one.
    neuron = _cuba(m, ctx, "zero_post" if mechanism == "zero" else mechanism, True, gsf)
    return neuron, _recurrent(m, ctx)


def convert_lapicque(m: snn.Lapicque, ctx: ExportContext) -> ConverterResult:
    mechanism, gsf = _check_common(m, ctx)
    shape = ctx.output_shape
    R, C, ts = (torch.as_tensor(v).detach().cpu() for v in (m.R, m.C, m.time_step))
    if not (torch.all(R == 1) and torch.all(ts == 1)):
        raise ctx.unsupported(
            m, "Lapicque scales its input as ((x*R) * (1/(R*C))) * time_step, three float32 roundings one IR gain cannot "
            "reproduce; only R == 1 and time_step == 1 (the beta-only construction) export exactly"
        )
    with torch.no_grad():
        # The float32 coefficients snnTorch computes, with its own expressions: U = x*g + d*U_prev.
        g = (1 / (R * C)).to(torch.float32)
        d = (1 - (ts / (R * C))).to(torch.float32)
    gain = _param(m, ctx, "1/C", g, shape)
    decay = _param(m, ctx, "1 - 1/C", d, shape)
    if np.any(decay >= 1.0):
        raise ctx.unsupported(m, "its decay 1 - 1/C is 1 (C is infinite): the IR LIF would need an infinite time constant")
    tau = np.asarray(_tau(decay, ctx.dt), dtype=np.float64)
    r = gain.astype(np.float64) * tau / ctx.dt
    # Guard the float64 round trip that makes the runtime's coefficients equal snnTorch's.
    if not (np.array_equal((1 - ctx.dt / tau).astype(np.float32), decay.astype(np.float32))
            and np.array_equal((ctx.dt * r / tau).astype(np.float32), gain.astype(np.float32))):
        raise ctx.unsupported(m, "its coefficients do not round-trip through (tau, r) exactly")
    return LIF(tau=float32_if_exact(tau), r=float32_if_exact(r), v_leak=np.zeros((), np.float32), v_threshold=_param(m, ctx, "threshold", m.threshold, shape),
               reset_mode="zero_post" if mechanism == "zero" else mechanism, reset_delay=True, graded_spikes_factor=gsf)


#: The snnTorch neuron types this module converts (each registered with register_converter below).
CONVERTERS = {
    snn.Leaky: convert_leaky,
    snn.Synaptic: convert_synaptic,
    snn.RLeaky: convert_rleaky,
    snn.RSynaptic: convert_rsynaptic,
    snn.Lapicque: convert_lapicque,
}
# The snnTorch neurons register exactly as a user's module type would (talon.bridge.converters), each with
# the IR types its converter returns: a recurrent pair's connection is Linear, Affine, Conv2d or Scale
# (_recurrent). snn.Alpha's converter lives with its primitive (talon.bridge.primitives.alpha), registered by name.
register_converter(snn.Leaky, convert_leaky, produces=("LIF", "IF"))
register_converter(snn.Synaptic, convert_synaptic, produces=("CubaLIF",))
register_converter(snn.RLeaky, convert_rleaky, produces=("LIF", "IF", "Linear", "Affine", "Conv2d", "Scale"))
register_converter(snn.RSynaptic, convert_rsynaptic, produces=("CubaLIF", "Linear", "Affine", "Conv2d", "Scale"))
register_converter(snn.Lapicque, convert_lapicque, produces=("LIF",))
