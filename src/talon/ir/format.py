"""The .t1c file format: reading and writing Graphs as HDF5, compatible with the existing SDK.

Layout (a superset of the existing talon-ir 0.0.2 layout, which ignores what it does not know):

    user block                  TALON's sealed index and checksums (see _integrity)
    /version                    UTF-8 string, FORMAT_VERSION
    /graph/type                 "Graph"
    /graph/@talon_node_order    attribute: node names in insertion order
    /graph/@talon_dt            attribute: the timestep
    /graph/@talon_shapes        attribute: JSON {node: [input shapes, output shapes]}
    /graph/nodes/<name>/type    primitive type name; then one dataset per field (groups for dicts)
    /graph/edges/src, dst       parallel UTF-8 string arrays, in edge order
    /graph/metadata/, allow_cycles, and the existing SDK's optional graph fields

Field encoding follows the existing SDK: ints int64 scalars, floats float64 scalars, bools HDF5 enums,
strings variable-length UTF-8, int tuples int64 arrays, dicts groups, None left out; TALON's own
additions to primitives that SDK knows are left out when at their defaults. Arrays are contiguous
(compressed arrays chunked, with HDF5's Fletcher-32 filter). Every byte is covered by a checksum that
is verified before or while it is read (_integrity). Writes go to a temporary file in the target folder,
renamed into place on success.
"""

from __future__ import annotations

import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from talon.errors import PrimitiveError, TalonError, TalonFormatError
from talon.ir import _compact, _h5space, _hdf5_safety, _integrity, _metajson, _mirror
from talon.ir._atomic import atomic_path
from talon.ir.graph import Graph, back_edges
from talon.ir.node import ANY_FLOAT, ARRAY, BOOL, DICT, FLOAT, INT, INTS, NUMBER, STR, Node, get_node_class, list_primitives, values_equal

FORMAT_VERSION = "0.1.0"
#: written instead of FORMAT_VERSION by files holding integer-form arrays (_compact) or JSON metadata
#: entries (_metajson), which 0.1 readers would take for integers and strings: they refuse the newer
#: version instead. Files without either keep 0.1.0 (readable by TALON 0.1).
COMPACT_VERSION = "0.2.0"
_READABLE = (0, 2)  # newest (major, minor) this reader understands
_INLINE_BYTES = 256  # metadata arrays up to this size live in their object header and the mirror, not the index

_STR = h5py.string_dtype("utf-8")
_CHUNK_BYTES = 1 << 30
_KIND_ATTR = "talon_kind"  # marks lists, tuples and None inside metadata dicts
_LIST_AS_ARRAY = 64  # numeric lists at least this long are indexed like arrays
_GRAPH_KNOWN = {"type", "nodes", "edges", "metadata", "allow_cycles"}
_GRAPH_EXTRAS = ("cyclic_config", "quantization_config", "partition_metadata", "target_hardware")
MAX_GRAPH_DEPTH = _hdf5_safety.MAX_GRAPH_DEPTH
MAX_VALUE_DEPTH = _hdf5_safety.MAX_VALUE_DEPTH
# Above this many bytes an uncompressed dataset cannot be genuine in a file of the given size.
_COMPRESSION_SLACK = _hdf5_safety.COMPRESSION_SLACK


class TalonFormatWarning(UserWarning):
    """A file read correctly but held something TALON ignored (an unknown field, say)."""


TalonFileNotFoundError = _hdf5_safety.TalonFileNotFoundError


class _ArrayReadError(Exception):
    """An indexed array could not be read (on the reader's worker thread, which knows no node)."""


def _read_unchecked(raw: Any, entry: list) -> np.ndarray:
    return _integrity.read_array(raw, entry, _ArrayReadError, check=False)


# ----------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------


def write(path: str | os.PathLike, graph: Graph, *, compression: str | None = None, compression_level: int | None = None,
          durable: bool = False, integer_arrays: bool = True) -> None:
    """Write `graph` to `path` atomically: readers see the old file or the whole new one, never a mix.

    `compression` may be "gzip" or "lzf" (lossless); default none, which keeps the file within 1% +
    16 KiB of the raw array bytes. Shapes are inferred (when the graph allows) and stored per node.
    `durable=True` also flushes the file and the rename to disk before returning (fsync), so the new
    file survives a power cut; without it, as with `numpy.save` or `torch.save`, the kernel writes the
    data back in its own time. `integer_arrays=False` keeps quantized arrays as floats (their integer
    form, the default, is smaller and exact, but the existing SDK would read the integers: docs/format.md).
    """
    if not isinstance(graph, Graph):
        raise TalonFormatError(f"write({str(path)!r}): expected a talon.ir.Graph, got {type(graph).__name__}")
    if Path(path).suffix.lower() == ".nir":  # NIR interop (optional `nir` package), see talon.ir.nir
        if compression_level is not None:
            raise TalonFormatError(f"write({str(path)!r}): compression_level is not supported for .nir files (NIR's writer "
                                   "uses its own level); leave it out")
        from talon.ir.nir import write_nir

        return write_nir(path, graph, compression=compression, durable=durable)
    if compression not in (None, "gzip", "lzf"):
        raise TalonFormatError(f"write({str(path)!r}): compression must be None, 'gzip' or 'lzf', got {compression!r}")
    if compression_level is not None and (compression != "gzip" or isinstance(compression_level, bool)
                                          or not isinstance(compression_level, (int, np.integer)) or not 0 <= compression_level <= 9):
        raise TalonFormatError(f"write({str(path)!r}): compression_level is an integer 0-9, for compression='gzip' only "
                               f"(got {compression_level!r} with compression={compression!r})")
    _check_extras(graph, str(path))
    _check_depth(graph, str(path))
    _try_infer_shapes(graph)
    opts: dict[str, Any] = {"compression": compression, "compression_opts": compression_level if compression == "gzip" else None, "sink": None, "chunked": [],
                            "integers": integer_arrays, "version": FORMAT_VERSION}
    try:
        block = _integrity.user_block_size(_index_bytes(graph))
    except RecursionError:
        raise TalonFormatError(f"write({str(path)!r}): metadata nested too deeply, or containing itself") from None
    with atomic_path(path, durable=durable) as tmp:
        with _h5space.create_file(tmp, block, [b"graph", b"version"]) as f, _integrity.ArraySink(tmp) as sink:
            opts["sink"] = sink  # copies the arrays in while the objects are built
            root = _group(f, "graph", _graph_links(graph))
            mirror = _write_graph(root, graph, opts, where=str(path))
            _write_str(f, "version", opts["version"])  # known once the arrays are written
            if not compression:  # compressed arrays have no index entry to refer to: no mirror
                _attr(root.id, _mirror.ATTR, np.asarray(_mirror.dumps(mirror), dtype=_STR))
            entries = sink.finish()  # before HDF5 writes its metadata: the kernel serialises writes to one file
        _integrity.seal(tmp, block, entries, opts["chunked"])


def _check_extras(graph: Graph, where: str) -> None:
    for g in [graph] + [n for n in graph.nodes.values() if isinstance(n, Graph)]:
        clash = sorted(set(g.extras) & _GRAPH_KNOWN)
        if clash:
            raise TalonFormatError(f"{where}: graph extras may not be named {clash} (the file's own graph objects)")


def graph_depth(graph: Graph, limit: int = MAX_GRAPH_DEPTH + 1) -> int:
    """How many graphs are nested inside one another below `graph` (0: no nested graph), counted up
    to `limit` (a graph that contains itself would otherwise never end)."""
    inner = [n for n in graph.nodes.values() if isinstance(n, Graph)]
    if not inner or limit <= 0:
        return 0
    return 1 + max(graph_depth(n, limit - 1) for n in inner)


