"""Graphs built with the `nir` package, converted by from_nir and run by TALON's runtime, agree with NIR's
documented equations (forward Euler, see _reference.py) within float32 tolerance, spike for spike."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")

from talon.bridge import ir_to_torch  # noqa: E402
from talon.ir import from_nir  # noqa: E402

from . import _reference as ref  # noqa: E402

DT = 1e-3
T, B = 200, 3


def rng(seed=0):
    return np.random.default_rng(seed)


def u(g, lo, hi, *shape, dtype=np.float32):
    return g.uniform(lo, hi, shape).astype(dtype)


def chain(*pairs, in_shape, out_shape):
    nodes = {"input": nir.Input(input_type={"input": np.array(in_shape)})}
    nodes.update(pairs)
    nodes["output"] = nir.Output(output_type={"output": np.array(out_shape)})
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])))


def run_talon(graph, xs):
    """One executor call per timestep, state passed explicitly (the runtime's protocol)."""
    ex = ir_to_torch(graph, return_state=True)
    state, outs = None, []
    with torch.inference_mode():
        for t in range(xs.shape[0]):
            out, state = ex(torch.from_numpy(np.ascontiguousarray(xs[t])), state)
            outs.append(out.numpy().astype(np.float64))
    return np.stack(outs)


def run_ref(step, xs):
    return np.stack([step(xs[t].astype(np.float64)) for t in range(xs.shape[0])])


def assert_spikes(got, want, margin):
    assert want.sum() > 0.05 * want.size, "the test input should make the neurons spike"
    assert (want == 0).sum() > 0.05 * want.size, "the test input should leave neurons silent at times"
    mismatch = np.argwhere(got != want)
    assert mismatch.size == 0, f"{len(mismatch)} spike mismatches, first at {mismatch[0]} (reference margin {margin:.2e})"


def test_lif_matches_nir_equations():
    g, n = rng(1), 16
    p = dict(tau=u(g, 5e-3, 2e-2, n), r=u(g, 0.5, 1.5, n), v_leak=u(g, -0.2, 0.2, n), v_threshold=u(g, 0.6, 1.2, n),
             v_reset=u(g, -0.3, 0.1, n))
    graph = from_nir(chain(("lif", nir.LIF(**p)), in_shape=[n], out_shape=[n]), dt=DT)
    xs = u(g, 0.0, 2.5, T, B, n)
    want = ref.LIF(**p, dt=DT)
    expected = run_ref(want, xs)
    assert_spikes(run_talon(graph, xs), expected, want.margin)


def test_cubalif_matches_nir_equations():
    g, n = rng(2), 12
    p = dict(tau_syn=u(g, 2e-3, 8e-3, n), tau_mem=u(g, 5e-3, 2e-2, n), r=u(g, 0.5, 1.5, n), v_leak=u(g, -0.1, 0.1, n),
             v_threshold=u(g, 0.5, 1.0, n), v_reset=u(g, -0.2, 0.0, n), w_in=u(g, 0.5, 2.0, n))
    graph = from_nir(chain(("cubalif", nir.CubaLIF(**p)), in_shape=[n], out_shape=[n]), dt=DT)
    xs = u(g, 0.0, 2.0, T, B, n)
    want = ref.CubaLIF(**p, dt=DT)
    expected = run_ref(want, xs)
    assert_spikes(run_talon(graph, xs), expected, want.margin)


def test_if_matches_nir_equations():
    g, n = rng(3), 10
    p = dict(r=u(g, 50.0, 150.0, n), v_threshold=u(g, 0.5, 1.5, n), v_reset=u(g, -0.5, 0.0, n))
    graph = from_nir(chain(("if", nir.IF(**p)), in_shape=[n], out_shape=[n]), dt=DT)
    xs = u(g, -0.5, 4.0, T, B, n)
    want = ref.IF(**p, dt=DT)
    expected = run_ref(want, xs)
    assert_spikes(run_talon(graph, xs), expected, want.margin)


@pytest.mark.parametrize("kind", ["LI", "I", "CubaLI"])
def test_non_spiking_neurons_match_nir_equations(kind):
    g, n = rng(4), 8
    if kind == "LI":
        p = dict(tau=u(g, 5e-3, 2e-2, n), r=u(g, 0.5, 1.5, n), v_leak=u(g, -0.2, 0.2, n))
        node, want = nir.LI(**p), ref.LI(**p, dt=DT)
    elif kind == "I":
        p = dict(r=u(g, 1.0, 5.0, n))
        node, want = nir.I(**p), ref.Integrator(**p, dt=DT)
    else:
        p = dict(tau_syn=u(g, 2e-3, 8e-3, n), tau_mem=u(g, 5e-3, 2e-2, n), r=u(g, 0.5, 1.5, n), v_leak=u(g, -0.1, 0.1, n),
                 w_in=u(g, 0.5, 2.0, n))
        node, want = nir.CubaLI(**p), ref.CubaLI(**p, dt=DT)
    graph = from_nir(chain((kind.lower(), node), in_shape=[n], out_shape=[n]), dt=DT)
    xs = u(g, -1.0, 2.0, T, B, n)
    np.testing.assert_allclose(run_talon(graph, xs), run_ref(want, xs), rtol=1e-4, atol=1e-5)


def _recurrent_params(g, n_in=5, n=9, n_out=3):
    return dict(
        w_in=u(g, -0.5, 1.0, n, n_in), b_in=u(g, 0.0, 0.3, n), w_rec=u(g, -0.6, 0.4, n, n),
        lif=dict(tau=u(g, 5e-3, 2e-2, n), r=u(g, 0.8, 1.5, n), v_leak=u(g, -0.1, 0.1, n), v_threshold=u(g, 0.5, 1.0, n),
                 v_reset=u(g, -0.2, 0.0, n)),
        w_out=u(g, -1.0, 1.0, n_out, n),
    )


def _recurrent_reference(p, xs):
    lif = ref.LIF(**p["lif"], dt=DT)
    z = np.zeros((xs.shape[1], p["w_rec"].shape[0]))
    outs = []
    for t in range(xs.shape[0]):
        current = xs[t] @ p["w_in"].T.astype(np.float64) + p["b_in"] + z @ p["w_rec"].T.astype(np.float64)
        z = lif(current)  # the loop delivers last step's spikes (NIR's recurrent edge)
        outs.append(z @ p["w_out"].T.astype(np.float64))
    return np.stack(outs), lif.margin


def test_recurrent_lif_matches_nir_equations():
    g = rng(5)
    p = _recurrent_params(g)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([5])}),
        "fc_in": nir.Affine(weight=p["w_in"], bias=p["b_in"]),
        "lif": nir.LIF(**p["lif"]),
        "w_rec": nir.Linear(weight=p["w_rec"]),
        "fc_out": nir.Linear(weight=p["w_out"]),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("input", "fc_in"), ("fc_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "fc_out"), ("fc_out", "output")]
    graph = from_nir(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)
    assert graph.cycles() == [["lif", "w_rec"]]
    xs = u(g, 0.0, 2.0, T, B, 5)
    want, margin = _recurrent_reference(p, xs)
    got = run_talon(graph, xs)
    assert margin > 1e-5
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.abs(want).sum() > 0


def test_snntorch_style_recurrent_subgraph_matches_nir_equations():
    """snnTorch exports RLeaky as a nested NIRGraph {input, lif, w_rec, output} with a lif <-> w_rec cycle."""
    g = rng(6)
    p = _recurrent_params(g)
    n = p["w_rec"].shape[0]
    sub = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([n])}), "lif": nir.LIF(**p["lif"]),
               "w_rec": nir.Linear(weight=p["w_rec"]), "output": nir.Output(output_type={"output": np.array([n])})},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
    )
    top = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([5])}), "fc_in": nir.Affine(weight=p["w_in"], bias=p["b_in"]),
               "rlif": sub, "fc_out": nir.Linear(weight=p["w_out"]), "output": nir.Output(output_type={"output": np.array([3])})},
        edges=[("input", "fc_in"), ("fc_in", "rlif"), ("rlif", "fc_out"), ("fc_out", "output")],
    )
    graph = from_nir(top, dt=DT)
    assert graph.nodes["rlif"].type_name == "Graph" and graph.nodes["rlif"].cycles()
    xs = u(g, 0.0, 2.0, T, B, 5)
    want, margin = _recurrent_reference(p, xs)
    assert margin > 1e-5
    np.testing.assert_allclose(run_talon(graph, xs), want, rtol=1e-5, atol=1e-5)


