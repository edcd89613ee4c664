"""Hand-built IR graphs and node builders shared by the sdk and backend tests (numpy only, no torch).

build_hybrid is the tutorial's HybridSNN as the exporter produces it (float32 arrays), so the sdk and
backend suites can test it without torch, snnTorch or the exporter.
"""

from __future__ import annotations

import numpy as np

from talon import ir


def lif(n: int, *, beta: float = 0.9, threshold: float = 1.0, dtype=np.float32, **kw) -> ir.LIF:
    """n LIF neurons with snnTorch's Leaky(beta) dynamics: tau = r = 1 / (1 - beta), no leak potential."""
    tau = 1.0 / (1.0 - beta)
    return ir.LIF(
        tau=np.full(n, tau, dtype),
        r=np.full(n, tau, dtype),
        v_leak=np.zeros(n, dtype),
        v_threshold=np.full(n, threshold, dtype),
        **kw,
    )


def affine(out: int, inp: int, rng: np.random.Generator, scale: float = 0.1) -> ir.Affine:
    return ir.Affine(weight=rng.normal(0, scale, (out, inp)).astype(np.float32), bias=rng.normal(0, scale, out).astype(np.float32))


def build_hybrid(seed: int = 0) -> ir.Graph:
    """The tutorial's HybridSNN: Input(1,28,28) -> Conv2d(16,1,3,3,pad 1) -> ReLU -> MaxPool2d(2) ->
    Flatten -> Affine(64,3136) -> LIF(64) -> Affine(10,64) -> Output."""
    rng = np.random.default_rng(seed)
    nodes = {
        "input": ir.Input(shape=(1, 28, 28)),
        "conv1": ir.Conv2d(weight=rng.normal(0, 0.3, (16, 1, 3, 3)).astype(np.float32), bias=rng.normal(0, 0.1, 16).astype(np.float32), padding=(1, 1)),
        "relu": ir.ReLU(),
        "pool": ir.MaxPool2d(kernel_size=(2, 2), stride=(2, 2)),
        "flatten": ir.Flatten(),
        "fc1": affine(64, 3136, rng, 0.02),
        "lif": lif(64),
        "fc2": affine(10, 64, rng),
        "output": ir.Output(),
    }
    g = ir.Graph(nodes)
    g.chain(*nodes)
    return g
