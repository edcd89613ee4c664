"""An observer that names its nodes (TransientStateObserver(fn, nodes), or any observer with a `nodes`
attribute) is called for those nodes only: in forward, in run (batched and step by step), inside a
recurrent cycle and inside a nested graph ("outer/inner"); what it is shown, and every result and state
of the run, are exactly what an observer of every node gets."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings, strategies as st

from talon import ir
from talon.bridge import TransientStateObserver, ir_to_torch

from test_carried_state import B, N_IN, _graph, _tensors

T = 9


def build_recurrent(seed: int, n: int = 5) -> ir.Graph:
    """snnTorch RLeaky as exported: inp -> fc -> rl, rl -> rl.recurrent -> rl (a delayed edge), rl -> fc2 -> n2 -> out."""
    rng = np.random.default_rng(seed)
    lif = lambda k, **kw: ir.LIF(tau=np.full(k, 5.0), r=np.full(k, 5.0), v_leak=np.zeros(k), v_threshold=np.full(k, 0.5), **kw)  # noqa: E731
    dense = lambda o, i, s: ir.Affine(weight=rng.normal(0, s, (o, i)).astype(np.float32), bias=np.zeros(o, np.float32))  # noqa: E731
    nodes = {"inp": ir.Input(shape=(N_IN,)), "fc": dense(n, N_IN, 1.0), "rl": lif(n, reset_mode="zero_post"),
             "rl.recurrent": dense(n, n, 0.4), "fc2": dense(2, n, 1.0), "n2": lif(2), "out": ir.Output()}
    edges = [("inp", "fc"), ("fc", "rl"), ("rl", "rl.recurrent"), ("rl.recurrent", "rl"), ("rl", "fc2"), ("fc2", "n2"), ("n2", "out")]
    return ir.Graph(nodes, edges)


def _observe(seen: list):
    def fn(name, node, args, out, st):
        seen.append((name, [a.clone() for a in args], out.clone(), [t.clone() for t in _tensors(st)] if st else None))

    return fn


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _runs(graph, xs, nodes, transient: bool, steps_per_chunk: int):
    """Everything observer `nodes` and an observer of every node see, and both runs' results."""
    out = []
    for chosen in (None, nodes):
        seen: list = []
        fn = _observe(seen)
        if transient:
            observer = TransientStateObserver(fn, chosen)
        else:
            observer = fn
            if chosen is not None:
                fn.nodes = chosen
        ex = ir_to_torch(graph, return_state=True, observer=observer)
        ex.chunk_bytes = steps_per_chunk * B * ex._step_bytes
        with torch.inference_mode():
            batched = ex.run(xs, None)
            stepped = ex.run(xs, None, batch_time=False)
            state, single = None, []
            for x in xs[:3]:
                y, state = ex(x, state)
                single.append(y)
        out.append((seen, (batched, stepped, single, state)))
    return out


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["flat", "nested", "recurrent"]), st.integers(0, 2**16), st.integers(1, 4), st.booleans(),
       st.lists(st.sampled_from(["fc", "lif", "lif2", "fc2", "y", "block", "block/lif", "block/o", "rl", "rl.recurrent", "n2", "out"]), max_size=4))
def test_observer_sees_only_its_nodes_and_the_run_is_unchanged(kind, seed, steps_per_chunk, transient, names):
    if kind == "recurrent":
        graph = build_recurrent(seed)
    else:
        graph = _graph("subtract", True, 1.0, seed, nested=kind == "nested")
    xs = torch.rand(T, B, N_IN, generator=torch.Generator().manual_seed(seed)) * 2
    (all_seen, all_results), (some_seen, some_results) = _runs(graph, xs, set(names), transient, steps_per_chunk)
    assert _same(all_results, some_results)  # outputs and states bit for bit
    want = [s for s in all_seen if s[0] in names]
    assert len(some_seen) == len(want) and all(a[0] == b[0] and _same(a[1:], b[1:]) for a, b in zip(some_seen, want))


def test_nested_and_cycle_nodes_are_named_as_shown_to_every_node_observer():
    graph = _graph("subtract", True, 1.0, 3, nested=True)
    seen: list = []
    ex = ir_to_torch(graph, observer=TransientStateObserver(lambda name, *a: seen.append(name), {"block/lif", "y"}))
    with torch.inference_mode():
        ex(torch.rand(B, N_IN))
    assert seen == ["block/lif", "y"]
    seen.clear()
    ex.observer = TransientStateObserver(lambda name, *a: seen.append(name), ())  # no node at all
    with torch.inference_mode():
        ex.run(torch.rand(4, B, N_IN))
    assert seen == []
    ex.observer = None
    assert all(not c.observed for c in ex._calls)
    rec = build_recurrent(0)
    ex = ir_to_torch(rec, observer=TransientStateObserver(lambda name, *a: seen.append(name), {"rl.recurrent", "n2"}))
    with torch.inference_mode():
        ex.run(torch.rand(5, B, N_IN))
    assert seen == ["rl.recurrent", "n2"]  # the cycle's nodes once per chunk, with whole sequences
