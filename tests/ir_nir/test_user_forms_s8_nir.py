"""NIR graphs written the way other frameworks write them (sinabs, Norse, snnTorch, Rockpool, Spyx, nir before
1.0), read by TALON and run against NIR's equations, written here independently (forward Euler, the NIR
primitive docstrings), and written back to files that `nir.read` accepts with equal parameters."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest

nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")

import talon.ir as ir  # noqa: E402
from talon.bridge import ir_to_torch  # noqa: E402
from talon.errors import TalonError  # noqa: E402
from talon.ir import from_nir  # noqa: E402
from talon.ir.nir import NIRConversionError, NIRConversionWarning, read_nir, write_nir  # noqa: E402

T, B = 40, 2


def run(graph, xs):
    ex = ir_to_torch(graph, return_state=True)
    state, outs = None, []
    with torch.inference_mode():
        for t in range(xs.shape[0]):
            out, state = ex(torch.from_numpy(np.ascontiguousarray(xs[t], dtype=np.float32)), state)
            outs.append(out.numpy().astype(np.float64))
    return np.stack(outs)


def quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", NIRConversionWarning)
        return fn(*a, **kw)


# -- NIR's equations, forward Euler with step dt (v <- v + dt * dv/dt on this step's input) ---------------------


def if_steps(current, r, thr, v_reset, dt):
    """IF: dv/dt = r*I; spike where v > thr, then v = v_reset."""
    v, out = np.zeros(current.shape[1:]), []
    for i in current:
        v = v + dt * r * i
        z = v > thr
        v = np.where(z, v_reset, v)
        out.append(z.astype(np.float64))
    return np.stack(out)


def lif_steps(current, tau, r, v_leak, thr, v_reset, dt):
    """LIF: tau dv/dt = (v_leak - v) + r*I; spike where v > thr, then v = v_reset."""
    v, out = np.zeros(current.shape[1:]), []
    for i in current:
        v = v + dt / tau * ((v_leak - v) + r * i)
        z = v > thr
        v = np.where(z, v_reset, v)
        out.append(z.astype(np.float64))
    return np.stack(out)


def li_steps(current, tau, r, v_leak, dt):
    v, out = np.zeros(current.shape[1:]), []
    for i in current:
        v = v + dt / tau * ((v_leak - v) + r * i)
        out.append(v)
    return np.stack(out)


def spikes_ok(got, want):
    assert 0 < want.sum() < want.size, "the stimulus should make some neurons spike and leave others silent"
    np.testing.assert_array_equal(got, want)


def stimulus(seed, *shape):
    return np.random.default_rng(seed).uniform(0.0, 1.0, (T, B, *shape)).astype(np.float32)


# -- sinabs --------------------------------------------------------------------------------------------------


def test_sinabs_iaf_with_batch_dimension_in_its_parameters(tmp_path):
    """sinabs takes IF.r and v_threshold from its membrane state, batch dimension included: shape (1, N)."""
    rng = np.random.default_rng(0)
    w, b = rng.normal(0, 1, (5, 6)).astype(np.float32), rng.uniform(0, 0.2, 5).astype(np.float32)
    thr = np.array([[0.8, 1.0, 1.5, 2.0, 3.0]], np.float32)
    ng = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([6])}),
                             "0": nir.Affine(torch.from_numpy(w), torch.from_numpy(b)),
                             "1": nir.IF(r=torch.ones(1, 5), v_threshold=torch.from_numpy(thr)),
                             "output": nir.Output(output_type={"output": np.array([1, 5])})},
                      edges=[("input", "0"), ("0", "1"), ("1", "output")], type_check=False)
    with pytest.warns(NIRConversionWarning, match="leading dimensions of size 1"):
        g = from_nir(ng, dt=1.0)
    assert g.nodes["1"].v_threshold.shape == (5,) and g.nodes["output"].shape == (5,)
    xs = stimulus(1, 6)
    want = if_steps(xs.astype(np.float64) @ w.T.astype(np.float64) + b, 1.0, thr[0].astype(np.float64), 0.0, 1.0)
    spikes_ok(run(g, xs), want)
    write_nir(tmp_path / "back.nir", g)
    back = nir.read(tmp_path / "back.nir")
    np.testing.assert_array_equal(np.asarray(back.nodes["1"].v_threshold), thr[0])
    np.testing.assert_array_equal(np.asarray(back.nodes["0"].weight), w)


def test_sinabs_flatten_with_placeholder_type_counts_the_batch_dimension(tmp_path):
    """sinabs writes nn.Flatten() as Flatten(input_type=[0, 0, 0, 0], start_dim=1, end_dim=-1): torch's dims."""
    rng = np.random.default_rng(2)
    cw, cb = rng.normal(0, 0.5, (3, 2, 3, 3)).astype(np.float32), np.zeros(3, np.float32)
    fw, fb = rng.normal(0, 0.3, (4, 12)).astype(np.float32), np.zeros(4, np.float32)
    ng = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2, 4, 4])}),
                             "conv": nir.Conv2d(input_shape=(4, 4), weight=cw, bias=cb, stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1),
                             "pool": nir.SumPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)),
                             "flat": nir.Flatten(input_type={"input": np.array([0, 0, 0, 0])}, start_dim=1, end_dim=-1),
                             "fc": nir.Affine(fw, fb),
                             "iaf": nir.IF(r=np.ones(4, np.float32), v_threshold=np.ones(4, np.float32)),
                             "output": nir.Output(output_type={"output": np.array([4])})},
                      edges=[("input", "conv"), ("conv", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "iaf"), ("iaf", "output")],
                      type_check=False)
    nir.write(tmp_path / "sinabs.nir", ng)
    with pytest.warns(NIRConversionWarning, match="count the batch dimension"):
        g = read_nir(tmp_path / "sinabs.nir", dt=1.0)
    assert (g.nodes["flat"].start_dim, g.nodes["flat"].end_dim) == (0, -1)
    xs = stimulus(3, 2, 4, 4)
    x = torch.from_numpy(xs.reshape(T * B, 2, 4, 4)).double()
    y = torch.nn.functional.conv2d(x, torch.from_numpy(cw).double(), torch.from_numpy(cb).double(), padding=1)
    y = torch.nn.functional.avg_pool2d(y, 2) * 4  # SumPool2d: the sum over each window
    cur = (y.reshape(T, B, 12).numpy() @ fw.T.astype(np.float64)) + fb
    spikes_ok(run(g, xs), if_steps(cur, 1.0, 1.0, 0.0, 1.0))
    write_nir(tmp_path / "back.nir", g)
    back = nir.read(tmp_path / "back.nir")
    assert int(back.nodes["flat"].start_dim) == 0 and list(back.nodes["flat"].output_type["output"]) == [12]


