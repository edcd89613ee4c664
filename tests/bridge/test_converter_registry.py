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
