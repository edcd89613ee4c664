"""Graph metadata entries stored as one JSON document each, instead of one HDF5 object per value.

A metadata entry such as the mapping the pipeline attaches (`talon_mapping`: some 80 values) costs
one HDF5 object per value in the tree layout (~300 bytes each with its link), several times the
values themselves. An entry of the graph's metadata that would take at least MIN_OBJECTS objects is
instead written as one UTF-8 string dataset, marked `talon_kind = "json"`, holding the entry in the
content mirror's value encoding (_mirror: dicts, lists, tuples, numbers with NaNs by their bits,
numpy arrays inline with dtype and shape), so it reads back exactly as the tree would. A document
of 512 bytes or more that zlib shrinks by a fifth is stored compressed instead, as a uint8 dataset
marked `talon_kind = "json+zlib"` (the pipeline's mapping: 3.4 KB of JSON in 1.3 KB). Entries the
encoding cannot hold (a large array, an unstorable key, an integer beyond 64 bits) keep the tree
layout, whose writer reports what is wrong. The existing SDK reads such an entry as a string.
"""

from __future__ import annotations

import json
import zlib
from typing import Any, Callable

import numpy as np

from talon.ir import _mirror

KIND = "json"
ZKIND = "json+zlib"  # the same document, zlib-compressed, as a uint8 dataset (when that saves a fifth or more)
_ZLIB_FROM = 512  # documents shorter than this are not worth compressing
MIN_OBJECTS = 4
_MAX_ARRAY_BYTES = 4096  # larger arrays keep their own (indexed) dataset


class _Unencodable(Exception):
    pass


def _key_ok(key: Any) -> bool:
    return isinstance(key, str) and bool(key) and "/" not in key and "\x00" not in key and key not in (".", "..")


def _numeric_kind(value: list | tuple) -> str | None:
    if value and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in value):
        return "i"
    if value and all(isinstance(v, (float, np.floating)) for v in value):
        return "f"
    return None


def _int(v: Any) -> int:
    if not -(2**63) <= int(v) < 2**63:
        raise _Unencodable
    return int(v)


def _encode(value: Any, count: list[int]) -> Any:
    """The mirror encoding of what the tree layout would read back; counts the HDF5 objects it replaces."""
    count[0] += 1
    if isinstance(value, dict):
        if not all(_key_ok(k) for k in value):
            raise _Unencodable
        return {"d": {k: _encode(v, count) for k, v in value.items()}}
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return _int(value)
    if isinstance(value, (float, np.floating)):
        return _mirror.number(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf" or value.nbytes > _MAX_ARRAY_BYTES:
            raise _Unencodable
        arr = np.require(value, requirements="C")
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        if arr.dtype.kind in "biu":  # decimal numbers: shorter than the bytes in hex
            return {"n": [arr.dtype.str, list(arr.shape), [int(v) for v in arr.ravel()]]}
        flat = arr.ravel().astype(np.float64)
        if arr.dtype.itemsize <= 8 and np.all(np.isfinite(flat)):  # shortest round-trip reprs, exact on the cast back
            return {"n": [arr.dtype.str, list(arr.shape), [float(v) for v in flat]]}
        return _mirror.inline_array(arr)
    if isinstance(value, (list, tuple)):
        tag = "t" if isinstance(value, tuple) else "l"
        numeric = _numeric_kind(value)
        if value and all(isinstance(v, str) for v in value):
            items: list = list(value)
        elif numeric == "i":
            items = [_int(v) for v in value]
        elif numeric == "f":
            items = [_mirror.number(v) for v in value]
        else:
            items = [_encode(v, count) for v in value]
        return {tag: items}
    raise _Unencodable


def encode(value: Any) -> Any | None:
    """The entry's mirror encoding when it is worth one JSON document (a dict or list that the tree
    layout would spread over MIN_OBJECTS objects or more) and the encoding holds it; else None."""
    if not isinstance(value, (dict, list, tuple)):
        return None
    count = [0]
    try:
        enc = _encode(value, count)
    except (_Unencodable, RecursionError, OverflowError, ValueError, TypeError):
        return None
    return enc if count[0] >= MIN_OBJECTS else None


def dumps(enc: Any) -> str:
    return json.dumps(enc, separators=(",", ":"), allow_nan=True)


def stored_form(enc: Any) -> tuple[str, np.ndarray]:
    """(kind, data) to write: the UTF-8 JSON as a fixed-length string, or zlib-compressed as uint8."""
    text = dumps(enc).encode("utf-8")
    if len(text) >= _ZLIB_FROM:
        packed = zlib.compress(text, 9)
        if len(packed) <= 0.8 * len(text):
            return ZKIND, np.frombuffer(packed, dtype=np.uint8)
    return KIND, np.array(text, dtype=f"S{len(text)}")


def inflate(data: np.ndarray, limit: int, fail: Callable[[str], Exception]) -> str:
    """The JSON text of a ZKIND dataset, refusing more than `limit` bytes (a zlib bomb) or damage."""
    if data.dtype != np.uint8 or data.ndim != 1:
        raise fail(f"compressed JSON metadata should be a 1-D uint8 array, found {data.dtype} {data.shape}")
    d = zlib.decompressobj()
    try:
        text = d.decompress(data.tobytes(), limit)
    except zlib.error as exc:
        raise fail(f"compressed JSON metadata is damaged ({exc})") from None
    if d.unconsumed_tail or not d.eof:
        raise fail(f"compressed JSON metadata is damaged or expands beyond {limit:,} bytes")
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        raise fail("JSON metadata is not valid UTF-8") from None


def loads(text: str, fail: Callable[[str], Exception]) -> Any:
    """The value a JSON entry holds (arrays inline only: it refers to no other object)."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise fail(f"malformed JSON metadata ({exc})") from None

    def no_array(path: str) -> np.ndarray:
        raise fail("JSON metadata may not refer to an indexed array")

    try:
        return _mirror.Decoder(no_array, fail).value(doc)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as exc:
        raise fail(f"malformed JSON metadata ({type(exc).__name__}: {exc})") from None
