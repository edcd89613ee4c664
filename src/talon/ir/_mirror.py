"""The content mirror of a .t1c file: the graph's non-array content as one sealed JSON attribute.

The HDF5 layout stays complete and canonical (it is what the existing SDK reads). Next to it, the
writer stores `/graph/@talon_mirror`: the same content in one JSON document, produced in the same pass
that writes the HDF5 objects, with each array replaced by a reference to its entry in the sealed index
(_integrity). A reader that finds the mirror in a sealed file builds the Graph from it and copies the
arrays by offset (overlapping the copies with their digests), then checks it against the HDF5 objects,
since anyone can recompute a seal; files without it (the existing SDK's, compressed ones, older TALON
ones) are read from the HDF5 objects.

The mirror encodes what the HDF5 reader would return, not what was given to the writer: a list of
numpy integers is written as an int64 dataset and reads back as Python ints, so its mirror holds ints.
Tests compare both readers on every generated graph.

Document (version 1):
    {"v": 1, "graph": G}
    G = {"nodes": [[name, type, F or G], ...], "edges": [[src, dst], ...], "dt": float,
         "shapes": {name: [input shapes, output shapes]}, "metadata": V, "extras": {key: V}}
    F = {field: value}; scalars as JSON scalars, int tuples as lists, arrays and dicts as V
    V = null | bool | int | float | str | {"d": {key: V}} | {"l": [V]} | {"t": [V]}
        | {"a": hdf5 path of an indexed array} | {"x": [dtype, shape, hex bytes]} | {"f": hex float64}
        | {"q": [V of integers k, f, float dtype]}: the floats k * 2**-f (an integer form, talon.ir._compact)
        | {"n": [dtype, shape, [numbers]]}: a small array, values as JSON numbers (finite floats only)
        | {"j": hdf5 path}: a graph metadata entry stored as one JSON document of V (talon.ir._metajson)
    A long numeric list is {"l" or "t": {"a": path}}: stored as an int64/float64 array, read as a list.
"""

from __future__ import annotations

import json
import math
import re
import struct
from typing import Any, Callable

import numpy as np

from talon.ir._compact import decode

VERSION = 1
ATTR = "talon_mirror"


def inline_array(arr: np.ndarray) -> dict:
    """An array stored without an index entry (0-d or empty): its bytes travel in the mirror."""
    return {"x": [arr.dtype.str, list(arr.shape), arr.tobytes().hex()]}


def number(value: float | np.floating) -> Any:
    """A float64 as JSON; NaNs as their bits, since JSON's NaN token drops sign and payload."""
    value = float(value)
    return {"f": struct.pack("<d", value).hex()} if math.isnan(value) else value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def may_hold_surrogates(text: str) -> bool:
    """Whether a mirror's JSON text has \\u escapes of surrogates (pairs for emoji, or lone ones, which
    no UTF-8 tool can write back): only then is the decoded document worth checking for lone ones."""
    return _SURROGATE_ESCAPE.search(text) is not None


def dumps(doc: dict) -> str:
    return json.dumps({"v": VERSION, "graph": doc}, separators=(",", ":"), allow_nan=True)


