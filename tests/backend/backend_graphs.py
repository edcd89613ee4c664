"""Small hand-built graphs for the backend tests (the IR the exporter would produce).

The tutorial's hybrid graph and the lif/affine builders are shared with the sdk tests: tests/tutorial_graphs.py.
"""

from __future__ import annotations

import numpy as np

from talon import ir
from tutorial_graphs import affine, build_hybrid, lif  # noqa: F401  (re-exported for the backend tests)


def chained(nodes: dict[str, ir.Node]) -> ir.Graph:
    """The graph that runs `nodes` one after the other, in dict order."""
    g = ir.Graph(nodes)
    g.chain(*nodes)
    return g


def conv2d(out: int, inp: int, rng: np.random.Generator, scale: float = 0.6, *, k: int = 3, bias_scale: float = 0.1, **kw) -> ir.Conv2d:
    """A k x k Conv2d with N(0, scale) weights and N(0, bias_scale) biases, drawn in that order."""
    return ir.Conv2d(weight=rng.normal(0, scale, (out, inp, k, k)).astype(np.float32), bias=rng.normal(0, bias_scale, out).astype(np.float32), **kw)


def dense(out: int, inp: int, rng: np.random.Generator, scale: float, bias_scale: float = 0.1) -> ir.Affine:
    """An Affine with N(0, scale) weights and N(0, bias_scale) biases, drawn in that order."""
    return ir.Affine(weight=rng.normal(0, scale, (out, inp)).astype(np.float32), bias=rng.normal(0, bias_scale, out).astype(np.float32))


def lif_field(shape: int | tuple[int, ...], threshold: float = 0.5, **kw) -> ir.LIF:
    """LIF neurons of any shape (a conv layer's (C, H, W) too): tau = r = 5 (beta 0.8, unit gain), no leak."""
    tau = np.full(shape, 5.0, np.float32)
    return ir.LIF(tau=tau, r=tau.copy(), v_leak=np.zeros(shape, np.float32), v_threshold=np.full(shape, threshold, np.float32), **kw)


