"""The NIR registries (talon.ir.nir_registry): a user's primitive exports and imports through the same calls
as the built-ins, and a primitive with no NIR export fails by name in to_nir, write_nir and `talon convert`."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

nir = pytest.importorskip("nir")

import talon.ir as ir  # noqa: E402
from talon.errors import TalonUsageError  # noqa: E402
from talon.ir import nir_registry  # noqa: E402
from talon.ir import node as node_module  # noqa: E402
from talon.ir.nir import (  # noqa: E402
    NIRConversionError, NIRConversionWarning, from_nir, nir_export_types, nir_support, refuse_nir_export, register_nir_export,
    register_nir_import, to_nir, write_nir,
)
from talon.ir.node import array  # noqa: E402


@pytest.fixture
def gain_type(monkeypatch):
    """NirTestGain, y = weight * x element-wise: a user primitive, registered for this test only (node and NIR
    registries restored afterwards)."""
    monkeypatch.setattr(node_module, "_REGISTRY", dict(node_module._REGISTRY))
    for name in ("_EXPORTS", "_REFUSED", "_DEFAULTS"):
        monkeypatch.setattr(nir_registry, name, dict(getattr(nir_registry, name)))
    monkeypatch.setattr(nir_registry, "_IMPORTS", {k: dict(v) for k, v in nir_registry._IMPORTS.items()})

    @ir.register_node
    @dataclasses.dataclass(eq=False, repr=False)
    class NirTestGain(ir.Node):
        weight: np.ndarray = array()

        def output_shape_for(self, shape):
            return tuple(shape)

    return NirTestGain


def _graph(gain_cls) -> ir.Graph:
    tau = np.full(3, 5.0)
    nodes = {"x": ir.Input(shape=(3,)), "gain": gain_cls(weight=np.array([0.5, -1.0, 2.0], np.float32)),
             "lif": ir.LIF(tau=tau, r=tau, v_leak=np.zeros(3), v_threshold=np.ones(3), reset_mode="zero"), "y": ir.Output()}
    return ir.Graph(nodes, [("x", "gain"), ("gain", "lif"), ("lif", "y")]).validate()


def run_cli(*args):
    from click.testing import CliRunner

    from talon.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_primitive_without_nir_export_fails_by_name(gain_type, tmp_path):
    g = _graph(gain_type)
    match = r"node 'gain' \(NirTestGain\) cannot be exported to NIR: no NIR export is registered for NirTestGain: register one with talon\.ir\.nir\.register_nir_export\('NirTestGain'"
    with pytest.raises(NIRConversionError, match=match):
        to_nir(g)
    with pytest.raises(NIRConversionError, match=match):
        write_nir(tmp_path / "g.nir", g)
    with pytest.raises(NIRConversionError, match=match):
        ir.write(tmp_path / "g.nir", g)
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    ir.write(tmp_path / "g.t1c", g)
    code, _, err = run_cli("convert", tmp_path / "g.t1c", "-o", tmp_path / "g.nir")
    assert code != 0 and "'gain'" in err and "NirTestGain" in err and "register_nir_export" in err
    assert not (tmp_path / "g.nir").exists()


def test_user_primitive_exports_and_reads_back_through_the_registry(gain_type, tmp_path):
    @register_nir_export("NirTestGain")
    def export_gain(node, ctx):
        return ctx.nir.Scale(scale=ctx.full(node.weight))

    g = _graph(gain_type)
    ng = to_nir(g)
    assert isinstance(ng.nodes["gain"], nir.Scale) and np.array_equal(ng.nodes["gain"].scale, [0.5, -1.0, 2.0])
    # Without an import as NirTestGain, the hint naming it is not used: the NIR Scale reads back as a Scale, said loudly.
    with pytest.warns(NIRConversionWarning, match="ignoring a TALON hint that names type 'NirTestGain' for a NIR Scale"):
        back = from_nir(ng)
    assert back.nodes["gain"].type_name == "Scale"

    register_nir_import("Scale", "NirTestGain", lambda nn, ctx: {"weight": ctx.get(nn, "scale")})
    write_nir(tmp_path / "g.nir", g)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NIRConversionWarning)
        assert ir.read(tmp_path / "g.nir") == g  # exact, the user type restored
        assert from_nir(nir.read(str(tmp_path / "g.nir"))) == g
    assert nir_support("NirTestGain") == {"export": True, "refused": None, "imports_from": ["Scale"]}


def test_user_import_as_the_default_for_a_nir_class(gain_type):
    """A NIR class TALON has no default for can be given one (here Scale is re-pointed, replace=True)."""
    register_nir_import("Scale", "NirTestGain", lambda nn, ctx: {"weight": ctx.get(nn, "scale")}, default=True, replace=True)
    ng = nir.NIRGraph.from_list(nir.Scale(scale=np.array([2.0, 3.0], np.float32)), type_check=False)
    back = from_nir(ng, dt=1.0)
    gains = [n for n in back.nodes.values() if n.type_name == "NirTestGain"]
    assert len(gains) == 1 and np.array_equal(gains[0].weight, [2.0, 3.0])


def test_refusal_reason_and_registration_errors(gain_type):
    refuse_nir_export("NirTestGain", "NIR has no gain; fold it into the Affine before")
    with pytest.raises(NIRConversionError, match=r"'gain' \(NirTestGain\) cannot be exported to NIR: NIR has no gain"):
        to_nir(_graph(gain_type))
    with pytest.raises(TalonUsageError, match="already registered"):
        register_nir_export("LIF", lambda node, ctx: None)
    with pytest.raises(TalonUsageError, match="'MaxPool2d' is registered as having no NIR equivalent"):
        register_nir_export("MaxPool2d", lambda node, ctx: None)
    with pytest.raises(TalonUsageError, match="already becomes 'LIF' by default"):
        register_nir_import("LIF", "NirTestGain", lambda nn, ctx: {}, default=True)
    with pytest.raises(TalonUsageError, match="must be a function"):
        register_nir_export("NirTestGain", "not a function", replace=True)


def test_unknown_nir_class_says_how_to_register_an_import():
    from nir.ir.graph import Identity

    shape = {"input": np.array([2])}
    ng = nir.NIRGraph(nodes={"input": nir.Input(input_type=shape), "x": Identity(input_type=shape),
                             "output": nir.Output(output_type={"output": np.array([2])})},
                      edges=[("input", "x"), ("x", "output")], type_check=False)
    with pytest.raises(NIRConversionError, match=r"'Identity' has no TALON equivalent.*register_nir_import"):
        from_nir(ng, dt=1.0)


def test_every_built_in_primitive_has_a_nir_export_or_a_reason():
    for type_name in ir.list_primitives():
        if type_name == "Graph" or not ir.get_node_class(type_name).__module__.startswith("talon.ir."):
            continue  # nested graphs export as nested NIRGraphs; other tests' primitives may still be registered
        support = nir_support(type_name)
        assert support["export"] or support["refused"], type_name
    assert {"LIF", "IF", "CubaLIF", "Affine", "Conv2d", "SepConv2d"} <= set(nir_export_types())


def test_a_primitive_module_may_register_its_nir_conversions():
    """ir/primitives/<family>.py may import the registry and the neuron helpers: neither imports a primitive
    module, directly or through the talon.ir modules they import, so no cycle."""
    import ast
    from pathlib import Path

    src = Path(ir.__file__).parent

    def imports(module: str) -> set[str]:
        found = set()
        for n in ast.walk(ast.parse((src / f"{module.split('.')[2]}.py").read_text())):
            if isinstance(n, ast.ImportFrom) and n.module:
                found.add(n.module)
                found.update(f"{n.module}.{a.name}" for a in n.names)
            elif isinstance(n, ast.Import):
                found.update(a.name for a in n.names)
        return {m for m in found if m.startswith("talon.ir")}

    seen, todo, reached = set(), ["talon.ir.nir_registry", "talon.ir.nir_neurons"], set()
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        found = imports(m)
        reached |= found
        todo.extend(x for x in found if len(x.split(".")) == 3 and (src / f"{x.split('.')[2]}.py").exists())
    assert "talon.ir.node" in reached and "talon.ir.nir_registry" in seen
    assert not [m for m in reached if m == "talon.ir" or m.startswith("talon.ir.primitives")], reached
