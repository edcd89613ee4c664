"""One home per primitive, seen from outside: `talon primitives` shows exactly the concerns a user
primitive registered, and every concern it lacks fails by name where a pass needs it (never a silent skip)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from talon import ir
from talon.errors import BackendError, MappingError, TalonError
from talon.ir.node import array, primitive

GAIN = "SupportTestGain"


class GainRuntime(nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.register_buffer("w", torch.as_tensor(weight))

    def forward(self, x):
        return x * self.w.to(x.dtype)


class GainModule(nn.Module):
    """The user's torch module that exports as the gain primitive."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.linspace(0.5, 2.0, n))

    def forward(self, x):
        return x * self.weight


@pytest.fixture
def Gain(registries):
    """A user primitive with a node class and a runtime, nothing else."""
    from talon.bridge.modules import register_runtime

    @primitive(name=GAIN)
    class _Gain(ir.Node):
        """y = weight * x, elementwise (a user primitive)."""

        weight: np.ndarray = array()

    register_runtime(GAIN, lambda node, ctx: GainRuntime(node.weight))
    return _Gain


def _lif(n: int) -> ir.LIF:
    tau = np.full(n, 5.0, np.float32)
    return ir.LIF(tau=tau, r=tau, v_leak=np.zeros(n, np.float32), v_threshold=np.full(n, 0.5, np.float32), reset_mode="zero")


def _graph(Gain) -> ir.Graph:
    """Input -> Affine -> LIF -> gain -> Affine -> LIF -> Output: the gain sits between two neuron layers."""
    rng = np.random.default_rng(0)
    nodes = {
        "x": ir.Input(shape=(4,)),
        "fc1": ir.Affine(weight=rng.uniform(0, 1, (3, 4)).astype(np.float32), bias=np.zeros(3, np.float32)),
        "lif1": _lif(3),
        "gain": Gain(weight=np.array([0.5, 1.0, 2.0], np.float32)),
        "fc2": ir.Affine(weight=rng.uniform(0, 1, (2, 3)).astype(np.float32), bias=np.zeros(2, np.float32)),
        "lif2": _lif(2),
        "y": ir.Output(),
    }
    names = list(nodes)
    return ir.Graph(nodes, list(zip(names, names[1:]))).validate()


def _support(type_name: str) -> dict:
    from talon.cli._support import support

    return {k: v["status"] for k, v in support(type_name).items()}


def run_cli(*args):
    from click.testing import CliRunner

    from talon.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


# -- the matrix ------------------------------------------------------------------------------------------

def test_a_user_primitive_shows_exactly_the_concerns_it_registered(Gain):
    from talon.backend.cpu.fixed_registry import register_fixed_rule
    from talon.backend.cpu.fixed_rules import SynapticRule
    from talon.bridge.converters import register_converter
    from talon.ir.nir import register_nir_export
    from talon.sdk import register_bounds
    from talon.sdk.cost import Counts, register_cost

    missing = {"cost", "bounds", "fixed_point", "fpga_emitter", "hls4ml", "nir_export", "nir_import", "converters", "functional",
               "connectivity"}
    assert _support(GAIN) == {"runtime": "registered", "mapping": "none", **{k: "missing" for k in missing}}

    register_cost(GAIN, lambda node, ins, outs: Counts(flops=int(np.prod(outs[0]))), formula="flops = n")
    register_bounds(GAIN, lambda node, args, outs, dt, neurons, name: [(args[0][0] * 2, args[0][1] * 2)])
    register_fixed_rule(GAIN, SynapticRule(weight_fields=("weight",)))
    register_nir_export(GAIN, lambda node, ctx: None)
    register_converter(GainModule, lambda m, ctx: Gain(weight=m.weight.detach().numpy()), produces=(GAIN,))
    now = _support(GAIN)
    assert {k for k, v in now.items() if v == "registered"} == {"runtime", "cost", "bounds", "fixed_point", "nir_export", "converters"}
    assert {k for k, v in now.items() if v == "missing"} == {"fpga_emitter", "hls4ml", "nir_import", "functional", "connectivity"}

    code, out, _ = run_cli("primitives", GAIN, "--json")
    (info,) = json.loads(out)["primitives"]
    assert code == 0 and info["support"]["cost"] == {"status": "registered", "detail": "flops = n"}
    assert info["support"]["converters"]["detail"] == f"{__name__}.GainModule"
    assert info["support"]["fixed_point"]["detail"] == "SynapticRule"
    assert info["traits"]["stateful"] is False and info["traits"]["neurons_per_element"] == 0
    code, out, _ = run_cli("primitives", GAIN)
    assert code == 0 and "fpga_emitter" in out and "missing" in out and "SynapticRule" in out


