"""Prophesee EVT 3.0 payloads, decoded and encoded as the format's public specification says (numpy).

Why not expelliarmus here: its EVT3 decoder adds 4096 µs whenever TIME_LOW decreases, even right after a
TIME_HIGH word has already advanced the high part, so the files cameras write (a TIME_HIGH word each time
bits 12..23 of the time change, then TIME_LOW) read with timestamps 4096 µs too late after every such
step; and its encoder writes no TIME_HIGH words at all, relying on that rule, so its files read wrong in
Metavision as soon as two events are in different 4096 µs periods. (EVT2 and DAT are unaffected.)

16-bit little-endian words, the type in the top 4 bits (docs.prophesee.ai, "EVT 3.0 format"):

    0x0 EVT_ADDR_Y    y (11 bits)                    0x2 EVT_ADDR_X   x (11 bits), polarity (bit 11): one event
    0x3 VECT_BASE_X   x (11 bits), polarity (bit 11) 0x4 VECT_12      12-bit mask: events at base_x + bit; base_x += 12
    0x5 VECT_8        8-bit mask; base_x += 8        0x6 TIME_LOW     time bits 0..11
    0x8 TIME_HIGH     time bits 12..23 (TIME_LOW reads as 0 until the next TIME_LOW)
    0x7, 0xA, 0xE, 0xF continued / trigger / other words: no CD event

Files without TIME_HIGH steps (expelliarmus' encoder; talon.io before this module) read as they were
meant: a TIME_LOW below the previous one with no TIME_HIGH between them is 4096 µs later, which a
camera's file never contains. The 24-bit time wraps every 2^24 µs: a TIME_HIGH that falls by at least 4085 (Metavision's rule, 10
periods of tolerance) starts the next loop. The encoder therefore writes TIME_HIGH for every period an
event falls in and, across longer silences, one at least every 8 periods, so that any gap decodes exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from talon.errors import TalonError
from talon.io._words import iter_words, last_index
from talon.io.events import EVENT_DTYPE

_LOOP = 1 << 24
_WRAP_DROP = 4085  # a TIME_HIGH falling by this much is a new loop (4095 - 10: Metavision's threshold)
_FILL_STRIDE = 8  # encoder: TIME_HIGH at least every 8 periods across a silence (decoders see a loop within 11)
MAX_FILL_WORDS = 1 << 24


@dataclass
class State:
    """What a decoder carries from one chunk of words to the next."""

    high_raw: int = -1  # last TIME_HIGH value (-1: none yet)
    loops: int = 0
    base: int = 0  # time of the last TIME_HIGH, loops included
    low: int = 0
    seg_low: int = -1  # last TIME_LOW since the last TIME_HIGH (-1: none)
    seg_wraps: int = 0  # TIME_LOW wraps since the last TIME_HIGH (files without TIME_HIGH steps, see decode)
    y: int = 0
    vect_x: int = 0
    vect_p: int = 0


def decode(words: np.ndarray, state: State) -> np.ndarray:
    """The CD events of `words` (uint16), in order; `state` is updated to the end of the words."""
    w = np.asarray(words, dtype=np.uint16).astype(np.int64)
    n = w.size
    typ, val = w >> 12, w & 0xFFF
    # time: TIME_HIGH (with loops), then TIME_LOW (reset to 0 by every TIME_HIGH)
    is_th, is_tl = typ == 0x8, typ == 0x6
    hv = val[is_th]
    prev = np.concatenate([[state.high_raw], hv[:-1]])
    wrap = (prev >= 0) & (prev - hv >= _WRAP_DROP)
    loops = state.loops + np.cumsum(wrap)
    full = np.zeros(n, np.int64)
    full[is_th] = (loops * _LOOP) + (hv << 12)
    lows = np.where(is_tl, val, 0)
    th, tl = last_index(is_th), last_index(is_tl)
    base = np.where(th >= 0, full[np.maximum(th, 0)], state.base)
    low = np.where(tl > th, lows[np.maximum(tl, 0)], np.where(th >= 0, 0, state.low))
    # A TIME_LOW below the previous one with no TIME_HIGH between them cannot happen in a camera's file
    # (time only grows, and a new high part comes with its TIME_HIGH); files written by expelliarmus (and
    # by talon.io before it encoded EVT3 itself) carry no TIME_HIGH steps and mean "4096 µs later" by it.
    tl_idx = np.flatnonzero(is_tl)
    prev_tl = np.concatenate([[-1], tl_idx[:-1]])
    same_seg = (prev_tl > th[tl_idx]) if tl_idx.size else np.zeros(0, bool)
    prev_val = np.where(prev_tl >= 0, val[np.maximum(prev_tl, 0)], -1)
    first_in_chunk_seg = ~same_seg & (th[tl_idx] < 0) if tl_idx.size else same_seg
    prev_val = np.where(first_in_chunk_seg, state.seg_low, prev_val)
    wrapped = ((same_seg | first_in_chunk_seg) & (prev_val >= 0) & (val[tl_idx] < prev_val)).astype(np.int64)
    count = np.zeros(n, np.int64)
    count[tl_idx] = wrapped
    c = np.cumsum(count)
    wraps = np.where(th >= 0, c - c[np.maximum(th, 0)], state.seg_wraps + c)
    t = base + low + (wraps << 12)
    is_y = typ == 0x0
    ys = last_index(is_y)
    y = np.where(ys >= 0, (val & 0x7FF)[np.maximum(ys, 0)], state.y)
    # vectors: base x from VECT_BASE_X, advanced by 12 / 8 by each VECT_12 / VECT_8
    is_vb = typ == 0x3
    inc = np.where(typ == 0x4, 12, np.where(typ == 0x5, 8, 0))
    cinc = np.cumsum(inc)
    before = cinc - inc
    vb = last_index(is_vb)
    vbi = np.maximum(vb, 0)
    vx = np.where(vb >= 0, (val & 0x7FF)[vbi] + before - before[vbi], state.vect_x + before)
    vp = np.where(vb >= 0, (val >> 11)[vbi], state.vect_p)
    parts = []
    one = np.flatnonzero(typ == 0x2)
    parts.append((one, np.zeros(one.size, np.int64), val[one] & 0x7FF, val[one] >> 11))
    for code, width in ((0x4, 12), (0x5, 8)):
        idx = np.flatnonzero(typ == code)
        bits = ((val[idx, None] >> np.arange(width)) & 1).astype(bool)
        r, b = np.nonzero(bits)
        parts.append((idx[r], b, vx[idx[r]] + b, vp[idx[r]]))
    at = np.concatenate([p[0] for p in parts])
    sub = np.concatenate([p[1] for p in parts])
    order = np.lexsort((sub, at))
    at = at[order]
    ev = np.empty(at.size, dtype=EVENT_DTYPE)
    ev["x"] = np.concatenate([p[2] for p in parts])[order]
    ev["p"] = np.concatenate([p[3] for p in parts])[order].astype(bool)
    ev["y"], ev["t"] = y[at], t[at]
    if n:
        if hv.size:
            state.high_raw, state.loops = int(hv[-1]), int(loops[-1])
        state.base, state.low, state.y = int(base[-1]), int(low[-1]), int(y[-1])
        state.seg_wraps = int(wraps[-1])
        state.seg_low = int(val[tl[-1]]) if tl[-1] > th[-1] else (-1 if th[-1] >= 0 else state.seg_low)
        if vb[-1] >= 0:
            state.vect_x, state.vect_p = int((val & 0x7FF)[vb[-1]] + cinc[-1] - before[vb[-1]]), int(val[vb[-1]] >> 11)
        else:
            state.vect_x += int(cinc[-1])
    return ev


def iter_decode(path: str, offset: int, words_per_chunk: int) -> Iterator[np.ndarray]:
    """The events of the EVT3 payload of `path` from byte `offset`, `words_per_chunk` words at a time."""
    return iter_words(path, offset, "<u2", words_per_chunk, decode, State())


def encode(ev: np.ndarray, what: str) -> np.ndarray:
    """The EVT3 words of sorted events `ev`: TIME_HIGH for every 4096 µs period holding an event (and
    across silences, see the module docstring), TIME_LOW and ADDR_Y where they change, ADDR_X per event."""
    n = len(ev)
    t = ev["t"].astype(np.int64)
    if n and np.any(np.diff(t) < 0):
        raise TalonError(f"{what}: timestamps are not sorted; EVT3 stores them in time order (sort with np.argsort(events['t'], kind='stable'))")
    if n and (ev["x"].max() > 0x7FF or ev["y"].max() > 0x7FF):
        raise TalonError(f"{what}: EVT3 holds x, y <= 2047; these events reach x={int(ev['x'].max())}, y={int(ev['y'].max())}; write HDF5 (format='hdf5')")
    period = t >> 12
    # TIME_HIGH words: every period with events, plus fillers every _FILL_STRIDE periods from 0 across gaps
    prev = np.concatenate([[0], period[:-1]])
    gaps = np.maximum(period - prev - 1, 0) // _FILL_STRIDE
    if int(gaps.sum()) > MAX_FILL_WORDS:
        raise TalonError(f"{what}: the events span {int(t.max()) if n else 0} µs with long silences; EVT3 would need {int(gaps.sum()):,} filler "
                         "TIME_HIGH words to keep the time exact: write HDF5 (format='hdf5'), or subtract the first timestamp first")
    new_high = np.concatenate([[True], period[1:] != period[:-1]]) if n else np.zeros(0, bool)
    low = t & 0xFFF
    new_low = new_high | np.concatenate([[True], low[1:] != low[:-1]]) if n else new_high
    yv = ev["y"].astype(np.int64)
    new_y = np.concatenate([[True], yv[1:] != yv[:-1]]) if n else new_high
    out: list[np.ndarray] = [np.array([0x8 << 12], np.int64)]  # TIME_HIGH 0: the decoder's loops start here
    chunks = []
    for i in np.flatnonzero(gaps):  # fillers are rare: a loop over the gaps only
        fill = np.arange(prev[i] + _FILL_STRIDE, period[i], _FILL_STRIDE)
        chunks.append((i, (0x8 << 12) | (fill & 0xFFF)))
    # per event up to four words: TIME_HIGH, TIME_LOW, ADDR_Y, ADDR_X
    words = np.stack([(0x8 << 12) | (period & 0xFFF), (0x6 << 12) | low, yv, (0x2 << 12) | (ev["p"].astype(np.int64) << 11) | ev["x"].astype(np.int64)], axis=1)
    keep = np.stack([new_high, new_low, new_y, np.ones(n, bool)], axis=1)
    start = 0
    for i, fill in chunks:
        out.append(words[start:i][keep[start:i]])
        out.append(fill)
        start = i
    out.append(words[start:][keep[start:]])
    return np.concatenate(out).astype("<u2")
