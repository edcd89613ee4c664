"""Small hand-built graphs for the CLI and viz tests (no torch needed)."""

from __future__ import annotations

import numpy as np

from talon import ir


def lif(n: int, beta: float = 0.9, threshold: float = 1.0) -> ir.LIF:
    tau = np.full(n, 1.0 / (1.0 - beta), np.float32)
    return ir.LIF(tau=tau, r=tau.copy(), v_leak=np.zeros(n, np.float32), v_threshold=np.full(n, threshold, np.float32), reset_mode="subtract")


def affine(out: int, inp: int, rng: np.random.Generator, scale: float = 0.5) -> ir.Affine:
    return ir.Affine(weight=rng.normal(0, scale, (out, inp)).astype(np.float32), bias=rng.normal(0, 0.1, out).astype(np.float32))


def build_snn(seed: int = 0, n_in: int = 8, hidden: int = 16, n_out: int = 4) -> ir.Graph:
    """Input -> Affine -> LIF -> Affine -> LIF -> Output."""
    rng = np.random.default_rng(seed)
    g = ir.Graph()
    g.add_node("inp", ir.Input(shape=(n_in,)))
    g.add_node("fc1", affine(hidden, n_in, rng))
    g.add_node("lif1", lif(hidden))
    g.add_node("fc2", affine(n_out, hidden, rng))
    g.add_node("lif2", lif(n_out))
    g.add_node("out", ir.Output())
    g.chain("inp", "fc1", "lif1", "fc2", "lif2", "out")
    return g


def build_foldable(seed: int = 1) -> ir.Graph:
    """Input -> Affine -> BatchNorm1d -> Dropout -> LIF -> Output, plus a dangling Affine off the input."""
    rng = np.random.default_rng(seed)
    g = ir.Graph()
    g.add_node("inp", ir.Input(shape=(6,)))
    g.add_node("fc", affine(5, 6, rng))
    g.add_node("bn", ir.BatchNorm1d(num_features=5, weight=np.ones(5), bias=np.zeros(5), running_mean=np.full(5, 0.1), running_var=np.full(5, 2.0)))
    g.add_node("drop", ir.Dropout(p=0.2))
    g.add_node("lif", lif(5))
    g.add_node("out", ir.Output())
    g.add_node("dead", affine(3, 6, rng))
    g.chain("inp", "fc", "bn", "drop", "lif", "out")
    g.add_edge("inp", "dead")
    return g


def build_bad_shapes() -> ir.Graph:
    """fc expects 5 inputs but gets 4: validates to an error, lints to SHAPE errors."""
    rng = np.random.default_rng(2)
    g = ir.Graph()
    g.add_node("inp", ir.Input(shape=(4,)))
    g.add_node("fc", affine(3, 5, rng))
    g.add_node("out", ir.Output())
    g.chain("inp", "fc", "out")
    return g
