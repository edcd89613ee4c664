"""HardwareDescriptor: what `compile` produces, the configuration a chip or FPGA loads.

It holds, in layer (topological) order, every node's type, shapes, scalar parameters (stride,
padding, reset mode, ...), fixed-point formats and integer tensors (weights, biases, thresholds, leak
and gain factors), the edges, the fixed-point configuration, and - once mapping exists - the core
assignment and routes (None until then). docs/backend.md lists every field.

Two encodings, both exact round trips (`HardwareDescriptor.load(x.save(p)) == x`):

- JSON (`.json`): human-readable; each array is {"dtype", "shape", "data": base64 of its little-endian
  bytes}.
- binary (`.thd`): b"TALONHWD" | u16 descriptor version | u16 flags (0) | u32 header length | header
  (the same JSON with each array replaced by {"dtype", "shape", "offset", "nbytes"}) | zero padding to
  a multiple of 8 | the raw little-endian arrays, each starting at an 8-byte-aligned offset from the
  start of the data block | u32 CRC-32 of everything before it.

No pickle, no code: reading validates the magic, version, CRC, dtypes and sizes and raises
BackendError naming what is wrong.

Numbers in `meta`: a descriptor is configuration that hardware loads, where NaN or an infinity has no
meaning, and JSON has no such numbers either. So `descriptor_value` refuses a non-finite node field
with BackendError naming the node and the field (compile calls it on every scalar field), every other
value is converted by the project's one JSON policy (talon._json.jsonable), and encoding a `meta` that
still holds a non-finite number or a non-JSON value (one edited by hand) raises BackendError naming
its key, rather than writing JSON that strict readers reject.
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from talon._json import jsonable
from talon.errors import BackendError

DESCRIPTOR_VERSION = 1
#: Version of the fixed-point numerics (docs/fixed_point.md: talon.sdk.fixed_point's quantisation rule
#: and talon.backend.cpu.fixed's plan and rounding), recorded in every descriptor whatever backend
#: writes it; it lives here, with the descriptor format's own version, for that reason. Bump it on any
#: change of those rules.
FIXED_POINT_VERSION = 3  # 2: offline constants saturate symmetrically (talon.sdk.fixed_point); 3: a bias wider than
# bias_bits at the accumulator fraction keeps bias_bits significant bits on a coarser grid instead of saturating;
# constants no format holds raise BackendError
MAGIC = b"TALONHWD"
_ALLOWED_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "float32", "float64")
_MAX_HEADER = 256 * 1024 * 1024


def smallest_int_dtype(a: np.ndarray) -> np.dtype:
    """The narrowest of int8/16/32/64 that holds every value of integer array `a`."""
    a = np.asarray(a)
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    for dt in (np.int8, np.int16, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    return np.dtype(np.int64)


@dataclass
class HardwareDescriptor:
    """Versioned hardware configuration. `meta` is JSON-compatible; `arrays` maps "node/field" to numpy
    integer (or float, for documented float fields) arrays."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    # -- convenience views -------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return int(self.meta["descriptor_version"])

    @property
    def layer_order(self) -> list[str]:
        return [n["name"] for n in self.meta["nodes"]]

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        return {n["name"]: n for n in self.meta["nodes"]}

    def array(self, node: str, name: str) -> np.ndarray:
        try:
            return self.arrays[f"{node}/{name}"]
        except KeyError:
            raise BackendError(f"descriptor has no array {name!r} for node {node!r}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HardwareDescriptor):
            return NotImplemented
        if _canonical(self.meta) != _canonical(other.meta) or self.arrays.keys() != other.arrays.keys():
            return False
        return all(
            a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
            for a, b in ((self.arrays[k], other.arrays[k]) for k in self.arrays)
        )

    __hash__ = None  # type: ignore[assignment]

    def summary(self) -> str:
        lines = [f"TALON hardware descriptor v{self.version} ({len(self.meta['nodes'])} layers, {sum(a.nbytes for a in self.arrays.values()):,} bytes of arrays)"]
        for n in self.meta["nodes"]:
            lines.append(f"  {n['name']:<16} {n['type']:<12} {n['kind']:<9} out Q{n['out_format'][0]}.{n['out_format'][1]} {tuple(n['output_shape'] or ())}")
        return "\n".join(lines)

    __str__ = summary

    # -- JSON --------------------------------------------------------------------------------------
    def to_json(self, *, indent: int | None = 1) -> str:
        doc = dict(self.meta)
        doc["arrays"] = {
            k: {"dtype": a.dtype.name, "shape": list(a.shape), "data": base64.b64encode(_le(a).tobytes()).decode("ascii")}
            for k, a in self.arrays.items()
        }
        return _encode_meta(doc, indent=indent, sort_keys=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> "HardwareDescriptor":
        try:
            doc = json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BackendError(f"hardware descriptor JSON is malformed: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("arrays"), dict):
            raise BackendError("hardware descriptor JSON must be an object with an 'arrays' object")
        table = doc.pop("arrays")
        _check_meta(doc)
        arrays = {}
        for k, spec in table.items():
            dtype, shape = _check_spec(k, spec)
            try:
                raw = base64.b64decode(spec["data"], validate=True)
            except (KeyError, ValueError, TypeError) as exc:
                raise BackendError(f"descriptor array {k!r}: bad base64 data ({exc})") from None
            arrays[k] = _from_bytes(k, raw, dtype, shape)
        return cls(doc, arrays)

    # -- binary ------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        table, blobs, offset = {}, [], 0
        for k, a in self.arrays.items():
            raw = _le(a).tobytes()
            table[k] = {"dtype": a.dtype.name, "shape": list(a.shape), "offset": offset, "nbytes": len(raw)}
            pad = (-len(raw)) % 8
            blobs.append(raw + b"\x00" * pad)
            offset += len(raw) + pad
        header = _encode_meta({**self.meta, "arrays": table}, separators=(",", ":")).encode("utf-8")
        header += b" " * ((-(len(MAGIC) + 8 + len(header))) % 8)
        body = MAGIC + struct.pack("<HHI", DESCRIPTOR_VERSION, 0, len(header)) + header + b"".join(blobs)
        return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)

    @classmethod
    def from_bytes(cls, data: bytes) -> "HardwareDescriptor":
        data = bytes(data)
        if len(data) < len(MAGIC) + 12 or data[: len(MAGIC)] != MAGIC:
            raise BackendError("not a TALON hardware descriptor (bad magic)")
        body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
        if zlib.crc32(body) & 0xFFFFFFFF != crc:
            raise BackendError("hardware descriptor is corrupt (CRC-32 mismatch)")
        version, flags, hlen = struct.unpack("<HHI", body[len(MAGIC) : len(MAGIC) + 8])
        if version > DESCRIPTOR_VERSION:
            raise BackendError(f"hardware descriptor version {version} is newer than this TALON understands ({DESCRIPTOR_VERSION})")
        start = len(MAGIC) + 8
        if hlen > _MAX_HEADER or start + hlen > len(body):
            raise BackendError(f"hardware descriptor header length {hlen} is inconsistent with the file size {len(data)}")
        try:
            doc = json.loads(body[start : start + hlen].decode("utf-8"), parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BackendError(f"hardware descriptor header is malformed: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("arrays"), dict):
            raise BackendError("hardware descriptor header must hold an 'arrays' table")
        table = doc.pop("arrays")
        _check_meta(doc)
        blob = memoryview(body)[start + hlen :]
        arrays = {}
        for k, spec in table.items():
            dtype, shape = _check_spec(k, spec)
            off, nbytes = spec.get("offset"), spec.get("nbytes")
            if not (isinstance(off, int) and isinstance(nbytes, int) and 0 <= off and 0 <= nbytes and off + nbytes <= len(blob)):
                raise BackendError(f"descriptor array {k!r}: offset/size outside the data block")
            arrays[k] = _from_bytes(k, bytes(blob[off : off + nbytes]), dtype, shape)
        return cls(doc, arrays)

    # -- files -------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, format: str | None = None) -> str:
        """Write to `path` atomically; format "json" or "binary" (default: by suffix, .json is JSON)."""
        path = os.fspath(path)
        fmt = format or ("json" if path.endswith(".json") else "binary")
        if fmt not in ("json", "binary"):
            raise BackendError(f"descriptor format must be 'json' or 'binary', got {fmt!r}")
        payload = self.to_json().encode("utf-8") if fmt == "json" else self.to_bytes()
        from talon.ir._atomic import atomic_write_bytes

        return atomic_write_bytes(path, payload)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "HardwareDescriptor":
        """Read a descriptor written by `save` (JSON or binary, recognised by content)."""
        path = os.fspath(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise BackendError(f"cannot read hardware descriptor {path!r}: {exc}") from None
        try:
            if data.startswith(MAGIC):
                return cls.from_bytes(data)
            return cls.from_json(data)
        except BackendError as exc:
            raise BackendError(f"{path}: {exc}") from None


def _le(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))


def _check_spec(key: str, spec: Any) -> tuple[np.dtype, tuple[int, ...]]:
    if not isinstance(spec, dict):
        raise BackendError(f"descriptor array {key!r}: spec must be an object")
    dtype, shape = spec.get("dtype"), spec.get("shape")
    if dtype not in _ALLOWED_DTYPES:
        raise BackendError(f"descriptor array {key!r}: dtype {dtype!r} is not one of {_ALLOWED_DTYPES}")
    if not (isinstance(shape, list) and all(isinstance(d, int) and 0 <= d < 2**40 for d in shape)):
        raise BackendError(f"descriptor array {key!r}: bad shape {shape!r}")
    return np.dtype(dtype).newbyteorder("<"), tuple(shape)


def _from_bytes(key: str, raw: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if len(raw) != n * dtype.itemsize:
        raise BackendError(f"descriptor array {key!r}: {len(raw)} bytes for shape {shape} of {dtype.name}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def _check_meta(doc: dict) -> None:
    if doc.get("format") != "talon-hardware-descriptor":
        raise BackendError("not a TALON hardware descriptor (missing format tag)")
    v = doc.get("descriptor_version")
    if not isinstance(v, int) or v < 1:
        raise BackendError(f"hardware descriptor has no valid descriptor_version ({v!r})")
    if v > DESCRIPTOR_VERSION:
        raise BackendError(f"hardware descriptor version {v} is newer than this TALON understands ({DESCRIPTOR_VERSION})")
    if not isinstance(doc.get("nodes"), list):
        raise BackendError("hardware descriptor has no 'nodes' list")


def _canonical(meta: Any) -> str:
    return _encode_meta(meta, sort_keys=True, separators=(",", ":"))


def _refuse_constant(token: str) -> Any:
    """json.loads hook for the non-standard NaN/Infinity/-Infinity tokens: a descriptor never holds them."""
    raise BackendError(f"hardware descriptor holds the non-finite number {token}: descriptors hold only finite numbers")


def _encode_meta(meta: Any, **kwargs: Any) -> str:
    """json.dumps of `meta` after checking it holds only finite numbers and plain JSON values."""
    _check_json(meta, "meta")
    return json.dumps(meta, allow_nan=False, **kwargs)


def _check_json(value: Any, where: str) -> None:
    """Raise BackendError naming `where` (a key path) if `value` holds a non-finite number or anything
    but dict (string keys), list, str, int, float, bool and None."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BackendError(f"hardware descriptor {where} is {value!r}: a descriptor holds only finite numbers")
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            # name node records by their node name rather than their position
            key = f"[{v['name']!r}]" if where.endswith(".nodes") and isinstance(v, dict) and "name" in v else f"[{i}]"
            _check_json(v, where + key)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise BackendError(f"hardware descriptor {where} has the non-string key {k!r}: JSON keys are strings")
            _check_json(v, f"{where}.{k}")
        return
    raise BackendError(
        f"hardware descriptor {where} holds a {type(value).__name__} ({value!r}), which is not a JSON value: "
        f"build meta from descriptor_value(...) or plain dicts, lists, strings, numbers, bools and None"
    )


def descriptor_value(node: str, field: str, value: Any) -> Any:
    """A primitive's scalar field `value` as it is stored in a descriptor (talon._json's encoding:
    tuples become lists, numpy scalars Python numbers). A non-finite number anywhere in it raises
    BackendError naming `node` and `field`: hardware cannot load NaN or an infinity, and the JSON
    policy's null would silently stand for a value the node does not have."""
    bad = _non_finite(value)
    if bad is not None:
        raise BackendError(
            f"node {node!r} field {field!r} is {bad!r}: a hardware descriptor holds only finite numbers; "
            f"give {field!r} a finite value before compiling"
        )
    return jsonable(value)


def _non_finite(value: Any) -> float | None:
    """The first NaN or infinity in `value` (numbers, numpy scalars/arrays, nested lists/tuples/dicts)."""
    if isinstance(value, (bool, np.bool_, int, np.integer, str)) or value is None:
        return None
    if isinstance(value, (float, np.floating)):
        return None if math.isfinite(value) else float(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            return float(value[~np.isfinite(value)].flat[0])
        return None
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            bad = _non_finite(v)
            if bad is not None:
                return bad
    return None