# -- Norse ---------------------------------------------------------------------------------------------------


def test_norse_scalar_cubalif_and_cubali_readout(tmp_path):
    """Norse's LIFCell/LICell with default (0-d) parameters: CubaLIF and CubaLI whose types are empty."""
    rng = np.random.default_rng(4)
    w1, w2 = rng.uniform(0, 1.5, (6, 5)).astype(np.float32), rng.normal(0, 1, (3, 6)).astype(np.float32)
    p = dict(tau_syn=np.array(5e-3), tau_mem=np.array(1e-2), r=np.array(1.0), v_leak=np.array(0.0), v_threshold=np.array(0.3),
             v_reset=np.array(0.0), w_in=np.array(1.0))
    q = dict(tau_syn=np.array(5e-3), tau_mem=np.array(2e-2), r=np.array(1.0), v_leak=np.array(0.1), w_in=np.array(2.0))
    ng = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([5])}), "linear": nir.Linear(w1),
                             "lif": nir.CubaLIF(**p), "readout": nir.Linear(w2), "li": nir.CubaLI(**q),
                             "output": nir.Output(output_type={"output": np.array([])})},
                      edges=[("input", "linear"), ("linear", "lif"), ("lif", "readout"), ("readout", "li"), ("li", "output")],
                      type_check=False)
    g = quiet(from_nir, ng, dt=1e-3)
    assert g.nodes["output"].shape == (3,)
    xs = stimulus(5, 5)
    dt = 1e-3
    syn = li_steps(xs.astype(np.float64) @ w1.T.astype(np.float64), p["tau_syn"], p["w_in"], 0.0, dt)
    z = lif_steps(syn, p["tau_mem"], p["r"], p["v_leak"], p["v_threshold"], p["v_reset"], dt)
    assert 0 < z.sum() < z.size
    syn2 = li_steps(z @ w2.T.astype(np.float64), q["tau_syn"], q["w_in"], 0.0, dt)
    want = li_steps(syn2, q["tau_mem"], q["r"], q["v_leak"], dt)
    np.testing.assert_allclose(run(g, xs), want, rtol=1e-4, atol=1e-6)
    write_nir(tmp_path / "back.nir", g)
    back = nir.read(tmp_path / "back.nir")
    np.testing.assert_array_equal(np.asarray(back.nodes["lif"].tau_syn), np.full(6, 5e-3))
    assert isinstance(back.nodes["li"], nir.NIRGraph)  # CubaLI travels as its two leaky integrators


