"""AEDAT 3.1 files (jAER, cAER; DVS Gesture's recordings): the polarity events (numpy).

As iniVation's "AEDAT 3.1" specification lays them out: text header lines "#..." from "#!AER-DAT3.1" to
"#!END-HEADER", then packets, each a 28-byte little-endian header

    int16 eventType, int16 eventSource, int32 eventSize, int32 eventTSOffset, int32 eventTSOverflow,
    int32 eventCapacity, int32 eventNumber, int32 eventValid

and eventCapacity events of eventSize bytes. Polarity events (eventType 1, 8 bytes): uint32 data (bit 0
valid, bit 1 polarity, bits 2..16 y, bits 17..31 x) and int32 timestamp; the time is
eventTSOverflow * 2^31 + timestamp µs. Invalid events (bit 0 clear) and the packets of other types
(special events, frames, IMU samples) are no polarity events and are skipped.

AEDAT 2.0 (jAER's older files: big-endian address/timestamp pairs whose address layout depends on the
sensor) is refused with the way to read it; tonic's generic AEDAT reader reads every packet as 8-byte
events, ignoring validity, type and the timestamp overflow.
"""

from __future__ import annotations

import os
import re
from typing import Iterator

import numpy as np

from talon.errors import TalonError
from talon.io.events import EVENT_DTYPE, as_events, rechunk

MAGIC = b"#!AER-DAT"
_END = b"#!END-HEADER"
_PACKET = np.dtype([("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"), ("overflow", "<i4"),
                    ("capacity", "<i4"), ("number", "<i4"), ("valid", "<i4")])
_POLARITY = 1
#: Sensor sizes (width, height) by the chip name a header's "#Source" line gives.
SENSORS = {"DVS128": (128, 128), "DAVIS240": (240, 180), "DAVIS346": (346, 260), "DVXPLORER_LITE": (320, 240), "DVXPLORER": (640, 480)}


def header(path: str) -> tuple[str, list[str], int]:
    """(version, header lines, byte offset of the first packet)."""
    lines: list[str] = []
    pos = 0
    with open(path, "rb") as fh:
        while True:
            line = fh.readline()
            if not line.startswith(b"#"):
                break
            pos += len(line)
            lines.append(line.decode("latin-1").rstrip("\r\n"))
            if line.startswith(_END):
                break
    m = re.match(r"#!AER-DAT(\d+\.\d+)", lines[0]) if lines else None
    return (m.group(1) if m else "?"), lines, pos


def check_version(path: str) -> int:
    """The byte offset of the first packet of an AEDAT 3.1 file; other versions are refused with the way forward."""
    version, _, pos = header(path)
    if version == "3.1":
        return pos
    if version.startswith("2."):
        raise TalonError(
            f"{path}: an AEDAT {version} file (jAER), whose event addresses are laid out per sensor; talon.io reads AEDAT 3.1 and AEDAT4: "
            "convert it with jAER or DV, or decode its addresses for your sensor (tonic.io.read_dvs_128 for a DVS128) and write the events "
            "with talon.io.write_events(..., format='hdf5')"
        )
    raise TalonError(f"{path}: an AEDAT {version} file; talon.io reads AEDAT 3.1 and AEDAT4 (re-export the recording with DV as AEDAT4)")


def sensor_size(path: str) -> tuple[int, int, int] | None:
    """(width, height, 2) from the header's "#Source ...: <chip>" line, when it names a known chip."""
    for line in header(path)[1]:
        m = re.match(r"#Source\s+-?\d+:\s*(\S+)", line)
        if m:
            chip = m.group(1).upper()
            for name in sorted(SENSORS, key=len, reverse=True):
                if chip.startswith(name):
                    return (*SENSORS[name], 2)
    return None


def iter_chunks(path: str, chunk_size: int) -> Iterator[np.ndarray]:
    """The polarity events of `path`, at most `chunk_size` at a time."""
    yield from rechunk(_packets(path, check_version(path)), chunk_size)


def _packets(path: str, pos: int) -> Iterator[np.ndarray]:
    """The polarity events of each packet from byte `pos` on, in file order."""
    end = os.path.getsize(path)
    with open(path, "rb") as fh:
        fh.seek(pos)
        while pos < end:
            head = np.frombuffer(fh.read(_PACKET.itemsize), _PACKET)
            if head.size != 1:
                raise TalonError(f"{path}: a packet header cut short at byte {pos}: the file is truncated; record or copy it again")
            h = head[0]
            size, capacity = int(h["size"]), int(h["capacity"])
            nbytes = size * capacity
            if size < 0 or capacity < 0 or pos + _PACKET.itemsize + nbytes > end:
                raise TalonError(f"{path}: the packet at byte {pos} holds {capacity} events of {size} bytes, beyond the end of the file: "
                                 "the file is truncated or damaged")
            body = fh.read(nbytes)
            pos += _PACKET.itemsize + nbytes
            if int(h["type"]) != _POLARITY:
                continue
            if size != 8:
                raise TalonError(f"{path}: a polarity packet at byte {pos - nbytes - _PACKET.itemsize} with {size}-byte events; AEDAT 3.1 "
                                 "polarity events are 8 bytes")
            yield as_events(_polarity(np.frombuffer(body, dtype=[("data", "<u4"), ("t", "<i4")]), int(h["overflow"])), what=path)


def _polarity(raw: np.ndarray, overflow: int) -> np.ndarray:
    data = raw["data"].astype(np.int64)
    valid = (data & 1).astype(bool)
    d = data[valid]
    ev = np.empty(d.size, dtype=EVENT_DTYPE)
    ev["x"], ev["y"] = (d >> 17) & 0x7FFF, (d >> 2) & 0x7FFF
    ev["p"] = ((d >> 1) & 1).astype(bool)
    ev["t"] = (np.int64(overflow) << 31) + raw["t"][valid].astype(np.int64)
    return ev
