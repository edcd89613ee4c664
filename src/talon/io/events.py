"""The in-memory form of event-camera data: tonic's structured event array, and a recording around it.

Every reader in talon.io returns events as a numpy structured array of `EVENT_DTYPE`, which is tonic's own
(`tonic.io.events_struct`: x, y int16; t int64 in microseconds; p bool), so tonic's transforms
(`ToFrame`, `Denoise`, `Downsample`, ...) apply to them unchanged. `as_events` converts the arrays of the
other libraries (expelliarmus' t/x/y/p, aedat's t/x/y/on) and refuses anything it would have to guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np

from talon._text import plain
from talon.errors import TalonError

#: tonic's event dtype (tonic.io.events_struct): x, y int16; t int64 (microseconds); p bool.
EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])
_INT16_MAX = np.iinfo(np.int16).max


@dataclass
class EventRecording:
    """Events of one file: `events` (EVENT_DTYPE, in file order), `sensor_size` (width, height, 2) when the
    file states it (else None), the `path` and `format` it was read from."""

    events: np.ndarray
    sensor_size: tuple[int, int, int] | None = None
    path: str | None = None
    format: str | None = None

    def __len__(self) -> int:
        return len(self.events)

    @property
    def duration_us(self) -> int:
        """Time from the first to the last event (0 for fewer than two events)."""
        t = self.events["t"]
        return int(t[-1] - t[0]) if len(t) > 1 else 0

    def __repr__(self) -> str:
        return f"EventRecording({len(self)} events, sensor_size={self.sensor_size}, format={self.format!r}, path={self.path!r})"


def check_sensor_size(sensor_size: Any, events: np.ndarray | None, *, what: str = "events") -> tuple[int, int, int]:
    """`sensor_size` ((width, height) or tonic's (width, height, 2)) as (width, height, 2), checked: whole
    numbers >= 1, and every event inside it. Files store width and height; the 2 is the two polarities."""
    size = tuple(sensor_size) if isinstance(sensor_size, (tuple, list, np.ndarray)) else None
    ok = size is not None and len(size) in (2, 3) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)
    if not ok or not all(int(v) >= 1 for v in size) or (len(size) == 3 and int(size[2]) != 2):
        raise TalonError(f"{what}: sensor_size must be (width, height) or (width, height, 2) in whole numbers >= 1, got {plain(sensor_size)}")
    w, h = int(size[0]), int(size[1])
    for axis, limit in (("x", w), ("y", h)):
        if events is not None and len(events) and int(events[axis].max()) >= limit:
            i = int(np.argmax(events[axis] >= limit))
            raise TalonError(f"{what}: event {i} has {axis}={int(events[axis][i])}, outside the sensor_size {w}x{h} ({axis} < {limit}); "
                             "give the sensor's real size")
    return w, h, 2


def _check_finite_whole(v: np.ndarray, field: str, what: str) -> None:
    """A float column of events holds only finite whole numbers (coordinates in pixels, times in µs)."""
    if v.dtype.kind != "f" or not v.size:
        return
    bad = ~np.isfinite(v)
    if bad.any():
        i = int(np.argmax(bad))
        raise TalonError(f"{what}: {field} contains {'NaN' if np.isnan(v[i]) else 'inf'} at event {i}; every event needs finite x, y and t")
    frac = v != np.round(v)
    if frac.any() and field != "t":  # t has its own message below
        i = int(np.argmax(frac))
        raise TalonError(f"{what}: {field} holds the fractional value {float(v[i]):g} at event {i}; coordinates are whole pixels")


def event_fields(names: Any) -> tuple[str | None, list[str]]:
    """The polarity field among the field `names` of a structured array ("p", or aedat's "on"; None when
    neither), and which of x, y, t, p it lacks."""
    pol = "p" if "p" in names else "on" if "on" in names else None
    return pol, [f for f in ("x", "y", "t") if f not in names] + ([] if pol else ["p"])


def as_events(array: Any, *, what: str = "events") -> np.ndarray:
    """`array` (any structured array with fields x, y, t and p or on) as an EVENT_DTYPE array.

    Values that do not fit (negative times, coordinates beyond int16, polarities other than 0/1) raise
    TalonError naming `what`: they are never clipped."""
    arr = np.asarray(array)
    names = arr.dtype.names
    if names is None:
        raise TalonError(f"{what}: expected a structured array with fields x, y, t, p (tonic's layout), got a plain {arr.dtype} array of shape {arr.shape}")
    pol, missing = event_fields(names)
    if missing:
        raise TalonError(f"{what}: the structured array has fields {list(names)}, missing {missing}; events need x, y, t and p (polarity)")
    arr = arr.reshape(-1)
    out = np.empty(arr.shape[0], dtype=EVENT_DTYPE)
    for field in ("x", "y", "t"):
        _check_finite_whole(arr[field], field, what)
    for field in ("x", "y"):
        v = arr[field]
        if v.size and (v.min() < 0 or v.max() > _INT16_MAX):
            raise TalonError(f"{what}: {field} holds values in [{v.min()}, {v.max()}]; coordinates must lie in [0, {_INT16_MAX}]")
        out[field] = v
    t = arr["t"]
    if t.dtype.kind == "f" and t.size and not np.array_equal(t, np.round(t)):
        raise TalonError(f"{what}: t holds fractional values; timestamps are whole microseconds (multiply seconds by 1e6 and round first)")
    if t.size and (t.max() >= 2.0**63 if t.dtype.kind == "f" else t.dtype.kind == "u" and int(t.max()) > np.iinfo(np.int64).max):  # uint64 or float values that int64 microseconds cannot hold: never wrapped
        raise TalonError(f"{what}: t reaches {plain(t.max())}, beyond the int64 microseconds events hold ({np.iinfo(np.int64).max}); "
                         "timestamps are microseconds from the start of the recording")
    if t.size and t.min() < 0:
        raise TalonError(f"{what}: t holds negative timestamps (min {t.min()}); timestamps are microseconds from the start of the recording")
    out["t"] = t
    p = arr[pol]
    if p.dtype != bool and p.size and not np.isin(p, (0, 1)).all():
        bad = np.unique(p[~np.isin(p, (0, 1))])[:5]
        hint = " (-1/+1 polarities: p = (p > 0))" if (bad == -1).any() else ""
        raise TalonError(f"{what}: polarity {pol!r} holds values {plain(bad)}; polarities are 0 (off) or 1 (on): map them first{hint}")
    out["p"] = p.astype(bool)
    return out


def make_events(x: Any, y: Any, t: Any, p: Any) -> np.ndarray:
    """An EVENT_DTYPE array from four equal-length columns (checked as in `as_events`)."""
    cols = [np.asarray(c).reshape(-1) for c in (x, y, t, p)]
    if len({c.shape[0] for c in cols}) != 1:
        raise TalonError(f"make_events: x, y, t, p have different lengths {[c.shape[0] for c in cols]}")
    tmp = np.empty(cols[0].shape[0], dtype=[("x", np.int64), ("y", np.int64), ("t", cols[2].dtype), ("p", cols[3].dtype)])
    for name, c in zip(("x", "y", "t", "p"), cols):
        tmp[name] = c
    return as_events(tmp)



def rechunk(blocks: Iterable[np.ndarray], chunk_size: int) -> Iterator[np.ndarray]:
    """The events of `blocks` (a file's packets, of any sizes) regrouped `chunk_size` at a time; the last
    chunk holds what is left."""
    pending: list[np.ndarray] = []
    held = 0
    for ev in blocks:
        pending.append(ev)
        held += len(ev)
        while held >= chunk_size:
            block = np.concatenate(pending)
            yield block[:chunk_size]
            rest = block[chunk_size:]
            pending, held = ([rest] if len(rest) else []), len(rest)
    if held:
        yield np.concatenate(pending)
