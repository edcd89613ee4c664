"""fingerprint_graph, verify_fingerprint, stamp_graph and get_stamp."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talon import ir
from talon.errors import TalonError
from talon.sdk import compare_graphs, fingerprint_graph, get_stamp, stamp_graph, verify_fingerprint

from sdk_graphs import build_hybrid, build_mlp, lif

f32 = np.float32


def test_full_sha256_hex_and_deterministic():
    fp = fingerprint_graph(build_hybrid())
    assert re.fullmatch(r"[0-9a-f]{64}", fp)
    assert fp == fingerprint_graph(build_hybrid()) == fingerprint_graph(build_hybrid().copy())


def test_independent_of_how_the_graph_was_built():
    g = build_mlp()
    # same nodes inserted in reverse order, edges added in a different order
    rev = ir.Graph({n: g.nodes[n] for n in reversed(list(g.nodes))})
    for e in reversed(g.edges):
        rev.add_edge(*e)
    assert list(rev.nodes) != list(g.nodes)
    assert fingerprint_graph(rev) == fingerprint_graph(g)


def test_input_order_of_a_multi_input_node_matters():
    def cat(order):
        g = ir.Graph({"a": ir.Input(shape=(2,)), "b": ir.Input(shape=(3,)), "c": ir.Concat(), "y": ir.Output()})
        for s in order:
            g.add_edge(s, "c")
        g.add_edge("c", "y")
        return g

    assert fingerprint_graph(cat("ab")) != fingerprint_graph(cat("ba"))
    # but how its edges interleave with unrelated edges does not
    g1 = cat("ab")
    g2 = ir.Graph(g1.nodes, [("c", "y"), ("a", "c"), ("b", "c")])
    assert fingerprint_graph(g1) == fingerprint_graph(g2)


def test_every_kind_of_change_is_seen():
    base = build_mlp()
    fp = fingerprint_graph(base)

    def changed(fn):
        g = base.copy()
        fn(g)
        return fingerprint_graph(g)

    def one_weight(g):
        w = g.nodes["fc1"].weight.copy()
        w[1, 2] = np.nextafter(w[1, 2], f32(np.inf))  # one ulp
        g.nodes["fc1"] = g.nodes["fc1"].replace(weight=w)

    variants = {
        "weight ulp": changed(one_weight),
        "dtype": changed(lambda g: g.nodes.__setitem__("lif1", g.nodes["lif1"].replace(tau=g.nodes["lif1"].tau.astype(np.float64)))),
        "scalar field": changed(lambda g: g.nodes.__setitem__("lif1", g.nodes["lif1"].replace(reset_mode="subtract"))),
        "dt": changed(lambda g: setattr(g, "dt", 0.5)),
        "edge": changed(lambda g: g.edges.__setitem__(2, ("lif1", "lif2"))),
        "type": changed(lambda g: g.nodes.__setitem__("fc2", ir.Linear(weight=g.nodes["fc2"].weight))),
        "name": changed(lambda g: g.nodes.__setitem__("extra", ir.ReLU())),
    }
    assert len(set(variants.values()) | {fp}) == len(variants) + 1, variants


def test_metadata_and_stamps_do_not_change_it():
    g = build_mlp()
    fp = fingerprint_graph(g)
    g2 = g.copy()
    g2.metadata["anything"] = "x"
    g2.nodes["fc1"] = g2.nodes["fc1"].replace(metadata={"source": "torch"})
    assert fingerprint_graph(g2) == fp
    assert fingerprint_graph(stamp_graph(g, git=False)) == fp


def test_structure_only_fingerprint():
    g = build_mlp()
    g2 = build_mlp(seed=9)
    assert fingerprint_graph(g) != fingerprint_graph(g2)
    assert fingerprint_graph(g, include_weights=False) == fingerprint_graph(g2, include_weights=False)
    assert fingerprint_graph(g, include_weights=False) != fingerprint_graph(g)
    g3 = g.copy()
    g3.nodes["fc2"] = ir.Affine(weight=np.zeros((2, 3), f32), bias=np.zeros(2, f32)).replace(weight=np.zeros((2, 3), np.float64).astype(f32))
    assert fingerprint_graph(g3, include_weights=False) == fingerprint_graph(g, include_weights=False)


def test_nested_graph_contents_count():
    def outer(seed):
        o = ir.Graph({"x": ir.Input(shape=(4,)), "block": build_mlp(seed), "y": ir.Output()})
        o.chain("x", "block", "y")
        return o

    assert fingerprint_graph(outer(0)) == fingerprint_graph(outer(0))
    assert fingerprint_graph(outer(0)) != fingerprint_graph(outer(1))


def test_verify_fingerprint():
    g = build_mlp()
    fp = fingerprint_graph(g)
    assert verify_fingerprint(g, fp) and verify_fingerprint(g, fp.upper())
    assert not verify_fingerprint(build_mlp(seed=3), fp)
    with pytest.raises(TalonError, match="no stamp"):
        verify_fingerprint(g)


# -- stamps ---------------------------------------------------------------------------------------
def test_stamp_graph_records_provenance_without_mutating():
    g = build_mlp()
    s = stamp_graph(g, notes="trained 3 epochs", metadata={"accuracy": 0.97, "epochs": 3, "run": {"id": "abc"}}, git=False)
    assert "talon_stamp" not in g.metadata and s is not g
    st_ = get_stamp(s)
    assert st_.fingerprint == fingerprint_graph(g) and st_.structure_fingerprint == fingerprint_graph(g, False)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", st_.created_utc)
    assert st_.versions["talon"] and st_.versions["python"] and st_.versions["numpy"] == np.__version__
    assert st_.notes == "trained 3 epochs"
    assert st_.metadata == {"accuracy": 0.97, "epochs": 3, "run": {"id": "abc"}}
    assert st_.git_commit == "" and st_.git_dirty is None
    assert verify_fingerprint(s)
    # the stamp is plain data for the file format: str/int/float and nested dicts
    def plain(d):
        return all(isinstance(k, str) and (plain(v) if isinstance(v, dict) else isinstance(v, (str, int, float))) for k, v in d.items())
    assert plain(s.metadata["talon_stamp"])


def test_tampering_is_detected():
    s = stamp_graph(build_mlp(), git=False)
    w = s.nodes["fc2"].weight.copy()
    w[0, 0] += 1
    s.nodes["fc2"] = s.nodes["fc2"].replace(weight=w)
    assert not verify_fingerprint(s)
    assert verify_fingerprint(s, include_weights=False)


def test_git_commit_outside_a_repository_is_empty(tmp_path):
    st_ = get_stamp(stamp_graph(build_mlp(), repo=tmp_path))
    assert st_.git_commit == "" and st_.git_dirty is None


def test_stamp_metadata_is_validated():
    with pytest.raises(TalonError, match="str, int, float"):
        stamp_graph(build_mlp(), metadata={"arr": np.zeros(3)}, git=False)
    with pytest.raises(TalonError, match="str, int, float"):
        stamp_graph(build_mlp(), metadata={"flag": True}, git=False)
    with pytest.raises(TalonError, match="key"):
        stamp_graph(build_mlp(), metadata={"a/b": 1}, git=False)


def test_get_stamp_of_unstamped_graph_is_none():
    assert get_stamp(build_mlp()) is None


# -- round trips through .t1c ---------------------------------------------------------------------
def test_identical_after_write_and_read(tmp_path):
    g = build_hybrid()
    path = tmp_path / "h.t1c"
    ir.write(str(path), g)
    assert fingerprint_graph(path) == fingerprint_graph(g)
    assert compare_graphs(g, path).identical


def test_stamp_survives_the_file(tmp_path):
    path = tmp_path / "m.t1c"
    ir.write(str(path), build_mlp())
    stamped = stamp_graph(path, notes="n", metadata={"k": 1, "nested": {"x": 2.5}}, git=False)
    st_ = get_stamp(path)
    assert st_ == get_stamp(stamped)
    assert verify_fingerprint(path)
    other = tmp_path / "copy.t1c"
    stamp_graph(build_mlp(), output=other, git=False)
    assert get_stamp(other) is not None


def mlp_from(sizes, seed, dtype):
    rng = np.random.default_rng(seed)
    nodes = {"x": ir.Input(shape=(sizes[0],))}
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        nodes[f"fc{i}"] = ir.Affine(weight=rng.normal(size=(b, a)).astype(f32), bias=rng.normal(size=b).astype(f32))
        nodes[f"lif{i}"] = lif(b, beta=float(rng.uniform(0.1, 0.95)), dtype=dtype)
    nodes["y"] = ir.Output()
    g = ir.Graph(nodes)
    g.chain(*nodes)
    return g


graphs = st.builds(
    mlp_from,
    st.lists(st.integers(1, 6), min_size=2, max_size=4),
    st.integers(0, 2**20),
    st.sampled_from([np.float32, np.float64]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs, st.data())
def test_sensitive_to_any_single_weight_change(g, data):
    fp = fingerprint_graph(g)
    arrays = [(n, f, a) for n, node in g.nodes.items() for f, a in node.arrays()]
    name, field, arr = data.draw(st.sampled_from(arrays))
    idx = data.draw(st.integers(0, arr.size - 1))
    new = arr.copy()
    old = new.flat[idx]
    positive = field == "tau"  # LIF validates tau > 0
    floats = st.floats(min_value=2.0**-20 if positive else None, allow_nan=False, allow_infinity=not positive, width=32 if arr.dtype == np.float32 else 64)
    value = data.draw(floats.filter(lambda v: np.array(v, arr.dtype).tobytes() != np.array(old, arr.dtype).tobytes()))
    new.flat[idx] = value
    g2 = g.copy()
    g2.nodes[name] = g2.nodes[name].replace(**{field: new})
    assert fingerprint_graph(g2) != fp
    assert fingerprint_graph(g2, include_weights=False) == fingerprint_graph(g, include_weights=False)
    assert not compare_graphs(g, g2).identical and name in compare_graphs(g, g2).nodes_modified


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(graphs)
def test_stable_under_round_trip(tmp_path, g):
    path = tmp_path / "g.t1c"
    ir.write(str(path), g)
    back = ir.read(str(path))
    assert fingerprint_graph(back) == fingerprint_graph(g)
    assert fingerprint_graph(back, include_weights=False) == fingerprint_graph(g, include_weights=False)


def test_git_commit_and_dirty_flag_are_recorded(monkeypatch):
    import subprocess

    from talon.sdk import stamp as stamp_mod

    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        out = "0123456789abcdef0123456789abcdef01234567\n" if "rev-parse" in cmd else " M src/x.py\n"
        return subprocess.CompletedProcess(cmd, 0, stdout=out, stderr="")

    monkeypatch.setattr(stamp_mod.subprocess, "run", fake_run)
    st_ = get_stamp(stamp_graph(build_mlp()))
    assert st_.git_commit == "0123456789abcdef0123456789abcdef01234567" and st_.git_dirty is True
    assert all("--no-optional-locks" in c or "rev-parse" in c for c in calls)  # read-only commands
