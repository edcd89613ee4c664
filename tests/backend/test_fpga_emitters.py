"""The fpga backend's emitter registry: a user primitive with its own emitter and kernel template goes
through generation, estimate and the g++ C simulation bit-exactly; a primitive without an emitter fails by
name; built-ins sit in the same registry."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from talon import ir
from talon.backend.fpga.cgen import c_array
from talon.backend.fpga.emitters import (
    Emitter, LayerEstimate, NodeCode, ProjectCode, emitter_for, emitter_types, register_emitter, unregister_emitter,
)  # fmt: skip
from talon.backend.fpga.hls import SUPPORTED
from talon.backend.cpu.fixed_registry import register_fixed_rule, unregister_fixed_rule
from talon.backend.cpu.fixed_rules import SynapticRule
from talon.bridge import modules as bridge_modules
from talon.errors import BackendError, TalonUsageError
from talon.ir import node as node_module
from talon.ir.node import array
from talon.sdk import cost as cost_module
from talon.sdk.cost import Counts, register_cost

from backend_graphs import affine, lif
from fpga_helpers import needs_gxx, top_source

TEMPLATE = Path(__file__).with_name("fpga_user_templates") / "test_gain.h"


class GainEmitter(Emitter):
    """What a user writes for FpgaTestGain: the kernel call, its constants, and the estimate of that loop."""

    def emit(self, code: NodeCode) -> None:
        code.kernel("test_gain", TEMPLATE.read_text(encoding="utf-8"))
        nd, (ob, of) = code.nd, code.out_format
        code.consts.append(c_array(f"w_{code.ident}", code.arr("weight")))
        code.body.append(f"    k_test_gain<{code.N}, {nd['acc_bits']}, {int(nd['acc_frac']) - of}, {ob}, {code.lanes}>"
                         f"({code.inputs[0]}, w_{code.ident}, {code.buf});")  # fmt: skip

    def estimate(self, e) -> LayerEstimate:
        lanes = max(1, math.ceil(e.N / e.R))
        return LayerEstimate(e.name, e.nd["type"], e.N, lanes, math.ceil(e.N / lanes) + 5, lanes, 0, lanes * 32 + 100)


class GainRuntime(nn.Module):
    def __init__(self, weight: np.ndarray) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.as_tensor(np.asarray(weight, np.float32)), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


@pytest.fixture
def gain_type(monkeypatch):
    """FpgaTestGain, y = weight * x element-wise: a user primitive with a runtime and a cost entry (whose
    weight field makes fixed-point mode plan it as synaptic), registered for this test only."""
    monkeypatch.setattr(node_module, "_REGISTRY", dict(node_module._REGISTRY))

    @ir.register_node
    @dataclasses.dataclass(eq=False, repr=False)
    class FpgaTestGain(ir.Node):
        weight: np.ndarray = array()

        def output_shape_for(self, shape):
            return tuple(shape)

    # the runtime and cost tables are held by reference elsewhere (fixed mode): add and remove in place
    bridge_modules.register_runtime("FpgaTestGain", lambda node, ctx: GainRuntime(node.weight), replace=True)
    register_cost("FpgaTestGain", lambda node, ins, outs: Counts(macs=int(np.prod(outs[0]))), weight_fields=("weight",), replace=True)
    register_fixed_rule("FpgaTestGain", SynapticRule(), replace=True)  # hardware mode: an elementwise weight, like Scale
    try:
        yield FpgaTestGain
    finally:
        unregister_emitter("FpgaTestGain")
        unregister_fixed_rule("FpgaTestGain")
        bridge_modules.RUNTIME_BUILDERS.pop("FpgaTestGain", None)
        cost_module._TABLE.pop("FpgaTestGain", None)


def _gain_graph(gain_cls) -> ir.Graph:
    rng = np.random.default_rng(7)
    nodes = {"x": ir.Input(shape=(4,)), "fc": affine(6, 4, rng, 0.8), "gain": gain_cls(weight=rng.uniform(-1.5, 1.5, 6).astype(np.float32)),
             "lif": lif(6), "y": ir.Output()}  # fmt: skip
    return ir.Graph(nodes, [("x", "fc"), ("fc", "gain"), ("gain", "lif"), ("lif", "y")]).validate()


@needs_gxx
def test_user_primitive_with_its_own_emitter_and_kernel_is_bit_exact(fpga, gain_type, tmp_path):
    register_emitter("FpgaTestGain", GainEmitter())
    g = _gain_graph(gain_type)
    x = torch.as_tensor(np.random.default_rng(3).uniform(-1, 1, (30, 2, 4)), dtype=torch.float32)
    rep = fpga.verify(g, x, work_dir=tmp_path, part="zynq7020")
    assert rep.ok, rep.summary()
    assert "spikes/lif" in rep.compared and "membranes/lif" in rep.compared
    top = top_source(tmp_path)
    assert "k_test_gain<6, " in top and '#include "kernels/test_gain.h"' in top
    assert TEMPLATE.read_text() in (tmp_path / "firmware" / "kernels" / "test_gain.h").read_text()
    layer = {x.name: x for x in fpga.estimate(g, reuse_factor=2).layers}["gain"]
    assert (layer.type, layer.work, layer.lanes, layer.cycles, layer.dsp) == ("FpgaTestGain", 6, 3, 7, 3)


def test_primitive_without_emitter_fails_by_name(fpga, gain_type, tmp_path):
    g = _gain_graph(gain_type)
    for call in (lambda: fpga.compile(g, tmp_path / "prj", n_steps=3), lambda: fpga.estimate(g, n_steps=3)):
        with pytest.raises(BackendError, match=r"no emitter for node 'gain' of type FpgaTestGain.*register_emitter\('FpgaTestGain'"):
            call()
    assert not (tmp_path / "prj").exists()
    with pytest.raises(BackendError, match="FpgaTestGain"):
        emitter_for("FpgaTestGain")


def test_builtins_are_registered_emitters_and_registration_is_checked(gain_type):
    assert set(SUPPORTED) <= set(emitter_types())
    assert {"Affine", "Conv2d", "LIF", "CubaLIF", "Skip", "ChannelSplit", "Delay", "Input", "Output"} <= set(SUPPORTED)
    assert emitter_for("ChannelSplit").multi_output and not emitter_for("Affine").multi_output
    with pytest.raises(TalonUsageError, match="already registered"):
        register_emitter("Affine", GainEmitter())
    with pytest.raises(TalonUsageError, match="emit"):
        register_emitter("FpgaTestGain", object())
    em = register_emitter("FpgaTestGain", GainEmitter())
    assert emitter_for("FpgaTestGain") is em
    assert register_emitter("FpgaTestGain", GainEmitter(), replace=True) is not em


def test_a_kernel_name_has_one_source():
    code = NodeCode(None, "n", "n_n", [], 1, ProjectCode())
    code.kernel("affine")
    code.kernel("affine")
    with pytest.raises(BackendError, match="'n'.*kernel 'affine'.*different source"):
        code.kernel("affine", "// another affine\n")