def depth_error(where: str) -> TalonFormatError:
    return TalonFormatError(f"{where}: graphs nested more than {MAX_GRAPH_DEPTH} levels deep (the .t1c limit, see docs/format.md); "
                            "flatten some composite blocks")


def value_depth_error(where: str) -> TalonFormatError:
    return TalonFormatError(f"{where}: metadata nested more than {MAX_VALUE_DEPTH} levels deep (the .t1c limit, see docs/format.md)")


def _value_depth(value: Any, limit: int = MAX_VALUE_DEPTH + 1) -> int:
    """Levels of dicts, lists and tuples in `value`, counted up to `limit`."""
    if not isinstance(value, (dict, list, tuple)) or limit <= 0:
        return 0
    items = value.values() if isinstance(value, dict) else value
    return 1 + max((_value_depth(v, limit - 1) for v in items), default=0)


def _check_depth(graph: Graph, where: str) -> None:
    if graph_depth(graph) > MAX_GRAPH_DEPTH:
        raise depth_error(f"write({where!r})")

    def values(g: Graph) -> Iterator[Any]:
        yield g.metadata
        yield g.extras
        for node in g.nodes.values():
            if isinstance(node, Graph):
                yield from values(node)
            else:
                yield from (v for v in node.field_values().values() if isinstance(v, dict))

    if any(_value_depth(v) > MAX_VALUE_DEPTH + (1 if v is graph.extras else 0) for v in values(graph)):
        raise value_depth_error(f"write({where!r})")


# The longest index entry values (_integrity.seal): a 20-digit offset, 16 hex digits of digest; a chunk's
# entry has a size where an array has its dtype and shape.
_MAX_OFFSET = 2**64 - 1
_CHUNK_ENTRY = len(json.dumps([_MAX_OFFSET, _MAX_OFFSET, None, None, None], separators=(",", ":")))


def _index_bytes(graph: Graph) -> int:
    """An upper bound on the bytes of the sealed index of `graph`'s arrays (_integrity.seal's JSON), from
    the HDF5 path, size, dtype and shape of every array the writer may index: the user block is sized to it."""
    total = 0

    def entry(path: str, shape: tuple, dtype: np.dtype, nbytes: int) -> None:
        nonlocal total
        pieces = 1 + nbytes // _CHUNK_BYTES  # compressed arrays may be split into chunks
        array = len(json.dumps([_MAX_OFFSET, nbytes, dtype.str, list(shape), "0" * 16], separators=(",", ":")))
        # (path as JSON) ":" entry ","; a compressed array's chunks are named path#i
        total += pieces * (len(json.dumps(f"{path}#{pieces}")) + max(array, _CHUNK_ENTRY) + 2)

    def visit(value: Any, path: str, metadata: bool = False) -> None:
        if isinstance(value, np.ndarray):
            if value.ndim == 0 or value.size == 0 or (metadata and value.nbytes <= _INLINE_BYTES):
                return  # inline in the mirror (or a JSON entry), never indexed
            entry(path, value.shape, value.dtype, value.nbytes)
        elif isinstance(value, dict):
            for k, v in value.items():
                visit(v, f"{path}/{k}", metadata)
        elif isinstance(value, (list, tuple)):
            if len(value) >= _LIST_AS_ARRAY and _numeric_list_kind(value):
                entry(path, (len(value),), np.dtype(np.float64), 8 * len(value))
                return
            for i, v in enumerate(value):
                visit(v, f"{path}/{i}", metadata)

    def walk(g: Graph, path: str) -> None:
        visit(g.metadata, f"{path}/metadata", metadata=True)
        visit(g.extras, path)
        for name, node in g.nodes.items():
            if isinstance(node, Graph):
                walk(node, f"{path}/nodes/{name}")
            else:
                visit(node.field_values(), f"{path}/nodes/{name}")

    walk(graph, "/graph")
    return total


def _numeric_list_kind(value: list | tuple) -> str | None:
    """"i" or "f" when a non-empty list holds only ints (not bools) or only floats: it is stored as one
    int64 or float64 dataset, and reads back as Python ints or floats."""
    if value and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in value):
        return "i"
    if value and all(isinstance(v, (float, np.floating)) for v in value):
        return "f"
    return None


def _try_infer_shapes(graph: Graph) -> None:
    try:
        graph.infer_shapes()
    except TalonError:
        pass  # storage of graphs that cannot (yet) be shaped is allowed; their shapes stay unknown


# Small objects go through h5py's low-level API: Group.create_dataset/create_group cost ~4x more, and
# a file holds one dataset per field. The settings are those h5py's high-level calls use (no object
# timestamps, UTF-8 link names where needed), so files are the same.
_TYPES: dict[Any, Any] = {}
_ARRAY_TYPES: dict[Any, Any] = {}  # HDF5 types of indexed arrays, by dtype
_ATTR_TYPES: dict[Any, Any] = {}  # HDF5 types of attributes, by dtype (_attr; every string attribute is _STR)
_DCPL = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
_DCPL.set_obj_track_times(False)
_DCPL_EARLY = _DCPL.copy()  # contiguous arrays: space allocated at creation, never filled by HDF5
_DCPL_EMPTY = _DCPL.copy()  # empty or large small-path datasets: contiguous
# Small datasets keep their data in their object header (compact layout): no separate allocation, and a
# file of scalars needs no 2 KiB small-data block. Readers see no difference.
_DCPL.set_layout(h5py.h5d.COMPACT)
_COMPACT_BYTES = 16 * 1024  # an object header holds at most 64 KiB
_DCPL_EARLY.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
_DCPL_EARLY.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
_LCPL_UTF8 = h5py.h5p.create(h5py.h5p.LINK_CREATE)
_LCPL_UTF8.set_char_encoding(h5py.h5t.CSET_UTF8)


def _attr(oid: Any, name: str, data: np.ndarray) -> None:
    """Give the new HDF5 object `oid` the attribute `name` holding `data` (an array as h5py's
    `array_for_new_object` makes it: strings in the tagged `_STR` dtype, numbers as they are): the HDF5
    calls of h5py's `attrs.create`, so the same bytes, without its checks and conversions (and a lookup
    of the object by name), which cost some 3x the calls."""
    types = _ATTR_TYPES.get(data.dtype)
    if types is None:  # (the file's type, the memory type)
        types = _ATTR_TYPES[data.dtype] = (h5py.h5t.py_create(data.dtype, logical=True), h5py.h5t.py_create(data.dtype))
    attr = h5py.h5a.create(oid, name.encode("ascii"), types[0], h5py.h5s.create_simple(data.shape))
    try:
        attr.write(data, mtype=types[1])
    finally:
        attr.close()


def _link_name(name: str) -> tuple[bytes, Any]:
    return (name.encode("ascii"), None) if name.isascii() else (name.encode("utf-8"), _LCPL_UTF8)


def _dataset(group: h5py.Group, name: str, data: np.ndarray) -> Any:
    """Create and fill a small dataset (scalar or 1-D); returns its low-level id."""
    dtype = data.dtype
    tid = _TYPES.get(dtype)
    if tid is None:
        tid = _TYPES[dtype] = h5py.h5t.py_create(dtype, logical=True)
    bname, lcpl = _link_name(name)
    space = h5py.h5s.create_simple(data.shape) if data.shape else h5py.h5s.create(h5py.h5s.SCALAR)
    small = data.size and data.nbytes <= _COMPACT_BYTES  # compact datasets must fit a 64 KiB object header
    if small and data.dtype.kind != "O" and _integrity.HEAP_MAGIC in data.tobytes():
        # Compact data lies inside the object header, where the heap check (which skips only contiguous
        # array data) would take these bytes for a damaged string heap: keep them contiguous.
        small = False
    dsid = h5py.h5d.create(group.id, bname, tid, space, dcpl=_DCPL if small else _DCPL_EMPTY, lcpl=lcpl)
    dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, data)
    return dsid


