"""Prophesee event files (EVT2 and EVT3 `.raw`, `.dat`): read and written with expelliarmus, EVT2 and
EVT3 decoded by talon.io.evt2 / evt3 (the specification's codecs; see there why).

expelliarmus decodes and encodes the three formats; it wants the file suffix `.raw` (EVT2/EVT3) or `.dat`,
and on a damaged file prints to stderr and returns None instead of raising. This module adds what a
caller needs around it: a check that the encoded payload is a whole number of words (a file cut short
mid-word decodes to fewer events without complaint otherwise), errors that name the file, the sensor
size read from and written to the header (expelliarmus writes none), and atomic writes.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Any, Iterator

import numpy as np

from talon.errors import TalonError
from talon.io._deps import require
from talon.io import evt2, evt3
from talon.io.events import EVENT_DTYPE, as_events, check_sensor_size

ENCODINGS = ("evt2", "evt3", "dat")
SUFFIX = {"evt2": ".raw", "evt3": ".raw", "dat": ".dat"}
#: bytes per word of the encoded payload after the header (DAT: one 8-byte event per word)
WORD_BYTES = {"evt2": 4, "evt3": 2, "dat": 8}


def _is_text_line(line: bytes) -> bool:
    """A header line: '%', text, a newline. A payload that happens to begin with the byte '%' (files
    without "% end") holds control bytes or no newline, and is not taken for header."""
    return line.startswith(b"%") and line.endswith(b"\n") and not any(b < 0x20 and b not in (9, 10, 13) or b == 0x7F for b in line)


def header(path: str) -> tuple[list[str], int]:
    """The ASCII header lines ("% key value") and the byte offset where the payload starts."""
    lines, pos = [], 0
    with open(path, "rb") as fh:
        while True:
            line = fh.readline()
            if not _is_text_line(line):
                break
            pos += len(line)
            lines.append(line[1:].strip().decode("latin-1"))
            if line.strip() == b"% end":
                break
    return lines, pos


#: Prophesee encodings a header may name that talon.io does not decode: named in the error, never misread.
UNSUPPORTED = {"evt21": "EVT 2.1", "evt4": "EVT 4.0"}


def sniff(lines: list[str]) -> str | None:
    """'evt2', 'evt3' or 'dat' from a header ('evt21' / 'evt4' for the encodings of UNSUPPORTED), or None
    when it does not say. "% format EVT21;..." (EVT 2.1) must not read as EVT2: its 64-bit words would
    decode to made-up events."""
    text = "\n".join(lines).lower()
    if re.search(r"^evt 2\.1|format evt2\.?1\b", text, re.M):
        return "evt21"
    if re.search(r"^evt 4\.0|format evt4", text, re.M):
        return "evt4"
    if re.search(r"^evt 3\.0|format evt3", text, re.M):
        return "evt3"
    if re.search(r"^evt 2\.0|format evt2(?:\.0)?\b", text, re.M):
        return "evt2"
    if "data file containing cd events" in text:
        return "dat"
    return None


def sensor_size(lines: list[str]) -> tuple[int, int, int] | None:
    """(width, height, 2) from "% geometry WxH", "% format ...;width=W;height=H" or DAT's "% Width"/"% Height"."""
    text = "\n".join(lines)
    m = re.search(r"geometry\s+(\d+)x(\d+)", text)
    if m:
        return int(m.group(1)), int(m.group(2)), 2
    w = re.search(r"(?:width[=\s]+)(\d+)", text, re.I)
    h = re.search(r"(?:height[=\s]+)(\d+)", text, re.I)
    if w and h:
        return int(w.group(1)), int(h.group(1)), 2
    return None


def _check(path: str, encoding: str) -> int:
    """The byte offset where the payload starts, once the payload is checked whole."""
    # EVT2 / EVT3 are decoded here (any file name); DAT goes through expelliarmus, which wants *.dat
    if encoding == "dat" and os.path.splitext(path)[1].lower() != SUFFIX[encoding]:
        raise TalonError(
            f"{path}: expelliarmus reads {encoding.upper()} only from files named *{SUFFIX[encoding]}; rename or link the file with that suffix"
        )
    _, start = header(path)
    payload = os.path.getsize(path) - start - (2 if encoding == "dat" else 0)  # DAT: event type and size bytes
    if encoding == "dat" and payload == -2:  # a header and nothing else: a recording without events
        return start
    if encoding == "dat" and payload >= 0:
        _check_dat_type(path, start)
    if payload < 0 or payload % WORD_BYTES[encoding]:
        raise TalonError(
            f"{path}: the {encoding.upper()} payload is {payload} bytes, not a whole number of {WORD_BYTES[encoding]}-byte words: "
            f"the file is truncated or not {encoding.upper()}; re-export it from the camera software"
        )
    return start


