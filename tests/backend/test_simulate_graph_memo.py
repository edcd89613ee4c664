"""simulate keeps what it derives from a graph alone (the cost table, the layers fed by spikes) while the
graph's content is unchanged (talon.backend.cpu.graph_memo): a weight or threshold changed in place, a
node or field replaced, an edge changed, a cost rule replaced or a nested graph's array changed all give
a fresh derivation, so a simulate (and the profile, its energy) after such a change is exactly that of a
fresh copy of the changed graph."""

from __future__ import annotations

import copy
import dataclasses
import gc

import numpy as np
import pytest
import torch

from talon import ir
from talon.backend.cpu import graph_memo
from talon.sdk import cost

from backend_graphs import build_hybrid, build_mlp, lif
from test_simulate_transient_observer import _same

STEPS = 10


def _nested_mlp(seed: int = 0) -> ir.Graph:
    rng = np.random.default_rng(seed)
    inner = ir.Graph({"i": ir.Input(shape=(5,)), "fc": ir.Affine(weight=rng.normal(0, 1.0, (5, 5)).astype(np.float32), bias=np.zeros(5, np.float32)),
                      "lif": lif(5, threshold=0.5), "o": ir.Output()})
    inner.chain("i", "fc", "lif", "o")
    nodes = {"x": ir.Input(shape=(4,)), "fc0": ir.Affine(weight=rng.normal(0, 1.0, (5, 4)).astype(np.float32), bias=np.zeros(5, np.float32)),
             "lif0": lif(5, threshold=0.5), "block": inner, "y": ir.Output()}
    g = ir.Graph(nodes)
    g.chain(*nodes)
    return g


def _replace_rule(type_name: str, rule):
    """Register `rule` for `type_name` in place of its entry; returns the undo."""
    old = cost.registered_cost(type_name)
    cost.register_cost(type_name, rule, weight_fields=old.weight_fields, formula=old.formula, replace=True)
    return lambda: cost.register_cost(type_name, old.rule, weight_fields=old.weight_fields, formula=old.formula, replace=True)


def _scale(arr: np.ndarray, factor: float) -> None:
    arr *= factor  # in place: the node and the array object stay the same


def _drop_tail(g: ir.Graph) -> None:
    """inp -> fc1 -> n1 -> out: two nodes and their edges gone, one edge new."""
    del g.nodes["fc2"], g.nodes["n2"]
    g.edges[:] = [e for e in g.edges if "fc2" not in e and "n2" not in e] + [("n1", "out")]


def _changes():
    """(name, graph builder, change applied to the graph in place, returning an undo or None)."""
    relu = cost.registered_cost("ReLU").rule
    return [
        ("large weight", build_hybrid, lambda g: g.nodes["fc1"].weight.__setitem__((0, 0), 5.0)),
        ("threshold", build_hybrid, lambda g: _scale(g.nodes["lif"].v_threshold, 0.5)),
        ("small array", build_mlp, lambda g: g.nodes["fc2"].bias.__setitem__(0, 3.0)),
        ("node replaced", build_hybrid, lambda g: g.nodes.__setitem__("relu", ir.ReLU(negative_slope=0.25))),
        ("neuron replaced", build_mlp, lambda g: g.nodes.__setitem__("n1", ir.ReLU())),
        ("spike input declared", build_mlp, lambda g: g.nodes.__setitem__("inp", g.nodes["inp"].replace(spikes=True))),
        ("edges changed", build_mlp, _drop_tail),
        ("nested array", _nested_mlp, lambda g: _scale(g.nodes["block"].nodes["fc"].weight, -1.0)),
        ("cost rule", build_mlp, lambda g: _replace_rule("Affine", lambda node, ins, outs: cost.Counts())),
        ("other cost rule", build_hybrid, lambda g: _replace_rule("ReLU", lambda node, ins, outs: dataclasses.replace(relu(node, ins, outs), flops=7))),
    ]


@pytest.mark.parametrize("name, build, change", _changes(), ids=[c[0] for c in _changes()])
def test_derived_values_are_fresh_after_every_change(name, build, change):
    g = build()
    values = graph_memo.derived(g)
    values["seen"] = True
    assert graph_memo.derived(g) is values  # unchanged: kept
    undo = change(g)
    try:
        fresh = graph_memo.derived(g)
        assert "seen" not in fresh and fresh is not values
        fresh["seen"] = True
        assert graph_memo.derived(g) is fresh
    finally:
        if callable(undo):
            undo()


def test_the_memo_lets_go_of_a_dead_graph():
    g = build_mlp()
    graph_memo.derived(g)["x"] = 1
    gid = id(g)
    assert gid in graph_memo._MEMO
    del g
    gc.collect()
    assert gid not in graph_memo._MEMO


def _results(cpu, g, x, mode):
    sim = cpu.simulate(g, x, mode=mode, record="spikes")
    prof = cpu.profile(g, x, mode=mode)
    return sim, prof


# fixed point refuses nested graphs (flatten them first)
CASES = [(i, mode) for i, c in enumerate(_changes()) for mode in ("float", "fixed") if not (mode == "fixed" and c[1] is _nested_mlp)]


@pytest.mark.parametrize("which, mode", CASES, ids=[f"{_changes()[i][0]}-{m}" for i, m in CASES])
def test_simulate_after_a_change_is_a_fresh_copys(cpu, which, mode, seed=3):
    """Two calls on one graph object with a change in between: the second call's results (counts, events,
    outputs, recorded spikes, the fixed plan and agreement, the profile's energy and per-layer costs) are
    those of a deep copy of the changed graph, which nothing was kept for."""
    name, build, change = _changes()[which]
    g = build()
    shape = g.nodes[g.input_names[0]].shape
    x = (torch.rand(STEPS, 2, *shape, generator=torch.Generator().manual_seed(seed)) < 0.5).float()
    if name != "spike input declared":  # real-valued: the Input is not priced as spikes
        x *= 1.5
    before, _ = _results(cpu, g, x, mode)
    undo = change(g)
    try:
        after, after_prof = _results(cpu, g, x, mode)
        fresh, fresh_prof = _results(cpu, copy.deepcopy(g), x, mode)
    finally:
        if callable(undo):
            undo()
    assert _same(after, fresh)
    assert _same(after_prof, fresh_prof)
    if name in ("neuron replaced", "cost rule"):  # what the memo keeps is what changed
        assert after.input_events.keys() != before.input_events.keys()
    if name in ("large weight", "threshold", "small array", "nested array"):
        assert not _same(after.outputs, before.outputs) or after.spike_counts != before.spike_counts


def test_a_graph_with_an_object_array_is_never_memoised():
    g = build_mlp()
    object.__setattr__(g.nodes["fc1"], "bias", np.array([1, None, 2], dtype=object))
    assert graph_memo.content_key(g) is None and graph_memo.derived(g) == {}
    graph_memo.derived(g)["x"] = 1
    assert graph_memo.derived(g) == {}
