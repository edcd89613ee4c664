"""The .t1c format: exact round trips (property tests), the existing SDK's sample files and layout,
corrupt files, corruption fuzzing, atomic writes, no pickle, file size, integrity checks."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import select
import stat
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import talon.ir as ir
import talon.ir.format as ir_format
from talon.errors import GraphValidationError, TalonError, TalonFormatError
from talon.ir import Graph
from talon.ir.format import COMPACT_VERSION, TalonFileNotFoundError, TalonFormatWarning

from ._gen import assert_same, assert_same_graph, metadata_dicts, node_of, random_graphs, f32

COMPAT = Path(__file__).resolve().parents[2].parent / "shared" / "compat"
SAMPLES = sorted(p.stem for p in COMPAT.glob("*.t1c")) if COMPAT.is_dir() else []
needs_compat = pytest.mark.skipif(not SAMPLES, reason=f"existing-SDK sample files not found at {COMPAT}")

PRIMITIVES = ir.list_primitives()  # every registered primitive, Graph included
PROPERTY = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def read_from_hdf5_objects(path: Path) -> Graph:
    """Read `path` ignoring its content mirror: what the HDF5 objects alone say (the canonical content)."""
    original = ir_format._Reader.mirrored_graph
    ir_format._Reader.mirrored_graph = lambda self, g: None
    try:
        return ir.read(path)
    finally:
        ir_format._Reader.mirrored_graph = original


def read_from_mirror_only(path: Path) -> Graph:
    """Read `path` failing if the reader builds the graph from the HDF5 objects instead of the mirror
    (the reader also reads the objects, to check the mirror against them: that check is left out)."""
    original, objects, check = ir_format._Reader.graph, ir_format._Reader.objects_graph, ir_format._Reader.check_mirror
    ir_format._Reader.graph = lambda self, g: pytest.fail(f"{path.name}: read from the HDF5 objects, not the mirror")
    ir_format._Reader.objects_graph = lambda self, g: None
    ir_format._Reader.check_mirror = lambda self, graph, objects: None
    try:
        return ir.read(path)
    finally:
        ir_format._Reader.graph, ir_format._Reader.objects_graph, ir_format._Reader.check_mirror = original, objects, check


def round_trip(path: Path, graph: Graph, **kw) -> Graph:
    """Write and read back; the content mirror and the HDF5 objects must read as the same graph, and an
    uncompressed file must be read from its mirror."""
    ir.write(path, graph, **kw)
    back = ir.read(path) if kw.get("compression") else read_from_mirror_only(path)
    assert_same_graph(back, read_from_hdf5_objects(path), "mirror vs HDF5")
    return back


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("t1c")


# ----------------------------------------------------------------------------------------------------
# Property tests: exact round trips
# ----------------------------------------------------------------------------------------------------

shape_lists = st.one_of(st.none(), st.lists(st.lists(st.integers(0, 2**40), max_size=4).map(tuple), max_size=3))


@pytest.mark.parametrize("type_name", PRIMITIVES)
@PROPERTY
@given(data=st.data())
def test_every_primitive_round_trips_exactly(type_name, data, scratch):
    count = data.draw(st.integers(1, 2), label="nodes")
    nodes = {}
    for i in range(count):
        if type_name == "Graph":
            node = data.draw(random_graphs(max_ops=3), label="nested")
            node.validate()
        else:
            node = data.draw(node_of(type_name), label=f"node{i}")
            # Stored shapes are free-form here (these nodes are not connected): any list of shapes.
            node.input_shapes, node.output_shapes = data.draw(shape_lists), data.draw(shape_lists)
        nodes[f"{type_name}.{i}"] = node
    g = Graph(nodes, dt=data.draw(st.floats(min_value=1e-300, max_value=1e300)))
    path = scratch / "prim.t1c"
    back = round_trip(path, g)
    # write() may refine shapes it can infer; what it stored is what g now holds.
    assert_same_graph(g, back)
    # 0.2.0 where a nested graph's metadata holds a JSON entry or an array has an integer form
    assert ir.read_version(path) in (ir.FORMAT_VERSION, COMPACT_VERSION)


@pytest.fixture
def user_cuba(registries):
    import dataclasses

    @ir.register_node
    @dataclasses.dataclass(eq=False, repr=False)
    class FormatTestCuba(ir.CubaLIF):
        """A subclass of a built-in primitive under its own type name."""

    return "FormatTestCuba"


@settings(PROPERTY, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_a_subclass_of_a_primitive_round_trips_exactly(user_cuba, data, tmp_path):
    """The generator draws a subclass within its base's constraints (tests/ir/_gen.py RECIPES), and the
    file keeps its own type."""
    node = data.draw(node_of(user_cuba), label="node")
    g = Graph({"n": node})
    back = round_trip(tmp_path / "sub.t1c", g)
    assert_same_graph(g, back)
    assert type(back.nodes["n"]).type_name == user_cuba


@settings(PROPERTY, max_examples=40)
@given(md=metadata_dicts)
def test_graph_metadata_round_trips_exactly(md, scratch):
    g = Graph(metadata=md, extras={"cyclic_config": md})
    assert_same_graph(g, round_trip(scratch / "md.t1c", g))


@settings(PROPERTY, max_examples=40)
@given(g=random_graphs())
def test_random_graphs_round_trip_exactly(g, scratch):
    g.validate()
    shapes = {n: (node.input_shapes, node.output_shapes) for n, node in g.nodes.items()}
    back = round_trip(scratch / "graph.t1c", g)
    assert {n: (node.input_shapes, node.output_shapes) for n, node in g.nodes.items()} == shapes
    assert_same_graph(g, back)
    # The read graph is usable as it is: it validates to the same shapes.
    back.validate()
    assert {n: (node.input_shapes, node.output_shapes) for n, node in back.nodes.items()} == shapes
    # A second round trip is byte-for-byte stable in content.
    assert_same_graph(back, round_trip(scratch / "graph2.t1c", back))


def test_round_trip_with_compression(tmp_path):
    g = Graph({"input": ir.Input(shape=(64,)), "fc": ir.Affine(weight=f32(128, 64), bias=np.zeros(128, np.float32)),
               "lif": ir.LIF(tau=np.full(128, 2.0), r=np.full(128, 2.0), v_leak=np.zeros(128), v_threshold=np.ones(128)),
               "output": ir.Output()}, [("input", "fc"), ("fc", "lif"), ("lif", "output")], metadata={"arr": np.arange(1000)})
    for comp, level in [("gzip", None), ("gzip", 9), ("lzf", None)]:
        back = round_trip(tmp_path / f"{comp}{level}.t1c", g, compression=comp, compression_level=level)
        assert_same_graph(g, back)
    with pytest.raises(TalonFormatError, match="compression"):
        ir.write(tmp_path / "x.t1c", g, compression="zstd")


def test_strings_with_nul_are_refused_or_kept(tmp_path):
    # HDF5 variable-length strings and link names cannot hold NUL: writing must either keep the value
    # exactly or fail with TalonFormatError, never produce a file that reads differently or not at all.
    cases = {
        "node field": Graph({"h": ir.HybridRegion(name="a\x00b")}),
        "metadata value": Graph(metadata={"k": "a\x00b"}),
        "metadata list": Graph(metadata={"k": ["x", "a\x00b"]}),
        "metadata key": Graph(metadata={"a\x00b": 1}),
        "nested metadata key": Graph(metadata={"d": {"a\x00b": 1}}),
        "node metadata key": Graph({"r": ir.ReLU(metadata={"a\x00b": 1})}),
    }
    bad = []
    for i, (label, g) in enumerate(cases.items()):
        folder = tmp_path / str(i)
        folder.mkdir()
        path = folder / "nul.t1c"
        try:
            ir.write(path, g)
        except TalonFormatError:
            left = sorted(p.name for p in folder.iterdir())  # a refused write leaves nothing behind, not even a temp file
            if left:
                bad.append(f"{label}: refused, but left {left} on disk")
            continue
        try:
            back = ir.read(path)
        except TalonFormatError as exc:
            bad.append(f"{label}: written, but reading fails: {exc}")
            continue
        if back != g:
            bad.append(f"{label}: reads back different content")
    assert bad == [], "\n".join(bad)


def test_lone_surrogates_are_refused_cleanly(tmp_path):
    for g in (Graph({"h": ir.HybridRegion(name="\ud800")}), Graph(metadata={"k": "\udfff"})):
        with pytest.raises(TalonFormatError):
            ir.write(tmp_path / "s.t1c", g)
        assert list(tmp_path.iterdir()) == []


def test_metadata_value_types_round_trip(tmp_path):
    md = {
        "none": None, "t": True, "f": False, "i": -(2**63), "j": 2**63 - 1, "x": -0.0, "nan": float("nan"), "inf": float("-inf"),
        "s": "ünï ✓", "empty": "", "list": [1, 2, 3], "floats": [1.5, float("nan")], "mixed": [None, 1, "x", {"k": [True]}],
        "strs": ["a", ""], "tuple": ("a", "b"), "ituple": (1, 2), "etuple": (), "elist": [], "edict": {}, "bools": [True, False],
        "nested": {"b": {"c": {"d": [[1], [2.5]]}}}, "arr": np.arange(6, dtype=np.int16).reshape(2, 3),
        "farr": np.array([np.nan, -0.0, 1e-45], dtype=np.float32), "barr": np.array([True, False]), "earr": np.zeros((0, 3)),
        "order": {"z": 1, "a": 2, "m": 3}, "dotted.key": 1, " spaced ": 2, "ключ": 3,
    }
    back = round_trip(tmp_path / "md.t1c", Graph(metadata=md))
    assert_same(md, back.metadata)


def test_long_numeric_lists_are_stored_like_arrays(tmp_path):
    md = {"loss": [i / 3 for i in range(1000)], "ids": tuple(range(64)), "short": list(range(63)), "mixed": [1] * 70 + [2.5]}
    p = tmp_path / "lists.t1c"
    back = round_trip(p, Graph(metadata=md))
    assert_same(md, back.metadata)
    index = json.loads(p.read_bytes()[56 : 56 + struct.unpack("<Q", p.read_bytes()[48:56])[0]])["arrays"]
    assert {"/graph/metadata/loss", "/graph/metadata/ids"} <= set(index)  # indexed, digested
    assert not {"/graph/metadata/short", "/graph/metadata/mixed"} & set(index)
    mirror = _mirror_doc(p)["graph"]["metadata"]["d"]
    assert mirror["loss"] == {"l": {"a": "/graph/metadata/loss"}} and mirror["ids"] == {"t": {"a": "/graph/metadata/ids"}}


def test_zero_dim_metadata_arrays_stay_arrays(tmp_path):
    md = {"scalar_array": np.array(1.5, dtype=np.float32), "int_scalar": np.array(3, dtype=np.int64)}
    back = round_trip(tmp_path / "md0.t1c", Graph(metadata=md))
    assert_same(md, back.metadata)


def test_metadata_that_cannot_be_stored(tmp_path):
    for md in ({"x": object()}, {"x": b"bytes"}, {1: "int key"}, {"": 1}, {"a/b": 1}, {".": 1}, {"x": 2**64},
               {"x": [1, 2**64]}, {"x": np.array(["a"])}, {"x": np.array([object()])}, {"x": {1.5: 2}}, {"x": {1, 2}}):
        with pytest.raises(TalonFormatError):
            ir.write(tmp_path / "bad.t1c", Graph(metadata=md))
    assert list(tmp_path.iterdir()) == []


def test_extreme_dt_and_shapes(tmp_path):
    for dt in (5e-324, 1e-300, 0.1, 1e300, 1.7976931348623157e308):
        assert_same(round_trip(tmp_path / "dt.t1c", Graph(dt=dt)).dt, dt)
    g = Graph({"input": ir.Input(shape=(2**62, 1)), "output": ir.Output()}, [("input", "output")])
    back = round_trip(tmp_path / "big.t1c", g)
    assert back.nodes["output"].output_shapes == [(2**62, 1)]


def test_awkward_node_names_round_trip(tmp_path):
    names = ["type", "nodes", "edges", "metadata", "version", "graph", "features.0.conv", "a.b", "...", " lead", "trail ", "ü🧠",
             "x" * 300, "tab\tnew\nline", "back\\slash", "#1", "@attr"]
    nodes = {"input": ir.Input(shape=(2,))}
    edges, prev = [], "input"
    for name in names:
        nodes[name] = ir.ReLU()
        edges.append((prev, name))
        prev = name
    nodes["output"] = ir.Output()
    edges.append((prev, "output"))
    g = Graph({k: nodes[k] for k in sorted(nodes, key=lambda k: -len(k))}, edges).validate()
    assert_same_graph(g, round_trip(tmp_path / "names.t1c", g))


def test_user_primitive_unknown_at_read_time(tmp_path, monkeypatch):
    import dataclasses

    from talon.ir import node as node_module
    from talon.ir.node import real

    monkeypatch.setattr(node_module, "_REGISTRY", dict(node_module._REGISTRY))

    @ir.register_node
    @dataclasses.dataclass(eq=False, repr=False)
    class FormatTestGain(ir.Node):
        gain: float = real(1.0)

    g = Graph({"input": ir.Input(shape=(2,)), "g": FormatTestGain(gain=2.5), "output": ir.Output()}, [("input", "g"), ("g", "output")])
    assert round_trip(tmp_path / "u.t1c", g) == g
    del node_module._REGISTRY["FormatTestGain"]
    with pytest.raises(TalonFormatError) as info:
        ir.read(tmp_path / "u.t1c")
    msg = str(info.value)
    assert "u.t1c" in msg and "'g'" in msg and "FormatTestGain" in msg and "register_node" in msg


def unseal(p):
    """Drop TALON's sealed index, as a tool editing the file without knowing it would leave it.

    Files patched in place with h5py below stand for files written by other tools: the reader must then
    validate them from the HDF5 content alone (a still-sealed patched file fails its checksum first).
    """
    b = bytearray(p.read_bytes())
    b[0:8] = bytes(8)
    p.write_bytes(bytes(b))
    return p


def test_patched_file_fails_the_seal(tmp_path):
    g = Graph({"input": ir.Input(shape=(2,)), "output": ir.Output()}, [("input", "output")])
    p = tmp_path / "s.t1c"
    ir.write(p, g)
    with h5py.File(p, "r+") as f:
        f["graph/nodes/input/shape"][0] = 3
    with pytest.raises(TalonFormatError, match="checksum mismatch") as info:
        ir.read(p)
    assert p.name in str(info.value)
    unseal(p)
    assert ir.read(p).nodes["input"].shape == (3,)


def reseal(p: Path) -> Path:
    """Recompute the seal of a file patched with h5py: a hostile writer can always produce a valid one."""
    from talon.ir import _integrity

    with open(p, "r+b") as f:
        data = bytearray(f.read())
        block, length = struct.unpack("<QQ", data[40:56])
        entries = json.loads(bytes(data[56 : 56 + length]))["arrays"]
        ranges = sorted((e[0], e[1]) for e in entries.values())
        f.seek(8)
        f.write(_integrity._covered(memoryview(bytes(data)), block, ranges))
    return p


def _patch_index(p: Path, change) -> Path:
    """Apply `change` to the sealed index's array entries ({hdf5 path: entry}) and reseal."""
    with open(p, "r+b") as f:
        data = f.read()
        block, length = struct.unpack("<QQ", data[40:56])
        index = json.loads(bytes(data[56 : 56 + length]))
        change(index["arrays"])
        new = json.dumps(index).encode()
        assert 56 + len(new) <= block
        f.seek(40)
        f.write(struct.pack("<QQ", block, len(new)) + new)
    return reseal(p)


