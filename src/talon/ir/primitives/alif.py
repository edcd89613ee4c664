"""ALIF: the adaptive-threshold LIF of Lava-DL (`lava.lib.dl.slayer.neuron.alif`), which Loihi 2 runs.

Source of the equations: lava-nc/lava-dl, src/lava/lib/dl/slayer/neuron/alif.py (class docstring and
`dynamics`/`spike`), dynamics/leaky_integrator.py (`_li_dynamics_fwd`, called without a threshold: no
voltage reset) and dynamics/adaptive_threshold.py (`_ath_dynamics_fwd`). Per step, with x the sum of the
inputs (in edge order) and all decays per step (the neuron counts steps, like Loihi; dt does not enter):

    u  = (1 - current_decay) * u + x                          current
    v  = (1 - voltage_decay) * v + u                          voltage (never reset)
    th = (1 - threshold_decay) * (th - threshold) + threshold adaptive threshold, back towards threshold
    r  = (1 - refractory_decay) * r                           refractory state
    s  = v >= th + r                                          spike (note >=, Lava-DL's comparison)
    r  = r + 2 * th * s                                       (th before this step's increase)
    th = th + threshold_step * s

Initial state: u = v = r = 0, th = threshold. The output is s (0 or 1). Runtime state order (u, th, r, v):
the last is the voltage, what the simulator records as the membrane.

Lava-DL parameters map one to one: threshold, threshold_step, current_decay, voltage_decay,
threshold_decay, refractory_decay (fractions of decay per step, in [0, 1]). Lava-DL's own forward runs
these equations in integers (states scaled by s_scale = 64 * scale, decays as 12-bit integers
round(4096 * decay), products shifted right by 12 towards zero): TALON's float mode runs the real-valued
equations above; its fixed-point mode runs Lava-DL's integer arithmetic (docs/neurons/alif.md).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from talon.errors import PrimitiveError
from talon.ir.node import ANY_FLOAT, Node, Shape, array, primitive
from talon.ir.primitives._shapes import check_broadcast, same_shapes

DECAYS = ("current_decay", "voltage_decay", "threshold_decay", "refractory_decay")
#: Why NIR cannot carry an ALIF (nir 1.0: Affine, Linear, Scale, Conv1d/2d, Delay, Flatten, I, IF, LI, LIF,
#: CubaLI, CubaLIF, Threshold, SumPool2d, AvgPool2d): none has a threshold that moves with the spikes.
NO_NIR = ("NIR has no adaptive-threshold neuron: its LIF/CubaLIF thresholds are constants and reset the membrane, "
          "while an ALIF never resets its voltage and raises its threshold (and a refractory term) with every spike; "
          "keep the graph in .t1c, or replace the ALIF by a CubaLIF before exporting to NIR")


@primitive
class ALIF(Node):
    """Adaptive-threshold LIF (Lava-DL `alif`); the module docstring states the exact update."""

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
            value = getattr(self, name)
            if not np.all((value >= 0) & (value <= 1)):
                raise PrimitiveError(f"ALIF.{name} must lie in [0, 1] (a fraction of decay per step), got {value.min()}..{value.max()}")

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