# -- snnTorch ------------------------------------------------------------------------------------------------


def test_snntorch_conv_export_in_memory_with_torch_tensors():
    """export_to_nir without ignore_dims: torch tensors, Conv2d(input_shape=None), AvgPool2d(int kernel),
    Flatten(input_type=None), a scalar Leaky (0-d LIF) and a batch dimension in the Input type."""
    rng = np.random.default_rng(6)
    cw = rng.normal(0, 0.6, (2, 1, 3, 3)).astype(np.float32)
    fw = rng.normal(0, 0.5, (3, 18)).astype(np.float32)
    beta, dt = 0.8, 1e-4
    tau = np.array(dt / (1 - beta))
    ng = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([1, 1, 6, 6])}),
        "conv": nir.Conv2d(input_shape=None, weight=torch.from_numpy(cw), stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1,
                           bias=torch.zeros(2)),
        "pool": nir.AvgPool2d(kernel_size=2, stride=2, padding=(0, 0)),
        "lif1": nir.LIF(tau=tau, r=tau / dt, v_leak=np.array(0.0), v_threshold=np.array(0.5), v_reset=np.array(0.0)),
        "flat": nir.Flatten(input_type=None, start_dim=0, end_dim=-1),
        "fc": nir.Linear(weight=fw),
        "lif2": nir.LIF(tau=tau, r=tau / dt, v_leak=np.array(0.0), v_threshold=np.array(0.5), v_reset=np.array(0.0)),
        "output": nir.Output(output_type={"output": np.array([])})},
        edges=[("input", "conv"), ("conv", "pool"), ("pool", "lif1"), ("lif1", "flat"), ("flat", "fc"), ("fc", "lif2"), ("lif2", "output")],
        type_check=False)
    with pytest.warns(NIRConversionWarning, match="batch dimension"):
        g = from_nir(ng, dt=dt)
    xs = stimulus(7, 1, 6, 6) * 2
    x = torch.from_numpy(xs.reshape(T * B, 1, 6, 6)).double()
    y = torch.nn.functional.avg_pool2d(torch.nn.functional.conv2d(x, torch.from_numpy(cw).double(), padding=1), 2)
    z1 = lif_steps(y.reshape(T, B, 2, 3, 3).numpy(), tau, tau / dt, 0.0, 0.5, 0.0, dt)
    assert 0 < z1.sum() < z1.size
    want = lif_steps(z1.reshape(T, B, 18) @ fw.T.astype(np.float64), tau, tau / dt, 0.0, 0.5, 0.0, dt)
    spikes_ok(run(g, xs), want)


