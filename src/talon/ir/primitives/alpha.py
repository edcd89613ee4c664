"""The Alpha neuron (snnTorch's `snn.Alpha`): a membrane that is the difference of two synaptic traces.

Two traces filter the same input with opposite signs, an excitatory one E (decay alpha) and an
inhibitory one N (decay beta < alpha); the membrane is their scaled sum and has no memory of its own:

    alpha = 1 - dt/tau_exc          beta = 1 - dt/tau_inh          (float64, then cast, as for LIF)
    tau_alpha = ln(alpha) / (ln(beta) - ln(alpha)) + 1                (the stored `tau_alpha` when given)
    R  = U[t-1] > v_threshold                                          (the previous step's spike)
    E  = alpha*E[t-1] + x_1 + x_2 + ...                                (inputs in edge order)
    N  = beta*N[t-1]  - x_1 - x_2 - ...
    U  = tau_alpha * (E + N)
    subtract:  E = E - R*v_threshold;   N = N - R*N;   U = U + R*N[t-1]
    zero:      E = E - R*E;             N = N - R*N;   U = U - R*U
    none:      -
    S  = (U > v_threshold) * graded_spikes_factor

Note the subtract reset's quirks, which are snnTorch's: U is computed from the traces *before* their
reset, and gets the previous inhibitory trace added back. This is snnTorch 1.0.0's Alpha bit for bit
(`snntorch/_neurons/alpha.py`: `_base_sub`, `_base_zero`, `_base_int`), including its float32 operation
order, which talon.bridge's runtime follows. Exported from snnTorch, `tau_alpha` is the float32 value
snnTorch computes from its clamped alpha and beta, so the runtime needs no logarithm of its own.

snnTorch requires alpha > beta (tau_exc > tau_inh) and beta != 1 (a finite tau_inh); so does this node.
With no input since a reset or the start, U = tau_alpha * sum_k (alpha^k - beta^k) * x[t-k]: every
weight is >= 0, which gives the value bounds of `membrane_bounds`.
"""

from __future__ import annotations

import numpy as np

from talon.errors import PrimitiveError
from talon.ir.nir_registry import refuse_nir_export
from talon.ir.node import ANY_FLOAT, Node, Shape, array, primitive, real, string
from talon.ir.primitives._shapes import check_broadcast, same_shapes
from talon.ir.primitives._ranges import check_range

ALPHA_RESET_MODES = ("subtract", "zero", "none")


