"""Traits come from the node class (issue 16): what a primitive is (a neuron, how many state variables,
a synaptic current, grid-preserving) is read from its class, never from a list of type names."""

from __future__ import annotations

import numpy as np
import pytest

from talon import ir
from talon.errors import PrimitiveError
from talon.ir import node as node_module
from talon.ir.node import ANY_FLOAT, array, primitive
from talon.ir.primitives.neurons import NeuronCoefficients, coefficients, in_time_unit
from talon.sdk.cost import cost_entry, cost_table, node_cost


def test_builtin_neuron_traits():
    builtin = {t: ir.get_node_class(t) for t in ir.list_primitives() if ir.get_node_class(t).__module__.startswith("talon.")}
    neurons = {t: c for t, c in builtin.items() if c.state_fields}
    assert set(neurons) == {"LIF", "IF", "CubaLIF", "LI", "Integrator", "Alpha", "ALIF"}
    assert ir.CubaLIF.state_fields == ("i", "v") and ir.CubaLIF.has_current
    # Alpha's inputs drive its excitatory trace first (snnTorch's syn_exc, syn_inh, mem)
    assert ir.Alpha.state_fields == ("syn_exc", "syn_inh", "mem") and ir.Alpha.has_current
    assert ir.get_node_class("ALIF").state_fields == ("u", "th", "r", "v") and ir.get_node_class("ALIF").has_current
    assert all(c.state_fields == ("v",) and not c.has_current for t, c in neurons.items() if t not in ("CubaLIF", "Alpha", "ALIF"))
    assert {t for t, c in neurons.items() if c.spiking} == {"LIF", "IF", "CubaLIF", "Alpha", "ALIF"}
    assert all(c.stateful and c.neurons_per_element == 1 and c.ops_per_step > 0 for c in neurons.values())
    # a Delay carries state but no neuron; a Threshold is a neuron without state
    assert ir.Delay.stateful and not ir.Delay.state_fields and ir.Threshold.neurons_per_element == 1
    grid = {t for t, c in builtin.items() if c.grid_preserving}
    assert grid == {"Output", "Flatten", "Dropout", "HybridRegion", "ChannelSplit", "Delay", "MaxPool2d", "Upsample"}


@pytest.fixture
def TwoState():
    @primitive(name="TraitsTwoState")
    class TwoState(ir.Node):
        """A user neuron declared by its traits alone: two state variables, two neurons per element."""

        tau: np.ndarray = array(ANY_FLOAT)
        stateful = True
        spiking = True
        max_inputs = None
        state_fields = ("a", "v")
        neurons_per_element = 2
        ops_per_step = 7

    yield TwoState
    node_module._REGISTRY.pop("TraitsTwoState", None)  # no other test sees it among the primitives


def test_a_user_neuron_is_costed_from_its_traits(TwoState):
    entry = cost_entry("TraitsTwoState")
    assert entry is not None and "TraitsTwoState" in cost_table()
    assert entry.formula == "neurons = 2*n; state = 2*n; flops = 7*n + (k-1)*n"
    c = node_cost(TwoState(tau=np.full(5, 3.0)), [(5,), (5,)], [(5,)])
    assert (c.neurons, c.state_elements, c.flops, c.modelled) == (10, 10, 7 * 5 + 5, True)
    assert cost_entry("Delay").formula.startswith("state")  # a registered entry wins over traits


def test_neuron_coefficients_come_from_the_class(TwoState):
    lif = ir.LIF(tau=np.array([2.0, 4.0]), r=np.array([2.0, 4.0]), v_leak=np.zeros(2), v_threshold=np.ones(2))
    c = coefficients(lif, 1.0)
    assert isinstance(c, NeuronCoefficients) and np.array_equal(c.beta, [0.5, 0.75]) and np.array_equal(c.gain, [1.0, 1.0])
    assert np.array_equal(coefficients(in_time_unit(lif, 0.5), 0.5).beta, c.beta)
    with pytest.raises(PrimitiveError, match="TraitsTwoState has no neuron coefficients"):
        coefficients(TwoState(tau=np.ones(1)), 1.0)
    # a neuron that cannot move to another time unit is refused, not left on the wrong time scale
    with pytest.raises(PrimitiveError, match="TraitsTwoState defines no in_time_unit"):
        in_time_unit(TwoState(tau=np.ones(1)), 2.0)
    d = ir.Delay(delay=np.array([2]))
    assert in_time_unit(d, 2.0) is d


def test_sums_inputs_trait():
    """Which nodes add their several inputs themselves (NIR import inserts a sum before any other)."""
    from talon.ir.node import node_sums_inputs

    tau = np.full(2, 4.0, np.float32)
    lif = ir.LIF(tau=tau, r=tau, v_leak=np.zeros(2, np.float32), v_threshold=np.ones(2, np.float32))
    assert node_sums_inputs(lif) and node_sums_inputs(ir.Skip(skip_type="residual"))
    assert not node_sums_inputs(ir.Skip(skip_type="passthrough")) and not node_sums_inputs(ir.Skip(skip_type="concatenate"))
    assert not node_sums_inputs(ir.Concat()) and not node_sums_inputs(ir.Graph())
    assert not node_sums_inputs(ir.ReLU())  # one input


def test_a_subclass_of_a_builtin_primitive_round_trips(registries, tmp_path):
    """`class MyLIF(CubaLIF)` registered under its own name reads back as itself, fields and all."""
    import dataclasses

    @ir.register_node
    @dataclasses.dataclass(eq=False, repr=False)
    class MyCuba(ir.CubaLIF):
        """A user's current-based neuron: CubaLIF's fields and traits under another type name."""

    tau = np.full(3, 4.0, np.float32)
    node = MyCuba(tau_syn=tau, tau_mem=tau * 2, r=tau * 2, w_in=tau, v_leak=np.zeros(3, np.float32),
                  v_threshold=np.ones(3, np.float32), reset_mode="subtract")
    g = ir.Graph({"x": ir.Input(shape=(3,)), "n": node, "y": ir.Output()}, [("x", "n"), ("n", "y")]).validate()
    ir.write(tmp_path / "sub.t1c", g)
    back = ir.read(tmp_path / "sub.t1c")
    assert type(back.nodes["n"]) is MyCuba and back.nodes["n"] == node and MyCuba.state_fields == ("i", "v")
    ir.unregister_node("MyCuba")
    assert ir.get_node_class("MyCuba") is None
