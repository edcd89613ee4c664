"""What the word decoders of headerless binary payloads (talon.io.evt2, evt3, atis) share: the payload
memory-mapped, read chunk by chunk through a decoder that carries its state across chunks, and the
"last index where" that carries a word's value forward to the words after it."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator

import numpy as np


def payload(path: str, offset: int, dtype: Any) -> np.ndarray:
    """The words of `path` from byte `offset` on, memory-mapped (an empty array when there are none:
    numpy cannot map 0 bytes)."""
    if os.path.getsize(path) - offset >= np.dtype(dtype).itemsize:
        return np.memmap(path, dtype=dtype, mode="r", offset=offset)
    return np.zeros(0, dtype)


def iter_words(path: str, offset: int, dtype: Any, words_per_chunk: int, decode: Callable[[np.ndarray, Any], np.ndarray],
                state: Any) -> Iterator[np.ndarray]:
    """decode(words, state) over the payload `words_per_chunk` words at a time; chunks without events skipped."""
    data = payload(path, offset, dtype)
    for i in range(0, data.size, words_per_chunk):
        ev = decode(np.asarray(data[i : i + words_per_chunk]), state)
        if ev.size:
            yield ev


def last_index(mask: np.ndarray) -> np.ndarray:
    """For every word, the index of the last word <= it where mask holds (-1: none)."""
    return np.maximum.accumulate(np.where(mask, np.arange(mask.size), -1)) if mask.size else np.zeros(0, np.int64)
