"""Spike encoders (numpy, no torch): rate, latency, delta, and events to frames over time bins.

Every encoder returns a (T, *shape) float32 array, time first, ready for talon.backend's (T, B, *S)
inputs once samples are stacked on axis 1.

- rate: Bernoulli spikes, P(spike at step t) = x, from numpy's PCG64 seeded with `seed`.
- latency: snnTorch's linear, normalised latency code (`spikegen.latency(x, num_steps, threshold,
  linear=True, normalize=True, clip=clip)`), spike for spike: one spike per value at step
  round((T - 1) * (1 - max(x, threshold))); with clip, values below threshold never fire.
- delta: snnTorch's `spikegen.delta`: 1 where x[t] - x[t-1] >= threshold (and -1 where <= -threshold
  with off_spikes); the step before the first is zeros, or the first step itself with padding=True.
- events_to_frames: event counts per (step, polarity, row, column) in bins of `dt` microseconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from talon._text import plain
from talon.errors import TalonError
from talon.io.events import as_events, check_sensor_size

ENCODINGS = ("rate", "latency", "delta", "direct")


def _unit_range(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TalonError(f"{what}: x holds {arr.dtype} values; it takes numbers in [0, 1]")
    arr = arr.astype(np.float32, copy=False)
    finite = np.isfinite(arr)
    if not finite.all():
        pos = tuple(int(i) for i in np.unravel_index(int(np.argmin(finite)), arr.shape))
        v = float(arr[pos])
        raise TalonError(f"{what}: x contains {'NaN' if np.isnan(v) else ('+inf' if v > 0 else '-inf')} at index {pos}; it takes values in [0, 1]")
    if arr.size:
        lo, hi = float(np.min(arr)), float(np.max(arr))
        if not (lo >= 0.0 and hi <= 1.0):  # NaN fails both
            raise TalonError(f"{what}: values lie in [{lo:g}, {hi:g}]; it takes values in [0, 1]: scale the data first (e.g. x / x.max())")
    return arr


def _steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise TalonError(f"steps must be a positive integer, got {plain(steps)}")
    return int(steps)


def rate_encode(x: Any, steps: int, *, seed: int = 0) -> np.ndarray:
    """(steps, *x.shape) Bernoulli spikes with firing probability x (in [0, 1]) on every step."""
    p = _unit_range(x, "rate_encode")
    u = np.random.default_rng(seed).random((_steps(steps), *p.shape), dtype=np.float32)
    return (u < p).astype(np.float32)


def latency_encode(x: Any, steps: int, *, threshold: float = 0.01, clip: bool = False) -> np.ndarray:
    """(steps, *x.shape): each value fires once, brighter earlier (snnTorch's linear normalised latency)."""
    d = _unit_range(x, "latency_encode")
    T = _steps(steps)
    if not 0.0 < threshold < 1.0:  # snnTorch's bounds
        raise TalonError(f"latency_encode: threshold must lie strictly between 0 and 1, got {threshold}")
    tau = T - 1
    # float32 throughout, as snnTorch computes it, so the rounding of every spike time agrees
    spike_time = np.minimum(np.float32(-tau) * (d - np.float32(1)), np.float32(-tau * (threshold - 1)))
    idx = np.round(spike_time).astype(np.int64)
    out = np.zeros((T, *d.shape), dtype=np.float32)
    np.put_along_axis(out, idx[None], 1.0, axis=0)
    if clip:
        out *= ~(d < threshold)
    return out


def delta_encode(seq: Any, *, threshold: float = 0.1, off_spikes: bool = False, padding: bool = False) -> np.ndarray:
    """(T, *S) spikes where a (T, *S) sequence changes by at least `threshold` from the previous step."""
    s = np.asarray(seq, dtype=np.float32)
    if s.ndim < 1 or s.shape[0] < 1:
        raise TalonError(f"delta_encode takes a (T, ...) sequence, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise TalonError("delta_encode: the sequence holds NaN or ±inf; replace them first")
    prev = np.concatenate([s[:1] if padding else np.zeros_like(s[:1]), s[:-1]])
    diff = s - prev
    out = (diff >= threshold).astype(np.float32)
    if off_spikes:
        out -= (diff <= -threshold).astype(np.float32)
    return out


def encode(x: Any, encoding: str, steps: int, *, seed: int = 0, threshold: float | None = None) -> np.ndarray:
    """One sample `x` (the Input's shape) as a (steps, *shape) sequence with `encoding` (ENCODINGS):
    "direct" repeats x on every step (the value as an input current); "delta" takes x as a (T, *shape)
    sequence already."""
    if encoding == "rate":
        return rate_encode(x, steps, seed=seed)
    if encoding == "latency":
        return latency_encode(x, steps, **({} if threshold is None else {"threshold": threshold}))
    if encoding == "delta":
        return delta_encode(x, **({} if threshold is None else {"threshold": threshold}))
    if encoding == "direct":
        arr = np.asarray(x, dtype=np.float32)
        return np.broadcast_to(arr, (_steps(steps), *arr.shape))
    raise TalonError(f"unknown encoding {encoding!r}; encodings: {', '.join(ENCODINGS)}")


def events_to_frames(
    events: Any,
    sensor_size: tuple[int, ...],
    *,
    dt: float | None = None,
    steps: int | None = None,
    t0: int | None = None,
    polarity: bool = True,
    binary: bool = False,
) -> np.ndarray:
    """Events binned into frames: (T, 2, H, W) counts (polarity off, on), or (T, 1, H, W) with
    polarity=False. Step k counts the events with t0 + k*dt <= t < t0 + (k+1)*dt (t in microseconds).

    events: an EVENT_DTYPE array, or an iterable of such chunks (talon.io.iter_events: a file larger
    than memory is framed chunk by chunk; then give `steps` and `dt`). sensor_size: (width, height[, 2]).
    dt: bin width in microseconds; without it, `steps` bins of equal width span the events. t0: start of
    the first bin (default: the earliest event's time; chunks must then come in time order). steps: how many bins (default: up to the last
    event); events after the last bin are not counted. binary: 1 where a bin holds any event (spikes).
    An event outside the sensor raises TalonError: nothing is dropped silently."""
    W, H, _ = check_sensor_size(sensor_size, None, what="events_to_frames")
    if steps is not None:
        steps = _steps(steps)
    chunks = [events] if isinstance(events, np.ndarray) else events
    if dt is None:
        if not isinstance(events, np.ndarray) or steps is None:
            raise TalonError("events_to_frames: give dt (microseconds per step); without it, give an event array and steps")
        if len(events) == 0:
            raise TalonError("events_to_frames: no events to span; give dt")
        t_all = as_events(events, what="events_to_frames")["t"]
        start = int(t_all.min()) if t0 is None else int(t0)
        dt = max(int(t_all.max()) - start + 1, 1) / steps
    if not dt > 0:
        raise TalonError(f"dt must be a positive number of microseconds, got {plain(dt)}")
    C = 2 if polarity else 1
    counts: np.ndarray | None = None if steps is None else np.zeros((steps, C, H, W), dtype=np.float32)
    default_t0 = t0 is None
    if default_t0 and isinstance(events, np.ndarray) and len(events):
        t0 = int(as_events(events, what="events_to_frames")["t"].min())  # unsorted events: none before the first bin
    for chunk in chunks:
        chunk = as_events(chunk, what="events_to_frames")  # polarity 0/1, whole coordinates and times: checked, never guessed
        if len(chunk) == 0:
            continue
        if t0 is None:
            t0 = int(chunk["t"][0])
        x, y = chunk["x"].astype(np.int64), chunk["y"].astype(np.int64)
        if x.min() < 0 or y.min() < 0 or x.max() >= W or y.max() >= H:
            raise TalonError(
                f"events lie at x in [{x.min()}, {x.max()}], y in [{y.min()}, {y.max()}], outside the {W}x{H} sensor: "
                f"give the recording's sensor_size, or crop/downsample the events first (tonic.transforms.Downsample)"
            )
        rel = chunk["t"].astype(np.int64) - np.int64(t0)  # in int64: timestamps beyond 2**53 µs keep every microsecond
        if default_t0 and rel.size and rel.min() < 0:
            i = int(np.argmax(rel < 0))
            raise TalonError(f"events_to_frames: event {i} of a chunk (t={int(chunk['t'][i])}) comes before the first event's time {t0}: the "
                             "chunks are not in time order; sort the events, or give t0")
        k = rel // int(dt) if float(dt).is_integer() else np.floor(rel / dt).astype(np.int64)
        if counts is None:
            counts = _grow(np.zeros((0, C, H, W), np.float32), int(k.max()) + 1)
        elif steps is None and k.max() >= counts.shape[0]:
            counts = _grow(counts, int(k.max()) + 1)
        keep = (k >= 0) & (k < counts.shape[0])
        c = chunk["p"].astype(np.int64) if polarity else np.zeros_like(x)
        flat = ((k * C + c) * H + y) * W + x
        counts += np.bincount(flat[keep], minlength=counts.size).reshape(counts.shape).astype(np.float32)
    if counts is None:
        if steps is None:
            raise TalonError("events_to_frames: no events and no steps; give steps to frame an empty recording")
        counts = np.zeros((steps, C, H, W), np.float32)
    return (counts > 0).astype(np.float32) if binary else counts


def _grow(counts: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, *counts.shape[1:]), dtype=np.float32)
    out[: counts.shape[0]] = counts
    return out

