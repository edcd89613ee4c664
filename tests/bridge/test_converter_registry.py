"""register_converter: the one registry of module converters, through which torch.nn layers, snnTorch neurons and
a user's module types register; custom_map entries still take precedence, types match exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

snn = pytest.importorskip("snntorch")

from talon import ir  # noqa: E402
import talon.bridge.snntorch  # noqa: E402,F401  (to_ir imports it: the snnTorch neurons register there)
from talon.bridge import converters  # noqa: E402
from talon.bridge.converters import converter_for, register_converter, unregister_converter  # noqa: E402
from talon.bridge.export import convert_module, to_ir  # noqa: E402
from talon.errors import TalonUsageError, UnsupportedModuleError  # noqa: E402


class Gain(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.g = nn.Parameter(torch.linspace(0.5, 2.0, n))

    def forward(self, x):
        return x * self.g


class SubGain(Gain):
    pass


def gain_to_scale(module, ctx):
    return ir.Scale(scale=module.g.detach().numpy().copy())


@pytest.fixture(autouse=True)
def registry(monkeypatch):
    """A copy of the registry for each test (registrations do not leak)."""
    monkeypatch.setattr(converters, "MODULE_CONVERTERS", dict(converters.MODULE_CONVERTERS))


def test_built_ins_and_snntorch_neurons_are_in_the_registry():
    assert converter_for(nn.Linear(2, 3)) is not None and converter_for(nn.ReLU()) is not None
    assert converter_for(snn.Leaky(beta=0.9)) is not None
    assert converter_for(Gain(3)) is None


def test_a_registered_converter_exports_a_user_module_without_custom_map():
    model = nn.Sequential(nn.Linear(4, 3), Gain(3), snn.Leaky(beta=0.9, init_hidden=True))
    x = torch.rand(1, 4)
    with pytest.raises(UnsupportedModuleError, match="custom_map"):  # traced through: its parameter has no IR node
        to_ir(model, x)
    register_converter(Gain, gain_to_scale)
    graph = to_ir(model, x)
    assert type(graph.nodes["1"]).__name__ == "Scale"
    assert np.array_equal(graph.nodes["1"].scale, model[1].g.detach().numpy())
    assert convert_module(model[1], None) is not None  # convert_module uses the same registry
    # a custom_map entry still wins over the registry
    graph = to_ir(model, x, custom_map={Gain: lambda m, ctx: ir.Skip(skip_type="passthrough")})
    assert type(graph.nodes["1"]).__name__ == "Skip"


def test_subclasses_are_not_matched_and_replacing_needs_replace():
    register_converter(Gain, gain_to_scale)
    with pytest.raises(UnsupportedModuleError, match="custom_map"):  # SubGain is not a Gain to the registry
        to_ir(nn.Sequential(SubGain(3)), torch.rand(1, 3))
    with pytest.raises(UnsupportedModuleError, match=r"'0' \(torch.nn.modules.activation.Hardswish\).*register_converter\(Hardswish, fn\)"):
        to_ir(nn.Sequential(nn.Hardswish()), torch.rand(1, 3))
    with pytest.raises(TalonUsageError, match="already registered"):
        register_converter(nn.Linear, gain_to_scale)
    with pytest.raises(TalonUsageError, match="nn.Module subclass"):
        register_converter(int, gain_to_scale)
    with pytest.raises(TalonUsageError, match="callable"):
        register_converter(SubGain, "not callable")

    @register_converter(SubGain)
    def sub(module, ctx):
        return gain_to_scale(module, ctx)

    assert type(to_ir(nn.Sequential(SubGain(3)), torch.rand(1, 3)).nodes["0"]).__name__ == "Scale"
    register_converter(Gain, lambda m, ctx: ir.Skip(skip_type="passthrough"), replace=True)
    assert type(to_ir(nn.Sequential(Gain(3)), torch.rand(1, 3)).nodes["0"]).__name__ == "Skip"
    unregister_converter(Gain)
    assert converter_for(Gain(3)) is None


def _fake_library(monkeypatch, name: str):
    """A library `name` whose class Mod lives in `name`._impl and is re-exported as `name`.Mod (as snn.Alpha is)."""
    import sys
    import types

    pkg, impl = types.ModuleType(name), types.ModuleType(f"{name}._impl")
    mod = type("Mod", (Gain,), {"__module__": impl.__name__})
    impl.Mod = pkg.Mod = mod
    pkg._impl = impl
    return pkg, impl, mod, lambda: (monkeypatch.setitem(sys.modules, name, pkg), monkeypatch.setitem(sys.modules, impl.__name__, impl))


def test_a_converter_registered_by_name_binds_once_its_library_is_imported(monkeypatch):
    monkeypatch.setattr(converters, "_PENDING", {})
    monkeypatch.setattr(converters, "_PRODUCES", dict(converters._PRODUCES))
    monkeypatch.setattr(converters, "_OUTPUT_NAMES", dict(converters._OUTPUT_NAMES))
    pkg, impl, mod, load = _fake_library(monkeypatch, "talon_fake_lib_a")
    register_converter("talon_fake_lib_a.Mod", gain_to_scale, produces=("Scale",), outputs=("out",))
    assert mod not in converters.MODULE_CONVERTERS  # the library is not imported: nothing is imported for it
    load()
    assert converter_for(mod(3)) is gain_to_scale
    assert converters.declared_products(mod) == ("Scale",) and converters.output_names(mod) == ("out",)
    # its home name names the same class: registering it again is the same registration
    register_converter("talon_fake_lib_a._impl.Mod", gain_to_scale, produces=("Scale",))
    with pytest.raises(TalonUsageError, match="already registered"):
        register_converter("talon_fake_lib_a._impl.Mod", lambda m, c: None)
    unregister_converter("talon_fake_lib_a.Mod")
    assert converter_for(mod(3)) is None


def test_a_name_that_resolves_to_no_module_class_is_refused(monkeypatch):
    monkeypatch.setattr(converters, "_PENDING", {})
    pkg, impl, mod, load = _fake_library(monkeypatch, "talon_fake_lib_b")
    load()
    for name in ("talon_fake_lib_b.Missing", "talon_fake_lib_b._impl"):
        with pytest.raises(TalonUsageError, match="exactly one nn.Module subclass"):
            register_converter(name, gain_to_scale)
    with pytest.raises(TalonUsageError, match="dotted class name"):
        register_converter("Mod", gain_to_scale)


def test_snntorch_alpha_is_registered_by_name_from_its_own_module():
    from talon.bridge.primitives import alpha

    assert converter_for(snn.Alpha(alpha=0.9, beta=0.8)) is alpha.convert_alpha
    assert converters.declared_products(snn.Alpha) == ("Alpha",)
    assert talon.bridge.snntorch.state_index(snn.Alpha(alpha=0.9, beta=0.8), "mem") == 3
