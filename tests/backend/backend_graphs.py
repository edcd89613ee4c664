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


# -- CubaLIF and recurrent graphs (fixed point and fpga) --------------------------------------------


def cuba(n: int, *, alpha: float = 0.8, beta: float = 0.9, threshold: float = 0.5, unit_w_in: bool = True, **kw) -> ir.CubaLIF:
    """n CubaLIF neurons with snnTorch Synaptic(alpha, beta) dynamics, as the exporter writes them:
    tau_syn = 1/(1-alpha), tau_mem = 1/(1-beta), r = tau_mem and w_in = tau_syn (unit gains; with
    unit_w_in=False w_in is left None, the same gain by default)."""
    tau_syn, tau_mem = 1.0 / (1.0 - alpha), 1.0 / (1.0 - beta)
    return ir.CubaLIF(
        tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, tau_mem), r=np.full(n, tau_mem), w_in=np.full(n, tau_syn) if unit_w_in else None,
        v_leak=np.zeros(n), v_threshold=np.full(n, threshold), **kw,
    )  # fmt: skip


#: (label, reset_mode, reset_delay): every reset the float runtime supports for CubaLIF
CUBA_RESETS = [
    ("subtract", "subtract", True), ("zero", "zero", True), ("zero_post", "zero_post", True), ("none", "none", True),
    ("subtract_now", "subtract", False), ("zero_now", "zero", False), ("zero_post_now", "zero_post", False),
]  # fmt: skip


def build_cuba_mlp(seed: int = 0, n_in: int = 4) -> ir.Graph:
    """One two-layer CubaLIF MLP per entry of CUBA_RESETS, all fed by one Input:
    inp -> fc1_<label> -> c1_<label> (3) -> fc2_<label> -> c2_<label> (2) -> out_<label>,
    plus a branch "gains" with non-unit gains, a leak potential, a reset potential and w_in None."""
    rng = np.random.default_rng(seed)
    nodes: dict = {"inp": ir.Input(shape=(n_in,))}
    edges = []
    branches = [(label, cuba(3, reset_mode=m, reset_delay=d), cuba(2, alpha=0.7, beta=0.8, reset_mode=m, reset_delay=d))
                for label, m, d in CUBA_RESETS]  # fmt: skip
    odd = ir.CubaLIF(tau_syn=np.array([3.0, 4.0, 6.0]), tau_mem=np.array([5.0, 8.0, 10.0]), r=np.array([2.0, 3.0, 5.0]), w_in=None,
                     v_leak=np.full(3, 0.2), v_threshold=np.array([0.4, 0.5, 0.6]), v_reset=np.full(3, -0.1), reset_mode="zero")  # fmt: skip
    branches.append(("gains", odd, cuba(2, unit_w_in=False, reset_mode="subtract", graded_spikes_factor=0.5)))
    for label, n1, n2 in branches:
        names = (f"fc1_{label}", f"c1_{label}", f"fc2_{label}", f"c2_{label}", f"out_{label}")
        nodes.update(zip(names, (affine(3, n_in, rng, 1.0), n1, affine(2, 3, rng, 1.0), n2, ir.Output())))
        edges += [("inp", names[0])] + list(zip(names, names[1:]))
    return ir.Graph(nodes, edges)


