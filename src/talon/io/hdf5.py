"""Event HDF5 files: read, stream and write (h5py).

Layout (the common one of event-camera HDF5 files, DSEC's among them; the existing SDK documents none
of its own):

    /events/x   (N,) integer   column of each event
    /events/y   (N,) integer   row
    /events/t   (N,) integer   timestamp, microseconds
    /events/p   (N,) integer or bool   polarity, 0 (off) or 1 (on)
    /events/@width, /events/@height    sensor size (optional; written by talon.io)
    /t_offset   scalar integer          added to every t (optional; DSEC writes it)

/events/xs, ys, ts, ps (event_utils' and e2vid's names) read as x, y, t, p; their ts in float seconds
is refused (timestamps are whole microseconds), never rounded nor read as microseconds.

A tonic event array saved as it is (`f.create_dataset("events", data=events)`: one compound dataset
/events with fields x, y, t, p in any order) reads too. Metavision's layout, a compound dataset
/CD/events with fields x, y, p, t (and the root attribute
`geometry`, "WxH"), reads too when h5py can decompress it (its ECF codec is an HDF5 plugin).
Reading accepts any dtype that holds the values exactly (checked by talon.io.events.as_events). Writing
stores x, y as uint16, t as int64, p as uint8, chunked and gzip-compressed, atomically.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import numpy as np

from talon.errors import TalonError
from talon.io.events import as_events, check_sensor_size, event_fields

FIELDS = ("x", "y", "t", "p")
_INT64_MAX = int(np.iinfo(np.int64).max)


def _open(path: str) -> Any:
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise TalonError(f"{path}: not a readable HDF5 file ({exc}); event HDF5 files hold /events/x, y, t, p (docs/io.md)") from None


class _Field:
    """One field of a compound event dataset (Metavision's /CD/events), read slice by slice."""

    def __init__(self, ds: Any, name: str):
        self.ds, self.name = ds, name
        self.dtype = ds.dtype[name]
        self.shape = ds.shape

    def __getitem__(self, index: Any) -> np.ndarray:
        return self.ds.fields(self.name)[index]


def _columns(f: Any, path: str) -> tuple[dict[str, Any], int]:
    cd = f.get("CD/events") if "CD" in f else None
    if cd is not None and getattr(cd.dtype, "names", None) and "events" not in f:
        missing = [k for k in FIELDS if k not in cd.dtype.names]
        if missing:
            raise TalonError(f"{path}: /CD/events has fields {list(cd.dtype.names)}, missing {missing}")
        return {k: _Field(cd, k) for k in FIELDS}, int(cd.shape[0])
    group = f.get("events")
    if group is not None and not hasattr(group, "keys"):
        return _dataset_columns(group, path)
    if group is None:
        raise TalonError(f"{path}: an HDF5 file without an 'events' group (it holds {sorted(f.keys())}); talon.io reads /events/x, y, t, p (docs/io.md)")
    names = {k: k for k in FIELDS}
    if all(k + "s" in group for k in FIELDS) and not any(k in group for k in FIELDS):
        names = {k: k + "s" for k in FIELDS}  # /events/xs, ys, ts, ps (event_utils / e2vid's layout)
    missing = [k for k in FIELDS if names[k] not in group]
    if missing:
        raise TalonError(f"{path}: /events lacks {missing} (it holds {sorted(group.keys())}); event HDF5 files hold /events/x, y, t, p")
    cols = {k: group[names[k]] for k in FIELDS}
    if names["t"] == "ts" and cols["t"].dtype.kind == "f":
        raise TalonError(f"{path}: /events/ts holds {cols['t'].dtype} values, the float seconds of event_utils' files; timestamps are whole "
                         "microseconds: store round(ts * 1e6) as integers (or write the events with talon.io.write_events)")
    lengths = {k: c.shape for k, c in cols.items()}
    if any(len(s) != 1 for s in lengths.values()) or len({s[0] for s in lengths.values()}) != 1:
        raise TalonError(f"{path}: /events/x, y, t, p must be 1-D and of equal length, got shapes {lengths}")
    return cols, int(cols["t"].shape[0])


def _dataset_columns(ds: Any, path: str) -> tuple[dict[str, Any], int]:
    """/events as one dataset: a compound one (a tonic event array saved with h5py) reads field by field;
    a plain (N, 4) table states no column order (x, y, t, p? t, x, y, p?) and is refused."""
    names = getattr(ds.dtype, "names", None)
    if names:
        pol, missing = event_fields(names)
        if missing or len(ds.shape) != 1:
            raise TalonError(f"{path}: /events is a compound dataset of shape {ds.shape} with fields {list(names)}; events need a 1-D one with "
                             f"x, y, t and p{f' (missing {missing})' if missing else ''}")
        return {k: _Field(ds, pol if k == "p" else k) for k in FIELDS}, int(ds.shape[0])
    raise TalonError(f"{path}: /events is a plain {ds.dtype} array of shape {ds.shape}, which does not say which column is x, y, t or p; "
                     "store the events as /events/x, y, t, p (talon.io.write_events(path, events, format='hdf5')) or as one compound "
                     "dataset with named fields (h5py: f.create_dataset('events', data=events) for a tonic event array)")


def _offset(f: Any, path: str) -> int:
    if "t_offset" not in f:
        return 0
    v = np.asarray(f["t_offset"][()])
    if v.shape != () or v.dtype.kind not in "iu":
        raise TalonError(f"{path}: /t_offset must be a scalar integer (microseconds), got {v.dtype} of shape {v.shape}")
    return int(v)


def sensor_size(path: str) -> tuple[int, int, int] | None:
    """(width, height, 2) from /events' attributes, or None when the file does not say."""
    with _open(path) as f:
        return _sensor(f)


def _sensor(f: Any) -> tuple[int, int, int] | None:
    attrs = f["events"].attrs if "events" in f else {}
    if "width" in attrs and "height" in attrs:
        return int(attrs["width"]), int(attrs["height"]), 2
    geometry = f.attrs.get("geometry")  # Metavision: "1280x720"
    if geometry is not None:
        text = geometry.decode() if isinstance(geometry, bytes) else str(geometry)
        w, _, h = text.partition("x")
        if w.isdigit() and h.isdigit():
            return int(w), int(h), 2
    return None


def iter_chunks(path: str, chunk_size: int) -> Iterator[np.ndarray]:
    """The file's events, `chunk_size` at a time (only one chunk in memory)."""
    with _open(path) as f:
        cols, n = _columns(f, path)
        offset = _offset(f, path)
        for start in range(0, n, chunk_size):
            stop = min(n, start + chunk_size)
            yield _chunk(cols, start, stop, offset, path)


def _chunk(cols: dict[str, Any], start: int, stop: int, offset: int, path: str) -> np.ndarray:
    dtypes = [(k, np.int64 if k == "t" else cols[k].dtype) for k in FIELDS]
    if cols["t"].dtype.kind == "f":  # as_events refuses fractional times; keep them to say so
        dtypes[2] = ("t", cols["t"].dtype)
    tmp = np.empty(stop - start, dtype=dtypes)
    try:
        for k in FIELDS:
            col = cols[k][start:stop]
            if k == "t" and col.dtype.kind in "iu" and col.size and int(col.max()) > _INT64_MAX - max(offset, 0):
                raise TalonError(f"{path}: /events/t reaches {int(col.max())}" + (f" (+ /t_offset {offset})" if offset else "")
                                 + f" µs, beyond the int64 microseconds events hold ({_INT64_MAX}); the timestamps are not microseconds, or are damaged")
            tmp[k] = col
    except OSError as exc:  # a compression filter h5py lacks (Metavision's ECF), or a damaged chunk
        hint = " (Metavision's ECF codec: install its HDF5 plugin, hdf5_ecf, or convert the file to EVT3)" if "filter" in str(exc).lower() else ""
        raise TalonError(f"{path}: cannot read events {start}..{stop} ({exc}){hint}") from None
    tmp["t"] += offset
    return as_events(tmp, what=f"{path} (events {start}..{stop})")


def count(path: str) -> int:
    with _open(path) as f:
        return _columns(f, path)[1]


def write(path: str | os.PathLike, events: Any, sensor_size: tuple[int, ...] | None = None) -> str:
    """Write `events` (any array as_events accepts) to an event HDF5 file at `path`, atomically."""
    import h5py

    from talon.ir._atomic import atomic_path

    ev = as_events(events, what=f"events for {os.fspath(path)}")
    size = None if sensor_size is None else check_sensor_size(sensor_size, ev, what=f"events for {os.fspath(path)}")
    dtypes = {"x": np.uint16, "y": np.uint16, "t": np.int64, "p": np.uint8}
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            g = f.create_group("events")
            for k in FIELDS:
                data = ev[k].astype(dtypes[k])
                kw = {"chunks": (min(len(data), 1 << 16),), "compression": "gzip", "compression_opts": 1} if len(data) else {}
                g.create_dataset(k, data=data, **kw)
            if size is not None:
                g.attrs["width"], g.attrs["height"] = size[0], size[1]
    return os.fspath(path)

