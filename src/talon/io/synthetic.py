"""A small, gesture-like event data set for demos and tests: moving bars and blobs on a small sensor.

Each sample renders a short intensity video of one moving shape over a dark, flickering background and
turns it into events the way a DVS pixel does: a pixel emits an ON (OFF) event each time its log
intensity rises (falls) by `contrast` from its level at its last event. Timestamps fall uniformly within
each rendered frame's interval, so events are sorted and microsecond-resolved. Everything follows from
the seed.

Classes (labels in this order): bar moving right, bar moving left, bar moving down, blob circling.
"""

from __future__ import annotations

import os
import numpy as np

from talon.errors import TalonError
from talon.io.events import EVENT_DTYPE
from talon.io.files import WRITABLE, write_events

CLASSES = ("bar_right", "bar_left", "bar_down", "blob_circle")
SUFFIX = {"hdf5": ".h5", "evt2": ".raw", "evt3": ".raw", "dat": ".dat"}


def _frames(label: int, size: int, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """(n_frames, size, size) intensities in [0.05, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    s = np.linspace(0.0, 1.0, n_frames)[:, None, None]
    width = rng.uniform(2.0, 4.0)
    start, travel = rng.uniform(-0.15, 0.1) * size, rng.uniform(0.9, 1.1) * size
    if label in (0, 1, 2):
        pos = start + travel * s
        if label == 1:
            pos = size - 1 - pos
        coord = yy if label == 2 else xx
        shape = np.exp(-0.5 * ((coord - pos) / (width / 2)) ** 2)
    elif label == 3:
        phase, radius = rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 0.3) * size
        angle = phase + 2 * np.pi * s * rng.uniform(0.8, 1.2)
        cy, cx = size / 2 + radius * np.sin(angle), size / 2 + radius * np.cos(angle)
        shape = np.exp(-0.5 * (((yy - cy) ** 2 + (xx - cx) ** 2) / (width**2)))
    else:
        raise TalonError(f"no gesture class {label}; classes 0..{len(CLASSES) - 1}: {CLASSES}")
    flicker = rng.normal(0.0, 0.01, size=(n_frames, size, size))
    return np.clip(0.1 + 0.9 * shape + flicker, 0.05, 1.0)


def gesture_events(label: int, *, size: int = 32, duration_us: int = 100_000, frame_us: int = 2_000, contrast: float = 0.25, seed: int = 0) -> np.ndarray:
    """The events (EVENT_DTYPE, sorted by t) of one sample of class `label`."""
    rng = np.random.default_rng(seed)
    n_frames = duration_us // frame_us
    log_i = np.log(_frames(label, size, n_frames, rng))
    ref = log_i[0].copy()
    parts = []
    for k in range(1, n_frames):
        diff = log_i[k] - ref
        n = np.floor(np.abs(diff) / contrast).astype(np.int64)
        if not n.any():
            continue
        ref += np.sign(diff) * n * contrast
        ys, xs = np.nonzero(n)
        reps = n[ys, xs]
        ev = np.empty(int(reps.sum()), dtype=EVENT_DTYPE)
        ev["y"], ev["x"] = np.repeat(ys, reps), np.repeat(xs, reps)
        ev["p"] = np.repeat(diff[ys, xs] > 0, reps)
        ev["t"] = (k - 1) * frame_us + rng.integers(0, frame_us, size=len(ev))
        parts.append(ev)
    events = np.concatenate(parts) if parts else np.empty(0, EVENT_DTYPE)
    return events[np.argsort(events["t"], kind="stable")]


def write_gesture_dataset(root: str | os.PathLike, n_per_class: int, *, format: str = "hdf5", size: int = 32, duration_us: int = 100_000, seed: int = 0) -> list[str]:
    """Write `n_per_class` samples of every class as event files in tonic's layout, ROOT/<class>/<i>.<ext>
    (class folders named "0".."3", so labels read back as those numbers). Returns the files written."""
    if format not in SUFFIX or format not in WRITABLE:
        raise TalonError(f"format must be one of {', '.join(SUFFIX)}, got {format!r}")
    root = os.fspath(root)
    written = []
    for label in range(len(CLASSES)):
        folder = os.path.join(root, str(label))
        os.makedirs(folder, exist_ok=True)
        for i in range(n_per_class):
            ev = gesture_events(label, size=size, duration_us=duration_us, seed=seed * 1_000_003 + label * 10_007 + i)
            path = os.path.join(folder, f"{i:04d}{SUFFIX[format]}")
            write_events(path, ev, format=format, sensor_size=(size, size, 2))
            written.append(path)
    return written

