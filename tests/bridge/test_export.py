"""to_ir structure: node names, types, edges and parameters; functional ops; errors; custom_map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

snn = pytest.importorskip("snntorch")

from talon import ir  # noqa: E402
from talon.bridge.executor import ir_to_torch  # noqa: E402
from talon.bridge.export import ExportContext, convert_module, export_to_ir, to_ir  # noqa: E402
from talon.errors import TalonError, TalonUsageError, UnsupportedModuleError  # noqa: E402
from tutorial_models import HybridSNN, SimpleSNN  # noqa: E402


def types(graph: ir.Graph) -> dict[str, str]:
    return {name: type(node).__name__ for name, node in graph.nodes.items()}


def chain(*names: str) -> list[tuple[str, str]]:
    return list(zip(names, names[1:]))


def same_outputs(model: nn.Module, graph: ir.Graph, x: torch.Tensor, steps: int = 3) -> None:
    ex = ir_to_torch(graph)
    with torch.no_grad():
        for _ in range(steps):
            ref = model(x)
            ref = ref[0] if isinstance(ref, tuple) else ref
            assert torch.equal(ex(x), ref)


# -- the tutorial models ----------------------------------------------------------------------------

def test_simple_snn_structure():
    graph = export_to_ir(SimpleSNN(), torch.randn(1, 784))
    assert types(graph) == {"input": "Input", "fc1": "Affine", "lif1": "LIF", "fc2": "Affine", "lif2": "LIF", "output": "Output"}
    assert graph.edges == chain("input", "fc1", "lif1", "fc2", "lif2", "output")
    assert graph.nodes["input"].shape == (784,) and graph.nodes["output"].shape == (10,)
    lif = graph.nodes["lif1"]
    assert lif.reset_mode == "subtract" and lif.reset_delay and lif.graded_spikes_factor == 1.0
    # Constants at the shape they vary over (snnTorch's scalar beta: one value), in float32 where exact.
    for name in ("tau", "r", "v_leak", "v_threshold"):
        assert getattr(lif, name).shape == () and getattr(lif, name).dtype == np.float32, name
    tau, r = lif.tau.astype(np.float64), lif.r.astype(np.float64)
    # float32(1 - dt/tau), computed in float64, is snnTorch's float32 beta, bit for bit; dt*r/tau is exactly 1.
    assert np.all((1 - graph.dt / tau).astype(np.float32) == np.float32(0.9))
    assert np.all(graph.dt * r / tau == 1.0)
    assert np.all(lif.v_threshold == 1.0) and np.all(lif.v_leak == 0.0)


def test_hybrid_snn_structure():
    model = HybridSNN()
    graph = to_ir(model, torch.randn(1, 1, 28, 28))
    assert types(graph) == {
        "input": "Input", "conv1": "Conv2d", "relu": "ReLU", "pool": "MaxPool2d", "flatten": "Flatten", "fc1": "Affine",
        "lif": "LIF", "fc2": "Affine", "output": "Output",
    }
    assert graph.edges == chain(*graph.nodes)
    assert graph.nodes["flatten"].start_dim == 0 and graph.nodes["flatten"].end_dim == -1
    assert graph.nodes["pool"].kernel_size == (2, 2) and graph.nodes["pool"].stride == (2, 2)
    assert graph.nodes["conv1"].padding == (1, 1)
    assert graph.nodes["output"].shape == (10,)


def test_export_to_ir_is_the_snntorch_shim_and_exports_like_to_ir():
    from snntorch.export_talonir import export_to_ir as shim

    assert shim is export_to_ir
    model, sample = SimpleSNN(), torch.randn(1, 784)
    assert export_to_ir(model, sample) == to_ir(model, sample)


# -- module mapping ---------------------------------------------------------------------------------

def test_nested_sequential_names_and_init_hidden():
    model = nn.Sequential()
    model.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), snn.Leaky(beta=0.5, init_hidden=True))
    model.pool = nn.AvgPool2d(2)
    model.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 3 * 3, 5, bias=False), snn.Leaky(beta=0.7, init_hidden=True))
    graph = to_ir(model, torch.randn(2, 1, 8, 8))
    assert types(graph) == {
        "input": "Input", "features.0": "Conv2d", "features.1": "BatchNorm2d", "features.2": "LIF", "pool": "AvgPool2d",
        "head.0": "Flatten", "head.1": "Linear", "head.2": "LIF", "output": "Output",
    }
    assert graph.nodes["features.2"].tau.shape == ()  # one beta for the layer: one constant, not 4x6x6
    same_outputs(model.eval(), graph, torch.randn(2, 1, 8, 8) * 3)


def test_layer_mapping_parameters():
    model = nn.Sequential(
        nn.Conv1d(2, 3, 3, padding="same", bias=False),
        nn.Flatten(1, -1),
        nn.Dropout(0.25),
        nn.LeakyReLU(0.2),
        nn.Linear(24, 12),
        nn.BatchNorm1d(12),
        nn.LayerNorm(12),
        nn.PReLU(),
        nn.ELU(0.5),
        nn.GELU(approximate="tanh"),
        nn.Tanh(),
        nn.Sigmoid(),
        nn.Identity(),
        nn.Softmax(dim=-1),
    )
    graph = to_ir(model, torch.randn(1, 2, 8))
    assert list(types(graph).values())[1:-1] == [
        "Conv1d", "Flatten", "Dropout", "ReLU", "Affine", "BatchNorm1d", "LayerNorm", "PReLU", "ELU", "GELU", "Tanh", "Sigmoid",
        "Skip", "Softmax",
    ]
    n = graph.nodes
    assert n["0"].padding == 1 and np.all(n["0"].bias == 0)
    assert n["2"].p == 0.25 and n["3"].negative_slope == pytest.approx(0.2) and n["8"].alpha == 0.5
    assert n["9"].approximate and n["12"].skip_type == "passthrough" and n["13"].dim == -1
    same_outputs(model.eval(), graph, torch.randn(3, 2, 8))


def test_conv2d_pool_upsample():
    model = nn.Sequential(
        nn.Conv2d(3, 4, (3, 5), stride=(1, 2), padding=(1, 2), dilation=1, groups=1),
        nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.Upsample(scale_factor=2),
        nn.Conv2d(4, 4, 3, padding="same", groups=2),
        nn.AvgPool2d(2, count_include_pad=False),
        nn.Upsample(size=(5, 6), mode="bilinear"),
    )
    graph = to_ir(model, torch.randn(1, 3, 9, 10))
    assert graph.nodes["0"].stride == (1, 2) and graph.nodes["1"].ceil_mode and graph.nodes["3"].groups == 2
    assert graph.nodes["5"].size == (5, 6) and graph.nodes["5"].mode == "bilinear"
    same_outputs(model, graph, torch.randn(2, 3, 9, 10))


def test_neuron_parameters_exact():
    beta = torch.rand(8) * 0.98
    thr = torch.rand(8) + 0.3
    neuron = snn.Leaky(beta=beta, threshold=thr, reset_mechanism="zero", reset_delay=False, graded_spikes_factor=0.5,
                       init_hidden=True)
    lif = to_ir(nn.Sequential(nn.Linear(4, 8), neuron), torch.randn(1, 4)).nodes["1"]
    assert lif.reset_mode == "zero" and not lif.reset_delay and lif.graded_spikes_factor == 0.5
    assert lif.tau.shape == (8,)
    assert np.array_equal((1 - 1.0 / lif.tau.astype(np.float64)).astype(np.float32), beta.numpy())
    assert np.array_equal(lif.v_threshold, thr.numpy()) and lif.v_threshold.dtype == np.float32


def test_synaptic_and_recurrent_mapping():
    model = nn.Sequential(nn.Linear(4, 6), snn.Synaptic(alpha=0.8, beta=0.6, reset_mechanism="zero", init_hidden=True),
                          nn.Linear(6, 6), snn.RLeaky(beta=0.9, linear_features=6, reset_mechanism="zero", init_hidden=True),
                          snn.RSynaptic(alpha=0.9, beta=0.5, all_to_all=False, V=0.5, init_hidden=True))
    graph = to_ir(model, torch.randn(1, 4))
    assert types(graph) == {"input": "Input", "0": "Affine", "1": "CubaLIF", "2": "Affine", "3": "LIF",
                            "3.recurrent": "Affine", "4": "CubaLIF", "4.recurrent": "Scale", "output": "Output"}
    assert graph.nodes["1"].reset_mode == "zero_post" and graph.nodes["3"].reset_mode == "zero_post"
    assert graph.edges == [("input", "0"), ("0", "1"), ("1", "2"), ("2", "3"), ("3", "3.recurrent"), ("3.recurrent", "3"),
                           ("3", "4"), ("4", "4.recurrent"), ("4.recurrent", "4"), ("4", "output")]
    assert graph.nodes["4.recurrent"].scale.shape == ()  # V = 0.5 for every neuron
    assert not graph.is_dag


def test_lapicque_beta_only():
    graph = to_ir(nn.Sequential(nn.Linear(4, 5), snn.Lapicque(beta=0.8, init_hidden=True)), torch.randn(1, 4))
    lif = graph.nodes["1"]
    C = snn.Lapicque(beta=0.8).C  # snnTorch's own float32 C = time_step / ln(1/beta)
    assert lif.reset_mode == "subtract"
    # U = x*g + d*U_prev with g = fl(1/C), d = fl(1 - 1/C): not the analytic ln(1/beta)
    assert np.all((1.0 * lif.r / lif.tau).astype(np.float32) == (1 / C).numpy())
    assert np.all((1 - 1.0 / lif.tau).astype(np.float32) == (1 - 1 / C).numpy())


# -- functional ops ---------------------------------------------------------------------------------

class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.block = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 6, 10)
        self.lif = snn.Leaky(beta=0.8, init_hidden=True)

    def forward(self, x):
        a = F.relu(self.conv(x))
        b = self.block(a) + a               # residual
        c = torch.cat([a, b], dim=1)        # channel concat
        c = c.view(c.size(0), 8, -1)        # flattening view
        d = torch.flatten(c, 1)
        d = d.reshape(d.shape[0], -1) * 2.0  # no-op reshape, then a scale
        return self.lif(self.fc(d.relu()))


def test_functional_ops():
    model = Functional()
    graph = to_ir(model, torch.randn(1, 2, 4, 6))
    assert types(graph) == {
        "input": "Input", "conv": "Conv2d", "relu": "ReLU", "block": "Conv2d", "add": "Skip", "cat": "Concat",
        "flatten": "Flatten", "flatten_1": "Flatten", "mul": "Scale", "relu_1": "ReLU", "fc": "Affine", "lif": "LIF",
        "output": "Output",
    }
    assert graph.predecessors("add") == ["block", "relu"] and graph.predecessors("cat") == ["relu", "add"]
    assert graph.nodes["cat"].dim == 0 and graph.nodes["add"].skip_type == "residual"
    assert (graph.nodes["flatten"].start_dim, graph.nodes["flatten"].end_dim) == (1, -1)
    same_outputs(model, graph, torch.randn(3, 2, 4, 6) * 2, steps=5)


def test_functional_names_do_not_take_module_paths():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(12, 3)
            self.flatten = nn.Identity()

        def forward(self, x):
            return self.fc(self.flatten(torch.flatten(x, 1)))

    graph = to_ir(Net(), torch.randn(1, 3, 4))
    assert list(graph.nodes) == ["input", "flatten_1", "flatten", "fc", "output"]
    assert types(graph)["flatten"] == "Skip" and types(graph)["flatten_1"] == "Flatten"


def test_state_outputs_and_unused_branches_leave_no_nodes():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.lif = snn.Synaptic(alpha=0.5, beta=0.5)
            self.aux = nn.Linear(4, 2)

        def forward(self, x, syn=None, mem=None):
            if syn is None:
                syn, mem = self.lif.init_synaptic()
            spk, syn, mem = self.lif(self.fc(x), syn, mem)
            return spk, self.aux(spk), syn, mem

    graph = to_ir(Net(), torch.randn(1, 4))
    assert list(graph.nodes) == ["input", "fc", "lif", "output"]


def test_zeros_like_initial_state():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.lif = snn.Leaky(beta=0.5)

        def forward(self, x, mem=None):
            cur = self.fc(x)
            if mem is None:
                mem = torch.zeros_like(cur)
            return self.lif(cur, mem)  # the whole (spk, mem) tuple: its first item is the output

    graph = to_ir(Net(), torch.randn(1, 4))
    assert list(graph.nodes) == ["input", "fc", "lif", "output"]


# -- errors -----------------------------------------------------------------------------------------

def export_error(model: nn.Module, sample: torch.Tensor, *fragments: str) -> str:
    with pytest.raises(UnsupportedModuleError) as info:
        to_ir(model, sample)
    msg = str(info.value)
    for f in fragments:
        assert f in msg, msg
    return msg


@pytest.mark.parametrize(
    "neuron,why",
    [
        (snn.Leaky(beta=0.9, inhibition=True, init_hidden=True), "inhibition"),
        (snn.Synaptic(alpha=0.9, beta=0.8, state_quant=lambda x: x, init_hidden=True), "state_quant"),
        (snn.Alpha(alpha=0.9, beta=0.8, init_hidden=True), "not an LIF"),
        (snn.Lapicque(R=5.1, C=5e-3, time_step=1e-3, init_hidden=True), "R == 1"),
        (snn.Leaky(beta=torch.tensor([0.5, 1.2, 0.9, 0.1]), init_hidden=True), "beta is 1 for some"),
        (snn.Synaptic(alpha=1.0, beta=0.5, init_hidden=True), "alpha is 1"),
        (snn.Leaky(beta=torch.tensor([0.5, 0.6, 0.7, 0.8], dtype=torch.float64), init_hidden=True), "float64"),
    ],
    ids=["inhibition", "state_quant", "alpha", "lapicque-rc", "mixed-beta-one", "synaptic-alpha-one", "float64"],
)
def test_unsupported_neurons_name_path_and_type(neuron, why):
    model = nn.Sequential()
    model.body = nn.Sequential(nn.Linear(3, 4), neuron)
    msg = export_error(model, torch.randn(1, 3), "'body.1'", type(neuron).__qualname__, why, "custom_map")
    assert f"custom_map={{{type(neuron).__name__}: fn}}" in msg


def test_changed_reset_mechanism_is_refused():
    neuron = snn.Leaky(beta=0.9, init_hidden=True)
    neuron.reset_mechanism = "zero"  # snnTorch keeps integrating with the subtract function bound in __init__
    export_error(nn.Sequential(nn.Linear(3, 4), neuron), torch.randn(1, 3), "'1'", "reset_mechanism was changed")


def test_unknown_module():
    model = nn.Sequential(nn.Linear(3, 4), nn.Hardswish())
    export_error(model, torch.randn(1, 3), "'1'", "torch.nn.modules.activation.Hardswish", "custom_map={Hardswish: fn}")


@pytest.mark.parametrize(
    "model,sample,fragment",
    [
        (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect")), torch.randn(1, 1, 5, 5), "padding_mode"),
        (nn.Sequential(nn.Conv2d(1, 2, 4, padding="same")), torch.randn(1, 1, 5, 5), "asymmetrically"),
        (nn.Sequential(nn.Flatten(0)), torch.randn(1, 3), "batch"),
        (nn.Sequential(nn.BatchNorm1d(3, track_running_stats=False)), torch.randn(2, 3), "track_running_stats"),
        (nn.Sequential(nn.MaxPool2d(2, return_indices=True)), torch.randn(1, 1, 4, 4), "return_indices"),
    ],
    ids=["reflect", "same-even", "flatten-batch", "bn-batch-stats", "indices"],
)
def test_unsupported_module_settings(model, sample, fragment):
    export_error(model, sample, "'0'", fragment)


class Unflatten(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 8)

    def forward(self, x):
        return self.fc(x).view(x.shape[0], 2, 4)


class ReturnsMembrane(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.lif = snn.Leaky(beta=0.9)

    def forward(self, x, mem=None):
        mem = self.lif.init_leaky() if mem is None else mem
        spk, mem = self.lif(self.fc(x), mem)
        return mem, spk


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        return y if y.sum() > 0 else -y


class NeedsTwoInputs(nn.Module):
    def forward(self, x, y):
        return x + y


@pytest.mark.parametrize(
    "model,fragment",
    [
        (Unflatten(), "only reshapes that flatten"),
        (ReturnsMembrane(), "forward returns its membrane, which its 'subtract' reset changes"),
        (DataDependent(), "torch.fx cannot trace"),
        (NeedsTwoInputs(), "'y' has no default"),
    ],
    ids=["unflatten", "membrane-output", "control-flow", "two-inputs"],
)
def test_untranslatable_forward(model, fragment):
    export_error(model, torch.randn(1, 4), fragment)


def test_bad_sample():
    with pytest.raises(TalonError):
        to_ir(nn.Linear(2, 2), [1.0, 2.0])
    with pytest.raises(TalonUsageError, match=r"unsqueeze\(0\) of shape \(1, 4\)"):
        export_to_ir(nn.Sequential(nn.Linear(4, 3)), torch.randn(4))


# -- custom_map -------------------------------------------------------------------------------------

class Gain(nn.Module):
    """A user module the bridge does not know: y = g * x."""

    def __init__(self, n):
        super().__init__()
        self.g = nn.Parameter(torch.linspace(0.5, 2.0, n))

    def forward(self, x):
        return x * self.g


def gain_to_scale(module: Gain, ctx: ExportContext) -> ir.Node:
    assert ctx.input_shape == ctx.output_shape == (6,)
    return ir.Scale(scale=module.g.detach().numpy())


def test_custom_map_by_type():
    model = nn.Sequential(nn.Linear(3, 6), Gain(6), snn.Leaky(beta=0.9, init_hidden=True))
    with pytest.raises(UnsupportedModuleError, match="constant tensor"):
        to_ir(model, torch.randn(1, 3))  # traced through, x * parameter has no IR node
    graph = to_ir(model, torch.randn(1, 3), custom_map={Gain: gain_to_scale})
    assert types(graph)["1"] == "Scale"
    same_outputs(model, graph, torch.randn(2, 3) * 3, steps=5)


def test_custom_map_by_path_overrides_builtin():
    calls = []

    def linear_without_bias(module: nn.Linear, ctx: ExportContext) -> ir.Node:
        calls.append(ctx.path)
        return ir.Linear(weight=module.weight.detach().numpy())

    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    graph = to_ir(model, torch.randn(1, 3), custom_map={"2": linear_without_bias})
    assert calls == ["2"] and types(graph)["0"] == "Affine" and types(graph)["2"] == "Linear"


def test_custom_map_for_an_unsupported_neuron_and_reuse_of_builtins():
    """A converter may wrap a built-in one, e.g. export inhibition=True neurons as plain LIFs knowingly."""

    def plain(module, ctx):
        module.inhibition = False
        try:
            return convert_module(module, ctx)
        finally:
            module.inhibition = True

    model = nn.Sequential(nn.Linear(3, 4), snn.Leaky(beta=0.9, inhibition=True, init_hidden=True))
    graph = to_ir(model, torch.randn(1, 3), custom_map={snn.Leaky: plain})
    assert types(graph)["1"] == "LIF"


def test_custom_map_nested_graph():
    def block(module: nn.Sequential, ctx: ExportContext) -> ir.Graph:
        inner = ir.Graph()
        inner.add_node("input", ir.Input(shape=ctx.input_shape))
        inner.add_node("fc", ir.Affine(weight=module[0].weight.detach().numpy(), bias=module[0].bias.detach().numpy()))
        inner.add_node("relu", ir.ReLU())
        inner.add_node("output", ir.Output())
        inner.chain("input", "fc", "relu", "output")
        return inner

    model = nn.Sequential(nn.Sequential(nn.Linear(3, 5), nn.ReLU()), nn.Linear(5, 2))
    graph = to_ir(model, torch.randn(1, 3), custom_map={"0": block})
    assert types(graph) == {"input": "Input", "0": "Graph", "1": "Affine", "output": "Output"}
    same_outputs(model, graph, torch.randn(4, 3))


def test_custom_map_bad_result_and_keys():
    with pytest.raises(TalonError, match="expected a talon.ir Node"):
        to_ir(nn.Sequential(nn.Linear(2, 2)), torch.randn(1, 2), custom_map={nn.Linear: lambda m, ctx: 42})
    with pytest.raises(TalonError, match="keys"):
        to_ir(nn.Sequential(nn.Linear(2, 2)), torch.randn(1, 2), custom_map={3: lambda m, ctx: None})


def test_round_trip_file(tmp_path):
    graph = to_ir(SimpleSNN(), torch.randn(1, 784))
    ir.write(tmp_path / "m.t1c", graph)
    assert ir.read(tmp_path / "m.t1c") == graph


def test_sample_that_does_not_fit():
    with pytest.raises(TalonUsageError, match=r"running the sample \(1, 5\)"):
        to_ir(nn.Sequential(nn.Linear(4, 2)), torch.randn(1, 5))


# -- clear messages: layers without an IR equivalent, the function called, wrong sample shapes ---------

class WithLayer(nn.Module):
    """Linear -> <layer> -> Leaky: a small model around one layer."""

    def __init__(self, layer: nn.Module, unpack: bool):
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.layer = layer
        self.lif = snn.Leaky(beta=0.9)
        self.unpack = unpack

    def forward(self, x):
        y = self.fc(x)
        y = self.layer(y)[0] if self.unpack else self.layer(y)
        return self.lif(y)[0]


class SubclassedGRU(nn.GRU):
    pass


NO_EQUIVALENT = [
    (lambda: nn.GRU(8, 8, batch_first=True), True, "GRU", "recurrent layers"),
    (lambda: nn.LSTM(8, 8, batch_first=True), True, "LSTM", "recurrent layers"),
    (lambda: nn.RNN(8, 8, batch_first=True), True, "RNN", "recurrent layers"),
    (lambda: nn.GRUCell(8, 8), False, "GRUCell", "recurrent layers"),
    (lambda: SubclassedGRU(8, 8, batch_first=True), True, "SubclassedGRU", "recurrent layers"),
    (lambda: nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), False, "TransformerEncoderLayer", "attention and Transformer"),
]


@pytest.mark.parametrize("make,unpack,type_name,why", NO_EQUIVALENT, ids=[t for _, _, t, _ in NO_EQUIVALENT])
@pytest.mark.parametrize("api", [to_ir, export_to_ir], ids=["to_ir", "export_to_ir"])
def test_layers_without_ir_equivalent_get_no_converter_message(make, unpack, type_name, why, api):
    with pytest.raises(UnsupportedModuleError) as info:
        api(WithLayer(make(), unpack), torch.randn(1, 3, 4) if unpack else torch.randn(1, 4))
    msg = str(info.value)
    assert "cannot export module 'layer' (" in msg and f".{type_name}): no converter for this module type: {why}" in msg
    assert f"{api.__name__}(model, sample, custom_map={{{type_name}: fn}}) or custom_map={{'layer': fn}}" in msg
    assert "torch.fx" not in msg and "control flow" not in msg


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.att = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        return self.att(x, x, x)[0]


@pytest.mark.parametrize(
    "model,sample,path,type_name",
    [
        (nn.GRU(4, 8), torch.randn(1, 3, 4), "gru", "GRU"),  # the model is itself the layer
        (nn.LSTM(4, 8), torch.randn(1, 3, 4), "lstm", "LSTM"),
        (Attention(), torch.randn(1, 3, 8), "att", "MultiheadAttention"),
        (nn.Sequential(nn.Linear(4, 8), nn.Transformer(8, 2, 1, 1, 16, batch_first=True)), torch.randn(1, 3, 4), "1", "Transformer"),
    ],
    ids=["gru-root", "lstm-root", "attention", "transformer-needs-tgt"],
)
def test_recurrent_and_attention_models_name_path_and_type(model, sample, path, type_name):
    from snntorch.export_talonir import export_to_ir as shim

    with pytest.raises(UnsupportedModuleError) as info:
        shim(model, sample)
    msg = str(info.value)
    assert f"cannot export module {path!r} (" in msg and f".{type_name}): no converter" in msg
    assert f"export_to_ir(model, sample, custom_map={{{type_name}: fn}})" in msg
    assert "to_ir(" not in msg.replace("export_to_ir(", "") and "torch.fx" not in msg


def test_a_single_layer_model_exports_and_takes_custom_map():
    graph = to_ir(snn.Leaky(beta=0.5), torch.randn(1, 4))
    assert types(graph) == {"input": "Input", "leaky": "LIF", "output": "Output"}
    lin = nn.Linear(4, 3)
    graph = to_ir(lin, torch.randn(2, 4))
    assert types(graph) == {"input": "Input", "linear": "Affine", "output": "Output"}
    same_outputs(lin, graph, torch.randn(2, 4))
    gru = nn.GRU(4, 4)
    graph = to_ir(gru, torch.randn(1, 2, 4), custom_map={nn.GRU: lambda m, ctx: ir.Skip(skip_type="passthrough")})
    assert types(graph) == {"input": "Input", "gru": "Skip", "output": "Output"}


def test_unsupported_module_errors_name_the_function_called():
    model = nn.Sequential(nn.Linear(3, 4), nn.Hardswish())
    for api in (to_ir, export_to_ir):
        with pytest.raises(UnsupportedModuleError, match=rf"\b{api.__name__}\(model, sample, custom_map=\{{Hardswish: fn\}}\)"):
            api(model, torch.randn(1, 3))
    neuron = snn.Leaky(beta=0.9, inhibition=True, init_hidden=True)  # a converter's own refusal (ctx.unsupported)
    with pytest.raises(UnsupportedModuleError, match=r"inhibition.*export_to_ir\(model, sample, custom_map=\{Leaky: fn\}\)"):
        export_to_ir(nn.Sequential(nn.Linear(3, 4), neuron), torch.randn(1, 3))
    with pytest.raises(UnsupportedModuleError, match="'y' has no default; export_to_ir feeds one sample"):
        export_to_ir(NeedsTwoInputs(), torch.randn(1, 4))
    with pytest.raises(TalonUsageError, match="export_to_ir expects a torch.nn.Module"):
        export_to_ir(lambda x: x, torch.randn(1, 4))


class SmallSNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.lif = snn.Leaky(beta=0.9)

    def forward(self, x):
        return self.lif(self.fc(x))[0]


@pytest.mark.parametrize(
    "model,sample,expected",
    [
        (SmallSNN(), torch.randn(1, 5),
         "export_to_ir: running the sample (1, 5) through SmallSNN failed at module 'fc' (Linear): it expects an input of "
         "shape (1, 4) (last dimension = in_features 4) but the sample has shape (1, 5); pass a batch-first sample of shape (1, 4)"),
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)), torch.randn(1, 2, 8, 8),
         "export_to_ir: running the sample (1, 2, 8, 8) through Sequential failed at module '0' (Conv2d): it expects an input of "
         "shape (1, 1, 8, 8) ((B, C, H, W) with C = in_channels 1) but the sample has shape (1, 2, 8, 8); pass a batch-first "
         "sample of shape (1, 1, 8, 8)"),
        (nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), torch.randn(1, 1, 8, 7),
         "export_to_ir: running the sample (1, 1, 8, 7) through Sequential failed at module '1' (Linear): it expects an input of "
         "shape (1, 64) (last dimension = in_features 64) but got (1, 56), computed from the sample (1, 1, 8, 7); check the "
         "sample's shape against the input the model was built for"),
        (nn.Sequential(nn.Conv2d(1, 4, 3)), torch.randn(1, 8, 8),
         "export_to_ir: module '0' (Conv2d) got an input of shape (1, 8, 8), but it expects (B, C, H, W) with C = in_channels 1; "
         "the sample must be batch-first: add the batch dimension, e.g. sample.unsqueeze(0) of shape (1, 1, 8, 8)"),
    ],
    ids=["linear-first", "conv-channels", "downstream-linear", "no-batch-dim"],
)
def test_wrong_sample_shape_names_expected_and_given(model, sample, expected):
    with pytest.raises(TalonUsageError) as info:
        export_to_ir(model, sample)
    assert str(info.value) == expected
    assert "tlparse" not in str(info.value) and "While executing" not in str(info.value)


def test_wrong_sample_shape_elsewhere_keeps_the_torch_reason_without_fx_noise():
    class Reshape(nn.Module):
        def forward(self, x):
            return x.view(x.shape[0], 4, 4)

    with pytest.raises(TalonUsageError) as info:
        to_ir(nn.Sequential(nn.Linear(3, 15), Reshape()), torch.randn(1, 3))
    msg = str(info.value)
    assert msg.startswith("to_ir: running the sample (1, 3) through Sequential failed at Tensor.view at "
                          "`return x.view(x.shape[0], 4, 4)` (test_export.py:"), msg
    assert "RuntimeError: " in msg
    assert "\n" not in msg and "tlparse" not in msg


def test_export_after_running_under_inference_mode():
    # snnTorch state buffers created under inference_mode are inference tensors; exporting must still
    # restore them (regression: "Inplace update to inference tensor outside InferenceMode").
    import snntorch as snn

    net = nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.9, init_hidden=True))
    with torch.inference_mode():
        net(torch.ones(2, 4))
    graph = to_ir(net, torch.ones(1, 4))
    assert [type(n).__name__ for n in graph.nodes.values()] == ["Input", "Affine", "LIF", "Output"]