def _group(parent: h5py.Group, name: str, links: list[str], track_order: bool = False) -> h5py.Group:
    """A new group whose object header is sized for the links it will hold (_h5space)."""
    bname, lcpl = _link_name(name)
    gcpl = _h5space.group_plist([_link_name(k)[0] for k in links], track_order)
    return h5py.Group(h5py.h5g.create(parent.id, bname, lcpl=lcpl, gcpl=gcpl))


def _graph_links(graph: Graph) -> list[str]:
    """The links of a graph's group, as _write_graph writes them."""
    return ["type", "nodes", "edges", "metadata"] + ([] if graph.is_dag else ["allow_cycles"]) + sorted(graph.extras)


def _write_str(group: h5py.Group, name: str, value: str) -> None:
    _dataset(group, name, np.array(value, dtype=_STR))


def _write_array(group: h5py.Group, name: str, arr: np.ndarray, opts: dict, inline_small: bool = False) -> Any:
    """Write one array; return its mirror encoding (None for compressed arrays, which have none)."""
    if not arr.flags.c_contiguous:  # (np.require costs more than the check)
        arr = np.ascontiguousarray(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    if arr.ndim == 0 or arr.size == 0 or (inline_small and arr.nbytes <= _INLINE_BYTES and not opts.get("compression")):
        _dataset(group, name, arr)  # in its object header: covered by the file checksum
        return _mirror.inline_array(arr)
    if opts.get("compression"):
        kw = {k: v for k, v in opts.items() if k in ("compression", "compression_opts") and v is not None}
        chunks = list(arr.shape)
        # One chunk per array (one index entry), split only to respect HDF5's 4 GiB chunk limit.
        while int(np.prod(chunks)) * arr.itemsize > _CHUNK_BYTES and chunks[0] > 1:
            chunks[0] = (chunks[0] + 1) // 2
        opts["chunked"].append(group.create_dataset(name, data=arr, chunks=tuple(chunks), fletcher32=True, **kw).name)
        return None
    # Contiguous layout, as the existing SDK writes. The space is allocated now and the sink copies the
    # bytes in once HDF5 has closed the file (_integrity.ArraySink): HDF5's own write path is about
    # twice as slow.
    bname, lcpl = _link_name(name)
    tid = _ARRAY_TYPES.get(arr.dtype)
    if tid is None:
        tid = _ARRAY_TYPES[arr.dtype] = h5py.h5t.py_create(arr.dtype)
    dsid = h5py.h5d.create(group.id, bname, tid, h5py.h5s.create_simple(arr.shape), dcpl=_DCPL_EARLY, lcpl=lcpl)
    path = f"{group.name}/{name}"
    opts["sink"].put(path, dsid.get_offset(), arr)
    return {"a": path}


def _write_graph(g: h5py.Group, graph: Graph, opts: dict, where: str) -> dict:
    """Write `graph` under `g`; return its mirror encoding (_mirror)."""
    _write_str(g, "type", "Graph")
    nodes = _group(g, "nodes", list(graph.nodes))
    shapes: dict[str, list] = {}
    mirror_nodes = []
    for name, node in graph.nodes.items():
        if isinstance(node, Graph):
            body = _write_graph(_group(nodes, name, _graph_links(node)), node, opts, where=f"{where}: node {name!r}")
        else:
            fields = _stored_fields(node)
            ng = _group(nodes, name, ["type", *fields])
            _write_str(ng, "type", node.type_name)
            body = _write_fields(ng, fields, opts, where=f"{where}: node {name!r}")
        mirror_nodes.append([name, node.type_name, body])
        if node.input_shapes is not None or node.output_shapes is not None:
            shapes[name] = [node.input_shapes, node.output_shapes]
    edges = _group(g, "edges", ["src", "dst"])
    for key, ends in (("src", [s for s, _ in graph.edges]), ("dst", [d for _, d in graph.edges])):
        _dataset(edges, key, np.array(ends, dtype=_STR).reshape(len(ends)))
    _attr(g.id, "talon_node_order", np.asarray(list(graph.nodes), dtype=_STR).reshape(len(graph.nodes)))
    # One attribute for all nodes' shapes: a read costs one attribute access, not two per node.
    _attr(g.id, "talon_shapes", np.asarray(json.dumps(shapes, separators=(",", ":")), dtype=_STR))
    _attr(g.id, "talon_dt", np.asarray(np.float64(graph.dt)))
    metadata = _write_value(g, "metadata", graph.metadata, f"{where}: graph metadata", opts, json_entries=True)
    if not graph.is_dag:
        g.create_dataset("allow_cycles", data=np.bool_(True))
    # In the order the HDF5 reader meets them: the group's links are indexed by name.
    extras = {key: _write_value(g, key, graph.extras[key], f"{where}: graph field {key!r}", opts) for key in sorted(graph.extras)}
    return {"nodes": mirror_nodes, "edges": [list(e) for e in graph.edges], "dt": _mirror.number(graph.dt),
            "shapes": shapes, "metadata": metadata, "extras": extras}


def _stored_fields(node: Node) -> dict[str, tuple[Any, Any]]:
    """{field: (spec, value)} of the fields of `node` that differ from what a reader assumes."""
    defaults = type(node).field_defaults()
    out = {}
    for name, spec in node.field_specs().items():
        value = getattr(node, name)
        if value is None or (spec.extension and name in defaults and values_equal(value, defaults[name])):
            continue
        out[name] = (spec, value)
    return out


def _write_fields(group: h5py.Group, fields: dict[str, tuple[Any, Any]], opts: dict, where: str) -> dict:
    """Write a node's `fields` (_stored_fields); return their mirror encoding."""
    mirror: dict[str, Any] = {}
    for name, (spec, value) in fields.items():
        kind = spec.kind
        if kind == ARRAY:
            enc = _write_field_array(group, name, value, opts)
        elif kind == INT:
            enc = int(value)
            _dataset(group, name, np.array(value, dtype=np.int64))
        elif kind == FLOAT or (kind == NUMBER and not isinstance(value, int)):
            enc = _mirror.number(value)
            _dataset(group, name, np.array(value, dtype=np.float64))
        elif kind == NUMBER:
            enc = int(value)
            _dataset(group, name, np.array(value, dtype=np.int64))
        elif kind == BOOL:
            enc = bool(value)
            _dataset(group, name, np.array(value, dtype=np.bool_))
        elif kind == STR:
            enc = value
            _write_str(group, name, value)
        elif kind == INTS:
            enc = [int(v) for v in value]
            _dataset(group, name, np.asarray(value, dtype=np.int64).reshape(len(value)))
        else:  # DICT
            enc = _write_value(group, name, value, f"{where} field {name!r}", opts)
        mirror[name] = enc
    return mirror


def _write_field_array(group: h5py.Group, name: str, arr: np.ndarray, opts: dict) -> Any:
    """A node's array field: its integer form (_compact) where it has one, else the array as it is."""
    form = _compact.integer_form(arr) if opts["integers"] else None
    if form is None:
        return _write_array(group, name, arr, opts)
    ints, exp = form
    enc = _write_array(group, name, ints, opts)
    dsid = h5py.h5o.open(group.id, _link_name(name)[0])
    _attr(dsid, _compact.EXP_ATTR, np.asarray(np.int64(exp)))
    _attr(dsid, _compact.DTYPE_ATTR, np.asarray(np.bytes_(arr.dtype.str)))
    opts["version"] = COMPACT_VERSION
    return {"q": [enc, exp, arr.dtype.str]}


def _storable_key(key: Any) -> bool:
    """HDF5 link names: non-empty strings without '/' or NUL, not '.' or '..'."""
    return isinstance(key, str) and bool(key) and "/" not in key and "\x00" not in key and key not in (".", "..")


def _write_entry(group: h5py.Group, key: str, value: Any, where: str, opts: dict) -> Any:
    """A graph metadata entry: one JSON document when that saves HDF5 objects (_metajson), else a tree."""
    enc = _metajson.encode(value) if _storable_key(key) and not opts.get("compression") else None
    if enc is None:
        return _write_value(group, key, value, where, opts)
    # Not a variable-length string: a document of kilobytes in the global heap would open a second 4 KiB collection.
    kind, data = _metajson.stored_form(enc)
    dsid = _dataset(group, key, data.astype(h5py.string_dtype("utf-8", data.dtype.itemsize)) if kind == _metajson.KIND else data)
    _attr(dsid, _KIND_ATTR, np.asarray(kind, dtype=_STR))
    opts["version"] = COMPACT_VERSION
    return {"j": f"{group.name}/{key}"}  # the mirror refers to the document rather than repeat it


def _write_value(group: h5py.Group, key: str, value: Any, where: str, opts: dict, json_entries: bool = False) -> Any:
    """Write a free-form metadata value (nested dicts, lists, strings, numbers, arrays, None); return
    the mirror encoding of what the HDF5 reader will read back. With `json_entries`, the dict's large
    entries are written as one JSON document each (_metajson)."""
    if not _storable_key(key):
        raise TalonFormatError(f"{where}: key {key!r} cannot be stored (keys must be non-empty strings without '/' or NUL)")
    if isinstance(value, dict):
        sub = _group(group, key, [str(k) for k in value if _storable_key(k)], track_order=True)
        return {"d": {k: _write_entry(sub, k, v, f"{where}[{k!r}]", opts) if json_entries else _write_value(sub, k, v, f"{where}[{k!r}]", opts)
                      for k, v in value.items()}}
    if value is None:
        group.create_dataset(key, data=h5py.Empty("i1")).attrs[_KIND_ATTR] = "none"
        return None
    if isinstance(value, str):
        _write_str(group, key, value)
        return value
    if isinstance(value, (bool, np.bool_)):
        _dataset(group, key, np.array(value, dtype=np.bool_))
        return bool(value)
    if isinstance(value, (int, np.integer)):
        if not -(2**63) <= int(value) < 2**63:
            raise TalonFormatError(f"{where}: integer {value} does not fit in 64 bits")
        _dataset(group, key, np.array(value, dtype=np.int64))
        return int(value)
    if isinstance(value, (float, np.floating)):
        _dataset(group, key, np.array(value, dtype=np.float64))
        return _mirror.number(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TalonFormatError(f"{where}: arrays of dtype {value.dtype} cannot be stored (numeric only, no pickle)")
        enc = _write_array(group, key, value, opts, inline_small=True)
        if value.ndim == 0:
            group[key].attrs[_KIND_ATTR] = "ndarray"  # else it would read back as a Python scalar
        return enc
    if isinstance(value, (list, tuple)):
        kind = "tuple" if isinstance(value, tuple) else "list"  # subclasses (namedtuples) included
        numeric = _numeric_list_kind(value)
        if value and all(isinstance(v, str) for v in value):
            ds = group.create_dataset(key, data=list(value), dtype=_STR)
            items = list(value)
        elif numeric and len(value) >= _LIST_AS_ARRAY:
            # Long lists (a loss history, say) are stored like arrays: indexed, and mirrored by reference.
            items = _write_array(group, key, np.asarray(value, dtype=np.int64 if numeric == "i" else np.float64), opts)
            ds = group[key]
        elif numeric:
            ds = group.create_dataset(key, data=np.asarray(value, dtype=np.int64 if numeric == "i" else np.float64))
            items = [int(v) for v in value] if numeric == "i" else [_mirror.number(v) for v in value]
        else:
            ds = _group(group, key, [str(i) for i in range(len(value))], track_order=True)
            items = [_write_value(ds, str(i), v, f"{where}[{i}]", opts) for i, v in enumerate(value)]
        _attr(ds.id, _KIND_ATTR, np.asarray(kind, dtype=_STR))
        return {"l" if kind == "list" else "t": items}
    raise TalonFormatError(f"{where}: values of type {type(value).__name__} cannot be stored (use dicts, lists, strings, numbers, numpy arrays)")


# ----------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------


class _Reader:
    """Reads one file defensively; every failure becomes a TalonFormatError naming file, node, field."""

    def __init__(self, path: Path, file: h5py.File, index: dict | None = None, raw: Any = None, size: int = 1) -> None:
        self.path = path
        self.file = file
        self.sealed = index is not None  # a sealed file may index no array at all
        self.index = index or {}
        self.raw = raw
        self.size = max(size, 1)
        self.context: list[str] = []
        self.census = _hdf5_safety.Census()
        self.arrays: dict[str, np.ndarray] = {}  # indexed arrays already read and checked (the mirror's)
        self.reads: dict[str, Any] = {}  # indexed arrays being read by a worker thread (futures), not yet checked
        self.entries_checked: set[str] = set()
        self.depth = 0  # of nested graphs being read
        self.value_depth = 0  # of metadata groups being read

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
    def child(self, group: h5py.Group, name: str, prefix: str | None = None) -> Any:
        """group.get(name), from the datasets the census opened where it holds this one: h5py's lookup
        by name costs some 50 us, a tenth of a small field's read. Only ASCII paths: the census names
        objects with undecodable bytes replaced, which a non-ASCII name could coincide with."""
        base = prefix if prefix is not None else group.name
        path = f"{base}/{name}" if base != "/" else f"/{name}"
        found = self.census.datasets.get(path) if path.isascii() else None
        return h5py.Dataset(found[0]) if found is not None else group.get(name)

    def dataset(self, group: h5py.Group, name: str, prefix: str | None = None) -> h5py.Dataset:
        obj = self.child(group, name, prefix)
        if obj is None:
            raise self.fail(f"missing {name!r}")
        if not isinstance(obj, h5py.Dataset):
            raise self.fail(f"{name!r} should be a dataset, found a group")
        return obj

    def load(self, ds: h5py.Dataset, shape: Any = False, dtype: Any = None) -> Any:
        if shape is False:  # callers that already asked HDF5 for shape and dtype pass them in
            shape, dtype = ds.shape, ds.dtype
        if shape is None:
            return None
        nbytes = float(np.prod(shape, dtype=np.float64)) * max(dtype.itemsize, 1)
        # Checked before reading so that a hostile header cannot make us allocate terabytes.
        if nbytes > self.size + 4096 and nbytes > (self.size * _COMPRESSION_SLACK if ds.compression else 0):
            raise self.fail(f"dataset {ds.name.rsplit('/', 1)[-1]!r} declares {int(nbytes):,} bytes, more than the file can hold ({self.size:,} bytes)")
        if shape and nbytes and self.index:
            arr = self.indexed(ds.name)
            if arr is not None:
                return arr
        try:
            if nbytes and (dtype.kind in "biufS" or (dtype.kind == "O" and h5py.check_string_dtype(dtype) is not None)):
                # What ds[()] returns, through HDF5's read alone: h5py's selection machinery costs 2-4x
                # more than the read itself for the small datasets a model file holds by the dozen.
                out = np.empty(shape, dtype=dtype)
                ds.id.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
                return out[()] if shape == () else out
            return ds[()]
        except OSError as exc:  # e.g. a Fletcher-32 mismatch in a compressed array
            raise self.fail(f"dataset {ds.name.rsplit('/', 1)[-1]!r} cannot be read, its data is corrupted ({exc})") from None

    def indexed(self, path: str) -> np.ndarray | None:
        """The array of dataset `path` copied by its index entry (None when it has none), once the entry
        is known to describe the bytes HDF5 itself would read there."""
        entry = self.index.get(path)
        if entry is None or entry[4] is None:
            return None
        self.check_entry(path, entry)
        return self.checked_array(path, entry)

    def checked_array(self, path: str, entry: list) -> np.ndarray:
        """The array of index entry `entry` (already checked against dataset `path`), its digest checked:
        prefetched by _open's worker, or read here."""
        arr = self.arrays.get(path)
        if arr is not None:
            return arr
        if path in self.reads:
            try:
                arr = self.reads.pop(path).result()
            except (_ArrayReadError, OSError) as exc:
                raise self.fail(str(exc)) from None
            if _integrity.array_digest(arr) != entry[4]:
                raise self.fail("array data fails its checksum: the file is corrupted")
        else:
            arr = _integrity.read_array(self.raw, entry, self.fail)
        self.arrays[path] = arr
        return arr

    def check_entry(self, path: str, entry: list) -> None:
        """An index entry must give the offset, size, dtype and shape HDF5 has for the dataset: else
        h5py and the existing SDK would read other bytes than TALON, two models in one file."""
        if path in self.entries_checked:
            return
        found = self.census.datasets.get(path)
        if found is None:
            raise self.fail(f"the index lists array {path!r}, which the file does not hold as a dataset")
        dsid, layout = found
        try:
            ok = (layout == h5py.h5d.CONTIGUOUS and dsid.get_offset() == entry[0] and dsid.get_storage_size() == entry[1]
                  and list(dsid.shape) == entry[3] and dsid.dtype == np.dtype(str(entry[2])))
        except (TypeError, ValueError) as exc:
            raise self.fail(f"index entry of array {path!r} is malformed ({exc})") from None
        if not ok:
            raise self.fail(f"the index entry of array {path!r} does not describe the dataset the file holds there "
                            "(offset, size, dtype or shape): the file would read differently in other HDF5 readers")
        self.entries_checked.add(path)

    def string(self, group: h5py.Group, name: str, ds: h5py.Dataset | None = None) -> str:
        ds = ds if ds is not None else self.dataset(group, name)
        shape, dtype = ds.shape, ds.dtype
        if h5py.check_string_dtype(dtype) is None or shape != ():
            raise self.fail(f"{name!r} should be a UTF-8 string, found {dtype} {shape}")
        return self.decode(self.load(ds, shape, dtype), name)

    def link_name(self, name: Any) -> str:
        """A node name or metadata key as stored: valid UTF-8 (h5py hands over undecodable ones as bytes)."""
        if isinstance(name, bytes) or not _encodable(name):
            raise self.fail(f"name {name!r} is not valid UTF-8")
        return name

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
    def field(self, group: h5py.Group, name: str, spec: Any, prefix: str | None = None) -> Any:
        if spec.kind == DICT:
            obj = group[name]
            if not isinstance(obj, h5py.Group):
                raise self.fail(f"field {name!r} should be a group (a dict)")
            return self.value(obj)
        path = f"{prefix if prefix is not None else group.name}/{name}"
        self.check_numbers(path, name)
        if spec.kind == ARRAY and self.index:
            arr = self.indexed(path)
            if arr is not None:
                if arr.dtype.kind == "b":
                    raise self.fail(f"field {name!r} should be a numeric array, found booleans")
                return self.exact(name, spec, self.integer_form(self.dataset(group, name, prefix), arr) if arr.dtype.kind in "iu" else arr)
        ds = self.dataset(group, name, prefix)
        kind, dt, shape = spec.kind, ds.dtype, ds.shape
        if kind == STR:
            return self.string(group, name, ds)
        if h5py.check_string_dtype(dt) is not None or dt.kind not in "biuf":
            raise self.fail(f"field {name!r} should be numeric ({kind}), found dtype {dt}")
        data = self.load(ds, shape, dt)
        if kind == ARRAY:
            if dt.kind == "b":
                raise self.fail(f"field {name!r} should be a numeric array, found booleans")
            return self.exact(name, spec, self.integer_form(ds, np.asarray(data)) if dt.kind in "iu" else np.asarray(data))
        if kind == INTS:
            if dt.kind not in "iu" or len(shape) > 1:
                raise self.fail(f"field {name!r} should be integers, found {dt} {shape}")
            values = tuple(int(v) for v in np.atleast_1d(data))
            if any(v >= 2**63 for v in values):  # uint64: no int64 holds it, so it could not be written back
                raise self.fail(f"field {name!r} holds {max(values)}, which does not fit in a signed 64-bit integer")
            return values
        if shape not in ((), (1,)):
            raise self.fail(f"field {name!r} should be a single {kind}, found shape {shape}")
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

    def exact(self, name: str, spec: Any, arr: np.ndarray) -> np.ndarray:
        """`arr`, with a warning when the field's dtype (which the node converts it to) cannot hold every
        value exactly: float64 or long double weights for a float32 field, int64 beyond 2**24, ..."""
        target = _field_dtype(spec, arr)
        if arr.dtype == target or arr.size == 0 or arr.dtype.kind not in "iuf":
            return arr  # (other dtypes are refused by the node)
        with np.errstate(all="ignore"):
            back = arr.astype(target).astype(arr.dtype)
            same = np.array_equal(back, arr, equal_nan=arr.dtype.kind == "f")
            if not same:
                change = np.nanmax(np.abs(back.astype(np.float64) - arr.astype(np.float64)), initial=0.0)
        if not same:
            warnings.warn(f"{self.path.name}: {' '.join(self.context)}: {arr.dtype} values do not all fit {target} exactly, the dtype of "
                          f"{name!r}: TALON computes with them rounded (largest change {change:.3g})", TalonFormatWarning, stacklevel=6)
        return arr

    def check_numbers(self, path: str, name: str) -> None:
        """Enums (other than h5py's bool) and bitfields read as integers in h5py, but hold labels or bit
        patterns: refused where a number is expected rather than taken for their codes."""
        label = self.census.labelled.get(path)
        if label is not None:
            raise self.fail(f"{name!r} is {label}, not numbers: store the values as an integer or float dataset")

    def integer_form(self, ds: h5py.Dataset, ints: np.ndarray) -> np.ndarray:
        """An integer array field, or the floats it stands for when it is an integer form (_compact)."""
        if _compact.EXP_ATTR not in ds.attrs:
            return ints
        try:
            return _compact.decode(ints, ds.attrs[_compact.EXP_ATTR], ds.attrs.get(_compact.DTYPE_ATTR))
        except ValueError as exc:
            raise self.fail(f"malformed integer form ({exc})") from None

    def value(self, obj: h5py.Group | h5py.Dataset) -> Any:
        """Read a free-form metadata value written by _write_value (or by the existing SDK)."""
        if not isinstance(obj, h5py.Group):
            return self._value(obj)
        if self.value_depth >= MAX_VALUE_DEPTH:
            raise value_depth_error(self.path.name)
        self.value_depth += 1
        try:
            return self._value(obj)
        finally:
            self.value_depth -= 1

    def _value(self, obj: h5py.Group | h5py.Dataset) -> Any:
        kind = obj.attrs.get(_KIND_ATTR)
        if isinstance(kind, bytes):
            kind = kind.decode("utf-8", "replace")
        if isinstance(obj, h5py.Group):
            if kind in ("list", "tuple"):
                items = [self.value(obj[k]) for k in sorted(obj, key=lambda s: int(s) if s.isdigit() else -1)]
                return items if kind == "list" else tuple(items)
            return {self.link_name(k): self.value(obj[k]) for k in obj}
        if kind == "none":
            return None
        if kind in (_metajson.KIND, _metajson.ZKIND):
            if kind == _metajson.ZKIND:
                text = _metajson.inflate(np.asarray(self.load(obj)), _COMPRESSION_SLACK * self.size, self.fail)
            elif h5py.check_string_dtype(obj.dtype) is None or obj.shape != ():
                raise self.fail(f"{obj.name!r} should hold a JSON string")
            else:
                text = self.decode(self.load(obj), obj.name)
            value = _metajson.loads(text, self.fail)
            if self.value_depth + _value_depth(value) > MAX_VALUE_DEPTH:  # value_depth counts the dicts holding it
                raise value_depth_error(self.path.name)
            self.check_free_form(value)
            return value
        if h5py.check_string_dtype(obj.dtype) is not None:
            raw = self.load(obj)
            if obj.shape == ():
                return self.decode(raw, obj.name)
            out = [self.decode(v, obj.name) for v in np.asarray(raw).ravel()]
            return tuple(out) if kind == "tuple" else out
        if obj.dtype.kind not in "biuf":
            raise self.fail(f"{obj.name!r} has unsupported dtype {obj.dtype}")
        self.check_numbers(obj.name, obj.name)
        data = self.load(obj)
        if kind in ("list", "tuple"):
            items = np.asarray(data).tolist()
            return items if kind == "list" else tuple(items)
        if kind == "ndarray":
            return np.asarray(data)
        if obj.shape == ():
            scalar = np.asarray(data).item()
            return scalar
        return np.asarray(data)

    # -- graph --------------------------------------------------------------------------------------
    @contextmanager
    def nested(self) -> Iterator[None]:
        if self.depth >= MAX_GRAPH_DEPTH:
            raise depth_error(self.path.name)
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

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
        names = [self.link_name(n) for n in nodes_group]
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
        self.shapes(g, nodes)
        dt = 1.0
        if "talon_dt" in g.attrs:
            with self.at("attribute 'talon_dt'"):
                dt = self.attr_scalar(g, "talon_dt")
        metadata = self.metadata(g)
        self.allow_cycles(g)
        extras = {k: self.value(g[k]) for k in g if k not in _GRAPH_KNOWN}
        return self.make_graph({n: nodes[n] for n in order}, list(zip(src, dst)), dt, metadata, extras)

    def metadata(self, g: h5py.Group) -> Any:
        obj = g.get("metadata")
        if obj is None:
            return {}
        if not isinstance(obj, h5py.Group):
            raise self.fail("'metadata' should be a group (a dict of entries), found a dataset")
        return self.value(obj)

    def allow_cycles(self, g: h5py.Group) -> None:
        """`allow_cycles`, when present, is a single bool (TALON's Graph finds the cycles from the edges)."""
        obj = g.get("allow_cycles")
        if obj is None:
            return
        with self.at("'allow_cycles'"):
            if not isinstance(obj, h5py.Dataset) or obj.shape != () or obj.dtype.kind != "b":
                found = "a group" if isinstance(obj, h5py.Group) else f"{obj.dtype} {obj.shape}"
                raise self.fail(f"should be a single bool, found {found}")

    def make_graph(self, nodes: dict[str, Node], edges: list, dt: Any, metadata: Any, extras: dict) -> Graph:
        if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not (np.isfinite(dt) and dt > 0):
            raise self.fail(f"dt must be a positive number, got {dt!r}")
        if not isinstance(metadata, dict):
            raise self.fail(f"graph metadata should be a dict, found {type(metadata).__name__}")
        try:
            return Graph(nodes, edges, dt=float(dt), metadata=metadata, extras=extras)
        except TalonError as exc:
            raise self.fail(str(exc)) from None

    def mirrored_graph(self, g: h5py.Group) -> Graph | None:
        """The graph from its sealed content mirror (_mirror), or None when the file has none to use."""
        if not self.sealed or _mirror.ATTR not in g.attrs:
            return None
        with self.at(f"attribute {_mirror.ATTR!r}"):
            try:
                text = self.decode(g.attrs[_mirror.ATTR], _mirror.ATTR)
                doc = json.loads(text)
            except (ValueError, RecursionError) as exc:
                raise self.fail(f"malformed ({exc})") from None
        if not isinstance(doc, dict) or doc.get("v") != _mirror.VERSION:
            return None  # another mirror version: the HDF5 objects are the canonical content
        if _mirror.may_hold_surrogates(text) and not _encodable(doc):
            raise self.fail(f"attribute {_mirror.ATTR!r}: a name or string is not valid Unicode (a lone surrogate)")
        # The indexed arrays are being read by a worker thread since the file was opened (_open), while
        # this one reads the HDF5 objects (which the mirror must match, check_mirror) and checks each
        # array's digest before the node that holds it is built: the reads release Python's GIL, the
        # HDF5 calls and xxh3 hold it, so the two overlap. The mirror is decoded last, from arrays
        # already checked.
        used: set[str] = set()
        objects = self.objects_graph(g)

        def array(path: str) -> np.ndarray:
            # The writer refers to each array once; refusing repeats bounds what a hostile mirror can
            # make us allocate by the file's own size.
            if path in used:
                raise self.fail(f"the content mirror refers to array {path!r} twice")
            used.add(path)
            entry = self.indexed_array_entry(path)
            self.check_entry(path, entry)
            return self.checked_array(path, entry)

        decoder = _mirror.Decoder(array, self.fail, MAX_VALUE_DEPTH, lambda: value_depth_error(self.path.name), document=self.json_entry)
        try:
            graph = self.graph_from_mirror(doc["graph"], decoder)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as exc:
            raise self.fail(f"malformed content mirror ({type(exc).__name__}: {exc})") from None
        self.check_mirror(graph, objects)
        return graph

    def objects_graph(self, g: h5py.Group) -> Graph:
        """The graph read from the HDF5 objects (what h5py and the existing SDK read), without the
        warnings the mirror's reading gives anyway."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TalonFormatWarning)
            return self.graph(g)

    def check_mirror(self, graph: Graph, objects: Graph) -> None:
        """The mirror must describe the HDF5 objects, which h5py and the existing SDK read: anyone can
        recompute a seal, so a file could otherwise hold one model for TALON and another for them. The
        objects' graph (objects_graph; its arrays are the ones checked, by the index entries that
        describe them) must be identical."""
        diff = _difference(graph, objects)
        if diff:
            raise self.fail(f"the content mirror disagrees with the HDF5 objects ({diff}): h5py and the existing SDK "
                            "would read another model than TALON; refused")

    def json_entry(self, path: str) -> Any:
        """A metadata entry stored as a JSON document (_metajson), which the mirror refers to by path."""
        if not path.startswith("/graph/") or "/metadata/" not in path:
            raise self.fail(f"the content mirror refers to {path!r}, which is not a metadata entry")
        obj = self.file.get(path)
        kind = obj.attrs.get(_KIND_ATTR) if isinstance(obj, h5py.Dataset) else None
        if (kind.decode("utf-8", "replace") if isinstance(kind, bytes) else kind) not in (_metajson.KIND, _metajson.ZKIND):
            raise self.fail(f"the content mirror refers to {path!r}, which is not a JSON metadata entry")
        return self.value(obj)

    def graph_from_mirror(self, doc: dict, decoder: _mirror.Decoder) -> Graph:
        nodes: dict[str, Node] = {}
        for name, type_name, body in doc["nodes"]:
            with self.at(f"node {name!r}"):
                if not isinstance(name, str) or name in nodes:
                    raise self.fail("duplicate or malformed node name in the content mirror")
                if type_name == "Graph":
                    with self.nested():
                        nodes[name] = self.graph_from_mirror(body, decoder)
                    continue
                cls = self.node_class(type_name)
                specs = cls.field_specs()
                values: dict[str, Any] = {}
                for fname, enc in body.items():
                    if fname not in specs:  # as the HDF5 path does: a newer version of a user primitive
                        warnings.warn(f"{self.path.name}: node {name!r} ({type_name}) has unknown field {fname!r}, ignored",
                                      TalonFormatWarning, stacklevel=5)
                        continue
                    with self.at(f"field {fname!r}"):
                        kind = specs[fname].kind
                        if kind == INTS:
                            if not (isinstance(enc, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in enc)):
                                raise self.fail(f"content mirror: {fname!r} should be a list of integers")
                            values[fname] = tuple(enc)
                            continue
                        value = decoder.value(enc)
                        if kind == ARRAY and isinstance(value, np.ndarray) and value.dtype.kind == "b":
                            raise self.fail(f"field {fname!r} should be a numeric array, found booleans")
                        if kind == DICT:
                            self.check_free_form(value)
                        values[fname] = value
                nodes[name] = self.build_node(cls, values)
        self.apply_shapes(doc["shapes"], nodes)
        edges = [(s, d) for s, d in doc["edges"]]
        dt = decoder.value(doc["dt"])
        metadata = decoder.value(doc["metadata"])
        extras = {k: decoder.value(v) for k, v in doc["extras"].items()}
        self.check_free_form(metadata)
        self.check_free_form(extras)
        if set(extras) & _GRAPH_KNOWN:
            raise self.fail(f"content mirror: graph extras may not be named {sorted(set(extras) & _GRAPH_KNOWN)}")
        return self.make_graph(nodes, edges, dt, metadata, extras)

    def check_free_form(self, value: Any) -> None:
        """What the HDF5 layout can hold: keys as _write_value allows them, 64-bit integers."""
        if isinstance(value, dict):
            for k, v in value.items():
                if not _storable_key(k):
                    raise self.fail(f"content mirror: key {k!r} cannot be stored in a .t1c file")
                self.check_free_form(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                self.check_free_form(v)
        elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            raise self.fail(f"content mirror: integer {value} does not fit in 64 bits")

    def indexed_array_entry(self, path: str) -> list:
        entry = self.index.get(path)
        if entry is None or entry[4] is None:
            raise self.fail(f"the content mirror refers to array {path!r}, which the index does not hold")
        return entry

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
        back = back_edges({n: sorted(succ) for n, succ in adj.items()}, starts)
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

    def shapes(self, g: h5py.Group, nodes: dict[str, Node]) -> None:
        """Restore stored input/output shapes from the graph's talon_shapes attribute."""
        if "talon_shapes" not in g.attrs:
            return
        with self.at("attribute 'talon_shapes'"):
            try:
                table = json.loads(self.decode(g.attrs["talon_shapes"], "talon_shapes"))
            except ValueError as exc:
                raise self.fail(f"malformed ({exc})") from None
            except RecursionError:
                raise self.fail("malformed (JSON nested too deeply)") from None
            self.apply_shapes(table, nodes)

    def apply_shapes(self, table: Any, nodes: dict[str, Node]) -> None:
        """Set each node's stored shapes from a {node: [input shapes, output shapes]} table."""
        try:
            for name, (ins, outs) in table.items():
                if not all(s is None or (isinstance(s, list) and all(isinstance(x, list) for x in s)) for s in (ins, outs)):
                    raise TypeError(f"shapes of {name!r} should be lists of lists")
                node = nodes[name]
                node.input_shapes = None if ins is None else [_stored_shape(s) for s in ins]
                node.output_shapes = None if outs is None else [_stored_shape(s) for s in outs]
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise self.fail(f"malformed shapes table ({exc})") from None

    def node(self, ng: h5py.Group) -> Node:
        type_ds = self.child(ng, "type")
        if type_ds is None:
            raise self.fail("missing 'type'")
        if not isinstance(type_ds, h5py.Dataset):
            raise self.fail("'type' should be a dataset, found a group")
        type_name = self.string(ng, "type", type_ds)
        if type_name == "Graph":
            with self.nested():
                node: Node = self.graph(ng)
        else:
            cls = self.node_class(type_name)
            specs = cls.field_specs()
            values: dict[str, Any] = {}
            prefix = ng.name  # asked once: HDF5 computes an object's path on every request
            for name in ng:
                if name == "type":
                    continue
                if name not in specs:
                    warnings.warn(f"{self.path.name}: {self.context[-1]} ({type_name}) has unknown field {name!r}, ignored", TalonFormatWarning, stacklevel=4)
                    continue
                with self.at(f"field {name!r}"):
                    values[name] = self.field(ng, name, specs[name], prefix)
            node = self.build_node(cls, values)
        return node

    def node_class(self, type_name: Any) -> type[Node]:
        cls = get_node_class(type_name) if isinstance(type_name, str) else None
        if cls is None:
            raise self.fail(f"unknown node type {type_name!r}; known types: {', '.join(list_primitives())}. "
                            "A user-defined primitive must be registered with talon.ir.register_node before reading")
        return cls

    def build_node(self, cls: type[Node], values: dict[str, Any]) -> Node:
        defaults = cls.field_defaults()
        missing = [n for n in cls.field_specs() if n not in values and n not in defaults]
        if missing:
            raise self.fail(f"missing required field {missing[0]!r} of {cls.type_name}")
        try:
            return cls(**values)
        except PrimitiveError as exc:
            raise self.fail(str(exc)) from None


def _check_stored_shapes(graph: Graph, where: str) -> None:
    """Stored shapes (a cache: the fields and edges are the content) are replaced, with a warning, by the
    shapes the fields and edges give when they disagree: another tool (the existing SDK, h5py) may have
    edited a field without knowing the talon_shapes attribute. A graph that cannot be shaped keeps them.
    Only unsealed files are checked: a seal covers every byte TALON's writer wrote, shapes included, so
    a sealed file that verifies needs no shape inference on read (the cache's purpose)."""
    stored = {}

    def snapshot(g: Graph, prefix: str) -> None:
        for name, node in g.nodes.items():
            stored[prefix + name] = (node, node.input_shapes, node.output_shapes)
            if isinstance(node, Graph):
                snapshot(node, f"{prefix}{name}/")

    snapshot(graph, "")
    if all(ins is None and outs is None for _, ins, outs in stored.values()):
        return
    own = (graph.input_shapes, graph.output_shapes)
    try:
        graph.infer_shapes()
    except TalonError:  # write() stores such graphs too
        for node, ins, outs in stored.values():
            node.input_shapes, node.output_shapes = ins, outs
        graph.input_shapes, graph.output_shapes = own
        return
    for name, (node, ins, outs) in stored.items():
        if (ins is not None and ins != node.input_shapes) or (outs is not None and outs != node.output_shapes):
            warnings.warn(f"{where}: node {name!r}: stored shapes {ins} -> {outs} disagree with those its fields and inputs give, "
                          f"{node.input_shapes} -> {node.output_shapes} (the file was edited by a tool that does not update them); "
                          "using the latter", TalonFormatWarning, stacklevel=3)
            break


def _field_dtype(spec: Any, arr: np.ndarray) -> np.dtype:
    """The dtype a node keeps an array field in (node._coerce): the spec's, or for ANY_FLOAT float32 and
    float64 as given, anything else as float64."""
    if spec.dtype != ANY_FLOAT:
        return np.dtype(spec.dtype)
    return arr.dtype if arr.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _stored_shape(dims: list) -> tuple[int, ...]:
    """One stored shape: non-negative integers (JSON floats such as 4.0 or 1e400 are not dimensions)."""
    if not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**63 for d in dims):
        raise ValueError(f"a shape holds {dims!r}; dimensions are non-negative integers")
    return tuple(dims)


