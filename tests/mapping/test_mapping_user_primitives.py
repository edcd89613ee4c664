"""Mapping never skips a primitive silently: a user's neuron-like primitive without a cost rule (or whose rule
counts no neurons) is refused by name; registered, its neurons are placed. docs/mapping.md's code blocks run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import talon.ir as ir
import talon.mapping as tm
from doc_blocks import run_blocks
from talon.errors import MappingError
from talon.ir import node as node_module
from talon.ir.node import array
from talon.sdk import cost as cost_module
from talon.sdk.cost import Counts, register_cost


@pytest.fixture
def registries(monkeypatch):
    monkeypatch.setattr(node_module, "_REGISTRY", dict(node_module._REGISTRY))
    monkeypatch.setattr(cost_module, "_TABLE", dict(cost_module._TABLE))


def _neuron_type(stateful=True, spiking=True, neurons=0):
    @ir.register_node
    @dataclasses.dataclass(eq=False, repr=False)
    class MapTestNeuron(ir.Node):
        v_threshold: np.ndarray = array()

        def output_shape_for(self, shape):
            return tuple(shape)

    MapTestNeuron.stateful, MapTestNeuron.spiking, MapTestNeuron.neurons_per_element = stateful, spiking, neurons
    return MapTestNeuron


def _graph(cls, readout=False):
    rng = np.random.default_rng(1)
    nodes = {"x": ir.Input(shape=(8,)), "fc": ir.Affine(weight=rng.standard_normal((6, 8)).astype(np.float32), bias=np.zeros(6, np.float32)),
             "n": cls(v_threshold=np.ones(6, np.float32))}
    edges = [("x", "fc"), ("fc", "n")]
    if readout:  # a LIF after the user neuron: the user primitive sits between neuron layers
        tau = np.full(6, 5.0)
        nodes["fc2"] = ir.Affine(weight=rng.standard_normal((6, 6)).astype(np.float32), bias=np.zeros(6, np.float32))
        nodes["lif"] = ir.LIF(tau=tau, r=tau, v_leak=np.zeros(6), v_threshold=np.ones(6))
        edges += [("n", "fc2"), ("fc2", "lif")]
    nodes["y"] = ir.Output()
    edges.append((list(nodes)[-2], "y"))
    return ir.Graph(nodes, edges)


@pytest.mark.parametrize("stateful, spiking, neurons", [(True, True, 0), (True, False, 0), (False, True, 0), (False, False, 1)])
def test_neuron_like_primitive_without_cost_rule_is_refused_by_name(registries, stateful, spiking, neurons):
    g = _graph(_neuron_type(stateful, spiking, neurons))
    for call in (lambda: tm.map_graph(g, tm.HardwareSpec(), algorithm="greedy"), lambda: tm.map_graph(g, tm.HardwareSpec()),
                 lambda: tm.from_graph(g)):
        with pytest.raises(MappingError, match=r"node 'n' \(MapTestNeuron\) is a .*no cost rule.*register_cost\('MapTestNeuron'"):
            call()


def test_stateful_spiking_primitive_counted_no_neurons_is_refused(registries):
    cls = _neuron_type()
    register_cost("MapTestNeuron", lambda node, ins, outs: Counts(state_elements=6))
    with pytest.raises(MappingError, match=r"'n' \(MapTestNeuron\) is a stateful and spiking primitive, but its cost rule counts no neurons"):
        tm.map_graph(_graph(cls), tm.HardwareSpec(), algorithm="greedy")


def test_registered_user_neuron_is_placed(registries):
    cls = _neuron_type()
    register_cost("MapTestNeuron", lambda node, ins, outs: Counts(neurons=int(np.prod(outs[0]))))
    result = tm.map_graph(_graph(cls), tm.HardwareSpec(), algorithm="greedy")
    assert result.layers == ["x", "n"] and sum(int(np.sum(a["stop"] - a["start"])) for a in result.assignments.values()) == 14


def test_user_primitive_between_neuron_layers_needs_a_connectivity_rule(registries):
    cls = _neuron_type(stateful=False, spiking=False)  # a plain elementwise primitive, with a cost rule
    register_cost("MapTestNeuron", lambda node, ins, outs: Counts())
    with pytest.raises(MappingError, match=r"node 'n': no connectivity rule for primitive 'MapTestNeuron'.*register_connectivity"):
        tm.map_graph(_graph(cls, readout=True), tm.HardwareSpec(), algorithm="greedy")


def test_mapping_doc_code_blocks_run(registries, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(2)
    tau = np.full(32, 5.0)
    model = ir.Graph({"x": ir.Input(shape=(16,)), "fc1": ir.Affine(weight=rng.standard_normal((32, 16)).astype(np.float32), bias=np.zeros(32, np.float32)),
                      "lif1": ir.LIF(tau=tau, r=tau, v_leak=np.zeros(32), v_threshold=np.ones(32)), "y": ir.Output()},
                     [("x", "fc1"), ("fc1", "lif1"), ("lif1", "y")])
    ir.write("model.t1c", model)  # the page's first block reads the reader's model
    count, ns = run_blocks("mapping.md")
    assert count >= 1 and ns["result"].layers == ["x", "n"]
