"""N-MNIST and N-Caltech101 `.bin` files: the ATIS 40-bit event format (numpy).

As Orchard et al. published the data sets (Read_Ndataset.m; tonic.io.read_mnist_file reads them the
same way): 5 bytes per event, no header,

    byte 0   x (8 bits)          byte 1   y (8 bits)
    byte 2   bit 7: polarity, bits 6..0: timestamp bits 22..16
    bytes 3, 4                   timestamp bits 15..8, 7..0 (microseconds)

An event with y = 240 is a timestamp overflow marker, not an event: every later timestamp gains 2^13 µs.
The files state no sensor size (N-MNIST's is 34x34; N-Caltech101's varies per recording).
"""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from talon.errors import TalonError
from talon.io._words import payload
from talon.io.events import EVENT_DTYPE

EVENT_BYTES = 5
_OVERFLOW_Y = 240
_OVERFLOW_US = 1 << 13


def _check(path: str) -> int:
    size = os.path.getsize(path)
    if size % EVENT_BYTES:
        raise TalonError(f"{path}: {size} bytes, not a whole number of 5-byte ATIS events (N-MNIST / N-Caltech101 .bin): the file is truncated "
                         f"by {size % EVENT_BYTES} bytes; download or extract it again")
    return size // EVENT_BYTES


def decode(raw: np.ndarray, overflows_before: int = 0) -> tuple[np.ndarray, int]:
    """The events of whole 5-byte records `raw` (uint8), and the overflow markers counted so far."""
    r = raw.reshape(-1, EVENT_BYTES).astype(np.int64)
    y = r[:, 1]
    marker = y == _OVERFLOW_Y
    overflows = overflows_before + np.cumsum(marker)
    keep = ~marker
    ev = np.empty(int(keep.sum()), dtype=EVENT_DTYPE)
    ev["x"], ev["y"] = r[keep, 0], y[keep]
    ev["p"] = (r[keep, 2] >> 7).astype(bool)
    ev["t"] = ((r[keep, 2] & 0x7F) << 16 | r[keep, 3] << 8 | r[keep, 4]) + overflows[keep] * _OVERFLOW_US
    return ev, int(overflows[-1]) if overflows.size else overflows_before


def iter_chunks(path: str, chunk_size: int) -> Iterator[np.ndarray]:
    """The events of `path`, at most `chunk_size` at a time."""
    n = _check(path)
    data = payload(path, 0, np.uint8)
    overflows = 0
    for start in range(0, n, chunk_size):
        ev, overflows = decode(np.asarray(data[start * EVENT_BYTES : min(n, start + chunk_size) * EVENT_BYTES]), overflows)
        if ev.size:
            yield ev