def test_the_matrix_lists_every_primitive_and_concern():
    from talon.cli._support import CONCERNS

    code, out, _ = run_cli("primitives", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["concerns"] == list(CONCERNS)
    by = {p["name"]: p for p in doc["primitives"]}
    assert set(by) == set(ir.list_primitives())
    assert all(set(p["support"]) == set(CONCERNS) for p in by.values())
    lif = by["LIF"]["support"]
    assert lif["cost"]["status"] == "traits" and lif["mapping"]["status"] == "traits" and lif["runtime"]["status"] == "registered"
    assert "snntorch" in lif["converters"]["detail"] and "Leaky" in lif["converters"]["detail"]
    assert by["MaxPool2d"]["support"]["nir_export"]["status"] == "refused"
    assert by["Sigmoid"]["support"]["fixed_point"]["status"] == "refused"
    assert "torch.nn.modules.linear.Linear" in by["Affine"]["support"]["converters"]["detail"]
    assert by["Graph"]["support"]["mapping"]["status"] == "refused"
    code, out, _ = run_cli("primitives")
    assert code == 0 and "support matrix" in out and "CubaLIF" in out


def test_a_converter_that_returns_an_undeclared_type_stops_the_export(registries):
    from talon.bridge import to_ir
    from talon.bridge.converters import register_converter

    register_converter(GainModule, lambda m, ctx: ir.Scale(scale=m.weight.detach().numpy()), produces=("Affine",))
    model = nn.Sequential(nn.Linear(4, 3), GainModule(3))
    with pytest.raises(TalonError, match=r"GainModule returned Scale .*produces=\['Affine'\]"):
        to_ir(model, torch.zeros(1, 4))
    register_converter(GainModule, lambda m, ctx: ir.Scale(scale=m.weight.detach().numpy()), produces=("Scale",), replace=True)
    assert "Scale" in {n.type_name for n in to_ir(model, torch.zeros(1, 4)).nodes.values()}
    from talon.cli._support import support

    assert f"{__name__}.GainModule" in support("Scale")["converters"]["detail"]


def test_every_builtin_converter_declares_what_it_produces():
    from talon.cli._support import undeclared_converters

    assert undeclared_converters() == []


# -- a missing concern fails by name where it is needed ---------------------------------------------------

def _fixed(g):
    from talon.backend import get_backend

    get_backend("cpu").simulate(g, torch.rand(4, 1, 4), mode="fixed")


def _fpga(g, tmp_path):
    from talon.backend import get_backend

    get_backend("fpga").compile(g, tmp_path / "prj", n_steps=3)


def _fpga_with_rule(g, tmp_path):
    from talon.backend.cpu.fixed_registry import register_fixed_rule
    from talon.backend.cpu.fixed_rules import SynapticRule

    register_fixed_rule(GAIN, SynapticRule(weight_fields=("weight",)))
    _fpga(g, tmp_path)


def _nir(g):
    pytest.importorskip("nir")
    ir.to_nir(g)


def _mapping(g):
    import talon.mapping as tm

    tm.map_graph(g, tm.HardwareSpec(), algorithm="greedy")


def _lint(g):
    from talon.sdk import lint_graph

    (issue,) = [i for i in lint_graph(g) if i.code == "NO_BOUNDS_RULE"]
    raise TalonError(f"{issue.code}: {issue.node}: {issue.message}")


@pytest.mark.parametrize("where, run, error, registry", [
    ("fixed mode", lambda g, tmp: _fixed(g), BackendError, "register_fixed_rule"),
    ("fpga", lambda g, tmp: _fpga(g, tmp), BackendError, "register_fixed_rule"),  # the plan needs the rule first
    ("fpga emitter", lambda g, tmp: _fpga_with_rule(g, tmp), BackendError, "register_emitter"),
    ("nir", lambda g, tmp: _nir(g), TalonError, "register_nir_export"),
    ("mapping", lambda g, tmp: _mapping(g), MappingError, "register_connectivity"),
    ("lint bounds", lambda g, tmp: _lint(g), TalonError, "register_bounds"),
])  # fmt: skip
def test_a_missing_concern_fails_by_name(Gain, tmp_path, where, run, error, registry):
    g = _graph(Gain)
    with pytest.raises(error) as info:
        run(g, tmp_path)
    msg = str(info.value)
    assert "'gain'" in msg and GAIN in msg and registry in msg, msg
    assert not (tmp_path / "prj").exists()  # nothing half-written


# -- functional ops --------------------------------------------------------------------------------------

class FunctionalNet(nn.Module):
    """A user's model written with functional ops and Tensor methods rather than modules."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 4 * 4, 6)
        self.fc2 = nn.Linear(6, 6)

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = F.max_pool2d(x, 2)
        x = x.view(x.size(0), -1)
        h = torch.sigmoid(self.fc(x))
        return torch.flatten(h + self.fc2(h), 1).detach()


def test_the_matrix_lists_the_functional_ops_a_model_uses():
    from talon.bridge import to_ir

    g = to_ir(FunctionalNet(), torch.zeros(1, 1, 8, 8))
    made = {type(node).__name__ for node in g.nodes.values()}
    assert {"ReLU", "MaxPool2d", "Flatten", "Sigmoid", "Skip"} <= made
    code, out, _ = run_cli("primitives", "--json")
    doc = json.loads(out)
    assert code == 0 and "functional" in doc["concerns"]
    func = {p["name"]: p["support"]["functional"] for p in doc["primitives"]}
    for type_name, op in (("ReLU", "F.relu"), ("MaxPool2d", "F.max_pool2d"), ("Flatten", "Tensor.view"), ("Flatten", "torch.flatten"),
                          ("Sigmoid", "torch.sigmoid"), ("Skip", "operator.add")):
        assert func[type_name]["status"] == "registered" and op in func[type_name]["detail"].split(", "), (type_name, op)
    assert func["LIF"]["status"] == "missing" and func["Affine"]["status"] == "missing"
    assert "Tensor.detach" in doc["identity_ops"] and any(op.startswith("Tensor.float ") for op in doc["identity_ops"])
    code, out, _ = run_cli("primitives")
    assert code == 0 and "func" in out and "identity (no node)" in out and "Tensor.detach" in out
    code, out, _ = run_cli("primitives", "ReLU")
    assert code == 0 and "F.relu" in out and "Tensor.relu" in out


def test_the_functional_column_is_read_from_the_exporters_tables(monkeypatch):
    """An op the exporter learns shows up in the matrix, with no list kept elsewhere; an op whose node is not
    of a declared type stops the export."""
    import talon.bridge.export as export
    from talon.bridge import to_ir

    monkeypatch.setitem(export._FUNCTION_OPS, torch.nn.functional.relu6, "relu")
    code, out, _ = run_cli("primitives", "ReLU", "--json")
    assert code == 0 and "F.relu6" in json.loads(out)["primitives"][0]["support"]["functional"]["detail"]
    monkeypatch.setitem(export.OP_PRODUCES, "relu", ("Sigmoid",))
    with pytest.raises(TalonError, match=r"'relu' made a ReLU node but OP_PRODUCES declares \['Sigmoid'\]"):
        to_ir(FunctionalNet(), torch.zeros(1, 1, 8, 8))