def _rleaky(prefix=""):
    n = 4
    rng = np.random.default_rng(8)
    p = dict(tau=np.full(n, 5e-4), r=np.full(n, 5.0), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n))
    w_rec = rng.normal(0, 0.8, (n, n))
    sub = nir.NIRGraph(nodes={f"{prefix}input": nir.Input(input_type=[n]), f"{prefix}lif": nir.LIF(**p),
                              f"{prefix}w_rec": nir.Linear(weight=w_rec), f"{prefix}output": nir.Output(output_type=[n])},
                       edges=[(f"{prefix}input", f"{prefix}lif"), (f"{prefix}lif", f"{prefix}w_rec"), (f"{prefix}w_rec", f"{prefix}lif"),
                              (f"{prefix}lif", f"{prefix}output")])
    return sub, p, w_rec


def test_edges_naming_the_input_and_output_of_a_nested_graph():
    """Edges written "rnn.input" / "rnn.output" (the dotted port form of NIR's discussions, and snnTorch's
    importer's node names): the nested graph's one Input and one Output."""
    sub, p, w_rec = _rleaky(prefix="rnn.")
    w_in = np.random.default_rng(9).uniform(0, 1, (4, 3))
    ng = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([3])), "fc": nir.Linear(weight=w_in), "rnn": sub,
                             "output": nir.Output(output_type=np.array([4]))},
                      edges=[("input", "fc"), ("fc", "rnn.rnn.input"), ("rnn.rnn.output", "output")], type_check=False)
    g = quiet(from_nir, ng, dt=1e-4)
    assert ("fc", "rnn") in g.edges and ("rnn", "output") in g.edges
    xs = stimulus(10, 3)
    z, want = np.zeros((B, 4)), []
    v = np.zeros((B, 4))
    for x in xs.astype(np.float64):
        i = x @ w_in.T + z @ w_rec.T  # the loop delivers the previous step's spikes
        v = v + 1e-4 / p["tau"] * (p["v_leak"] - v + p["r"] * i)
        z = (v > p["v_threshold"]).astype(np.float64)
        v = np.where(z > 0, p["v_reset"], v)
        want.append(z)
    spikes_ok(run(g, xs), np.stack(want))
    bad = nir.NIRGraph(nodes=dict(ng.nodes), edges=[("input", "fc"), ("fc", "rnn.rnn.lif"), ("rnn.rnn.output", "output")], type_check=False)
    with pytest.raises(NIRConversionError, match="'rnn.lif' inside the nested graph 'rnn'.*Input"):
        from_nir(bad, dt=1e-4)


# -- Rockpool and Spyx ---------------------------------------------------------------------------------------


def test_rockpool_broadcast_views_and_trainable_torch_parameters(tmp_path):
    """Rockpool passes np.broadcast_to views (read-only, zero strides), transposed Linear weights and LI
    parameters computed from a trainable torch Parameter."""
    n, dt = 4, 1e-3
    rng = np.random.default_rng(11)
    w = rng.uniform(0, 1, (6, n)).astype(np.float32)  # rockpool's (in, out); exported as weight.T
    tau = torch.nn.Parameter(torch.full((n,), 0.02))
    r_li = (tau * torch.exp(-dt / tau) / dt).detach()
    cuba = dict(tau_syn=np.broadcast_to(np.float32(0.01), n), tau_mem=np.broadcast_to(np.float32(0.02), n),
                r=np.broadcast_to(np.float32(19.0), n), v_leak=np.broadcast_to(np.float32(0), n), v_threshold=np.broadcast_to(np.float32(1), n))
    ng = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([6])), "lin": nir.Linear(torch.from_numpy(w).T),
                             "lif": nir.CubaLIF(**cuba), "li": nir.LI(tau=tau, v_leak=torch.zeros_like(tau).detach(), r=r_li),
                             "output": nir.Output(output_type=np.array([n]))},
                      edges=[("input", "lin"), ("lin", "lif"), ("lif", "li"), ("li", "output")], type_check=False)
    g = quiet(from_nir, ng, dt=dt)
    xs = stimulus(12, 6)
    syn = li_steps(xs.astype(np.float64) @ w.astype(np.float64), 0.01, 1.0, 0.0, dt)  # w_in defaults to 1
    z = lif_steps(syn, np.float64(np.float32(0.02)), 19.0, 0.0, 1.0, 0.0, dt)
    assert 0 < z.sum() < z.size
    want = li_steps(z, np.float64(np.float32(0.02)), r_li.double().numpy(), 0.0, dt)
    np.testing.assert_allclose(run(g, xs), want, rtol=1e-4, atol=1e-6)
    ir.write(tmp_path / "m.t1c", g)
    assert ir.read(tmp_path / "m.t1c") == g
    write_nir(tmp_path / "back.nir", g)
    back = nir.read(tmp_path / "back.nir")
    np.testing.assert_array_equal(np.asarray(back.nodes["lif"].r), np.full(n, 19.0, np.float32))
    np.testing.assert_array_equal(np.asarray(back.nodes["lin"].weight), w.T)


