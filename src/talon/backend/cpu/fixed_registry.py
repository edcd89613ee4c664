"""The fixed-point rule registry: per primitive type, how hardware mode quantises a node's constants and
how its integer step runs (docs/fixed_point.md; docs/primitives.md shows a registration). numpy only.

A rule is a `FixedRule`: `check` refuses what has no fixed-point value before anything runs, `formats`
(neurons only) fixes the state and output formats from parameters and calibration before any loop is
planned, `plan` quantises the node into a `NodePlan` and the on-grid node the bridge runtime then runs in
float64, and `step` (neurons only) is the integer step around that runtime, given the rounding functions.
The built-in primitives register theirs in talon.backend.cpu.fixed_rules through `register_fixed_rule`,
as a user does for their own primitive. A node whose type has no rule stops fixed mode with a
BackendError that names the node, its type and this call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from talon._registry import put
from talon.backend.cpu.fixed_format import Calibration, FixedPointConfig, Format, NodePlan
from talon.errors import BackendError, TalonUsageError
from talon.ir import Graph, Node, get_node_class


@dataclass(frozen=True)
class NeuronFormats:
    """A neuron's formats, known from its parameters and the calibration alone (so before any loop it
    closes is planned): its membrane, its output, and its synaptic current where it has one."""

    membrane: Format
    out: Format
    current: Format | None = None

    @property
    def input_state(self) -> Format:
        """The state its inputs are integrated into: what a synaptic layer feeding it delivers in."""
        return self.current if self.current is not None else self.membrane


@dataclass
class PlanContext:
    """What a rule's `plan` may read besides its own node: the whole graph and the plan so far."""

    graph: Graph
    config: FixedPointConfig
    calibration: Calibration
    dt: float
    coef_fmt: Format  # neuron coefficients: Q(c+2).c, range [-2, 2)
    costs: dict[str, Any]  # talon.sdk.cost.NodeCost per node
    consumers: dict[str, list[str]]  # each node's successors, in edge order
    neurons: dict[str, NeuronFormats]  # every node whose rule fixed its formats before planning


@dataclass(frozen=True)
class Rounding:
    """The rounding functions of the runtime (talon.backend.cpu.fixed), handed to `FixedRule.step`:
    half_up(x, fmt) for activations and currents, ceil(x, fmt) for membranes (docs/fixed_point.md)."""

    half_up: Callable[[Any, Format], Any]
    ceil: Callable[[Any, Format], Any]


class FixedRule:
    """How hardware mode realises one primitive type. Subclass it and override what the type needs;
    `plan` is required, the rest have defaults that fit a stateless node."""

    #: The node's output format does not depend on its inputs (it defines `formats`): it may close a
    #: recurrent loop, whose every format must be known before the loop is planned.
    carries_loops: bool = False

    #: What its step rounds half up (Rounding.half_up), named so in saturation warnings
    #: (talon.backend.cpu.clip_watch); what it rounds up (Rounding.ceil) is its membrane.
    half_up_state: str = "synaptic current"

    def check(self, name: str, node: Node, dt: float) -> None:
        """Refuse, by name, what has no fixed-point value (before calibration runs). The default refuses
        NaN or Inf in any numeric field."""
        check_finite(name, node.field_values())

    def formats(self, name: str, node: Node, config: FixedPointConfig, calibration: Calibration) -> NeuronFormats | None:
        """A neuron's formats, before planning (None: not a neuron; its formats follow from its inputs)."""
        return None

    def plan(self, name: str, node: Node, in_fmts: list[Format], act_fmt: Format, ctx: PlanContext) -> tuple[NodePlan, Node]:
        """(NodePlan, on-grid node): the node's integers and formats, and the node whose every constant
        lies on its grid. `in_fmts` are its inputs' formats in edge order; `act_fmt` the activation
        format its calibrated output range gives."""
        raise NotImplementedError(f"{type(self).__name__} defines no plan()")

    def step(self, inner: Any, inputs: Any, state: Any, plan: NodePlan, rnd: Rounding) -> tuple[Any, Any]:
        """A neuron's integer step around its runtime module `inner` (plans of kind "neuron" only):
        (output, new state) with every state on its format."""
        raise BackendError(f"fixed-point mode: the rule for {plan.type_name} ({type(self).__name__}) defines no step()")


def check_finite(name: str, values: dict[str, Any]) -> None:
    """Every constant that becomes an integer must be finite."""
    for key, value in values.items():
        if isinstance(value, (float, np.floating, np.ndarray)) and not isinstance(value, bool):
            arr = np.asarray(value)
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise BackendError(f"fixed-point mode: node {name!r} {key} holds NaN or Inf, which has no fixed-point value; "
                                   "give it finite values (or simulate with mode='float')")


_RULES: dict[str, FixedRule] = {}


def register_fixed_rule(type_name: str, rule: FixedRule, *, replace: bool = False) -> FixedRule:
    """Give `type_name` its fixed-point rule (a FixedRule instance); returns the rule."""
    if not isinstance(type_name, str) or not type_name:
        raise TalonUsageError(f"register_fixed_rule needs a primitive type name, got {type_name!r}")
    if not isinstance(rule, FixedRule):
        raise TalonUsageError(f"register_fixed_rule({type_name!r}, ...) needs a FixedRule instance, got {type(rule).__name__}")
    return put(_RULES, type_name, rule, what="a fixed-point rule", replace=replace)


def unregister_fixed_rule(type_name: str) -> None:
    _RULES.pop(type_name, None)


def fixed_rule_types() -> list[str]:
    """The types that have a fixed-point rule, in registration order."""
    return list(_RULES)


def fixed_rule_for(type_name: str, name: str | None = None) -> FixedRule:
    """The rule of `type_name`; BackendError naming the node (when given), its type and how to add one."""
    rule = _RULES.get(type_name)
    if rule is None:
        who = f"node {name!r} of type {type_name}" if name is not None else f"type {type_name}"
        known = "a registered primitive" if get_node_class(type_name) is not None else "not a registered primitive"
        raise BackendError(
            f"fixed-point mode: no fixed-point rule for {who} ({known}); register one with "
            f"talon.backend.cpu.fixed_registry.register_fixed_rule({type_name!r}, rule) (docs/primitives.md), "
            "or simulate it with mode='float'"
        )
    return rule
