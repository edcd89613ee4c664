"""The fixed-point rule registry (issue 16): a user primitive gets hardware mode through the same
`register_fixed_rule` call the built-ins use; a type without a rule is refused by name; the plan's
modules stay numpy-only."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from talon import ir
from talon.backend.cpu import fixed as fx
from talon.backend.cpu.fixed_registry import FixedRule, fixed_rule_for, fixed_rule_types, register_fixed_rule, unregister_fixed_rule
from talon.backend.cpu.fixed_rules import NeuronRule, SynapticRule
from talon.bridge import modules as bridge_modules
from talon.errors import BackendError, TalonUsageError
from talon.ir import node as node_module
from talon.ir.node import array, primitive
from talon.sdk import cost as cost_module
from talon.sdk.cost import Counts, cost_entry, register_cost

from backend_graphs import affine, build_cuba_mlp, lif

SRC = Path(__file__).resolve().parents[2] / "src" / "talon" / "backend" / "cpu"


class GainRuntime(nn.Module):
    def __init__(self, factor: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("factor", torch.as_tensor(factor))

    def forward(self, x):
        return x * self.factor.to(x.dtype)


def _declare_user_types():
    """Declared per test and removed after it, so that no other test sees them among the primitives."""

    @primitive(name="FixedRulesUserCuba")
    class UserCuba(ir.CubaLIF):
        """A user's current-based neuron: CubaLIF's fields and traits under another type name."""

    @primitive(name="FixedRulesGain")
    class Gain(ir.Node):
        """y = x * factor, elementwise (a user primitive like Scale)."""

        factor: np.ndarray = array()

    return UserCuba, Gain


@pytest.fixture
def user_types():
    types = _declare_user_types()
    bridge_modules.register_runtime("FixedRulesUserCuba", bridge_modules.RUNTIME_BUILDERS["CubaLIF"], replace=True)
    bridge_modules.register_runtime("FixedRulesGain", lambda node, ctx: GainRuntime(node.factor), replace=True)
    register_cost("FixedRulesGain", lambda node, ins, outs: Counts(flops=int(np.prod(outs[0]))), replace=True)
    try:
        yield types
    finally:
        for t in ("FixedRulesUserCuba", "FixedRulesGain"):
            bridge_modules.RUNTIME_BUILDERS.pop(t, None)
            unregister_fixed_rule(t)
            node_module._REGISTRY.pop(t, None)
        cost_module._TABLE.pop("FixedRulesGain", None)


def _as_user_cuba(g: ir.Graph, UserCuba) -> ir.Graph:
    nodes = {n: UserCuba(**node.field_values()) if node.type_name == "CubaLIF" else node for n, node in g.nodes.items()}
    return ir.Graph(nodes, list(g.edges), dt=g.dt)


def _same_run(a, b) -> None:
    assert a.spike_counts == b.spike_counts
    for n in a.outputs:
        assert torch.equal(a.outputs[n], b.outputs[n]), n
    for n in a.membranes:
        assert torch.equal(a.membranes[n], b.membranes[n]), n


def test_a_user_neuron_gets_fixed_mode_by_registration(cpu, user_types):
    g = build_cuba_mlp()
    x = torch.rand((30, 2, 4), generator=torch.Generator().manual_seed(0)) * 2
    user = _as_user_cuba(g, user_types[0])
    # float mode needs no rule; the cost comes from the class's traits (a synaptic current and a membrane)
    assert cost_entry("FixedRulesUserCuba").formula == cost_entry("CubaLIF").formula
    with pytest.raises(BackendError, match=r"no fixed-point rule for node 'c1_\w+' of type FixedRulesUserCuba.*register_fixed_rule\('FixedRulesUserCuba'"):
        cpu.simulate(user, x, mode="fixed")
    register_fixed_rule("FixedRulesUserCuba", NeuronRule("tau_mem", synaptic_tau="tau_syn", synaptic_gain="w_in"))
    # bit for bit the built-in CubaLIF's, current calibration and rounding included (both read the traits)
    _same_run(cpu.simulate(user, x, mode="fixed", record=True), cpu.simulate(g, x, mode="fixed", record=True))


def test_a_user_synaptic_primitive_gets_fixed_mode_by_registration(cpu, user_types):
    rng = np.random.default_rng(1)
    factor = rng.uniform(-1.5, 1.5, 6).astype(np.float32)

    def graph(node: ir.Node) -> ir.Graph:
        nodes = {"x": ir.Input(shape=(4,)), "fc": affine(6, 4, np.random.default_rng(7), 0.8), "g": node, "lif": lif(6), "y": ir.Output()}
        return ir.Graph(nodes, [("x", "fc"), ("fc", "g"), ("g", "lif"), ("lif", "y")])

    x = torch.rand((20, 2, 4), generator=torch.Generator().manual_seed(2)) * 2
    user = graph(user_types[1](factor=factor))
    with pytest.raises(BackendError, match=r"node 'g' of type FixedRulesGain.*register_fixed_rule"):
        fx.check_supported(user)
    # the factor quantised like a synaptic weight, exactly as the built-in Scale's rule does it
    register_fixed_rule("FixedRulesGain", SynapticRule(weight_fields=("factor",)))
    _same_run(cpu.simulate(user, x, mode="fixed", record=True), cpu.simulate(graph(ir.Scale(scale=factor)), x, mode="fixed", record=True))


def test_registration_is_checked():
    import sys

    # the planner loads the built-in rules and the FPGA emitter modules, where a family's rule may sit beside its emitter
    assert {"talon.backend.cpu.fixed_rules", "talon.backend.fpga.emitters"} <= set(sys.modules)
    assert {"LIF", "IF", "CubaLIF", "LI", "Integrator", "Affine", "Scale", "Delay", "Sigmoid"} <= set(fixed_rule_types())
    assert fixed_rule_for("LIF").carries_loops and not fixed_rule_for("Delay").carries_loops
    with pytest.raises(TalonUsageError, match="already registered"):
        register_fixed_rule("LIF", NeuronRule())
    with pytest.raises(TalonUsageError, match="FixedRule instance"):
        register_fixed_rule("FixedRulesGain", lambda *a: None)  # type: ignore[arg-type]
    with pytest.raises(BackendError, match=r"no fixed-point rule for type NoSuchType \(not a registered primitive\)"):
        fixed_rule_for("NoSuchType")
    with pytest.raises(NotImplementedError, match="plan"):
        FixedRule().plan("n", ir.Output(), [], fx.Format(8, 0), None)  # type: ignore[arg-type]


def test_every_builtin_primitive_with_a_runtime_has_a_fixed_rule():
    """Hardware mode covers (or refuses with its reason) every built-in primitive the runtime runs (the
    existing SDK's detection blocks are stored only: they neither shape nor run; nested graphs are flattened)."""
    builtin = [t for t in bridge_modules.RUNTIME_BUILDERS if t != "Graph" and (cls := ir.get_node_class(t)) is not None
               and cls.__module__.startswith("talon.ir.primitives.") and not cls.__module__.endswith(".legacy")]  # fmt: skip
    assert len(builtin) > 30
    missing = [t for t in builtin if t not in fixed_rule_types()]
    assert missing == []


@pytest.mark.parametrize("module", ["fixed_format", "fixed_registry", "fixed_rules", "fixed_plan"])
def test_the_plan_modules_do_not_import_torch(module):
    tree = ast.parse((SRC / f"{module}.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in imported if m.split(".")[0] in ("torch", "snntorch")} and "talon.bridge" not in {m[:12] for m in imported}
