"""The .t1c file format: reading and writing Graphs as HDF5, compatible with the existing SDK.

Layout (a superset of the existing talon-ir 0.0.2 layout, which ignores datasets it does not know):

    /version                    UTF-8 string, FORMAT_VERSION
    /@talon_checksum            attribute: SHA-256 of what HDF5's checksums do not cover (see _digest)
    /graph/type                 "Graph"
    /graph/@talon_node_order    attribute: node names in insertion order
    /graph/@talon_dt            attribute: the timestep
    /graph/nodes/<name>/type    primitive type name; then one dataset per field (groups for dicts);
                                attributes talon_input_shapes / talon_output_shapes (see _encode_shapes)
    /graph/edges/src, dst       parallel UTF-8 string arrays, in edge order
    /graph/metadata/, allow_cycles, and the existing SDK's optional graph fields

TALON's additions are attributes (stored in the checksummed v2 object headers, ignored by the existing
SDK's reader) or fields it does not know, left out when at their defaults. 


Field encoding follows the existing SDK: ints int64 scalars, floats float64 scalars, bools HDF5 enums,
strings variable-length UTF-8, int tuples int64 arrays, dicts groups, None left out. Every non-empty
array carries a `talon_checksum` attribute (see _array_checksum; compressed arrays use HDF5's
Fletcher-32 filter instead), so corrupted array bytes fail to read; the remaining content (types,
names, scalars, strings, shapes, edges, metadata) is covered by the root `talon_checksum`. Writes go to a temporary file in the target folder, renamed into place on success.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from talon.errors import PrimitiveError, TalonError, TalonFormatError
from talon.ir.graph import Graph
from talon.ir.node import ARRAY, BOOL, DICT, FLOAT, INT, INTS, NUMBER, STR, Node, get_node_class, list_primitives, values_equal

FORMAT_VERSION = "0.1.0"
_READABLE = (0, 1)  # newest (major, minor) this reader understands

_STR = h5py.string_dtype("utf-8")
_KIND_ATTR = "talon_kind"  # marks lists, tuples and None inside metadata dicts
_SHAPE_FIELDS = ("talon_input_shapes", "talon_output_shapes")
_GRAPH_KNOWN = {"type", "nodes", "edges", "metadata", "allow_cycles"}
_GRAPH_EXTRAS = ("cyclic_config", "quantization_config", "partition_metadata", "target_hardware")
# Above this many bytes an uncompressed dataset cannot be genuine in a file of the given size.
_COMPRESSION_SLACK = 1100  # gzip's best case is ~1:1032


class TalonFormatWarning(UserWarning):
    """A file read correctly but held something TALON ignored (an unknown field, say)."""


class TalonFileNotFoundError(TalonFormatError, FileNotFoundError):
    """The .t1c path does not exist."""


# ----------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------


def write(path: str | os.PathLike, graph: Graph, *, compression: str | None = None, compression_level: int | None = None) -> None:
    """Write `graph` to `path` atomically.

    `compression` may be "gzip" or "lzf" (lossless); default none, which keeps the file within 1% +
    16 KiB of the raw array bytes. Shapes are inferred (when the graph allows) and stored per node.
    """
    if not isinstance(graph, Graph):
        raise TalonFormatError(f"write({str(path)!r}): expected a talon.ir.Graph, got {type(graph).__name__}")
    if compression not in (None, "gzip", "lzf"):
        raise TalonFormatError(f"write({str(path)!r}): compression must be None, 'gzip' or 'lzf', got {compression!r}")
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise TalonFormatError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist")
    _try_infer_shapes(graph)
    opts: dict[str, Any] = {"compression": compression, "compression_opts": compression_level if compression == "gzip" else None, "pending": []}
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with h5py.File(tmp, "w", libver=("v110", "latest")) as f:
            _write_str(f, "version", FORMAT_VERSION)
            _write_graph(f.create_group("graph"), graph, opts, where=str(path))
            f.attrs.create("talon_checksum", data=_digest(graph), dtype=_STR)
        with open(tmp, "r+b") as raw:
            for offset, arr in opts["pending"]:
                raw.seek(offset)
                raw.write(memoryview(arr).cast("B"))
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, TalonError) or not isinstance(exc, Exception):
            raise
        raise TalonFormatError(f"cannot write {str(path)!r}: {type(exc).__name__}: {exc}") from exc


def _try_infer_shapes(graph: Graph) -> None:
    try:
        graph.infer_shapes()
    except TalonError:
        pass  # storage of graphs that cannot (yet) be shaped is allowed; their shapes stay unknown


def _write_str(group: h5py.Group, name: str, value: str) -> None:
    group.create_dataset(name, data=value, dtype=_STR)


def _array_checksum(arr: np.ndarray) -> np.ndarray:
    """[word sum, word xor] of the array's little-endian bytes as uint64 words (tail zero-padded).

    Any change confined to one aligned 8-byte word changes the sum, so every single-byte error is
    caught; it runs at memory speed, which keeps reads within reach of numpy.load.
    """
    raw = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
    whole = raw.size // 8 * 8
    words = raw[:whole].view("<u8")
    total = int(words.sum(dtype=np.uint64)) if words.size else 0
    folded = int(np.bitwise_xor.reduce(words)) if words.size else 0
    if whole < raw.size:
        tail = int.from_bytes(raw[whole:].tobytes() + bytes(8 - (raw.size - whole)), "little")
        total, folded = (total + tail) % (1 << 64), folded ^ tail
    return np.array([total, folded], dtype=np.uint64)


def _write_array(group: h5py.Group, name: str, arr: np.ndarray, opts: dict) -> None:
    arr = np.ascontiguousarray(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    if arr.ndim == 0 or arr.size == 0:
        group.create_dataset(name, data=arr)  # covered by the content digest
        return
    if opts.get("compression"):
        kw = {k: v for k, v in opts.items() if k in ("compression", "compression_opts") and v is not None}
        group.create_dataset(name, data=arr, chunks=True, fletcher32=True, **kw)
        return
    # Contiguous layout, as the existing SDK writes. The space is allocated now and the bytes are copied
    # in after HDF5 closes the file (see write): HDF5's own write path is about twice as slow.
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    space = h5py.h5s.create_simple(arr.shape)
    dsid = h5py.h5d.create(group.id, name.encode("utf-8"), h5py.h5t.py_create(arr.dtype), space, dcpl=dcpl)
    ds = h5py.Dataset(dsid)
    ds.attrs["talon_checksum"] = _array_checksum(arr)
    opts["pending"].append((dsid.get_offset(), arr))


def _write_graph(g: h5py.Group, graph: Graph, opts: dict, where: str) -> None:
    _write_str(g, "type", "Graph")
    nodes = g.create_group("nodes")
    for name, node in graph.nodes.items():
        ng = nodes.create_group(name)
        if isinstance(node, Graph):
            _write_graph(ng, node, opts, where=f"{where}: node {name!r}")
        else:
            _write_str(ng, "type", node.type_name)
            _write_fields(ng, node, opts, where=f"{where}: node {name!r}")
        # Shapes are attributes: stored in the group's (checksummed) header, no dataset per node needed.
        for field, shapes in zip(_SHAPE_FIELDS, (node.input_shapes, node.output_shapes)):
            if shapes is not None:
                ng.attrs[field] = _encode_shapes(shapes)
    edges = g.create_group("edges")
    edges.create_dataset("src", data=[s for s, _ in graph.edges], dtype=_STR, shape=(len(graph.edges),))
    edges.create_dataset("dst", data=[d for _, d in graph.edges], dtype=_STR, shape=(len(graph.edges),))
    g.attrs.create("talon_node_order", data=list(graph.nodes), dtype=_STR, shape=(len(graph.nodes),))
    g.attrs["talon_dt"] = np.float64(graph.dt)
    _write_value(g, "metadata", graph.metadata, f"{where}: graph metadata", opts)
    if not graph.is_dag:
        g.create_dataset("allow_cycles", data=np.bool_(True))
    for key, value in graph.extras.items():
        _write_value(g, key, value, f"{where}: graph field {key!r}", opts)


def _encode_shapes(shapes: list[tuple[int, ...]]) -> np.ndarray:
    """[count, rank_0, dims_0..., rank_1, dims_1...] as one int64 vector (shapes may differ in rank)."""
    flat = [len(shapes)]
    for s in shapes:
        flat += [len(s), *s]
    return np.asarray(flat, dtype=np.int64)


def _write_fields(group: h5py.Group, node: Node, opts: dict, where: str) -> None:
    defaults = type(node).field_defaults()
    for name, spec in node.field_specs().items():
        value = getattr(node, name)
        if value is None or (spec.extension and name in defaults and values_equal(value, defaults[name])):
            continue
        kind = spec.kind
        if kind == ARRAY:
            _write_array(group, name, value, opts)
        elif kind == INT:
            group.create_dataset(name, data=np.int64(value))
        elif kind == FLOAT:
            group.create_dataset(name, data=np.float64(value))
        elif kind == NUMBER:
            group.create_dataset(name, data=np.int64(value) if isinstance(value, int) else np.float64(value))
        elif kind == BOOL:
            group.create_dataset(name, data=np.bool_(value))
        elif kind == STR:
            _write_str(group, name, value)
        elif kind == INTS:
            group.create_dataset(name, data=np.asarray(value, dtype=np.int64).reshape(len(value)))
        elif kind == DICT:
            _write_value(group, name, value, f"{where} field {name!r}", opts)


def _write_value(group: h5py.Group, key: str, value: Any, where: str, opts: dict) -> None:
    """Write a free-form metadata value (nested dicts, lists, strings, numbers, arrays, None)."""
    if not isinstance(key, str) or not key or "/" in key or key in (".", ".."):
        raise TalonFormatError(f"{where}: key {key!r} cannot be stored (keys must be non-empty strings without '/')")
    if isinstance(value, dict):
        sub = group.create_group(key, track_order=True)
        for k, v in value.items():
            _write_value(sub, k, v, f"{where}[{k!r}]", opts)
    elif value is None:
        group.create_dataset(key, data=h5py.Empty("i1")).attrs[_KIND_ATTR] = "none"
    elif isinstance(value, str):
        _write_str(group, key, value)
    elif isinstance(value, (bool, np.bool_)):
        group.create_dataset(key, data=np.bool_(value))
    elif isinstance(value, (int, np.integer)):
        if not -(2**63) <= int(value) < 2**63:
            raise TalonFormatError(f"{where}: integer {value} does not fit in 64 bits")
        group.create_dataset(key, data=np.int64(value))
    elif isinstance(value, (float, np.floating)):
        group.create_dataset(key, data=np.float64(value))
    elif isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TalonFormatError(f"{where}: arrays of dtype {value.dtype} cannot be stored (numeric only, no pickle)")
        _write_array(group, key, value, opts)
    elif isinstance(value, (list, tuple)):
        kind = type(value).__name__
        if value and all(isinstance(v, str) for v in value):
            ds = group.create_dataset(key, data=list(value), dtype=_STR)
        elif value and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in value):
            ds = group.create_dataset(key, data=np.asarray(value, dtype=np.int64))
        elif value and all(isinstance(v, (float, np.floating)) for v in value):
            ds = group.create_dataset(key, data=np.asarray(value, dtype=np.float64))
        else:
            ds = group.create_group(key, track_order=True)
            for i, v in enumerate(value):
                _write_value(ds, str(i), v, f"{where}[{i}]", opts)
        ds.attrs[_KIND_ATTR] = kind
    else:
        raise TalonFormatError(f"{where}: values of type {type(value).__name__} cannot be stored (use dicts, lists, strings, numbers, numpy arrays)")


# ----------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------


class _Reader:
    """Reads one file defensively; every failure becomes a TalonFormatError naming file, node, field."""

    def __init__(self, path: Path, file: h5py.File) -> None:
        self.path = path
        self.file = file
        self.size = max(path.stat().st_size, 1)
        self.context: list[str] = []

    def fail(self, message: str) -> TalonFormatError:
        where = " ".join(self.context)
        return TalonFormatError(f"{self.path.name}: {where + ': ' if where else ''}{message}")

    @contextmanager
    def at(self, label: str) -> Iterator[None]:
        self.context.append(label)
        try:
            yield
        finally:
            self.context.pop()

    # -- primitive dataset readers -----------------------------------------------------------------
    def dataset(self, group: h5py.Group, name: str) -> h5py.Dataset:
        obj = group.get(name)
        if obj is None:
            raise self.fail(f"missing {name!r}")
        if not isinstance(obj, h5py.Dataset):
            raise self.fail(f"{name!r} should be a dataset, found a group")
        return obj

    def load(self, ds: h5py.Dataset) -> Any:
        shape = ds.shape
        if shape is None:
            return None
        dtype = ds.dtype
        nbytes = float(np.prod(shape, dtype=np.float64)) * max(dtype.itemsize, 1)
        # Checked before reading so that a hostile header cannot make us allocate terabytes.
        if nbytes > self.size + 4096 and nbytes > (self.size * _COMPRESSION_SLACK if ds.compression else 0):
            raise self.fail(f"dataset {ds.name.rsplit('/', 1)[-1]!r} declares {int(nbytes):,} bytes, more than the file can hold ({self.size:,} bytes)")
        data = ds[()]
        if shape and nbytes:
            stored = ds.attrs.get("talon_checksum")
            if stored is not None:
                stored = np.asarray(stored)
                if stored.shape != (2,) or stored.dtype.kind not in "iu" or not np.array_equal(_array_checksum(data), stored.astype(np.uint64)):
                    raise self.fail(f"dataset {ds.name.rsplit('/', 1)[-1]!r} fails its checksum: the array data is corrupted")
        return data

    def string(self, group: h5py.Group, name: str) -> str:
        ds = self.dataset(group, name)
        if h5py.check_string_dtype(ds.dtype) is None or ds.shape != ():
            raise self.fail(f"{name!r} should be a UTF-8 string, found {ds.dtype} {ds.shape}")
        return self.decode(self.load(ds), name)

    def decode(self, raw: Any, name: str) -> str:
        if isinstance(raw, bytes):
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise self.fail(f"{name!r} is not valid UTF-8") from None
        if isinstance(raw, str):
            return raw
        raise self.fail(f"{name!r} should be a string, found {type(raw).__name__}")

    def strings(self, group: h5py.Group, name: str) -> list[str]:
        ds = self.dataset(group, name)
        if h5py.check_string_dtype(ds.dtype) is None or len(ds.shape or ()) != 1:
            raise self.fail(f"{name!r} should be a 1-D array of strings, found {ds.dtype} {ds.shape}")
        return [self.decode(v, name) for v in self.load(ds)]

    # -- fields -------------------------------------------------------------------------------------
    def field(self, group: h5py.Group, name: str, spec: Any) -> Any:
        if spec.kind == DICT:
            obj = group[name]
            if not isinstance(obj, h5py.Group):
                raise self.fail(f"field {name!r} should be a group (a dict)")
            return self.value(obj)
        ds = self.dataset(group, name)
        kind, dt = spec.kind, ds.dtype
        is_str = h5py.check_string_dtype(dt) is not None
        if kind == STR:
            return self.string(group, name)
        if is_str or dt.kind not in "biuf":
            raise self.fail(f"field {name!r} should be numeric ({kind}), found dtype {dt}")
        data = self.load(ds)
        if kind == ARRAY:
            if dt.kind == "b":
                raise self.fail(f"field {name!r} should be a numeric array, found booleans")
            return np.asarray(data)
        if kind == INTS:
            if dt.kind not in "iu" or len(ds.shape) > 1:
                raise self.fail(f"field {name!r} should be integers, found {dt} {ds.shape}")
            return tuple(int(v) for v in np.atleast_1d(data))
        if ds.shape not in ((), (1,)):
            raise self.fail(f"field {name!r} should be a single {kind}, found shape {ds.shape}")
        scalar = np.asarray(data).reshape(()).item()
        if kind == BOOL:
            if dt.kind != "b":
                raise self.fail(f"field {name!r} should be a bool, found {dt}")
            return bool(scalar)
        if dt.kind == "b":
            raise self.fail(f"field {name!r} should be a {kind}, found a bool")
        if kind == INT and dt.kind == "f":
            raise self.fail(f"field {name!r} should be an integer, found {dt}")
        return scalar

    def value(self, obj: h5py.Group | h5py.Dataset) -> Any:
        """Read a free-form metadata value written by _write_value (or by the existing SDK)."""
        kind = obj.attrs.get(_KIND_ATTR)
        if isinstance(kind, bytes):
            kind = kind.decode("utf-8", "replace")
        if isinstance(obj, h5py.Group):
            if kind in ("list", "tuple"):
                items = [self.value(obj[k]) for k in sorted(obj, key=lambda s: int(s) if s.isdigit() else -1)]
                return items if kind == "list" else tuple(items)
            return {k: self.value(obj[k]) for k in obj}
        if kind == "none":
            return None
        if h5py.check_string_dtype(obj.dtype) is not None:
            raw = self.load(obj)
            if obj.shape == ():
                return self.decode(raw, obj.name)
            out = [self.decode(v, obj.name) for v in np.asarray(raw).ravel()]
            return tuple(out) if kind == "tuple" else out
        if obj.dtype.kind not in "biuf":
            raise self.fail(f"{obj.name!r} has unsupported dtype {obj.dtype}")
        data = self.load(obj)
        if kind in ("list", "tuple"):
            items = np.asarray(data).tolist()
            return items if kind == "list" else tuple(items)
        if obj.shape == ():
            scalar = np.asarray(data).item()
            return scalar
        return np.asarray(data)

    # -- graph --------------------------------------------------------------------------------------
    def graph(self, g: h5py.Group) -> Graph:
        gtype = self.string(g, "type") if "type" in g else "Graph"
        if gtype != "Graph":
            raise self.fail(f"expected a graph, found type {gtype!r}")
        nodes_group = g.get("nodes")
        if not isinstance(nodes_group, h5py.Group):
            raise self.fail("missing 'nodes' group")
        edges_group = g.get("edges")
        if not isinstance(edges_group, h5py.Group):
            raise self.fail("missing 'edges' group")
        with self.at("edges"):
            src, dst = self.strings(edges_group, "src"), self.strings(edges_group, "dst")
            if len(src) != len(dst):
                raise self.fail(f"'src' has {len(src)} entries but 'dst' has {len(dst)}")
        names = list(nodes_group)
        nodes: dict[str, Node] = {}
        for name in names:
            with self.at(f"node {name!r}"):
                obj = nodes_group[name]
                if not isinstance(obj, h5py.Group):
                    raise self.fail("should be a group")
                nodes[name] = self.node(obj)
        for s, d in zip(src, dst):
            for end in (s, d):
                if end not in nodes:
                    raise self.fail(f"edge {s!r} -> {d!r} refers to unknown node {end!r}")
        order = self.node_order(g, names, list(zip(src, dst)), nodes)
        dt = 1.0
        if "talon_dt" in g.attrs:
            with self.at("attribute 'talon_dt'"):
                dt = self.attr_scalar(g, "talon_dt")
                if not (np.isfinite(dt) and dt > 0):
                    raise self.fail(f"dt must be a positive number, got {dt}")
        metadata = self.value(g["metadata"]) if isinstance(g.get("metadata"), h5py.Group) else {}
        extras = {k: self.value(g[k]) for k in g if k not in _GRAPH_KNOWN}
        try:
            graph = Graph({n: nodes[n] for n in order}, list(zip(src, dst)), dt=dt, metadata=metadata, extras=extras)
        except TalonError as exc:
            raise self.fail(str(exc)) from None
        return graph

    def node_order(self, g: h5py.Group, names: list[str], edges: list[tuple[str, str]], nodes: dict[str, Node]) -> list[str]:
        if "talon_node_order" in g.attrs:
            with self.at("attribute 'talon_node_order'"):
                raw = g.attrs["talon_node_order"]
                order = [self.decode(v, "talon_node_order") for v in np.atleast_1d(raw)]
                if sorted(order) != sorted(names):
                    raise self.fail("does not list exactly the nodes in the file")
                return order
        # Files of the existing SDK store no order: recover a topological one, ties by name, with any
        # cycle cut where a depth-first walk from the inputs closes it (its recurrent edge).
        names = sorted(names)
        adj: dict[str, list[str]] = {n: [] for n in names}
        for s, d in edges:
            adj[s].append(d)
        starts = [n for n in names if nodes[n].type_name == "Input"] + names
        state: dict[str, int] = {}
        back: set[tuple[str, str]] = set()
        for root in starts:
            if root in state:
                continue
            state[root] = 1
            stack = [(root, iter(sorted(adj[root])))]
            while stack:
                v, it = stack[-1]
                for w in it:
                    if state.get(w) == 1:
                        back.add((v, w))
                    elif w not in state:
                        state[w] = 1
                        stack.append((w, iter(sorted(adj[w]))))
                        break
                else:
                    state[v] = 2
                    stack.pop()
        forward = [(s, d) for s, d in edges if (s, d) not in back]
        try:
            return Graph([(n, nodes[n]) for n in names], forward).topological_order()
        except TalonError:
            return names

    def attr_scalar(self, obj: h5py.HLObject, name: str) -> float:
        raw = np.asarray(obj.attrs[name])
        if raw.shape != () or raw.dtype.kind not in "iuf":
            raise self.fail(f"should be a number, found {raw.dtype} {raw.shape}")
        return float(raw)

    def shapes(self, raw: Any) -> list[tuple[int, ...]]:
        flat = np.asarray(raw)
        if flat.ndim != 1 or flat.dtype.kind not in "iu" or flat.size < 1:
            raise self.fail(f"should be an integer vector, found {flat.dtype} {flat.shape}")
        values = [int(v) for v in flat]
        count, pos, out = values[0], 1, []
        for _ in range(max(count, 0)):
            if pos >= len(values) or values[pos] < 0 or pos + 1 + values[pos] > len(values):
                raise self.fail("is truncated or malformed")
            rank = values[pos]
            out.append(tuple(values[pos + 1 : pos + 1 + rank]))
            pos += 1 + rank
        if count < 0 or pos != len(values) or any(d < 0 for s in out for d in s):
            raise self.fail("is malformed")
        return out

    def node(self, ng: h5py.Group) -> Node:
        if "type" not in ng:
            raise self.fail("missing 'type'")
        type_name = self.string(ng, "type")
        if type_name == "Graph":
            node: Node = self.graph(ng)
        else:
            cls = get_node_class(type_name)
            if cls is None:
                raise self.fail(f"unknown node type {type_name!r}; known types: {', '.join(list_primitives())}. "
                                "A user-defined primitive must be registered with talon.ir.register_node before reading")
            specs = cls.field_specs()
            values: dict[str, Any] = {}
            for name in ng:
                if name == "type":
                    continue
                if name not in specs:
                    warnings.warn(f"{self.path.name}: {self.context[-1]} ({type_name}) has unknown field {name!r}, ignored", TalonFormatWarning, stacklevel=4)
                    continue
                with self.at(f"field {name!r}"):
                    values[name] = self.field(ng, name, specs[name])
            missing = [n for n in specs if n not in values and n not in cls.field_defaults()]
            if missing:
                raise self.fail(f"missing required field {missing[0]!r} of {type_name}")
            try:
                node = cls(**values)
            except PrimitiveError as exc:
                raise self.fail(str(exc)) from None
        for attr, field in zip(("input_shapes", "output_shapes"), _SHAPE_FIELDS):
            if field in ng.attrs:
                with self.at(f"attribute {field!r}"):
                    setattr(node, attr, self.shapes(ng.attrs[field]))
        return node


from talon.ir.node import FieldSpec as _FieldSpec  # noqa: E402

_FLOAT_SPEC = _FieldSpec(FLOAT)


def _parse_version(text: str) -> tuple[int, ...] | None:
    parts = text.strip().split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


@contextmanager
def _open(path: str | os.PathLike) -> Iterator[tuple[Path, h5py.File]]:
    p = Path(path)
    if not p.exists():
        raise TalonFileNotFoundError(f"{str(p)!r}: no such file")
    if p.is_dir():
        raise TalonFormatError(f"{str(p)!r} is a folder, not a .t1c file")
    try:
        f = h5py.File(p, "r")
    except Exception as exc:  # h5py raises OSError for most damage, others for some
        raise TalonFormatError(f"cannot read {p.name} as HDF5 (not a .t1c file, or truncated/corrupt): {exc}") from None
    try:
        yield p, f
    finally:
        try:
            f.close()
        except Exception:
            pass


def _version(reader: _Reader) -> str:
    if "version" not in reader.file:
        raise reader.fail("invalid TALON IR file: missing 'version'")
    text = reader.string(reader.file, "version")
    parsed = _parse_version(text)
    if parsed is None:
        raise reader.fail(f"invalid format version {text!r}")
    return text


def read_version(path: str | os.PathLike) -> str:
    """The format version string stored in a .t1c file."""
    with _open(path) as (p, f):
        reader = _Reader(p, f)
        try:
            return _version(reader)
        except TalonError:
            raise
        except Exception as exc:
            raise reader.fail(f"{type(exc).__name__}: {exc}") from None


def read(path: str | os.PathLike) -> Graph:
    """Read a Graph from a .t1c file (ours or the existing SDK's).

    Raises TalonFormatError, naming the file, node and field, for anything wrong with the file.
    """
    with _open(path) as (p, f):
        reader = _Reader(p, f)
        try:
            text = _version(reader)
            parsed = _parse_version(text)
            if parsed[:2] > _READABLE:
                raise reader.fail(
                    f"written by a newer format version {text} (this t1c-talon reads up to {_READABLE[0]}.{_READABLE[1]}.x); "
                    "upgrade t1c-talon to read it"
                )
            g = f.get("graph")
            if not isinstance(g, h5py.Group):
                raise reader.fail("missing 'graph' group")
            graph = reader.graph(g)
            if "talon_checksum" in f.attrs:
                stored = reader.decode(f.attrs["talon_checksum"], "talon_checksum")
                if stored != _digest(graph):
                    raise reader.fail("content checksum mismatch: the file was modified or corrupted after it was written")
            return graph
        except TalonError:
            raise
        except Exception as exc:  # any other failure inside h5py or numpy means a damaged file
            raise reader.fail(f"corrupt or unreadable content ({type(exc).__name__}: {exc})") from None


# ----------------------------------------------------------------------------------------------------
# Content digest: everything HDF5's Fletcher-32 filter does not already protect
# ----------------------------------------------------------------------------------------------------


def _digest(graph: Graph) -> str:
    h = hashlib.sha256()
    _digest_graph(h, graph)
    return h.hexdigest()


def _put(h: Any, tag: str, payload: bytes = b"") -> None:
    h.update(tag.encode() + struct.pack("<Q", len(payload)) + payload)


def _digest_graph(h: Any, graph: Graph) -> None:
    _put(h, "graph")
    _put(h, "dt", struct.pack("<d", graph.dt))
    for name, node in graph.nodes.items():
        _put(h, "node", name.encode())
        _put(h, "type", node.type_name.encode())
        if isinstance(node, Graph):
            _digest_graph(h, node)
        else:
            for field, value in node.field_values().items():
                _put(h, "field", field.encode())
                _digest_value(h, value)
        for shapes in (node.input_shapes, node.output_shapes):
            _put(h, "shapes", repr(shapes).encode())
    for s, d in graph.edges:
        _put(h, "edge", s.encode() + b"\x00" + d.encode())
    _put(h, "metadata")
    _digest_value(h, graph.metadata)
    _put(h, "extras")
    _digest_value(h, graph.extras)


def _digest_value(h: Any, value: Any) -> None:
    # Numbers are normalised so that numpy and Python scalars of equal value digest alike.
    if isinstance(value, (bool, np.bool_)):
        _put(h, "bool", b"1" if value else b"0")
    elif isinstance(value, (int, np.integer)):
        _put(h, "int", str(int(value)).encode())
    elif isinstance(value, str):
        _put(h, "str", value.encode("utf-8", "surrogatepass"))
    elif value is None:
        _put(h, "none")
    elif isinstance(value, np.ndarray):
        header = f"{value.dtype.newbyteorder('<').str}{value.shape}".encode()
        # Non-empty arrays are stored with Fletcher-32; hashing their bytes again would only slow reads.
        body = b"" if value.ndim and value.size else np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<")).tobytes()
        _put(h, "array", header + body)
    elif isinstance(value, dict):
        _put(h, "dict", str(len(value)).encode())
        for k, v in value.items():
            _put(h, "key", str(k).encode())
            _digest_value(h, v)
    elif isinstance(value, (list, tuple)):
        _put(h, type(value).__name__, str(len(value)).encode())
        for v in value:
            _digest_value(h, v)
    elif isinstance(value, (float, np.floating)):
        _put(h, "float", struct.pack("<d", float(value)))
    else:
        _put(h, type(value).__name__, repr(value).encode())
