"""The same graph gives the same .t1c bytes, whatever the process, the hash seed or the time of the write.

HDF5 stamps every new object's header with times unless told not to (TALON turns that off for the root,
every group and every dataset: _h5space, format.py), and anything the writer iterates must not depend
on the process (hash seeds, addresses). Each test writes the same graphs in two fresh processes with
different PYTHONHASHSEEDs, the second started more than a second after the first finished (HDF5's clock
counts seconds), and compares the bytes. Each run also writes a control file with h5py's defaults, whose
group timestamps must differ: the proof that the runs were far enough apart to catch a timestamp.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from hypothesis import HealthCheck, given, settings

import talon.ir as ir

from ._gen import assert_same_graph, random_graphs
from ._write_worker import CASES, write_control

WORKER = Path(__file__).with_name("_write_worker.py")
_GAP_S = 1.2  # HDF5 object timestamps count whole seconds


def _write_in_fresh_process(out: Path, args: list[str], hash_seed: int) -> None:
    out.mkdir()
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
    subprocess.run([sys.executable, str(WORKER), str(out), *args], env=env, check=True, timeout=120)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.t1c"))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The writes both tests compare, made once: the named cases in a fresh process (hash seed 1), random
    graphs here, then, more than a second after both, the cases and the pickled random graphs again in one
    fresh process with another hash seed (2)."""
    tmp = tmp_path_factory.mktemp("reproducible")
    graphs, here = tmp / "graphs", tmp / "here"
    graphs.mkdir()
    here.mkdir()
    _write_in_fresh_process(tmp / "first", list(CASES), hash_seed=1)
    count = 0

    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(g=random_graphs())
    def write_here(g: ir.Graph) -> None:
        nonlocal count
        name = f"g{count:03d}"
        count += 1
        (graphs / f"{name}.pkl").write_bytes(pickle.dumps(g))
        ir.write(here / f"{name}.t1c", g)

    write_here()
    write_control(here / "control.h5")
    time.sleep(_GAP_S)
    _write_in_fresh_process(tmp / "second", [*CASES, "--pickles", str(graphs)], hash_seed=2)
    control = {run: (tmp / run / "control.h5").read_bytes() for run in ("first", "here", "second")}
    return {"tmp": tmp, "graphs": graphs, "count": count, "control": control,
            "first": _files(tmp / "first"), "here": _files(here), "second": _files(tmp / "second")}


def test_tutorial_and_fixed_point_graphs_give_the_same_bytes_in_another_process_later(runs):
    first, second = runs["first"], runs["second"]
    assert runs["control"]["first"] != runs["control"]["second"], "the two runs were too close together for HDF5's clock: the test would miss timestamps"
    assert sorted(first) == sorted(f"{name}.t1c" for name in CASES)
    for name, data in first.items():
        assert data == second[name], f"{name}: {sum(a != b for a, b in zip(data, second[name]))} bytes differ"
        graph = CASES[name.removesuffix(".t1c")]()
        graph.infer_shapes()  # as the writer does
        assert_same_graph(ir.read(runs["tmp"] / "second" / name), graph)


def test_random_graphs_give_the_same_bytes_in_another_process_later(runs):
    """A property over random graphs: each written here, then pickled and written again in a fresh process
    with another hash seed, started more than a second after the last write here."""
    assert runs["control"]["here"] != runs["control"]["second"]
    here, count = runs["here"], runs["count"]
    there = {name: data for name, data in runs["second"].items() if name.removesuffix(".t1c") not in CASES}
    assert len(here) == count > 0 and sorted(here) == sorted(there)
    for name, data in here.items():
        graph = pickle.loads((runs["graphs"] / name.replace(".t1c", ".pkl")).read_bytes())
        assert data == there[name], f"{name} ({len(graph.nodes)} nodes, {len(graph.edges)} edges): {sum(a != b for a, b in zip(data, there[name]))} bytes differ"


def test_no_object_in_a_written_file_tracks_times(tmp_path):
    """Every group and dataset, the root included, is created without HDF5 timestamps (compressed arrays too)."""
    for name, compression in (("simple_snn", None), ("composite", None), ("hybrid", "gzip")):
        path = tmp_path / f"{name}.t1c"
        ir.write(path, CASES[name](), compression=compression)
        with h5py.File(path, "r") as f:
            objects = {"/": f["/"]}
            f.visititems(lambda key, obj: objects.__setitem__(key, obj))
            assert len(objects) > 10
            tracked = [key for key, obj in objects.items() if obj.id.get_create_plist().get_obj_track_times()]
        assert tracked == [], f"{name}: {tracked}"