def test_summed_edges_delay_threshold_scale():
    """Edges into one node are summed (a sum node is inserted before a one-input node); Delay counts dt."""
    g, n = rng(7), 6
    s1, s2 = u(g, 0.5, 1.5, n), u(g, -1.0, 1.0, n)
    w = u(g, -1.0, 1.0, n, n)
    steps = np.array([0, 1, 2, 3, 5, 8])
    thr = u(g, -0.2, 0.2, n)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n])}),
        "s1": nir.Scale(scale=s1), "s2": nir.Scale(scale=s2),
        "fc": nir.Linear(weight=w),
        "delay": nir.Delay(delay=steps * DT),
        "spike": nir.Threshold(threshold=thr),
        "output": nir.Output(output_type={"output": np.array([n])}),
    }
    edges = [("input", "s1"), ("input", "s2"), ("s1", "fc"), ("s2", "fc"), ("fc", "delay"), ("delay", "spike"), ("spike", "output")]
    graph = from_nir(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)
    assert graph.nodes["fc_sum"].type_name == "Skip" and graph.predecessors("fc") == ["fc_sum"]
    xs = u(g, -1.0, 1.0, 40, B, n)
    delay = ref.Delay(steps)

    def step(x):
        y = delay((x * s1 + x * s2) @ w.T.astype(np.float64))
        return (y > thr).astype(np.float64)

    np.testing.assert_array_equal(run_talon(graph, xs), run_ref(step, xs))


