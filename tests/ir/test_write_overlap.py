""".t1c writes copy large arrays on a thread while HDF5's objects are built (_integrity.ArraySink).

The copies must not change a byte of the file: every test compares the file with the one written with
every copy made on the writing thread after the objects (the order of the previous writer), and checks
that the copying thread really took the arrays, so that no comparison passes without the overlap. A
copy that fails, or a write that fails while arrays are being copied, leaves nothing on disk and no
thread behind.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import talon.ir as ir
from talon.errors import TalonFormatError
from talon.ir import Graph, _integrity

from ._gen import assert_same_graph, metadata_dicts, random_graphs

COPIER = "talon-t1c-write"
_REAL_SPARE_CPU = _integrity.spare_cpu


@pytest.fixture(autouse=True)
def _spare_cpu(monkeypatch):
    """The copying thread starts only where a CPU looks idle (_integrity.spare_cpu): here it always does,
    whatever else the machine runs, except where a test says otherwise."""
    monkeypatch.setattr(_integrity, "spare_cpu", lambda: True)


class _Copies:
    """Records which thread copied each batch of arrays (and their bytes)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.threads: list[tuple[str, int]] = []
        real = _integrity._copy

        def copy(fd: int, batch: list, reserved: bool = False) -> None:
            self.threads.append((threading.current_thread().name, sum(arr.nbytes for _, arr in batch)))
            real(fd, batch, reserved)

        monkeypatch.setattr(_integrity, "_copy", copy)

    def by_copier(self) -> int:
        return sum(n for name, n in self.threads if name == COPIER)


def _write_on_one_thread(path: Path, graph: Graph, monkeypatch: pytest.MonkeyPatch) -> None:
    """The previous writer's order: no copying thread, every array copied once the objects are built."""
    with monkeypatch.context() as m:
        m.setattr(_integrity.ArraySink, "_start", lambda self: False)
        ir.write(path, graph)


def _two_layer_graph(n_in: int = 384, n_hidden: int = 1024, n_out: int = 640) -> Graph:
    """Two weight matrices over 1 MiB (copied on the thread by default), small arrays between them, a
    quantized layer (stored as int8) and metadata after them."""
    rng = np.random.default_rng(7)
    q = (np.round(rng.standard_normal((n_out, n_hidden)) * 16).clip(-127, 127) + 0.0).astype(np.float32) / 64  # no -0.0: int8 form
    nodes = {
        "input": ir.Input(shape=(n_in,)),
        "fc1": ir.Affine(weight=rng.standard_normal((n_hidden, n_in)).astype(np.float32), bias=rng.standard_normal(n_hidden).astype(np.float32)),
        "lif1": ir.LIF(tau=np.full(n_hidden, 5.0, np.float32), r=np.full(n_hidden, 5.0, np.float32), v_leak=np.zeros(n_hidden, np.float32),
                       v_threshold=rng.uniform(0.5, 1.5, n_hidden).astype(np.float32)),
        "fc2": ir.Affine(weight=q, bias=np.zeros(n_out, np.float32)),
        "fc3": ir.Affine(weight=rng.standard_normal((n_out, n_out)), bias=rng.standard_normal(n_out)),
        "output": ir.Output(),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "fc3"), ("fc3", "output")]
    return Graph(nodes, edges, metadata={"loss": [i / 7 for i in range(300)], "name": "overlap"})


def test_large_arrays_are_copied_on_the_thread_and_the_bytes_do_not_change(tmp_path, monkeypatch):
    g = _two_layer_graph()
    _write_on_one_thread(tmp_path / "one.t1c", g, monkeypatch)
    copies = _Copies(monkeypatch)
    ir.write(tmp_path / "overlap.t1c", g)
    big = {k: e[1] for k, e in _index(tmp_path / "overlap.t1c").items() if e[1] >= _integrity.ArraySink.EAGER_BYTES}
    assert sorted(big) == ["/graph/nodes/fc1/weight", "/graph/nodes/fc3/weight"]  # fc2's is stored as int8: 640 KiB
    assert copies.by_copier() >= sum(big.values())
    assert (tmp_path / "overlap.t1c").read_bytes() == (tmp_path / "one.t1c").read_bytes()
    assert_same_graph(ir.read(tmp_path / "overlap.t1c"), g)
    assert not [t for t in threading.enumerate() if t.name == COPIER]


def test_without_a_spare_cpu_every_array_is_copied_on_the_writing_thread(tmp_path, monkeypatch):
    g = _two_layer_graph()
    _write_on_one_thread(tmp_path / "one.t1c", g, monkeypatch)
    monkeypatch.setattr(_integrity, "spare_cpu", lambda: False)
    copies = _Copies(monkeypatch)
    ir.write(tmp_path / "busy.t1c", g)
    assert copies.threads and {name for name, _ in copies.threads} == {threading.main_thread().name}
    assert (tmp_path / "busy.t1c").read_bytes() == (tmp_path / "one.t1c").read_bytes()