class Decoder:
    """Builds values back from a mirror document. `array(path)` returns an indexed array (checked)."""

    def __init__(self, array: Callable[[str], np.ndarray], fail: Callable[[str], Exception], max_depth: int = 100,
                 too_deep: Callable[[], Exception] | None = None, document: Callable[[str], Any] | None = None) -> None:
        self.array = array
        self.fail = fail
        self.document = document  # reads a metadata entry stored as a JSON document (_metajson)
        self.max_depth, self.depth = max_depth, 0
        self.too_deep = too_deep or (lambda: fail(f"mirror: values nested more than {max_depth} levels deep"))

    def value(self, v: Any) -> Any:
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if not (isinstance(v, dict) and ("d" in v or "l" in v or "t" in v)):
            return self._value(v)  # leaves (arrays, floats by their bits) are no level of nesting
        if self.depth >= self.max_depth:
            raise self.too_deep()
        self.depth += 1
        try:
            return self._value(v)
        finally:
            self.depth -= 1

    def _value(self, v: Any) -> Any:
        if not isinstance(v, dict) or len(v) != 1:
            raise self.fail(f"mirror: malformed value {str(v)[:60]!r}")
        (tag, body), = v.items()
        if tag == "d":
            if not isinstance(body, dict):
                raise self.fail("mirror: malformed dict")
            return {k: self.value(x) for k, x in body.items()}
        if tag in ("l", "t"):
            if isinstance(body, dict):  # a long numeric list, stored as a 1-D array
                arr = self.value(body)
                if not isinstance(arr, np.ndarray) or arr.ndim != 1 or arr.dtype.kind not in "if":
                    raise self.fail("mirror: a list stored as an array must be a 1-D numeric array")
                items = arr.tolist()
            elif isinstance(body, list):
                items = [self.value(x) for x in body]
            else:
                raise self.fail("mirror: malformed list")
            return items if tag == "l" else tuple(items)
        if tag == "a":
            if not isinstance(body, str):
                raise self.fail("mirror: malformed array reference")
            return self.array(body)
        if tag == "x":
            return self.inline(body)
        if tag == "f":
            return self.float_bits(body)
        if tag == "n":
            return self.numbers(body)
        if tag == "j":
            if not isinstance(body, str) or self.document is None:
                raise self.fail("mirror: malformed or unexpected reference to a JSON metadata entry")
            return self.document(body)
        if tag == "q":
            if not (isinstance(body, list) and len(body) == 3):
                raise self.fail("mirror: malformed integer form")
            ints = self.value(body[0])
            if not isinstance(ints, np.ndarray) or isinstance(body[1], bool) or not isinstance(body[1], int):
                raise self.fail("mirror: malformed integer form")
            try:
                return decode(ints, np.int64(body[1]), body[2])
            except (ValueError, TypeError, OverflowError) as exc:
                raise self.fail(f"mirror: malformed integer form ({exc})") from None
        raise self.fail(f"mirror: unknown value tag {tag!r}")

    def inline(self, body: Any) -> np.ndarray:
        try:
            dtype_str, shape, data = body
            dtype = np.dtype(str(dtype_str))
            if not isinstance(shape, list):
                raise TypeError("the shape should be a list")
            shape = tuple(int(d) for d in shape)
            raw = bytes.fromhex(data)
        except (TypeError, ValueError, OverflowError) as exc:
            raise self.fail(f"mirror: malformed inline array ({exc})") from None
        if dtype.kind not in "biuf" or any(d < 0 for d in shape) or len(raw) != math.prod(shape) * dtype.itemsize:
            raise self.fail("mirror: inline array does not match its dtype and shape")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()

    def numbers(self, body: Any) -> np.ndarray:
        """{"n": [dtype, shape, [values]]}: a small array with its values as JSON numbers (finite floats
        by their shortest round-trip form, which the cast back to the dtype makes exact)."""
        try:
            dtype_str, shape, values = body
            dtype = np.dtype(str(dtype_str))
            if not isinstance(shape, list) or not isinstance(values, list) or dtype.kind not in "biuf":
                raise TypeError("expected a numeric dtype, a shape list and a value list")
            shape = tuple(int(d) for d in shape)
            if any(d < 0 for d in shape) or len(values) != math.prod(shape):
                raise ValueError("the values do not fill the shape")
            if not all(isinstance(v, int) and not isinstance(v, bool) or (dtype.kind == "f" and isinstance(v, float) and math.isfinite(v)) for v in values):
                raise TypeError("the values should be integers (or finite numbers, for a float array)")
            info = np.iinfo(dtype) if dtype.kind in "iu" else None
            if info is not None and values and not (info.min <= min(values) and max(values) <= info.max):
                raise ValueError(f"values out of range for {dtype}")
            return np.array(values, dtype=dtype).reshape(shape)
        except (TypeError, ValueError, OverflowError) as exc:
            raise self.fail(f"mirror: malformed integer array ({exc})") from None

    def float_bits(self, body: Any) -> float:
        try:
            return struct.unpack("<d", bytes.fromhex(body))[0]
        except (TypeError, ValueError, struct.error) as exc:
            raise self.fail(f"mirror: malformed float ({exc})") from None
