"""Opening an untrusted model file is safe (docs/format.md, "Opening untrusted files").

Every hostile file here is made in the test with h5py, from a file TALON wrote: unsealed (as the
existing SDK's files are), and resealed (anyone can recompute a seal). Reads that could hang run in a
child process (ReadWorker) with a timeout.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import talon.ir as ir
import talon.ir.format as ir_format
from talon.errors import TalonFormatError
from talon.ir import Graph

from ._gen import assert_same_graph, f32
from ._read_worker import ReadWorker
from .test_format import _mirror_doc, _patch_mirror, reseal, unseal

SECRET = b"root:x:0:0:secret-of-the-machine:/root:/bin/bash\n" * 4


def _graph() -> Graph:
    n = 3
    weight = (np.arange(n * 4, dtype=np.float32).reshape(n, 4) - 5) / 7  # the same in every process
    return Graph({"input": ir.Input(shape=(4,)), "fc": ir.Affine(weight=weight, bias=np.zeros(n, np.float32)),
                  "lif": ir.LIF(tau=np.full(n, 5.0), r=np.full(n, 5.0), v_leak=np.zeros(n), v_threshold=np.ones(n)),
                  "output": ir.Output()}, [("input", "fc"), ("fc", "lif"), ("lif", "output")],
                 metadata={"name": "small", "notes": ["a", "b"], "epochs": 3})


def _file(tmp_path: Path, sealed: bool, name: str = "m.t1c") -> Path:
    p = tmp_path / name
    ir.write(p, _graph())
    return p if sealed else unseal(p)


def _patched(tmp_path: Path, sealed: bool, patch, name: str = "m.t1c") -> Path:
    """A file TALON wrote, patched with h5py (`patch(f)`), then resealed or left unsealed."""
    p = _file(tmp_path, sealed, name)
    with h5py.File(p, "r+") as f:
        patch(f)
    return reseal(p) if sealed else p


@pytest.fixture(scope="module")
def worker():
    w = ReadWorker(timeout=30)
    yield w
    w.close()


def _secret(tmp_path: Path) -> Path:
    s = tmp_path / "passwd"
    s.write_bytes(SECRET)
    return s


# ----------------------------------------------------------------------------------------------------
# Data from outside the file
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sealed", [False, True])
def test_external_storage_is_refused(tmp_path, sealed):
    secret = _secret(tmp_path)

    def patch(f):
        del f["graph/metadata/name"]
        f["graph/metadata"].create_dataset("name", shape=(len(SECRET),), dtype="u1", external=[(str(secret), 0, len(SECRET))])

    p = _patched(tmp_path, sealed, patch)
    with h5py.File(p, "r") as f:  # h5py itself does read the secret through it
        assert f["graph/metadata/name"][()].tobytes() == SECRET
    with pytest.raises(TalonFormatError, match="external files") as info:
        ir.read(p)
    assert "/graph/metadata/name" in str(info.value) and p.name in str(info.value)


@pytest.mark.parametrize("sealed", [False, True])
@pytest.mark.parametrize("where", ["graph/metadata/extra", "graph"])
def test_external_links_are_refused_even_the_graph_itself(tmp_path, sealed, where):
    other = tmp_path / "other.t1c"
    ir.write(other, _graph())

    def patch(f):
        if where == "graph":
            del f["graph"]
        f[where] = h5py.ExternalLink(str(other), "/graph" if where == "graph" else "/version")

    p = _patched(tmp_path, sealed, patch)
    with pytest.raises(TalonFormatError, match="external link"):
        ir.read(p)


def test_external_link_to_a_fifo_does_not_block(tmp_path, worker):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    p = _patched(tmp_path, False, lambda f: f["graph/metadata"].__setitem__("x", h5py.ExternalLink(str(fifo), "/x")))
    assert worker.read(p) == "error"


def test_a_fifo_as_the_model_path_is_refused_without_blocking(tmp_path, worker):
    fifo = tmp_path / "model.t1c"
    os.mkfifo(fifo)
    assert worker.read(fifo) == "error"
    with pytest.raises(TalonFormatError, match="not a regular file"):
        ir.read(fifo)


@pytest.mark.parametrize("sealed", [False, True])
def test_virtual_datasets_are_refused(tmp_path, sealed):
    secret_h5 = tmp_path / "src.h5"
    with h5py.File(secret_h5, "w") as s:
        s["data"] = np.frombuffer(SECRET, np.uint8)

    def patch(f):
        layout = h5py.VirtualLayout(shape=(len(SECRET),), dtype="u1")
        layout[:] = h5py.VirtualSource(str(secret_h5), "data", shape=(len(SECRET),))
        f["graph/metadata"].create_virtual_dataset("leak", layout)

    p = _patched(tmp_path, sealed, patch)
    with pytest.raises(TalonFormatError, match="virtual dataset"):
        ir.read(p)


def test_filters_that_need_a_plugin_are_refused(tmp_path):
    p = _patched(tmp_path, False, lambda f: f["graph/metadata"].create_dataset(
        "z", data=np.arange(10.0), chunks=(10,), compression=32015, allow_unknown_filter=True))
    with pytest.raises(TalonFormatError, match="filter 32015"):
        ir.read(p)


def test_plugin_search_is_off_while_reading_and_restored_after(tmp_path, monkeypatch):
    p = _file(tmp_path, True)
    before = [h5py.h5pl.get(i) for i in range(h5py.h5pl.size())]
    seen = []
    original = ir_format._hdf5_safety.inspect
    monkeypatch.setattr(ir_format._hdf5_safety, "inspect", lambda *a: seen.append(h5py.h5pl.size()) or original(*a))
    ir.read(p)
    assert seen == [0]
    assert [h5py.h5pl.get(i) for i in range(h5py.h5pl.size())] == before


@pytest.mark.parametrize("kind", ["soft", "hard"])
def test_soft_links_and_aliased_objects_are_refused(tmp_path, kind):
    def patch(f):
        f["graph/metadata/again"] = h5py.SoftLink("/graph/metadata") if kind == "soft" else f["graph/metadata"]

    with pytest.raises(TalonFormatError, match="soft or user-defined link" if kind == "soft" else "same object"):
        ir.read(_patched(tmp_path, False, patch))


# ----------------------------------------------------------------------------------------------------
# Global heaps: bounded, every object checked, array bytes are not heaps
# ----------------------------------------------------------------------------------------------------

def _heap_objects(data: bytes) -> list[tuple[int, int, int]]:
    """(header offset, index, size) of every object of every global heap collection, free space included."""
    out = []
    pos = data.find(b"GCOL\x01\x00\x00\x00")
    while pos >= 0:
        size = int.from_bytes(data[pos + 8 : pos + 16], "little")
        p, end = pos + 16, pos + size
        while p + 16 <= end:
            idx, osize = int.from_bytes(data[p : p + 2], "little"), int.from_bytes(data[p + 8 : p + 16], "little")
            out.append((p, idx, osize))
            p += osize if idx == 0 else 16 + (osize + 7) // 8 * 8
        pos = data.find(b"GCOL\x01\x00\x00\x00", pos + 1)
    return out


@pytest.mark.parametrize("sealed", [False, True])
@pytest.mark.parametrize("value", [0, 8, 2**64 - 16])
def test_damaged_free_space_in_a_string_heap_is_refused_not_a_hang(tmp_path, worker, sealed, value):
    p = _file(tmp_path, sealed)
    data = bytearray(p.read_bytes())
    free = [h for h, idx, _ in _heap_objects(bytes(data)) if idx == 0]
    assert free, "no free-space object found"
    data[free[0] + 8 : free[0] + 16] = struct.pack("<Q", value)
    p.write_bytes(bytes(data))
    if sealed:
        reseal(p)
    assert worker.read(p) == "error"
    with pytest.raises(TalonFormatError, match="string heap"):
        ir.read(p)


def test_heap_lookalike_bytes_in_array_data_are_not_a_heap(tmp_path):
    fake = b"GCOL\x01\x00\x00\x00" + struct.pack("<Q", 4096) + b"\x00" * 8 + struct.pack("<Q", 0)  # a free space of size 0
    arr = np.frombuffer(fake * 4, np.uint8).copy()
    g = Graph({"input": ir.Input(shape=(4,)), "output": ir.Output()}, [("input", "output")], metadata={"blob": arr})
    for sealed in (True, False):
        p = tmp_path / f"lookalike_{sealed}.t1c"
        ir.write(p, g)
        if not sealed:
            unseal(p)
        assert_same_graph(g, ir.read(p))


# ----------------------------------------------------------------------------------------------------
# The seal and the index
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bit", [0, 13, 63])
def test_a_damaged_seal_is_an_error_not_an_unsealed_file(tmp_path, bit):
    p = _file(tmp_path, True)
    data = bytearray(p.read_bytes())
    data[bit // 8] ^= 1 << (bit % 8)
    p.write_bytes(bytes(data))
    with pytest.raises(TalonFormatError, match="damaged TALON seal"):
        ir.read(p)


def test_a_deeply_nested_index_is_a_format_error(tmp_path):
    p = _file(tmp_path, True)
    data = bytearray(p.read_bytes())
    block = struct.unpack("<Q", data[40:48])[0]
    deep = b"[" * (block - 64)
    data[48:56] = struct.pack("<Q", len(deep))
    data[56 : 56 + len(deep)] = deep
    p.write_bytes(bytes(data))
    with pytest.raises(TalonFormatError, match="damaged TALON index"):
        ir.read(p)


# ----------------------------------------------------------------------------------------------------
# One model whichever reader opens the file
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change", ["dt", "reset_mode", "metadata", "shapes", "node order"])
def test_a_mirror_that_disagrees_with_the_objects_is_refused(tmp_path, change):
    def patch(f):
        g = f["graph"]
        if change == "dt":
            g.attrs["talon_dt"] = np.float64(0.25)
        elif change == "reset_mode":
            g["nodes/lif"].create_dataset("reset_mode", data="subtract", dtype=h5py.string_dtype("utf-8"))
        elif change == "metadata":
            del g["metadata/epochs"]
            g["metadata/epochs"] = np.int64(300)
        elif change == "shapes":
            g.attrs["talon_shapes"] = json.dumps({"fc": [[[4]], [[7]]]})
        else:
            g.attrs.create("talon_node_order", data=["input", "lif", "fc", "output"], dtype=h5py.string_dtype("utf-8"))

    p = _patched(tmp_path, True, patch)
    with pytest.raises(TalonFormatError, match="content mirror disagrees with the HDF5 objects") as info:
        ir.read(p)
    assert p.name in str(info.value)


def test_an_index_entry_pointing_elsewhere_than_the_dataset_is_refused(tmp_path):
    p = _file(tmp_path, True)
    data = bytearray(p.read_bytes())
    block, length = struct.unpack("<QQ", data[40:56])
    index = json.loads(bytes(data[56 : 56 + length]))
    w, b = index["arrays"]["/graph/nodes/fc/weight"], index["arrays"]["/graph/nodes/lif/tau"]
    assert w[1] == 48 and b[1] == 24
    # the weight entry now describes the bytes of tau and v_threshold (also float64[3]... as 6 float32s)
    index["arrays"]["/graph/nodes/fc/weight"] = [b[0], 24, "<f4", [3, 2], w[4]]
    del index["arrays"]["/graph/nodes/lif/tau"]
    raw = json.dumps(index).encode()
    data[48:56] = struct.pack("<Q", len(raw))
    data[56 : 56 + len(raw)] = raw
    p.write_bytes(bytes(data))
    with pytest.raises(TalonFormatError):
        ir.read(reseal(p))


def test_a_lone_surrogate_in_the_mirror_is_a_format_error(tmp_path):
    p = _file(tmp_path, True)
    doc = _mirror_doc(p)
    doc["graph"]["nodes"][1][0] = "fc\ud800"
    _patch_mirror(p, json.dumps(doc))
    with pytest.raises(TalonFormatError, match="lone surrogate"):
        ir.read(p)


def test_an_undecodable_node_name_is_a_format_error(tmp_path):
    def patch(f):
        h5py.h5g.create(f["graph/nodes"].id, b"bad\xff\xfe")
    with pytest.raises(TalonFormatError, match="not valid UTF-8"):
        ir.read(_patched(tmp_path, False, patch))


# ----------------------------------------------------------------------------------------------------
# Nesting
# ----------------------------------------------------------------------------------------------------

def _nested(depth: int) -> Graph:
    g = _graph()
    for _ in range(depth):
        g = Graph({"input": ir.Input(shape=(4,)), "block": g, "output": ir.Output()}, [("input", "block"), ("block", "output")])
    return g


def test_nested_graph_depth_has_a_documented_limit(tmp_path, monkeypatch):
    limit = ir_format.MAX_GRAPH_DEPTH
    ok, g = tmp_path / "ok.t1c", _nested(limit)
    ir.write(ok, g)
    assert_same_graph(g, ir.read(ok))
    with pytest.raises(TalonFormatError, match=f"nested more than {limit} levels deep"):
        ir.write(tmp_path / "deep.t1c", _nested(limit + 1))
    assert f"at most {limit} levels" in (Path(__file__).resolve().parents[2] / "docs" / "format.md").read_text()
    # A file written by another tool may nest deeper: refused at read, from the mirror and from the objects.
    monkeypatch.setattr(ir_format, "_check_depth", lambda *a: None)
    monkeypatch.setattr(ir_format, "_try_infer_shapes", lambda g: None)
    deep = tmp_path / "deep.t1c"
    ir.write(deep, _nested(limit + 1))
    for p in (deep, unseal(tmp_path / "deep.t1c")):
        with pytest.raises(TalonFormatError, match=f"nested more than {limit} levels deep"):
            ir.read(p)


# ----------------------------------------------------------------------------------------------------
# One descriptor: a read racing an atomic replace sees the old file or the new one
# ----------------------------------------------------------------------------------------------------

def test_reads_racing_atomic_replaces_see_one_whole_file(tmp_path):
    p, stop = tmp_path / "m.t1c", tmp_path / "stop"
    a, b = _graph(), _nested(1)
    ir.write(p, a)
    writer = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from ir.test_untrusted import _graph, _nested
        import talon.ir as ir
        graphs = [_graph(), _nested(1)]
        i = 0
        while not os.path.exists({str(stop)!r}):
            ir.write({str(p)!r}, graphs[i % 2]); i += 1
        print(i)
    """)
    first = os.stat(p).st_ino
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    try:
        # The reads start once the writer is replacing the file (not after a fixed sleep it spins through).
        deadline = time.monotonic() + 60
        while os.stat(p).st_ino == first and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        for _ in range(150):
            g = ir.read(p)
            assert g == a or g == b
    finally:
        stop.touch()
        out, _ = proc.communicate(timeout=60)
    assert int(out) > 10  # the writer did replace the file meanwhile