def build_conv_snn(seed: int = 0, side: int = 10, n_out: int = 5, conv_scale: float = 0.8, fc_scale: float = 0.4) -> ir.Graph:
    """benchmarks/simulate.py's conv SNN, small: Conv2d -> LIF (4, side, side) -> MaxPool -> Flatten ->
    Affine -> LIF -> Output (nodes x, conv, l1, pool, flat, fc, l2, y)."""
    rng = np.random.default_rng(seed)
    flat = 4 * (side // 2) ** 2
    return chained({
        "x": ir.Input(shape=(1, side, side)),
        "conv": conv2d(4, 1, rng, conv_scale, padding=(1, 1)),
        "l1": lif_field((4, side, side)),
        "pool": ir.MaxPool2d(kernel_size=(2, 2), stride=(2, 2)),
        "flat": ir.Flatten(),
        "fc": ir.Affine(weight=rng.normal(0, fc_scale, (n_out, flat)).astype(np.float32), bias=np.zeros(n_out, np.float32)),
        "l2": lif_field(n_out),
        "y": ir.Output(),
    })


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


# -- resampling and joining (SumPool2d, Upsample, Concat, Skip(concatenate)) ------------------------

#: the nodes of the resampling graphs that `taps=True` also routes to an Output of their own, so that the
#: fixed-point tests compare them directly rather than only through the spikes downstream
RESAMPLE_TAPS = ("sum", "up", "cat", "cat2")


def _tap(nodes: dict, edges: list, taps: bool) -> ir.Graph:
    if taps:
        for n in RESAMPLE_TAPS:
            nodes[f"o_{n}"] = ir.Output()
            edges.append((n, f"o_{n}"))
    return ir.Graph(nodes, edges)


def _resample_net(seed: int, shape: tuple[int, int, int], channels: int, pool: ir.SumPool2d, up: ir.Upsample, cat: ir.Node, cat2: ir.Concat,
                  *, pool_reads: str, cat2_reads: str, n_flat: int, n_out: int, resets: tuple[str, str], taps: bool) -> ir.Graph:  # fmt: skip
    """inp -> conv -> lif1; <pool_reads> -> sum -> up; cat = (up, lif1); cat2 = (cat, <cat2_reads>) -> flat -> fc
    -> lif2 -> out, the skeleton of the two graphs below."""
    rng = np.random.default_rng(seed)
    nodes = {
        "inp": ir.Input(shape=shape),
        "conv": conv2d(channels, shape[0], rng, padding=(1, 1)),
        "lif1": lif_field((channels, *shape[1:]), reset_mode=resets[0]),
        "sum": pool, "up": up, "cat": cat, "cat2": cat2,
        "flat": ir.Flatten(),
        "fc": dense(n_out, n_flat, rng, 0.3),
        "lif2": lif_field((n_out,), reset_mode=resets[1]),
        "out": ir.Output(),
    }  # fmt: skip
    edges = [("inp", "conv"), ("conv", "lif1"), (pool_reads, "sum"), ("sum", "up"), ("up", "cat"), ("lif1", "cat"), ("cat", "cat2"),
             (cat2_reads, "cat2"), ("cat2", "flat"), ("flat", "fc"), ("fc", "lif2"), ("lif2", "out")]  # fmt: skip
    return _tap(nodes, edges, taps)


def build_resample_net(seed: int = 0, taps: bool = False) -> ir.Graph:
    """conv -> LIF -> SumPool2d -> Upsample(x2) -> Skip(concatenate) with the LIF (skip branch) -> Concat
    with the input -> Flatten -> Affine -> LIF: every new kernel, inputs of three different formats joined."""
    return _resample_net(seed, (1, 8, 8), 3, ir.SumPool2d(kernel_size=(2, 2), stride=(2, 2)), ir.Upsample(scale_factor=2),
                         ir.Skip(skip_type="concatenate"), ir.Concat(num_inputs=2, dim=0), pool_reads="lif1", cat2_reads="inp",
                         n_flat=7 * 64, n_out=5, resets=("subtract", "zero"), taps=taps)  # fmt: skip


def build_odd_resample_net(seed: int = 1, taps: bool = False) -> ir.Graph:
    """Padded strided SumPool2d of the signed real-valued input (so its rounding shift is positive),
    Upsample to an explicit non-multiple size, Concat along the last dimension (OUTER > 1) and a negative
    dim: the index arithmetic and rounding of the kernels beyond the simple cases."""
    return _resample_net(
        seed, (2, 5, 5), 2,
        ir.SumPool2d(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1)),  # (2, 3, 3)
        ir.Upsample(size=(5, 4)),  # nearest with scales 3/5 and 3/4
        ir.Concat(num_inputs=2, dim=2),  # (2, 5, 4) + (2, 5, 5) -> (2, 5, 9)
        ir.Concat(num_inputs=2, dim=-2),  # (2, 5, 9) + (2, 5, 9) -> (2, 10, 9)
        pool_reads="inp", cat2_reads="cat", n_flat=180, n_out=4, resets=("zero_post", "subtract"), taps=taps,
    )  # fmt: skip


def build_skip_concat_rounding(seed: int = 2, taps: bool = False) -> ir.Graph:
    """Skip(concatenate) of the signed input (range < 1, fine grid) with a conv of range > 1, so the input is
    rounded half-up to the coarser joint grid; Upsample x3 of it, a padded SumPool2d, then Concat(dim=-1)
    of the sum with itself -> Flatten -> Affine -> LIF. Complements the two graphs above, whose
    Skip(concatenate) inputs only shift left."""
    rng = np.random.default_rng(seed)
    nodes = {
        "inp": ir.Input(shape=(1, 4, 4)),
        "conv": conv2d(2, 1, rng, 1.5, bias_scale=0.3, padding=(1, 1)),
        "cat": ir.Skip(skip_type="concatenate"),  # (1 + 2, 4, 4)
        "up": ir.Upsample(scale_factor=3),  # (3, 12, 12)
        # each window reads 1 row/column of one upsampled pixel and 3 of the next: sums of any residue, not only ties
        "sum": ir.SumPool2d(kernel_size=(4, 4), stride=(3, 3), padding=(1, 1)),  # (3, 4, 4)
        "cat2": ir.Concat(num_inputs=2, dim=-1),  # (3, 4, 8)
        "flat": ir.Flatten(),
        "fc": dense(4, 96, rng, 0.1),
        "lif": lif_field((4,), reset_mode="zero"),
        "out": ir.Output(),
    }
    edges = [("inp", "cat"), ("inp", "conv"), ("conv", "cat"), ("cat", "up"), ("up", "sum"), ("sum", "cat2"), ("sum", "cat2"),
             ("cat2", "flat"), ("flat", "fc"), ("fc", "lif"), ("lif", "out")]  # fmt: skip
    return _tap(nodes, edges, taps)


