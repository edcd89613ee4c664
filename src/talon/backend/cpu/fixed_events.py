"""Which fixed-point synaptic layers are fed spikes by construction (a speed choice only).

An event-driven product (talon.backend.cpu.exact_products.sparse_linear) sums the weight rows its
input's non-zeros select, weighted by their values unless every one of them is 1. Where the input is
spikes by construction, checking that costs a pass over every event for nothing, and the sum can take
8-bit weight rows (`ByteRows`). A synaptic layer's input is spikes by construction when its one input
edge comes straight from

* a LIF or IF neuron run by the built-in fixed-point rule without a graded-spike factor: its output is
  the runtime's ``v > threshold`` comparison, 0.0 or 1.0 in either loop (fused or stepped);
* a graph input whose values the run knows to be 0 or 1 (a rate encoder's spikes, a sequence checked
  binary) and whose format holds 1, so that its rounding leaves them 0 or 1 (talon.backend.cpu.fixed's
  round_input).

Anything else (a graded factor, another neuron type or rule, a node in between) keeps the check. No
value changes either way: the marked layers' bits are those of the checked path
(tests/backend/test_fixed_events.py).
"""

from __future__ import annotations

from typing import Iterable

from torch import nn

from talon.backend.cpu.exact_products import ExactSynaptic
from talon.backend.cpu.fixed import FixedNeuron, spikes_survive_rounding
from talon.backend.cpu.fixed_format import FixedPointPlan
from talon.backend.cpu.fixed_narrow import runtimes_by_name
from talon.backend.cpu.fixed_rules import NeuronRule
from talon.bridge.modules import IFRuntime, LIFRuntime


def zero_one_neuron(module: nn.Module) -> bool:
    """True when `module` (a fixed-point node's runtime) outputs only 0.0 and 1.0 (module docstring)."""
    if not isinstance(module, FixedNeuron) or type(module.inner) not in (LIFRuntime, IFRuntime):
        return False
    return module.inner.graded_spikes_factor is None and type(module.rule).step is NeuronRule.step and module.plan.current is None


def mark_spike_inputs(executor: nn.Module, plan: FixedPointPlan, binary_inputs: Iterable[str]) -> list[str]:
    """Mark the ExactSynaptic layers of `executor` (built on plan.graph with fixed_node_map) whose input
    is spikes by construction; `binary_inputs`: the graph inputs known to hold only 0 and 1. Returns
    the marked layers' names."""
    graph = plan.graph
    by_name = runtimes_by_name(executor, graph)
    sources: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for src, dst in graph.edges:
        sources[dst].append(src)
    delayed = {graph.edges[i][1] for i in graph.delayed_edges()}
    spiking_inputs = {n for n in binary_inputs if spikes_survive_rounding(plan.format_of(n))}
    marked = []
    for name, mod in by_name.items():
        if not isinstance(mod, ExactSynaptic) or len(sources[name]) != 1 or name in delayed:
            continue
        src = sources[name][0]
        if src in spiking_inputs or zero_one_neuron(by_name.get(src)):
            mod.spikes_in = True
            marked.append(name)
    return marked
