"""Event arrays saved with numpy (`np.save("rec.npy", events)`: tonic's structured array, or any with
fields x, y, t and p), read with memory mapping, so large files stream in chunks.

A plain (N, 4) array (tonic's DVSGesture cache: columns x, y, p, t with t in milliseconds; other tools:
t, x, y, p) does not say which column is which, nor the unit of t: it is refused with the way forward.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from talon.errors import TalonError
from talon.io.events import as_events

MAGIC = np.lib.format.MAGIC_PREFIX  # numpy's own: b"\x93NUMPY"


def _load(path: str) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - a damaged or pickled .npy
        raise TalonError(f"{path}: not a readable .npy array ({exc})") from None
    if arr.dtype.names is None:
        raise TalonError(
            f"{path}: a plain {arr.dtype} array of shape {arr.shape}, which does not say which column is x, y, t or p, nor the unit of t "
            "(tonic's DVSGesture cache holds x, y, p, t in milliseconds: pass tonic.datasets.DVSGesture itself as the data); save the "
            "events as a structured array (tonic's: np.save(path, events)) or write them with talon.io.write_events"
        )
    if arr.ndim != 1:
        raise TalonError(f"{path}: a structured array of shape {arr.shape}; event arrays are 1-D")
    return arr


def iter_chunks(path: str, chunk_size: int) -> Iterator[np.ndarray]:
    arr = _load(path)
    for start in range(0, arr.shape[0], chunk_size):
        yield as_events(np.asarray(arr[start : start + chunk_size]), what=f"{path} (events {start}..{min(arr.shape[0], start + chunk_size)})")