@pytest.mark.parametrize("kind", ["Affine", "Linear"])
def test_dense_weights_stored_in_out_are_refused_naming_the_transpose(kind):
    """Spyx writes haiku's (in, out) weights into NIR's (out, in) field: no silent guess, a clear refusal."""
    w = np.ones((6, 4), np.float32)
    layer = nir.Affine(w, np.zeros(4, np.float32)) if kind == "Affine" else nir.Linear(w)
    ng = nir.NIRGraph(nodes={"input": nir.Input(np.array([6])), "linear_1": layer, "output": nir.Output(np.array([4]))},
                      edges=[("input", "linear_1"), ("linear_1", "output")], type_check=False)
    with pytest.raises(NIRConversionError, match=r"linear_1.*\(in, out\).*transpose"):
        from_nir(ng, dt=1e-3)


def test_scalar_affine_bias_and_tensorflow_same_padding():
    rng = np.random.default_rng(13)
    cw, fw = rng.normal(0, 1, (2, 1, 3, 3)).astype(np.float32), rng.normal(0, 1, (3, 8)).astype(np.float32)
    conv = nir.Conv2d(input_shape=(2, 2), weight=cw, bias=np.zeros(2, np.float32), stride=1, padding=(1, 1), dilation=1, groups=1)
    conv.padding = "SAME"
    ng = nir.NIRGraph(nodes={"input": nir.Input(np.array([1, 2, 2])), "conv": conv, "flat": nir.Flatten(np.array([2, 2, 2]), start_dim=0),
                             "fc": nir.Affine(fw, np.array(0.25, np.float32)), "output": nir.Output(np.array([3]))},
                      edges=[("input", "conv"), ("conv", "flat"), ("flat", "fc"), ("fc", "output")], type_check=False)
    g = quiet(from_nir, ng, dt=1.0)
    assert g.nodes["conv"].padding == (1, 1) and g.nodes["fc"].bias.tolist() == [0.25] * 3
    xs = stimulus(14, 1, 2, 2)
    y = torch.nn.functional.conv2d(torch.from_numpy(xs.reshape(T * B, 1, 2, 2)).double(), torch.from_numpy(cw).double(), padding="same")
    want = y.reshape(T, B, 8).numpy() @ fw.T.astype(np.float64) + 0.25
    np.testing.assert_allclose(run(g, xs), want, rtol=1e-5, atol=1e-5)


# -- files from older or newer nir ---------------------------------------------------------------------------


def _file(path, nodes: dict, edges):
    with h5py.File(path, "w") as f:
        top = f.create_group("node")
        top["type"] = "NIRGraph"
        group = top.create_group("nodes")
        for name, fields in nodes.items():
            node = group.create_group(name)
            for k, v in fields.items():
                node[k] = v
        top["edges"] = np.array([[s.encode(), d.encode()] for s, d in edges])