#: DAT event types holding CD events in 8 bytes: 0x00 (2D events: N-CARS, Gen1) and 0x0C (CD events, Metavision).
DAT_CD_TYPES = (0x00, 0x0C)


def _check_dat_type(path: str, start: int) -> None:
    """The event type and size bytes after a DAT header: CD events of 8 bytes, else the file holds another
    kind (triggers 0x0E, ...) that would decode to made-up CD events."""
    with open(path, "rb") as fh:
        fh.seek(start)
        typ, size = fh.read(2)
    if typ not in DAT_CD_TYPES or size != 8:
        raise TalonError(f"{path}: a DAT file of event type 0x{typ:02X} with {size}-byte events; talon.io reads DAT files of CD events "
                         "(type 0x00 or 0x0C, 8 bytes): this one holds other events (0x0E: external triggers); read the CD recording instead")


def _wizard(path: str, encoding: str, chunk_size: int | None = None) -> Any:
    Wizard = require("expelliarmus", f"reading {encoding.upper()}").Wizard

    kw = {"chunk_size": chunk_size} if chunk_size else {}
    return Wizard(encoding=encoding, fpath=path, **kw)


def _checked(arr: Any, path: str, encoding: str) -> np.ndarray:
    if arr is None:
        raise TalonError(f"{path}: expelliarmus could not decode it as {encoding.upper()} (corrupt, or another encoding: pass format='evt2', 'evt3' or 'dat')")
    return as_events(arr, what=path)


_DECODERS = {"evt2": evt2.iter_decode, "evt3": evt3.iter_decode}


def _no_events(path: str, start: int) -> bool:
    """A DAT file with a header and at most its event type and size bytes: expelliarmus returns None."""
    return os.path.getsize(path) - start <= 2


def read(path: str, encoding: str) -> np.ndarray:
    start = _check(path, encoding)
    if encoding in _DECODERS:
        chunks = list(_DECODERS[encoding](path, start, 1 << 22))
        return np.concatenate(chunks) if chunks else np.empty(0, EVENT_DTYPE)
    if _no_events(path, start):
        return np.empty(0, EVENT_DTYPE)
    return _checked(_wizard(path, encoding).read(path), path, encoding)


def iter_chunks(path: str, encoding: str, chunk_size: int) -> Iterator[np.ndarray]:
    """Events `chunk_size` at a time."""
    start = _check(path, encoding)
    if encoding in _DECODERS:  # an EVT3 vector word holds up to 12 events: chunks are cut to chunk_size events
        for block in _DECODERS[encoding](path, start, chunk_size):
            for i in range(0, len(block), chunk_size):
                yield block[i : i + chunk_size]
        return
    if _no_events(path, start):
        return
    wizard = _wizard(path, encoding, chunk_size)
    for chunk in wizard.read_chunk():
        yield _checked(chunk, path, encoding)


#: What expelliarmus' encoders hold exactly (measured by round trips; the write check below is the rule).
LIMITS = {
    "evt2": "x, y <= 2047 and t < 2**32 us",
    "evt3": "x, y <= 2047 (any timestamps; long silences cost a TIME_HIGH word per 8 x 4096 us)",
    "dat": "x, y <= 16383 and less than 2**32 us between consecutive events",
}