def build_recurrent(seed: int = 0, neuron=None, n_in: int = 4, n: int = 5, feedback: bool = False, one_to_one: bool = False) -> ir.Graph:
    """snnTorch RLeaky(linear_features=n) (or RSynaptic, with a CubaLIF `neuron`) as the exporter writes it:
    inp -> fc -> rl, rl -> rl.recurrent (Affine n x n) -> rl, the neuron's inputs in edge order
    [fc, recurrent]; the delayed edge rl -> rl.recurrent carries last step's spikes. Then rl -> fc2 ->
    n2 (LIF 2) -> out. feedback=True closes a second loop through two neurons, n2 -> fb (Affine) -> rl,
    so that fc2 too reads rl one step late (every edge leaving a neuron inside a cycle is delayed).
    one_to_one=True: the recurrence is a Scale (snnTorch's all_to_all=False, V per neuron)."""
    rng = np.random.default_rng(seed)
    nodes = {
        "inp": ir.Input(shape=(n_in,)),
        "fc": affine(n, n_in, rng, 1.0),
        "rl": neuron if neuron is not None else lif(n, threshold=0.5, reset_mode="zero_post"),
        "rl.recurrent": affine(n, n, rng, 0.4),
        "fc2": affine(2, n, rng, 1.0),
        "n2": lif(2, threshold=0.5),
        "out": ir.Output(),
    }
    if one_to_one:
        nodes["rl.recurrent"] = ir.Scale(scale=rng.uniform(-0.6, 0.6, n).astype(np.float32))
    edges = [("inp", "fc"), ("fc", "rl"), ("rl", "rl.recurrent"), ("rl.recurrent", "rl"), ("rl", "fc2"), ("fc2", "n2"), ("n2", "out")]
    if feedback:
        nodes["fb"] = affine(n, 2, rng, 0.5)
        edges += [("n2", "fb"), ("fb", "rl")]
    return ir.Graph(nodes, edges)


def build_conv_recurrent(seed: int = 0) -> ir.Graph:
    """snnTorch RLeaky(conv2d_channels=2, kernel_size=3): inp(1, 5, 5) -> conv -> rl (2, 5, 5) with a
    Conv2d(2, 2, 3, padding 1) recurrence -> flat -> fc -> n2 (LIF 2) -> out."""
    rng = np.random.default_rng(seed)
    nodes = {
        "inp": ir.Input(shape=(1, 5, 5)),
        "conv": ir.Conv2d(weight=rng.normal(0, 0.6, (2, 1, 3, 3)).astype(np.float32), bias=rng.normal(0, 0.1, 2).astype(np.float32), padding=(1, 1)),
        "rl": ir.LIF(tau=np.full((2, 5, 5), 10.0), r=np.full((2, 5, 5), 10.0), v_leak=np.zeros((2, 5, 5)), v_threshold=np.full((2, 5, 5), 0.5),
                     reset_mode="subtract"),
        "rl.recurrent": ir.Conv2d(weight=rng.normal(0, 0.2, (2, 2, 3, 3)).astype(np.float32), bias=np.zeros(2, np.float32), padding=(1, 1)),
        "flat": ir.Flatten(),
        "fc": affine(2, 50, rng, 0.3),
        "n2": lif(2, threshold=0.5),
        "out": ir.Output(),
    }  # fmt: skip
    edges = [("inp", "conv"), ("conv", "rl"), ("rl", "rl.recurrent"), ("rl.recurrent", "rl"), ("rl", "flat"), ("flat", "fc"), ("fc", "n2"), ("n2", "out")]
    return ir.Graph(nodes, edges)


def recurrent_cases(T: int = 120):
    """(label, graph, (T, B, ...) inputs) of the recurrent test graphs: snnTorch RLeaky and RSynaptic
    shapes (linear recurrence), each also with a second loop through two neurons, one-to-one (Scale)
    recurrences, and a Conv2d recurrence."""
    import torch

    x = torch.rand((T, 3, 4), generator=torch.Generator().manual_seed(6)) * 2 - 0.5
    xc = torch.rand((T, 2, 1, 5, 5), generator=torch.Generator().manual_seed(6)) * 2 - 0.5
    yield "rleaky", build_recurrent(seed=0), x
    yield "rleaky_subtract_feedback", build_recurrent(seed=2, neuron=lif(5, threshold=0.5, reset_mode="subtract"), feedback=True), x
    yield "rsynaptic", build_recurrent(seed=0, neuron=cuba(5, reset_mode="zero_post")), x
    yield "rsynaptic_subtract_feedback", build_recurrent(seed=2, neuron=cuba(5, reset_mode="subtract"), feedback=True), x
    yield "rleaky_one_to_one", build_recurrent(seed=0, one_to_one=True), x
    yield "rsynaptic_one_to_one", build_recurrent(seed=2, neuron=cuba(5, reset_mode="zero_post"), one_to_one=True), x
    yield "conv", build_conv_recurrent(seed=0), xc
