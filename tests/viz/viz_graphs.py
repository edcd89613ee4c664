"""Graphs and a mapping for the viz tests (no torch)."""

from __future__ import annotations

import numpy as np

from talon import ir


def lif(n: int) -> ir.LIF:
    tau = np.full(n, 10.0, np.float32)
    return ir.LIF(tau=tau, r=tau.copy(), v_leak=np.zeros(n, np.float32), v_threshold=np.ones(n, np.float32), reset_mode="subtract")


def build_branchy(seed: int = 0) -> ir.Graph:
    """Input -> fc_a -> lif_a --+--> concat -> fc_out -> lif_out -> Output, plus Input -> fc_b -> lif_b -+,
    and a recurrent edge lif_a -> rec -> lif_a (through the stateful neuron)."""
    rng = np.random.default_rng(seed)
    w = lambda o, i: ir.Affine(weight=rng.normal(0, 0.5, (o, i)).astype(np.float32), bias=np.zeros(o, np.float32))  # noqa: E731
    g = ir.Graph()
    g.add_node("inp", ir.Input(shape=(6,)))
    g.add_node("fc_a", w(8, 6))
    g.add_node("lif_a", lif(8))
    g.add_node("rec", ir.Linear(weight=rng.normal(0, 0.1, (8, 8)).astype(np.float32)))
    g.add_node("fc_b", w(200, 6))
    g.add_node("lif_b", lif(200))
    g.add_node("cat", ir.Concat(dim=0))
    g.add_node("fc_out", w(3, 208))
    g.add_node("lif_out", lif(3))
    g.add_node("out", ir.Output())
    g.chain("inp", "fc_a", "lif_a", "cat", "fc_out", "lif_out", "out")
    g.chain("inp", "fc_b", "lif_b")
    g.add_edge("lif_b", "cat")
    g.chain("lif_a", "rec", "lif_a")
    return g


def build_staged(stages: int = 12, branches: int = 2, width: int = 4, seed: int = 0) -> ir.Graph:
    """A branching graph of 2 + stages * (2 * branches + 1) nodes (60 for the defaults): Input, then per
    stage `branches` parallel Affine -> LIF paths joined by a Concat, then Output. Long node names, as a
    converted model has."""
    rng = np.random.default_rng(seed)
    g = ir.Graph()
    g.add_node("input", ir.Input(shape=(width,)))
    prev, dim = "input", width
    for s in range(stages):
        cat = f"stage{s}_concat"
        for b in range(branches):
            fc, neuron = f"stage{s}_branch{b}_linear", f"stage{s}_branch{b}_leaky"
            g.add_node(fc, ir.Affine(weight=rng.normal(0, 0.5, (width, dim)).astype(np.float32), bias=np.zeros(width, np.float32)))
            g.add_node(neuron, lif(width))
            g.chain(prev, fc, neuron)
        g.add_node(cat, ir.Concat(dim=0))
        for b in range(branches):
            g.add_edge(f"stage{s}_branch{b}_leaky", cat)
        prev, dim = cat, width * branches
    g.add_node("output", ir.Output())
    g.add_edge(prev, "output")
    return g