def test_a_file_from_nir_before_1_0_without_conv_input_shape_or_v_reset(tmp_path):
    rng = np.random.default_rng(15)
    cw = rng.normal(0, 1, (2, 1, 3, 3)).astype(np.float32)
    thr = np.full((2, 4, 4), 0.6)
    _file(tmp_path / "old.nir", {
        "input": {"type": "Input", "shape": np.array([1, 4, 4])},
        "conv": {"type": "Conv2d", "weight": cw, "bias": np.zeros(2, np.float32), "stride": np.array([1, 1]), "padding": np.array([1, 1]),
                 "dilation": np.array([1, 1]), "groups": 1},
        "if": {"type": "IF", "r": np.ones((2, 4, 4)), "v_threshold": thr},
        "output": {"type": "Output", "shape": np.array([2, 4, 4])},
    }, [("input", "conv"), ("conv", "if"), ("if", "output")])
    g = quiet(read_nir, tmp_path / "old.nir", dt=1.0)
    xs = stimulus(16, 1, 4, 4)
    y = torch.nn.functional.conv2d(torch.from_numpy(xs.reshape(T * B, 1, 4, 4)).double(), torch.from_numpy(cw).double(), padding=1)
    spikes_ok(run(g, xs), if_steps(y.reshape(T, B, 2, 4, 4).numpy(), 1.0, thr, 0.0, 1.0))
    write_nir(tmp_path / "new.nir", g)
    assert list(nir.read(tmp_path / "new.nir").nodes["conv"].input_type["input"]) == [1, 4, 4]


def test_unknown_or_unbuildable_node_in_a_file_is_named(tmp_path):
    io = {"input": {"type": "Input", "shape": np.array([4])}, "output": {"type": "Output", "shape": np.array([4])}}
    _file(tmp_path / "new.nir", {**io, "x": {"type": "Conv3d", "weight": np.ones((1, 1, 1, 1, 1))}}, [("input", "x"), ("x", "output")])
    with pytest.raises(NIRConversionError, match=r"new.nir: node 'x' has type 'Conv3d', which nir .* does not define"):
        read_nir(tmp_path / "new.nir", dt=1.0)
    _file(tmp_path / "broken.nir", {**io, "lif": {"type": "LIF", "tau": np.ones(4)}}, [("input", "lif"), ("lif", "output")])
    with pytest.raises(NIRConversionError, match=r"node 'lif' \(LIF\) cannot be built by nir"):
        ir.read(tmp_path / "broken.nir")
    with pytest.raises(TalonError):
        ir.read(tmp_path / "broken.nir")


def test_nested_metadata_from_other_tools_is_kept_both_ways(tmp_path):
    """nir writes nested metadata dicts as HDF5 groups (a tool's version record, training settings)."""
    n = 3
    ng = nir.NIRGraph.from_list(nir.LIF(tau=np.full(n, 1e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n)))
    ng.metadata = {"dt": 1e-3, "producer": {"name": "spyx", "version": 2, "input_shape": np.array([1, 3])}}
    ng.nodes["lif"].metadata = {"training": {"lr": 0.01, "surrogate": "arctan"}}
    nir.write(tmp_path / "m.nir", ng)
    g = quiet(read_nir, tmp_path / "m.nir")
    producer = g.metadata["nir_metadata"]["producer"]
    assert producer["name"] == "spyx" and producer["version"] == 2 and producer["input_shape"].tolist() == [1, 3]
    assert g.nodes["lif"].metadata == {"nir_metadata": {"training": {"lr": 0.01, "surrogate": "arctan"}}}
    ir.write(tmp_path / "m.t1c", g)
    assert ir.read(tmp_path / "m.t1c") == g
    write_nir(tmp_path / "back.nir", g)
    back = nir.read(tmp_path / "back.nir")
    assert back.metadata["producer"]["name"] == "spyx" and float(back.nodes["lif"].metadata["training"]["lr"]) == 0.01


def test_flattened_neuron_parameters_on_a_feature_map_are_refused_naming_the_layout():
    """One value per neuron, but flattened (C*H*W,) behind a (C, H, W) map: the layout is the exporter's."""
    ng = nir.NIRGraph(nodes={"input": nir.Input(np.array([2, 2, 2])),
                             "lif": nir.LIF(tau=np.full(8, 1e-3), r=np.ones(8), v_leak=np.zeros(8), v_threshold=np.ones(8)),
                             "output": nir.Output(np.array([8]))},
                      edges=[("input", "lif"), ("lif", "output")], type_check=False)
    with pytest.raises(NIRConversionError, match=r"lif: LIF parameters .*\(8,\).* input \(2, 2, 2\).*layout"):
        from_nir(ng, dt=1e-4)


