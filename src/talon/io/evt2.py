"""Prophesee EVT 2.0 payloads decoded as the format's public specification says (numpy).

Why not expelliarmus here: its reader hangs for ever on a file whose payload begins with the byte
0x25 ('%', the header's marker; one camera file in 256 starts with such a TIME_HIGH word), and it has no
notion of the 34-bit time's wrap. (Writing still goes through expelliarmus: talon.io.prophesee.)

32-bit little-endian words, the type in the top 4 bits (docs.prophesee.ai, "EVT 2.0 format"):

    0x0 CD_OFF, 0x1 CD_ON   time bits 0..5 (bits 27..22), x (bits 21..11), y (bits 10..0): one event
    0x8 EVT_TIME_HIGH       time bits 6..33 (bits 27..0)
    0xA EXT_TRIGGER, 0xE OTHERS, 0xF CONTINUED: no CD event (skipped)

Events before the first TIME_HIGH take 0 as the high part (as expelliarmus reads them). The 34-bit time
wraps every 2^34 µs (4.8 hours): a TIME_HIGH that falls by half its range or more starts the next loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from talon.io._words import iter_words, last_index
from talon.io.events import EVENT_DTYPE

_HIGH_BITS = 28
_LOOP = 1 << (_HIGH_BITS + 6)
_WRAP_DROP = 1 << (_HIGH_BITS - 1)


@dataclass
class State:
    """What a decoder carries from one chunk of words to the next."""

    high_raw: int = -1  # last TIME_HIGH value (-1: none yet)
    loops: int = 0


def decode(words: np.ndarray, state: State) -> np.ndarray:
    """The CD events of `words` (uint32), in order; `state` is updated to the end of the words."""
    w = np.asarray(words, dtype=np.uint32).astype(np.int64)
    typ = w >> 28
    is_th = typ == 0x8
    hv = w[is_th] & ((1 << _HIGH_BITS) - 1)
    prev = np.concatenate([[state.high_raw], hv[:-1]])
    loops = state.loops + np.cumsum((prev >= 0) & (prev - hv >= _WRAP_DROP))
    high = np.full(w.size, -1, np.int64)
    high[is_th] = loops * _LOOP + (hv << 6)
    last = last_index(is_th)
    before = state.loops * _LOOP + (max(state.high_raw, 0) << 6)
    base = np.where(last >= 0, high[np.maximum(last, 0)], before)
    cd = np.flatnonzero(typ <= 0x1)
    ev = np.empty(cd.size, dtype=EVENT_DTYPE)
    v = w[cd]
    ev["t"] = base[cd] + ((v >> 22) & 0x3F)
    ev["x"] = (v >> 11) & 0x7FF
    ev["y"] = v & 0x7FF
    ev["p"] = typ[cd] == 0x1
    if hv.size:
        state.high_raw, state.loops = int(hv[-1]), int(loops[-1])
    return ev


def iter_decode(path: str, offset: int, words_per_chunk: int) -> Iterator[np.ndarray]:
    """The events of the EVT2 payload of `path` from byte `offset`, `words_per_chunk` words at a time."""
    return iter_words(path, offset, "<u4", words_per_chunk, decode, State())