def _conv2d(x, w, b, pad):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    bsz, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    out = np.zeros((bsz, o, h - kh + 1, wd - kw + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = np.einsum("bchw,ochw->bo", x[:, :, i:i + kh, j:j + kw], w) + b
    return out


def _sumpool(x, k):
    bsz, c, h, w = x.shape
    return x[:, :, : h // k * k, : w // k * k].reshape(bsz, c, h // k, k, w // k, k).sum(axis=(3, 5))


def test_conv_pool_flatten_affine_match_nir_definitions():
    g = rng(8)
    w1, b1 = u(g, -1, 1, 3, 2, 3, 3), u(g, -0.5, 0.5, 3)
    w2 = u(g, -1, 1, 4, 3 * 2 * 2)
    b2 = u(g, -0.5, 0.5, 4)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 8, 8])}),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=w1, stride=1, padding=1, dilation=1, groups=1, bias=b1),
        "sum": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "avg": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([3, 2, 2])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=w2, bias=b2),
        "output": nir.Output(output_type={"output": np.array([4])}),
    }
    names = list(nodes)
    graph = from_nir(nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:]))), dt=DT)
    xs = u(g, -1, 1, 1, 5, 2, 8, 8)
    y = _sumpool(_conv2d(xs[0].astype(np.float64), w1, b1, 1), 2)
    y = _sumpool(y, 2) / 4.0  # NIR: AvgPool2d = SumPool2d; Scale(1 / kernel area)
    want = y.reshape(5, -1) @ w2.T.astype(np.float64) + b2
    np.testing.assert_allclose(run_talon(graph, xs)[0], want, rtol=1e-4, atol=1e-4)


def test_snntorch_exported_leaky_reproduces_snntorch():
    """A NIR LIF made the way snnTorch exports Leaky (dt = 1e-4, tau = dt/(1-beta), r = tau/dt), read with
    the default dt, spikes exactly as snnTorch's Leaky(reset_mechanism="zero") does."""
    snn = pytest.importorskip("snntorch")
    g, n = rng(9), 20
    beta = u(g, 0.7, 0.98, n)
    thr = u(g, 0.5, 1.5, n)
    dt = 1e-4
    tau = dt / (1 - beta)
    lif = nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros_like(beta), v_threshold=thr, v_reset=np.zeros_like(thr))
    with pytest.warns(UserWarning, match="dt=0.0001"):
        graph = from_nir(chain(("lif", lif), in_shape=[n], out_shape=[n]))
    xs = u(g, 0.0, 1.0, T, B, n)
    leaky = snn.Leaky(beta=torch.from_numpy(beta), threshold=torch.from_numpy(thr), reset_mechanism="zero")
    mem = leaky.init_leaky()
    want = []
    with torch.no_grad():
        for t in range(T):
            spk, mem = leaky(torch.from_numpy(xs[t]), mem)
            want.append(spk.numpy())
    want = np.stack(want).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = run_talon(graph, xs)
    assert want.sum() > 0
    np.testing.assert_array_equal(got, want)


def test_snntorch_model_through_a_nir_file_spikes_as_snntorch(tmp_path):
    """snnTorch (zero reset) -> talon.bridge.to_ir -> .nir file -> talon graph: same spikes as snnTorch itself;
    the default subtract reset is refused instead of silently changed (snnTorch's own NIR export changes it)."""
    snn = pytest.importorskip("snntorch")
    import talon.ir as ir
    from talon.bridge import to_ir
    from talon.ir.nir import NIRConversionError

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 12), snn.Leaky(beta=0.9, reset_mechanism="zero", init_hidden=True),
        torch.nn.Linear(12, 4), snn.Synaptic(alpha=0.7, beta=0.85, reset_mechanism="none", init_hidden=True),
    )
    xs = torch.rand(60, B, 6) * 1.5
    graph = to_ir(net, xs[0])
    ir.write(tmp_path / "net.nir", graph)
    back = ir.read(tmp_path / "net.nir")
    assert back == graph
    from snntorch import utils as snn_utils

    with torch.no_grad():
        snn_utils.reset(net)
        want = np.stack([net(xs[t]).numpy() for t in range(xs.shape[0])]).astype(np.float64)
    got = run_talon(back, xs.numpy())
    assert want.sum() > 0
    np.testing.assert_array_equal(got, want)

    default = torch.nn.Sequential(torch.nn.Linear(6, 4), snn.Leaky(beta=0.9, init_hidden=True))
    with pytest.raises(NIRConversionError, match="subtract"):
        ir.to_nir(to_ir(default, xs[0]))

    # written for snnTorch's time unit (dt = 1e-4) and read as a tool that ignores TALON's metadata would:
    # same spikes as snnTorch
    from talon.ir.nir import write_nir

    write_nir(tmp_path / "for_1e-4.nir", graph, dt=1e-4)
    plain = nir.read(str(tmp_path / "for_1e-4.nir"))
    plain.metadata = {}
    for node in plain.nodes.values():
        node.metadata = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the NIR graph does not say which timestep": the default 1e-4 is meant
        foreign = from_nir(plain)
    assert foreign.dt == 1e-4
    np.testing.assert_array_equal(run_talon(foreign, xs.numpy()), want)
