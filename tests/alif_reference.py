"""Reference ALIF implementations for the tests, written from Lava-DL's equations (lava-nc/lava-dl,
src/lava/lib/dl/slayer/neuron/alif.py and dynamics/{leaky_integrator,adaptive_threshold}.py), not from
TALON's code: a float32 loop over the real-valued equations, and Lava-DL's integer emulation."""

from __future__ import annotations

import numpy as np


def alif_float32(x: np.ndarray, threshold, threshold_step, current_decay, voltage_decay, threshold_decay, refractory_decay):
    """Spikes and voltages (T, ...) of the real-valued equations in float32, with retention factors
    1 - decay computed in float64 and cast once."""
    f32 = np.float32
    keep = [np.asarray(1.0 - np.asarray(d, np.float64), f32) for d in (current_decay, voltage_decay, threshold_decay, refractory_decay)]
    th0, step = np.asarray(threshold, f32), np.asarray(threshold_step, f32)
    shape = x.shape[1:]
    u = np.zeros(shape, f32)
    v = np.zeros(shape, f32)
    r = np.zeros(shape, f32)
    th = np.broadcast_to(th0, shape).astype(f32)
    spikes, volts = [], []
    for xt in x.astype(f32):
        u = (u * keep[0] + xt).astype(f32)
        v = (v * keep[1] + u).astype(f32)
        th = ((th - th0) * keep[2] + th0).astype(f32)
        r = (r * keep[3]).astype(f32)
        s = (v >= (th + r).astype(f32)).astype(f32)
        r = (r + 2 * th * s).astype(f32)
        th = (th + step * s).astype(f32)
        spikes.append(s)
        volts.append(v)
    return np.stack(spikes), np.stack(volts)


def _rstz(p: np.ndarray, bits: int) -> np.ndarray:
    """Lava-DL's right_shift_to_zero: sign(p) * (|p| >> bits)."""
    sign = np.where(p > 0, 1, -1)
    return sign * ((sign * p) >> bits)


def alif_lava_int(x: np.ndarray, s_scale: int, th0_int, step_int, du, dv, dth, dr):
    """Lava-DL's integer ALIF: states in units of 1/s_scale (int64), decays D as 12-bit integers,
    input trunc(s_scale * x). Returns (spikes, voltage integers), both (T, ...)."""
    shape = x.shape[1:]
    u = np.zeros(shape, np.int64)
    v = np.zeros(shape, np.int64)
    r = np.zeros(shape, np.int64)
    th = np.broadcast_to(np.asarray(th0_int, np.int64), shape).copy()
    k = [4096 - np.asarray(d, np.int64) for d in (du, dv, dth, dr)]
    spikes, volts = [], []
    for xt in x:
        xi = np.trunc(np.asarray(xt, np.float64) * s_scale).astype(np.int64)
        u = _rstz(u * k[0], 12) + xi
        v = _rstz(v * k[1], 12) + u
        th = _rstz((th - th0_int) * k[2], 12) + th0_int
        r = _rstz(r * k[3], 12)
        s = (v >= th + r).astype(np.int64)
        th, r = th + step_int * s, r + 2 * th * s
        spikes.append(s)
        volts.append(v.copy())
    return np.stack(spikes), np.stack(volts)
