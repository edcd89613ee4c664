"""File space of .t1c files: the sealed index's user block is sized to what it holds (any node names),
and HDF5's per-object reserves are off (talon.ir._h5space) without changing what readers see."""

from __future__ import annotations

import json
import struct

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import talon.ir as ir
from talon.ir import Graph, _integrity

from ._gen import NAME_CHARS, assert_same_graph


def _chain(names: list[str], n_in: int = 4, metadata: dict | None = None) -> Graph:
    rng = np.random.default_rng(0)
    nodes: dict = {"input": ir.Input(shape=(n_in,))}
    edges, prev = [], "input"
    for name in names:
        nodes[name] = ir.Affine(weight=rng.standard_normal((n_in, n_in)).astype(np.float32), bias=rng.standard_normal(n_in).astype(np.float32))
        edges.append((prev, name))
        prev = name
    nodes["output"] = ir.Output()
    edges.append((prev, "output"))
    return Graph(nodes, edges, metadata=metadata or {})


def _index(path) -> tuple[int, bytes]:
    raw = open(path, "rb").read()
    assert raw[:8] == _integrity.MAGIC
    block, length = struct.unpack_from("<QQ", raw, 40)
    return block, raw[56:56 + length]


@pytest.mark.parametrize("compression", [None, "gzip"])
@pytest.mark.parametrize("char", ["🙂", "中", "é", "\\", '"', "\u2028"])
def test_long_names_of_any_script_fit_the_sealed_index(tmp_path, char, compression):
    # The index is JSON with ASCII escapes: an emoji takes 12 bytes there (4 in UTF-8), a backslash 2.
    # Sized from UTF-8 lengths plus a fixed slack, the user block once refused such a model
    # ("index of 1336 bytes does not fit the 1024-byte user block").
    names = [char * 50 + str(i) for i in range(3)]
    g = _chain(names, metadata={char * 40: {char * 30: np.arange(100, dtype=np.float64)}})  # > 256 B: indexed
    path = tmp_path / "m.t1c"
    ir.write(path, g, compression=compression)
    assert_same_graph(g, ir.read(path))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.text(NAME_CHARS, min_size=1, max_size=80).filter(lambda s: s not in (".", "..", "input", "output")),
                      min_size=1, max_size=6, unique=True))
def test_any_node_names_fit_the_sealed_index(tmp_path, names):
    g = _chain(names)
    path = tmp_path / "m.t1c"
    ir.write(path, g)
    assert_same_graph(g, ir.read(path))


def test_user_block_is_sized_to_the_index(tmp_path):
    # A small model's index (4 arrays) fits HDF5's smallest user block, 512 bytes.
    small = tmp_path / "small.t1c"
    ir.write(small, _chain(["fc1", "fc2"]))
    block, index = _index(small)
    assert block == 512 and len(json.loads(index)["arrays"]) == 4
    # A larger index gets the next power of two that holds it with at most one doubling to spare: the
    # bound over-estimates each entry only by its offset's digits (20 assumed) and a "#i" chunk suffix.
    big = tmp_path / "big.t1c"
    ir.write(big, _chain([f"layer_{i}" for i in range(40)]))
    block, index = _index(big)
    entries = len(json.loads(index)["arrays"])
    assert entries == 80 and _integrity.HEADER + len(index) <= block < 2 * (_integrity.HEADER + len(index) + 24 * entries)


def test_group_headers_are_sized_to_their_links(tmp_path):
    # HDF5 sizes a group's header for 4 links of 8-byte names unless told: a node group with more
    # fields grew continuation chunks, one with fewer kept unused room. Told, neither happens.
    from talon.ir.primitives import LIF

    n = 64
    lif = LIF(tau=np.full(n, 5.0, np.float32), r=np.full(n, 5.0, np.float32), v_leak=np.zeros(n, np.float32),
              v_threshold=np.ones(n, np.float32), reset_mode="zero")
    g = Graph({"input": ir.Input(shape=(n,)), "lif": lif, "output": ir.Output()}, [("input", "lif"), ("lif", "output")])
    path = tmp_path / "m.t1c"
    ir.write(path, g)
    with h5py.File(path, "r") as f:
        for name in ("graph/nodes", "graph/nodes/lif", "graph/nodes/input", "graph/edges"):
            hdr = h5py.h5o.get_info(f[name].id).hdr
            assert hdr.space.free < 16, (name, hdr.space.free)  # less than one more link message
    assert_same_graph(g, ir.read(path))