# ----------------------------------------------------------------------------------------------------
# NIR files
# ----------------------------------------------------------------------------------------------------

def _nir_file(tmp_path: Path) -> Path:
    pytest.importorskip("nir")
    from talon.ir.nir import write_nir

    p = tmp_path / "m.nir"
    write_nir(p, Graph({"input": ir.Input(shape=(4,)), "fc": ir.Affine(weight=f32(3, 4), bias=np.zeros(3, np.float32)),
                        "output": ir.Output()}, [("input", "fc"), ("fc", "output")]))
    return p


def test_nir_files_get_the_same_checks(tmp_path):
    secret = _secret(tmp_path)
    p = _nir_file(tmp_path)
    assert isinstance(ir.read(p), Graph)
    with h5py.File(p, "r+") as f:
        del f["node/nodes/fc/weight"]
        f["node/nodes/fc"].create_dataset("weight", shape=(len(SECRET) // 4,), dtype="<f4", external=[(str(secret), 0, len(SECRET))])
    with pytest.raises(TalonFormatError, match="external files"):
        ir.read(p)
    p = _nir_file(tmp_path)
    with h5py.File(p, "r+") as f:
        f["node/nodes/fc/extra"] = h5py.ExternalLink(str(secret), "/x")
    with pytest.raises(TalonFormatError, match="external link"):
        ir.read(p)
    from talon.ir.nir import is_nir_file

    renamed = p.rename(tmp_path / "nir_content.t1c")
    assert is_nir_file(renamed)
    with pytest.raises(TalonFormatError, match="external link"):
        ir.read(renamed)


def test_nir_declared_sizes_are_checked_before_allocating(tmp_path):
    p = _nir_file(tmp_path)
    with h5py.File(p, "r+") as f:
        del f["node/nodes/fc/bias"]
        f["node/nodes/fc"].create_dataset("bias", shape=(3 << 27,), dtype="<f8", chunks=(1 << 16,), compression="gzip")
    assert p.stat().st_size < 100_000
    with pytest.raises(TalonFormatError, match="declares .* bytes, more than the file can hold"):
        ir.read(p)


# ----------------------------------------------------------------------------------------------------
# Fuzzing: any mutation of a small valid file reads as a Graph or fails with TalonFormatError, in time
# ----------------------------------------------------------------------------------------------------

_FIELD_VALUES = [0, 1, 7, 8, 16, 255, 4096, 2**31, 2**32 - 1, 2**63, 2**64 - 1, 2**64 - 16]


def _mutations():
    flip = st.tuples(st.just("flip"), st.floats(0, 1, exclude_max=True), st.integers(0, 7))
    field = st.tuples(st.just("field"), st.floats(0, 1, exclude_max=True), st.sampled_from(_FIELD_VALUES))
    heap = st.tuples(st.just("heap"), st.integers(0, 64), st.sampled_from(_FIELD_VALUES))
    trunc = st.tuples(st.just("trunc"), st.floats(0, 1, exclude_max=True), st.just(0))
    return st.lists(st.one_of(flip, flip, field, heap, trunc), min_size=1, max_size=4)


def _mutate(data: bytes, mutations: list) -> bytes:
    b = bytearray(data)
    heaps = [h for h, _, _ in _heap_objects(data)]
    for kind, where, value in mutations:
        if not b:
            break
        if kind == "trunc":
            b = b[: int(where * len(b))]
        elif kind == "flip":
            b[int(where * len(b))] ^= 1 << value
        else:  # an 8-byte size field: anywhere, or that of a heap object
            pos = heaps[where % len(heaps)] + 8 if kind == "heap" and heaps else int(where * max(len(b) - 8, 1))
            b[pos : pos + 8] = struct.pack("<Q", value)[: len(b[pos : pos + 8])]
    return bytes(b)


@pytest.fixture(scope="module")
def fuzz_bases(tmp_path_factory):
    """Small valid files: sealed and unsealed .t1c, and .nir (when the nir package is there)."""
    d = tmp_path_factory.mktemp("fuzz")
    bases = {}
    for sealed in (True, False):
        p = d / f"base_{sealed}.t1c"
        ir.write(p, _nested(1))
        bases[sealed] = (p if sealed else unseal(p)).read_bytes()
    try:
        import nir  # noqa: F401

        ir.write(d / "base.nir", _graph())
        bases["nir"] = (d / "base.nir").read_bytes()
    except ImportError:
        bases["nir"] = bases[False]
    return d, bases


def _fuzz(fuzz_bases, worker, sealed, reseal_it, mutations):
    d, bases = fuzz_bases
    p = d / ("mutant.nir" if sealed == "nir" else "mutant.t1c")
    p.write_bytes(_mutate(bases[sealed], mutations))
    if sealed is True and reseal_it:
        try:
            reseal(p)
        except Exception:
            pass  # the seal's own header is damaged: read as it is
    outcome = worker.read(p)
    assert not outcome.startswith("BAD"), f"{mutations}: {outcome}"


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(sealed=st.sampled_from([True, False, "nir"]), reseal_it=st.booleans(), mutations=_mutations())
def test_fuzz_mutated_files_read_or_fail_cleanly(fuzz_bases, worker, sealed, reseal_it, mutations):
    _fuzz(fuzz_bases, worker, sealed, reseal_it, mutations)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(sealed=st.sampled_from([True, False, "nir"]), reseal_it=st.booleans(), mutations=_mutations())
def test_fuzz_mutated_files_read_or_fail_cleanly_long(fuzz_bases, worker, sealed, reseal_it, mutations):
    _fuzz(fuzz_bases, worker, sealed, reseal_it, mutations)


def _deep_metadata(levels: int) -> dict:
    md: dict = {"leaf": np.arange(3)}
    for _ in range(levels - 1):
        md = {"x": md}
    return md


def test_metadata_nesting_has_a_documented_limit(tmp_path, monkeypatch):
    limit = ir_format.MAX_VALUE_DEPTH
    ok = Graph({"input": ir.Input(shape=(2,)), "output": ir.Output()}, [("input", "output")], metadata=_deep_metadata(limit))
    ir.write(tmp_path / "ok.t1c", ok)
    assert_same_graph(ok, ir.read(tmp_path / "ok.t1c"))
    deep = Graph({"input": ir.Input(shape=(2,)), "output": ir.Output()}, [("input", "output")], metadata=_deep_metadata(limit + 1))
    with pytest.raises(TalonFormatError, match=f"metadata nested more than {limit} levels deep"):
        ir.write(tmp_path / "deep.t1c", deep)
    assert f"at most {limit} levels" in (Path(__file__).resolve().parents[2] / "docs" / "format.md").read_text()
    # Written by another tool: refused at read, from the mirror and from the HDF5 objects alike.
    monkeypatch.setattr(ir_format, "_check_depth", lambda *a: None)
    ir.write(tmp_path / "deep.t1c", deep)
    for p in (tmp_path / "deep.t1c", unseal(tmp_path / "deep.t1c")):
        with pytest.raises(TalonFormatError, match=f"metadata nested more than {limit} levels deep"):
            ir.read(p)


def test_a_dataset_of_many_tiny_chunks_is_inspected_in_one_pass(tmp_path, worker):
    # Walking the chunk index chunk by chunk is quadratic: 20,000 chunks took minutes.
    p = _patched(tmp_path, False, lambda f: f["graph/metadata"].create_dataset("many", data=np.arange(20_000, dtype=np.uint8), chunks=(1,)))
    assert worker.read(p) == "graph"
    assert ir.read(p).metadata["many"].shape == (20_000,)
