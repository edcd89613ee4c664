"""Fixed-point activations carried in float32 between exact layers (talon.backend.cpu.fixed_narrow):
chosen only where every reader is exact on float32, and never a changed bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talon import ir
from talon.backend.cpu import exact_products as xp
from talon.backend.cpu import fixed as fx
from talon.backend.cpu import simulator
from talon.backend.cpu.fixed_format import Format
from talon.backend.cpu.fixed_narrow import fits_float32, narrow_float32
from talon.bridge.executor import ir_to_torch

from backend_graphs import lif


def _conv(rng: np.random.Generator, c_out: int, c_in: int, bias: bool = True) -> ir.Conv2d:
    w = rng.normal(0, 0.4, (c_out, c_in, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, c_out).astype(np.float32) if bias else np.zeros(c_out, np.float32)
    return ir.Conv2d(weight=w, bias=b, padding=(1, 1))


def _fc(rng: np.random.Generator, n_out: int, n_in: int) -> ir.Affine:
    return ir.Affine(weight=rng.normal(0, 0.3, (n_out, n_in)).astype(np.float32), bias=rng.normal(0, 0.1, n_out).astype(np.float32))


def _graph(kind: str) -> tuple[ir.Graph, set[str]]:
    """A small conv front end of the given kind, and the synaptic layers that may emit float32."""
    rng = np.random.default_rng(7)
    nodes: dict[str, ir.Node] = {"inp": ir.Input(shape=(1, 6, 6)), "conv": _conv(rng, 3, 1)}
    tail = {"flat": ir.Flatten(), "fc": _fc(rng, 5, 27), "lif": lif(5, threshold=0.02), "fc_out": _fc(rng, 2, 5), "out": ir.Output()}
    extra: list[tuple[str, str]] = []
    want = {"conv"}
    if kind == "hybrid":  # the tutorial's shape: conv -> ReLU -> max pool -> flatten -> affine -> LIF
        nodes |= {"relu": ir.ReLU(), "pool": ir.MaxPool2d(kernel_size=(2, 2), stride=(2, 2))}
    elif kind == "two_convs":  # both convolutions; the second one with a zero bias
        nodes |= {"relu": ir.ReLU(), "conv2": _conv(rng, 3, 3, bias=False), "relu2": ir.ReLU(), "pool": ir.MaxPool2d(kernel_size=(2, 2), stride=(2, 2))}
        want = {"conv", "conv2"}
    elif kind == "read_by_an_output":  # the ReLU's values also leave the graph: they stay float64
        nodes |= {"relu": ir.ReLU(), "pool": ir.MaxPool2d(kernel_size=(2, 2), stride=(2, 2))}
        extra, want = [("relu", "relu_out")], set()
    elif kind == "leaky_relu":  # a requantised slope: not a pure comparison
        nodes |= {"relu": ir.ReLU(negative_slope=0.125), "pool": ir.MaxPool2d(kernel_size=(2, 2), stride=(2, 2))}
        want = set()
    elif kind == "avg_pool":  # an average rounds: not a pure comparison
        nodes |= {"relu": ir.ReLU(), "pool": ir.AvgPool2d(kernel_size=(2, 2), stride=(2, 2))}
        want = set()
    else:  # pragma: no cover
        raise AssertionError(kind)
    nodes |= tail
    g = ir.Graph({**nodes, **({"relu_out": ir.Output()} if extra else {})})
    g.chain(*nodes)
    for e in extra:
        g.edges.append(e)
    return g, want


def _run(g: ir.Graph, x: torch.Tensor, narrow: bool, monkeypatch: pytest.MonkeyPatch):
    plan, _ = simulator.plan_for(g, simulator.make_stimulus(x, {"inp": (1, 6, 6)}, None), None)
    with monkeypatch.context() as m:
        if not narrow:
            m.setattr(simulator, "narrow_float32", lambda *a, **k: [])
        stim = simulator.make_stimulus(x, {"inp": (1, 6, 6)}, None)
        spiking = [n for n, node in g.nodes.items() if node.spiking]
        neurons = [n for n, node in g.nodes.items() if node.state_fields]
        return plan, simulator.run_instrumented(g, stim, plan=plan, record_spikes=spiking, record_membranes=neurons)


KINDS = ["hybrid", "two_convs", "read_by_an_output", "leaky_relu", "avg_pool"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("float32_products", [True, False])
def test_narrowing_chooses_only_exact_readers_and_changes_no_bit(kind, float32_products, monkeypatch):
    g, want = _graph(kind)
    x = torch.rand((12, 3, 1, 6, 6), generator=torch.Generator().manual_seed(2)) * 2 - 0.5
    if not float32_products:  # float64 products and rounding, output converted to float32 afterwards
        monkeypatch.setattr(xp, "float32_exact", lambda *a, **k: False)
    plan, fast = _run(g, x, True, monkeypatch)
    _, slow = _run(g, x, False, monkeypatch)
    assert fast.spike_counts == slow.spike_counts and fast.input_events == slow.input_events
    for rec_fast, rec_slow in ((fast.spikes, slow.spikes), (fast.membranes, slow.membranes), (fast.outputs, slow.outputs)):
        assert set(rec_fast) == set(rec_slow)
        for n in rec_fast:
            assert rec_fast[n].dtype == rec_slow[n].dtype == torch.float64, n
            assert torch.equal(rec_fast[n], rec_slow[n]), n
    assert fast.spike_counts["lif"] > 0  # a live network, not a trivially equal silence

    # which outputs went float32, seen by the executor's observer
    ex = ir_to_torch(plan.graph, return_state=True, node_map=fx.fixed_node_map(plan)).double()
    # fc -> lif -> fc_out: the products hand float32 to the fused neuron, whose spikes go to fc_out as float32
    chain = {"fc", "lif"}
    assert set(narrow_float32(ex, plan)) == want | chain
    # a ReLU whose only input is a narrowed layer's fresh output, read by nothing else, runs in place
    modules = dict(zip([n for n, node in g.nodes.items() if node.type_name != "Input"], ex.runtimes.values()))
    in_place = {n for n, m in modules.items() if getattr(m, "kwargs", {}).get("inplace")}
    assert in_place == {"relu", "relu2"} & set(g.nodes) if want else not in_place
    dtypes: dict[str, torch.dtype] = {}
    ex.observer = lambda name, node, args, out, st: dtypes.setdefault(name, out.dtype)
    with torch.inference_mode():
        ex.run(fx.round_half_up(x.to(torch.float64), plan.format_of("inp")), state=None)
    narrowed = {n for n, d in dtypes.items() if d == torch.float32}
    between = {"relu", "pool", "flat", "conv2", "relu2"} & set(g.nodes)
    assert narrowed == (want | between if want else set()) | chain


def test_a_recurrent_graph_is_not_narrowed():
    rng = np.random.default_rng(1)
    nodes = {"inp": ir.Input(shape=(4,)), "fc": _fc(rng, 3, 4), "lif": lif(3), "rec": _fc(rng, 3, 3), "out": ir.Output()}
    g = ir.Graph(nodes, [("inp", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")])
    cal = fx.Calibration({"inp": 1.0, "fc": 2.0, "rec": 2.0, "lif": 1.0, "out": 1.0}, {"lif": 1.0})
    plan = fx.plan_fixed_point(g, cal)
    ex = ir_to_torch(plan.graph, return_state=True, node_map=fx.fixed_node_map(plan)).double()
    assert narrow_float32(ex, plan) == []


def test_float32_holds_formats_of_at_most_24_bits():
    assert fits_float32(Format(24, 0)) and fits_float32(Format(8, 5)) and fits_float32(Format(16, -3))
    assert not fits_float32(Format(26, 0)) and not fits_float32(Format(8, 200))
    for fmt in (Format(24, 0), Format(24, 30), Format(24, -20)):
        ends = np.ldexp(np.array([fmt.lo, fmt.lo + 1, fmt.hi - 1, fmt.hi], np.float64), -fmt.frac)
        assert np.array_equal(ends.astype(np.float32).astype(np.float64), ends)
    wide = float(2**25 - 1)  # the top of a 26-bit format: not a float32
    assert float(np.float32(wide)) != wide