def test_index_entries_of_the_wrong_form_are_refused(tmp_path):
    p = tmp_path / "short_entry.t1c"
    ir.write(p, _mirror_graph())
    _patch_index(p, lambda arrays: arrays.__setitem__("/graph/nodes/fc/weight", arrays["/graph/nodes/fc/weight"][:4]))
    with pytest.raises(TalonError) as info:
        ir.read(p)
    assert info.type is TalonFormatError and "damaged TALON index" in str(info.value) and p.name in str(info.value)


def test_a_bad_index_entry_names_its_node_and_field_even_at_exit(tmp_path):
    """Arrays are read on a worker thread; at interpreter shutdown (no new threads) they are read in
    place. Either way a bad entry is reported against the node and field that refer to it."""
    p = tmp_path / "bad_entry.t1c"
    ir.write(p, _mirror_graph())
    _patch_index(p, lambda arrays: arrays["/graph/nodes/fc/weight"].__setitem__(2, "<f8"))
    with pytest.raises(TalonFormatError) as info:
        ir.read(p)
    message = str(info.value)
    assert "'fc'" in message and "'weight'" in message and "does not describe the dataset" in message
    script = textwrap.dedent(f"""
        import atexit, talon.ir as ir
        def load():
            try:
                ir.read({str(p)!r})
            except ir.TalonFormatError as exc:
                print("ERR", exc)
        atexit.register(load)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"ERR {message}"


@pytest.mark.skipif(not hasattr(os, "fork") or not Path("/proc/self/fd").is_dir(), reason="needs fork and /proc")
def test_files_replaced_in_a_forked_child_are_released(tmp_path):
    """multiprocessing forks on Linux: the child's writes must release the files they replace too."""
    script = textwrap.dedent(f"""
        import os, threading, numpy as np, talon.ir as ir
        g = ir.Graph({{"input": ir.Input(shape=(4,)), "fc": ir.Affine(weight=np.ones((3, 4), np.float32), bias=np.zeros(3, np.float32)), "output": ir.Output()}},
                     [("input", "fc"), ("fc", "output")])
        path = {str(tmp_path / "m.t1c")!r}
        ir.write(path, g); ir.write(path, g)
        pid = os.fork()
        if pid == 0:
            for _ in range(10):
                ir.write(path, g)
            for t in threading.enumerate():
                if t.name == "talon-release":
                    t.join()
            held = [os.readlink(f"/proc/self/fd/{{fd}}") for fd in os.listdir("/proc/self/fd") if os.path.islink(f"/proc/self/fd/{{fd}}")]
            print("deleted", sum("(deleted)" in h for h in held), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "deleted 0", (out.stdout, out.stderr)


def test_write_into_a_folder_that_refuses_new_files(tmp_path, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(TalonError) as info:
        ir.write(tmp_path / "model.t1c", _small_graph())
    assert info.type is TalonFormatError and "model.t1c" in str(info.value) and "Permission denied" in str(info.value)


def _mirror_doc(p: Path) -> dict:
    with h5py.File(p, "r") as f:
        return json.loads(f["graph"].attrs["talon_mirror"])


def _patch_mirror(p: Path, doc: dict | str) -> None:
    with h5py.File(p, "r+") as f:
        f["graph"].attrs.create("talon_mirror", data=doc if isinstance(doc, str) else json.dumps(doc), dtype=h5py.string_dtype("utf-8"))
    reseal(p)


def _mirror_graph() -> Graph:
    return Graph({"input": ir.Input(shape=(3,)), "fc": ir.Affine(weight=f32(2, 3), bias=np.zeros(2, np.float32)),
                  "lif": ir.LIF(tau=np.full(2, 5.0), r=np.full(2, 5.0), v_leak=np.zeros(2), v_threshold=np.ones(2)),
                  "output": ir.Output()}, [("input", "fc"), ("fc", "lif"), ("lif", "output")],
                 metadata={"k": [1, 2.5, None, ("a", np.arange(3))], "nan": float("nan")}, extras={"cyclic_config": {"z": 1}})


def test_mirror_field_unknown_to_this_reader_is_ignored_with_a_warning(tmp_path):
    g, p = _mirror_graph(), tmp_path / "newer.t1c"
    ir.write(p, g)
    doc = _mirror_doc(p)
    next(n for n in doc["graph"]["nodes"] if n[0] == "fc")[2]["gain"] = 1.0  # a field of a newer primitive version
    _patch_mirror(p, doc)
    with pytest.warns(TalonFormatWarning, match="'fc'.*unknown field 'gain'"):
        assert_same_graph(g, ir.read(p))


def test_short_reads_and_writes_are_completed(tmp_path, monkeypatch):
    """The OS may move fewer bytes per call than asked (Linux caps one read or write at ~2 GiB)."""
    g, p = _mirror_graph(), tmp_path / "short.t1c"
    real_pwrite, real_preadv = os.pwrite, os.preadv
    monkeypatch.setattr(os, "pwrite", lambda fd, data, off: real_pwrite(fd, memoryview(data)[:7], off))
    monkeypatch.setattr(os, "preadv", lambda fd, bufs, off: real_preadv(fd, [memoryview(bufs[0])[:5]], off))
    ir.write(p, g)
    assert_same_graph(g, read_from_mirror_only(p))
    assert_same_graph(g, read_from_hdf5_objects(p))


def test_write_without_fallocate_or_pwrite(tmp_path, monkeypatch):
    """macOS has no posix_fallocate, Windows no pwrite/preadv: writes and reads still work."""
    g, p = _mirror_graph(), tmp_path / "portable.t1c"
    for name in ("posix_fallocate", "pwrite", "preadv"):
        monkeypatch.delattr(os, name)
    ir.write(p, g)
    assert_same_graph(g, read_from_mirror_only(p))


def test_write_and_read_from_an_atexit_handler(tmp_path):
    """Saving a model on exit: at interpreter shutdown no new worker thread can start."""
    script = textwrap.dedent(f"""
        import atexit, numpy as np, talon.ir as ir
        g = ir.Graph({{"input": ir.Input(shape=(300,)), "fc": ir.Affine(weight=np.ones((200, 300), np.float32), bias=np.zeros(200, np.float32)), "output": ir.Output()}},
                     [("input", "fc"), ("fc", "output")])
        def save():
            ir.write({str(tmp_path / "exit.t1c")!r}, g)
            ir.write({str(tmp_path / "exit.t1c")!r}, g)  # over the first: the replaced file is closed here and now
            assert ir.read({str(tmp_path / "exit.t1c")!r}) == g
            print("saved and read")
        atexit.register(save)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "saved and read" in out.stdout, out.stderr


def test_graph_extras_named_like_the_files_own_objects_are_refused(tmp_path):
    for key in ("nodes", "edges", "metadata", "type", "allow_cycles"):
        with pytest.raises(TalonFormatError, match=f"extras may not be named \\['{key}'\\]"):
            ir.write(tmp_path / "x.t1c", Graph(extras={key: 1}))
    assert list(tmp_path.iterdir()) == []


_json_leaves = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def _json_paths(doc, prefix=()):
    """Every position in a JSON document, as a path of keys and indices."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _json_paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _json_paths(v, prefix + (i,))


@pytest.mark.filterwarnings("ignore::talon.ir.format.TalonFormatWarning")
@settings(PROPERTY, max_examples=int(os.environ.get("TALON_MUTATION_EXAMPLES", 60)))
@given(data=st.data())
def test_any_resealed_mirror_mutation_reads_or_fails_cleanly(data, scratch):
    """A hostile writer can change the mirror and recompute the seal: whatever it writes, reading gives a
    Graph or a TalonFormatError naming the file, never another exception (or a hang)."""
    p = scratch / "mut.t1c"
    ir.write(p, _MUTATION_GRAPH)
    doc = _mirror_doc(p)
    paths = [q for q in _json_paths(doc) if q]
    target = data.draw(st.sampled_from(paths), label="position")
    parent = doc
    for k in target[:-1]:
        parent = parent[k]
    if data.draw(st.booleans(), label="delete") and isinstance(parent, dict):
        del parent[target[-1]]
    else:
        parent[target[-1]] = data.draw(_json_leaves, label="value")
    _patch_mirror(p, json.dumps(doc, allow_nan=True))
    try:
        back = ir.read(p)
    except TalonFormatError as exc:
        assert p.name in str(exc)
    else:
        assert isinstance(back, Graph)


_MUTATION_GRAPH = Graph(
    {"input": ir.Input(shape=(3,)), "fc": ir.Affine(weight=np.arange(6, dtype=np.float32).reshape(2, 3), bias=np.zeros(2, np.float32)),
     "lif": ir.LIF(tau=np.full(2, 5.0), r=np.full(2, 5.0), v_leak=np.zeros(2), v_threshold=np.ones(2)),
     "c": ir.Conv2d(weight=np.ones((1, 1, 1, 1), np.float32), bias=np.zeros(1, np.float32), stride=(2, 2)), "output": ir.Output()},
    [("input", "fc"), ("fc", "lif"), ("lif", "output")],
    metadata={"k": [1, 2.5, None, ("a", np.arange(3))], "s": "x", "n": {"deep": [1, [2, {"z": 0.5}]]}},
)


def test_sealed_files_are_read_from_the_content_mirror(tmp_path, monkeypatch):
    g, p = _mirror_graph(), tmp_path / "m.t1c"
    ir.write(p, g)
    assert_same_graph(g, read_from_mirror_only(p))


def test_files_without_a_usable_mirror_are_read_from_the_hdf5_objects(tmp_path):
    g = _mirror_graph()
    ir.write(tmp_path / "gz.t1c", g, compression="gzip")
    with h5py.File(tmp_path / "gz.t1c", "r") as f:
        assert "talon_mirror" not in f["graph"].attrs  # compressed arrays have no index entry to refer to
    assert_same_graph(g, ir.read(tmp_path / "gz.t1c"))
    # A mirror of a version this reader does not know is ignored: the HDF5 objects are canonical.
    p = tmp_path / "v2.t1c"
    ir.write(p, g)
    _patch_mirror(p, {"v": 2, "graph": "something else"})
    assert_same_graph(g, ir.read(p))


@pytest.mark.parametrize("damage", [
    "not json", "list", "no graph", "node type", "array path", "inline array", "value tag", "edges",
    "dt", "metadata", "ints", "field value", "repeated array", "bad key", "big int", "bool weight", "shapes", "extras name",
    "inline shape", "deep",
])
def test_malformed_mirror_in_a_sealed_file_is_a_format_error(tmp_path, damage):
    p = tmp_path / "bad.t1c"
    ir.write(p, _mirror_graph())
    doc = _mirror_doc(p)
    nodes = {n[0]: n for n in doc["graph"]["nodes"]}
    if damage == "not json":
        doc = "{not json"
    elif damage == "list":
        doc = {"v": 1, "graph": []}
    elif damage == "no graph":
        del doc["graph"]
    elif damage == "node type":
        nodes["fc"][1] = "NoSuchType"
    elif damage == "repeated array":  # one 2-D weight referred to again: the second copy would be free memory
        nodes["lif"][2]["tau"] = nodes["fc"][2]["weight"]
        nodes["lif"][2]["r"] = nodes["fc"][2]["weight"]
    elif damage == "bad key":
        doc["graph"]["metadata"] = {"d": {"a/b": 1}}
    elif damage == "big int":
        doc["graph"]["metadata"] = {"d": {"k": 10**30}}
    elif damage == "bool weight":
        nodes["fc"][2]["weight"] = {"x": ["|b1", [2, 3], "01" * 6]}
    elif damage == "shapes":
        doc["graph"]["shapes"]["fc"] = ["12", None]
    elif damage == "extras name":
        doc["graph"]["extras"] = {"nodes": 1}
    elif damage == "inline shape":
        nodes["fc"][2]["weight"] = {"x": ["<f4", "6", "00" * 24]}
    elif damage == "deep":  # nested past any recursion limit (spliced in: json.dumps could not write it)
        doc["graph"]["metadata"] = {"d": {"k": "DEEP"}}
    elif damage == "array path":
        nodes["fc"][2]["weight"] = {"a": "/graph/nodes/elsewhere/weight"}
    elif damage == "inline array":
        nodes["fc"][2]["weight"] = {"x": ["<f4", [2, 3], "00"]}
    elif damage == "value tag":
        nodes["fc"][2]["weight"] = {"q": 1}
    elif damage == "edges":
        doc["graph"]["edges"].append(["fc", "ghost"])
    elif damage == "dt":
        doc["graph"]["dt"] = -1.0
    elif damage == "metadata":
        doc["graph"]["metadata"] = [1]
    elif damage == "ints":
        nodes["input"][2]["shape"] = [3.5]
    elif damage == "field value":
        nodes["lif"][2]["tau"] = "five"
    if damage == "deep":
        doc = json.dumps(doc).replace('"DEEP"', '{"l":[' * 100_000 + "1" + "]}" * 100_000)
    _patch_mirror(p, doc)
    with pytest.raises(TalonFormatError) as info:
        ir.read(p)
    assert "bad.t1c" in str(info.value)


def test_version_handling(tmp_path):
    g = Graph({"input": ir.Input(shape=(2,)), "output": ir.Output()}, [("input", "output")])
    path = tmp_path / "v.t1c"
    ir.write(path, g)
    assert ir.read_version(path) == ir.FORMAT_VERSION == "0.1.0"

    def with_version(text):
        p = tmp_path / f"v_{text}.t1c"
        p.write_bytes(path.read_bytes())
        with h5py.File(p, "r+") as f:
            del f["version"]
            f.create_dataset("version", data=text, dtype=h5py.string_dtype("utf-8"))
        return unseal(p)

    # Patch-level differences read; a newer major.minor is refused, naming the version.
    assert ir.read(with_version("0.1.7")) == g
    assert ir.read(with_version("0.0.1")) == g
    for newer in ("0.3.0", "1.0.0", "9.9.9"):
        p = with_version(newer)
        with pytest.raises(TalonFormatError, match="newer format version") as info:
            ir.read(p)
        assert newer in str(info.value) and p.name in str(info.value)
        assert ir.read_version(p) == newer
    for junk in ("abc", "", "1.2.3.4", "1..2", "-1.0"):
        p = with_version(junk)
        with pytest.raises(TalonFormatError, match="version"):
            ir.read(p)
        with pytest.raises(TalonFormatError, match="version"):
            ir.read_version(p)


def test_missing_and_invalid_paths(tmp_path):
    with pytest.raises(TalonFileNotFoundError) as info:
        ir.read(tmp_path / "nope.t1c")
    assert isinstance(info.value, TalonFormatError) and isinstance(info.value, FileNotFoundError)
    assert "nope.t1c" in str(info.value)
    with pytest.raises(TalonFileNotFoundError):
        ir.read_version(tmp_path / "nope.t1c")
    with pytest.raises(TalonFormatError):
        ir.read(tmp_path)
    with pytest.raises(TalonFormatError, match="Graph"):
        ir.write(tmp_path / "x.t1c", ir.ReLU())
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------------
# The existing SDK's sample files
# ----------------------------------------------------------------------------------------------------


def _json(name: str) -> dict:
    return json.loads((COMPAT / f"{name}.json").read_text())


def _decode_described(desc):
    """The JSON's {"kind": ..., "value"/"items": ...} description -> the Python value."""
    if desc is None:
        return None
    kind = desc.get("kind")
    if kind == "dict":
        return {k: _decode_described(v) for k, v in desc["items"].items()}
    if kind == "tuple":
        return tuple(desc["value"])
    return desc["value"]


def _check_field(where: str, ours, desc) -> None:
    if not isinstance(desc, dict):  # e.g. 'shape (HDF5 dataset "shape")': [3]
        assert tuple(ours) == tuple(desc), where
        return
    kind = desc["kind"]
    if kind == "ndarray":
        arr = np.asarray(ours, dtype=desc["dtype"]) if not isinstance(ours, np.ndarray) else ours
        if not isinstance(ours, np.ndarray):
            # Stored as an array by that SDK, held as an int tuple by ours (e.g. SGhostConv strides).
            assert desc["dtype"].startswith("int"), where
        assert str(arr.dtype) == desc["dtype"], f"{where}: dtype {arr.dtype} vs {desc['dtype']}"
        assert list(arr.shape) == desc["shape"], f"{where}: shape {arr.shape} vs {desc['shape']}"
        first = arr.reshape(-1)[: len(desc["first"])].tolist()
        assert first == desc["first"], f"{where}: first values {first} vs {desc['first']}"
        assert float(arr.astype(np.float64).sum()) == pytest.approx(desc["sum"], rel=1e-6, abs=1e-6), where
        assert hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()[:16] == desc["sha256"], f"{where}: raw bytes differ"
    elif kind == "dict":
        assert_same(ours, _decode_described(desc), where)
    elif kind == "tuple":
        assert ours == tuple(desc["value"]), where
    else:
        value = desc["value"]
        assert type(ours) is {"int": int, "float": float, "bool": bool, "str": str}[kind], f"{where}: {type(ours)}"
        assert ours == value, f"{where}: {ours!r} vs {value!r}"


def _field_name(key: str) -> str:
    m = re.match(r'^(\w+) \(HDF5 dataset "(\w+)"\)$', key)
    return m.group(2) if m else key


@needs_compat
@pytest.mark.parametrize("name", SAMPLES)
def test_compat_sample_reads_as_described(name):
    spec = _json(name)
    with h5py.File(COMPAT / f"{name}.t1c", "r") as f:
        assert "talon_node_order" not in f["graph"].attrs  # the premise: that SDK stores no order
    g = ir.read(COMPAT / f"{name}.t1c")
    assert ir.read_version(COMPAT / f"{name}.t1c") == spec["format_version"]
    assert len(g.nodes) == spec["node_count"] and len(g.edges) == spec["edge_count"]
    # Node order: recovered topologically, ties by name.
    order = list(g.nodes)
    assert sorted(order) == sorted(spec["node_insertion_order"])
    if name == "recurrent":
        # A valid order: it starts at the input and only the edge closing the loop points backwards.
        assert order[0] == "input"
        pos = {n: i for i, n in enumerate(order)}
        backward = [(s, d) for s, d in g.edges if pos[s] >= pos[d]]
        loop = set(g.cycles()[0])
        assert len(backward) == 1 and set(backward[0]) <= loop, backward
    else:
        assert order == spec["node_insertion_order"]
    assert g.edges == [tuple(e) for e in spec["edges_in_file_order"]]
    # Every node's type and every field's value.
    for node_name, nspec in spec["nodes"].items():
        node = g.nodes[node_name]
        assert node.type_name == nspec["type"], node_name
        for key, desc in nspec["fields"].items():
            field = _field_name(key)
            assert field in type(node).field_specs(), f"{node_name}: {type(node).__name__} has no field {field!r}"
            _check_field(f"{name}:{node_name}.{field}", getattr(node, field), desc)
    # Graph-level fields.
    gf = spec["graph_fields"]
    assert_same(g.metadata, _decode_described(gf["metadata"]) if gf["metadata"] else {})
    assert g.is_dag == gf["is_dag"] == (not gf["allow_cycles"])
    expected_extras = {k: _decode_described(gf[k]) for k in ("cyclic_config", "quantization_config", "target_hardware") if gf.get(k) is not None}
    assert_same(g.extras, expected_extras)


def _check_sdk_shape(where, ours, theirs):
    """That SDK records a node's full output shape, or only its channel count, or only its element count."""
    ours = tuple(ours)
    if len(theirs) == len(ours):
        assert ours == tuple(theirs), where
    else:
        assert len(theirs) == 1 and theirs[0] in (ours[0], int(np.prod(ours))), f"{where}: ours {ours}, that SDK's {theirs}"


@needs_compat
@pytest.mark.parametrize("name", [s for s in SAMPLES if s != "all_primitives"])
def test_compat_sample_validates_to_the_recorded_shapes(name):
    spec = _json(name)
    g = ir.read(COMPAT / f"{name}.t1c").validate()
    for node_name, nspec in spec["nodes"].items():
        theirs = nspec["in_memory_output_type_before_write"].get("output")
        if theirs is not None:
            _check_sdk_shape(f"{name}:{node_name}", g.nodes[node_name].output_shapes[0], theirs)
    assert g.nodes["input"].output_shapes == [tuple(spec["nodes"]["input"]["in_memory_output_type_before_write"]["output"])]


def test_all_primitives_sample_is_storage_only():
    if "all_primitives" not in SAMPLES:
        pytest.skip(f"existing-SDK sample files not found at {COMPAT}")
    g = ir.read(COMPAT / "all_primitives.t1c")
    with pytest.raises(GraphValidationError):
        g.validate()
    # Built-in primitives only: other tests may have registered user-defined ones by now.
    from talon.ir.primitives import __all__ as builtin

    assert {n.type_name for n in g.nodes.values()} >= set(builtin) - {"RESET_MODES"} - {
        "Graph", "Linear", "Scale", "SumPool2d", "CubaLIF", "LI", "Integrator", "Threshold", "Delay", "Alpha", "ALIF"}


_LAYOUT = re.compile(r"^([\w-]+)\[([\d, ]*)\]$")


def _check_layout(where: str, obj, layout) -> None:
    if isinstance(layout, dict):
        assert isinstance(obj, h5py.Group), f"{where}: should be a group"
        for key, sub in layout.items():
            assert key in obj, f"{where}/{key} missing"
            _check_layout(f"{where}/{key}", obj[key], sub)
        return
    assert isinstance(obj, h5py.Dataset), f"{where}: should be a dataset"
    m = _LAYOUT.match(layout)
    assert m, f"unparsed layout {layout!r}"
    kind, dims = m.group(1), m.group(2)
    shape = tuple(int(d) for d in dims.split(",")) if dims.strip() else ()
    assert obj.shape == shape, f"{where}: shape {obj.shape} vs {shape}"
    if kind == "vlen-utf8-str":
        info = h5py.check_string_dtype(obj.dtype)
        assert info is not None and info.encoding == "utf-8" and info.length is None, f"{where}: {obj.dtype} is not vlen UTF-8"
    elif kind == "bool":
        assert isinstance(obj.id.get_type(), h5py.h5t.TypeEnumID), f"{where}: bool should be an HDF5 enum"
        assert obj.dtype == np.bool_
    else:
        assert obj.dtype == np.dtype(kind), f"{where}: dtype {obj.dtype} vs {kind}"


@needs_compat
@pytest.mark.parametrize("name", SAMPLES)
def test_compat_sample_written_back_keeps_the_layout(name, tmp_path):
    spec = _json(name)
    g = ir.read(COMPAT / f"{name}.t1c")
    if name != "all_primitives":
        g.validate()
    out = tmp_path / f"{name}.t1c"
    ir.write(out, g)
    with h5py.File(out, "r") as f:
        _check_layout("/version", f["version"], "vlen-utf8-str[]")
        _check_layout("/graph/type", f["graph/type"], "vlen-utf8-str[]")
        assert f["graph/type"][()].decode() == "Graph"
        for end in ("src", "dst"):
            _check_layout(f"/graph/edges/{end}", f[f"graph/edges/{end}"], f"vlen-utf8-str[{spec['edge_count']}]")
        assert [(s.decode(), d.decode()) for s, d in zip(f["graph/edges/src"][()], f["graph/edges/dst"][()])] == \
            [tuple(e) for e in spec["edges_in_file_order"]]
        for node_name, nspec in spec["nodes"].items():
            group = f["graph/nodes"][node_name]
            assert group["type"][()].decode() == nspec["type"]
            for field, layout in nspec["hdf5_layout"].items():
                assert field in group, f"{name}:{node_name}/{field} not written"
                _check_layout(f"{name}:{node_name}/{field}", group[field], layout)
        gf = spec["graph_fields"]
        if gf["allow_cycles"]:
            _check_layout("/graph/allow_cycles", f["graph/allow_cycles"], "bool[]")
            assert f["graph/allow_cycles"][()] == True  # noqa: E712
        else:
            assert "allow_cycles" not in f["graph"]
        for key in ("metadata", "cyclic_config"):
            if gf.get(key):
                assert isinstance(f["graph"][key], h5py.Group)
                for k, v in gf[key]["items"].items():
                    _check_layout(f"/graph/{key}/{k}", f["graph"][key][k], {"int": "int64[]", "str": "vlen-utf8-str[]", "float": "float64[]"}[v["kind"]])
    back = ir.read(out)
    assert_same_graph(g, back)


# ----------------------------------------------------------------------------------------------------
# corrupt/ cases
# ----------------------------------------------------------------------------------------------------

# case -> (strings the message must contain, read_version's result or None when it must raise too)
CORRUPT = {
    "bad_bias_shape": (["'fc1'", "bias"], "0.0.1"),
    "dangling_edge": (["'ghost'", "'lif2'"], "0.0.1"),
    "empty": (["HDF5"], None),
    "future_version": (["newer format version", "9.9.9"], "9.9.9"),
    "missing_edges": (["'edges'"], "0.0.1"),
    "missing_type": (["'fc1'", "'type'"], "0.0.1"),
    "missing_version": (["'version'"], None),
    "missing_weight": (["'fc1'", "'weight'"], "0.0.1"),
    "random_bytes": (["HDF5"], None),
    "truncated_half": (["HDF5"], None),
    "unknown_type": (["'fc1'", "FooBar"], "0.0.1"),
}


@needs_compat
@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_case(case):
    path = COMPAT / "corrupt" / f"{case}.t1c"
    if not path.exists():
        pytest.skip(f"{path} not found")
    needles, version = CORRUPT[case]
    with pytest.raises(TalonError) as info:
        ir.read(path)
    assert info.type is TalonFormatError, f"{case}: {info.type.__name__}"
    msg = str(info.value)
    assert path.name in msg, msg
    for needle in needles:
        assert needle in msg, f"{case}: {needle!r} not in {msg!r}"
    if version is None:
        with pytest.raises(TalonError) as vinfo:
            ir.read_version(path)
        assert vinfo.type is TalonFormatError and path.name in str(vinfo.value)
    else:
        assert ir.read_version(path) == version


@needs_compat
def test_corrupt_extra_field_reads_with_a_warning():
    path = COMPAT / "corrupt" / "extra_field.t1c"
    with pytest.warns(TalonFormatWarning) as record:
        g = ir.read(path)
    msg = " ".join(str(w.message) for w in record)
    assert "bogus" in msg and "'fc1'" in msg and path.name in msg
    assert g == ir.read(COMPAT / "mlp_lif.t1c")
    assert ir.read_version(path) == "0.0.1"


@needs_compat
def test_existing_sdk_behaviour_file_lists_exactly_our_cases():
    recorded = json.loads((COMPAT / "corrupt" / "existing_sdk_behaviour.json").read_text())
    assert {Path(k).stem for k in recorded} == set(CORRUPT) | {"extra_field"}


# ----------------------------------------------------------------------------------------------------
# Corruption fuzzing
# ----------------------------------------------------------------------------------------------------


def _fuzz_graphs() -> dict[str, Graph]:
    rng = np.random.default_rng(7)
    big = Graph(
        {"input": ir.Input(shape=(100,)), "big": ir.Affine(weight=rng.standard_normal((1000, 100)).astype(np.float32), bias=np.zeros(1000, np.float32)),
         "lif": ir.LIF(tau=np.full(1000, 2.0), r=np.full(1000, 2.0), v_leak=np.zeros(1000), v_threshold=np.ones(1000)),
         "fc2": ir.Affine(weight=rng.standard_normal((10, 1000)).astype(np.float32), bias=np.ones(10, np.float32)), "output": ir.Output()},
        [("input", "big"), ("big", "lif"), ("lif", "fc2"), ("fc2", "output")],
        dt=0.5, metadata={"name": "big", "nested": {"list": [1, 2, 3], "text": "ünï", "arr": np.arange(50)}},
    )
    nodes = {"input": ir.Input(shape=(4,))}
    edges, prev = [], "input"
    for k in range(10):  # > 8 links per group: HDF5 switches to dense (fractal heap) link storage
        for name, node in ((f"features.{k}", ir.Affine(weight=f32(4, 4), bias=f32(4))), (f"act{k}", ir.ReLU(negative_slope=0.1 * k))):
            nodes[name] = node
            edges.append((prev, name))
            prev = name
    inner = Graph({"i": ir.Input(shape=(4,)), "h": ir.HybridRegion(mode="ann", name="zöne"), "o": ir.Output()}, [("i", "h"), ("h", "o")],
                  metadata={"z": [1, "a"]})
    nodes.update(blk=inner, output=ir.Output())
    edges += [(prev, "blk"), ("blk", "output")]
    many = Graph(nodes, edges, metadata={"keys": {f"k{i}": i for i in range(12)}, "s": ["a", "b"]},
                 extras={"cyclic_config": {"max_iterations": 5, "termination": "fixed"}})
    return {"big": big, "many": many, "big_gzip": big}


_FUZZ_CHILD = textwrap.dedent("""
    import json, sys, warnings
    sys.path.insert(0, sys.argv[1])
    from ir._gen import assert_same_graph
    import talon.ir as ir
    from talon.errors import TalonFormatError
    warnings.simplefilter("ignore")
    jobs = json.load(open(sys.argv[2]))
    originals = {}
    for i, job in enumerate(jobs):
        if job["case"] not in originals:
            originals[job["case"]] = (open(job["src"], "rb").read(), ir.read(job["src"]))
        data, graph = originals[job["case"]]
        b = bytearray(data)
        if job["kind"] == "trunc":
            b = b[: job["pos"]]
        else:
            b[job["pos"]] ^= 1 << job["bit"]
        with open(job["dst"], "wb") as fh:
            fh.write(bytes(b))
        print("BEGIN", i, flush=True)
        try:
            back = ir.read(job["dst"])
        except TalonFormatError:
            outcome = "error"
        except BaseException as exc:
            outcome = "BAD: raised %s: %s" % (type(exc).__name__, str(exc)[:200])
        else:
            try:
                assert_same_graph(graph, back)
                outcome = "same"
            except AssertionError as exc:
                outcome = "BAD: read different content: %s" % str(exc)[:200]
        print("END", i, outcome, flush=True)
""")


def _run_jobs(jobs: list[dict], workdir: Path, per_job_timeout: float = 15.0) -> dict[int, str]:
    """Run the read jobs in a child process; a job that hangs is recorded and the child restarted."""
    results: dict[int, str] = {}
    start = 0
    while start < len(jobs):
        job_file = workdir / "jobs.json"
        job_file.write_text(json.dumps(jobs[start:]))
        proc = subprocess.Popen([sys.executable, "-c", _FUZZ_CHILD, str(Path(__file__).resolve().parents[1]), str(job_file)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        current, deadline, buf = None, time.monotonic() + 60, ""
        try:
            while True:
                ready, _, _ = select.select([proc.stdout], [], [], 0.5)
                if ready:
                    line = proc.stdout.readline()
                    if not line:
                        proc.wait()
                        if current is not None:  # the child died inside a read (a crash of HDF5, say)
                            results[start + current] = f"BAD: reader process died with code {proc.returncode}: {buf[-300:]}"
                            start += current + 1
                        else:
                            start = len(jobs)
                        break
                    parts = line.split(" ", 2)
                    if parts[0] == "BEGIN":
                        current, deadline = int(parts[1]), time.monotonic() + per_job_timeout
                    elif parts[0] == "END":
                        results[start + int(parts[1])] = parts[2].strip()
                        current = None
                        if start + int(parts[1]) == len(jobs) - 1:
                            start = len(jobs)
                    else:
                        buf += line
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    idx = start + (current if current is not None else 0)
                    results[idx] = f"BAD: read did not finish within {per_job_timeout:.0f} s (hang)"
                    start = idx + 1
                    break
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def _describe(job: dict) -> str:
    if job["kind"] == "trunc":
        return f"{job['case']}: truncated to {job['pos']} bytes"
    return f"{job['case']}: byte {job['pos']} bit {job['bit']} flipped"


def test_corruption_fuzz(tmp_path):
    graphs = _fuzz_graphs()
    jobs = []
    rnd = random.Random(20261124)
    per_case = 100
    for case, g in graphs.items():
        src = tmp_path / f"{case}.t1c"
        ir.write(src, g, compression="gzip" if case.endswith("gzip") else None)
        assert_same_graph(g, ir.read(src))
        data = src.read_bytes()
        for _ in range(per_case):
            if rnd.random() < 0.2:
                jobs.append(dict(case=case, src=str(src), dst=str(tmp_path / "mutant.t1c"), kind="trunc", pos=rnd.randrange(len(data))))
            else:
                # Most of a big file is array data; aim two thirds of the flips at the first and last 16 KiB,
                # where the superblock, object headers, heaps and strings live.
                if rnd.random() < 2 / 3 and len(data) > 32768:
                    pos = rnd.choice([rnd.randrange(16384), len(data) - 1 - rnd.randrange(16384)])
                else:
                    pos = rnd.randrange(len(data))
                jobs.append(dict(case=case, src=str(src), dst=str(tmp_path / "mutant.t1c"), kind="flip", pos=pos, bit=rnd.randrange(8)))
    results = _run_jobs(jobs, tmp_path)
    assert len(results) == len(jobs)
    bad = [f"{_describe(jobs[i])}: {r}" for i, r in sorted(results.items()) if r.startswith("BAD")]
    assert bad == [], "\n".join(bad)
    outcomes = [r for r in results.values()]
    assert outcomes.count("error") > len(jobs) // 2  # the mutations do hit content


def _global_heap_objects(data: bytes) -> list[tuple[int, int, bytes]]:
    """(offset of the object's header, size, payload) of every object in the file's global heap collections."""
    out = []
    pos = data.find(b"GCOL\x01")
    while pos >= 0:
        size = int.from_bytes(data[pos + 8 : pos + 16], "little")
        p, end = pos + 16, pos + size
        while p + 16 <= end:
            index = int.from_bytes(data[p : p + 2], "little")
            osize = int.from_bytes(data[p + 8 : p + 16], "little")
            if index == 0:
                break
            out.append((p, osize, data[p + 16 : p + 16 + osize]))
            p += 16 + (osize + 7) // 8 * 8
        pos = data.find(b"GCOL\x01", pos + 1)
    return out


def test_damaged_string_heap_does_not_hang_the_reader(tmp_path):
    # Variable-length strings live in HDF5 global heap collections, which carry no checksum. A single
    # flipped bit in a heap object's size field sends HDF5 1.14's heap parser into an endless loop;
    # read() and read_version() must fail with TalonFormatError instead (e.g. by checking the
    # collections before handing the file to HDF5).
    g = Graph({"input": ir.Input(shape=(4,)), "fc": ir.Affine(weight=f32(3, 4), bias=f32(3)),
               "hr": ir.HybridRegion(mode="ann", name="n"), "output": ir.Output()},
              [("input", "fc"), ("fc", "hr"), ("hr", "output")], metadata={"k": "v"})
    src = tmp_path / "g.t1c"
    ir.write(src, g)
    data = src.read_bytes()
    objects = _global_heap_objects(data)
    assert objects, "no global heap found"
    jobs = []
    for header, size, payload in objects:
        if payload == b"ann":
            jobs.append(dict(case="heap", src=str(src), dst=str(tmp_path / "m.t1c"), kind="flip", pos=header + 9, bit=0))  # size 3 -> 259
    assert jobs
    results = _run_jobs(jobs, tmp_path, per_job_timeout=5)
    bad = [f"{_describe(jobs[i])}: {r}" for i, r in sorted(results.items()) if r.startswith("BAD")]
    assert bad == [], "\n".join(bad)


def test_absurd_declared_sizes_are_refused_without_allocating(tmp_path):
    g = Graph({"input": ir.Input(shape=(4,)), "fc": ir.Affine(weight=f32(3, 4), bias=f32(3)), "output": ir.Output()},
              [("input", "fc"), ("fc", "output")])
    src = tmp_path / "g.t1c"
    ir.write(src, g)

    def patched(label, **create):
        p = tmp_path / f"{label}.t1c"
        p.write_bytes(src.read_bytes())
        with h5py.File(p, "r+") as f:
            grp = f["graph/nodes/fc"]
            del grp["weight"]
            grp.create_dataset("weight", **create)  # declared only: no data written
        return unseal(p)

    cases = [
        # 400 MB declared in a gzip-compressed chunked dataset of a few KiB
        patched("chunked", shape=(10_000, 10_000), dtype=np.float32, chunks=(1000, 1000), compression="gzip", fletcher32=True),
        # 4 GB declared in a contiguous dataset whose space is never allocated
        patched("contiguous", shape=(100_000, 10_000), dtype=np.float32),
        # 10**18 elements
        patched("exabyte", shape=(10**9, 10**9), dtype=np.float32, chunks=(1, 1000), compression="gzip"),
    ]
    for p in cases:
        assert p.stat().st_size < 1_000_000
        tracemalloc.start()
        t0 = time.perf_counter()
        try:
            with pytest.raises(TalonFormatError) as info:
                ir.read(p)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert time.perf_counter() - t0 < 5
        assert peak < 50_000_000, f"{p.name}: {peak:,} bytes allocated"
        msg = str(info.value)
        assert p.name in msg and "'fc'" in msg and "weight" in msg, msg


def test_declared_shape_that_contradicts_the_field_rules(tmp_path):
    g = Graph({"input": ir.Input(shape=(4,)), "fc": ir.Affine(weight=f32(3, 4), bias=f32(3)), "output": ir.Output()},
              [("input", "fc"), ("fc", "output")])
    src = tmp_path / "g.t1c"
    ir.write(src, g)
    mutations = {
        "weight_rank": lambda grp: (grp.__delitem__("weight"), grp.create_dataset("weight", data=np.zeros(12, np.float32))),
        "weight_string": lambda grp: (grp.__delitem__("weight"), grp.create_dataset("weight", data="w", dtype=h5py.string_dtype())),
        "weight_group": lambda grp: (grp.__delitem__("weight"), grp.create_group("weight")),
        "weight_bool": lambda grp: (grp.__delitem__("weight"), grp.create_dataset("weight", data=np.ones((3, 4), bool))),
        "weight_complex": lambda grp: (grp.__delitem__("weight"), grp.create_dataset("weight", data=np.ones((3, 4), np.complex64))),
        "type_int": lambda grp: (grp.__delitem__("type"), grp.create_dataset("type", data=3)),
        "type_bad_utf8": lambda grp: (grp.__delitem__("type"), grp.create_dataset("type", data=np.void(b"\xff\xfe"))),
        "bias_empty": lambda grp: (grp.__delitem__("bias"), grp.create_dataset("bias", data=h5py.Empty("f4"))),
    }
    for label, mutate in mutations.items():
        p = tmp_path / f"{label}.t1c"
        p.write_bytes(src.read_bytes())
        with h5py.File(p, "r+") as f:
            mutate(f["graph/nodes/fc"])
        unseal(p)
        with pytest.raises(TalonError) as info:
            ir.read(p)
        assert info.type is TalonFormatError, f"{label}: {info.type.__name__}: {info.value}"
        assert "'fc'" in str(info.value) and p.name in str(info.value), f"{label}: {info.value}"


def test_array_checksum_catches_flipped_weight_bytes(tmp_path):
    w = np.arange(40 * 100, dtype=np.float32).reshape(40, 100) + np.float32(0.1)  # distinctive bytes, no integer form
    g = Graph({"input": ir.Input(shape=(100,)), "fc": ir.Affine(weight=w, bias=np.zeros(40, np.float32)), "output": ir.Output()},
              [("input", "fc"), ("fc", "output")])
    src = tmp_path / "g.t1c"
    ir.write(src, g)
    data = src.read_bytes()
    at = data.find(w.tobytes())
    assert at >= 0, "uncompressed weight bytes not found in the file"
    for offset in (0, 1, 7, 8, w.nbytes // 2, w.nbytes - 1):
        for bit in (0, 7):
            b = bytearray(data)
            b[at + offset] ^= 1 << bit
            p = tmp_path / "flipped.t1c"
            p.write_bytes(bytes(b))
            with pytest.raises(TalonError) as info:
                ir.read(p)
            assert info.type is TalonFormatError
            assert "'fc'" in str(info.value) and "weight" in str(info.value), str(info.value)


def test_array_checksum_detects_reordered_data(tmp_path):
    # Damage is not always a single flipped bit: a misdirected or reordered block moves whole words.
    # Exchanging two different 8-byte words of the weight data must not read back as a valid graph.
    w = np.arange(40 * 100, dtype=np.float32).reshape(40, 100) + np.float32(0.1)  # no integer form: stored as is
    g = Graph({"input": ir.Input(shape=(100,)), "fc": ir.Affine(weight=w, bias=np.zeros(40, np.float32)), "output": ir.Output()},
              [("input", "fc"), ("fc", "output")])
    src = tmp_path / "g.t1c"
    ir.write(src, g)
    data = src.read_bytes()
    at = data.find(w.tobytes())
    assert at >= 0
    undetected = []
    for i, j in [(0, 8), (8, 4096), (0, w.nbytes - 8)]:
        b = bytearray(data)
        b[at + i : at + i + 8], b[at + j : at + j + 8] = data[at + j : at + j + 8], data[at + i : at + i + 8]
        p = tmp_path / "swapped.t1c"
        p.write_bytes(bytes(b))
        try:
            back = ir.read(p)
        except TalonFormatError:
            continue
        undetected.append(f"words at {i} and {j} exchanged: read {'an equal' if back == g else 'a different'} graph")
    assert undetected == [], undetected


def test_fletcher32_catches_flipped_bytes_in_compressed_arrays(tmp_path):
    rng = np.random.default_rng(3)
    w = rng.integers(-3, 3, size=(200, 100)).astype(np.float32)
    g = Graph({"input": ir.Input(shape=(100,)), "fc": ir.Affine(weight=w, bias=np.zeros(200, np.float32)), "output": ir.Output()},
              [("input", "fc"), ("fc", "output")])
    src = tmp_path / "g.t1c"
    ir.write(src, g, compression="gzip")
    with h5py.File(src, "r") as f:
        ds = f["graph/nodes/fc/weight"]
        assert ds.fletcher32 and ds.compression == "gzip"
        offsets = [ds.id.get_chunk_info(i).byte_offset for i in range(ds.id.get_num_chunks())]
        sizes = [ds.id.get_chunk_info(i).size for i in range(ds.id.get_num_chunks())]
    data = src.read_bytes()
    for start, size in zip(offsets, sizes):
        for rel in (0, size // 2, size - 1):
            b = bytearray(data)
            b[start + rel] ^= 0x10
            p = tmp_path / "flipped.t1c"
            p.write_bytes(bytes(b))
            with pytest.raises(TalonError) as info:
                ir.read(p)
            assert info.type is TalonFormatError and "'fc'" in str(info.value), str(info.value)


# ----------------------------------------------------------------------------------------------------
# Atomic writes
# ----------------------------------------------------------------------------------------------------


def _small_graph(**md) -> Graph:
    return Graph({"input": ir.Input(shape=(4,)), "fc": ir.Affine(weight=f32(3, 4), bias=f32(3)), "output": ir.Output()},
                 [("input", "fc"), ("fc", "output")], metadata=md)


def test_write_leaves_no_temporary_files(tmp_path):
    for i in range(3):
        ir.write(tmp_path / "model.t1c", _small_graph(i=i))
    ir.write(str(tmp_path / "other.t1c"), _small_graph(), compression="gzip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.t1c", "other.t1c"]
    assert ir.read(tmp_path / "model.t1c").metadata == {"i": 2}


@pytest.mark.parametrize("bad", [
    {"x": object()},  # refused by the metadata encoder
    {"x": "a\x00b"},  # refused by HDF5 itself, mid-write
    {"ok": np.arange(10), "later": {"deep": [1, object()]}},  # fails after arrays were queued
])
def test_failing_write_leaves_the_existing_file_untouched(tmp_path, bad):
    path = tmp_path / "model.t1c"
    original = _small_graph(version=1)
    ir.write(path, original)
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    with pytest.raises(TalonError) as info:
        ir.write(path, _small_graph(**bad))
    assert info.type is TalonFormatError
    assert str(path.name) in str(info.value)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == ["model.t1c"]
    assert ir.read(path) == original


def test_write_to_a_missing_folder(tmp_path):
    with pytest.raises(TalonError) as info:
        ir.write(tmp_path / "missing" / "model.t1c", _small_graph())
    assert info.type is TalonFormatError and "missing" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def _fsync_log(monkeypatch) -> list[str]:
    """Record fsync calls (on a file or a folder) and renames, in order."""
    import stat as stat_mod

    log: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        log.append("fsync folder" if stat_mod.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        log.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return log


def test_durable_write_flushes_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    log = _fsync_log(monkeypatch)
    path, g = tmp_path / "model.t1c", _small_graph(v=1)
    ir.write(path, g)
    assert log == ["rename"]  # the default, like numpy.save: no flush
    log.clear()
    ir.write(path, _small_graph(v=2), durable=True)
    expected = ["fsync file", "rename"] + (["fsync folder"] if os.name == "posix" else [])
    assert log == expected
    assert ir.read(path).metadata == {"v": 2}


def test_durable_nir_write_flushes_too(tmp_path, monkeypatch):
    pytest.importorskip("nir")
    log = _fsync_log(monkeypatch)
    g = _small_graph()
    ir.write(tmp_path / "model.nir", g, durable=True)
    assert log[:2] == ["fsync file", "rename"]
    assert list(ir.read(tmp_path / "model.nir").nodes) == list(g.nodes)


@pytest.mark.skipif(os.name != "posix", reason="folders are flushed on POSIX only")
def test_durable_write_reports_a_folder_that_cannot_be_flushed(tmp_path, monkeypatch):
    import stat as stat_mod

    real_fsync = os.fsync

    def fsync(fd):
        if stat_mod.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path, g = tmp_path / "model.t1c", _small_graph()
    with pytest.raises(TalonError) as info:
        ir.write(path, g, durable=True)
    assert info.type is TalonFormatError
    assert "was written" in str(info.value) and "power cut" in str(info.value)
    assert ir.read(path) == g  # the rename happened; only its durability is in doubt
    assert [p.name for p in tmp_path.iterdir()] == ["model.t1c"]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to list open files")
def test_replaced_files_are_released(tmp_path):
    """The writer holds the file it replaces open across the rename; it must close it afterwards."""
    import threading

    path = tmp_path / "model.t1c"
    for i in range(5):
        ir.write(path, _small_graph(i=i))
    for t in threading.enumerate():
        if t.name == "talon-release":
            t.join()
    held = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd") if os.path.islink(f"/proc/self/fd/{fd}")]
    assert not [h for h in held if str(tmp_path) in h], held
    assert ir.read(path).metadata == {"i": 4}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_writing_over_a_fifo_is_refused_and_a_symlink_is_replaced(tmp_path):
    """A FIFO (or device) is never replaced nor opened (opening could block forever); a symlink to a
    regular file is replaced by the new file, the file it pointed to left alone."""
    fifo, link, real = tmp_path / "pipe.t1c", tmp_path / "link.t1c", tmp_path / "real.t1c"
    os.mkfifo(fifo)
    with pytest.raises(TalonFormatError, match="FIFO"):
        ir.write(fifo, _small_graph(k="fifo"))
    ir.write(real, _small_graph(k="real"))
    link.symlink_to(real)
    ir.write(link, _small_graph(k="link"))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert not link.is_symlink() and ir.read(link).metadata == {"k": "link"}
    assert ir.read(real).metadata == {"k": "real"}  # os.replace replaces the link, not what it points to


def test_write_relative_path_in_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    g = _small_graph()
    ir.write("rel.t1c", g)
    assert [p.name for p in tmp_path.iterdir()] == ["rel.t1c"] and ir.read("rel.t1c") == g


# ----------------------------------------------------------------------------------------------------
# No pickle, no opaque data
# ----------------------------------------------------------------------------------------------------


def test_files_hold_no_pickles_or_object_references(tmp_path):
    g = Graph({"input": ir.Input(shape=(4,)), "fc": ir.SpikingAffine(weight=f32(3, 4), bias=f32(3), hardware_hints={"pe": "mac", "n": [1, 2]}),
               "lif": ir.LIF(tau=np.full(3, 2.0), r=np.full(3, 2.0), v_leak=np.zeros(3), v_threshold=np.ones(3), reset_mode="subtract"),
               "blk": Graph({"i": ir.Input(shape=(3,)), "r": ir.ReLU(), "o": ir.Output()}, [("i", "r"), ("r", "o")]),
               "output": ir.Output()}, [("input", "fc"), ("fc", "lif"), ("lif", "blk"), ("blk", "output")],
              metadata={"none": None, "list": [1, "a", None, [2.5]], "tuple": ("x",), "arr": np.ones(3), "b": True},
              extras={"cyclic_config": {"max_iterations": 3}})
    path = tmp_path / "g.t1c"
    ir.write(path, g)
    problems = []

    def check_dtype(where, dt):
        if h5py.check_string_dtype(dt) is not None:
            if h5py.check_string_dtype(dt).encoding != "utf-8":
                problems.append(f"{where}: non-UTF-8 string")
            return
        if h5py.check_ref_dtype(dt) is not None or h5py.check_vlen_dtype(dt) is not None:
            problems.append(f"{where}: reference or vlen dtype {dt}")
        elif dt.kind not in "biuf":
            problems.append(f"{where}: dtype {dt} (kind {dt.kind!r})")

    with h5py.File(path, "r") as f:
        def visit(name, obj):
            link = obj.parent.get(name.rsplit("/", 1)[-1], getlink=True) if name else None
            if link is not None and not isinstance(link, h5py.HardLink):
                problems.append(f"{name}: {type(link).__name__}")
            if isinstance(obj, h5py.Dataset):
                check_dtype(name, obj.dtype)
                if isinstance(obj.id.get_type(), h5py.h5t.TypeEnumID) and obj.dtype != np.bool_:
                    problems.append(f"{name}: non-bool enum")
                if obj.id.get_type().get_class() in (h5py.h5t.OPAQUE, h5py.h5t.REFERENCE, h5py.h5t.COMPOUND):
                    problems.append(f"{name}: opaque/reference/compound type")
            for key, value in obj.attrs.items():
                check_dtype(f"{name}@{key}", obj.attrs.get_id(key).dtype)

        for key, value in f.attrs.items():
            check_dtype(f"/@{key}", f.attrs.get_id(key).dtype)
        f.visititems(visit)
    assert problems == []
    raw = path.read_bytes()
    for marker in (b"\x80\x04\x95", b"\x80\x05\x95", b"cnumpy", b"numpy.core.multiarray", b"__reduce__"):
        assert marker not in raw


# ----------------------------------------------------------------------------------------------------
# Size
# ----------------------------------------------------------------------------------------------------


def test_file_size_close_to_raw_array_bytes(tmp_path):
    rng = np.random.default_rng(0)
    g = Graph({"input": ir.Input(shape=(1000,)), "fc": ir.Affine(weight=rng.standard_normal((1000, 1000)).astype(np.float32),
                                                                     bias=rng.standard_normal(1000).astype(np.float32)),
               "lif": ir.LIF(tau=np.full(1000, 2.0, np.float32), r=np.full(1000, 2.0, np.float32), v_leak=np.zeros(1000, np.float32),
                             v_threshold=np.ones(1000, np.float32)),
               "output": ir.Output()}, [("input", "fc"), ("fc", "lif"), ("lif", "output")])
    raw = sum(arr.nbytes for node in g.nodes.values() for _, arr in node.arrays())
    assert raw > 4_000_000
    path = tmp_path / "m.t1c"
    ir.write(path, g)
    size = path.stat().st_size
    assert size <= raw * 1.01 + 16 * 1024, f"{size:,} bytes for {raw:,} raw bytes"
    assert ir.read(path) == g


def test_compression_shrinks_compressible_weights(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.choice(np.array([0.1, -0.3, 0.7], np.float32), size=(1000, 1000))  # few values: compressible (no integer form)
    g = Graph({"input": ir.Input(shape=(1000,)), "fc": ir.Affine(weight=w, bias=np.zeros(1000, np.float32)), "output": ir.Output()},
              [("input", "fc"), ("fc", "output")])
    plain, gz, lzf = tmp_path / "plain.t1c", tmp_path / "gz.t1c", tmp_path / "lzf.t1c"
    ir.write(plain, g)
    ir.write(gz, g, compression="gzip")
    ir.write(lzf, g, compression="lzf")
    assert gz.stat().st_size < plain.stat().st_size * 0.5
    assert lzf.stat().st_size < plain.stat().st_size
    for p in (gz, lzf):
        assert_same_graph(g, ir.read(p))


# ----------------------------------------------------------------------------------------------------
# Import hygiene
# ----------------------------------------------------------------------------------------------------


def test_import_talon_ir_does_not_import_torch():
    code = "import sys, talon.ir, talon.ir.format; bad = [m for m in ('torch', 'snntorch', 'talon.bridge') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_written_files_get_the_usual_permissions(tmp_path):
    """A new file gets 0666 less the umask, as open() gives; a replaced file keeps its own mode."""
    old = os.umask(0o022)
    try:
        path = tmp_path / "model.t1c"
        ir.write(path, _small_graph())
        assert stat_mode(path) == 0o644
        os.chmod(path, 0o640)
        ir.write(path, _small_graph())
        assert stat_mode(path) == 0o640
        os.umask(0o077)
        ir.write(tmp_path / "private.t1c", _small_graph())
        assert stat_mode(tmp_path / "private.t1c") == 0o600
    finally:
        os.umask(old)


def stat_mode(p: Path) -> int:
    import stat as stat_mod

    return stat_mod.S_IMODE(p.stat().st_mode)