def write(path: str | os.PathLike, events: Any, encoding: str, sensor_size: Any = None) -> str:
    """Encode `events` to `path` with expelliarmus, atomically (a temporary file in the same folder),
    then read the file back: an event the encoding cannot hold exactly is an error, never a silent change.
    `sensor_size` goes into the header as Metavision writes it (geometry_lines); expelliarmus writes none."""
    Wizard = require("expelliarmus", f"writing {encoding.upper()}").Wizard

    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() != SUFFIX[encoding]:
        raise TalonError(f"{path}: {encoding.upper()} files must be named *{SUFFIX[encoding]} (expelliarmus' rule, and the camera software's)")
    ev = as_events(events, what=f"events for {path}")
    if len(ev) == 0:
        raise TalonError(f"events for {path}: no events; expelliarmus writes no empty {encoding.upper()} file (HDF5 holds empty recordings)")
    size = None if sensor_size is None else check_sensor_size(sensor_size, ev, what=f"events for {path}")
    if len(ev) > 1 and np.any(np.diff(ev["t"]) < 0):
        raise TalonError(f"events for {path}: timestamps are not sorted; {encoding.upper()} stores them in time order (sort with np.argsort(events['t'], kind='stable'))")
    arr = np.empty(len(ev), dtype=[("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.uint8)])
    for k in ("t", "x", "y"):
        arr[k] = ev[k]
    arr["p"] = ev["p"]
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise TalonError(f"cannot write {path!r}: folder {os.path.dirname(path) or folder!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=SUFFIX[encoding])
    os.close(fd)
    try:
        if encoding == "evt3":  # the specification's encoding (talon.io.evt3: expelliarmus' omits TIME_HIGH words)
            with open(tmp, "wb") as fh:
                fh.write(b"% evt 3.0\n% end\n" + evt3.encode(ev, f"events for {path}").tobytes())
        else:
            Wizard(encoding=encoding).save(tmp, arr)
        if size is not None or encoding == "evt2":  # expelliarmus' EVT2 header has no "% end": added, as Metavision writes it
            _add_header_lines(tmp, [] if size is None else geometry_lines(encoding, size[0], size[1]), end=encoding != "dat")
        _verify(tmp, ev, encoding, path)
        if sensor_size_of(tmp) != size:
            raise TalonError(f"{path}: the sensor size {size} written into the {encoding.upper()} header reads back as {sensor_size_of(tmp)}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def geometry_lines(encoding: str, width: int, height: int) -> list[str]:
    """The header lines that state the sensor size, as Metavision writes them: RAW (EVT2/EVT3) files
    "% format EVT3;height=H;width=W" and "% geometry WxH" (docs.prophesee.ai, RAW file format); DAT files
    "% Width W" and "% Height H"."""
    if encoding == "dat":
        return [f"% Width {width}", f"% Height {height}"]
    return [f"% format {encoding.upper()};height={height};width={width}", f"% geometry {width}x{height}"]


def sensor_size_of(path: str) -> tuple[int, int, int] | None:
    return sensor_size(header(path)[0])


def _add_header_lines(path: str, lines: list[str], end: bool = False) -> None:
    """Insert `lines` at the end of the ASCII header of `path` (before any "% end"; with `end`, a "% end"
    line closes the header in any case), payload untouched."""
    old, start = header(path)
    with open(path, "rb") as fh:
        data = fh.read()
    head = data[:start]
    marker = b"% end\n"
    body = head[: -len(marker)] if head.endswith(marker) else head
    with open(path, "wb") as fh:
        fh.write(body + "".join(line + "\n" for line in lines).encode("ascii") + (marker if end or head.endswith(marker) else b"") + data[start:])


def _verify(tmp: str, ev: np.ndarray, encoding: str, path: str) -> None:
    back = _read_back(tmp, encoding)
    same = back is not None and len(back) == len(ev)
    if same:
        diff = np.zeros(len(ev), dtype=bool)
        for k in ("t", "x", "y", "p"):
            diff |= back[k].astype(np.int64) != ev[k].astype(np.int64)
        same = not diff.any()
    if same:
        return
    if back is None or len(back) != len(ev):
        what = f"{0 if back is None else len(back)} of {len(ev)} events read back"
    else:
        i = int(np.argmax(diff))
        what = f"event {i} (t={ev['t'][i]}, x={ev['x'][i]}, y={ev['y'][i]}, p={int(ev['p'][i])}) reads back as (t={back['t'][i]}, x={back['x'][i]}, y={back['y'][i]}, p={back['p'][i]})"
    raise TalonError(
        f"events for {path}: {encoding.upper()} as expelliarmus encodes it cannot hold them exactly: {what}. It holds {LIMITS[encoding]}; "
        f"write EVT3 (format='evt3') or HDF5 (format='hdf5') instead" if encoding != "evt3" else "write HDF5 (format='hdf5') for anything else"
    )


def _read_back(path: str, encoding: str) -> Any:
    if encoding in _DECODERS:
        return read(path, encoding)
    Wizard = require("expelliarmus", f"reading {encoding.upper()}").Wizard
    return Wizard(encoding=encoding).read(path)
