"""An observer declared transient (TransientStateObserver, or keeps_state = False) lets run() keep
stepping neuron states in place across time chunks, and sees the same values at every chunk as a plain
observer; a plain observer that keeps what it is shown still gets states never modified afterwards."""

from __future__ import annotations

import torch

from talon.bridge import TransientStateObserver, ir_to_torch
from talon.bridge._carry import Carried

from test_carried_state import B, N_IN, _graph, _tensors

T, STEPS_PER_CHUNK = 9, 2  # five chunks


def _run(observer_for, nested: bool = False, mode: str = "subtract"):
    """Two run() calls on one executor; observer_for(record) builds the observer from a record callback.
    Returns what the observer was shown (name, the state as shown, its values cloned at the call) and
    the outputs."""
    g = _graph(mode, True, 1.0, 5, nested)
    seen: list = []

    def record(name, node, args, out, st):
        if st:
            seen.append((name, st, [t.clone() for t in _tensors(st)]))

    ex = ir_to_torch(g, observer=observer_for(record))
    ex.chunk_bytes = STEPS_PER_CHUNK * B * ex._step_bytes
    xs = torch.rand(T, B, N_IN, generator=torch.Generator().manual_seed(7)) * 2
    with torch.inference_mode():
        outs = [ex.run(xs), ex.run(xs)]
    return seen, outs, ex


def _values(seen):
    return [(name, copy) for name, _, copy in seen]


def test_transient_observer_sees_the_same_values_and_results_at_every_chunk():
    for nested in (False, True):
        plain, plain_out, _ = _run(lambda f: f, nested)
        borrowed, borrowed_out, _ = _run(TransientStateObserver, nested)
        # two runs, five chunks: two neurons (and the nested graph's node, shown its state dict)
        assert len(plain) == len(borrowed) == 2 * 5 * (3 if nested else 2)
        for (n1, a), (n2, b) in zip(_values(plain), _values(borrowed)):
            assert n1 == n2 and all(torch.equal(x, y) for x, y in zip(a, b))
        assert all(torch.equal(x, y) for x, y in zip(plain_out, borrowed_out))
        assert not any(isinstance(st, Carried) for _, st, _ in plain + borrowed)  # never shown ownership


def test_transient_observer_lets_run_step_the_membrane_in_place():
    borrowed, _, _ = _run(TransientStateObserver)
    plain, _, _ = _run(lambda f: f)
    lif = lambda seen: [st[0] for name, st, _ in seen if name == "lif"]  # noqa: E731
    # within one run(), chunk after chunk: the very membrane tensor, stepped on (not copied)
    first_run = lif(borrowed)[:5]
    assert all(v is first_run[0] for v in first_run)
    assert not torch.equal(first_run[0], lif(plain)[0])  # so what it showed at chunk 0 has moved on
    # a plain observer is shown a new tensor at every chunk, each left as it was shown
    kept = lif(plain)[:5]
    assert len({id(v) for v in kept}) == 5
    assert all(torch.equal(st[0], copy[0]) for name, st, copy in plain if name == "lif")


def test_plain_observer_keeping_states_gets_them_unmodified():
    for nested in (False, True):
        seen, _, ex = _run(lambda f: f, nested)
        assert all(torch.equal(a, b) for _, st, copy in seen for a, b in zip(_tensors(st), copy))
        assert ex.observer is not None


def test_keeps_state_attribute_is_the_protocol_and_reaches_nested_graphs():
    class Counter:
        keeps_state = False

        def __init__(self):
            self.calls = 0

        def __call__(self, name, node, args, out, st):
            self.calls += 1

    counter = Counter()
    g = _graph("subtract", True, 1.0, 5, nested=True)
    ex = ir_to_torch(g, observer=counter)
    inner = ex.runtimes["block"].executor
    assert ex._observer_keeps is False and getattr(inner.observer, "keeps_state", True) is False
    ex.observer = lambda *a: None
    assert ex._observer_keeps is True and getattr(inner.observer, "keeps_state", True) is True
    ex.observer = None
    assert inner.observer is None
