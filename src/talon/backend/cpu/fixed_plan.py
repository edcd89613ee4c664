"""The fixed-point plan: turns a float graph and its calibration into integers and formats, node by node
through each type's registered rule (talon.backend.cpu.fixed_registry). numpy only.

The plan builds a *fixed-point graph*, an ordinary talon.ir Graph whose every constant (weights, biases,
thresholds, leak and gain factors) lies exactly on its power-of-two grid. The bridge runtime runs that
graph in float64, where every product and sum of such values is exact (the rules check the bit budget,
< 53 bits), so it computes exactly the integer arithmetic of docs/fixed_point.md scaled by powers of two;
talon.backend.cpu.fixed adds the rounding and saturation around it.

Recurrent graphs need nothing here beyond formats: the bridge's CyclicGraphExecutor already feeds each
delayed edge the source's previous output, which lies on the source's grid. Only a node whose rule fixes
its formats before planning (a neuron: its output format does not depend on its inputs) may carry a loop,
so every format in the loop is known before the loop is planned.

Rules are registered by importing the modules that register them: the built-in rules
(talon.backend.cpu.fixed_rules) and the FPGA emitter modules (talon.backend.fpga.emitters), so that a
primitive's fixed-point rule can live beside the emitter whose kernel must agree with it bit for bit.
"""

from __future__ import annotations

import talon.backend.cpu.fixed_rules  # noqa: F401  (the built-in primitives register their rules)
import talon.backend.fpga.emitters  # noqa: F401  (a primitive family's fixed rules may sit beside its FPGA emitters)
from talon.backend.cpu.fixed_format import Calibration, FixedPointConfig, FixedPointPlan, Format, NodePlan
from talon.backend.cpu.fixed_registry import NeuronFormats, PlanContext, fixed_rule_for, fixed_rule_types
from talon.errors import BackendError
from talon.ir import Graph, Node
from talon.sdk.cost import graph_costs
from talon.sdk.fixed_point import frac_for_range


def check_supported(graph: Graph) -> None:
    """Refuse, by name and before anything runs, every node fixed mode cannot realise: a nested graph,
    a type without a fixed-point rule, what its rule refuses, and a loop no neuron carries."""
    dt = float(graph.dt)
    for name, node in graph.nodes.items():
        if isinstance(node, Graph):
            raise BackendError(f"fixed-point mode: node {name!r} is a nested graph; flatten it first")
        fixed_rule_for(node.type_name, name).check(name, node, dt)
    for i in graph.delayed_edges():
        src, dst = graph.edges[i]
        t = graph.nodes[src].type_name
        if not fixed_rule_for(t, src).carries_loops:
            # A Delay (the only other stateful node) keeps its input's format, which inside a loop would
            # depend on its own output: no format could be fixed before the loop runs.
            carriers = [k for k in fixed_rule_types() if fixed_rule_for(k).carries_loops]
            raise BackendError(
                f"fixed-point mode: the recurrent loop {src!r} -> {dst!r} is carried by {src!r} ({t}); in fixed point only a "
                f"neuron ({', '.join(carriers)}) may carry a loop: put the neuron at the point where the loop closes, "
                f"or simulate it with mode='float'"
            )


def plan_fixed_point(graph: Graph, calibration: Calibration, config: FixedPointConfig | None = None, *, costs: dict | None = None) -> FixedPointPlan:
    """Assign formats and quantise every constant of `graph` (docs/fixed_point.md, "Plan"). `costs`:
    graph_costs(graph), when the caller has it already."""
    config = config or FixedPointConfig()
    check_supported(graph)
    order = graph.topological_order()
    c = config.coefficient_frac_bits
    consumers: dict[str, list[str]] = {n: [] for n in graph.nodes}
    in_edges: dict[str, list[int]] = {n: [] for n in graph.nodes}
    for i, (s, d) in enumerate(graph.edges):
        consumers[s].append(d)
        in_edges[d].append(i)
    delayed = set(graph.delayed_edges())
    rules = {name: fixed_rule_for(node.type_name, name) for name, node in graph.nodes.items()}

    # 1. neuron state and output formats (they depend only on parameters and calibration, so the formats
    #    of every value carried around a recurrent loop are known before it is planned)
    neurons: dict[str, NeuronFormats] = {}
    for name, node in graph.nodes.items():
        fmts = rules[name].formats(name, node, config, calibration)
        if fmts is not None:
            neurons[name] = fmts
    ctx = PlanContext(graph, config, calibration, float(graph.dt), Format(c + 2, c), costs if costs is not None else graph_costs(graph), consumers, neurons)

    plans: dict[str, NodePlan] = {}
    new_nodes: dict[str, Node] = {}
    for name in order:
        node = graph.nodes[name]
        srcs = [graph.edges[i][0] for i in in_edges[name]]
        # a delayed input comes from a neuron planned later in the order: its format is known from step 1
        in_fmts = [plans[s].out_format if s in plans else neurons[s].out for s in srcs]
        observed = calibration.max_abs_output.get(name, 0.0)
        act_fmt = Format(config.activation_bits, frac_for_range(observed, config.activation_bits))
        plans[name], new_nodes[name] = rules[name].plan(name, node, in_fmts, act_fmt, ctx)
        if name in neurons and plans[name].out_format != neurons[name].out:
            raise BackendError(f"fixed-point mode: the rule of {name!r} ({node.type_name}) planned an output format "
                               f"{plans[name].out_format} other than the {neurons[name].out} its formats() fixed")
        plans[name].delayed_inputs = [k for k, i in enumerate(in_edges[name]) if i in delayed]

    qgraph = Graph({n: new_nodes[n] for n in graph.nodes}, list(graph.edges), dt=graph.dt, metadata={**graph.metadata, "fixed_point": config.to_dict()})
    return FixedPointPlan(config, plans, order, qgraph, calibration)