@primitive
class Alpha(Node):
    """Alpha neuron: U = tau_alpha * (E + N) of an excitatory and an inhibitory trace (module docstring).

    Any number of same-shaped inputs, summed; the output has the neuron shape."""

    tau_exc: np.ndarray = array(ANY_FLOAT, doc="time constant of the excitatory trace E: alpha = 1 - dt/tau_exc")
    tau_inh: np.ndarray = array(ANY_FLOAT, doc="time constant of the inhibitory trace N: beta = 1 - dt/tau_inh")
    v_threshold: np.ndarray = array(ANY_FLOAT)
    tau_alpha: np.ndarray | None = array(ANY_FLOAT, optional=True,
                                         doc="membrane gain (None: ln(alpha)/(ln(beta) - ln(alpha)) + 1)")
    reset_mode: str = string("zero", choices=ALPHA_RESET_MODES)
    graded_spikes_factor: float = real(1.0)
    stateful = True
    spiking = True
    max_inputs = None
    neurons_per_element = 1
    #: the state the runtime carries per neuron, membrane last (snnTorch's names)
    state_fields = ("syn_exc", "syn_inh", "mem")
    #: its inputs drive traces (state_fields[0] the excitatory one), not the membrane
    has_current = True
    #: two trace updates (multiply, add), their sum, the gain, the spike compare, three reset operations
    ops_per_step = 10

    def infer_output_shapes(self, input_shapes: list[Shape]) -> list[Shape]:
        shape = same_shapes(self.type_name, input_shapes)
        for name, value in self.arrays():
            check_broadcast(self.type_name, name, value, shape)
        return [shape]

    def check(self) -> None:
        for name in ("tau_exc", "tau_inh"):
            check_range("Alpha", name, getattr(self, name), "must be > 0 everywhere", low=0.0, low_open=True)
        tau_exc = np.asarray(self.tau_exc, np.float64)
        tau_inh = np.asarray(self.tau_inh, np.float64)
        if not np.all(np.isfinite(tau_inh)):
            raise PrimitiveError("Alpha.tau_inh must be finite (beta = 1 makes tau_alpha divide by zero, as in snnTorch)")
        try:
            ordered = bool(np.all(tau_exc > tau_inh))
        except ValueError:  # shapes that do not broadcast are reported by the shape check
            ordered = True
        if not ordered:
            raise PrimitiveError("Alpha needs tau_exc > tau_inh everywhere (alpha > beta, as snnTorch requires)")
        if self.tau_alpha is not None and not np.all(np.isfinite(self.tau_alpha)):
            raise PrimitiveError("Alpha.tau_alpha must be finite")

    def in_time_unit(self, k: float) -> Node:
        """The same neuron for a timestep k times as long: both time constants scale by k (in float64, as
        for LIF), so alpha and beta, and the tau_alpha derived from them, stay the same; a stored
        tau_alpha is a pure number and stays as it is."""
        return self.replace(tau_exc=np.asarray(self.tau_exc, np.float64) * k, tau_inh=np.asarray(self.tau_inh, np.float64) * k)

    def membrane_bounds(self, dt: float, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sound bounds on the membrane given each step's summed input in [lo, hi]; lint's bounds rule for
        spiking nodes calls this (talon.sdk._bounds), so Alpha needs no rule of its own there."""
        return membrane_bounds(self, dt, lo, hi)


refuse_nir_export("Alpha", (
    "NIR has no Alpha neuron, and no graph of NIR nodes computes it: NIR's neurons (LIF, CubaLIF, IF, LI, I) each "
    "integrate their own membrane, while Alpha's membrane is a memoryless sum of two opposite traces (LI nodes could "
    "filter them), and its reset clears or shifts those traces on the membrane's previous spike, a feedback no NIR "
    "edge carries; keep the model in .t1c"))


def alpha_coefficients(node: Alpha, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alpha, beta, tau_alpha) in float64: the one derivation of the per-step constants."""
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    alpha = 1.0 - dt / f64(node.tau_exc)
    beta = 1.0 - dt / f64(node.tau_inh)
    if node.tau_alpha is not None:
        return alpha, beta, f64(node.tau_alpha)
    with np.errstate(divide="ignore"):  # beta = 0: ln(beta) = -inf gives tau_alpha = 1, as snnTorch
        la, lb = np.log(alpha), np.log(beta)
        return alpha, beta, la / (lb - la) + 1.0


def membrane_bounds(node: Alpha, dt: float, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sound bounds on U (and so on every membrane value) over any number of steps, given each step's
    summed input x in [lo, hi] elementwise.

    none / zero (a reset restarts the traces from 0): U is a sum of the inputs since the last reset with
    weights tau_alpha*(alpha^k - beta^k) >= 0 adding up to at most tau_alpha*W, W = 1/(1-alpha) - 1/(1-beta),
    so U lies in tau_alpha*W*[min(lo, 0), max(hi, 0)]. subtract clears N and lowers E by v_threshold
    (raises it when the threshold is negative): E and N are bounded separately, with U's added N[t-1].
    """
    # the coefficients as the runtime holds them (cast once to float32), so that the bound is the computed neuron's
    alpha, beta, tau_alpha = (np.asarray(c, np.float64).astype(np.float32).astype(np.float64) for c in alpha_coefficients(node, dt))
    alpha, beta = np.clip(alpha, 0.0, 1.0), np.clip(beta, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        e_gain = np.where(alpha < 1.0, 1.0 / (1.0 - alpha), np.inf)
        n_gain = 1.0 / (1.0 - beta)
        lo_m, hi_p = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
        if node.reset_mode != "subtract":
            return _hull(tau_alpha * (e_gain - n_gain), lo_m, hi_p, 0.0)
        thr = np.asarray(node.v_threshold, np.float64)
        e_lo = (lo_m - np.maximum(thr, 0.0)) * e_gain
        e_hi = (hi_p - np.minimum(thr, 0.0)) * e_gain
        n_lo, n_hi = -hi_p * n_gain, -lo_m * n_gain
        u_lo, u_hi = _hull(tau_alpha, e_lo + n_lo, e_hi + n_hi, np.inf)
        return u_lo + np.minimum(n_lo, 0.0), u_hi + np.maximum(n_hi, 0.0)


def _hull(k: np.ndarray, lo: np.ndarray, hi: np.ndarray, unknown: float) -> tuple[np.ndarray, np.ndarray]:
    """[min, max] of k*[lo, hi] for a scalar or elementwise factor k of either sign; 0*inf (nan) counts as
    +-`unknown` (0: a zero weight times an unbounded sum of zeros)."""
    a, b = k * lo, k * hi
    a, b = np.nan_to_num(a, nan=-unknown, posinf=np.inf, neginf=-np.inf), np.nan_to_num(b, nan=unknown, posinf=np.inf, neginf=-np.inf)
    return np.minimum(a, b), np.maximum(a, b)
