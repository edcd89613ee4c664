"""AEDAT4 files (iniVation DV) through the `aedat` decoder: polarity events of one event stream.

The decoder yields packets in file order (events, frames, IMU samples, triggers); only the packets of the
chosen event stream are kept, so a file streams packet by packet. aedat has no writer; the tests build
files from the format's published FlatBuffers schemas.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from talon.errors import TalonError
from talon.io._deps import require
from talon.io.events import as_events, rechunk


def _decoder(path: str) -> Any:
    aedat = require("aedat", "reading AEDAT4")

    try:
        return aedat.Decoder(path)
    except Exception as exc:  # noqa: BLE001 - the Rust decoder raises RuntimeError with its reason
        raise TalonError(f"{path}: not a readable AEDAT4 file ({exc})") from None


def _event_stream(decoder: Any, path: str, stream: int | None) -> tuple[int, tuple[int, int, int]]:
    streams = decoder.id_to_stream()
    events = {sid: s for sid, s in streams.items() if s.get("type") == "events"}
    if stream is None:
        if not events:
            raise TalonError(f"{path}: the AEDAT4 file has no event stream (streams: {streams})")
        stream = min(events)
    elif stream not in events:
        raise TalonError(f"{path}: stream {stream} is not an event stream; event streams: {sorted(events)}")
    s = events[stream]
    return stream, (int(s["width"]), int(s["height"]), 2)


def sensor_size(path: str, stream: int | None = None) -> tuple[int, int, int]:
    return _event_stream(_decoder(path), path, stream)[1]


def iter_chunks(path: str, chunk_size: int, stream: int | None = None) -> Iterator[np.ndarray]:
    """Events of `stream` (default: the first event stream), about `chunk_size` at a time."""
    decoder = _decoder(path)
    sid, _ = _event_stream(decoder, path, stream)
    yield from rechunk(_packets(decoder, sid, path), chunk_size)


def _packets(decoder: Any, sid: int, path: str) -> Iterator[np.ndarray]:
    """The events of each packet of stream `sid`, in file order."""
    read = 0
    try:
        for packet in decoder:
            if packet["stream_id"] != sid or "events" not in packet:
                continue
            ev = as_events(packet["events"], what=path)
            read += len(ev)
            yield ev
    except TalonError:
        raise
    except Exception as exc:  # noqa: BLE001 - a truncated or corrupt packet
        raise TalonError(f"{path}: damaged AEDAT4 data after {read} events ({exc}); the file is truncated or corrupt") from None
