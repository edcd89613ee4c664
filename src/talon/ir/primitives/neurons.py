"""Stateful neuron primitives: LIF, IF, CubaLIF, LI, Integrator, ALIF, plus Threshold and Delay.

Time is discrete with step `dt` (graph metadata). Every per-neuron parameter array broadcasts to the
neuron shape (the input shape, batch excluded). Inputs arriving on several edges are added, in edge
order, to the quantity the neuron integrates. Decay factors and input gains are computed in float64
from the stored constants and then cast to the simulation dtype:

    beta = 1 - dt / tau              gain = dt * r / tau

so a neuron exported from snnTorch (tau = dt / (1 - beta), r = tau / dt) reproduces snnTorch's float32
beta exactly and has gain exactly 1. The reset `R` is the spike the neuron emitted on the previous step
(`v_prev > v_threshold`), as in snnTorch. Reset modes:

    subtract   v = beta*v + (1-beta)*v_leak + gain*I - R*v_threshold
    zero       v = beta*where(R, v_reset, v) + (1-beta)*v_leak + gain*I      (snnTorch Leaky)
    zero_post  v = where(R, v_reset, beta*v + (1-beta)*v_leak + gain*I)      (snnTorch Synaptic, RLeaky)
    none       v = beta*v + (1-beta)*v_leak + gain*I

Spike: s = (v > v_threshold) * graded_spikes_factor. With `reset_delay=False` (snnTorch's option) the
reset of this step's spike is applied at once, using the unscaled spike: D = (v > v_threshold) - R;
subtract: v -= D*v_threshold; zero modes: v -= D*v. Files from the existing SDK carry no reset fields; they read as mode "zero" with v_reset 0,
the behaviour that SDK documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from talon.errors import PrimitiveError
from talon.ir.node import ANY_FLOAT, Node, Shape, array, boolean, primitive, real, string
from talon.ir.nir_registry import refuse_nir_export
from talon.ir.primitives._shapes import check_broadcast, same_shapes
from talon.ir.primitives._ranges import check_range

RESET_MODES = ("subtract", "zero", "zero_post", "none")


@dataclass(frozen=True)
class NeuronCoefficients:
    """Per-step constants of a neuron at a timestep, in float64 (cast once by whoever simulates).

    beta/leak: membrane decay and (1-beta)*v_leak, None without a leak (IF, Integrator); gain: input
    gain into the membrane; alpha/gain_in: CubaLIF's current decay and input gain (gain_in None means
    exactly 1, the w_in = tau_syn/dt default).
    """

    gain: np.ndarray
    beta: np.ndarray | None = None
    leak: np.ndarray | None = None
    alpha: np.ndarray | None = None
    gain_in: np.ndarray | None = None


def _f64(a: object) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def coefficients(node: Node, dt: float) -> NeuronCoefficients:
    """The one derivation of beta = 1 - dt/tau, gain = dt*r/tau (and CubaLIF's alpha, gain_in): each
    neuron class's own `coefficients(dt)`."""
    derive = getattr(type(node), "coefficients", None)
    if derive is None:
        raise PrimitiveError(f"{node.type_name} has no neuron coefficients (its class defines no coefficients(dt))")
    return derive(node, dt)


def in_time_unit(node: Node, k: float) -> Node:
    """The same neuron for a timestep k times as long (another time unit): `coefficients` gives the same
    beta, gain, alpha and gain_in, up to rounding (each neuron class's own `in_time_unit(k)`). Nodes
    without neuron state are returned unchanged (a Delay counts steps); a neuron class without the method
    is refused rather than left on the wrong time scale."""
    rescale = getattr(type(node), "in_time_unit", None)
    if rescale is not None:
        return rescale(node, k)
    if node.state_fields:
        raise PrimitiveError(f"{node.type_name} defines no in_time_unit(k): its time constants cannot be moved to another dt")
    return node


def _leaky(tau: np.ndarray, r: np.ndarray, v_leak: np.ndarray, dt: float) -> NeuronCoefficients:
    tau = _f64(tau)
    beta = 1.0 - dt / tau
    return NeuronCoefficients(gain=dt * _f64(r) / tau, beta=beta, leak=(1.0 - beta) * _f64(v_leak))


class _Neuron(Node):
    """Shared shape rule: any number of same-shaped inputs, summed; output has the neuron shape."""

    stateful = True
    max_inputs = None
    neurons_per_element = 1
    state_fields: ClassVar[tuple[str, ...]] = ("v",)

    def infer_output_shapes(self, input_shapes: list[Shape]) -> list[Shape]:
        shape = same_shapes(self.type_name, input_shapes)
        for name, value in self.arrays():
            check_broadcast(self.type_name, name, value, shape)
        return [shape]

    def _positive(self, *names: str) -> None:
        for name in names:
            check_range(self.type_name, name, getattr(self, name), "must be > 0 everywhere", low=0.0, low_open=True)


@primitive
class LIF(_Neuron):
    """Leaky integrate-and-fire neuron (see the module docstring for the exact update)."""

    tau: np.ndarray = array(ANY_FLOAT)
    r: np.ndarray = array(ANY_FLOAT)
    v_leak: np.ndarray = array(ANY_FLOAT)
    v_threshold: np.ndarray = array(ANY_FLOAT)
    v_reset: np.ndarray | None = array(ANY_FLOAT, optional=True, doc="membrane after a zero reset (None: 0)")
    reset_mode: str = string("zero", choices=RESET_MODES, extension=True)
    reset_delay: bool = boolean(True, extension=True)
    graded_spikes_factor: float = real(1.0, extension=True)
    spiking = True
    ops_per_step = 6  # decay multiply, leak add, gain multiply, input add, threshold compare, reset

    def check(self) -> None:
        self._positive("tau")

    def coefficients(self, dt: float) -> NeuronCoefficients:
        return _leaky(self.tau, self.r, self.v_leak, dt)

    def in_time_unit(self, k: float) -> Node:
        """Time constants scale by k."""
        return self.replace(tau=_f64(self.tau) * k)


@primitive
class IF(_Neuron):
    """Integrate-and-fire: v = v + dt*r*I (no leak), then spike and reset as LIF."""

    v_threshold: np.ndarray = array(ANY_FLOAT)
    r: np.ndarray | None = array(ANY_FLOAT, optional=True, doc="input gain per unit dt (None: 1)")
    v_reset: np.ndarray | None = array(ANY_FLOAT, optional=True)
    reset_mode: str = string("zero", choices=RESET_MODES, extension=True)
    reset_delay: bool = boolean(True, extension=True)
    graded_spikes_factor: float = real(1.0, extension=True)
    spiking = True
    ops_per_step = 4  # gain multiply, input add, threshold compare, reset

    def coefficients(self, dt: float) -> NeuronCoefficients:
        return NeuronCoefficients(gain=dt * _f64(1.0 if self.r is None else self.r))

    def in_time_unit(self, k: float) -> Node:
        """r is a gain per unit time: it scales by 1/k (float64: k is rarely a power of two)."""
        return self.replace(r=_f64(1.0 if self.r is None else self.r) / k)


@primitive
class CubaLIF(_Neuron):
    """Current-based LIF: a synaptic current I filters the input, the membrane integrates I.

        alpha = 1 - dt/tau_syn;  I = alpha*I + (dt*w_in/tau_syn)*x
        beta = 1 - dt/tau_mem;   v = beta*v + (1-beta)*v_leak + (dt*r/tau_mem)*I,  reset and spike as LIF

    Exported from snnTorch's Synaptic: tau_syn = dt/(1-alpha), w_in = tau_syn/dt, r = tau_mem/dt, so
    both gains are exactly 1. In "zero_post" mode the membrane is cleared and I is kept.
    """

    tau_syn: np.ndarray = array(ANY_FLOAT)
    tau_mem: np.ndarray = array(ANY_FLOAT)
    r: np.ndarray = array(ANY_FLOAT)
    v_leak: np.ndarray = array(ANY_FLOAT)
    v_threshold: np.ndarray = array(ANY_FLOAT)
    w_in: np.ndarray | None = array(ANY_FLOAT, optional=True, doc="input weight of the current (None: tau_syn/dt)")
    v_reset: np.ndarray | None = array(ANY_FLOAT, optional=True)
    reset_mode: str = string("zero_post", choices=RESET_MODES, extension=True)
    reset_delay: bool = boolean(True, extension=True)
    graded_spikes_factor: float = real(1.0, extension=True)
    spiking = True
    state_fields = ("i", "v")
    has_current = True
    ops_per_step = 9  # current: decay multiply, gain multiply, add; membrane: as LIF

    def check(self) -> None:
        self._positive("tau_syn", "tau_mem")

    def coefficients(self, dt: float) -> NeuronCoefficients:
        tau_syn = _f64(self.tau_syn)
        c = _leaky(self.tau_mem, self.r, self.v_leak, dt)
        return NeuronCoefficients(
            gain=c.gain, beta=c.beta, leak=c.leak, alpha=1.0 - dt / tau_syn,
            gain_in=None if self.w_in is None else dt * _f64(self.w_in) / tau_syn,
        )

    def in_time_unit(self, k: float) -> Node:
        """Time constants scale by k; w_in is a pure number."""
        return self.replace(tau_syn=_f64(self.tau_syn) * k, tau_mem=_f64(self.tau_mem) * k)


@primitive
class LI(_Neuron):
    """Leaky integrator (no spikes): v = beta*v + (1-beta)*v_leak + gain*I; outputs v."""

    tau: np.ndarray = array(ANY_FLOAT)
    r: np.ndarray = array(ANY_FLOAT)
    v_leak: np.ndarray = array(ANY_FLOAT)
    ops_per_step = 4  # decay multiply, leak add, gain multiply, input add

    def check(self) -> None:
        self._positive("tau")

    def coefficients(self, dt: float) -> NeuronCoefficients:
        return _leaky(self.tau, self.r, self.v_leak, dt)

    def in_time_unit(self, k: float) -> Node:
        return self.replace(tau=_f64(self.tau) * k)


@primitive
class Integrator(_Neuron):
    """Integrator (no leak, no spikes): v = v + dt*r*I; outputs v."""

    r: np.ndarray = array(ANY_FLOAT)
    ops_per_step = 2  # gain multiply, input add

    def coefficients(self, dt: float) -> NeuronCoefficients:
        return NeuronCoefficients(gain=dt * _f64(self.r))

    def in_time_unit(self, k: float) -> Node:
        return self.replace(r=_f64(self.r) / k)


@primitive
class Threshold(Node):
    """Stateless spike generator: s = (x > v_threshold)."""

    v_threshold: np.ndarray = array(ANY_FLOAT)
    spiking = True
    neurons_per_element = 1

    def output_shape_for(self, shape: Shape) -> Shape:
        check_broadcast("Threshold", "v_threshold", self.v_threshold, shape)
        return tuple(shape)


@primitive
class Delay(Node):
    """y[t] = x[t - delay] (zero before the first input arrives); `delay` in whole steps, per element."""

    grid_preserving = True

    delay: np.ndarray = array("int64")
    stateful = True

    def check(self) -> None:
        check_range("Delay", "delay", self.delay, "must be between 0 and 1,000,000 steps", low=0, high=1_000_000)

    def output_shape_for(self, shape: Shape) -> Shape:
        check_broadcast("Delay", "delay", self.delay, shape)
        return tuple(shape)


# -- ALIF ---------------------------------------------------------------------------------------------

DECAYS = ("current_decay", "voltage_decay", "threshold_decay", "refractory_decay")
#: Why NIR cannot carry an ALIF (nir 1.0: Affine, Linear, Scale, Conv1d/2d, Delay, Flatten, I, IF, LI, LIF,
#: CubaLI, CubaLIF, Threshold, SumPool2d, AvgPool2d): none has a threshold that moves with the spikes.
NO_NIR = ("NIR has no adaptive-threshold neuron: its LIF/CubaLIF thresholds are constants and reset the membrane, "
          "while an ALIF never resets its voltage and raises its threshold (and a refractory term) with every spike; "
          "keep the graph in .t1c, or replace the ALIF by a CubaLIF before exporting to NIR")


@primitive
class ALIF(Node):
    """Adaptive-threshold LIF: Lava-DL's `alif` neuron (lava.lib.dl.slayer.neuron.alif), which Loihi 2 runs.

    From lava-nc/lava-dl src/lava/lib/dl/slayer/neuron/alif.py (docstring, `dynamics`, `spike`) and
    neuron/dynamics/{leaky_integrator,adaptive_threshold}.py (`_li_dynamics_fwd` without a threshold, so
    no voltage reset; `_ath_dynamics_fwd`). Per step, x the inputs summed in edge order, every decay a
    fraction per step (the neuron counts steps, as Loihi does: dt does not enter):

        u  = (1 - current_decay) * u + x
        v  = (1 - voltage_decay) * v + u                           (never reset)
        th = (1 - threshold_decay) * (th - threshold) + threshold
        r  = (1 - refractory_decay) * r
        s  = v >= th + r                                           (>=, as Lava-DL)
        r  = r + 2 * th * s;   th = th + threshold_step * s        (r reads th before its increase)

    State (u, th, r, v) starts at (0, threshold, 0, 0); the output is s. Lava-DL computes these equations
    in integers (states in units of 1/s_scale, decays round(4096 * decay), products shifted right by 12
    towards zero): TALON's float mode runs them in real arithmetic, its fixed-point mode runs Lava-DL's
    integers (docs/neurons/alif.md).
    """

    threshold: np.ndarray = array(ANY_FLOAT, doc="resting threshold (Lava-DL threshold, vThMant / scale)")
    threshold_step: np.ndarray = array(ANY_FLOAT, doc="threshold increase per spike (Lava-DL threshold_step)")
    current_decay: np.ndarray = array(ANY_FLOAT, doc="fraction of the current lost per step, [0, 1] (iDecay / 4096)")
    voltage_decay: np.ndarray = array(ANY_FLOAT, doc="fraction of the voltage lost per step, [0, 1] (vDecay / 4096)")
    threshold_decay: np.ndarray = array(ANY_FLOAT, doc="fraction of (th - threshold) lost per step, [0, 1] (thDecay / 4096)")
    refractory_decay: np.ndarray = array(ANY_FLOAT, doc="fraction of the refractory state lost per step, [0, 1] (refDecay / 4096)")

    stateful = True
    spiking = True
    max_inputs = None
    neurons_per_element: ClassVar[int] = 1
    state_fields: ClassVar[tuple[str, ...]] = ("u", "th", "r", "v")
    has_current: ClassVar[bool] = True
    #: u: multiply, add; v: multiply, add; th: subtract, multiply, add; r: multiply; spike: add, compare;
    #: after a spike: threshold add, refractory multiply-add (counted every step, as hardware runs them)
    ops_per_step: ClassVar[int] = 13

    def check(self) -> None:
        for name in DECAYS:
            check_range("ALIF", name, getattr(self, name), "must lie in [0, 1] (a fraction of decay per step)", low=0.0, high=1.0)

    def infer_output_shapes(self, input_shapes: list[Shape]) -> list[Shape]:
        shape = same_shapes(self.type_name, input_shapes)
        for name, value in self.arrays():
            check_broadcast(self.type_name, name, value, shape)
        return [shape]

    def keep_factors(self) -> dict[str, np.ndarray]:
        """The per-step retention factors 1 - decay, in float64 (the one derivation every mode casts)."""
        return {name: 1.0 - np.asarray(getattr(self, name), np.float64) for name in DECAYS}

    def in_time_unit(self, k: float) -> "ALIF":
        """Unchanged: its decays are per step, so another time unit leaves every per-step factor as it is."""
        return self


refuse_nir_export("ALIF", NO_NIR)
