"""The time unit of a foreign NIR file's time constants, read from what the file says, and the dt that fits.

A NIR file carries no timestep, and exporters write time constants in different units. TALON discretises
with `dt` in the file's unit (beta = 1 - dt/tau, gain = dt*r/tau; IF: gain = dt*r), so a wrong dt changes
every neuron. What the exporters write (checked against their source):

* snnTorch (export_nir.py): tau = 1e-4/(1 - beta), r = tau/1e-4, so r = tau/dt with dt = 1e-4, TALON's default.
* Norse 1.1 (norse/torch/utils/export_nir.py at v1.1.0): tau = dt/tau_mem_inv with its dt = 1e-3 and r = 1,
  i.e. seconds times dt (default tau_mem_inv = 100: tau = 1e-5). Norse steps v += dt*tau_mem_inv*(...), so
  TALON's beta = 1 - dt/tau equals Norse's 1 - 1e-3*tau_mem_inv only with dt = 1e-6 (Norse's dt squared).
  Later Norse (time_scaling_factor, May 2025) writes tau = 1/tau_mem_inv in seconds: dt = Norse's dt, 1e-3.
* sinabs (sinabs/nir.py): LIF/ExpLeak tau = tau_mem in steps, r = 1; IAF as IF with r = 1 (sinabs adds the
  input once per step): dt = 1. With the default 1e-4 every step adds 1e-4 of the input: no spikes.
* Norse's IAF also adds the input once per step (IF with r = 1): dt = 1.

No exporter above writes producer metadata; a graph metadata entry naming one (e.g. "source": "sinabs") is
used when present. advise_dt returns None when the file does not say enough.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TimeUnitAdvice", "advise_dt"]

#: snnTorch's hard-coded export step, TALON's default for files that say nothing.
SNNTORCH_DT = 1e-4
_PRODUCER_KEYS = ("producer", "source", "framework", "exporter", "library", "generator", "created_by", "tool")


@dataclass(frozen=True)
class TimeUnitAdvice:
    """The dt a NIR file's constants were written for, and why TALON thinks so."""

    dt: float
    producer: str
    evidence: str

    def message(self, used: float) -> str:
        return (f"the NIR graph does not say which timestep it was made for, but {self.evidence}: pass dt={self.dt:g}. "
                f"It is read with dt={used:g} now, which runs these neurons with other dynamics")


def _values(nn: Any, attr: str) -> np.ndarray | None:
    v = getattr(nn, attr, None)
    if v is None:
        return None
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    try:
        a = np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    return a if a.size and np.all(np.isfinite(a)) else None


def _neurons(ng: Any) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[np.ndarray]]:
    """([(tau, r)] of the leaky neurons, [r] of IF/I), nested graphs included."""
    leaky, integrating = [], []
    for nn in (getattr(ng, "nodes", None) or {}).values():
        t = type(nn).__name__
        if t == "NIRGraph":
            inner_leaky, inner_int = _neurons(nn)
            leaky += inner_leaky
            integrating += inner_int
        elif t in ("LIF", "LI", "CubaLIF", "CubaLI"):
            # each time constant with its input gain: the membrane's r, the synapse's w_in (nir's default 1)
            for tau_field, gain_field in (("tau", "r"), ("tau_mem", "r"), ("tau_syn", "w_in")):
                tau, gain = _values(nn, tau_field), _values(nn, gain_field)
                if tau is not None:
                    leaky.append((tau, np.ones(1) if gain is None else gain))
        elif t in ("IF", "I"):
            r = _values(nn, "r")
            if r is not None:
                integrating.append(r)
    return leaky, integrating


def _snntorch_gain(tau: np.ndarray, gain: np.ndarray) -> bool:
    try:
        t, g = np.broadcast_arrays(tau, gain)
    except ValueError:
        return False
    return bool(np.allclose(g, t / SNNTORCH_DT, rtol=1e-5, atol=0))


def _producer(metadata: Any) -> tuple[str, tuple[int, ...]] | None:
    """("norse" | "sinabs" | "snntorch", version) from a graph metadata entry naming the exporter."""
    if not isinstance(metadata, dict):
        return None
    for key in _PRODUCER_KEYS:
        value = metadata.get(key)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str):
            continue
        m = re.search(r"(norse|sinabs|snntorch)\W*v?(\d+(?:\.\d+)*)?", value, re.I)
        if m:
            version = tuple(int(x) for x in m.group(2).split(".")) if m.group(2) else ()
            return m.group(1).lower(), version
    return None


def advise_dt(ng: Any) -> TimeUnitAdvice | None:
    """The dt the NIR graph `ng` was evidently written for, or None when it does not say enough."""
    leaky, integrating = _neurons(ng)
    producer = _producer(getattr(ng, "metadata", None))
    if producer and producer[0] == "snntorch":
        return None
    taus = np.concatenate([t for t, _ in leaky]) if leaky else np.zeros(0)
    if leaky and all(_snntorch_gain(t, r) for t, r in leaky):
        return None  # snnTorch's export: r = tau/1e-4 (w_in = tau_syn/1e-4), the default dt is right
    unit_r = all(np.all(r == 1) for _, r in leaky) and all(np.all(r == 1) for r in integrating)
    if not unit_r or not (leaky or integrating):
        return None
    named = producer[0] if producer else None
    if leaky:
        lo, hi = float(taus.min()), float(taus.max())
        span = f"{lo:g}" if lo == hi else f"{lo:g} to {hi:g}"
        norse_old = producer is not None and named == "norse" and bool(producer[1]) and producer[1][:2] <= (1, 1)
        if hi <= SNNTORCH_DT or norse_old:
            return TimeUnitAdvice(1e-6, "Norse 1.1", (
                f"its time constants ({span}, with r = 1) are what Norse 1.1 writes: tau = dt/tau_mem_inv with "
                "Norse's dt = 1e-3, seconds times dt. Its neurons step by 1e-3*tau_mem_inv, which TALON reproduces with "
                "dt = 1e-6 (Norse's dt squared; for a Norse model run with another dt d, pass d squared)"
                + (". Its IF neurons add their input once per step in Norse, which no single dt reproduces together with "
                   "the LIF neurons" if integrating else "")))
        if lo >= 1 or named == "sinabs":
            return TimeUnitAdvice(1.0, "sinabs", (
                f"its time constants ({span}, with r = 1) are in steps, as sinabs writes them (tau_mem in steps, "
                f"IAF as IF with r = 1); with dt={SNNTORCH_DT:g} each step would add at most {SNNTORCH_DT / lo:.2g} of the "
                "input, so the neurons would almost never spike"))
        if named == "norse":
            return TimeUnitAdvice(1e-3, "Norse", (
                f"it names Norse as its producer and its time constants ({span}, r = 1) are in seconds "
                "(tau = 1/tau_mem_inv): Norse's default step is 1e-3 s"))
        return None
    return TimeUnitAdvice(1.0, "steps", (
        f"its only neurons are IF/I with r = 1, which add their input once per step (sinabs' IAF, Norse's IAF); with "
        f"dt={SNNTORCH_DT:g} each step adds only {SNNTORCH_DT:g} of the input, so they would almost never spike"))