def build_delay_split_net(seed: int = 3) -> ir.Graph:
    """inp (2, 12) -> Conv1d (groups 2, stride 1, dilation 2, padding 2) -> LIF -> Delay (per-element 0..5 steps)
    -> HybridRegion -> ChannelSplit (channels 1 | 3) -> per chunk Flatten -> Affine -> LIF -> Output; and a
    second strided Conv1d of the input joined to the first chunk by a residual-free path (its own Output):
    the grid-preserving Delay/HybridRegion/ChannelSplit and Conv1d through the fpga kernels."""
    rng = np.random.default_rng(seed)
    delay = np.array([[0], [1], [3], [5]], np.int64)  # per channel, broadcast over the 12 positions
    nodes = {
        "inp": ir.Input(shape=(2, 12)),
        "c1": ir.Conv1d(weight=rng.normal(0, 0.8, (4, 1, 3)).astype(np.float32), bias=rng.normal(0.2, 0.1, 4).astype(np.float32),
                        padding=2, dilation=2, groups=2),
        "lif1": lif_field((4, 12), threshold=0.4),
        "dly": ir.Delay(delay=delay),
        "hyb": ir.HybridRegion(mode="snn"),
        "split": ir.ChannelSplit(split_sections=(1, 3), dim=0),
        "fa": ir.Flatten(), "fb": ir.Flatten(),
        "fca": dense(3, 12, rng, 0.5), "fcb": dense(3, 36, rng, 0.4),
        "la": lif_field((3,), threshold=0.3), "lb": lif_field((3,), threshold=0.3, reset_mode="zero"),
        "oa": ir.Output(), "ob": ir.Output(),
        "c2": ir.Conv1d(weight=rng.normal(0, 0.6, (2, 2, 4)).astype(np.float32), bias=rng.normal(0, 0.1, 2).astype(np.float32), stride=3),
        "lc": lif_field((2, 3), threshold=0.3), "oc": ir.Output(),
    }  # fmt: skip
    edges = [("inp", "c1"), ("c1", "lif1"), ("lif1", "dly"), ("dly", "hyb"), ("hyb", "split"), ("split", "fa"), ("split", "fb"),
             ("fa", "fca"), ("fca", "la"), ("la", "oa"), ("fb", "fcb"), ("fcb", "lb"), ("lb", "ob"),
             ("inp", "c2"), ("c2", "lc"), ("lc", "oc")]  # fmt: skip
    return ir.Graph(nodes, edges)


def sepconv(c: int, o: int, rng: np.random.Generator, k: int = 3, **kw) -> ir.SepConv2d:
    """A SepConv2d C -> O with k x k depthwise and 1 x 1 pointwise N(0, 0.6) weights, N(0, 0.1) biases."""
    return ir.SepConv2d(depthwise_weight=rng.normal(0, 0.6, (c, 1, k, k)).astype(np.float32), depthwise_bias=rng.normal(0, 0.1, c).astype(np.float32),
                        pointwise_weight=rng.normal(0, 0.6, (o, c, 1, 1)).astype(np.float32), pointwise_bias=rng.normal(0, 0.1, o).astype(np.float32), **kw)  # fmt: skip


