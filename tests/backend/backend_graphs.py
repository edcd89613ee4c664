"""Small hand-built graphs for the backend tests (the IR the exporter would produce)."""

from __future__ import annotations

import numpy as np

from talon import ir


def lif(n: int, *, beta: float = 0.9, threshold: float = 1.0, **kw) -> ir.LIF:
    tau = 1.0 / (1.0 - beta)
    return ir.LIF(tau=np.full(n, tau), r=np.full(n, tau), v_leak=np.zeros(n), v_threshold=np.full(n, threshold), **kw)


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


def build_mlp(seed: int = 0, neuron=None, neuron2=None, n_in: int = 4) -> ir.Graph:
    """Input(n_in) -> Affine(3) -> neuron(3) -> Affine(2) -> neuron2(2) -> Output."""
    rng = np.random.default_rng(seed)
    nodes = {
        "inp": ir.Input(shape=(n_in,)),
        "fc1": affine(3, n_in, rng, 1.0),
        "n1": neuron if neuron is not None else lif(3),
        "fc2": affine(2, 3, rng, 1.0),
        "n2": neuron2 if neuron2 is not None else lif(2),
        "out": ir.Output(),
    }
    g = ir.Graph(nodes)
    g.chain(*nodes)
    return g


def build_tiny() -> ir.Graph:
    """The hand-checked graph of docs/energy.md: Input(2) -> Affine(3x2) -> LIF(3) -> Linear(2x3) -> Output.

    fc1 passes input 0 and 1 to neurons 0 and 1; LIF beta 0.5, gain 1, threshold 1, subtract reset.
    With the constant input [2, 0.5]: neuron 0 spikes on every step, the others never.
    """
    nodes = {
        "inp": ir.Input(shape=(2,)),
        "fc1": ir.Affine(weight=np.array([[1, 0], [0, 1], [0, 0]], np.float32), bias=np.zeros(3, np.float32)),
        "lif": ir.LIF(tau=np.full(3, 2.0), r=np.full(3, 2.0), v_leak=np.zeros(3), v_threshold=np.ones(3), reset_mode="subtract"),
        "fc2": ir.Linear(weight=np.ones((2, 3), np.float32)),
        "out": ir.Output(),
    }
    g = ir.Graph(nodes)
    g.chain(*nodes)
    return g
