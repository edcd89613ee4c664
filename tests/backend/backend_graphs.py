"""Small hand-built graphs for the backend tests (the IR the exporter would produce).

The tutorial's hybrid graph and the lif/affine builders are shared with the sdk tests: tests/tutorial_graphs.py.
"""

from __future__ import annotations

import numpy as np

from talon import ir
from tutorial_graphs import affine, build_hybrid, lif  # noqa: F401  (re-exported for the backend tests)


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


def build_mixed_conv(rng: np.random.Generator) -> ir.Graph:
    """Conv2d -> leaky ReLU -> AvgPool2d -> Flatten -> SpikingAffine (4-bit weights) -> LIF (fixed-point coverage)."""
    nodes = {
        "inp": ir.Input(shape=(1, 6, 6)),
        "conv": ir.Conv2d(weight=rng.normal(0, 0.5, (2, 1, 3, 3)).astype(np.float32), bias=rng.normal(0, 0.1, 2).astype(np.float32), padding=(1, 1)),
        "lrelu": ir.ReLU(negative_slope=0.1),
        "avg": ir.AvgPool2d(kernel_size=(3, 3), stride=(3, 3)),
        "flat": ir.Flatten(),
        "sfc": ir.SpikingAffine(weight=rng.normal(0, 0.5, (4, 8)).astype(np.float32), bias=np.full(4, 0.4, np.float32), weight_bits=4, accumulator_bits=16),
        "lif": lif(4, threshold=0.05),
        "out": ir.Output(),
    }
    g = ir.Graph(nodes)
    g.chain(*nodes)
    return g


def build_threshold_residual(rng: np.random.Generator, relu: bool = False) -> ir.Graph:
    """fc1 -> Threshold -> fc2, added back to fc1 by a residual Skip (optionally followed by a ReLU)."""
    nodes = {
        "inp": ir.Input(shape=(4,)),
        "fc1": ir.Affine(weight=rng.normal(0, 1, (4, 4)).astype(np.float32), bias=np.zeros(4, np.float32)),
        "thr": ir.Threshold(v_threshold=np.full(4, 0.2)),
        "fc2": ir.Affine(weight=rng.normal(0, 1, (4, 4)).astype(np.float32), bias=rng.normal(0, 0.1, 4).astype(np.float32)),
        "res": ir.Skip(skip_type="residual"),
    }
    edges = [("inp", "fc1"), ("fc1", "thr"), ("thr", "fc2"), ("fc2", "res"), ("fc1", "res")]
    last = "res"
    if relu:
        nodes["relu"] = ir.ReLU()
        edges.append(("res", "relu"))
        last = "relu"
    nodes["out"] = ir.Output()
    edges.append((last, "out"))
    return ir.Graph(nodes, edges)


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
