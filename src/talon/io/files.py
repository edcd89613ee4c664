"""Event files: which format a file holds, and reading (whole or in chunks) and writing any of them.

Formats: "evt2", "evt3", "dat" (Prophesee), "aedat4" (iniVation, via aedat), "aedat3" (AEDAT 3.1,
talon.io.aedat3), "npy" (a structured event array saved with numpy), "hdf5" (event HDF5,
talon.io.hdf5's layout) and "atis" (N-MNIST / N-Caltech101 `.bin`, talon.io.atis). The format is told by
the file's first bytes (AEDAT4 and HDF5 magic numbers, the Prophesee ASCII header); only the headerless
ATIS files are told by their suffix `.bin`; `format=` overrides.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import numpy as np

from talon._text import plain
from talon.errors import TalonError
from talon.io import aedat3, aedat4, atis, hdf5, npy, prophesee
from talon.io.events import EVENT_DTYPE, EventRecording

FORMATS = ("evt2", "evt3", "dat", "aedat4", "hdf5", "aedat3", "atis", "npy")
WRITABLE = ("evt2", "evt3", "dat", "hdf5")
#: Suffixes of files a folder data set treats as event files.
EVENT_SUFFIXES = (".raw", ".dat", ".aedat4", ".aedat", ".h5", ".hdf5", ".bin")
DEFAULT_CHUNK = 1 << 20

_AEDAT4_MAGIC = b"#!AER-DAT4.0"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def detect_format(path: str | os.PathLike) -> str:
    """The format of the event file at `path` (one of FORMATS); TalonError naming the file otherwise."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise TalonError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if head.startswith(_AEDAT4_MAGIC):
        return "aedat4"
    if head.startswith(_HDF5_MAGIC):
        return "hdf5"
    if head.startswith(npy.MAGIC):
        return "npy"
    if head.startswith(aedat3.MAGIC):
        aedat3.check_version(path)  # AEDAT 2.0 and others: refused with the way forward
        return "aedat3"
    if path.lower().endswith(".bin"):  # headerless (0 bytes: no events); before the '%' test: an event at x = 37 starts with it
        return "atis"
    if not head:
        raise TalonError(f"{path}: the file is empty (0 bytes); an event file starts with its header: the recording was not saved, or was cut off")
    if head.startswith(b"%"):
        found = prophesee.sniff(prophesee.header(path)[0])
        if found in prophesee.UNSUPPORTED:
            raise TalonError(f"{path}: a Prophesee {prophesee.UNSUPPORTED[found]} recording, which talon.io does not decode (it reads EVT 2.0, "
                             "EVT 3.0 and DAT); convert it to EVT 3.0 or to HDF5 with the Metavision SDK first")
        if found is not None:
            return found
        if path.lower().endswith(".dat"):
            return "dat"
        raise TalonError(f"{path}: a Prophesee header that names no encoding (no '% evt 2.0' / '% evt 3.0' line): pass format='evt2' or 'evt3'")
    raise TalonError(f"{path}: not an event file talon.io knows (first bytes {head[:8]!r}); formats: {', '.join(FORMATS)} (docs/io.md)")


def _format(path: str, format: str | None) -> str:
    if format is None:
        return detect_format(path)
    if format not in FORMATS:
        raise TalonError(f"{path}: unknown event format {format!r}; formats: {', '.join(FORMATS)}")
    if not os.path.isfile(path):
        raise TalonError(f"{path}: no such file")
    return format


def iter_events(path: str | os.PathLike, *, format: str | None = None, chunk_size: int = DEFAULT_CHUNK, stream: int | None = None) -> Iterator[np.ndarray]:
    """The events of `path` (EVENT_DTYPE arrays) about `chunk_size` at a time, so files larger than memory
    can be framed or filtered chunk by chunk. `stream`: which AEDAT4 event stream (default: the first)."""
    path = os.fspath(path)
    fmt = _format(path, format)
    _check_stream(path, fmt, stream)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise TalonError(f"chunk_size must be a positive integer, got {plain(chunk_size)}")
    if fmt == "hdf5":
        yield from hdf5.iter_chunks(path, chunk_size)
    elif fmt == "aedat4":
        yield from aedat4.iter_chunks(path, chunk_size, stream)
    elif fmt == "atis":
        yield from atis.iter_chunks(path, chunk_size)
    elif fmt == "aedat3":
        yield from aedat3.iter_chunks(path, chunk_size)
    elif fmt == "npy":
        yield from npy.iter_chunks(path, chunk_size)
    else:
        yield from prophesee.iter_chunks(path, fmt, chunk_size)


def _check_stream(path: str, fmt: str, stream: int | None) -> None:
    if stream is not None and fmt != "aedat4":
        raise TalonError(f"{path}: stream={stream} picks an AEDAT4 event stream, and this is a {fmt} file (one stream); leave out stream")


def sensor_size(path: str | os.PathLike, *, format: str | None = None, stream: int | None = None) -> tuple[int, int, int] | None:
    """(width, height, 2) as the file states it (an AEDAT4 file: of `stream`, default the first event
    stream), or None when it does not."""
    path = os.fspath(path)
    fmt = _format(path, format)
    _check_stream(path, fmt, stream)
    if fmt == "hdf5":
        return hdf5.sensor_size(path)
    if fmt == "aedat4":
        return aedat4.sensor_size(path, stream)
    if fmt in ("atis", "npy"):
        return None  # the files state none
    if fmt == "aedat3":
        return aedat3.sensor_size(path)
    return prophesee.sensor_size(prophesee.header(path)[0])


def read_events(path: str | os.PathLike, *, format: str | None = None, stream: int | None = None) -> EventRecording:
    """Every event of `path`, with the sensor size the file states (EventRecording)."""
    path = os.fspath(path)
    fmt = _format(path, format)
    _check_stream(path, fmt, stream)
    if fmt in prophesee.ENCODINGS:
        events = prophesee.read(path, fmt)
    else:
        chunks = list(iter_events(path, format=fmt, stream=stream))
        events = np.concatenate(chunks) if chunks else np.empty(0, EVENT_DTYPE)
    return EventRecording(events, sensor_size(path, format=fmt, stream=stream), path, fmt)


def write_events(path: str | os.PathLike, events: Any, *, format: str | None = None, sensor_size: tuple[int, ...] | None = None) -> str:
    """Write `events` (an EVENT_DTYPE array, tonic's, expelliarmus' or any with x, y, t, p) to `path`.

    format: "hdf5", "evt2", "evt3" or "dat"; default by suffix (.h5/.hdf5: hdf5, .dat: dat; .raw needs
    an explicit evt2 or evt3). AEDAT4 has no writer (aedat decodes only). `sensor_size` ((width, height) or
    (width, height, 2)) is stored in every format (HDF5 attributes, the Prophesee header) and read back by
    read_events; events outside it are refused."""
    path = os.fspath(path)
    if format is None:
        suffix = os.path.splitext(path)[1].lower()
        format = {".h5": "hdf5", ".hdf5": "hdf5", ".dat": "dat"}.get(suffix)
        if format is None:
            raise TalonError(f"{path}: cannot tell the format from the suffix {suffix!r}: pass format= one of {', '.join(WRITABLE)}")
    if format not in WRITABLE:
        why = " (the aedat library only decodes AEDAT4)" if format == "aedat4" else ""
        raise TalonError(f"{path}: talon.io cannot write {format!r}{why}; writable formats: {', '.join(WRITABLE)}")
    if format == "hdf5":
        return hdf5.write(path, events, sensor_size)
    return prophesee.write(path, events, format, sensor_size)