def test_lava_netx_graph_with_integer_edges_and_infinite_time_constants(tmp_path):
    """Lava's netx exporter names nodes "0", "1", ..., writes integer edges, scalar CubaLIF parameters, and
    tau = inf for a decay of 0 (with w_in = tau_syn, so w_in = inf for a current that never decays)."""
    w = np.random.default_rng(17).uniform(0, 1, (4, 3)).astype(np.float32)

    def graph(tau_syn, w_in):
        return nir.NIRGraph(nodes={"0": nir.Input(np.array([3])), "1": nir.Linear(weight=w),
                                   "2": nir.CubaLIF(tau_syn=np.array(tau_syn), tau_mem=np.array(np.inf), r=np.array(1.0), v_leak=np.array(0.0),
                                                    v_threshold=np.array(1.0), w_in=np.array(w_in)),
                                   "3": nir.Output(np.array([4]))},
                            edges=[(0, 1), (1, 2), (2, 3)], type_check=False)

    nir.write(tmp_path / "lava.nir", graph(2.0, 2.0), compression=None)  # nir gzips arrays, which 0-d ones refuse
    g = quiet(read_nir, tmp_path / "lava.nir", dt=1.0)
    assert g.edges == [("0", "1"), ("1", "2"), ("2", "3")]
    xs = stimulus(18, 3)
    syn = li_steps(xs.astype(np.float64) @ w.T.astype(np.float64), 2.0, 2.0, 0.0, 1.0)
    # tau_mem = inf: dv/dt = (v_leak - v + r*I)/inf = 0, so the membrane never moves and nothing fires
    np.testing.assert_array_equal(run(g, xs), np.zeros_like(syn))
    with pytest.raises(NIRConversionError, match=r"^2\.w_in is infinite.*Lava"):
        from_nir(graph(np.inf, np.inf), dt=1.0)
    nan = nir.NIRGraph.from_list(nir.LI(tau=np.ones(2), r=np.array([1.0, np.nan]), v_leak=np.zeros(2)))
    with pytest.raises(NIRConversionError, match=r"li\.r is NaN"):
        from_nir(nan, dt=1.0)


def test_nirtorch_input_without_a_type_takes_its_successors_shape():
    """nirtorch's torch_to_nir writes Input(input_type=None) and Output(output_type=None), then copies the
    first layer's input type into the Input, which a Conv2d without input_shape does not have."""
    w = np.random.default_rng(19).normal(0, 1, (3, 5)).astype(np.float32)
    ng = nir.NIRGraph(nodes={"x": nir.Input(input_type=None), "linear": nir.Linear(w), "output": nir.Output(output_type=None)},
                      edges=[("x", "linear"), ("linear", "output")], type_check=False)
    with pytest.warns(NIRConversionWarning, match=r"x: the NIR Input declares no shape; using \(5,\)"):
        g = from_nir(ng, dt=1e-3)
    xs = stimulus(20, 5)
    np.testing.assert_allclose(run(g, xs), xs.astype(np.float64) @ w.T.astype(np.float64), rtol=1e-5, atol=1e-6)
    conv = nir.Conv2d(input_shape=None, weight=np.ones((3, 2, 3, 3), np.float32), stride=1, padding=0, dilation=1, groups=1,
                      bias=np.zeros(3, np.float32))
    ng = nir.NIRGraph(nodes={"x": nir.Input(input_type=None), "conv": conv, "output": nir.Output(output_type=None)},
                      edges=[("x", "conv"), ("conv", "output")], type_check=False)
    with pytest.raises(NIRConversionError, match=r"x: the NIR Input declares no shape.*input_type = "):
        from_nir(ng, dt=1e-3)
