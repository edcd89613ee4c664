"""NIR's documented equations, discretised by forward Euler in float64 numpy: the reference the runtime
must agree with. Written from NIR's primitive docstrings (nir/ir/neuron.py) and primitives table, not from
TALON's code:

    LI       tau * dv/dt = (v_leak - v) + r*I                          output v
    I        dv/dt = r*I                                               output v
    LIF      LI, then z = v > v_threshold, v = v_reset where z         output z
    IF       I,  then z = v > v_threshold, v = v_reset where z         output z
    CubaLIF  tau_syn * dI/dt = -I + w_in*S, then LIF driven by I       output z
    CubaLI   tau_syn * dI/dt = -I + w_in*S, then LI driven by I        output v
    Delay    y(t) = x(t - delay)

Forward Euler with step dt: v <- v + dt * dv/dt, evaluated on this step's input; a composite primitive
("LI; Linear; LIF") runs its stages in order within a step, so the membrane sees this step's current.
"""

from __future__ import annotations

import numpy as np


class LI:
    def __init__(self, tau, r, v_leak, dt):
        self.tau, self.r, self.v_leak = (np.asarray(a, np.float64) for a in (tau, r, v_leak))
        self.dt = dt
        self.v = None

    def __call__(self, x):
        if self.v is None:
            self.v = np.zeros_like(x, dtype=np.float64)
        self.v = self.v + self.dt / self.tau * ((self.v_leak - self.v) + self.r * x)
        return self.v


class Integrator:
    def __init__(self, r, dt):
        self.r, self.dt, self.v = np.asarray(r, np.float64), dt, None

    def __call__(self, x):
        if self.v is None:
            self.v = np.zeros_like(x, dtype=np.float64)
        self.v = self.v + self.dt * self.r * x
        return self.v


class _Spiking:
    margin = np.inf  # smallest |v - v_threshold| seen: how far the reference was from a tie

    def _fire(self, v):
        self.margin = min(self.margin, float(np.min(np.abs(v - self.thr))))
        z = v > self.thr
        return z, np.where(z, self.v_reset, v)


class LIF(_Spiking):
    def __init__(self, tau, r, v_leak, v_threshold, v_reset, dt):
        self.li = LI(tau, r, v_leak, dt)
        self.thr, self.v_reset = np.asarray(v_threshold, np.float64), np.asarray(v_reset, np.float64)

    def __call__(self, x):
        v = self.li(x)
        z, self.li.v = self._fire(v)
        return z.astype(np.float64)


class IF(_Spiking):
    def __init__(self, r, v_threshold, v_reset, dt):
        self.i = Integrator(r, dt)
        self.thr, self.v_reset = np.asarray(v_threshold, np.float64), np.asarray(v_reset, np.float64)

    def __call__(self, x):
        v = self.i(x)
        z, self.i.v = self._fire(v)
        return z.astype(np.float64)


class CubaLIF(_Spiking):
    def __init__(self, tau_syn, tau_mem, r, v_leak, v_threshold, v_reset, w_in, dt):
        self.syn = LI(tau_syn, w_in, 0.0, dt)  # tau_syn dI/dt = -I + w_in*S
        self.lif = LIF(tau_mem, r, v_leak, v_threshold, v_reset, dt)

    @property
    def margin(self):
        return self.lif.margin

    def __call__(self, x):
        return self.lif(self.syn(x))


class CubaLI:
    def __init__(self, tau_syn, tau_mem, r, v_leak, w_in, dt):
        self.syn = LI(tau_syn, w_in, 0.0, dt)
        self.mem = LI(tau_mem, r, v_leak, dt)

    def __call__(self, x):
        return self.mem(self.syn(x))


class Delay:
    def __init__(self, steps):
        self.steps, self.history = np.asarray(steps), []

    def __call__(self, x):
        self.history.insert(0, x)
        out = np.zeros_like(x, dtype=np.float64)
        for idx in np.ndindex(x.shape[1:]):
            k = int(self.steps[idx]) if self.steps.ndim else int(self.steps)
            if k < len(self.history):
                out[(slice(None), *idx)] = self.history[k][(slice(None), *idx)]
        return out
