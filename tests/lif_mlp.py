"""A small hand-built LIF MLP (Input-Affine-LIF-Affine-LIF-Output) shared by the eval and sweep tests."""

from __future__ import annotations

import numpy as np

from talon import ir


def mlp_graph(seed: int = 0, n_in: int = 8, hidden: int = 16, n_out: int = 4) -> ir.Graph:
    rng = np.random.default_rng(seed)

    def lif(n):
        tau = np.full(n, 10.0, np.float32)
        return ir.LIF(tau=tau, r=tau.copy(), v_leak=np.zeros(n, np.float32), v_threshold=np.full(n, 0.5, np.float32), reset_mode="subtract")

    g = ir.Graph()
    g.add_node("inp", ir.Input(shape=(n_in,)))
    g.add_node("fc1", ir.Affine(weight=rng.normal(0, 0.8, (hidden, n_in)).astype(np.float32), bias=np.zeros(hidden, np.float32)))
    g.add_node("lif1", lif(hidden))
    g.add_node("fc2", ir.Affine(weight=rng.normal(0, 0.8, (n_out, hidden)).astype(np.float32), bias=np.zeros(n_out, np.float32)))
    g.add_node("lif2", lif(n_out))
    g.add_node("out", ir.Output())
    g.chain("inp", "fc1", "lif1", "fc2", "lif2", "out")
    return g