def _encodable(value: Any) -> bool:
    """True when every string in `value` (a JSON document or a name) can be written as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    except (TypeError, ValueError):
        return True  # not JSON (never the case for a mirror or a name): nothing to say about its strings
    return True


def _difference(a: Graph, b: Graph, where: str = "") -> str | None:
    """Where two graphs differ (nodes, fields, stored shapes, edges, dt, metadata), or None."""
    if list(a.nodes) != list(b.nodes):
        return f"{where}node names or order"
    for name, node in a.nodes.items():
        other = b.nodes[name]
        label = f"{where}node {name!r}"
        if type(node) is not type(other):
            return f"{label}: type"
        if isinstance(node, Graph) and isinstance(other, Graph):  # (same type, checked above)
            inner = _difference(node, other, f"{label}: ")
            if inner:
                return inner
        else:
            for f in node.field_specs():
                x, y = getattr(node, f), getattr(other, f)
                if x is not y and not values_equal(x, y):  # arrays are shared when both read the same bytes
                    return f"{label}: field {f!r}"
        if node.input_shapes != other.input_shapes or node.output_shapes != other.output_shapes:
            return f"{label}: stored shapes"
    for label, x, y in (("edges", a.edges, b.edges), ("dt", a.dt, b.dt)):
        if x != y:
            return f"{where}{label}"
    for label, x, y in (("metadata", a.metadata, b.metadata), ("graph fields", a.extras, b.extras)):
        if not values_equal(x, y):
            return f"{where}{label}"
    return None


from talon.ir.node import FieldSpec as _FieldSpec  # noqa: E402

_FLOAT_SPEC = _FieldSpec(FLOAT)


def _parse_version(text: str) -> tuple[int, ...] | None:
    parts = text.strip().split(".")
    # ASCII digits only (str.isdigit also takes "０" and "²"), and few of them: int() of thousands refuses
    if not 1 <= len(parts) <= 3 or not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts):
        return None
    return tuple(int(p) for p in parts)


@contextmanager
def _open(path: str | os.PathLike, prefetch: bool = False) -> Iterator["_Reader"]:
    """Open `path` once and check it (_hdf5_safety, _integrity) before any dataset is read from it.

    With `prefetch`, a worker thread starts copying the large indexed arrays (in file order) as soon as the
    seal is checked, so the copies overlap the checks and the reading of the HDF5 objects. Nothing
    copied is used before the index entry is checked against its dataset and the bytes against their
    digest (_Reader.indexed, checked_array); verify() has bounded the ranges by the file (no overlaps), so
    a refused file costs at most its own size in memory."""
    p = Path(path)
    if not p.exists():
        raise TalonFileNotFoundError(f"{str(p)!r}: no such file")
    if p.is_dir():
        raise TalonFormatError(f"{str(p)!r} is a folder, not a .t1c file")
    with _hdf5_safety.opened(p) as (raw, mm):
        if not len(mm):
            raise TalonFormatError(f"{p.name} is empty (0 bytes), not an HDF5 model file (an interrupted copy or download?)")
        index = _integrity.verify(mm, p.name)  # before HDF5 parses any byte
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="talon-t1c-read") if prefetch and index else None
        try:
            reads: dict[str, Any] = {}
            if pool is not None and index is not None:
                reads = {path: _integrity.submit(pool, _read_unchecked, raw, entry) for path, entry in sorted(index.items(), key=lambda item: item[1][0])
                         if entry[4] is not None and _PREFETCH_BYTES <= entry[1]}
            with _hdf5_safety.hdf5_file(raw, p) as f:
                reader = _Reader(p, f, index, raw, size=len(mm))
                reader.reads = reads
                reader.census = _hdf5_safety.inspect(f, reader.fail)
                _integrity.check_global_heaps(mm, p.name, reader.census.numeric_ranges)
                yield reader
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)  # before the file closes


#: Arrays of at least this many bytes are prefetched by _open's worker; smaller ones are read when needed.
#: Each read on the worker takes the GIL back afterwards, which it waits for (up to the interpreter's 5 ms
#: switch interval) while the reading thread runs: a few large reads overlap well, many small ones do not.
_PREFETCH_BYTES = 64 * 1024


def _version(reader: _Reader) -> str:
    if "version" not in reader.file:
        if "graph" not in reader.file:
            found = sorted(reader.file)[:5]
            raise reader.fail(f"an HDF5 file, but not a TALON model: it has neither '/version' nor '/graph' "
                              f"(its top-level objects: {', '.join(map(repr, found)) or 'none'}); give a .t1c or .nir file")
        raise reader.fail("invalid TALON IR file: missing 'version'")
    text = reader.string(reader.file, "version")
    parsed = _parse_version(text)
    if parsed is None:
        raise reader.fail(f"invalid format version {text[:40] + '...' if len(text) > 40 else text!r}")
    return text


def read_version(path: str | os.PathLike) -> str:
    """The format version string stored in a .t1c file; for a NIR file (any name), "NIR " and its NIR
    version, which is no .t1c format version."""
    with _open(path) as reader:
        try:
            if "graph" not in reader.file and isinstance(reader.file.get("node"), h5py.Group):
                return f"NIR {_version(reader)}"
            return _version(reader)
        except TalonError:
            raise
        except Exception as exc:
            raise reader.fail(f"{type(exc).__name__}: {exc}") from None


def read(path: str | os.PathLike) -> Graph:
    """Read a Graph from a .t1c file (ours or the existing SDK's), or from a NIR file (`.nir` or NIR content).

    Raises TalonFormatError, naming the file, node and field, for anything wrong with the file.
    """
    if Path(path).suffix.lower() == ".nir":  # NIR interop (optional `nir` package), see talon.ir.nir
        from talon.ir.nir import read_nir

        return read_nir(path)
    with _open(path, prefetch=True) as reader:
        f = reader.file
        try:
            if "graph" not in f and isinstance(f.get("node"), h5py.Group):  # NIR content under another name
                from talon.ir.nir import read_nir_hdf5

                return read_nir_hdf5(f, reader.path, reader.census, reader.size)
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
            graph = reader.mirrored_graph(g)
            if graph is None:
                graph = reader.graph(g)
                if "talon_node_order" not in g.attrs:  # the existing SDK's file: flat per-neuron arrays
                    _compact.adopt_flat_neuron_layouts(graph)
            if not reader.sealed:  # a sealed file's shapes are the writer's, every byte checked since
                _check_stored_shapes(graph, reader.path.name)
            return graph
        except TalonError:
            raise
        except Exception as exc:  # any other failure inside h5py or numpy means a damaged file
            raise reader.fail(f"corrupt or unreadable content ({type(exc).__name__}: {exc})") from None