def test_spare_cpu_follows_the_cpus_and_the_load(monkeypatch):
    """Runnable tasks now (this one included) where the system says, else the load average."""
    for cpus, running, load, spare in ((2, 1, 9.0, True), (2, 2, 0.1, False), (16, 9, 9.0, True), (1, 1, 0.0, False),
                                       (2, None, 0.3, True), (2, None, 1.4, True), (2, None, 1.6, False), (16, None, 7.0, True)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, cpus=cpus: set(range(cpus)), raising=False)
        monkeypatch.setattr(_integrity, "_running_tasks", lambda running=running: running)
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert _REAL_SPARE_CPU() is spare, (cpus, running, load)
    monkeypatch.delattr(os, "getloadavg")  # Windows
    assert _REAL_SPARE_CPU() is True


def test_the_runnable_count_is_read_where_the_system_has_one():
    running = _integrity._running_tasks()
    if not os.path.exists("/proc/loadavg"):
        assert running is None
    else:
        assert isinstance(running, int) and running >= 1  # this test's own thread is running


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(g=random_graphs())
def test_any_graph_gives_the_same_bytes_with_every_array_copied_on_the_thread(g, tmp_path, monkeypatch):
    """A property over random graphs: with the threshold at one byte every indexed array goes to the
    copying thread as soon as HDF5 allocates it, in whatever order and size the graph has."""
    one, overlap = tmp_path / "one.t1c", tmp_path / "overlap.t1c"
    _write_on_one_thread(one, g, monkeypatch)
    with monkeypatch.context() as m:
        m.setattr(_integrity.ArraySink, "EAGER_BYTES", 1)
        copies = _Copies(m)
        ir.write(overlap, g)
    assert overlap.read_bytes() == one.read_bytes()
    indexed = sum(e[1] for e in _index(overlap).values())
    assert copies.by_copier() == indexed
    assert_same_graph(ir.read(overlap), ir.read(one))


def _index(path: Path) -> dict:
    import json
    import struct

    data = path.read_bytes()
    _, length = struct.unpack("<QQ", data[40:56])
    return json.loads(data[56 : 56 + length])["arrays"]


def test_a_failed_copy_leaves_the_previous_file_and_no_temporary_file(tmp_path, monkeypatch):
    g, target = _two_layer_graph(), tmp_path / "model.t1c"
    ir.write(target, Graph())
    before = target.read_bytes()
    real = os.pwrite

    def full_disk(fd, data, offset):
        if threading.current_thread().name == COPIER:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", full_disk)
    with pytest.raises(TalonFormatError, match="No space left on device"):
        ir.write(target, g)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.t1c"]
    assert not [t for t in threading.enumerate() if t.name == COPIER]


def test_a_write_that_fails_while_arrays_are_being_copied_leaves_nothing(tmp_path, monkeypatch):
    """The graph's metadata is written after its nodes: by then the weights are with the copying thread."""
    g, target = _two_layer_graph(), tmp_path / "model.t1c"
    g.metadata["bad"] = object()
    started, real = [], _integrity.ArraySink._start
    monkeypatch.setattr(_integrity.ArraySink, "_start", lambda self: started.append(real(self)) or started[-1])
    with pytest.raises(TalonFormatError, match="cannot be stored"):
        ir.write(target, g)
    assert started and all(started)  # the weights had been handed to the copying thread
    assert list(tmp_path.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name == COPIER]


def _h5py_attr(oid, name: str, data: np.ndarray) -> None:
    """The reference for format._attr: h5py's own attribute creation, on the same object."""
    import types

    import h5py

    h5py.AttributeManager(types.SimpleNamespace(id=oid)).create(name, data=data)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(md=metadata_dicts, g=random_graphs(max_ops=4))
def test_attributes_are_the_bytes_h5py_writes(md, g, tmp_path, monkeypatch):
    """The writer creates attributes with HDF5's calls directly (format._attr): the files are those
    written through h5py's attrs.create, for graphs with any metadata (lists, tuples, None, 0-d arrays
    and JSON entries carry kind attributes; integer-form arrays two more)."""
    from talon.ir import format as ir_format

    q = Graph({"input": ir.Input(shape=(300,)), "fc": ir.Affine(weight=np.full((2, 300), 0.25, np.float32), bias=np.zeros(2, np.float32)),
               "output": ir.Output()}, [("input", "fc"), ("fc", "output")], metadata=md, extras={"cyclic_config": md})
    for i, graph in enumerate((q, g)):
        ir.write(tmp_path / f"direct{i}.t1c", graph)
        with monkeypatch.context() as m:
            m.setattr(ir_format, "_attr", _h5py_attr)
            ir.write(tmp_path / f"h5py{i}.t1c", graph)
        assert (tmp_path / f"direct{i}.t1c").read_bytes() == (tmp_path / f"h5py{i}.t1c").read_bytes()