def build_sepconv_split_net(seed: int = 4) -> ir.Graph:
    """inp (2, 6, 6) -> SepConv2d (padding 1) -> LIF -> ChannelSplit along the last dimension (columns 2 | 4)
    -> chunk 0: SepConv2d (stride 2, dilation 2, padding 2) -> LIF; chunk 1: Flatten -> Affine -> LIF;
    each to an Output. SepConv2d's exact two-stage sum and a split that is not contiguous in memory."""
    rng = np.random.default_rng(seed)
    nodes = {
        "inp": ir.Input(shape=(2, 6, 6)),
        "sep1": sepconv(2, 3, rng, padding=(1, 1)),
        "lif1": lif_field((3, 6, 6), threshold=0.4),
        "split": ir.ChannelSplit(split_sections=(2, 4), dim=-1),
        "sep2": sepconv(3, 2, rng, stride=(2, 2), padding=(2, 2), dilation=(2, 2)),  # (3, 6, 2) -> (2, 3, 1)
        "la": lif_field((2, 3, 1), threshold=0.3),
        "fb": ir.Flatten(), "fcb": dense(4, 72, rng, 0.3), "lb": lif_field((4,), threshold=0.3),
        "oa": ir.Output(), "ob": ir.Output(),
    }  # fmt: skip
    edges = [("inp", "sep1"), ("sep1", "lif1"), ("lif1", "split"), ("split", "sep2"), ("split", "fb"), ("sep2", "la"), ("la", "oa"),
             ("fb", "fcb"), ("fcb", "lb"), ("lb", "ob")]  # fmt: skip
    return ir.Graph(nodes, edges)


# -- constants that the fixed-point formats must hold (issue 15) ------------------------------------


def build_bias_example() -> ir.Graph:
    """Issue 15's example: Affine(4 -> 8) with weights 0.01 and bias 0.5 into LIF(tau 10, threshold 1),
    fed inputs in [0, 0.01). Before fixed-point version 3 the default formats saturated the bias to 0.125."""
    nodes = {
        "inp": ir.Input(shape=(4,)),
        "fc": ir.Affine(weight=np.full((8, 4), 0.01, np.float32), bias=np.full(8, 0.5, np.float32)),
        "lif": ir.LIF(tau=np.full(8, 10.0, np.float32), r=np.full(8, 10.0, np.float32), v_leak=np.zeros(8, np.float32),
                      v_threshold=np.ones(8, np.float32)),
        "out": ir.Output(),
    }  # fmt: skip
    return chained(nodes)


def _nir_cubalif(n: int, rng: np.random.Generator) -> ir.CubaLIF:
    """CubaLIF as NIR's importer writes a trained snnTorch RSynaptic: per-neuron tau_syn and tau_mem,
    r = tau_mem and w_in = tau_syn (unit gains), subtract reset."""
    alpha, beta = rng.uniform(0.7, 0.9, n), rng.uniform(0.9, 0.97, n)
    tau_syn, tau_mem = 1.0 / (1.0 - alpha), 1.0 / (1.0 - beta)
    return ir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem.copy(), w_in=tau_syn.copy(), v_leak=np.zeros(n), v_threshold=np.ones(n),
                      reset_mode="subtract")  # fmt: skip


def build_braille_like(seed: int = 0, n_in: int = 12, n_hidden: int = 38, n_out: int = 7) -> ir.Graph:
    """The shape of the NIR braille network (12 event channels -> 38 recurrent CubaLIF -> 7 CubaLIF):
    small input weights and positive biases, so the input layer's bias is large against its weight step.
    With activation_bits 16 the input format's fraction grows by 8 bits and (fixed-point version 2) the
    bias saturated at 24 bits."""
    rng = np.random.default_rng(seed)

    def layer(o: int, i: int, w: float, b: float) -> ir.Affine:
        return ir.Affine(weight=rng.normal(0, w, (o, i)).astype(np.float32), bias=rng.uniform(0.5 * b, b, o).astype(np.float32))

    nodes = {
        "inp": ir.Input(shape=(n_in,)),
        "fc1": layer(n_hidden, n_in, 0.01, 0.3),
        "lif1": _nir_cubalif(n_hidden, rng),
        "lif1.recurrent": layer(n_hidden, n_hidden, 0.002, 0.0),
        "fc2": layer(n_out, n_hidden, 0.1, 0.0),
        "lif2": _nir_cubalif(n_out, rng),
        "out": ir.Output(),
    }
    edges = [("inp", "fc1"), ("fc1", "lif1"), ("lif1", "lif1.recurrent"), ("lif1.recurrent", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "out")]
    return ir.Graph(nodes, edges)
