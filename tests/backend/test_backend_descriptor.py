"""HardwareDescriptor: complete, versioned, exact round trips through JSON and the compact binary."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from talon.backend import HardwareDescriptor
from talon.backend.descriptor import DESCRIPTOR_VERSION, MAGIC, smallest_int_dtype
from talon.errors import BackendError

from backend_graphs import build_mlp


@pytest.fixture(scope="module")
def desc(hybrid):
    from talon.backend import get_backend

    return get_backend("cpu").compile(hybrid, n_steps=4)


def test_descriptor_is_complete(desc, hybrid):
    m = desc.meta
    assert m["format"] == "talon-hardware-descriptor" and m["descriptor_version"] == DESCRIPTOR_VERSION
    assert m["fixed_point_version"] == 3 and m["talon_version"]
    assert m["layer_order"] == list(hybrid.nodes) and m["edges"] == [list(e) for e in hybrid.edges]
    assert m["inputs"] == ["input"] and m["outputs"] == ["output"]
    assert m["fixed_point"]["accumulator_bits"] == 32
    for name, node in desc.nodes.items():
        assert {"type", "kind", "out_format", "in_formats", "input_shapes", "output_shape", "params", "arrays"} <= set(node)
        for a in node["arrays"]:
            assert desc.array(name, a).dtype.kind == "i"
    w = desc.array("fc1", "weight")
    assert w.shape == (64, 3136) and w.dtype == np.int8
    assert desc.nodes["pool"]["params"]["kernel_size"] == [2, 2]
    assert "fc1" in desc.summary()
    with pytest.raises(BackendError):
        desc.array("fc1", "nope")


def test_json_and_binary_round_trip_exactly(desc, tmp_path):
    j = desc.save(tmp_path / "d.json")
    b = desc.save(tmp_path / "d.thd")
    for path in (j, b):
        back = HardwareDescriptor.load(path)
        assert back == desc
        for k, a in desc.arrays.items():
            assert back.arrays[k].dtype == a.dtype and np.array_equal(back.arrays[k], a)
    assert HardwareDescriptor.from_json(desc.to_json()) == desc
    assert HardwareDescriptor.from_bytes(desc.to_bytes()) == desc
    assert desc.to_bytes() == HardwareDescriptor.from_bytes(desc.to_bytes()).to_bytes()  # stable encoding
    raw = (tmp_path / "d.thd").read_bytes()
    assert raw.startswith(MAGIC)
    weights = sum(a.nbytes for a in desc.arrays.values())
    assert len(raw) < weights * 1.1 + 64 * 1024  # compact: close to the raw integers
    json.loads((tmp_path / "d.json").read_text())  # plain JSON
    assert desc.save(tmp_path / "x.bin", format="json") and HardwareDescriptor.load(tmp_path / "x.bin") == desc


def test_equality_is_exact():
    meta = {"format": "talon-hardware-descriptor", "descriptor_version": 1, "nodes": []}
    a = HardwareDescriptor(meta, {"n/w": np.array([1, 2], np.int8)})
    assert a == HardwareDescriptor(dict(meta), {"n/w": np.array([1, 2], np.int8)})
    assert a != HardwareDescriptor(meta, {"n/w": np.array([1, 2], np.int16)})
    assert a != HardwareDescriptor(meta, {"n/w": np.array([1, 3], np.int8)})
    assert a != HardwareDescriptor({**meta, "x": 1}, {"n/w": np.array([1, 2], np.int8)})
    assert smallest_int_dtype(np.array([-129, 0])) == np.int16
    assert smallest_int_dtype(np.array([2**40])) == np.int64
    empty = HardwareDescriptor(meta, {"n/e": np.zeros((0, 3), np.int32)})
    assert HardwareDescriptor.from_bytes(empty.to_bytes()) == empty


def test_corrupt_or_foreign_files_raise_backend_error(desc, tmp_path):
    data = bytearray(desc.to_bytes())
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    with pytest.raises(BackendError, match="CRC"):
        HardwareDescriptor.from_bytes(bytes(flipped))
    with pytest.raises(BackendError, match="magic"):
        HardwareDescriptor.from_bytes(b"NOTATALONFILE" * 4)
    with pytest.raises(BackendError):
        HardwareDescriptor.from_bytes(bytes(data[:-10]))
    newer = bytearray(data)
    newer[len(MAGIC) : len(MAGIC) + 2] = struct.pack("<H", DESCRIPTOR_VERSION + 1)
    import zlib

    body = bytes(newer[:-4])
    with pytest.raises(BackendError, match="newer"):
        HardwareDescriptor.from_bytes(body + struct.pack("<I", zlib.crc32(body)))
    doc = json.loads(desc.to_json())
    doc["arrays"]["fc1/weight"]["dtype"] = "object"
    with pytest.raises(BackendError, match="dtype"):
        HardwareDescriptor.from_json(json.dumps(doc))
    doc = json.loads(desc.to_json())
    doc["arrays"]["fc1/weight"]["shape"] = [3, 3]
    with pytest.raises(BackendError, match="bytes for shape"):
        HardwareDescriptor.from_json(json.dumps(doc))
    with pytest.raises(BackendError, match="malformed"):
        HardwareDescriptor.from_json("{not json")
    with pytest.raises(BackendError, match="format tag"):
        HardwareDescriptor.from_json(json.dumps({"arrays": {}}))
    p = tmp_path / "bad.thd"
    p.write_bytes(bytes(flipped))
    with pytest.raises(BackendError, match="bad.thd"):
        HardwareDescriptor.load(p)
    with pytest.raises(BackendError, match="cannot read"):
        HardwareDescriptor.load(tmp_path / "missing.thd")


def test_small_graph_descriptor_round_trip(cpu, tmp_path):
    d = cpu.compile(build_mlp())
    assert HardwareDescriptor.load(d.save(tmp_path / "m.thd")) == d
    assert HardwareDescriptor.load(d.save(tmp_path / "m.json")) == d


def test_mapped_descriptor_round_trips_exactly(cpu, tmp_path):
    from talon.mapping import HardwareSpec, map_graph

    g = build_mlp()
    mapping = map_graph(g, HardwareSpec(mesh=(4, 4), neurons_per_core=16, weight_memory_bytes_per_core=1 << 20), "greedy")
    d = cpu.compile(g, mapping=mapping)
    assert d.meta["mapping"]["core_assignment"] and d.meta["mapping"]["routes"]["routing_tables"]
    for name in ("m.thd", "m.json"):
        back = HardwareDescriptor.load(d.save(tmp_path / name))
        assert back == d and back.meta["mapping"] == json.loads(json.dumps(d.meta["mapping"]))
        for k, a in d.arrays.items():
            assert back.arrays[k].dtype == a.dtype and np.array_equal(back.arrays[k], a)
    assert HardwareDescriptor.from_bytes(d.to_bytes()).to_bytes() == d.to_bytes()


def test_fixed_point_version_lives_with_the_descriptor(desc):
    from talon.backend import descriptor
    from talon.backend.cpu import fixed

    assert desc.meta["fixed_point_version"] == descriptor.FIXED_POINT_VERSION
    assert not hasattr(fixed, "FIXED_POINT_VERSION")  # one definition, at the backend level


def _mixed(**changes):
    from backend_graphs import build_mixed_conv

    g = build_mixed_conv(np.random.default_rng(0))
    for name, fields in changes.items():
        g.nodes[name] = g.nodes[name].replace(**fields)
    return g


@pytest.mark.parametrize(
    "node, field, value",
    [("lrelu", "negative_slope", float("nan")), ("lif", "graded_spikes_factor", float("inf")), ("lif", "graded_spikes_factor", float("-inf"))],
)
def test_compile_refuses_non_finite_scalar_fields(cpu, node, field, value):
    g = _mixed(**{node: {field: value}})
    with pytest.raises(BackendError, match=rf"node '{node}' field '{field}' is .*finite"):
        cpu.compile(g, n_steps=2)


def test_descriptor_values_follow_the_json_policy():
    from talon import _json
    from talon.backend import descriptor
    from talon.backend.descriptor import descriptor_value

    assert getattr(descriptor, "jsonable", _json.jsonable) is _json.jsonable  # no second converter
    value = {"k": (1, np.int64(2), np.float32(0.5)), "on": np.bool_(True), 3: [np.array([1.5, 2.0])]}
    assert descriptor_value("n", "hints", value) == _json.jsonable(value) == {"k": [1, 2, 0.5], "on": True, "3": [[1.5, 2.0]]}
    assert descriptor_value("n", "obj", object) == str(object)  # the policy's fallback, not repr strings of numbers
    for bad in (float("nan"), np.float64("inf"), (1.0, float("-inf")), {"deep": [np.array([0.0, np.nan])]}):
        with pytest.raises(BackendError, match="node 'n' field 'f'"):
            descriptor_value("n", "f", bad)


def test_encoding_refuses_non_finite_or_non_json_meta():
    meta = {"format": "talon-hardware-descriptor", "descriptor_version": 1, "nodes": [{"name": "fc", "params": {"x": float("nan")}}]}
    d = HardwareDescriptor(meta, {})
    for encode in (d.to_json, d.to_bytes, lambda: d == d):
        with pytest.raises(BackendError, match=r"nodes\['fc'\]\.params\.x is nan"):
            encode()
    d.meta["nodes"][0]["params"]["x"] = np.int64(3)  # not a JSON value: named, not a TypeError
    with pytest.raises(BackendError, match=r"params\.x holds a int64"):
        d.to_json()
    # strict JSON only: the non-standard NaN/Infinity tokens are refused when reading too
    text = json.dumps({**meta, "nodes": [], "dt": float("inf"), "arrays": {}})
    with pytest.raises(BackendError, match="Infinity"):
        HardwareDescriptor.from_json(text)


def test_compile_leaves_the_callers_graph_unchanged(cpu):
    import copy

    from talon.backend.compile import build_descriptor
    from talon.ir.node import values_equal

    g = _mixed()
    g.metadata["note"] = {"owner": "me", "list": [1, 2]}
    before = copy.deepcopy(g)
    nodes_before = dict(g.nodes)

    def check():
        assert list(g.nodes) == list(before.nodes) and g.edges == before.edges and g.dt == before.dt
        assert g.metadata == before.metadata and vars(g).keys() == vars(before).keys()
        for name, node in g.nodes.items():
            assert node is nodes_before[name]  # the same objects, not replaced
            old = before.nodes[name]
            assert (node.input_shapes, node.output_shapes) == (old.input_shapes, old.output_shapes) == (None, None)
            assert vars(node).keys() == vars(old).keys()
            assert all(values_equal(getattr(node, k), getattr(old, k)) for k in vars(old)), name
        for k in ("input_shapes", "output_shapes"):
            assert getattr(g, k, None) == getattr(before, k, None)

    d = cpu.compile(g, n_steps=2)
    check()
    assert d.nodes["conv"]["output_shape"] == [2, 6, 6]  # the descriptor still has every shape
    plan = cpu.simulate(g.copy(), n_steps=2, mode="fixed", compare=False).fixed_point
    build_descriptor(g, plan)  # the shared builder alone does not infer shapes on its argument either
    check()
