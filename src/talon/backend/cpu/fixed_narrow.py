"""Which fixed-point activations may flow in float32 between synaptic layers (a speed choice only).

A fixed-point run computes in float64 (talon.backend.cpu.fixed). A synaptic layer whose products and
rounding run in float32 (talon.backend.cpu.exact_products) would convert its rounded output to float64,
and the nodes between it and the next synaptic layer (ReLU, max pooling, flattening: in a convolutional
front end, the largest tensors of the run) would then read and write twice the bytes. Its output may stay
float32 instead when both hold:

* every value it can produce is on its output grid, at most 24 significant bits (its format's `bits`)
  within float32's exponent range: float32 holds each one exactly, and converting it to float64 later
  gives the very value the float64 run would have had;
* everything that reads it, directly or through such nodes, is exact on float32 as on float64: ReLU
  (zero slope), max pooling and flattening only compare and move values, an identity only passes them
  on; and the path ends in synaptic layers run by ExactSynaptic (which convert their input to the
  dtype of their products). A graph output, a neuron, a requantisation or any other reader keeps the
  float64 output, as does every producer of a graph with recurrent loops.

So no value changes, only the bytes that carry it. For the same reason a zero-slope ReLU right after such
a layer runs in place when it is that layer's only reader: the layer's output is a fresh tensor each call
that nothing else reads (the simulator's observer has already seen it), so the ReLU need not allocate
another of the same size.

Two more hand-overs follow the same rule (the spiking MLP's whole chain: products, neuron, products):

* a fixed-point neuron run by the fused loop (talon.backend.cpu.fixed_lif_seq) is an exact reader too:
  it scales each float32 input by ``gain * 2^f`` in float64 in one op (the product is the step loop's
  exact float64 product, scaled by a power of two), and FixedNeuron widens float32 inputs to float64
  wherever it steps instead (`widen_inputs`);
* such a neuron's spikes (0, 1, or its graded factor, a float32 value) are float32 values: it emits
  them as float32 where every reader is an exact reader as above, it is not a graph output and its
  spikes are not recorded (`keep`: the run's recordings keep float64).
"""

from __future__ import annotations

from typing import Iterable

import torch.nn.functional as F
from torch import nn

from talon.backend.cpu import fixed_lif_seq
from talon.backend.cpu.exact_products import _FLOAT32_EXP, ExactSynaptic
from talon.backend.cpu.fixed import FixedNeuron
from talon.backend.cpu.fixed_format import FixedPointPlan, Format
from talon.bridge.modules import FunctionRuntime, Identity, _flatten
from talon.ir import Graph

#: float32's significand (24 bits, the sign apart): a format of at most this many bits (sign included)
#: holds integers below 2^23 in magnitude, all exact in float32.
FLOAT32_BITS = 24
#: Stateless runtimes that give the same values on float32 as on float64 inputs (they only compare,
#: select and move values).
_TRANSPARENT_FUNCTIONS = (F.relu, F.max_pool2d, _flatten)


def fits_float32(fmt: Format) -> bool:
    """True when every value of `fmt` (an integer of fmt.bits signed bits times 2^-frac) is a float32."""
    return fmt.bits <= FLOAT32_BITS and abs(fmt.frac) <= _FLOAT32_EXP


def _transparent(module: nn.Module) -> bool:
    if type(module) is Identity:
        return True
    return type(module) is FunctionRuntime and module.fn in _TRANSPARENT_FUNCTIONS


def _fused_neuron(module: nn.Module) -> bool:
    """A fixed-point neuron whose chunks run the fused loop (it reads float32 inputs exactly)."""
    return isinstance(module, FixedNeuron) and module._fused is not None


def runtimes_by_name(executor: nn.Module, graph: Graph) -> dict[str, nn.Module]:
    """{node name: the runtime `executor` built for it} for every node of `graph` but its Inputs."""
    return {n: executor.runtime_of(n) for n, node in graph.nodes.items() if node.type_name != "Input"}


def narrow_float32(executor: nn.Module, plan: FixedPointPlan, keep: Iterable[str] = ()) -> list[str]:
    """Let the synaptic layers and fused neurons of `executor` (built on plan.graph with fixed_node_map)
    whose outputs qualify (module docstring) emit float32; returns their names. `keep`: nodes whose
    outputs must stay float64 (recorded by the run)."""
    graph = plan.graph
    if graph.cycles():
        return []
    by_name = runtimes_by_name(executor, graph)
    consumers: dict[str, list[str]] = {n: [] for n in graph.nodes}
    fan_in: dict[str, int] = {n: 0 for n in graph.nodes}
    for src, dst in graph.edges:
        consumers[src].append(dst)
        fan_in[dst] += 1
    outputs = set(graph.output_names) | set(keep)

    def exact_readers(name: str, neurons: list[FixedNeuron]) -> bool:
        if not consumers[name] or name in outputs:
            return False
        for d in consumers[name]:
            mod = by_name.get(d)
            if fan_in[d] != 1 or d in outputs:
                return False
            if isinstance(mod, ExactSynaptic):
                continue
            if _fused_neuron(mod):
                neurons.append(mod)
                continue
            if not (_transparent(mod) and plan.nodes[d].kind == "pass" and exact_readers(d, neurons)):
                return False
        return True

    chosen = []
    for name, mod in by_name.items():
        neurons: list[FixedNeuron] = []
        if isinstance(mod, ExactSynaptic) and fits_float32(plan.nodes[name].out_format) and exact_readers(name, neurons):
            mod.emit32 = True
        elif _fused_neuron(mod) and fixed_lif_seq.spikes_fit_float32(mod.inner) and exact_readers(name, neurons):
            mod.emit32 = True
        else:
            continue
        for n in neurons:
            n.widen_inputs = True
        chosen.append(name)
        relu = by_name[consumers[name][0]] if len(consumers[name]) == 1 else None
        if isinstance(mod, ExactSynaptic) and type(relu) is FunctionRuntime and relu.fn is F.relu and not relu.kwargs:
            relu.kwargs = {"inplace": True}
    return chosen


def float32_inputs(executor: nn.Module, plan: FixedPointPlan, spikes: Iterable[str]) -> list[str]:
    """The graph inputs among `spikes` (known to hold only 0 and 1, in a format that holds 1) that every
    reader takes exactly in float32 (ExactSynaptic layers, which convert their input to their products'
    dtype); the run may pass them in float32 (fixed.spike_input32) instead of converting them to float64."""
    graph = plan.graph
    by_name = runtimes_by_name(executor, graph)
    readers: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for src, dst in graph.edges:
        readers[src].append(dst)
    outputs = set(graph.output_names)
    return [n for n in spikes if readers[n] and n not in outputs and all(isinstance(by_name.get(d), ExactSynaptic) for d in readers[n])]
